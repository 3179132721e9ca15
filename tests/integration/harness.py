# harness.py - integration test harness for payhook (Python 3 stdlib only).
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# Every test gets a Ctx: its own temporary directory, configuration files,
# lighttpd instances on free 127.0.0.1 ports and payhook invocations. The
# Ctx stops exactly the processes it started (by PID) and removes what it
# created, whatever the outcome of the test.
#
# When run as root, payhook runs as the unprivileged system user TEST_USER
# (lighttpd drops to it; CGI and command-line invocations go through
# setpriv), as in production, and so that permission faults are real: root
# ignores file modes.

import calendar
import errno
import hashlib
import hmac
import http.client
import json
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import tempfile
import time

TEST_USER = "payhook-test"
IS_ROOT = os.geteuid() == 0
# The unit test binary of the build under test (run.py sets it).
UNIT_BINARY = None
NATS_DUMP = None        # tests/nats/nats-dump of the build under test

# Crockford base32, 26 characters, the first one at most '7' (48-bit time).
ULID_RE = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")
SPOOL_NAME_RE = re.compile(
    r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})\.(\d{3})Z-"
    r"([0-7][0-9A-HJKMNP-TV-Z]{25})\.json$")
RFC3339_MS_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{3})Z$")
LOG_RE = re.compile(r"^payhook\[(\d+)\]: (error|warn|warning|info): (.*)$")

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:",
                     "LeakSanitizer")

EVENT_KEYS = ["schema", "id", "dedup_key", "route", "provider", "type",
              "provider_event", "payment_id", "order_id", "refund_id",
              "status", "amount", "occurred_at", "received_at",
              "verified_by", "raw"]

SECRET = "whsk_test_1"
CUSTOMER_EMAIL = "customer@example.com"

# The provider's documented example payload, compact, as bytes on the wire.
EXAMPLE = {
    "event": "payment.success",
    "data": {
        "transaction_id": "123456789",
        "amount": 5000,
        "currency": "NGN",
        "status": "success",
        "customer": {"email": CUSTOMER_EMAIL, "name": "John Doe"},
    },
}

ERROR_BODIES = {
    400: b'{"error":"bad request"}',
    401: b'{"error":"unauthorized"}',
    403: b'{"error":"forbidden"}',
    404: b'{"error":"not found"}',
    405: b'{"error":"method not allowed"}',
    408: b'{"error":"request timeout"}',
    411: b'{"error":"length required"}',
    413: b'{"error":"payload too large"}',
    415: b'{"error":"unsupported media type"}',
    500: b'{"error":"internal error"}',
    503: b'{"error":"service unavailable"}',
}

NGN_TYPES = {
    "payment.success": "payment.succeeded",
    "payment.failed": "payment.failed",
    "refund.processed": "refund.succeeded",
    "transfer.success": "transfer.succeeded",
    "subscription.renew": "subscription.renewed",
}


class Skip(Exception):
    """Raised by a test that cannot run here; the runner reports SKIP."""


class Failure(AssertionError):
    pass


# ---------------------------------------------------------------- checks

def read_text(path):
    """The file's text (undecodable bytes replaced), or "" if it is absent."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def eq(actual, expected, what):
    if actual != expected:
        raise Failure("%s: expected %r, got %r" % (what, expected, actual))


# ---------------------------------------------------------------- payloads

def body_of(obj):
    """Compact JSON bytes, as a provider would send them."""
    return json.dumps(obj, separators=(",", ":")).encode()


def ngn_payload(txn="123456789", event="payment.success", amount=5000,
                currency="NGN", status="success", **extra_data):
    data = {"transaction_id": txn, "amount": amount, "currency": currency,
            "status": status,
            "customer": {"email": CUSTOMER_EMAIL, "name": "John Doe"}}
    data.update(extra_data)
    return {"event": event, "data": data}


def sign(body, secret=SECRET, algo="sha512"):
    """Lowercase hex HMAC of the exact raw body."""
    if isinstance(secret, str):
        secret = secret.encode()
    return hmac.new(secret, body, getattr(hashlib, algo)).hexdigest()


def ngn_headers(body, secret=SECRET, algo="sha512", header="X-Signature",
                content_type="application/json"):
    h = {header: sign(body, secret, algo)}
    if content_type is not None:
        h["Content-Type"] = content_type
    return h


def money(minor, exponent=2, currency="NGN"):
    neg = minor < 0
    digits = str(abs(minor)).rjust(exponent + 1, "0")
    if exponent > 0:
        value = digits[:-exponent] + "." + digits[-exponent:]
    else:
        value = digits
    return {"value": ("-" if neg else "") + value, "minor": minor,
            "currency": currency, "exponent": exponent}


def key_part(v):
    """One part of a dedup key as payhook escapes it (README, "The
    event"): '%', ':', '#', bytes below 0x20 and 0x7f as %XX."""
    out = bytearray()
    for b in str(v).encode("utf-8"):
        if b in b"%:#" or b < 0x20 or b == 0x7f:
            out += b"%%%02X" % b
        else:
            out.append(b)
    return out.decode("utf-8")


def expected_ngn_event(payload, body, route="ngn", unit="minor",
                       verified_by="hmac-sha512"):
    """The normalized event payhook must write for an ngn-gateway payload,
    minus id and received_at."""
    data = payload.get("data") if isinstance(payload.get("data"),
                                             dict) else {}
    ev = payload.get("event")
    txn = data.get("transaction_id")
    if isinstance(ev, str) and ev and txn not in (None, ""):
        key = "%s:ngn-gateway:%s:%s" % (route, key_part(ev), key_part(txn))
    else:
        key = "%s:ngn-gateway:#sha256:%s" % (
            route, hashlib.sha256(body).hexdigest())
    amount = None
    if isinstance(data.get("amount"), int) and data.get("currency") == "NGN":
        minor = data["amount"] * (100 if unit == "major" else 1)
        amount = money(minor)
    return {
        "schema": "payhook.event/2",
        "dedup_key": key,
        "route": route,
        "provider": "ngn-gateway",
        "type": NGN_TYPES.get(ev, "unknown"),
        "provider_event": ev if isinstance(ev, str) and ev else None,
        "payment_id": str(txn) if txn not in (None, "") else None,
        "order_id": None,
        "refund_id": None,
        "status": data.get("status"),
        "amount": amount,
        "occurred_at": None,
        "verified_by": verified_by,
        "raw": payload,
    }


# ---------------------------------------------------------------- time

def ulid_ms(ulid):
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    n = 0
    for c in ulid[:10]:
        n = n * 32 + alphabet.index(c)
    return n


def rfc3339_ms(text):
    """Milliseconds since the epoch of "2026-11-21T10:00:00.123Z", or None."""
    m = RFC3339_MS_RE.match(text or "")
    if not m:
        return None
    y, mo, d, h, mi, s, ms = (int(x) for x in m.groups())
    secs = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
    return secs * 1000 + ms


def now_ms():
    return int(time.time() * 1000)


def note(msg):
    """A diagnostic line in the runner's output."""
    for line in str(msg).splitlines():
        print("# " + line, flush=True)


# ---------------------------------------------------------------- system

def ensure_test_user():
    """Create the unprivileged system user (root only, idempotent)."""
    if not IS_ROOT:
        return
    try:
        pwd.getpwnam(TEST_USER)
        return
    except KeyError:
        pass
    nologin = "/usr/sbin/nologin"
    if not os.path.exists(nologin):
        nologin = "/bin/false"
    subprocess.run(["useradd", "--system", "--no-create-home",
                    "--home-dir", "/nonexistent", "--shell", nologin,
                    "--user-group", TEST_USER], check=True)


def test_ids():
    if not IS_ROOT:
        return os.getuid(), os.getgid()
    pw = pwd.getpwnam(TEST_USER)
    return pw.pw_uid, pw.pw_gid


def as_test_user(argv):
    """argv prefixed so that it runs as the unprivileged test user."""
    if not IS_ROOT:
        return list(argv)
    return ["setpriv", "--reuid=" + TEST_USER, "--regid=" + TEST_USER,
            "--clear-groups"] + list(argv)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def proc_children(ppid, comm=None):
    """PIDs of live (non-zombie) processes whose parent is ppid."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        # comm may contain spaces and parentheses: split at the last ')'.
        rparen = stat.rfind(")")
        pcomm = stat[stat.find("(") + 1:rparen]
        fields = stat[rparen + 2:].split()
        if int(fields[1]) != ppid or fields[0] == "Z":
            continue
        if comm is not None and pcomm != comm:
            continue
        out.append(int(name))
    return sorted(out)


def pid_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].split()[0] != "Z"


def kill_left(pids, grace=0.0):
    """Give the processes pids (only ever ones this test started) up to
    grace seconds to exit, then SIGKILL those still alive. Returns the
    list of those it had to kill."""
    deadline = time.time() + grace
    while any(pid_alive(p) for p in pids) and time.time() < deadline:
        time.sleep(0.05)
    left = [p for p in pids if pid_alive(p)]
    for p in left:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return left


def scan_sanitizer(text):
    for marker in SANITIZER_MARKERS:
        if marker in text:
            return marker
    return None


def parse_log(text):
    """[(pid, level, {key: value}, line)] for payhook log lines."""
    out = []
    for line in text.splitlines():
        m = LOG_RE.match(line)
        if not m:
            continue
        kv = {}
        for tok in m.group(3).split():
            if "=" in tok:
                k, v = tok.split("=", 1)
                kv[k] = v
        out.append((int(m.group(1)), m.group(2), kv, line))
    return out


# ---------------------------------------------------------------- HTTP

class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers          # lower-case name -> value
        self.body = body

    def json(self):
        return json.loads(self.body.decode())

    def __repr__(self):
        return "<%d %r %r>" % (self.status, self.headers, self.body[:200])


def http_request(port, method, path, body=None, headers=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        hdrs = {k.lower(): v for k, v in r.getheaders()}
        return Response(r.status, hdrs, data)
    finally:
        conn.close()


def accepted_id(resp, what="answer"):
    """Check an exact accepted answer and return its id."""
    eq(resp.status, 200, what + " status (body %r)" % resp.body[:200])
    m = re.match(rb'^\{"status":"accepted","id":"([0-9A-Z]{26})"\}$',
                 resp.body)
    check(m is not None, "%s body is not an exact accepted answer: %r"
          % (what, resp.body))
    ulid = m.group(1).decode()
    check(ULID_RE.match(ulid), "%s id %r is not a ULID" % (what, ulid))
    ctype = resp.headers.get("content-type", "")
    eq(ctype.split(";")[0].strip(), "application/json", what + " Content-Type")
    return ulid


def check_duplicate(resp, ulid, what="answer"):
    eq(resp.status, 200, what + " status (body %r)" % resp.body[:200])
    eq(resp.body, ('{"status":"duplicate","id":"%s"}' % ulid).encode(),
       what + " body")


def check_error(resp, status, what="answer"):
    eq(resp.status, status, what + " status (body %r)" % resp.body[:200])
    eq(resp.body, ERROR_BODIES[status], what + " body")
    ctype = resp.headers.get("content-type", "")
    eq(ctype.split(";")[0].strip(), "application/json", what + " Content-Type")
    if status == 405:
        eq(resp.headers.get("allow"), "POST", what + " Allow header")
    if status == 503:
        eq(resp.headers.get("retry-after"), "30", what + " Retry-After")


# ---------------------------------------------------------------- events

def check_event_file(spool, ulid, expected, t0, t1, what="event"):
    """The one file in new/ for ulid is exactly the expected event."""
    names = [n for n in spool.new() if ulid in n]
    eq(len(names), 1, "files in new/ named with id %s" % ulid)
    name = names[0]
    m = SPOOL_NAME_RE.match(name)
    check(m is not None, "spool file name %r is not "
          "<YYYYMMDDTHHMMSS.mmmZ>-<ULID>.json" % name)
    eq(m.group(8), ulid, "id in the file name")
    data = spool.read(name)
    check(data.endswith(b"}\n"), "%s file must be one JSON object and "
          "a newline; ends with %r" % (what, data[-10:]))
    pairs = json.loads(data.decode("utf-8"), object_pairs_hook=list)
    eq([k for k, _v in pairs], EVENT_KEYS, what + " keys in order")
    ev = json.loads(data.decode("utf-8"))
    eq(ev["id"], ulid, what + " id")
    for key in EVENT_KEYS:
        if key in expected:
            eq(ev[key], expected[key], "%s field %s" % (what, key))
    check(isinstance(ev["received_at"], str), "received_at is a string")
    received = rfc3339_ms(ev["received_at"])
    check(received is not None, "received_at %r is not RFC 3339 UTC with "
          "milliseconds" % ev["received_at"])
    check(t0 - 2 <= received <= t1 + 2, "received_at %s is outside the "
          "request's time window" % ev["received_at"])
    stamp = "%s-%s-%sT%s:%s:%s.%sZ" % m.groups()[:7]
    eq(stamp, ev["received_at"], "file name time stamp vs received_at")
    check(t0 - 2 <= ulid_ms(ulid) <= t1 + 2,
          "the id's time component is outside the request's time window")
    mode = stat.S_IMODE(os.stat(os.path.join(spool.sub("new"), name))
                        .st_mode)
    eq(oct(mode), oct(0o600), what + " file mode")
    return ev


def padded_body(size, txn, **kw):
    """A signed-able ngn payload of exactly size bytes."""
    base = body_of(ngn_payload(txn, pad="", **kw))
    check(size >= len(base), "padded_body: %d is too small" % size)
    body = body_of(ngn_payload(txn, pad="x" * (size - len(base)), **kw))
    eq(len(body), size, "padded body length")
    return body


def deep_body(depth, txn):
    """An ngn payload whose total nesting depth is depth (top object = 1,
    data = 2, then arrays)."""
    inner = "[" * (depth - 2) + "]" * (depth - 2)
    return ('{"event":"payment.success","data":{"transaction_id":"%s",'
            '"amount":100,"currency":"NGN","status":"success","x":%s}}'
            % (txn, inner)).encode()


def accept(lt, payload, spool, what, path="/ngn", secret=SECRET,
           algo="sha512", headers=None, **expect_kw):
    """POST payload; it must be accepted and spooled exactly as expected."""
    body = body_of(payload)
    t0 = now_ms()
    r = lt.post(body, path=path, secret=secret, algo=algo, headers=headers)
    t1 = now_ms()
    ulid = accepted_id(r, what)
    check_event_file(spool, ulid, expected_ngn_event(payload, body,
                                                     **expect_kw),
                     t0, t1, what)
    return ulid


# ---------------------------------------------------------------- spool

class Spool:
    def __init__(self, path):
        self.path = path

    def sub(self, name):
        return os.path.join(self.path, name)

    def list(self, name):
        try:
            return sorted(os.listdir(self.sub(name)))
        except FileNotFoundError:
            return []

    def new(self):
        return self.list("new")

    def tmp(self):
        return self.list("tmp")

    def read(self, name, sub="new"):
        with open(os.path.join(self.sub(sub), name), "rb") as f:
            return f.read()

    def events(self):
        """[(file name, raw bytes, parsed event or None)] from new/."""
        out = []
        for name in self.new():
            data = self.read(name)
            try:
                ev = json.loads(data.decode())
            except ValueError:
                ev = None
            out.append((name, data, ev))
        return out


class CgiResult:
    def __init__(self, rc, stdout, stderr):
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.status = None
        self.headers = {}
        self.header_lines = []
        self.body = b""
        head, sep, body = stdout.partition(b"\r\n\r\n")
        if not sep:
            return
        self.body = body
        for line in head.split(b"\r\n"):
            name, _, value = line.decode("latin-1").partition(":")
            self.header_lines.append((name, value.strip()))
            self.headers[name.lower()] = value.strip()
        st = self.headers.get("status", "")
        if st[:3].isdigit():
            self.status = int(st[:3])

    def json(self):
        return json.loads(self.body.decode())


# ---------------------------------------------------------------- FastCGI
#
# A FastCGI client of the tests' own (records written by hand), so that a
# body can be sent whole, in pieces, slowly or short. Every request is
# request id 1, role responder, without keep-alive: payhook answers and
# closes the connection.

FCGI_BEGIN_REQUEST, FCGI_END_REQUEST, FCGI_PARAMS, FCGI_STDIN = 1, 3, 4, 5
FCGI_STDOUT, FCGI_STDERR = 6, 7


def fcgi_record(rtype, content, request_id=1):
    pad = (8 - len(content) % 8) % 8
    return (struct.pack("!BBHHBx", 1, rtype, request_id, len(content), pad)
            + content + b"\0" * pad)


def fcgi_pairs(params):
    out = b""
    for k, v in params.items():
        k, v = k.encode(), v.encode()
        for n in (len(k), len(v)):
            out += (struct.pack("!B", n) if n < 128
                    else struct.pack("!I", n | 0x80000000))
        out += k + v
    return out


def fcgi_begin(params):
    """FCGI_BEGIN_REQUEST and the whole FCGI_PARAMS stream of params."""
    data = fcgi_record(FCGI_BEGIN_REQUEST, struct.pack("!HB5x", 1, 0))
    pairs = fcgi_pairs(params)
    for i in range(0, len(pairs), 65535):
        data += fcgi_record(FCGI_PARAMS, pairs[i:i + 65535])
    return data + fcgi_record(FCGI_PARAMS, b"")


def fcgi_params(body, path="/ngn", signature=None):
    p = {"GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": "POST",
         "SCRIPT_NAME": "/payhook", "PATH_INFO": path,
         "REQUEST_URI": "/payhook" + path, "QUERY_STRING": "",
         "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
         "CONTENT_TYPE": "application/json",
         "CONTENT_LENGTH": str(len(body))}
    if signature is not None:
        p["HTTP_X_SIGNATURE"] = signature
    return p


class FcgiConn:
    """One FastCGI request to addr (a unix socket path or a (host, port)
    pair), sent in steps: begin() sends the parameters, send() body bytes
    as one FCGI_STDIN record, end() the empty FCGI_STDIN record that ends
    the body; receive() and answer() read until the connection closes.
    timeout bounds the connect and each send and read."""

    def __init__(self, addr, timeout=20):
        family = socket.AF_UNIX if isinstance(addr, str) else socket.AF_INET
        self.addr = addr
        self.timeout = timeout
        self.s = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.s.settimeout(timeout)
            self.s.connect(addr)
        except BaseException:
            self.s.close()
            raise

    def close(self):
        self.s.close()

    def write(self, data):
        """Send raw bytes; False when payhook has answered (or gone) and
        closed the connection before reading them all."""
        try:
            self.s.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            return False

    def begin(self, params):
        self.s.sendall(fcgi_begin(params))

    def send(self, data):
        return self.write(fcgi_record(FCGI_STDIN, data))

    def end(self):
        return self.send(b"")

    def receive(self, deadline=None):
        """Read until payhook closes the connection (a reset counts as
        the close) and close it; returns (STDOUT bytes, STDERR bytes,
        whether FCGI_END_REQUEST came). With deadline (a time.time()
        value) each read waits only until then: socket.timeout past it."""
        buf = b""
        try:
            while True:
                if deadline is not None:
                    self.s.settimeout(max(0.01, deadline - time.time()))
                try:
                    chunk = self.s.recv(65536)
                except ConnectionResetError:
                    chunk = b""
                if not chunk:
                    break
                buf += chunk
        finally:
            self.s.close()
        out, err, ended = b"", b"", False
        while len(buf) >= 8:
            _v, rtype, _rid, clen, plen = struct.unpack("!BBHHBx", buf[:8])
            content = buf[8:8 + clen]
            buf = buf[8 + clen + plen:]
            if rtype == FCGI_STDOUT:
                out += content
            elif rtype == FCGI_STDERR:
                err += content
            elif rtype == FCGI_END_REQUEST:
                ended = True
        return out, err, ended

    def answer(self):
        """The answer as a CgiResult of the STDOUT stream; the request
        must have ended with FCGI_END_REQUEST."""
        out, err, ended = self.receive()
        check(ended, "no FCGI_END_REQUEST from %r" % (self.addr,))
        return CgiResult(0, out, err.decode("utf-8", "replace"))

    def readable(self, timeout):
        """Has the server answered (or closed) within timeout seconds?"""
        self.s.settimeout(timeout)
        try:
            self.s.recv(1, socket.MSG_PEEK)     # data, or b"" at close
            return True
        except socket.timeout:
            return False
        finally:
            self.s.settimeout(self.timeout)


def fcgi_request(addr, params, body=b"", timeout=20):
    """One FastCGI responder request to addr (a unix socket path or a
    (host, port) pair); returns a CgiResult of the STDOUT stream."""
    conn = FcgiConn(addr, timeout)
    try:
        data = fcgi_begin(params)
        for i in range(0, len(body), 65535):
            data += fcgi_record(FCGI_STDIN, body[i:i + 65535])
        conn.write(data + fcgi_record(FCGI_STDIN, b""))
        return conn.answer()
    finally:
        conn.close()


# ---------------------------------------------------------------- lighttpd

class Lighttpd:
    """A private lighttpd in the foreground (-D) on 127.0.0.1:port."""

    def __init__(self, ctx, name, conf_body, procs):
        self.ctx = ctx
        self.name = name
        self.conf_body = conf_body
        self.procs = procs
        self.port = None
        self.proc = None
        self.conf = ctx.path(name + ".conf")
        self.errorlog = ctx.path(name + "-error.log")
        # lighttpd -D leaves its stderr to the FastCGI children: this file
        # is payhook's stderr.
        self.stderr_path = ctx.path(name + "-stderr.log")

    @property
    def pid(self):
        return self.proc.pid

    def _write_conf(self):
        lines = [
            'server.port = %d' % self.port,
            'server.bind = "127.0.0.1"',
            'server.document-root = "%s"' % self.ctx.path("htdocs"),
            'server.errorlog = "%s"' % self.errorlog,
            'server.pid-file = "%s"' % self.ctx.path(self.name + ".pid"),
            'server.tag = "payhook-it"',
        ]
        if IS_ROOT:
            lines += ['server.username = "%s"' % TEST_USER,
                      'server.groupname = "%s"' % TEST_USER]
        lines.append(self.conf_body)
        self.ctx.write(self.conf, "\n".join(lines) + "\n")
        os.makedirs(self.ctx.path("htdocs"), exist_ok=True)
        self.ctx.own(self.ctx.path("htdocs"))

    def start(self, port=None):
        last = None
        for _attempt in range(5):
            self.port = port or free_port()
            self._write_conf()
            err = open(self.stderr_path, "ab")
            try:
                self.proc = subprocess.Popen(
                    ["lighttpd", "-D", "-f", self.conf],
                    stdin=subprocess.DEVNULL, stdout=err, stderr=err)
            finally:
                err.close()
            self.ctx.started.append(self)
            try:
                self._wait_ready()
                return self
            except Failure as e:
                last = e
                self.stop()
                if port is not None:
                    break
        raise last

    def _wait_ready(self):
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise Failure("lighttpd exited with %s: %s" % (
                    self.proc.returncode, self.logs()[-2000:]))
            try:
                socket.create_connection(("127.0.0.1", self.port),
                                         timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            raise Failure("lighttpd did not listen on %d" % self.port)
        if self.procs:
            while time.time() < deadline:
                if len(self.children()) >= self.procs:
                    return
                time.sleep(0.05)
            raise Failure("lighttpd started %d of %d payhook processes: %s"
                          % (len(self.children()), self.procs,
                             self.logs()[-2000:]))

    def children(self):
        if self.proc is None or self.proc.poll() is not None:
            return []
        return proc_children(self.proc.pid, "payhook")

    def stop(self, timeout=10):
        if self.proc is None:
            return
        kids = proc_children(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # lighttpd stops the FastCGI children it spawned; make sure of it,
        # touching only the processes it had started for us.
        kill_left(kids, grace=5)
        if self in self.ctx.started:
            self.ctx.started.remove(self)

    def stderr_text(self):
        return read_text(self.stderr_path)

    def logs(self):
        """payhook's stderr plus lighttpd's own error log."""
        return self.stderr_text() + read_text(self.errorlog)

    def request(self, method, path, body=None, headers=None, timeout=30):
        return http_request(self.port, method, path, body, headers, timeout)

    def post(self, body, path="/ngn", secret=SECRET, algo="sha512",
             headers=None, timeout=30):
        h = ngn_headers(body, secret, algo)
        if headers:
            h.update(headers)
        h = {k: v for k, v in h.items() if v is not None}
        return self.request("POST", path, body, h, timeout)

    def wait_log(self, pred, timeout=3.0):
        """The first parsed log entry satisfying pred, waiting a little for
        the line to be written after the answer."""
        deadline = time.time() + timeout
        while True:
            for entry in parse_log(self.stderr_text()):
                if pred(entry):
                    return entry
            if time.time() >= deadline:
                return None
            time.sleep(0.05)


# ---------------------------------------------------------------- context

class Ctx:
    def __init__(self, payhook, name, keep=False, verbose=False):
        self.payhook = payhook
        self.name = name
        self.keep = keep
        self.verbose = verbose
        self.started = []           # Lighttpd instances still running
        self.cleanups = []          # callables, run last-in first-out
        self.secrets = set()        # values that must never be logged
        self.stderr_texts = []      # captured payhook stderr, for scans
        self.lighttpds = []
        self.payhook_env = {}       # extra environment for every payhook
        self.uid, self.gid = test_ids()
        self.dir = tempfile.mkdtemp(prefix="ph-it-%s-" % name[:12])
        os.chmod(self.dir, 0o700)
        self.own(self.dir)

    # -- files

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def own(self, path, recursive=False):
        """Give path to the user payhook runs as."""
        if not IS_ROOT:
            return
        os.chown(path, self.uid, self.gid)
        if recursive:
            for root, dirs, files in os.walk(path):
                for n in dirs + files:
                    os.lchown(os.path.join(root, n), self.uid, self.gid)

    def write(self, path, data, mode=0o600):
        if isinstance(data, str):
            data = data.encode()
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)
        self.own(path)
        return path

    def mkdir(self, path, mode=0o700):
        os.mkdir(path, mode)
        os.chmod(path, mode)
        self.own(path)
        return path

    def log(self, msg):
        note(msg)

    # -- configuration

    def route(self, **kw):
        r = {"name": "ngn", "path": "/ngn", "provider": "ngn-gateway",
             "secrets": [SECRET], "amount_unit": "minor"}
        r.update(kw)
        return {k: v for k, v in r.items() if v is not None}

    def config(self, routes=None, name="payhook.json", raw=None, **top):
        """Write a configuration file; returns (path, Spool, state_dir)."""
        spool = self.path("spool")
        state = self.path("state")
        cfg = {"spool_dir": spool, "state_dir": state}
        cfg.update(top)
        cfg["routes"] = routes if routes is not None else [self.route()]
        for r in cfg["routes"]:
            listed = r.get("secrets", [])
            if isinstance(listed, str):     # one secret, not a list
                listed = [listed]
            for s in listed:
                if isinstance(s, str) and not s.startswith(("env:", "file:")):
                    self.secrets.add(s)
        path = self.path(name)
        self.write(path, raw if raw is not None else json.dumps(cfg, indent=2))
        return path, Spool(cfg["spool_dir"]), cfg["state_dir"]

    # -- lighttpd

    def lighttpd_fcgi(self, config, procs=1, fix_root=True, name=None,
                      gw_options=""):
        """lighttpd with payhook as its FastCGI backend for the whole site;
        gw_options: more fastcgi.server host options ('"k" => v,')."""
        name = name or "lighttpd%d" % (len(self.lighttpds) + 1)
        benv = {"PAYHOOK_CONFIG": config}
        benv.update(self.payhook_env)
        body = """server.modules += ("mod_fastcgi")
fastcgi.server = ( "/" => ((
    "bin-path" => "%s",
    "socket" => "%s",
    "check-local" => "disable",
    "fix-root-scriptname" => "%s",
    "max-procs" => %d,%s
    "bin-environment" => ( %s )
)))""" % (self.payhook, self.path(name + ".sock"),
          "enable" if fix_root else "disable", procs, gw_options,
          ", ".join('"%s" => "%s"' % kv for kv in sorted(benv.items())))
        lt = Lighttpd(self, name, body, procs)
        self.lighttpds.append(lt)
        return lt.start()

    def lighttpd_cgi(self, config, name=None):
        """lighttpd running payhook through mod_cgi at /cgi-bin/payhook."""
        name = name or "lighttpd%d" % (len(self.lighttpds) + 1)
        cgibin = self.path("htdocs", "cgi-bin")
        os.makedirs(cgibin, exist_ok=True)
        self.own(self.path("htdocs"))
        self.own(cgibin)
        os.symlink(self.payhook, os.path.join(cgibin, "payhook"))
        env = {"PAYHOOK_CONFIG": config}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if os.environ.get(k):
                env[k] = os.environ[k]
        env.update(self.payhook_env)
        body = """server.modules += ("mod_cgi", "mod_setenv")
cgi.assign = ( "/payhook" => "" )
setenv.add-environment = ( %s )""" % ", ".join(
            '"%s" => "%s"' % kv for kv in sorted(env.items()))
        lt = Lighttpd(self, name, body, 0)
        self.lighttpds.append(lt)
        return lt.start()

    # -- direct invocations

    def run_payhook(self, args, env=None, stdin=b"", timeout=20):
        """Run payhook as the test user with a clean environment."""
        e = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if os.environ.get(k):
                e[k] = os.environ[k]
        e.update(self.payhook_env)
        e.update(env or {})
        try:
            p = subprocess.run(as_test_user([self.payhook] + list(args)),
                               input=stdin, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=e,
                               timeout=timeout)
        except subprocess.TimeoutExpired as te:
            # run() has killed it (setpriv execs payhook: same pid).
            err = (te.stderr or b"").decode("utf-8", "replace")
            self.stderr_texts.append(err)
            raise Failure("payhook %s did not finish in %d s (hung); "
                          "stderr: %s" % (" ".join(args), timeout,
                                          err[-1000:]))
        err = p.stderr.decode("utf-8", "replace")
        marker = scan_sanitizer(err)
        check(marker is None, "sanitizer report (%s) from payhook %s:\n%s"
              % (marker, " ".join(args), err[-4000:]))
        self.stderr_texts.append(err)   # scanned for secrets at cleanup
        return p

    def dedup_count(self, config):
        p = self.run_payhook(["--dedup-count", "--config", config])
        out = p.stdout.decode().strip()
        check(p.returncode == 0 and re.match(r"^\d+$", out),
              "payhook --dedup-count failed (rc %d): stdout %r stderr %r"
              % (p.returncode, out, p.stderr.decode()[-1000:]))
        return int(out)

    def cgi(self, config, body=b"", method="POST", path="/ngn",
            headers=None, env=None, omit=(), use_path_info=True):
        """One CGI request; headers are HTTP headers by their HTTP name."""
        e = {
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "SERVER_SOFTWARE": "payhook-it",
            "REQUEST_METHOD": method,
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": "127.0.0.1",
            "QUERY_STRING": "",
            "PAYHOOK_CONFIG": config,
        }
        if use_path_info:
            e["SCRIPT_NAME"] = "/cgi-bin/payhook"
            e["PATH_INFO"] = path
            e["REQUEST_URI"] = "/cgi-bin/payhook" + path
        else:
            e["SCRIPT_NAME"] = path
            e["REQUEST_URI"] = path
        for name, value in (headers or {}).items():
            if value is None:
                continue
            key = name.upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
            e[key] = value
        e.update(env or {})
        for k in omit:
            e.pop(k, None)
        p = self.run_payhook([], env=e, stdin=body)
        return CgiResult(p.returncode, p.stdout,
                         p.stderr.decode("utf-8", "replace"))

    def cgi_post(self, config, body, secret=SECRET, algo="sha512", **kw):
        h = ngn_headers(body, secret, algo)
        h.update(kw.pop("headers", {}) or {})
        return self.cgi(config, body=body, headers=h, **kw)

    # -- assertions shared by tests

    def assert_untouched(self, config, spool, count=0, new=0, what=""):
        """Nothing was spooled or recorded (beyond what was there)."""
        eq(len(spool.new()), new, "files in new/ " + what)
        eq(spool.tmp(), [], "files in tmp/ " + what)
        eq(self.dedup_count(config), count, "dedup count " + what)

    # -- teardown

    def cleanup(self):
        """Stop everything; return a list of problems found on the way."""
        problems = []
        for lt in list(self.started):
            try:
                lt.stop()
            except Exception as e:          # keep cleaning up
                problems.append("stopping %s: %r" % (lt.name, e))
        texts = list(self.stderr_texts)
        for lt in self.lighttpds:
            texts.append(lt.logs())
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:
                problems.append("cleanup: %r" % (e,))
        for text in texts:
            marker = scan_sanitizer(text)
            if marker:
                i = text.find(marker)
                problems.append("sanitizer report (%s):\n%s"
                                % (marker, text[max(0, i - 200):i + 3000]))
            for s in self.secrets:
                if s in text:
                    problems.append("a secret value appears in the log")
            if CUSTOMER_EMAIL in text:
                problems.append("request body content (customer e-mail) "
                                "appears in the log")
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
        else:
            print("# kept " + self.dir)
        return problems


def mount_tmpfs(ctx, path, size):
    """A tmpfs of size (mount's size=, "8m") at path (created 0700),
    owned by payhook's user; unmounted at cleanup. Skip unless root."""
    if not IS_ROOT:
        raise Skip("mounting a tmpfs needs root")
    os.mkdir(path, 0o700)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o",
                        "size=%s,mode=0700,uid=%d,gid=%d"
                        % (size, ctx.uid, ctx.gid), "tmpfs", path],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        raise Skip("mount -t tmpfs failed: %s" % p.stdout.decode().strip())

    def unmount():
        if subprocess.run(["umount", path]).returncode != 0:
            subprocess.run(["umount", "-l", path])
    ctx.cleanups.append(unmount)


def fill_filesystem(path):
    """Create path and write until the file system is full."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        chunk = b"\0" * 65536
        size = 65536
        while size > 0:
            try:
                n = os.write(fd, chunk[:size])
                if n < size:
                    size = max(1, size // 2)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                size //= 2
    finally:
        os.close(fd)

