# test_status.py - "payhook status" and the status page.
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# Deliveries go through payhook as a CGI program (accepted, duplicate,
# rejected), then "payhook status --json" must show exactly those counts;
# a counter that cannot be written changes no answer.
# The status route's refusals leave spool, database, quarantine and
# counters alone. The page itself is served by a real lighttpd (FastCGI)
# and loaded by headless Chromium, once with the url_token and once with
# HTTP Basic credentials; Chromium must be installed (scripts/deps does):
# without it the test fails.

import base64
import json
import os
import re
import shutil
import signal
import subprocess

from harness import (EXAMPLE, Failure, body_of, check, eq, ngn_payload,
                     now_ms, rfc3339_ms)

TOKEN = "tok-status-7f3a9c"
PAGE_USER, PAGE_PASSWORD = "ops", "pw-status-51d2"
SHIP = {"schema": "payhook.ship-status/1",
        "updated_at": "2026-11-21T09:59:00.000Z", "sent_total": 41,
        "duplicate_total": 2, "last_sent_at": "2026-11-21T09:58:00.000Z",
        "last_error": None, "last_error_at": None}


def routes(ctx):
    ctx.secrets.update({TOKEN, PAGE_PASSWORD})
    return [ctx.route(),
            {"name": "page", "path": "/status", "provider": "status",
             "url_token": TOKEN},
            {"name": "page-basic", "path": "/status-basic",
             "provider": "status",
             "auth": {"type": "basic", "user": PAGE_USER,
                      "password": PAGE_PASSWORD}}]


def basic(user, password):
    return "Basic " + base64.b64encode(
        ("%s:%s" % (user, password)).encode()).decode()


def status(ctx, cfg, *args):
    p = ctx.run_payhook(["status", "--config", cfg] + list(args))
    eq(p.returncode, 0, "payhook status %s (stderr %r)"
       % (" ".join(args), p.stderr.decode()[-500:]))
    return p.stdout.decode()


def zero_counts():
    return {o: {"1h": 0, "24h": 0}
            for o in ("accepted", "duplicate", "rejected")}


def test_status_counts_deliveries(ctx):
    cfg, spool, _state = ctx.config(routes=routes(ctx))
    doc = json.loads(status(ctx, cfg, "--json"))
    eq(doc, {"spool": {"new": 0, "cur": 0, "done": 0, "failed": 0,
                       "oldest_new_age_seconds": None},
             "routes": {"ngn": zero_counts()},
             "last_storage_error": None}, "status before any delivery")

    body = body_of(EXAMPLE)
    t0 = now_ms()
    eq(ctx.cgi_post(cfg, body).status, 200, "accepted")
    eq(ctx.cgi_post(cfg, body).status, 200, "duplicate")
    eq(ctx.cgi_post(cfg, body, secret="wrong").status, 401, "bad signature")
    bad = b"{not json"
    eq(ctx.cgi_post(cfg, bad).status, 400, "unparseable body")
    # The page's requests are not deliveries: none of these counts.
    eq(ctx.cgi(cfg, method="GET", path="/status",
               env={"QUERY_STRING": "token=" + TOKEN}).status, 200,
       "page with the token")
    eq(ctx.cgi(cfg, method="GET", path="/status").status, 401,
       "page without the token")
    eq(ctx.cgi(cfg, body=body, path="/status").status, 405, "POST to page")

    doc = json.loads(status(ctx, cfg, "--json"))
    age = doc["spool"].pop("oldest_new_age_seconds")
    check(isinstance(age, int) and
          0 <= age <= (now_ms() - t0) // 1000 + 1,
          "oldest_new_age_seconds %r" % age)
    eq(doc, {"spool": {"new": 1, "cur": 0, "done": 0, "failed": 0},
             "routes": {"ngn": {"accepted": {"1h": 1, "24h": 1},
                                "duplicate": {"1h": 1, "24h": 1},
                                "rejected": {"1h": 2, "24h": 2}}},
             "last_storage_error": None}, "status --json after deliveries")

    # The configuration comes from PAYHOOK_CONFIG as for every command.
    p = ctx.run_payhook(["status", "--prometheus"],
                        env={"PAYHOOK_CONFIG": cfg})
    eq(p.returncode, 0, "status --prometheus via PAYHOOK_CONFIG")
    prom = p.stdout.decode()
    for line in ('payhook_spool_events{dir="new"} 1',
                 'payhook_deliveries{route="ngn",outcome="accepted",'
                 'window="24h"} 1',
                 'payhook_deliveries{route="ngn",outcome="rejected",'
                 'window="1h"} 2',
                 "# TYPE payhook_deliveries gauge"):
        check(line + "\n" in prom, "prometheus lacks %r:\n%s" % (line, prom))
    check("payhook_ship" not in prom, "no ship file, no ship metrics")
    text = status(ctx, cfg)
    check(re.search(r"^ngn +1/1 +1/1 +2/2$", text, re.M) is not None,
          "text table row for ngn:\n" + text)
    check(text.endswith("\nlast storage error: none\n"), "text:\n" + text)

    # ship-status.json, written by "payhook ship", adds a section.
    ctx.write(os.path.join(_state, "ship-status.json"), json.dumps(SHIP))
    doc = json.loads(status(ctx, cfg, "--json"))
    eq(doc["ship"], {k: v for k, v in SHIP.items() if k != "schema"},
       "ship member")
    check("\npayhook_ship_sent_total 41\n" in status(ctx, cfg,
                                                     "--prometheus"),
          "ship metrics")


def test_status_page_refusals_touch_nothing(ctx):
    cfg, spool, state = ctx.config(routes=routes(ctx))
    wrong = [
        ("POST", "/status", {"QUERY_STRING": "token=" + TOKEN}, {}, 405),
        ("PUT", "/status-basic", {},
         {"Authorization": basic(PAGE_USER, PAGE_PASSWORD)}, 405),
        ("GET", "/status", {}, {}, 401),
        ("GET", "/status", {"QUERY_STRING": "token=" + TOKEN[:-1]}, {}, 401),
        ("GET", "/status", {"QUERY_STRING": "token=" + TOKEN + "x"}, {},
         401),
        ("GET", "/status", {}, {"Authorization":
                                basic(PAGE_USER, PAGE_PASSWORD)}, 401),
        ("GET", "/status-basic", {}, {}, 401),
        ("GET", "/status-basic", {"QUERY_STRING": "token=" + TOKEN}, {},
         401),
        ("GET", "/status-basic", {},
         {"Authorization": basic(PAGE_USER, PAGE_PASSWORD + "x")}, 401),
        ("HEAD", "/status-basic", {}, {}, 401),
    ]
    body = body_of(EXAMPLE)
    for method, path, env, headers, want in wrong:
        what = "%s %s %r %r" % (method, path, env, sorted(headers))
        r = ctx.cgi(cfg, body=body if method in ("POST", "PUT") else b"",
                    method=method, path=path, env=env, headers=headers)
        eq(r.status, want, what)
        eq(r.headers.get("cache-control"), "no-store", what + ": no-store")
        if want == 405:
            eq(r.headers.get("allow"), "GET, HEAD", what + ": Allow")
        if want == 401:
            eq(r.headers.get("www-authenticate"),
               'Basic realm="payhook status", charset="UTF-8"'
               if path == "/status-basic" else None,
               what + ": WWW-Authenticate")
        if method == "HEAD":
            eq(r.body, b"", what + ": HEAD has no body")
    r = ctx.cgi(cfg, method="GET", path="/status-basic",
                headers={"Authorization": basic(PAGE_USER, PAGE_PASSWORD)})
    eq(r.status, 200, "page with Basic credentials")
    eq(r.headers.get("content-type"), "text/html; charset=utf-8", "type")
    eq(r.headers.get("cache-control"), "no-store", "page: no-store")
    check(r.body.startswith(b"<!DOCTYPE html>"), "page: %r" % r.body[:80])
    r = ctx.cgi(cfg, method="HEAD", path="/status",
                env={"QUERY_STRING": "token=" + TOKEN})
    eq((r.status, r.body), (200, b""), "HEAD with the token")
    # Nothing spooled, claimed, quarantined or counted.
    ctx.assert_untouched(cfg, spool, what="after requests to the page")
    eq(spool.list("quarantine"), [], "quarantine")
    doc = json.loads(status(ctx, cfg, "--json"))
    eq(doc["routes"], {"ngn": zero_counts()}, "counters")


def test_status_counter_failure_changes_no_answer(ctx):
    # stats/ is a file: no counter can be written. Deliveries are still
    # accepted and spooled; the log says why the counts are missing.
    cfg, spool, state = ctx.config()
    ctx.mkdir(state)
    ctx.write(os.path.join(state, "stats"), "not a directory")
    body = body_of(EXAMPLE)
    r = ctx.cgi_post(cfg, body)
    eq(r.status, 200, "accepted despite the counters (stderr %r)"
       % r.stderr[-500:])
    eq(len(spool.new()), 1, "the event is spooled")
    check("warning: status counters not updated (deliveries are not "
          "affected; said at most every 300 s): open(%s/stats/route-ngn) "
          "failed: Not a directory" % state in r.stderr,
          "counter warning in %r" % r.stderr)
    eq(ctx.cgi_post(cfg, body, secret="wrong").status, 401, "401")
    # The report cannot be made, and says why.
    p = ctx.run_payhook(["status", "--json", "--config", cfg])
    eq((p.returncode, p.stdout, p.stderr.decode()),
       (1, b"", "payhook: open(%s/stats/route-ngn) failed: Not a "
        "directory\n" % state), "status with unreadable counters")


def test_status_storage_error(ctx):
    # A spool whose parent is missing: every delivery answers 503, and
    # the reason is kept for "payhook status".
    missing = ctx.path("gone", "spool")
    cfg, _spool, _state = ctx.config(spool_dir=missing)
    t0 = now_ms()
    eq(ctx.cgi_post(cfg, body_of(EXAMPLE)).status, 503, "spool unavailable")
    doc = json.loads(status(ctx, cfg, "--json"))
    err = doc["last_storage_error"]
    check(err is not None and "mkdir(%s)" % missing in err["message"],
          "last_storage_error %r" % (err,))
    check(err["message"].startswith("storage unavailable: "),
          "message %r" % err["message"])
    at = err["at"]
    check(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", at),
          "at %r" % at)
    eq(doc["routes"]["ngn"], zero_counts(), "a 503 is not counted")
    eq(doc["spool"]["new"], 0, "new/ of a missing spool")
    check(rfc3339_ms(at) >= t0 - 1, "at %r is the time of the failure" % at)


def test_status_check_config_faults(ctx):
    cases = [
        ({"name": "page", "path": "/status", "provider": "status"},
         "route 'page' (#2): a status route needs \"auth\" (type "
         "\"basic\") or \"url_token\": the page is never open to anyone"),
        ({"name": "page", "path": "/status", "provider": "status",
          "auth": {"type": "bearer", "token": "x"}},
         "route 'page' (#2): key 'auth.type': must be \"basic\" for a "
         "status route"),
        ({"name": "page", "path": "/status", "provider": "status",
          "url_token": "t", "secrets": ["whsk-unused-2c9e"]},
         "route 'page' (#2): key 'secrets': not used by a status route"),
    ]
    for route, fault in cases:
        cfg, _spool, _state = ctx.config(routes=[ctx.route(), route])
        p = ctx.run_payhook(["--check-config", "--config", cfg])
        eq(p.returncode, 1, "--check-config exit for %r" % route)
        eq(p.stderr.decode(), "%s: %s\n" % (cfg, fault),
           "--check-config output for %r" % route)
        p = ctx.run_payhook(["status", "--config", cfg])
        eq(p.returncode, 1, "status refuses an invalid configuration")
    # "payhook sign" has nothing to sign for a page.
    cfg, _spool, _state = ctx.config(routes=routes(ctx))
    payload = ctx.write(ctx.path("payload.json"), body_of(EXAMPLE))
    p = ctx.run_payhook(["sign", "--config", cfg, "page", payload])
    eq((p.returncode, p.stdout, p.stderr.decode()),
       (1, b"", "payhook sign: route 'page' serves a page (\"status\"), "
        "it receives no deliveries\n"), "sign for a status route")


# -- the page in a browser

def chromium(ctx, url, *mode):
    """Run headless Chromium on url; returns its stdout. Every process it
    starts is in its own process group, killed at the end."""
    exe = shutil.which("chromium")
    if exe is None:
        raise Failure("chromium is not installed (scripts/deps installs "
                      "the Debian package chromium)")
    profile = ctx.path("chromium-profile")
    os.makedirs(profile, exist_ok=True)
    argv = [exe, "--headless", "--disable-gpu", "--no-first-run",
            "--no-default-browser-check", "--disable-extensions",
            "--user-data-dir=" + profile, "--window-size=412,1200"]
    if os.geteuid() == 0:
        argv.append("--no-sandbox")
    p = subprocess.Popen(argv + list(mode) + [url], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, start_new_session=True,
                         env={"PATH": os.environ.get("PATH", "/usr/bin"),
                              "HOME": profile})
    try:
        out, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        out, err = b"", b"timed out"
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)    # only what it started
        except ProcessLookupError:
            pass
        p.wait()
    check(p.returncode == 0, "chromium %s exited %s: %s"
          % (" ".join(mode), p.returncode, err.decode()[-1500:]))
    return out.decode("utf-8", "replace")


def page_text(dom):
    """The DOM's text with tags removed and white space folded."""
    text = re.sub(r"<[^>]*>", " ", dom)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace(
        "&amp;", "&")
    return re.sub(r"\s+", " ", text)


def test_status_page_in_chromium(ctx):
    cfg, spool, state = ctx.config(routes=routes(ctx))
    lt = ctx.lighttpd_fcgi(cfg)
    body = body_of(ngn_payload(txn="987654321"))
    r = lt.post(body)
    eq(r.status, 200, "delivery (%s)" % r.body[:200])
    event_id = r.json()["id"]
    # A dead letter as "payhook drain" leaves it, and a ship status.
    failed = ctx.mkdir(spool.sub("failed"))
    name = "20261121T100000.123Z-01KAKYB6R0EEEEEEEEEEEEEEEE.json"
    ctx.write(os.path.join(failed, name), json.dumps(
        {"id": "01KAKYB6R0EEEEEEEEEEEEEEEE", "route": "ngn",
         "type": "payment.failed", "raw": {"email": "x@example.com"}}))
    ctx.write(os.path.join(failed, name + ".err.json"), json.dumps(
        {"schema": "payhook.drain-error/1", "event_file": name,
         "event_id": "01KAKYB6R0EEEEEEEEEEEEEEEE", "route": "ngn",
         "type": "payment.failed",
         "attempts": [{"number": n, "exit_status": 3, "signal": None,
                       "timed_out": False} for n in (1, 2, 3)],
         "stderr_tail": "booting\nERROR <db> unreachable & sad\n"}))
    ctx.write(os.path.join(state, "ship-status.json"), json.dumps(SHIP))

    # No credentials: 401, with the Basic challenge on the auth route.
    r = lt.request("GET", "/status")
    eq(r.status, 401, "page without the token")
    r = lt.request("GET", "/status-basic")
    eq(r.status, 401, "page without credentials")
    eq(r.headers.get("www-authenticate"),
       'Basic realm="payhook status", charset="UTF-8"', "challenge")

    url = "http://127.0.0.1:%d/status?token=%s" % (lt.port, TOKEN)
    text = page_text(chromium(ctx, url, "--dump-dom"))
    for want in ("payhook status", "Spool", "new 1", "failed 1",
                 "ngn 1 / 1 0 / 0 0 / 0",
                 event_id + " ngn payment.succeeded 50.00 NGN",
                 "Dead letters",
                 "01KAKYB6R0EEEEEEEEEEEEEEEE ngn payment.failed 3 exit 3 "
                 "ERROR <db> unreachable & sad",
                 "sent_total 41", "Last storage error None."):
        check(want in text, "page text lacks %r:\n%s" % (want, text))
    for never in ("x@example.com", "customer@example.com", "raw"):
        check(never not in text, "page shows %r" % never)
    shot = ctx.path("status-page.png")
    chromium(ctx, url, "--screenshot=" + shot, "--hide-scrollbars")
    with open(shot, "rb") as f:
        check(f.read(8) == b"\x89PNG\r\n\x1a\n", "screenshot is a PNG")

    # Basic: Chromium takes the credentials from the URL for the page.
    url = "http://%s:%s@127.0.0.1:%d/status-basic" % (
        PAGE_USER, PAGE_PASSWORD, lt.port)
    text = page_text(chromium(ctx, url, "--dump-dom"))
    check(event_id in text and "Dead letters" in text,
          "page via Basic:\n" + text[:2000])
    # Still nothing counted but the one delivery.
    doc = json.loads(status(ctx, cfg, "--json"))
    eq(doc["routes"]["ngn"]["accepted"], {"1h": 1, "24h": 1}, "counted")
    eq(doc["spool"]["failed"], 1, "dead letters")
