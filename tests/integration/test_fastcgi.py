# test_fastcgi.py - payhook as a FastCGI responder behind lighttpd.
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# lighttpd maps the whole site to payhook:
#   fastcgi.server = ( "/" => (( "bin-path" => ..., "check-local" =>
#                                "disable", "fix-root-scriptname" => ... )))
# With fix-root-scriptname enabled (the default here) lighttpd 1.4.69 sends
# PATH_INFO=<the whole path>, an empty SCRIPT_NAME and REQUEST_URI=<path and
# query>. Disabled, it sends REQUEST_URI=/ngn, SCRIPT_NAME=/ngn and no
# PATH_INFO for a one-segment path, but splits /hooks/ngn into
# SCRIPT_NAME=/hooks PATH_INFO=/ngn (test_fcgi_routing covers both).

import os
import stat

from harness import (CUSTOMER_EMAIL, EXAMPLE, IS_ROOT, accept, accepted_id,
                     body_of, check, check_duplicate, check_error,
                     check_event_file, deep_body, eq, ngn_payload, now_ms,
                     padded_body, sign)


# ---------------------------------------------------------------- tests

def test_fcgi_accepted(ctx):
    cfg, spool, state = ctx.config()
    lt = ctx.lighttpd_fcgi(cfg)
    body = body_of(EXAMPLE)
    t0 = now_ms()
    r = lt.post(body)
    t1 = now_ms()
    ulid = accepted_id(r)
    eq(len(spool.new()), 1, "files in new/")
    ev = check_event_file(spool, ulid, {
        "schema": "payhook.event/2",
        "dedup_key": "ngn:ngn-gateway:payment.success:123456789",
        "route": "ngn",
        "provider": "ngn-gateway",
        "type": "payment.succeeded",
        "provider_event": "payment.success",
        "payment_id": "123456789",
        "order_id": None,
        "refund_id": None,
        "status": "success",
        "amount": {"value": "50.00", "minor": 5000, "currency": "NGN",
                   "exponent": 2},
        "occurred_at": None,
        "verified_by": "hmac-sha512",
        "raw": EXAMPLE,
    }, t0, t1)
    eq(ev["raw"]["data"]["customer"]["email"], CUSTOMER_EMAIL, "raw kept")
    eq(spool.tmp(), [], "tmp/ after delivery")
    for sub in ("tmp", "new", "cur", "done"):
        eq(oct(stat.S_IMODE(os.stat(spool.sub(sub)).st_mode)), oct(0o700),
           "mode of spool %s/" % sub)
    check(stat.S_IMODE(os.stat(spool.path).st_mode) & 0o077 == 0,
          "spool_dir must not be accessible to others")
    eq(oct(stat.S_IMODE(os.stat(state).st_mode)), oct(0o700),
       "state_dir mode")
    for root, dirs, files in os.walk(state):
        for n in files:
            p = os.path.join(root, n)
            eq(oct(stat.S_IMODE(os.lstat(p).st_mode)), oct(0o600),
               "mode of state file %s" % os.path.relpath(p, state))
        for n in dirs:
            p = os.path.join(root, n)
            check(stat.S_IMODE(os.lstat(p).st_mode) & 0o077 == 0,
                  "state subdirectory %s is open to others" % n)
    if IS_ROOT:
        st = os.stat(os.path.join(spool.sub("new"), spool.new()[0]))
        eq(st.st_uid, ctx.uid, "spool file owner (payhook's user)")
    eq(ctx.dedup_count(cfg), 1, "dedup count")
    entry = lt.wait_log(lambda e: e[2].get("id") == ulid)
    check(entry is not None, "no log line with id=%s in:\n%s"
          % (ulid, lt.stderr_text()[-2000:]))
    pid, level, kv, line = entry
    check(pid in lt.children(), "log line pid %d is not a payhook worker"
          % pid)
    eq(level, "info", "log level")
    eq(kv.get("route"), "ngn", "log route")
    eq(kv.get("outcome"), "accepted", "log outcome")
    eq(kv.get("status"), "200", "log status")
    eq(kv.get("key"), "ngn:ngn-gateway:payment.success:123456789",
       "log key")
    eq(kv.get("secret"), "0", "log secret position")
    check("ms" in kv, "log line has no elapsed time (ms=): %r" % line)


def test_fcgi_duplicate(ctx):
    cfg, spool, _state = ctx.config()
    lt = ctx.lighttpd_fcgi(cfg)
    body = body_of(EXAMPLE)
    ulid = accepted_id(lt.post(body), "first delivery")
    check_duplicate(lt.post(body), ulid, "second delivery")
    eq(len(spool.new()), 1, "files in new/")
    eq(ctx.dedup_count(cfg), 1, "dedup count")
    entry = lt.wait_log(lambda e: e[2].get("outcome") == "duplicate")
    check(entry is not None, "no log line with outcome=duplicate")
    eq(entry[2].get("id"), ulid, "duplicate log line id")
    # The record is durable: a new server (new processes) knows it too.
    lt.stop()
    lt2 = ctx.lighttpd_fcgi(cfg)
    check_duplicate(lt2.post(body), ulid, "delivery after a restart")
    eq(len(spool.new()), 1, "files in new/ after restart")
    eq(ctx.dedup_count(cfg), 1, "dedup count after restart")


def test_fcgi_bad_signature(ctx):
    cfg, spool, _state = ctx.config()
    lt = ctx.lighttpd_fcgi(cfg)
    body = body_of(EXAMPLE)
    check_error(lt.post(body, secret="whsk_wrong"), 401, "wrong secret")
    ctx.assert_untouched(cfg, spool, what="after a bad signature")
    # One flipped bit in the body: the signature no longer matches.
    tampered = body.replace(b"5000", b"5001")
    r = lt.request("POST", "/ngn", tampered,
                   {"Content-Type": "application/json",
                    "X-Signature": sign(body)})
    check_error(r, 401, "tampered body")
    ctx.assert_untouched(cfg, spool, what="after a tampered body")
    entry = lt.wait_log(lambda e: e[2].get("status") == "401")
    check(entry is not None, "no log line with status=401")
    ulid = accepted_id(lt.post(body), "correctly signed")
    eq(len(spool.new()), 1, "files in new/")
    check(ulid in spool.new()[0], "the spooled file is the accepted event")
    eq(ctx.dedup_count(cfg), 1, "dedup count")


def test_fcgi_signature_variants(ctx):
    cfg, spool, _state = ctx.config()
    lt = ctx.lighttpd_fcgi(cfg)
    body = body_of(ngn_payload("sig-1"))
    good = sign(body)
    cases = [
        ("missing header", None),
        ("empty header", ""),
        ("127 hex digits", good[:-1]),
        ("129 hex digits", good + "0"),
        ("non-hex of the right length", "g" * 128),
        ("sha512 truncated to 64", good[:64]),
        ("two signatures", good + "," + good),
    ]
    for what, sig in cases:
        r = lt.request("POST", "/ngn", body,
                       {k: v for k, v in (("Content-Type",
                                           "application/json"),
                                          ("X-Signature", sig))
                        if v is not None})
        check_error(r, 401, what)
        ctx.assert_untouched(cfg, spool, what="after " + what)
    # Hex is case-insensitive.
    r = lt.request("POST", "/ngn", body, {"Content-Type": "application/json",
                                          "X-Signature": good.upper()})
    accepted_id(r, "uppercase hex signature")
    # No algorithm configured: a 64-digit signature is HMAC-SHA256.
    accept(lt, ngn_payload("sig-2"), spool, "sha256 signature",
           algo="sha256", verified_by="hmac-sha256")
    eq(ctx.dedup_count(cfg), 2, "dedup count")


def test_fcgi_secret_rotation(ctx):
    secret_file = ctx.write(ctx.path("ngn.secret"), "whsk_file_3\n")
    env_secret = "whsk_env_2"
    ctx.secrets.update({env_secret, "whsk_file_3", "whsk_old_1"})
    cfg, spool, _state = ctx.config([ctx.route(secrets=[
        "whsk_old_1", "env:PH_IT_NGN_SECRET", "file:" + secret_file])])
    ctx.payhook_env["PH_IT_NGN_SECRET"] = env_secret
    lt = ctx.lighttpd_fcgi(cfg)
    for i, secret in enumerate(["whsk_old_1", env_secret, "whsk_file_3"]):
        ulid = accept(lt, ngn_payload("rot-%d" % i), spool,
                      "signed with secret #%d" % i, secret=secret)
        entry = lt.wait_log(lambda e: e[2].get("id") == ulid)
        check(entry is not None, "no log line for id %s" % ulid)
        eq(entry[2].get("secret"), str(i), "log: position of the secret")
    body = body_of(ngn_payload("rot-x"))
    check_error(lt.post(body, secret="whsk_file_3\n"), 401,
                "file secret with its newline (must be stripped)")
    check_error(lt.post(body, secret="whsk_unknown"), 401, "unknown secret")
    eq(ctx.dedup_count(cfg), 3, "dedup count")


def test_fcgi_route_options(ctx):
    """Configured header name and a fixed algorithm."""
    cfg, spool, _state = ctx.config([ctx.route(header="X-Ngn-Signature",
                                               algorithm="sha256")])
    lt = ctx.lighttpd_fcgi(cfg)
    body = body_of(ngn_payload("opt-1"))
    check_error(lt.request("POST", "/ngn", body, {
        "Content-Type": "application/json",
        "X-Signature": sign(body, algo="sha256")}), 401,
        "signature in the default header")
    check_error(lt.request("POST", "/ngn", body, {
        "Content-Type": "application/json",
        "X-Ngn-Signature": sign(body, algo="sha512")}), 401,
        "sha512 signature on a sha256 route")
    ctx.assert_untouched(cfg, spool)
    accept(lt, ngn_payload("opt-1"), spool, "configured header",
           headers={"X-Signature": None,
                    "X-Ngn-Signature": sign(body, algo="sha256")},
           verified_by="hmac-sha256")


def test_fcgi_rejections(ctx):
    cfg, spool, _state = ctx.config([ctx.route(max_body_bytes=1024)])
    lt = ctx.lighttpd_fcgi(cfg)
    body = body_of(ngn_payload("rej-1"))

    def signed(b, ctype="application/json"):
        h = {"X-Signature": sign(b)}
        if ctype is not None:
            h["Content-Type"] = ctype
        return h

    cases = [
        ("GET", lt.request("GET", "/ngn"), 405),
        ("PUT", lt.request("PUT", "/ngn", body, signed(body)), 405),
        ("unknown path", lt.request("POST", "/nope", body, signed(body)),
         404),
        ("trailing slash", lt.request("POST", "/ngn/", body, signed(body)),
         404),
        ("prefix of a route", lt.request("POST", "/ng", body, signed(body)),
         404),
        ("oversize 2048", lt.post(padded_body(2048, "rej-big")), 413),
        ("text/plain", lt.request("POST", "/ngn", body,
                                  signed(body, "text/plain")), 415),
        ("no Content-Type", lt.request("POST", "/ngn", body,
                                       signed(body, None)), 415),
    ]
    bad_json = [
        ("malformed JSON", b'{"event":"payment.success","data":{'),
        ("JSON array", body_of([ngn_payload("rej-arr")])),
        ("JSON string", b'"payment.success"'),
        ("nesting 33 deep", deep_body(33, "rej-deep")),
        ("trailing bytes", body + b" x"),
        ("two objects", body + body),
        ("invalid UTF-8", body.replace(b"John Doe", b"John \xff\xfe")),
        ("empty body", b""),
    ]
    for what, b in bad_json:
        cases.append((what, lt.post(b), 400))
    for what, r, status in cases:
        check_error(r, status, what)
        ctx.assert_untouched(cfg, spool, what="after " + what)
    # The same route accepts good requests, so the above were real checks.
    accept(lt, ngn_payload("rej-ok"), spool, "a good request")
    ulid = accepted_id(lt.post(deep_body(16, "rej-deep16")), "16 deep")
    check(any(ulid in n for n in spool.new()), "16-deep event spooled")
    eq(ctx.dedup_count(cfg), 2, "dedup count")


def test_fcgi_body_limits(ctx):
    cfg, spool, _state = ctx.config(
        [ctx.route(), ctx.route(name="big", path="/big",
                                max_body_bytes=4096)],
        max_body_bytes=1024)
    lt = ctx.lighttpd_fcgi(cfg)
    accepted_id(lt.post(padded_body(1024, "lim-1")), "exactly the limit")
    check_error(lt.post(padded_body(1025, "lim-2")), 413, "limit + 1")
    accepted_id(lt.post(padded_body(3000, "lim-3"), path="/big"),
                "3000 bytes on the 4096 route")
    check_error(lt.post(padded_body(4097, "lim-4"), path="/big"), 413,
                "4097 bytes on the 4096 route")
    ctx.assert_untouched(cfg, spool, count=2, new=2)


def test_fcgi_content_types(ctx):
    cfg, spool, _state = ctx.config([
        ctx.route(),
        ctx.route(name="lax", path="/lax", require_json_content_type=False),
    ])
    lt = ctx.lighttpd_fcgi(cfg)
    good = ["application/json; charset=utf-8", "APPLICATION/JSON",
            "application/json;charset=UTF-8", "application/problem+json",
            "application/vnd.ngn.event+json; v=1"]
    bad = ["text/json", "application/jsonp", "application/json-seq",
           "application/x-www-form-urlencoded", "json"]
    for i, ctype in enumerate(good):
        accept(lt, ngn_payload("ct-%d" % i), spool, ctype,
               headers={"Content-Type": ctype})
    for ctype in bad:
        b = body_of(ngn_payload("ct-bad"))
        check_error(lt.post(b, headers={"Content-Type": ctype}), 415, ctype)
    n = len(good)
    ctx.assert_untouched(cfg, spool, count=n, new=n)
    accept(lt, ngn_payload("ct-lax"), spool, "text/plain on a lax route",
           path="/lax", route="lax", headers={"Content-Type": "text/plain"})


def test_fcgi_routing(ctx):
    cfg, spool, _state = ctx.config([
        ctx.route(),
        ctx.route(name="ngn2", path="/hooks/ngn", secrets=["whsk_second"]),
    ])
    # fix-root-scriptname enabled (the harness default): PATH_INFO is the
    # whole path, so multi-segment route paths work.
    lt = ctx.lighttpd_fcgi(cfg)
    accept(lt, ngn_payload("rt-1"), spool, "query string ignored",
           path="/ngn?source=test&x=%2F")
    accept(lt, ngn_payload("rt-2"), spool, "second route",
           path="/hooks/ngn", secret="whsk_second", route="ngn2")
    check_error(lt.post(body_of(ngn_payload("rt-3")), path="/hooks/ngn"),
                401, "first route's secret on the second route")
    check_error(lt.post(body_of(ngn_payload("rt-3")), path="/other"), 404,
                "unknown path")
    lt.stop()
    # fix-root-scriptname disabled: lighttpd sends REQUEST_URI=/ngn and no
    # PATH_INFO for a one-segment path; payhook routes on REQUEST_URI.
    # (For /hooks/ngn it would send SCRIPT_NAME=/hooks PATH_INFO=/ngn:
    # multi-segment route paths need fix-root-scriptname.)
    lt2 = ctx.lighttpd_fcgi(cfg, fix_root=False)
    accept(lt2, ngn_payload("rt-4"), spool, "REQUEST_URI routing")
    accept(lt2, ngn_payload("rt-5"), spool, "REQUEST_URI with a query",
           path="/ngn?a=b")
    check_error(lt2.post(body_of(ngn_payload("rt-6")), path="/other"), 404,
                "REQUEST_URI, unknown path")
    eq(ctx.dedup_count(cfg), 4, "dedup count")


def test_fcgi_event_mapping(ctx):
    cfg, spool, _state = ctx.config([
        ctx.route(),
        ctx.route(name="major", path="/ngn-major", amount_unit="major"),
    ])
    lt = ctx.lighttpd_fcgi(cfg)
    no_txn = ngn_payload("x")
    del no_txn["data"]["transaction_id"]
    no_event = ngn_payload("map-noevent")
    del no_event["event"]
    no_amount = ngn_payload("map-noamount")
    del no_amount["data"]["amount"]
    no_status = ngn_payload("map-nostatus")
    del no_status["data"]["status"]
    numeric_txn = ngn_payload(987654321)
    cases = [
        ("payment.success", ngn_payload("map-1")),
        ("payment.failed", ngn_payload("map-2", "payment.failed",
                                       status="failed")),
        ("refund.processed", ngn_payload("map-3", "refund.processed",
                                         status="processed")),
        ("transfer.success", ngn_payload("map-4", "transfer.success")),
        ("subscription.renew", ngn_payload("map-5", "subscription.renew")),
        ("unclassified event", ngn_payload("map-6", "charge.disputed")),
        ("no transaction_id", no_txn),
        ("no event", no_event),
        ("no amount", no_amount),
        ("no status", no_status),
        ("numeric transaction_id", numeric_txn),
        ("amount 0", ngn_payload("map-zero", amount=0)),
    ]
    for what, payload in cases:
        accept(lt, payload, spool, what)
    accept(lt, ngn_payload("map-major"), spool, "major units",
           path="/ngn-major", route="major", unit="major")
    eq(ctx.dedup_count(cfg), len(cases) + 1, "dedup count")


def test_fcgi_misconfigured(ctx):
    route = ctx.route()
    del route["amount_unit"]
    cfg, spool, _state = ctx.config([route])
    lt = ctx.lighttpd_fcgi(cfg, procs=2)
    pids = lt.children()
    body = body_of(EXAMPLE)
    for i in range(3):
        check_error(lt.post(body), 500, "signed POST #%d" % i)
        check_error(lt.request("GET", "/ngn"), 500, "GET #%d" % i)
        check_error(lt.post(body, path="/nope"), 500, "unknown path #%d" % i)
    fault = lt.wait_log(lambda e: e[1] == "error"
                        and "amount_unit" in e[3])
    check(fault is not None, "no error line naming amount_unit in:\n%s"
          % lt.stderr_text()[-2000:])
    check("ngn" in fault[3], "the fault line does not name the route: %r"
          % fault[3])
    eq(lt.children(), pids, "payhook processes (no crash loop)")
    eq(spool.new(), [], "nothing spooled")


def test_fcgi_missing_config(ctx):
    missing = ctx.path("does-not-exist.json")
    broken, _spool, _state = ctx.config(raw='{"spool_dir": "/tmp", ',
                                        name="broken.json")
    for cfg, what in ((missing, "missing file"), (broken, "invalid JSON")):
        lt = ctx.lighttpd_fcgi(cfg)
        check_error(lt.post(body_of(EXAMPLE)), 500, what)
        line = lt.wait_log(lambda e: e[1] == "error" and cfg in e[3])
        check(line is not None, "%s: no error line naming %s in:\n%s"
              % (what, cfg, lt.stderr_text()[-2000:]))
        lt.stop()


def test_check_config(ctx):
    cfg, _spool, _state = ctx.config()
    p = ctx.run_payhook(["--check-config", "--config", cfg])
    out = (p.stdout + p.stderr).decode()
    eq(p.returncode, 0, "--check-config on a valid file (output %r)" % out)
    check(cfg + ": OK" in out, "no '%s: OK' in %r" % (cfg, out))
    # The environment variable is used when --config is absent.
    p = ctx.run_payhook(["--check-config"], env={"PAYHOOK_CONFIG": cfg})
    eq(p.returncode, 0, "--check-config via PAYHOOK_CONFIG")
    check(cfg + ": OK" in (p.stdout + p.stderr).decode(), "OK via env")

    no_unit = ctx.route()
    del no_unit["amount_unit"]
    no_auth = ctx.route(name="open", path="/open")
    del no_auth["secrets"]
    bad, _s, _st = ctx.config(
        [no_unit,
         ctx.route(name="other", path="/other", provider="nosuch"),
         no_auth],
        name="bad.json", spool_dir="relative/spool")
    p = ctx.run_payhook(["--check-config", "--config", bad])
    err = p.stderr.decode()
    eq(p.returncode, 1, "--check-config exit status on a bad file")
    lines = [ln for ln in err.splitlines() if ln.strip()]
    check(len(lines) >= 4, "expected a line per fault (4), got:\n" + err)
    for words in (("spool_dir",), ("ngn", "amount_unit"),
                  ("other", "provider"), ("open",)):
        check(any(all(w in ln for w in words) for ln in lines),
              "no fault line naming %s in:\n%s" % (" and ".join(words), err))
    check(": OK" not in (p.stdout.decode() + err), "a bad file is not OK")
