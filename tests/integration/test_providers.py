# test_providers.py - the OMPAY, OMNO and Payment Options adapters end to end
# behind lighttpd (FastCGI, and mod_cgi for OMPAY's 204), and "payhook sign"
# checked by running the curl command it prints.
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# Each provider: accepted, duplicate, wrong and missing credentials, with the
# exact status and body the provider expects (OMPAY: 204 empty, 400
# "Signature mismatched"; the others 200 JSON, 401 JSON).

import base64
import hashlib
import hmac
import json
import os
import re
import subprocess
import urllib.parse

from harness import (accepted_id, check, check_duplicate, check_error, eq,
                     parse_log)
from test_golden import FIXTURES, ompay_resign

JSON_CT = {"Content-Type": "application/json"}


def fixture(provider, case):
    with open(os.path.join(FIXTURES, provider, case + ".json"), "rb") as f:
        return f.read()


def with_id(body, old, new):
    """body with the quoted id old replaced by new (exactly once)."""
    old_q, new_q = json.dumps(old).encode(), json.dumps(new).encode()
    eq(body.count(old_q), 1, "occurrences of %s in the fixture" % old)
    return body.replace(old_q, new_q)


def events(spool):
    return [json.loads(spool.read(n).decode()) for n in spool.new()]


def event_by_key(spool, key):
    found = [e for e in events(spool) if e["dedup_key"] == key]
    eq(len(found), 1, "spooled events with dedup_key %s" % key)
    return found[0]


def check_ompay_ok(r, what):
    eq(r.status, 204, what + ": status (body %r)" % r.body[:200])
    eq(r.body, b"", what + ": body")
    eq(r.headers.get("content-type"), None, what + ": Content-Type")


def check_ompay_mismatch(r, what):
    eq(r.status, 400, what + ": status (body %r)" % r.body[:200])
    eq(r.body, b"Signature mismatched", what + ": body")
    eq((r.headers.get("content-type") or "").split(";")[0], "text/plain",
       what + ": Content-Type")


def sign_and_send(ctx, cfg, lt, route, payload, name="payload.json"):
    """Run payhook sign for payload, then the curl command it printed;
    returns (command, HTTP status, answer body)."""
    path = ctx.write(ctx.path(name), payload)
    p = ctx.run_payhook(["sign", "--config", cfg, route, path, "--url",
                         "http://127.0.0.1:%d" % lt.port])
    out = p.stdout.decode()
    eq(p.returncode, 0, "payhook sign %s: exit status (stderr %r)"
       % (route, p.stderr.decode()[-500:]))
    check(out.startswith("curl "), "payhook sign printed %r" % out[:200])
    c = subprocess.run(["sh", "-c", out], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    eq(c.returncode, 0, "the printed curl command failed: %r"
       % c.stderr[-300:])
    head, _sep, body = c.stdout.partition(b"\r\n\r\n")
    m = re.match(rb"^HTTP/1\.[01] (\d{3}) ", head)
    check(m is not None, "curl -i output: %r" % c.stdout[:200])
    return out, int(m.group(1)), body


# ---------------------------------------------------------------- OMPAY

OMPAY_SECRET = "it-ompay-client-secret"
OMPAY_OLD_SECRET = "it-ompay-old-secret"
PAY_ID = "paycbaff3b9dc5443f0ba0997970ebeddfa"


def test_providers_ompay(ctx):
    cfg, spool, _state = ctx.config(routes=[{
        "name": "ompay", "path": "/ompay", "provider": "ompay",
        "secrets": [OMPAY_SECRET, OMPAY_OLD_SECRET]}])
    lt = ctx.lighttpd_fcgi(cfg)

    def post(body):
        return lt.request("POST", "/ompay", body, JSON_CT)

    completed = ompay_resign(fixture("ompay", "transaction_completed"),
                             OMPAY_SECRET)
    check_ompay_ok(post(completed), "accepted")
    ev = event_by_key(spool, "ompay:ompay:TRANSACTION_COMPLETED:" + PAY_ID)
    eq(ev["type"], "payment.succeeded", "type")
    eq(ev["verified_by"], "hmac-sha256(orderId|paymentId)", "verified_by")
    eq(ev["amount"], {"value": "1.000", "minor": 1000, "currency": "OMR",
                      "exponent": 3}, "amount")
    check_ompay_ok(post(completed), "duplicate")
    eq(len(spool.new()), 1, "files in new/ after the duplicate")

    # The documented weakness: the signature covers orderId|paymentId only,
    # so the same signature is valid with another eventType.
    failed = ompay_resign(fixture("ompay", "transaction_failed"),
                          OMPAY_SECRET)
    check_ompay_ok(post(failed), "same signature, other eventType")
    eq(event_by_key(spool, "ompay:ompay:TRANSACTION_FAILED:" + PAY_ID)["type"],
       "payment.failed", "replayed signature event type")

    # Hex case does not matter; the second secret (rotation) is accepted.
    refund = ompay_resign(fixture("ompay", "refund_success"), OMPAY_SECRET)
    sig = json.loads(refund)["data"]["signature"]
    check_ompay_ok(post(refund.replace(sig.encode(), sig.upper().encode())),
                   "upper-case signature")
    old = ompay_resign(fixture("ompay", "refund_failed"), OMPAY_OLD_SECRET)
    check_ompay_ok(post(old), "signed with the second secret")
    entry = lt.wait_log(lambda e: e[2].get("key", "").startswith(
        "ompay:ompay:REFUND_FAILED:"))
    check(entry is not None, "no log line for the refund_failed event")
    eq(entry[2].get("secret"), "1", "log: position of the matching secret")
    eq(len(spool.new()), 4, "files in new/")

    # Wrong, missing and misplaced signatures: 400 Signature mismatched.
    other = ompay_resign(fixture("ompay", "unknown_event"), "wrong-secret")
    check_ompay_mismatch(post(other), "wrong secret")
    doc = json.loads(completed)
    del doc["data"]["signature"]
    check_ompay_mismatch(post(json.dumps(doc).encode()), "no signature")
    doc = json.loads(completed)
    doc["data"]["paymentId"] = "pay-someone-else"
    check_ompay_mismatch(post(json.dumps(doc).encode()),
                         "signature of another payment")
    doc = json.loads(completed)
    doc["signature"] = doc["data"].pop("signature")
    check_ompay_mismatch(post(json.dumps(doc).encode()),
                         "signature outside data")
    # The signature is inside the body: unparseable is a plain 400.
    r = post(b'{"eventType": "TRANSACTION_COMPLETED", "data": {')
    check_error(r, 400, "unparseable body")
    eq(len(spool.new()), 4, "files in new/ after the rejections")
    eq(ctx.dedup_count(cfg), 4, "dedup records")

    # payhook sign: the document's payload (signed with a secret we do not
    # have) is re-signed and delivered.
    unknown = fixture("ompay", "unknown_event")
    cmd, status, body = sign_and_send(ctx, cfg, lt, "ompay", unknown)
    check("--data-binary '{" in cmd, "the re-signed body is inline: %r"
          % cmd)
    eq((status, body), (204, b""), "signed delivery answer")
    ev = event_by_key(spool, "ompay:ompay:TRANSACTION_PENDING:" + PAY_ID)
    eq(ev["raw"]["data"]["signature"],
       json.loads(ompay_resign(unknown, OMPAY_SECRET))["data"]["signature"],
       "signature set by payhook sign")
    # A payload that already carries the right signature is sent as is.
    cmd, status, body = sign_and_send(ctx, cfg, lt, "ompay", completed,
                                      "signed.json")
    check("--data-binary @'" in cmd, "an unchanged body is sent from the "
          "file: %r" % cmd)
    eq((status, body), (204, b""), "signed duplicate answer")
    eq(len(spool.new()), 5, "files in new/ at the end")


def test_providers_ompay_cgi(ctx):
    """OMPAY's 204 and 400 through lighttpd's mod_cgi."""
    cfg, spool, _state = ctx.config(routes=[{
        "name": "ompay", "path": "/ompay", "provider": "ompay",
        "secrets": [OMPAY_SECRET]}])
    lt = ctx.lighttpd_cgi(cfg)
    body = ompay_resign(fixture("ompay", "refund_success"), OMPAY_SECRET)
    for what in ("accepted", "duplicate"):
        r = lt.request("POST", "/cgi-bin/payhook/ompay", body, JSON_CT)
        check_ompay_ok(r, "CGI " + what)
    bad = ompay_resign(fixture("ompay", "refund_success"), "wrong")
    r = lt.request("POST", "/cgi-bin/payhook/ompay", bad, JSON_CT)
    check_ompay_mismatch(r, "CGI wrong signature")
    eq(len(spool.new()), 1, "files in new/")


# ---------------------------------------------------------------- OMNO

def basic(user, password):
    return "Basic " + base64.b64encode(
        ("%s:%s" % (user, password)).encode()).decode()


def omno_hmac(body, key):
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


# route name -> (route keys, verified_by, good headers(body), bad header sets)
OMNO_ROUTES = {
    "omno-basic": (
        {"auth": {"type": "basic", "user": "omno",
                  "password": "it-omno-pass:word"}},
        "basic",
        lambda b: {"Authorization": basic("omno", "it-omno-pass:word")},
        lambda b: [{"Authorization": basic("omno", "it-omno-wrong")},
                   {"Authorization": basic("omnx", "it-omno-pass:word")},
                   {"Authorization": "Bearer it-omno-pass:word"},
                   {"Authorization": "Basic !!!!"},
                   {}]),
    "omno-bearer": (
        {"auth": {"type": "bearer", "token": "it-omno-bearer-token"}},
        "bearer",
        lambda b: {"Authorization": "Bearer it-omno-bearer-token"},
        lambda b: [{"Authorization": "Bearer it-omno-bearer-tokem"},
                   {"Authorization": "Bearer it-omno-bearer-token-"},
                   {"Authorization": "Basic it-omno-bearer-token"},
                   {}]),
    "omno-header": (
        {"auth": {"type": "header", "name": "X-Omno-Auth",
                  "value": "it-omno 'header' value"}},
        "header",
        lambda b: {"X-Omno-Auth": "it-omno 'header' value"},
        lambda b: [{"X-Omno-Auth": "it-omno 'header' valuf"},
                   {"X-Other": "it-omno 'header' value"},
                   {}]),
    "omno-hmac": (
        {"auth": {"type": "hmac-sha256", "header": "X-Omno-Signature"},
         "secrets": ["it-omno-hmac-key"]},
        "hmac-sha256",
        lambda b: {"X-Omno-Signature": omno_hmac(b, "it-omno-hmac-key")},
        lambda b: [{"X-Omno-Signature": omno_hmac(b, "it-omno-hmac-kex")},
                   {"X-Omno-Signature": omno_hmac(b + b" ",
                                                  "it-omno-hmac-key")},
                   {"X-Signature": omno_hmac(b, "it-omno-hmac-key")},
                   {}]),
    "omno-hmac-default": (
        {"auth": {"type": "hmac-sha256", "secret": "it-omno-hmac-key-2"}},
        "hmac-sha256",
        lambda b: {"X-Signature": omno_hmac(b, "it-omno-hmac-key-2")},
        lambda b: [{"X-Signature": omno_hmac(b, "it-omno-hmac-key")}, {}]),
    "omno-open": (
        {"allow_unauthenticated": True},
        "none",
        lambda b: {},
        lambda b: []),
}


def test_providers_omno(ctx):
    routes = []
    for name, (keys, _vb, _good, _bad) in OMNO_ROUTES.items():
        r = {"name": name, "path": "/" + name, "provider": "omno"}
        r.update(keys)
        routes.append(r)
        for k in ("password", "token", "value", "secret"):
            if k in r.get("auth", {}):
                ctx.secrets.add(r["auth"][k])
    cfg, spool, _state = ctx.config(routes=routes)
    lt = ctx.lighttpd_fcgi(cfg)
    example = fixture("omno", "example")
    n = 0
    for name, (_keys, verified_by, good, bad) in OMNO_ROUTES.items():
        body = with_id(example, "example_id", "tx-" + name)
        h = dict(JSON_CT, **good(body))
        ulid = accepted_id(lt.request("POST", "/" + name, body, h),
                           name + " accepted")
        n += 1
        ev = event_by_key(spool, "%s:omno:tx-%s:Success" % (name, name))
        eq(ev["id"], ulid, name + ": event id")
        eq(ev["verified_by"], verified_by, name + ": verified_by")
        eq(ev["amount"], {"value": "123.45", "minor": 12345,
                          "currency": "EUR", "exponent": 2}, "amount")
        check_duplicate(lt.request("POST", "/" + name, body, h), ulid,
                        name + " duplicate")
        for i, hdrs in enumerate(bad(body)):
            r = lt.request("POST", "/" + name, body,
                           dict(JSON_CT, **hdrs))
            check_error(r, 401, "%s wrong credentials #%d" % (name, i))
        eq(len(spool.new()), n, "files in new/ after " + name)

    # One webhook per status change: each is its own event.
    for status in ("Created", "Pending3DS", "Success"):
        body = with_id(example, "example_id", "tx-flow").replace(
            b'"status": "Success"', b'"status": "%s"' % status.encode())
        h = dict(JSON_CT, Authorization=basic("omno", "it-omno-pass:word"))
        accepted_id(lt.request("POST", "/omno-basic", body, h),
                    "status " + status)
        n += 1
    check_duplicate(lt.request("POST", "/omno-basic", body, h),
                    event_by_key(spool,
                                 "omno-basic:omno:tx-flow:Success")["id"],
                    "repeated Success")
    eq([event_by_key(spool, "omno-basic:omno:tx-flow:" + s)["type"]
        for s in ("Created", "Pending3DS", "Success")],
       ["payment.created", "payment.action_required", "payment.succeeded"],
       "types of the status changes")

    # payhook sign gives working credentials for every kind of route.
    for name in OMNO_ROUTES:
        body = with_id(example, "example_id", "signed-" + name)
        _cmd, status, answer = sign_and_send(ctx, cfg, lt, name, body,
                                             name + ".json")
        eq(status, 200, name + ": signed delivery status (%r)" % answer)
        check(answer.startswith(b'{"status":"accepted","id":"'),
              name + ": signed delivery answer %r" % answer)
        n += 1
    eq(len(spool.new()), n, "files in new/ at the end")
    eq(ctx.dedup_count(cfg), n, "dedup records")
    # The open route is announced in the log when the configuration loads.
    p = ctx.run_payhook(["--check-config", "--config", cfg])
    eq(p.returncode, 0, "--check-config exit status")
    check(any(kv.get("route") == "omno-open" and level.startswith("warn")
              for _pid, level, kv, _l in parse_log(p.stderr.decode())),
          "no warning about the unauthenticated route: %r" % p.stderr)


# ---------------------------------------------------------------- Payment Options

PO_TOKEN = "it-po-token/+'x"          # needs URL encoding and shell quoting
PO_TOKEN_2 = "it-po-token-2"
PO_HMAC_KEY = "it-po-hmac-key"
PO_TOKEN_NEW = "it-po-token-new"
PO_TOKEN_OLD = "it-po-token-old"


def po_url(path, token):
    return "%s?token=%s" % (path, urllib.parse.quote(token, safe=""))


def test_providers_paymentoptions(ctx):
    routes = [
        {"name": "po", "path": "/po", "provider": "paymentoptions",
         "url_token": PO_TOKEN},
        {"name": "po-hmac", "path": "/po-hmac", "provider": "paymentoptions",
         "url_token": PO_TOKEN_2, "secrets": [PO_HMAC_KEY],
         "header": "X-PO-Signature"},
        {"name": "po-rotate", "path": "/po-rotate",
         "provider": "paymentoptions",
         "url_token": [PO_TOKEN_NEW, PO_TOKEN_OLD]},
    ]
    ctx.secrets.update([PO_TOKEN, PO_TOKEN_2, PO_TOKEN_NEW, PO_TOKEN_OLD])
    cfg, spool, _state = ctx.config(routes=routes)
    lt = ctx.lighttpd_fcgi(cfg)
    sale = fixture("paymentoptions", "sale_success")

    r = lt.request("POST", po_url("/po", PO_TOKEN), sale, JSON_CT)
    ulid = accepted_id(r, "token route accepted")
    ev = event_by_key(spool, "po:paymentoptions:po-txn-1001:SALE:success")
    eq((ev["id"], ev["verified_by"], ev["type"]),
       (ulid, "url-token", "payment.succeeded"), "event")
    check_duplicate(lt.request("POST", po_url("/po", PO_TOKEN), sale,
                               JSON_CT), ulid, "token route duplicate")
    for what, url in (
            ("wrong token", po_url("/po", PO_TOKEN + "x")),
            ("token prefix", po_url("/po", PO_TOKEN[:-1])),
            ("no token", "/po"),
            ("empty token", "/po?token="),
            ("other parameter", po_url("/po", PO_TOKEN).replace("token=",
                                                               "tok=")),
            # '+' unencoded is a space in a query string
            ("token not URL-encoded", "/po?token=" + PO_TOKEN.replace(
                "'", "%27")),
            ("token of the other route", po_url("/po", PO_TOKEN_2))):
        check_error(lt.request("POST", url, sale, JSON_CT), 401, what)

    # Token and HMAC configured: both must pass.
    refund = fixture("paymentoptions", "refund_success")
    good = hmac.new(PO_HMAC_KEY.encode(), refund, hashlib.sha256).hexdigest()
    bad = hmac.new(b"other", refund, hashlib.sha256).hexdigest()
    for what, token, sig in (("wrong HMAC", PO_TOKEN_2, bad),
                             ("no HMAC", PO_TOKEN_2, None),
                             ("wrong token", PO_TOKEN, good),
                             ("no token", None, good)):
        url = po_url("/po-hmac", token) if token else "/po-hmac"
        h = dict(JSON_CT)
        if sig:
            h["X-PO-Signature"] = sig
        check_error(lt.request("POST", url, refund, h), 401,
                    "token+HMAC route, " + what)
    r = lt.request("POST", po_url("/po-hmac", PO_TOKEN_2), refund,
                   dict(JSON_CT, **{"X-PO-Signature": good}))
    accepted_id(r, "token+HMAC route accepted")
    eq(event_by_key(spool, "po-hmac:paymentoptions:po-txn-1002:REFUND:success")
       ["verified_by"], "url-token+hmac-sha256", "verified_by")
    eq(len(spool.new()), 2, "files in new/")

    # A list of tokens: rotation while old URLs still call back.
    void = fixture("paymentoptions", "void_success")
    accepted_id(lt.request("POST", po_url("/po-rotate", PO_TOKEN_OLD), void,
                           JSON_CT), "old token of the list")
    entry = lt.wait_log(lambda e: e[2].get("route") == "po-rotate")
    check(entry is not None, "no log line for po-rotate")
    eq(entry[2].get("secret"), "1", "log: position of the matching token")
    check_error(lt.request("POST", po_url("/po-rotate", PO_TOKEN), void,
                           JSON_CT), 401, "token of another route")
    eq(len(spool.new()), 3, "files in new/")

    # payhook sign: the URL with the token (quoted for the shell), and the
    # HMAC header where one is configured.
    cmds = {}
    for route, case in (("po", "capture_success"),
                        ("po-hmac", "pre_auth_success"),
                        ("po-rotate", "void_failure")):
        cmds[route], status, answer = sign_and_send(
            ctx, cfg, lt, route, fixture("paymentoptions", case),
            route + ".json")
        eq(status, 200, route + ": signed delivery (%r)" % answer)
        check(answer.startswith(b'{"status":"accepted","id":"'),
              route + ": signed delivery answer %r" % answer)
    check("/po?token=it-po-token%2F%2B%27x'\n" in cmds["po"],
          "the token is URL-encoded: %r" % cmds["po"])
    check("-H 'X-PO-Signature: " in cmds["po-hmac"],
          "the HMAC header: %r" % cmds["po-hmac"])
    check("/po-rotate?token=%s'\n" % PO_TOKEN_NEW in cmds["po-rotate"],
          "sign uses the first token: %r" % cmds["po-rotate"])
    eq(len(spool.new()), 6, "files in new/ at the end")
    eq(ctx.dedup_count(cfg), 6, "dedup records")


# ---------------------------------------------------------------- dedup keys

def test_providers_keys_scoped_by_route(ctx):
    """An unauthenticated route, or another merchant account's route of the
    same provider, cannot make an authentic delivery a duplicate."""
    routes = [
        {"name": "omno-open", "path": "/omno-open", "provider": "omno",
         "allow_unauthenticated": True},
        {"name": "omno-hmac", "path": "/omno-hmac", "provider": "omno",
         "auth": {"type": "hmac-sha256", "secret": "it-scope-hmac-key"}},
        {"name": "ompay-a", "path": "/ompay-a", "provider": "ompay",
         "secrets": ["it-scope-ompay-a"]},
        {"name": "ompay-b", "path": "/ompay-b", "provider": "ompay",
         "secrets": ["it-scope-ompay-b"]},
    ]
    ctx.secrets.add("it-scope-hmac-key")
    cfg, spool, _state = ctx.config(routes=routes)
    body = with_id(fixture("omno", "example"), "example_id", "tx-scope")

    # Anyone can post to the open route first...
    anon = accepted_id(ctx.cgi(cfg, body=body, path="/omno-open",
                               headers=JSON_CT), "anonymous delivery")
    # ...and the authentic delivery to the HMAC route is still spooled.
    h = dict(JSON_CT, **{"X-Signature": omno_hmac(body,
                                                  "it-scope-hmac-key")})
    real = accepted_id(ctx.cgi(cfg, body=body, path="/omno-hmac",
                               headers=h), "authentic delivery")
    check(real != anon, "the authentic delivery got the anonymous id")
    eq(event_by_key(spool, "omno-open:omno:tx-scope:Success")["id"], anon,
       "event of the open route")
    ev = event_by_key(spool, "omno-hmac:omno:tx-scope:Success")
    eq((ev["id"], ev["verified_by"]), (real, "hmac-sha256"),
       "event of the HMAC route")
    check_duplicate(ctx.cgi(cfg, body=body, path="/omno-hmac", headers=h),
                    real, "authentic redelivery")

    # Two merchant accounts of one provider, each with its own secret.
    for route, secret in (("ompay-b", "it-scope-ompay-b"),
                          ("ompay-a", "it-scope-ompay-a")):
        signed = ompay_resign(fixture("ompay", "transaction_completed"),
                              secret)
        check_ompay_ok(ctx.cgi(cfg, body=signed, path="/" + route,
                               headers=JSON_CT), route)
        eq(event_by_key(spool, "%s:ompay:TRANSACTION_COMPLETED:%s"
                        % (route, PAY_ID))["route"], route, route + " event")
    eq(len(spool.new()), 4, "files in new/")
    eq(ctx.dedup_count(cfg), 4, "dedup records")


VICTIM_PAY_ID = "pay-victim-7f3e"


def test_providers_ompay_key_is_signed(ctx):
    """OMPAY's key holds the signed paymentId, trimmed as the signature
    check trims it: a captured signature claims no other payment's key."""
    cfg, spool, _state = ctx.config(routes=[{
        "name": "ompay", "path": "/ompay", "provider": "ompay",
        "secrets": [OMPAY_SECRET]}])

    def post(body):
        return ctx.cgi(cfg, body=body, path="/ompay", headers=JSON_CT)

    # A captured, genuinely signed webhook of payment PAY_ID...
    captured = ompay_resign(fixture("ompay", "transaction_completed"),
                            OMPAY_SECRET)
    check_ompay_ok(post(captured), "captured webhook")
    # ...replayed with refundId naming the victim's payment: the signature
    # is valid (it covers orderId|paymentId only), so it is accepted, but
    # its key is PAY_ID's.
    doc = json.loads(captured)
    doc["data"]["refundId"] = VICTIM_PAY_ID
    check_ompay_ok(post(json.dumps(doc).encode()), "forged refundId")
    # The victim's own genuine webhook is spooled, not a duplicate.
    victim = json.loads(fixture("ompay", "transaction_completed"))
    victim["data"]["paymentId"] = VICTIM_PAY_ID
    victim["data"]["orderId"] = "wb-victim-order"
    victim = ompay_resign(json.dumps(victim).encode(), OMPAY_SECRET)
    check_ompay_ok(post(victim), "victim's genuine webhook")
    eq(sorted(ev["payment_id"] for ev in events(spool)),
       sorted([PAY_ID, PAY_ID, VICTIM_PAY_ID]), "payments spooled")
    forged = event_by_key(spool, "ompay:ompay:TRANSACTION_COMPLETED:%s:%s"
                          % (PAY_ID, VICTIM_PAY_ID))
    eq(forged["refund_id"], VICTIM_PAY_ID, "forged event's refund_id")
    eq(event_by_key(spool, "ompay:ompay:TRANSACTION_COMPLETED:"
                    + VICTIM_PAY_ID)["payment_id"], VICTIM_PAY_ID,
       "victim's event")

    # " PAY1\t" and "PAY1" are one payment, as for the signature.
    padded = captured.replace(('"%s"' % PAY_ID).encode(),
                              ('" %s\\t"' % PAY_ID).encode())
    check(padded != captured, "the fixture's paymentId was not padded")
    r = post(padded)
    check_ompay_ok(r, "padded paymentId")
    eq(len(spool.new()), 3, "files in new/ after the padded paymentId")
    check(any(kv.get("outcome") == "duplicate" for _p, _l, kv, _line in
              parse_log(r.stderr)), "padded paymentId: not logged as a "
          "duplicate: %r" % r.stderr)
    eq(ctx.dedup_count(cfg), 3, "dedup records")


# ---------------------------------------------------------------- hostile JSON

OMNO_BASIC_ROUTE = {"name": "omno", "path": "/omno", "provider": "omno",
                    "auth": {"type": "basic", "user": "omno",
                             "password": "it-hostile-pass"}}


def omno_body(**fields):
    """An OMNO webhook as JSON text: fields maps member names to the bytes
    (or str) of their values' JSON text, replacing or adding."""
    members = {"id": b'"tx-hostile"', "status": b'"Success"',
               "amount": b"123.45", "currency": b'"EUR"',
               "createdAt": b'"2024-01-18T12:34:56"',
               "initialAmount": b"150"}
    for name, value in fields.items():
        members[name] = value.encode() if isinstance(value, str) else value
    return b"{" + b", ".join(b'"%s": %s' % (k.encode(), v)
                            for k, v in members.items()) + b"}"


def test_providers_strict_json(ctx):
    """What RFC 8259 does not allow is 400, with nothing spooled or
    recorded, even when authentic."""
    ctx.secrets.add("it-hostile-pass")
    cfg, spool, _state = ctx.config(routes=[OMNO_BASIC_ROUTE])
    h = dict(JSON_CT, Authorization=basic("omno", "it-hostile-pass"))
    cases = [
        ("overlong UTF-8", omno_body(id=b'"tx-\xc0\xaf"')),
        ("overlong UTF-8 of NUL", omno_body(id=b'"tx-\xc0\x80"')),
        ("encoded surrogate", omno_body(id=b'"tx-\xed\xa0\x80"')),
        ("above U+10FFFF", omno_body(id=b'"tx-\xf4\x90\x80\x80"')),
        ("raw tab in a string", omno_body(id=b'"tx\t1"')),
        ("raw control character", omno_body(id=b'"tx\x011"')),
        ("raw newline in a name", omno_body(**{"p\nsp": b'"x"'})),
        ("escaped NUL in a name", omno_body(**{"status\\u0000x":
                                               b'"Failed"'})),
        ("leading zero after minus", omno_body(initialAmount="-0150")),
        ("NaN", omno_body(amount="NaN")),
        ("-Infinity", omno_body(amount="-Infinity")),
        ("repeated name with an integer beyond 64 bits",
         omno_body(initialAmount="99999999999999999999")[:-1] +
         b', "initialAmount": 1}'),
    ]
    for what, body in cases:
        r = ctx.cgi(cfg, body=body, path="/omno", headers=h)
        check_error(r, 400, what)
        ctx.assert_untouched(cfg, spool, what="after " + what)


def test_providers_numbers_and_ids(ctx):
    """Integers beyond 64 bits, numbers beyond a double, lone surrogates
    and a currency holding NUL: accepted, never merged, raw as sent."""
    ctx.secrets.add("it-hostile-pass")
    cfg, spool, _state = ctx.config(routes=[OMNO_BASIC_ROUTE])
    h = dict(JSON_CT, Authorization=basic("omno", "it-hostile-pass"))

    def deliver(body, what):
        r = ctx.cgi(cfg, body=body, path="/omno", headers=h)
        ulid = accepted_id(r, what)
        found = [ev for _n, _d, ev in spool.events() if ev["id"] == ulid]
        eq(len(found), 1, what + ": files with its id")
        return found[0], r.stderr

    def body_key(body):
        return "omno:omno:#sha256:" + hashlib.sha256(body).hexdigest()

    # Two 20-digit ids json-c clamps to one value: two events.
    delivered = [(digits, omno_body(id=digits)) for digits in
                 ("99999999999999999999", "99999999999999999998")]
    delivered = [(digits, body, deliver(body, "id " + digits))
                 for digits, body in delivered]
    for digits, body, (ev, err) in delivered:
        eq(ev["raw"]["id"], int(digits), "raw keeps the id's text")
        eq((ev["dedup_key"], ev["payment_id"]), (body_key(body), None),
           "id %s: key and payment_id" % digits)
        check("id is an integer beyond 64 bits: not used" in err,
              "no warning for id %s: %r" % (digits, err))
    # An amount json-c clamps to INT64_MIN: null, and raw as sent.
    body = omno_body(amount="-99999999999999999999")
    ev, err = deliver(body, "huge negative amount")
    eq(ev["amount"], None, "amount beyond 64 bits")
    eq(ev["raw"]["amount"], -99999999999999999999, "raw amount")
    check("amount not normalized: amount is an integer beyond 64 bits"
          in err, "no warning for the amount: %r" % err)
    # Beyond a double: accepted, its text kept.
    body = omno_body(id='"tx-1e400"', amount="1e400",
                     initialAmount="-2E-400")
    ev, _err = deliver(body, "1e400")
    eq(ev["amount"], None, "amount 1e400")
    data = spool.read([n for n in spool.new() if ev["id"] in n][0])
    check(b'"amount":1e400,' in data and b'"initialAmount":-2E-400}' in
          data, "raw lost the numbers' text: %r" % data[:300])
    # Lone surrogates: json-c makes both U+FFFD; never one key.
    keys = set()
    for esc in ("\\ud800", "\\udc00"):
        body = omno_body(id='"tx-%s"' % esc)
        ev, err = deliver(body, "id tx-" + esc)
        eq((ev["dedup_key"], ev["payment_id"]),
           (body_key(body), "tx-\ufffd"), "id tx-" + esc)
        keys.add(ev["dedup_key"])
    eq(len(keys), 2, "keys of the two lone surrogates")
    # A currency holding NUL is not EUR.
    ev, err = deliver(omno_body(id='"tx-nul"', currency='"EUR\\u0000X"'),
                      "currency with NUL")
    eq(ev["amount"], None, "amount in EUR\\u0000X")
    check("currency is not a 3-letter code" in err, err)
    eq(len(spool.new()), 7, "files in new/")
    eq(ctx.dedup_count(cfg), 7, "dedup records")


# ---------------------------------------------------------------- configuration

def test_providers_config_faults(ctx):
    """--check-config names each adapter fault with its route and key."""
    cases = [
        ({"provider": "omno"},
         "key 'auth': missing; set the authorization method"),
        ({"provider": "omno", "auth": {"type": "digest"}},
         "key 'auth.type': must be \"basic\", \"bearer\", \"header\", "
         "\"hmac-sha256\" or \"none\""),
        ({"provider": "omno", "auth": "basic"},
         "key 'auth': must be an object"),
        ({"provider": "omno", "auth": {"type": "basic", "user": "a:b",
                                       "password": "x"}},
         "key 'auth.user': must be non-empty and without ':'"),
        ({"provider": "omno", "auth": {"type": "basic", "user": "a"}},
         "key 'auth.password': missing (required)"),
        ({"provider": "omno", "auth": {"type": "basic", "user": "a",
                                       "passwd": "x"}},
         "key 'auth.passwd': unknown for type \"basic\""),
        ({"provider": "omno", "auth": {"type": "bearer",
                                       "token": "env:PAYHOOK_IT_UNSET"}},
         "key 'auth.token': environment variable PAYHOOK_IT_UNSET is not "
         "set"),
        ({"provider": "omno", "auth": {"type": "none"}},
         "key 'auth.type': \"none\" needs \"allow_unauthenticated\": true"),
        ({"provider": "omno", "auth": {"type": "header", "name": "X Auth",
                                       "value": "v"}},
         "key 'auth.name': not a valid header name"),
        ({"provider": "omno", "auth": {"type": "hmac-sha256"}},
         "key 'auth.secret': missing; the HMAC key goes here or in "
         "'secrets'"),
        ({"provider": "omno", "auth": {"type": "hmac-sha256",
                                       "secret": "it-fault-key"},
          "secrets": ["it-fault-key"]},
         "key 'auth.secret': give the key here or in 'secrets', not both"),
        ({"provider": "omno", "auth": {"type": "bearer", "token": "t"},
          "secrets": ["it-fault-key"]},
         "key 'secrets': not used by auth type \"bearer\""),
        ({"provider": "paymentoptions"},
         "key 'url_token': missing; Payment Options signs nothing"),
        ({"provider": "paymentoptions", "url_token": []},
         "key 'url_token': must list at least one secret"),
        ({"provider": "paymentoptions", "url_token": 7},
         "key 'url_token': must be a string or an array of strings"),
        ({"provider": "paymentoptions",
          "url_token": ["it-fault-token", "file:/nonexistent/po.token"]},
         "url_token[1]: "),
        ({"provider": "paymentoptions", "url_token": "t",
          "secrets": ["it-fault-key"]},
         "key 'secrets': needs 'header'"),
        ({"provider": "paymentoptions", "url_token": "t",
          "header": "X-Sig"},
         "key 'header': needs 'secrets'"),
        ({"provider": "ompay"},
         "key 'secrets': missing; OMPAY's client secret is required"),
        ({"provider": "ngn-gateway", "secrets": ["it-fault-key"],
          "amount_unit": "minor", "header": "X Signature"},
         "key 'header': not a valid header name"),
        ({"provider": "ngn-gateway", "secrets": ["it-fault-key"],
          "amount_unit": "minor", "header": ""},
         "key 'header': not a valid header name"),
    ]
    for i, (keys, fault) in enumerate(cases):
        route = {"name": "r", "path": "/r"}
        route.update(keys)
        cfg, _spool, _state = ctx.config(routes=[route],
                                         name="bad%d.json" % i)
        p = ctx.run_payhook(["--check-config", "--config", cfg])
        err = p.stderr.decode()
        eq(p.returncode, 1, "case %d: exit status (stderr %r)" % (i, err))
        line = "%s: route 'r' (#1): %s" % (cfg, fault)
        check(any(x.startswith(line) for x in err.splitlines()),
              "case %d: expected a line starting %r, got %r"
              % (i, line, err))
    # A route's name begins its dedup keys: at most 128 characters, so the
    # body-hash key always fits the database.
    for length, rc in ((128, 0), (129, 1)):
        route = {"name": "n" * length, "path": "/n", "provider": "omno",
                 "allow_unauthenticated": True}
        cfg, _spool, _state = ctx.config(routes=[route],
                                         name="name%d.json" % length)
        p = ctx.run_payhook(["--check-config", "--config", cfg])
        eq(p.returncode, rc, "route name of %d characters (%r)"
           % (length, p.stderr))
        check(rc == 0 or b"key 'name': must be a non-empty string of A-Z "
              b"a-z 0-9 . _ -, at most 128 long" in p.stderr, p.stderr)
    # Accepted without credentials only when the route says so.
    for i, route in enumerate((
            {"provider": "omno", "allow_unauthenticated": True},
            {"provider": "omno", "allow_unauthenticated": True,
             "auth": {"type": "none"}},
            {"provider": "paymentoptions", "allow_unauthenticated": True})):
        route.update({"name": "open", "path": "/open"})
        cfg, _spool, _state = ctx.config(routes=[route],
                                         name="open%d.json" % i)
        p = ctx.run_payhook(["--check-config", "--config", cfg])
        eq(p.returncode, 0, "open route %d: exit status (%r)"
           % (i, p.stderr))
        check(b"route=open has no authentication" in p.stderr,
              "open route %d: no warning in %r" % (i, p.stderr))


def test_providers_sign_usage(ctx):
    """payhook sign refuses what it cannot do, naming why."""
    cfg, _spool, _state = ctx.config(routes=[
        {"name": "ompay", "path": "/ompay", "provider": "ompay",
         "secrets": [OMPAY_SECRET]},
        {"name": "omno", "path": "/omno", "provider": "omno",
         "auth": {"type": "bearer", "token": "it-sign-token"}}])
    ctx.secrets.add("it-sign-token")
    good = ctx.write(ctx.path("good.json"), fixture("omno", "example"))
    nodata = ctx.write(ctx.path("nodata.json"), b'{"eventType": "X"}')
    notjson = ctx.write(ctx.path("notjson.json"), b"not json")

    def run(*args):
        p = ctx.run_payhook(["sign", "--config", cfg] + list(args))
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    rc, out, err = run("nosuch", good)
    eq((rc, out), (1, ""), "unknown route")
    check("has no route named 'nosuch'; routes: ompay omno" in err, err)
    rc, out, err = run("omno")
    eq((rc, out), (2, ""), "missing FILE")
    check(err.startswith("usage: payhook sign"), err)
    rc, out, err = run("omno", ctx.path("absent.json"))
    eq((rc, out), (1, ""), "absent file")
    rc, out, err = run("ompay", nodata)
    eq((rc, out), (1, ""), "OMPAY payload without data")
    check("no \"data\" object" in err, err)
    rc, out, err = run("ompay", notjson)
    eq((rc, out), (1, ""), "OMPAY payload that is not JSON")
    # Other providers sign the bytes as they are, with a warning.
    rc, out, err = run("omno", notjson)
    eq(rc, 0, "omno, not JSON")
    check("payhook will answer 400" in err, err)
    # What the request path refuses, sign warns about (OMPAY: refuses).
    for i, text in enumerate((
            b'{"status": "Success", "amount": NaN}',
            b'{"status": "Success", "amount": -Infinity}',
            b'{"status": "Success", "amount": -01}',
            b'{"status": "Success\t"}',
            b'{"status": "\xed\xa0\x80"}')):
        bad = ctx.write(ctx.path("bad%d.json" % i), text)
        rc, out, err = run("omno", bad)
        eq(rc, 0, "omno, not strict JSON #%d" % i)
        check("is not a strict JSON object" in err and
              "payhook will answer 400" in err, "#%d: %r" % (i, err))
    nan = ctx.write(ctx.path("nan.json"), b'{"eventType": "X", "data": '
                    b'{"orderId": "o", "paymentId": "p", "amount": NaN}}')
    rc, out, err = run("ompay", nan)
    eq((rc, out), (1, ""), "OMPAY payload with NaN")
    check("no \"data\" object" in err, err)
    rc, out, err = run("omno", good, "--url", "https://h.example/cgi-bin/"
                       "payhook/")
    eq(rc, 0, "omno sign")
    eq(out, "curl -sS -i \\\n"
            "  -H 'Content-Type: application/json' \\\n"
            "  -H 'Authorization: Bearer it-sign-token' \\\n"
            "  --data-binary @'%s' \\\n"
            "  'https://h.example/cgi-bin/payhook/omno'\n"
       % os.path.realpath(good), "the printed command")
    rc, out, err = run("--help")
    eq(rc, 0, "--help")
    check("keep its output private" in out, out)


# ---------------------------------------------------------------- Apache

def test_providers_omno_apache(ctx):
    """Apache hides the Authorization header from programs unless told to:
    the shipped examples pass it, so OMNO's basic and bearer routes work
    under mod_fcgid and in a cgi-bin."""
    import shutil
    from test_servers import APACHE_MODULES, REPO, Apache, example, need

    need("apache2")
    routes = [
        {"name": "omno-basic", "path": "/omno-basic", "provider": "omno",
         "auth": {"type": "basic", "user": "omno",
                  "password": "it-apache-pass"}},
        {"name": "omno-bearer", "path": "/omno-bearer", "provider": "omno",
         "auth": {"type": "bearer", "token": "it-apache-token"}}]
    ctx.secrets.update(["it-apache-pass", "it-apache-token"])
    cfg, spool, _state = ctx.config(routes=routes)
    good = {"omno-basic": basic("omno", "it-apache-pass"),
            "omno-bearer": "Bearer it-apache-token"}
    bad = {"omno-basic": basic("omno", "it-apache-bad"),
           "omno-bearer": "Bearer it-apache-bad"}

    cgibin = ctx.mkdir(ctx.path("cgi-bin"), 0o755)
    shutil.copy(ctx.payhook, os.path.join(cgibin, "payhook"))
    os.chmod(os.path.join(cgibin, "payhook"), 0o755)
    ctx.own(os.path.join(cgibin, "payhook"))
    ctx.write(os.path.join(cgibin, ".htaccess"), example(
        "apache/cgi-bin.htaccess",
        [("/home/USER/payhook/payhook.json", cfg)]), 0o644)
    setups = [("apache-cgi", "/cgi-bin/payhook", "\n".join([
        "ScriptAlias /cgi-bin/ %s/" % cgibin,
        "<Directory %s>" % cgibin,
        "    AllowOverride FileInfo",
        "    Options +ExecCGI",
        "    Require all granted",
        "</Directory>"]))]
    if os.path.exists(os.path.join(APACHE_MODULES, "mod_fcgid.so")):
        setups.append(("apache-fcgid", "/payhook", "\n".join([
            "Define PAYHOOK_BIN %s" % ctx.payhook,
            "Define PAYHOOK_CONFIG %s" % cfg,
            "Include \"%s\"" % os.path.join(REPO, "apache",
                                          "payhook-fcgid.conf")])))
    n = 0
    for tag, prefix, site in setups:
        srv = Apache(ctx, tag, site).start()
        for route in ("omno-basic", "omno-bearer"):
            body = with_id(fixture("omno", "example"), "example_id",
                           "%s-%s" % (tag, route))
            url = "%s/%s" % (prefix, route)
            check_error(srv.request("POST", url, body, dict(
                JSON_CT, Authorization=bad[route])), 401,
                "%s %s: wrong credentials" % (tag, route))
            ulid = accepted_id(srv.request("POST", url, body, dict(
                JSON_CT, Authorization=good[route])),
                "%s %s: accepted" % (tag, route))
            n += 1
            eq(event_by_key(spool, "%s:omno:%s-%s:Success"
                            % (route, tag, route))
               ["id"], ulid, "%s %s: event" % (tag, route))
        srv.stop()
    eq(len(spool.new()), n, "files in new/")
