# test_transport.py - how a request reaches payhook: signals while a body is
# read, bodies that end early or come too slowly (read_timeout_seconds),
# per-route IP allowlists behind trusted proxies, HEAD.
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# The FastCGI tests drive "payhook --listen unix:PATH" with the harness's
# own FastCGI client (harness.FcgiConn), so that the body can be sent in
# pieces, slowly, or short; the CGI tests run the binary directly
# with a pipe on stdin. The allowlist tests go through lighttpd, whose
# REMOTE_ADDR is 127.0.0.1.

import os
import signal
import subprocess
import time

from harness import (ERROR_BODIES, as_test_user, body_of, CgiResult,
                     check, check_error, eq, expected_ngn_event,
                     accepted_id, check_event_file, FcgiConn, fcgi_params,
                     ngn_headers, ngn_payload, now_ms, parse_log,
                     scan_sanitizer)
from test_servers import Standalone, wait_for


# ---------------------------------------------------------------- helpers

def signed(txn):
    body = body_of(ngn_payload(txn))
    return body, ngn_headers(body)["X-Signature"]


def check_answer_error(r, status, what):
    eq(r.status, status, what + ": status (stdout %r)" % r.stdout[:300])
    eq(r.body, ERROR_BODIES[status], what + ": body")
    eq(r.headers.get("content-type"), "application/json",
       what + ": Content-Type")
    if status == 503:
        eq(r.headers.get("retry-after"), "30", what + ": Retry-After")


def cgi_env(config, body_len, method="POST", remote="127.0.0.1", extra=None):
    e = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
         "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.1",
         "REQUEST_METHOD": method, "CONTENT_LENGTH": str(body_len),
         "CONTENT_TYPE": "application/json", "REMOTE_ADDR": remote,
         "QUERY_STRING": "", "SCRIPT_NAME": "/cgi-bin/payhook",
         "PATH_INFO": "/ngn", "REQUEST_URI": "/cgi-bin/payhook/ngn",
         "PAYHOOK_CONFIG": config}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if os.environ.get(k):
            e[k] = os.environ[k]
    e.update(extra or {})
    return e


class CgiProc:
    """payhook as a CGI program with a pipe on stdin we feed ourselves."""

    def __init__(self, ctx, env):
        self.ctx = ctx
        self.p = subprocess.Popen(as_test_user([ctx.payhook]), env=env,
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        ctx.cleanups.append(self.kill)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()

    def feed(self, data):
        try:
            self.p.stdin.write(data)
            self.p.stdin.flush()
            return True
        except BrokenPipeError:
            return False

    def finish(self, timeout=20):
        """Close stdin (communicate does) and collect the answer."""
        try:
            out, err = self.p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        err = err.decode("utf-8", "replace")
        check(scan_sanitizer(err) is None, "sanitizer report: " + err)
        self.ctx.stderr_texts.append(err)
        return CgiResult(self.p.returncode, out, err)


def listen(ctx, cfg, workers=1):
    sock = ctx.path("payhook.sock")
    return Standalone(ctx, "payhook-listen", cfg, "unix:" + sock,
                      workers=workers).start(), sock


# ------------------------------------------- signals while reading a body

def deliver_with_signal(ctx, ph, sock, spool, txn, sig, to_supervisor):
    """Half the body, then sig (to the worker, or to the supervisor, which
    forwards SIGHUP to the workers as SIGTERM), then the rest: the event
    must be accepted and spooled."""
    body, signature = signed(txn)
    worker = ph.worker_pids()[0]
    conn = FcgiConn(sock)
    t0 = now_ms()
    conn.begin(fcgi_params(body, signature=signature))
    half = len(body) // 2
    conn.send(body[:half])
    time.sleep(0.3)             # the worker is now blocked in the read
    os.kill(ph.proc.pid if to_supervisor else worker, sig)
    time.sleep(0.3)             # the signal has been delivered
    conn.send(body[half:])
    conn.end()
    r = conn.answer()
    t1 = now_ms()
    what = "%s to the %s mid-body" % (signal.Signals(sig).name,
                                      "supervisor" if to_supervisor
                                      else "worker")
    eq(r.status, 200, what + ": status (stdout %r)" % r.stdout[:300])

    class Answer:
        status, body = r.status, r.body
        headers = {"content-type": r.headers.get("content-type")}
    ulid = accepted_id(Answer, what)
    check_event_file(spool, ulid, expected_ngn_event(ngn_payload(txn), body),
                     t0, t1, what)
    # The worker took the signal after its answer: it exits, and a new
    # one replaces it.
    wait_for(lambda: worker not in ph.worker_pids() and
             len(ph.worker_pids()) == 1, 10, "the signalled worker replaced")


def test_signal_mid_body_never_4xx(ctx):
    cfg, spool, _state = ctx.config()
    ph, sock = listen(ctx, cfg)
    deliver_with_signal(ctx, ph, sock, spool, "sig-hup", signal.SIGHUP,
                        False)
    deliver_with_signal(ctx, ph, sock, spool, "sig-term", signal.SIGTERM,
                        False)
    deliver_with_signal(ctx, ph, sock, spool, "sig-int", signal.SIGINT,
                        False)
    deliver_with_signal(ctx, ph, sock, spool, "sig-reload", signal.SIGHUP,
                        True)
    eq(len(spool.new()), 4, "files in new/")
    eq(ctx.dedup_count(cfg), 4, "dedup records")
    ph.stop()
    eq(ph.stopped_rc, 0, "exit status after SIGTERM")


def test_cgi_signal_mid_body(ctx):
    cfg, spool, _state = ctx.config()
    body, signature = signed("cgi-sig")
    c = CgiProc(ctx, cgi_env(cfg, len(body),
                             extra={"HTTP_X_SIGNATURE": signature}))
    c.feed(body[:10])
    time.sleep(0.3)
    c.p.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    c.feed(body[10:])
    r = c.finish()
    eq(r.rc, 0, "exit status (stderr %r)" % r.stderr[-500:])
    eq(r.status, 200, "status after SIGTERM mid-body (%r)" % r.stdout[:300])
    eq(len(spool.new()), 1, "files in new/")


# ------------------------------------------------ bodies that end early

def test_short_body_is_503(ctx):
    cfg, spool, _state = ctx.config()
    ph, sock = listen(ctx, cfg)
    body, signature = signed("short-1")
    conn = FcgiConn(sock)
    conn.begin(fcgi_params(body, signature=signature))
    conn.send(body[:20])
    conn.end()                  # STDIN ends 20 bytes in
    r = conn.answer()
    check_answer_error(r, 503, "FastCGI body shorter than Content-Length")
    ctx.assert_untouched(cfg, spool, what="after a short FastCGI body")
    # The same request in full is then accepted: nothing held its key.
    conn = FcgiConn(sock)
    conn.begin(fcgi_params(body, signature=signature))
    conn.send(body)
    conn.end()
    eq(conn.answer().status, 200, "the full delivery after the short one")
    eq(len(spool.new()), 1, "files in new/")

    # CGI: stdin closed early.
    c = CgiProc(ctx, cgi_env(cfg, len(body) + 5,
                             extra={"HTTP_X_SIGNATURE": signature}))
    c.feed(body)
    r = c.finish()
    eq(r.rc, 0, "CGI exit status")
    check_answer_error(r, 503, "CGI body shorter than Content-Length")
    logs = parse_log(r.stderr)
    eq(logs[-1][2].get("outcome"), "failed", "log outcome")
    eq(logs[-1][2].get("detail"), "body-cut-short", "log detail")
    eq(len(spool.new()), 1, "files in new/ after the short CGI body")
    eq(ctx.dedup_count(cfg), 1, "dedup records")
    # A malformed Content-Length is the client's own framing: 400.
    c = CgiProc(ctx, cgi_env(cfg, "12x", extra={"HTTP_X_SIGNATURE":
                                               signature}))
    c.feed(body)
    check_answer_error(c.finish(), 400, "malformed Content-Length")
    ph.stop()


# ------------------------------------------------------- read timeout

def test_cgi_read_timeout(ctx):
    cfg, spool, _state = ctx.config(read_timeout_seconds=1)
    body, signature = signed("slow-cgi")
    c = CgiProc(ctx, cgi_env(cfg, len(body),
                             extra={"HTTP_X_SIGNATURE": signature}))
    t0 = time.monotonic()
    # One byte every 0.1 s: each read is quick, the whole is too slow.
    for b in body[:40]:
        if c.p.poll() is not None or not c.feed(bytes([b])):
            break
        time.sleep(0.1)
    r = c.finish(timeout=10)
    elapsed = time.monotonic() - t0
    eq(r.rc, 0, "exit status (stderr %r)" % r.stderr[-500:])
    check_answer_error(r, 408, "a CGI body trickled past the timeout")
    check(1.0 <= elapsed < 3.0, "answered after %.2f s, want 1-3 s"
          % elapsed)
    eq(parse_log(r.stderr)[-1][2].get("detail"), "read-timeout",
       "log detail")
    ctx.assert_untouched(cfg, spool, what="after a CGI read timeout")

    # A client that sends nothing at all.
    c = CgiProc(ctx, cgi_env(cfg, 100))
    t0 = time.monotonic()
    deadline = t0 + 5
    while c.p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    elapsed = time.monotonic() - t0
    r = c.finish(timeout=5)
    check_answer_error(r, 408, "a CGI client that sends no body")
    check(elapsed < 3.0, "exited after %.2f s" % elapsed)
    ctx.assert_untouched(cfg, spool, what="after a silent CGI client")


def test_fastcgi_read_timeout(ctx):
    cfg, spool, _state = ctx.config(read_timeout_seconds=1)
    ph, sock = listen(ctx, cfg)
    body, signature = signed("slow-fcgi")
    conn = FcgiConn(sock)
    conn.begin(fcgi_params(body, signature=signature))
    t0 = time.monotonic()
    for b in body[:40]:
        if not conn.send(bytes([b])) or conn.readable(0.1):
            break
    r = conn.answer()
    elapsed = time.monotonic() - t0
    check_answer_error(r, 408, "a FastCGI body trickled past the timeout")
    check(1.0 <= elapsed < 3.0, "answered after %.2f s, want 1-3 s"
          % elapsed)
    ctx.assert_untouched(cfg, spool, what="after a FastCGI read timeout")
    # The worker is free again and serves the next request.
    conn = FcgiConn(sock)
    conn.begin(fcgi_params(body, signature=signature))
    conn.send(body)
    conn.end()
    eq(conn.answer().status, 200, "the next delivery")
    eq(len(spool.new()), 1, "files in new/")
    ph.stop()
    eq(ph.stopped_rc, 0, "exit status after SIGTERM")


# ------------------------------------------------------ IP allowlists

def post_cgi(ctx, cfg, remote, xff=None, txn="acl"):
    body, signature = signed(txn)
    extra = {"HTTP_X_SIGNATURE": signature}
    if xff is not None:
        extra["HTTP_X_FORWARDED_FOR"] = xff
    c = CgiProc(ctx, cgi_env(cfg, len(body), remote=remote, extra=extra))
    c.feed(body)
    return c.finish()


def test_allow_from_lighttpd(ctx):
    route = ctx.route(allow_from=["192.0.2.0/24", "2001:db8::/32"])
    cfg, spool, _state = ctx.config(routes=[route])
    lt = ctx.lighttpd_fcgi(cfg)
    body, _sig = signed("acl-denied")
    r = lt.post(body)
    check_error(r, 403, "lighttpd's 127.0.0.1 not in allow_from")
    ctx.assert_untouched(cfg, spool, what="after a 403")
    # Forged X-Forwarded-For from an untrusted peer is ignored.
    r = lt.post(body, headers={"X-Forwarded-For": "192.0.2.7"})
    check_error(r, 403, "X-Forwarded-For from an untrusted peer")
    ctx.assert_untouched(cfg, spool, what="after a forged XFF")
    lt.stop()

    # The loopback network allowed.
    route = ctx.route(allow_from=["127.0.0.0/8"])
    cfg, spool, _state = ctx.config(routes=[route])
    lt = ctx.lighttpd_fcgi(cfg)
    ulid = accepted_id(lt.post(body), "127.0.0.1 in allow_from")
    eq(len([n for n in spool.new() if ulid in n]), 1, "spooled")
    lt.stop()

    # Behind a trusted proxy (lighttpd's peer, the test, is 127.0.0.1):
    # the right-most untrusted X-Forwarded-For address decides.
    route = ctx.route(allow_from=["198.51.100.0/24"])
    cfg, spool, _state = ctx.config(routes=[route],
                                    trusted_proxies=["127.0.0.1",
                                                     "10.0.0.0/8"])
    lt = ctx.lighttpd_fcgi(cfg)
    for i, (xff, status) in enumerate([
            ("198.51.100.7", 200),
            ("203.0.113.1, 198.51.100.8, 10.1.2.3", 200),
            ("198.51.100.9, 203.0.113.1", 403),
            ("203.0.113.1", 403),
            ("198.51.100.7:443", 403),
            ("unknown", 403),
            (None, 403)]):
        b, _s = signed("acl-xff-%d" % i)
        r = lt.post(b, headers={"X-Forwarded-For": xff})
        if status == 200:
            accepted_id(r, "XFF %r via a trusted proxy" % xff)
        else:
            check_error(r, 403, "XFF %r via a trusted proxy" % xff)
    # One from the loopback rule above, two here (one spool, one state).
    eq(len(spool.new()), 3, "files in new/")
    eq(ctx.dedup_count(cfg), 3, "dedup records")
    lt.stop()


def test_allow_from_before_body(ctx):
    """403 comes before the body is read: the client never sends it."""
    route = ctx.route(allow_from=["192.0.2.0/24"])
    cfg, spool, _state = ctx.config(routes=[route])
    c = CgiProc(ctx, cgi_env(cfg, 100, remote="203.0.113.5"))
    t0 = time.monotonic()
    while c.p.poll() is None and time.monotonic() - t0 < 5:
        time.sleep(0.02)
    r = c.finish(timeout=5)
    check_answer_error(r, 403, "a denied client that sent no body")
    check(time.monotonic() - t0 < 3, "answered without waiting for a body")
    # IPv4-mapped REMOTE_ADDR and IPv6 rules.
    check_answer_error(post_cgi(ctx, cfg, "::ffff:203.0.113.5"), 403,
                       "mapped address outside the rule")
    r = post_cgi(ctx, cfg, "::ffff:192.0.2.5", txn="acl-mapped")
    eq(r.status, 200, "mapped address inside the rule (%r)" % r.stdout)
    check_answer_error(post_cgi(ctx, cfg, "not-an-address"), 403,
                       "REMOTE_ADDR that is not an address")
    eq(len(spool.new()), 1, "files in new/")
    eq(ctx.dedup_count(cfg), 1, "dedup records")


def test_allow_from_check_config(ctx):
    route = ctx.route(allow_from=["192.0.2.7/24", "2001:db8::/129",
                                  "example.com"])
    cfg, _spool, _state = ctx.config(routes=[route],
                                     trusted_proxies=["10.0.0.256"],
                                     read_timeout_seconds=0)
    p = ctx.run_payhook(["--check-config", "--config", cfg])
    eq(p.returncode, 1, "--check-config exit status")
    err = p.stderr.decode()
    for line in [
            "route 'ngn' (#1): key 'allow_from': [0] '192.0.2.7/24': "
            "bits are set past the /24 prefix (write the network address)",
            "route 'ngn' (#1): key 'allow_from': [1] '2001:db8::/129': the "
            "prefix after '/' must be a number from 0 to 128",
            "route 'ngn' (#1): key 'allow_from': [2] 'example.com': not an "
            "IPv4 or IPv6 address",
            "key 'trusted_proxies': [0] '10.0.0.256': not an IPv4 or IPv6 "
            "address",
            "key 'read_timeout_seconds': must be an integer from 1 to 3600"]:
        check(line in err, "--check-config names %r; got %r" % (line, err))
    eq(len(err.strip().split("\n")), 5, "fault lines: %r" % err)


# ------------------------------------------------------------------ HEAD

def test_head_has_no_body(ctx):
    cfg, spool, _state = ctx.config()
    c = CgiProc(ctx, cgi_env(cfg, 0, method="HEAD"))
    r = c.finish()
    eq(r.rc, 0, "exit status")
    eq(r.stdout, b"Status: 405 Method Not Allowed\r\nAllow: POST\r\n"
       b"Content-Type: application/json\r\nContent-Length: 30\r\n\r\n",
       "the whole CGI answer to HEAD")
    lt = ctx.lighttpd_fcgi(cfg)
    r = lt.request("HEAD", "/ngn")
    eq(r.status, 405, "HEAD through lighttpd")
    eq(r.headers.get("allow"), "POST", "Allow")
    eq(r.body, b"", "body")
    # The connection is still usable: a POST after it works.
    body, _sig = signed("after-head")
    accepted_id(lt.post(body), "POST after HEAD")
    ctx.assert_untouched(cfg, spool, count=1, new=1, what="after HEAD")
