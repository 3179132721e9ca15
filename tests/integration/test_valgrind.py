# test_valgrind.py - valgrind must report no leaks in the request path.
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# payhook runs under memcheck for every kind of answer that takes a
# different path through the code: an accepted ngn-gateway delivery, its
# duplicate, 401 and 400 (a validly signed body that is not JSON), each
# of those two writing a quarantine entry, 413, 404, one accepted
# delivery for each of the other providers (credentials as in
# test_golden.py), a Standard Webhooks 401, a Stripe delivery with a
# stale timestamp (401) and a wrong signature for checkout and square,
# and the status page (200, 401, 405).
# Each is one CGI invocation under
#   valgrind --leak-check=full --show-leak-kinds=definite,indirect,possible
#            --errors-for-leak-kinds=definite,indirect,possible
#            --error-exitcode=99 --track-fds=no --log-file=LOG
# and must answer its exact status with "ERROR SUMMARY: 0 errors" in LOG
# and an exit status other than 99. Then payhook --listen with one worker
# runs under valgrind (--trace-children=yes, one log per process) behind
# lighttpd's "socket", serves 20 requests, is stopped with SIGTERM, and
# every process's log must show no error and no definite or indirect leak.
#
# valgrind is a required test dependency (scripts/deps installs it): when
# it is missing these tests fail. They are skipped for a sanitizer build,
# which valgrind cannot run. Select them with run.py --only valgrind.

import json
import os
import re
import shutil
import signal
import subprocess
import time

from harness import (EXAMPLE, as_test_user, body_of, check, eq,
                     Failure, kill_left, Lighttpd, ngn_headers, ngn_payload,
                     padded_body, pid_alive, proc_children, read_text, Skip)
from test_golden import credentials, fixture_path, fixture_routes, route_of

VALGRIND_EXIT = 99
VALGRIND_OPTS = [
    "--leak-check=full",
    "--show-leak-kinds=definite,indirect,possible",
    "--errors-for-leak-kinds=definite,indirect,possible",
    "--error-exitcode=%d" % VALGRIND_EXIT,
    "--track-fds=no",
]
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

ERROR_SUMMARY_RE = re.compile(r"^==(\d+)== ERROR SUMMARY: (\d+) errors? ",
                              re.M)
LOST_RE = re.compile(r"^==\d+==\s+(definitely|indirectly|possibly) lost: "
                     r"([\d,]+) bytes in ([\d,]+) blocks", re.M)
ACCEPTED_RE = re.compile(rb'^\{"status":"accepted","id":"([0-9A-Z]{26})"\}$')


# ---------------------------------------------------------------- helpers

def need_valgrind(ctx):
    """The valgrind binary; fails when it is missing, skips for a
    sanitizer build (valgrind cannot run those)."""
    path = shutil.which("valgrind", path=SYSTEM_PATH)
    if path is None:
        raise Failure("valgrind is not installed: it is a test dependency "
                      "(scripts/deps installs it)")
    with open(ctx.payhook, "rb") as f:
        image = f.read()
    if b"__asan_init" in image or b"__ubsan_handle" in image:
        raise Skip("%s is a sanitizer build; valgrind cannot run it"
                   % ctx.payhook)
    return path


def lost(log):
    """{"definitely": bytes, ...} from a leak summary (0 when absent, as
    after "All heap blocks were freed")."""
    out = {"definitely": 0, "indirectly": 0, "possibly": 0}
    for kind, nbytes, _blocks in LOST_RE.findall(log):
        out[kind] += int(nbytes.replace(",", ""))
    return out


def check_log(log, what, kinds=("definitely", "indirectly", "possibly")):
    """One process's valgrind log: it ran to the end, with 0 errors and
    no leak of the given kinds."""
    check("HEAP SUMMARY:" in log, "%s: valgrind log has no heap summary "
          "(the process did not exit through valgrind):\n%s"
          % (what, log[-3000:]))
    summaries = ERROR_SUMMARY_RE.findall(log)
    eq(len(summaries), 1, "%s: ERROR SUMMARY lines in the valgrind log "
       "(log:\n%s)" % (what, log[-3000:]))
    leaks = lost(log)
    for kind in kinds:
        check(leaks[kind] == 0, "%s: valgrind: %s lost %d bytes:\n%s"
              % (what, kind, leaks[kind], log[-8000:]))
    check(summaries[0][1] == "0", "%s: valgrind reported %s errors:\n%s"
          % (what, summaries[0][1], log[-8000:]))


class Valgrind:
    """Runs the test's CGI invocations under valgrind: ctx.cgi() through a
    generated wrapper script that execs valgrind with its own log file."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.binary = need_valgrind(ctx)
        self.runs = 0

    def cgi(self, what, config, status, **kw):
        """One CGI request under valgrind; checks the exact status and the
        valgrind log; returns the CgiResult."""
        ctx = self.ctx
        self.runs += 1
        log = ctx.path("vg-cgi-%02d.log" % self.runs)
        wrapper = ctx.write(
            ctx.path("vg-cgi-%02d.sh" % self.runs),
            "#!/bin/sh\nexec %s %s --log-file=%s %s \"$@\"\n"
            % (self.binary, " ".join(VALGRIND_OPTS), log, ctx.payhook),
            0o755)
        real = ctx.payhook
        ctx.payhook = wrapper
        try:
            r = ctx.cgi(config, **kw)
        finally:
            ctx.payhook = real
        text = read_text(log)
        check(text != "", "%s: valgrind wrote no log (exit %d, stderr %r)"
              % (what, r.rc, r.stderr[-1000:]))
        check(r.rc != VALGRIND_EXIT, "%s: valgrind exit status %d "
              "(errors found):\n%s" % (what, r.rc, text[-8000:]))
        check_log(text, what)
        eq(r.rc, 0, "%s: exit status (stderr %r)" % (what, r.stderr[-500:]))
        eq(r.status, status, "%s: status (stdout %r, stderr %r)"
           % (what, r.stdout[:300], r.stderr[-500:]))
        return r


def accepted(r, what):
    m = ACCEPTED_RE.match(r.body)
    check(m is not None, "%s: not an accepted answer: %r" % (what, r.body))
    return m.group(1).decode()


def fixture_delivery(ctx, provider, case):
    """(body, headers, env, path) of a valid delivery of a fixture."""
    route = route_of(provider, case)
    auth = route.get("auth", {})
    for key in ("password", "token", "value", "secret"):
        if isinstance(auth.get(key), str):
            ctx.secrets.add(auth[key])
    if isinstance(route.get("url_token"), str):
        ctx.secrets.add(route["url_token"])
    with open(fixture_path(provider, case), "rb") as f:
        body = f.read()
    body, headers, env = credentials(provider, body, case)
    return body, headers, env, route["path"]


# ---------------------------------------------------------------- CGI

def test_valgrind_cgi_ngn(ctx):
    vg = Valgrind(ctx)
    cfg, spool, _state = ctx.config([ctx.route(max_body_bytes=1024)])
    body = body_of(EXAMPLE)
    ulid = accepted(vg.cgi("accepted", cfg, 200, body=body,
                           headers=ngn_headers(body)), "accepted")
    eq(len(spool.new()), 1, "files in new/ after the accepted delivery")
    r = vg.cgi("duplicate", cfg, 200, body=body, headers=ngn_headers(body))
    eq(r.body, ('{"status":"duplicate","id":"%s"}' % ulid).encode(),
       "duplicate body")
    other = body_of(ngn_payload("vg-401"))
    r = vg.cgi("bad signature", cfg, 401, body=other,
               headers=ngn_headers(other, "whsk_wrong"))
    eq(r.body, b'{"error":"unauthorized"}', "401 body")
    bad = b'{"event":"payment.success","data":'
    r = vg.cgi("signed bad JSON", cfg, 400, body=bad, headers=ngn_headers(bad))
    eq(r.body, b'{"error":"bad request"}', "400 body")
    eq(len(os.listdir(spool.sub("quarantine"))), 2,
       "quarantine entries of the 401 and the 400")
    big = padded_body(2048, "vg-413")
    r = vg.cgi("oversize", cfg, 413, body=big, headers=ngn_headers(big))
    eq(r.body, b'{"error":"payload too large"}', "413 body")
    r = vg.cgi("no route", cfg, 404, body=other, headers=ngn_headers(other),
               path="/nope")
    eq(r.body, b'{"error":"not found"}', "404 body")
    eq(len(spool.new()), 1, "files in new/ at the end")
    eq(spool.tmp(), [], "files in tmp/ at the end")


def test_valgrind_cgi_transport(ctx):
    """The transport's answers: 403 (allowlist), accepted through a
    trusted proxy's X-Forwarded-For, 503 for a body cut short, HEAD."""
    vg = Valgrind(ctx)
    cfg, spool, _state = ctx.config(
        [ctx.route(allow_from=["192.0.2.0/24", "2001:db8::/32"])],
        trusted_proxies=["127.0.0.1"], read_timeout_seconds=5)
    body = body_of(ngn_payload("vg-transport"))
    r = vg.cgi("403", cfg, 403, body=body, headers=ngn_headers(body))
    eq(r.body, b'{"error":"forbidden"}', "403 body")
    xff = dict(ngn_headers(body), **{"X-Forwarded-For": "192.0.2.9"})
    accepted(vg.cgi("accepted via XFF", cfg, 200, body=body, headers=xff),
             "accepted via XFF")
    other = body_of(ngn_payload("vg-short"))
    r = vg.cgi("short body", cfg, 503, body=other, headers=dict(
        ngn_headers(other), **{"X-Forwarded-For": "192.0.2.9"}),
        env={"CONTENT_LENGTH": str(len(other) + 10)})
    eq(r.body, b'{"error":"service unavailable"}', "503 body")
    r = vg.cgi("HEAD", cfg, 405, method="HEAD")
    eq(r.body, b"", "HEAD body")
    eq(len(spool.new()), 1, "files in new/ at the end")
    eq(spool.tmp(), [], "files in tmp/ at the end")


def test_valgrind_cgi_status_page(ctx):
    """The status page (test_status.py): 200 with events, a dead letter
    and a ship status to show; 401; 405."""
    vg = Valgrind(ctx)
    token = "tok-vg-status-3e1"
    ctx.secrets.add(token)
    cfg, spool, state = ctx.config([ctx.route(), {
        "name": "page", "path": "/status", "provider": "status",
        "url_token": token}])
    body = body_of(EXAMPLE)
    accepted(ctx.cgi(cfg, body=body, headers=ngn_headers(body)), "event")
    failed = ctx.mkdir(spool.sub("failed"))
    name = "20261121T100000.123Z-01KAKYB6R0EEEEEEEEEEEEEEEE.json"
    ctx.write(os.path.join(failed, name), json.dumps(
        {"id": "01KAKYB6R0EEEEEEEEEEEEEEEE", "route": "ngn",
         "type": "payment.failed"}))
    ctx.write(os.path.join(failed, name + ".err.json"), json.dumps(
        {"attempts": [{"number": 1, "exit_status": None,
                       "signal": "SIGKILL", "timed_out": True}],
         "stderr_tail": "x\n" + "y" * 300}))
    ctx.write(os.path.join(state, "ship-status.json"), json.dumps(
        {"schema": "payhook.ship-status/1", "sent_total": 1,
         "duplicate_total": 0, "last_error": "nats: timeout"}))
    r = vg.cgi("status page", cfg, 200, method="GET", path="/status",
               env={"QUERY_STRING": "token=" + token})
    check(b"01KAKYB6R0EEEEEEEEEEEEEEEE" in r.body and
          b"nats: timeout" in r.body, "page body %r" % r.body[:300])
    vg.cgi("status page 401", cfg, 401, method="GET", path="/status")
    vg.cgi("status page 405", cfg, 405, body=body, path="/status")


def test_valgrind_cgi_providers(ctx):
    vg = Valgrind(ctx)
    cfg, spool, _state = ctx.config(routes=fixture_routes())
    cases = [("ompay", "transaction_completed", 204),
             ("omno", "example", 200),
             ("paymentoptions", "sale_success", 200),
             ("standard-webhooks", "invoice_paid", 200),
             ("stripe", "charge_refunded", 200),
             ("generic-hmac", "github_sponsorship_created", 200),
             ("generic-hmac", "shopify_orders_paid", 200),
             ("paystack", "charge_success", 200),
             ("razorpay", "order_paid", 200),
             ("checkout", "payment_capture_declined", 200),
             ("flutterwave", "charge_completed_card", 200),
             ("square", "payment_updated", 200)]
    for n, (provider, case, status) in enumerate(cases, 1):
        body, headers, env, path = fixture_delivery(ctx, provider, case)
        what = "%s/%s accepted" % (provider, case)
        r = vg.cgi(what, cfg, status, body=body, headers=headers, env=env,
                   path=path)
        if provider == "ompay":
            eq(r.body, b"", what + ": body")
        else:
            accepted(r, what)
        eq(len(spool.new()), n, "files in new/ after " + what)
    # Standard Webhooks' refusal path: a byte of the body changed.
    body, headers, env, path = fixture_delivery(ctx, "standard-webhooks",
                                                "invoice_paid")
    r = vg.cgi("standard-webhooks bad signature", cfg, 401,
               body=body.replace(b"1999", b"1998"), headers=headers,
               env=env, path=path)
    eq(r.body, b'{"error":"unauthorized"}', "standard-webhooks 401 body")
    # Refused: a Stripe signature from before the tolerance (the header
    # parsed, the time refused, logged).
    body, headers, env, path = fixture_delivery(ctx, "stripe",
                                                "charge_dispute_created")
    headers["Stripe-Signature"] = re.sub(
        r"^t=\d+", "t=%d" % (int(time.time()) - 3600),
        headers["Stripe-Signature"])
    vg.cgi("stripe stale timestamp", cfg, 401, body=body, headers=headers,
           env=env, path=path)
    # The adapters that compute a signature per secret on refusal too.
    for provider, case, header in (
            ("checkout", "payment_refunded", "Cko-Signature"),
            ("square", "refund_created", "x-square-hmacsha256-signature")):
        body, headers, env, path = fixture_delivery(ctx, provider, case)
        headers[header] = headers[header][:-2] + "00"
        what = "%s/%s wrong signature" % (provider, case)
        r = vg.cgi(what, cfg, 401, body=body, headers=headers, env=env,
                   path=path)
        eq(r.body, b'{"error":"unauthorized"}', what + ": body")
    eq(len(spool.new()), n, "files in new/ at the end")
    eq(spool.tmp(), [], "files in tmp/ at the end")


def test_valgrind_cgi_adyen(ctx):
    """Several events per request: a batch of three accepted, the same
    again (all duplicates), and a batch with one bad item (401)."""
    vg = Valgrind(ctx)
    cfg, spool, _state = ctx.config(routes=fixture_routes())
    body, headers, env, path = fixture_delivery(ctx, "adyen",
                                                "batch_of_three")
    for what, n in (("adyen batch accepted", 3), ("adyen batch again", 3)):
        r = vg.cgi(what, cfg, 200, body=body, headers=headers, env=env,
                   path=path)
        eq(r.body, b"[accepted]", what + ": body")
        eq(len(spool.new()), n, "files in new/ after " + what)
    doc = json.loads(body)
    doc["notificationItems"][1]["NotificationRequestItem"][
        "additionalData"]["hmacSignature"] = "A" * 43 + "="
    r = vg.cgi("adyen batch with a bad item", cfg, 401,
               body=json.dumps(doc).encode(), headers=headers, env=env,
               path=path)
    eq(r.body, b'{"error":"unauthorized"}', "401 body")
    eq(len(spool.new()), 3, "files in new/ at the end")
    eq(spool.tmp(), [], "files in tmp/ at the end")


# ---------------------------------------------------------------- FastCGI

def test_valgrind_fastcgi_listen(ctx):
    binary = need_valgrind(ctx)
    cfg, spool, _state = ctx.config()
    sock = ctx.path("payhook.sock")
    logs = ctx.path("vg")
    ctx.mkdir(logs)
    err_path = ctx.path("payhook-listen.stderr")
    # As TEST_USER from the start (no --user): the workers' valgrind logs,
    # opened after fork, must be writable by the process that opens them.
    argv = as_test_user(
        [binary] + VALGRIND_OPTS +
        ["--trace-children=yes",
         "--log-file=%s/vg-%%p.log" % logs,
         ctx.payhook, "--listen", "unix:" + sock, "--workers", "1",
         "--config", cfg])
    err = open(err_path, "wb")
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                stdout=err, stderr=err,
                                env={"PATH": SYSTEM_PATH})
    finally:
        err.close()
    supervisor = proc.pid               # setpriv execs valgrind
    workers = []

    def stop_started():
        """After a failure: kill what this test started, by PID."""
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        kill_left(workers)
    ctx.cleanups.append(stop_started)

    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise Failure("payhook --listen under valgrind exited with %s: "
                          "%s" % (proc.returncode,
                                  read_text(err_path)[-2000:]))
        workers[:] = proc_children(supervisor)
        if os.path.exists(sock) and workers:
            break
        time.sleep(0.1)
    else:
        raise Failure("payhook --listen under valgrind: no socket or no "
                      "worker after 30 s: %s" % read_text(err_path)[-2000:])
    eq(len(workers), 1, "workers of payhook --listen --workers 1")

    lt = Lighttpd(ctx, "lighttpd-vg", """server.modules += ("mod_fastcgi")
fastcgi.server = ( "/" => ((
    "socket" => "%s",
    "check-local" => "disable",
    "fix-root-scriptname" => "enable",
)))""" % sock, 0)
    ctx.lighttpds.append(lt)
    lt.start()

    ids = {}
    statuses = []
    for i in range(8):
        body = body_of(ngn_payload("vg-fcgi-%d" % i))
        r = lt.post(body, timeout=60)
        statuses.append(r.status)
        m = ACCEPTED_RE.match(r.body)
        check(m is not None, "delivery %d: not accepted: %r" % (i, r))
        ids[i] = m.group(1).decode()
    for i in range(8):
        body = body_of(ngn_payload("vg-fcgi-%d" % i))
        r = lt.post(body, timeout=60)
        statuses.append(r.status)
        eq(r.body, ('{"status":"duplicate","id":"%s"}' % ids[i]).encode(),
           "duplicate %d body" % i)
    for i in range(4):
        body = body_of(ngn_payload("vg-fcgi-bad-%d" % i))
        r = lt.post(body, secret="whsk_wrong", timeout=60)
        statuses.append(r.status)
        eq(r.body, b'{"error":"unauthorized"}', "401 %d body" % i)
    eq(statuses, [200] * 16 + [401] * 4, "statuses of the 20 requests")
    eq(len(spool.new()), 8, "files in new/")
    eq(len(os.listdir(spool.sub("quarantine"))), 4,
       "quarantine entries of the 401s")

    lt.stop()
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(60)
    except subprocess.TimeoutExpired:
        raise Failure("payhook --listen under valgrind did not stop within "
                      "60 s of SIGTERM")
    ctx.stderr_texts.append(read_text(err_path))
    for pid in workers:
        check(not pid_alive(pid), "worker %d outlived the supervisor" % pid)
    check(rc != VALGRIND_EXIT, "payhook --listen: valgrind exit status %d "
          "(errors found):\n%s" % (rc, read_text(
              os.path.join(logs, "vg-%d.log" % supervisor))[-8000:]))
    eq(rc, 0, "payhook --listen exit status after SIGTERM")

    names = sorted(os.listdir(logs))
    expect = ["vg-%d.log" % p for p in [supervisor] + workers]
    for name in expect:
        check(name in names, "no valgrind log %s among %r" % (name, names))
    for name in names:
        pid = name[3:-4]
        role = "supervisor" if pid == str(supervisor) else "worker " + pid
        check_log(read_text(os.path.join(logs, name)), "--listen " + role,
                  kinds=("definitely", "indirectly"))
