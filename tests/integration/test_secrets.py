# test_secrets.py - secrets hygiene: no secret or credential anywhere payhook
# writes, and the file modes it accepts for secrets and its configuration.
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# The first test sends every adapter's success and failure paths through a
# real lighttpd and payhook as CGI: ngn-gateway (SHA-512 and SHA-256),
# ompay, omno with each kind of authentication, paymentoptions with a URL
# token and with token plus HMAC; its secrets are literal, env: and file:
# references. Then it searches every log line, every answer, and every file
# under the spool directory (new/, tmp/, and a quarantine/ if there is one)
# and the state directory for each configured secret and each credential
# that was sent (signature headers, Authorization values, URL tokens, in
# either case, whole or their first 16 characters): there must be no hit. The one exception is by design: an
# OMPAY signature travels inside the JSON body, which is kept as the
# event's "raw", so it is searched for in logs, answers and the state
# directory but not in spooled bodies.
#
# The others check the modes: a configuration or secret file writable by
# group or others is a fault (--check-config exit 1, a responder answers
# 500), readable by others a warning (--check-config names the file and
# exits 0, a responder logs it once per process: once per request in CGI
# mode, once for a FastCGI process serving many).

import base64
import hashlib
import hmac
import json
import os
import urllib.parse

from harness import (ERROR_BODIES, accepted_id, body_of, check,
                     check_duplicate, check_error, eq, ngn_payload,
                     parse_log, sign)
from test_golden import FIXTURES, ompay_resign

JSON_CT = {"Content-Type": "application/json"}
ENV_KEY = "PAYHOOK_IT_SECRET_ENV"

# Every configured secret, by name; files and the environment hold some.
S = {
    "ngn-literal": "it-sec-ngn-literal-1",
    "ngn-file": "it-sec-ngn-file-2",
    "ngn-env": "it-sec-ngn-env-3",
    "ompay": "it-sec-ompay-client",
    "omno-password": "it-sec-omno-pass",
    "omno-bearer": "it-sec-omno-bearer",
    "omno-header": "it-sec-omno-header",
    "omno-hmac": "it-sec-omno-hmac",
    "omno-hmac-file": "it-sec-omno-hmac-file",
    "po-token": "it-sec-po-token/+1",
    "po-token-2": "it-sec-po-token-2",
    "po-hmac": "it-sec-po-hmac",
}


def fixture(provider, case):
    with open(os.path.join(FIXTURES, provider, case + ".json"), "rb") as f:
        return f.read()


def hmac_hex(key, body, algo="sha256"):
    return hmac.new(key.encode(), body, getattr(hashlib, algo)).hexdigest()


def basic(user, password):
    return "Basic " + base64.b64encode(
        ("%s:%s" % (user, password)).encode()).decode()


def routes(ctx):
    """The configuration's routes; writes the secret files."""
    ngn_file = ctx.write(ctx.path("ngn.secret"), S["ngn-file"] + "\n")
    omno_file = ctx.write(ctx.path("omno.secret"), S["omno-hmac-file"])
    return [
        {"name": "ngn", "path": "/ngn", "provider": "ngn-gateway",
         "secrets": [S["ngn-literal"], "file:" + ngn_file],
         "amount_unit": "minor"},
        {"name": "ngn256", "path": "/ngn256", "provider": "ngn-gateway",
         "secrets": "env:" + ENV_KEY, "algorithm": "sha256",
         "header": "X-Ngn-Sig", "amount_unit": "major"},
        {"name": "ompay", "path": "/ompay", "provider": "ompay",
         "secrets": [S["ompay"]]},
        {"name": "omno-basic", "path": "/omno-basic", "provider": "omno",
         "auth": {"type": "basic", "user": "omno-user",
                  "password": S["omno-password"]}},
        {"name": "omno-bearer", "path": "/omno-bearer", "provider": "omno",
         "auth": {"type": "bearer", "token": S["omno-bearer"]}},
        {"name": "omno-header", "path": "/omno-header", "provider": "omno",
         "auth": {"type": "header", "name": "X-Omno-Auth",
                  "value": S["omno-header"]}},
        {"name": "omno-hmac", "path": "/omno-hmac", "provider": "omno",
         "auth": {"type": "hmac-sha256", "header": "X-Omno-Signature"},
         "secrets": [S["omno-hmac"]]},
        {"name": "omno-hmac-file", "path": "/omno-hmac-file",
         "provider": "omno",
         "auth": {"type": "hmac-sha256", "secret": "file:" + omno_file}},
        {"name": "po", "path": "/po", "provider": "paymentoptions",
         "url_token": S["po-token"]},
        {"name": "po-hmac", "path": "/po-hmac", "provider": "paymentoptions",
         "url_token": [S["po-token-2"]], "secrets": S["po-hmac"],
         "header": "X-PO-Signature"},
    ]


def ngn_case(name, secret, algo, header):
    body = body_of(ngn_payload(txn="sec-" + name))

    def cred(b, key=secret):
        return {header: sign(b, key, algo)}
    return body, cred, [cred(body, secret + "x"), {}]


def omno_body(name):
    body = fixture("omno", "example")
    return body.replace(b'"example_id"', b'"sec-%s"' % name.encode(), 1)


def cases():
    """route -> (body, good credentials(body) -> headers or query,
    wrong credential sets (headers dicts; "?" key: a query string))."""
    out = {}
    out["ngn"] = ngn_case("ngn", S["ngn-literal"], "sha512", "X-Signature")
    out["ngn256"] = ngn_case("ngn256", S["ngn-env"], "sha256", "X-Ngn-Sig")
    for name, good, bad in (
            ("omno-basic",
             lambda b: {"Authorization": basic("omno-user",
                                               S["omno-password"])},
             [{"Authorization": basic("omno-user", S["omno-password"]
                                      + "x")},
              {"Authorization": "Bearer " + S["omno-password"]}, {}]),
            ("omno-bearer",
             lambda b: {"Authorization": "Bearer " + S["omno-bearer"]},
             [{"Authorization": "Bearer " + S["omno-bearer"] + "x"}, {}]),
            ("omno-header",
             lambda b: {"X-Omno-Auth": S["omno-header"]},
             [{"X-Omno-Auth": S["omno-header"] + "x"}, {}]),
            ("omno-hmac",
             lambda b: {"X-Omno-Signature": hmac_hex(S["omno-hmac"], b)},
             [{"X-Omno-Signature": hmac_hex(S["omno-hmac"] + "x",
                                            omno_body("omno-hmac"))}, {}]),
            ("omno-hmac-file",
             lambda b: {"X-Signature": hmac_hex(S["omno-hmac-file"], b)},
             [{"X-Signature": hmac_hex(S["omno-hmac"],
                                       omno_body("omno-hmac-file"))}, {}])):
        out[name] = (omno_body(name), good, bad)

    def token(t):
        return {"?": "token=" + urllib.parse.quote(t, safe="")}
    sale = fixture("paymentoptions", "sale_success")
    po_body = sale.replace(b'"po-txn-1001"', b'"sec-po"', 1)
    out["po"] = (po_body, lambda b: token(S["po-token"]),
                 [token(S["po-token"] + "x"), token(S["po-token-2"]), {}])
    po2 = sale.replace(b'"po-txn-1001"', b'"sec-po-hmac"', 1)
    out["po-hmac"] = (
        po2,
        lambda b: dict(token(S["po-token-2"]),
                       **{"X-PO-Signature": hmac_hex(S["po-hmac"], b)}),
        [dict(token(S["po-token-2"]),
              **{"X-PO-Signature": hmac_hex(S["po-hmac"] + "x", po2)}),
         dict(token(S["po-token"]),
              **{"X-PO-Signature": hmac_hex(S["po-hmac"], po2)}),
         token(S["po-token-2"])])
    return out


def credential_values(creds):
    """The strings a credential set carries that must never be written."""
    out = []
    for k, v in creds.items():
        if k == "?":
            raw = urllib.parse.unquote(v.split("=", 1)[1])
            out += [raw, v.split("=", 1)[1]]
        elif k == "Authorization":
            out += [v, v.split(" ", 1)[1]]
        else:
            out.append(v)
    return out


class Collector:
    """Everything payhook wrote that a reader could see."""

    def __init__(self):
        self.answers = []
        self.creds = set()          # sent credentials
        self.body_creds = set()     # sent inside JSON bodies (OMPAY)

    def send(self, lt, path, body, creds):
        creds = dict(creds)
        query = creds.pop("?", None)
        url = "/cgi-bin/payhook" + path + ("?" + query if query else "")
        self.creds.update(credential_values(creds))
        if query:
            self.creds.update(credential_values({"?": query}))
        r = lt.request("POST", url, body, dict(JSON_CT, **creds))
        self.answers.append(("%s %d" % (path, r.status),
                             "%d %r\n%s" % (r.status, sorted(
                                 r.headers.items()),
                                 r.body.decode("utf-8", "replace"))))
        return r


def files_under(top):
    """[(path, bytes)] of every regular file below top, at any depth."""
    out = []
    for root, _dirs, names in os.walk(top):
        for n in names:
            p = os.path.join(root, n)
            if os.path.isfile(p) and not os.path.islink(p):
                with open(p, "rb") as f:
                    out.append((p, f.read()))
    return out


PREFIX = 16


def hits(blobs, needles):
    """["where (which needle)"] for every needle found in a blob, compared
    case-insensitively, and for its first PREFIX characters (a truncated
    value in a log line is a leak too); the value itself is never shown."""
    found = []
    for where, blob in blobs:
        if isinstance(blob, str):
            blob = blob.encode("utf-8", "replace")
        low = blob.lower()
        for name, needle in needles:
            if needle.encode()[:PREFIX].lower() in low:
                found.append("%s (%s)" % (where, name))
    return found


def test_secrets_never_written(ctx):
    ctx.payhook_env[ENV_KEY] = S["ngn-env"]
    cfg, spool, state = ctx.config(routes=routes(ctx))
    lt = ctx.lighttpd_cgi(cfg)
    col = Collector()
    n = 0
    for name, (body, good, bad) in cases().items():
        path = "/" + name
        ulid = accepted_id(col.send(lt, path, body, good(body)),
                           name + " accepted")
        n += 1
        check_duplicate(col.send(lt, path, body, good(body)), ulid,
                        name + " duplicate")
        for i, creds in enumerate(bad):
            check_error(col.send(lt, path, body, creds), 401,
                        "%s wrong credentials #%d" % (name, i))
        # Authentic but not JSON (the signature is over these bytes).
        junk = b'{"event": tru'
        check_error(col.send(lt, path, junk, good(junk)), 400,
                    name + " unparseable body")
        eq(len(spool.new()), n, "files in new/ after " + name)

    # OMPAY: the signature is inside the body.
    completed = fixture("ompay", "transaction_completed")
    good = ompay_resign(completed, S["ompay"])
    wrong = ompay_resign(completed, S["ompay"] + "x")
    for b in (good, wrong):
        col.body_creds.add(json.loads(b)["data"]["signature"])
    for what in ("accepted", "duplicate"):
        r = col.send(lt, "/ompay", good, {})
        eq((r.status, r.body), (204, b""), "ompay " + what)
    n += 1
    doc = json.loads(completed)
    del doc["data"]["signature"]
    for what, b in (("wrong signature", wrong),
                    ("no signature", json.dumps(doc).encode())):
        r = col.send(lt, "/ompay", b, {})
        eq((r.status, r.body), (400, b"Signature mismatched"), "ompay " + what)
    r = col.send(lt, "/ompay", b'{"eventType": "X", "data": {', {})
    eq((r.status, r.body), (400, ERROR_BODIES[400]), "ompay unparseable")
    eq(len(spool.new()), n, "files in new/ at the end")

    # What an operator runs: --check-config and --dedup-count.
    p = ctx.run_payhook(["--check-config", "--config", cfg])
    eq(p.returncode, 0, "--check-config exit status (%r)" % p.stderr)
    eq(p.stderr, b"", "--check-config: no warning for private files")
    eq(ctx.dedup_count(cfg), n, "dedup records")
    texts = [("--check-config", p.stdout + p.stderr)]

    logs = lt.logs()
    entries = parse_log(logs)
    check(len([e for e in entries if e[2].get("outcome")]) ==
          len(col.answers), "one log line per request: %d lines, %d "
          "requests" % (len([e for e in entries if e[2].get("outcome")]),
                        len(col.answers)))
    secrets = [(k, v) for k, v in S.items()]
    creds = [("credential #%d" % i, c)
             for i, c in enumerate(sorted(col.creds))]
    body_creds = [("OMPAY signature #%d" % i, c)
                  for i, c in enumerate(sorted(col.body_creds))]
    spooled = files_under(spool.path)
    stored = files_under(state)
    check(len(spooled) >= n and len(stored) > 0,
          "files found: %d under the spool, %d under the state directory"
          % (len(spooled), len(stored)))
    found = hits([("log", logs)] + texts + col.answers + stored,
                 secrets + creds + body_creds)
    found += hits(spooled, secrets + creds)
    eq(found, [], "secrets or credentials written (where, which)")


def check_config(ctx, cfg):
    p = ctx.run_payhook(["--check-config", "--config", cfg])
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def test_secrets_check_config_modes(ctx):
    secret = ctx.write(ctx.path("route.secret"), "it-sec-mode-secret\n")
    cfg, _spool, _state = ctx.config(routes=[ctx.route(
        secrets=[S["ngn-literal"], "file:" + secret])])
    eq(check_config(ctx, cfg), (0, "%s: OK (1 route)\n" % cfg, ""),
       "private files")

    for mode in (0o660, 0o620, 0o602, 0o666):
        os.chmod(cfg, mode)
        eq(check_config(ctx, cfg), (1, "", "%s: %s is writable by group or "
                                    "others (mode %04o): refused; chmod go-w "
                                    "it\n" % (cfg, cfg, mode)),
           "configuration mode %04o" % mode)
    os.chmod(cfg, 0o644)
    eq(check_config(ctx, cfg),
       (0, "%s: OK (1 route)\n" % cfg, "%s: warning: %s is readable by "
        "others (mode 0644); chmod o-r it\n" % (cfg, cfg)),
       "world-readable configuration")
    os.chmod(cfg, 0o600)

    os.chmod(secret, 0o644)
    eq(check_config(ctx, cfg),
       (0, "%s: OK (1 route)\n" % cfg, "%s: warning: route 'ngn' (#1): "
        "secrets[1]: %s is readable by others (mode 0644); chmod o-r it\n"
        % (cfg, secret)), "world-readable secret file")
    for mode in (0o664, 0o622):
        os.chmod(secret, mode)
        eq(check_config(ctx, cfg),
           (1, "", "%s: route 'ngn' (#1): secrets[1]: %s is writable by "
            "group or others (mode %04o): refused; chmod go-w it\n"
            % (cfg, secret, mode)), "secret file mode %04o" % mode)
    os.chmod(secret, 0o640)
    eq(check_config(ctx, cfg), (0, "%s: OK (1 route)\n" % cfg, ""),
       "group-readable secret file")


def test_secrets_responder_modes(ctx):
    """A responder refuses a writable configuration (500, like any fault)
    and logs a readable one's warning once per process."""
    secret = ctx.write(ctx.path("route.secret"), S["ngn-file"])
    cfg, spool, _state = ctx.config(routes=[ctx.route(
        secrets=["file:" + secret])])
    body = body_of(ngn_payload(txn="sec-mode-1"))

    os.chmod(cfg, 0o664)
    r = ctx.cgi_post(cfg, body, secret=S["ngn-file"])
    eq((r.rc, r.status, r.body), (0, 500, ERROR_BODIES[500]),
       "group-writable configuration: CGI answer (stderr %r)" % r.stderr)
    errors = [e for e in parse_log(r.stderr) if e[1] == "error"]
    eq(len(errors), 1, "error lines (%r)" % r.stderr)
    check("%s is writable by group or others (mode 0664)" % cfg
          in errors[0][3], "the error names the file: %r" % errors[0][3])
    eq(spool.new(), [], "nothing spooled with a refused configuration")
    os.chmod(cfg, 0o600)

    # CGI: one process per request, so one warning per request.
    os.chmod(secret, 0o644)
    want = ("%s: route 'ngn' (#1): secrets[0]: %s is readable by others "
            "(mode 0644); chmod o-r it" % (cfg, secret))
    for i in range(2):
        r = ctx.cgi_post(cfg, body_of(ngn_payload(txn="sec-cgi-%d" % i)),
                         secret=S["ngn-file"])
        eq(r.status, 200, "CGI request %d with a readable secret file" % i)
        warns = [e[3].split(": warning: ", 1)[1]
                 for e in parse_log(r.stderr) if e[1] == "warning"]
        eq(warns, [want], "CGI request %d: warnings" % i)

    # FastCGI: one process serving many requests warns once, at start.
    lt = ctx.lighttpd_fcgi(cfg, procs=1)
    for i in range(3):
        accepted_id(lt.post(body_of(ngn_payload(txn="sec-fcgi-%d" % i)),
                            secret=S["ngn-file"]), "FastCGI request %d" % i)
    warns = [e for e in parse_log(lt.stderr_text()) if e[1] == "warning"]
    eq([e[3].split(": warning: ", 1)[1] for e in warns], [want],
       "FastCGI warnings")
    eq(len(spool.new()), 5, "files in new/")
