# test_quarantine.py - requests refused after a route matched are kept.
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# Through lighttpd and a FastCGI payhook: a bad signature (401) and a body
# that is not JSON (400) each leave exactly one <spool>/quarantine/ entry
# with the exact fields, every credential redacted (the secret header's
# value never appears in the file), and nothing in new/ or the dedup
# database. The caps drop the oldest entries; quarantine_max_files 0 keeps
# nothing; an accepted delivery creates nothing. payhook quarantine
# list/show/purge print and remove what is there.

import base64
import json
import os
import re
import stat

from harness import (EXAMPLE, SECRET, ULID_RE, accept, body_of, check,
                     check_error, eq, now_ms, ngn_payload, rfc3339_ms, sign,
                     ulid_ms)

NAME_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})\.(\d{3})Z-"
                     r"([0-7][0-9A-HJKMNP-TV-Z]{25})\.json$")
ENTRY_KEYS = ["schema", "id", "received_at", "route", "provider", "reason",
              "status", "remote_addr", "method", "path", "query", "headers",
              "body_length", "body_truncated", "body_encoding", "body"]
WRONG_SIG = "ab" * 64          # a well-formed sha512 hex, not the right one


def qdir(spool):
    return spool.sub("quarantine")


def entries(spool):
    try:
        return sorted(os.listdir(qdir(spool)))
    except FileNotFoundError:
        return []


def read_entry(spool, name, t0, t1):
    """Parse one entry, checking its name, key order, modes and time."""
    m = NAME_RE.match(name)
    check(m is not None, "entry name %r is not <stamp>-<ULID>.json" % name)
    path = os.path.join(qdir(spool), name)
    eq(oct(stat.S_IMODE(os.stat(path).st_mode)), oct(0o600), "entry mode")
    eq(oct(stat.S_IMODE(os.stat(qdir(spool)).st_mode)), oct(0o700),
       "quarantine/ mode")
    with open(path, "rb") as f:
        raw = f.read()
    check(raw.endswith(b"}\n"), "entry ends with a newline")
    pairs = json.loads(raw.decode("utf-8"), object_pairs_hook=list)
    eq([k for k, _v in pairs], ENTRY_KEYS, "entry keys in order")
    e = json.loads(raw.decode("utf-8"))
    eq(e["id"], m.group(8), "id in the file name")
    check(ULID_RE.match(e["id"]), "id is a ULID")
    received = rfc3339_ms(e["received_at"])
    check(received is not None and t0 - 2 <= received <= t1 + 2,
          "received_at %r outside the request's window" % e["received_at"])
    eq("%s-%s-%sT%s:%s:%s.%sZ" % m.groups()[:7], e["received_at"],
       "stamp in the name vs received_at")
    check(t0 - 2 <= ulid_ms(e["id"]) <= t1 + 2, "id time")
    return raw, e


def base_headers(body, extra):
    """The headers lighttpd passes for http.client's request (Host and
    Accept-Encoding are http.client's own), by quarantine name."""
    h = {"accept-encoding": "identity", "content-length": str(len(body)),
         "content-type": "application/json"}
    h.update(extra)
    return h


def test_quarantine_bad_signature(ctx):
    cfg, spool, _state = ctx.config()
    lt = ctx.lighttpd_fcgi(cfg)
    body = body_of(EXAMPLE)
    t0 = now_ms()
    r = lt.post(body, path="/ngn?token=url-secret-1&x=1&api_key=k-2",
                secret="wrong-secret",
                headers={"Authorization": "Bearer auth-secret-3",
                         "Cookie": "session=cookie-secret-4",
                         "X-Api-Key": "key-secret-5",
                         "User-Agent": "ProviderBot/2.1"})
    t1 = now_ms()
    check_error(r, 401, "wrong signature")
    sig = sign(body, "wrong-secret")
    names = entries(spool)
    eq(len(names), 1, "quarantine entries")
    raw, e = read_entry(spool, names[0], t0, t1)
    headers = e.pop("headers")
    host = headers.pop("host")
    eq(host, "127.0.0.1:%d" % lt.port, "host header")
    eq(headers, base_headers(body, {
        "authorization": "[redacted]", "cookie": "[redacted]",
        "x-api-key": "[redacted]", "x-signature": "[redacted]",
        "user-agent": "ProviderBot/2.1"}), "headers")
    eq(e, {"schema": "payhook.quarantine/1", "id": e["id"],
           "received_at": e["received_at"], "route": "ngn",
           "provider": "ngn-gateway", "reason": "unauthorized",
           "status": 401, "remote_addr": "127.0.0.1", "method": "POST",
           "path": "/ngn",
           "query": "token=[redacted]&x=1&api_key=[redacted]",
           "body_length": len(body), "body_truncated": False,
           "body_encoding": "utf-8", "body": body.decode()}, "entry")
    for secret in (sig, "url-secret-1", "k-2", "auth-secret-3",
                   "cookie-secret-4", "key-secret-5", SECRET):
        check(secret.encode() not in raw,
              "%r appears in the quarantine entry" % secret[:12])
    ctx.assert_untouched(cfg, spool, what="after a 401")
    # The request's log line is unchanged; one line, no error.
    check("quarantine:" not in lt.stderr_text(),
          "no quarantine error logged: %s" % lt.stderr_text()[-500:])


def test_quarantine_adapter_header(ctx):
    """A credential header with an innocent name is redacted because the
    route's adapter names it."""
    cfg, spool, _state = ctx.config(routes=[ctx.route(header="X-Hub-Check")])
    lt = ctx.lighttpd_fcgi(cfg)
    body = body_of(EXAMPLE)
    r = lt.request("POST", "/ngn", body, {
        "Content-Type": "application/json", "X-Hub-Check": WRONG_SIG})
    check_error(r, 401, "wrong signature in X-Hub-Check")
    names = entries(spool)
    eq(len(names), 1, "quarantine entries")
    raw, e = read_entry(spool, names[0], 0, now_ms())
    eq(e["headers"]["x-hub-check"], "[redacted]", "x-hub-check")
    check(WRONG_SIG.encode() not in raw, "the header value is in the file")
    ctx.assert_untouched(cfg, spool)


def test_quarantine_not_json(ctx):
    cfg, spool, _state = ctx.config()
    lt = ctx.lighttpd_fcgi(cfg)
    body = b'{"event": "payment.success", "data": '
    t0 = now_ms()
    r = lt.post(body)
    t1 = now_ms()
    check_error(r, 400, "signed, not JSON")
    names = entries(spool)
    eq(len(names), 1, "quarantine entries")
    raw, e = read_entry(spool, names[0], t0, t1)
    eq((e["reason"], e["status"], e["body"], e["body_encoding"],
        e["body_length"], e["body_truncated"]),
       ("json", 400, body.decode(), "utf-8", len(body), False), "entry")
    eq(e["headers"]["x-signature"], "[redacted]", "signature header")
    check(sign(body).encode() not in raw, "the signature is in the file")
    ctx.assert_untouched(cfg, spool, what="after a 400")


def test_quarantine_binary_truncated(ctx):
    cfg, spool, _state = ctx.config()
    lt = ctx.lighttpd_fcgi(cfg)
    body = b"\xff\xfe" + bytes(range(256)) * 300        # 76802 bytes
    r = lt.post(body, secret="wrong-secret")
    check_error(r, 401, "binary body, wrong signature")
    names = entries(spool)
    eq(len(names), 1, "quarantine entries")
    _raw, e = read_entry(spool, names[0], 0, now_ms())
    eq((e["body_encoding"], e["body_length"], e["body_truncated"]),
       ("base64", len(body), True), "body form")
    eq(base64.b64decode(e["body"]), body[:65536], "the first 64 KiB")
    ctx.assert_untouched(cfg, spool)


def test_quarantine_caps_files(ctx):
    cfg, spool, _state = ctx.config(quarantine_max_files=3)
    lt = ctx.lighttpd_fcgi(cfg)
    sent = []
    for i in range(5):
        body = body_of(ngn_payload("77%d" % i))
        check_error(lt.post(body, secret="wrong"), 401, "bad #%d" % i)
        sent.append(body)
        eq(len(entries(spool)), min(i + 1, 3), "entries after #%d" % i)
    bodies = []
    for name in entries(spool):
        _raw, e = read_entry(spool, name, 0, now_ms())
        bodies.append(e["body"].encode())
    eq(bodies, sent[2:], "the three newest are kept, oldest first")
    ctx.assert_untouched(cfg, spool)


def test_quarantine_caps_bytes(ctx):
    cfg, spool, _state = ctx.config(quarantine_max_bytes=50000)
    lt = ctx.lighttpd_fcgi(cfg)
    sent = []
    for i in range(4):
        body = ("%d" % i).encode() * 20000          # about 20.7 kB an entry
        check_error(lt.post(body, secret="wrong"), 401, "bad #%d" % i)
        sent.append(body)
    names = entries(spool)
    total = sum(os.path.getsize(os.path.join(qdir(spool), n))
                for n in names)
    check(total <= 50000, "quarantine holds %d bytes, over the cap" % total)
    bodies = [read_entry(spool, n, 0, now_ms())[1]["body"].encode()
              for n in names]
    eq(bodies, sent[2:], "the two newest are kept")


def test_quarantine_disabled_and_success(ctx):
    cfg, spool, _state = ctx.config(quarantine_max_files=0)
    lt = ctx.lighttpd_fcgi(cfg)
    check_error(lt.post(body_of(EXAMPLE), secret="wrong"), 401, "bad")
    check(not os.path.exists(qdir(spool)), "no quarantine when disabled")
    cfg2, spool2, _ = ctx.config(name="on.json")
    lt2 = ctx.lighttpd_fcgi(cfg2)
    accept(lt2, EXAMPLE, spool2, "accepted")
    check(not os.path.exists(qdir(spool2)),
          "an accepted delivery creates no quarantine")


def test_quarantine_unsafe_dir_keeps_answer(ctx):
    cfg, spool, _state = ctx.config()
    lt = ctx.lighttpd_fcgi(cfg)
    check_error(lt.post(body_of(EXAMPLE), secret="wrong"), 401, "first")
    os.chmod(qdir(spool), 0o777)
    check_error(lt.post(body_of(EXAMPLE), secret="wrong"), 401,
                "quarantine refused: the answer is the same")
    eq(len(entries(spool)), 1, "nothing written into a 0777 quarantine")
    line = lt.wait_log(lambda e: e[1] == "error" and
                       ("quarantine: refusing %s:" % qdir(spool)) in e[3])
    check(line is not None, "a log line names the quarantine directory")
    os.chmod(qdir(spool), 0o700)
    accept(lt, EXAMPLE, spool, "the spool itself is fine")


def test_quarantine_commands(ctx):
    cfg, spool, _state = ctx.config()
    lt = ctx.lighttpd_fcgi(cfg)
    p = ctx.run_payhook(["quarantine", "list", "--config", cfg])
    eq((p.returncode, p.stdout), (0, b""), "list of nothing")
    check_error(lt.post(body_of(EXAMPLE), secret="wrong"), 401, "401")
    check_error(lt.post(b"[1,", secret=SECRET), 400, "400")
    names = entries(spool)
    eq(len(names), 2, "entries")
    es = [read_entry(spool, n, 0, now_ms()) for n in names]
    p = ctx.run_payhook(["quarantine", "list", "--config", cfg])
    eq(p.returncode, 0, "list rc")
    eq(p.stdout.decode(), "".join(
        "%s ngn 127.0.0.1 %s %s\n" % (e["received_at"], why, e["id"])
        for (_raw, e), why in zip(es, ("unauthorized", "json"))),
       "list output")
    p = ctx.run_payhook(["quarantine", "show", es[1][1]["id"]],
                        env={"PAYHOOK_CONFIG": cfg})
    eq((p.returncode, p.stdout), (0, es[1][0]), "show prints the entry")
    p = ctx.run_payhook(["quarantine", "show", "01ZZZZZZZZZZZZZZZZZZZZZZZZ",
                         "--config", cfg])
    eq(p.returncode, 1, "show of an unknown id")
    eq(p.stderr.decode(), "payhook: no quarantine entry "
       "01ZZZZZZZZZZZZZZZZZZZZZZZZ\n", "its message")
    p = ctx.run_payhook(["quarantine", "frobnicate", "--config", cfg])
    eq(p.returncode, 2, "unknown action")
    p = ctx.run_payhook(["quarantine", "purge", "--config", cfg])
    eq((p.returncode, p.stdout), (0, b"purged 2 quarantine entries\n"),
       "purge")
    eq(entries(spool), [], "entries after purge")
    p = ctx.run_payhook(["quarantine", "list", "--config", cfg])
    eq((p.returncode, p.stdout), (0, b""), "list after purge")
