# test_sdk_adyen.py - Adyen notifications signed by @adyen/api-library's
# HmacValidator (tests/sdk/adyen.js), through lighttpd (FastCGI): several
# events per request, all or nothing at the door, one by one in storage.
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# The driver's npm packages are installed by scripts/deps (ph_sdk_install,
# "npm ci" from tests/sdk/package-lock.json); without them these tests fail,
# they do not skip.

import base64
import json
import os
import subprocess

from harness import (Failure, check, check_error, eq, fill_filesystem,
                     mount_tmpfs)
from test_golden import FIXTURES, Obj, first_difference, load_exact
from test_providers import sign_and_send

HERE = os.path.dirname(os.path.abspath(__file__))
SDK_DIR = os.path.join(os.path.dirname(HERE), "sdk")
DRIVER = os.path.join(SDK_DIR, "adyen.js")

KEY = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"
OLD_KEY = "0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF"
USER = "ws_adyen@Company.Example"
PASSWORD = "it-adyen-basic-password"
PATH = "/adyen"


def node(args, stdin):
    if not os.path.isdir(os.path.join(SDK_DIR, "node_modules")):
        raise Failure("tests/sdk/node_modules is missing: run scripts/deps "
                      "(npm ci in tests/sdk)")
    p = subprocess.run(["node", DRIVER] + list(args), input=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    check(p.returncode in (0, 1), "node adyen.js %s: exit %d, stderr %r"
          % (args[0], p.returncode, p.stderr[-600:]))
    return p.returncode, p.stdout


def sdk_sign(body, key=KEY, mode="sign"):
    rc, out = node([mode, key], body)
    eq(rc, 0, "node adyen.js %s" % mode)
    return out


def sdk_verifies(body, key=KEY):
    rc, out = node(["verify", key], body)
    n = len(json.loads(body)["notificationItems"])
    eq(out, ("valid %d\n" % n).encode() if rc == 0 else out,
       "driver output")
    return rc == 0


def fixture(case):
    with open(os.path.join(FIXTURES, "adyen", case + ".json"), "rb") as f:
        return f.read()


def expected(case):
    with open(os.path.join(FIXTURES, "adyen", case + ".expected.json"),
              encoding="utf-8") as f:
        return load_exact(f.read())


def basic(user=USER, password=PASSWORD):
    cred = ("%s:%s" % (user, password)).encode()
    return "Basic " + base64.b64encode(cred).decode()


def headers(auth=None):
    h = {"Content-Type": "application/json"}
    if auth is not None:
        h["Authorization"] = auth
    return h


def route(**kw):
    r = {"name": "adyen", "path": PATH, "provider": "adyen",
         "secrets": [KEY, OLD_KEY],
         "auth": {"type": "basic", "user": USER, "password": PASSWORD}}
    r.update(kw)
    return {k: v for k, v in r.items() if v is not None}


def setup(ctx, **kw):
    ctx.secrets.add(PASSWORD)
    cfg, spool, state = ctx.config(routes=[route(**kw)])
    return cfg, spool, state, ctx.lighttpd_fcgi(cfg)


def check_accepted(r, what):
    eq(r.status, 200, what + " status (body %r)" % r.body[:200])
    eq(r.body, b"[accepted]", what + " body")
    eq(r.headers.get("content-type", "").split(";")[0], "text/plain",
       what + " Content-Type")


def spooled(spool):
    """The spooled events (exact form), in the order they were spooled."""
    return [load_exact(spool.read(n).decode("utf-8")) for n in spool.new()]


def check_events(events, case, sent, verified_by, what):
    """events are the golden expected events of case, except for what the
    key and the authentication change: raw (the items as sent, with their
    signatures) and verified_by."""
    items = dict(load_exact(sent.decode("utf-8")))["notificationItems"]
    want = expected(case)
    eq(len(events), len(want), what + ": events")
    for i, (ev, exp) in enumerate(zip(events, want)):
        item = dict(items[i])["NotificationRequestItem"]
        exp = Obj((k, item if k == "raw" else
                   verified_by if k == "verified_by" else v)
                  for k, v in exp)
        got = Obj((k, v) for k, v in ev if k not in ("id", "received_at"))
        diff = first_difference(exp, got)
        check(diff is None, "%s: event %d differs: %s" % (what, i, diff))


def request_line(lt, outcome, n_events, new, dup):
    return lt.wait_log(lambda e: e[2].get("route") == "adyen" and
                       e[2].get("outcome") == outcome and
                       e[2].get("events") == str(n_events) and
                       e[2].get("new") == str(new) and
                       e[2].get("dup") == str(dup))


# ---------------------------------------------------------------- tests

def test_sdk_adyen_batch(ctx):
    """A batch of three SDK-signed items: three events, one [accepted];
    the same batch again: no new file, [accepted] again."""
    cfg, spool, _state, lt = setup(ctx)
    body = sdk_sign(fixture("batch_of_three"))
    r = lt.request("POST", PATH, body, headers(basic()))
    check_accepted(r, "batch of three")
    check_events(spooled(spool), "batch_of_three", body,
                 "hmac-sha256+basic", "batch of three")
    eq(ctx.dedup_count(cfg), 3, "dedup records")
    entry = request_line(lt, "accepted", 3, 3, 0)
    check(entry is not None, "no log line with events=3 new=3 dup=0: %s"
          % lt.stderr_text()[-1500:])
    first = spooled(spool)[0]
    eq(entry[2]["key"], dict(first)["dedup_key"],
       "the line's key is the first event's")
    eq(entry[2]["id"], dict(first)["id"], "the line's id is the first's")
    eq(entry[2]["status"], "200", "the line's status")

    r = lt.request("POST", PATH, body, headers(basic()))
    check_accepted(r, "the same batch again")
    eq(len(spool.new()), 3, "files in new/ after the repeat")
    eq(ctx.dedup_count(cfg), 3, "dedup records after the repeat")
    check(request_line(lt, "duplicate", 3, 0, 3) is not None,
          "no log line with outcome=duplicate events=3 new=0 dup=3")

    # Key rotation: items signed with the older key are accepted too, and
    # the log names the key used.
    single = sdk_sign(fixture("chargeback"), key=OLD_KEY)
    check_accepted(lt.request("POST", PATH, single, headers(basic())),
                   "signed with the second key")
    entry = request_line(lt, "accepted", 1, 1, 0)
    eq(entry[2]["secret"] if entry else None, "1", "secret index logged")
    eq(len(spool.new()), 4, "files in new/ at the end")


def test_sdk_adyen_some_known(ctx):
    """An item committed by an earlier request is a duplicate inside a
    later batch: only the other two are spooled, and the answer is still
    [accepted]."""
    cfg, spool, _state, lt = setup(ctx)
    batch = json.loads(fixture("batch_of_three"))
    first = dict(batch, notificationItems=batch["notificationItems"][:1])
    check_accepted(lt.request("POST", PATH,
                              sdk_sign(json.dumps(first).encode()),
                              headers(basic())), "the first item alone")
    eq(len(spool.new()), 1, "files in new/ after the first item")
    body = sdk_sign(fixture("batch_of_three"))
    check_accepted(lt.request("POST", PATH, body, headers(basic())),
                   "the batch")
    check(request_line(lt, "accepted", 3, 2, 1) is not None,
          "no log line with events=3 new=2 dup=1: %s"
          % lt.stderr_text()[-1500:])
    check_events(spooled(spool), "batch_of_three", body,
                 "hmac-sha256+basic", "first item, then the batch")
    eq(ctx.dedup_count(cfg), 3, "dedup records")


def test_sdk_adyen_rejected(ctx):
    """One bad item refuses the whole request (401) with nothing spooled
    and no record; so do wrong or missing Basic credentials."""
    cfg, spool, _state, lt = setup(ctx)
    good = sdk_sign(fixture("batch_of_three"))
    doc = json.loads(good)
    tampered = json.loads(good)
    # One signed field changed after signing: the third item's amount.
    tampered["notificationItems"][2]["NotificationRequestItem"][
        "amount"]["value"] = 100000
    unsigned = json.loads(good)
    del unsigned["notificationItems"][1]["NotificationRequestItem"][
        "additionalData"]["hmacSignature"]
    cases = [
        ("documented batch with a bad item",
         sdk_sign(fixture("rejected/batch_bad_item"), mode="sign-unsigned"),
         basic()),
        ("a signed field changed after signing",
         json.dumps(tampered).encode(), basic()),
        ("one item without hmacSignature", json.dumps(unsigned).encode(),
         basic()),
        ("signed with another key",
         sdk_sign(fixture("batch_of_three"), key="AB" * 32), basic()),
        ("wrong Basic password", good, basic(password="wrong")),
        ("wrong Basic user", good, basic(user="someone")),
        ("no Authorization header", good, None),
        ("Bearer instead of Basic", good, "Bearer " + PASSWORD),
    ]
    for what, body, auth in cases:
        check_error(lt.request("POST", PATH, body, headers(auth)), 401,
                    what)
        ctx.assert_untouched(cfg, spool, what="after: " + what)
    # The SDK itself agrees the first three are bad.
    check(not sdk_verifies(cases[0][1]), "the SDK verifies the bad batch")
    check(not sdk_verifies(cases[1][1]), "the SDK verifies the tampered one")
    check(sdk_verifies(good), "the SDK rejects the good batch")
    # No items at all: 400, nothing spooled.
    empty = json.dumps(dict(doc, notificationItems=[])).encode()
    check_error(lt.request("POST", PATH, empty, headers(basic())), 400,
                "empty notificationItems")
    ctx.assert_untouched(cfg, spool, what="after the empty batch")
    check_accepted(lt.request("POST", PATH, good, headers(basic())),
                   "the good batch at the end")
    eq(len(spool.new()), 3, "files in new/ at the end")


def test_sdk_adyen_partial_failure(ctx):
    """The spool fills up after the batch's first event: 503, that event
    spooled and recorded, the other two not. The retry, once there is
    room, spools only those two and answers [accepted]."""
    spool_dir = ctx.path("spool")
    mount_tmpfs(ctx, spool_dir, "1m")
    cfg, spool, _state, lt = setup(ctx)
    # A delivery first, so that tmp/ and new/ exist before the disk fills.
    check_accepted(lt.request("POST", PATH, sdk_sign(fixture("chargeback")),
                              headers(basic())), "warm-up delivery")
    # Room for exactly one event file: tmpfs counts whole pages.
    room = os.path.join(spool_dir, "room")
    ctx.write(room, b"\0" * 4096)
    fill_filesystem(os.path.join(spool_dir, "filler"))
    os.unlink(room)
    body = sdk_sign(fixture("batch_of_three"))
    check_error(lt.request("POST", PATH, body, headers(basic())), 503,
                "the batch on a spool with room for one event")
    entry = request_line(lt, "failed", 3, 1, 0)
    check(entry is not None, "no log line with outcome=failed events=3 "
          "new=1 dup=0: %s" % lt.stderr_text()[-1500:])
    eq(entry[2].get("detail"), "spool", "the failed line's detail")
    eq(len(spool.new()), 2, "files in new/ after the 503")
    eq(spool.tmp(), [], "files in tmp/ after the 503")
    eq(ctx.dedup_count(cfg), 2, "dedup records after the 503")
    keys = [dict(ev)["dedup_key"] for ev in spooled(spool)]
    eq(keys[1], "adyen:adyen:QFQTPCQ8HXSKGK82:AUTHORISATION:true",
       "the event spooled before the disk filled")

    os.unlink(os.path.join(spool_dir, "filler"))
    check_accepted(lt.request("POST", PATH, body, headers(basic())),
                   "the retry")
    check(request_line(lt, "accepted", 3, 2, 1) is not None,
          "no log line with events=3 new=2 dup=1 for the retry")
    check_events(spooled(spool)[1:], "batch_of_three", body,
                 "hmac-sha256+basic", "503, then the retry")
    eq(ctx.dedup_count(cfg), 4, "dedup records after the retry")


def test_sdk_adyen_sign(ctx):
    """payhook sign signs every item (the SDK verifies them) and adds the
    route's Basic credentials; its curl command is accepted."""
    cfg, spool, _state, lt = setup(ctx)
    plain = fixture("batch_of_three")
    cmd, status, answer = sign_and_send(ctx, cfg, lt, "adyen", plain)
    eq(status, 200, "payhook sign delivery (answer %r)" % answer)
    eq(answer, b"[accepted]", "answer")
    eq(len(spool.new()), 3, "files in new/")
    check("Authorization: Basic " + base64.b64encode(
        ("%s:%s" % (USER, PASSWORD)).encode()).decode() in cmd,
        "the command has the Basic credentials")
    start = cmd.index("--data-binary '") + len("--data-binary '")
    signed = cmd[start:cmd.index("' \\\n", start)].replace("'\\''", "'")
    check(sdk_verifies(signed.encode()), "the SDK rejects payhook sign's "
          "signatures")
    check(not sdk_verifies(signed.encode(), key=OLD_KEY),
          "payhook sign used the first key")


def test_sdk_adyen_config(ctx):
    """--check-config names each fault of an Adyen route."""
    cases = [
        (route(secrets=None), "key 'secrets': missing; the HMAC key(s)"),
        (route(secrets=["not-hex"]),
         "key 'secrets': entry 1 is not a hex HMAC key"),
        (route(secrets=[KEY, "ABC"]),
         "key 'secrets': entry 2 is not a hex HMAC key"),
        (route(auth={"type": "bearer", "token": "x"}),
         "key 'auth.type': must be \"basic\""),
        (route(auth={"type": "basic", "user": USER}),
         "key 'auth.password': missing (required)"),
        (route(auth={"type": "basic", "user": "a:b", "password": "p"}),
         "key 'auth.user': must be non-empty and without ':'"),
        (route(auth={"type": "basic", "user": USER, "password": "p",
                     "passwd": "p"}),
         "key 'auth.passwd': unknown for type \"basic\""),
        (route(auth="basic"), "key 'auth': must be an object"),
    ]
    for r, fault in cases:
        cfg, _spool, _state = ctx.config(routes=[r])
        p = ctx.run_payhook(["--check-config", "--config", cfg])
        eq(p.returncode, 1, "--check-config exit status for %r" % fault)
        check(fault.encode() in p.stderr, "fault %r not in %r"
              % (fault, p.stderr[-400:]))
    cfg, _spool, _state = ctx.config(routes=[route(auth=None)])
    p = ctx.run_payhook(["--check-config", "--config", cfg])
    eq(p.returncode, 0, "a route without auth (stderr %r)" % p.stderr[-300:])
