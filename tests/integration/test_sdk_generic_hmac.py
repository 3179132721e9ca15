# test_sdk_generic_hmac.py - the generic-hmac adapter against GitHub's own
# signer (@octokit/webhooks-methods), and against Node's crypto for a
# sender that signs a timestamp too, through lighttpd and FastCGI.
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# The GitHub-style route is configured as GitHub documents its webhooks:
# X-Hub-Signature-256, "sha256=" and the hex HMAC-SHA256 of the body.
# Deliveries signed by the SDK's sign() are accepted and spooled as the
# golden files say; a changed body byte, a wrong secret, a missing header or
# a signature without its prefix is refused 401 with spool and database
# untouched; and payhook sign's header passes the SDK's verify(). A second
# route signs "{timestamp}.{body}" (SHA-512, base64; hmac.js, Node's own
# crypto): stale, future, missing and altered timestamps are refused.

import json
import os
import re
import time

from harness import (accepted_id, check, check_duplicate, check_error, eq,
                     now_ms, check_event_file)
from test_golden import FIXTURES, fixture_routes
from test_providers import sign_and_send
from test_sdk_stripe import config_faults, node

SECRET = "it-github-webhook-secret"
OLD_SECRET = "it-github-webhook-secret-old"
WRONG_SECRET = "it-github-someone-elses"
TS_SECRET = "it-acme-webhook-secret"

GITHUB_CASES = ("github_sponsorship_created", "github_sponsorship_cancelled",
                "github_sponsorship_tier_changed")


def fixture_bytes(case):
    with open(os.path.join(FIXTURES, "generic-hmac", case + ".json"),
              "rb") as f:
        return f.read()


def golden(case):
    with open(os.path.join(FIXTURES, "generic-hmac",
                           case + ".expected.json"), encoding="utf-8") as f:
        return json.load(f)


def github_route():
    """The golden fixtures' GitHub-style route, with this test's secrets."""
    r = dict([x for x in fixture_routes() if x["name"] == "github"][0])
    r["secrets"] = [SECRET, OLD_SECRET]
    return r


def acme_route(**kw):
    """A sender that signs "<timestamp>.<body>" with HMAC-SHA512, base64,
    the timestamp in its own header."""
    r = {"name": "acme", "path": "/acme", "provider": "generic-hmac",
         "secrets": [TS_SECRET], "header": "X-Acme-Signature",
         "algorithm": "sha512", "encoding": "base64",
         "timestamp_header": "X-Acme-Timestamp",
         "id": "data.id", "type": "event",
         "type_map": {"charge.succeeded": "payment.succeeded"},
         "amount": "data.amount", "currency": "data.currency",
         "amount_unit": "minor"}
    r.update(kw)
    return r


def octokit_sign(ctx, body, secret=SECRET):
    path = ctx.write(ctx.path("sdk-%d.json" % time.monotonic_ns()), body)
    rc, out = node("octokit.js", "sign", path, secret)
    eq(rc, 0, "octokit.js sign exit status (%s)" % out)
    check(re.match(r"^sha256=[0-9a-f]{64}$", out) is not None,
          "the SDK's signature: %r" % out)
    return out


def acme_sign(ctx, body, timestamp, secret=TS_SECRET):
    path = ctx.write(ctx.path("sdk-%d.json" % time.monotonic_ns()), body)
    rc, out = node("hmac.js", path, secret, "sha512", "base64",
                   str(timestamp))
    eq(rc, 0, "hmac.js exit status (%s)" % out)
    return out


def post(lt, path, body, headers):
    h = {"Content-Type": "application/json"}
    h.update({k: v for k, v in headers.items() if v is not None})
    return lt.request("POST", path, body=body, headers=h)


def test_sdk_generic_hmac_github_accepted(ctx):
    """Deliveries signed by octokit's sign() are accepted and spooled as the
    golden files say; a redelivery is a duplicate; the second secret
    works."""
    cfg, spool, _state = ctx.config(routes=[github_route()])
    lt = ctx.lighttpd_fcgi(cfg)
    for case in GITHUB_CASES:
        body = fixture_bytes(case)
        sig = {"X-Hub-Signature-256": octokit_sign(ctx, body)}
        t0 = now_ms()
        r = post(lt, "/github", body, sig)
        t1 = now_ms()
        ulid = accepted_id(r, case)
        check_event_file(spool, ulid, golden(case), t0, t1, case)
        check_duplicate(post(lt, "/github", body, sig), ulid,
                        case + " redelivered")
    eq(ctx.dedup_count(cfg), len(GITHUB_CASES), "dedup records")
    # Another sponsorship: signed with the route's second secret.
    body = fixture_bytes("github_sponsorship_created").replace(
        b"MDExOlNwb25zb3JzaGlwMQ==", b"MDExOlNwb25zb3JzaGlwMg==")
    accepted_id(post(lt, "/github", body, {
        "X-Hub-Signature-256": octokit_sign(ctx, body, OLD_SECRET)}),
        "signed with the second secret")
    eq(len(spool.new()), len(GITHUB_CASES) + 1, "files in new/")


def test_sdk_generic_hmac_github_refused(ctx):
    """A changed body byte, a wrong secret, a missing or empty header, the
    digest without its "sha256=" prefix, or under another prefix: 401,
    nothing spooled, nothing recorded."""
    cfg, spool, _state = ctx.config(routes=[github_route()])
    lt = ctx.lighttpd_fcgi(cfg)
    body = fixture_bytes("github_sponsorship_created")
    good = octokit_sign(ctx, body)
    flipped = body.replace(b'"monthly_price_in_cents": 500',
                           b'"monthly_price_in_cents": 900', 1)
    check(flipped != body and len(flipped) == len(body),
          "the body byte was not flipped")
    digest = good[len("sha256="):]
    cases = [
        ("changed body byte", flipped, good),
        ("wrong secret", body, octokit_sign(ctx, body, WRONG_SECRET)),
        ("missing header", body, None),
        ("empty header", body, ""),
        ("no prefix", body, digest),
        ("sha1= prefix", body, "sha1=" + digest),
        ("upper-case prefix", body, "SHA256=" + digest),
        ("cut short", body, good[:-1]),
    ]
    for what, b, sig in cases:
        check_error(post(lt, "/github", b, {"X-Hub-Signature-256": sig}),
                    401, what)
        ctx.assert_untouched(cfg, spool, what=what)
    # The signature in the wrong header is no signature.
    check_error(post(lt, "/github", body, {"X-Hub-Signature": good}), 401,
                "signature in X-Hub-Signature")
    ctx.assert_untouched(cfg, spool, what="signature in another header")
    accepted_id(post(lt, "/github", body, {"X-Hub-Signature-256": good}),
                "the untouched delivery")


def test_sdk_generic_hmac_payhook_sign(ctx):
    """payhook sign's delivery is accepted, and its X-Hub-Signature-256
    passes octokit's verify()."""
    cfg, spool, _state = ctx.config(routes=[github_route()])
    lt = ctx.lighttpd_fcgi(cfg)
    body = fixture_bytes("github_sponsorship_cancelled")
    out, status, answer = sign_and_send(ctx, cfg, lt, "github", body)
    eq(status, 200, "payhook sign's delivery: status (%r)" % answer[:200])
    check(re.match(rb'^\{"status":"accepted","id":"[0-9A-Z]{26}"\}$',
                   answer) is not None, "answer %r" % answer)
    eq(len(spool.new()), 1, "files in new/")
    m = re.search(r"-H 'X-Hub-Signature-256: (sha256=[0-9a-f]{64})'", out)
    check(m is not None, "payhook sign printed no X-Hub-Signature-256: %r"
          % out)
    path = ctx.write(ctx.path("signed.json"), body)
    eq(node("octokit.js", "verify", path, SECRET, m.group(1)), (0, "true"),
       "octokit verify() on payhook sign's signature")
    eq(node("octokit.js", "verify", path, WRONG_SECRET, m.group(1)),
       (1, "false"), "octokit verify() with another secret")


ACME_BODY = (b'{"event":"charge.succeeded","data":{"id":"ch_0001",'
             b'"amount":1250,"currency":"EUR"}}')


def test_sdk_generic_hmac_timestamp(ctx):
    """A route with timestamp_header: "<t>.<body>" signed by Node's crypto
    is accepted within 300 s either way; stale, future, missing, non-numeric
    or altered timestamps are refused 401 with nothing spooled."""
    cfg, spool, _state = ctx.config(routes=[acme_route()])
    lt = ctx.lighttpd_fcgi(cfg)
    now = int(time.time())

    def headers(t_sign, t_sent=None, secret=TS_SECRET):
        return {"X-Acme-Signature": acme_sign(ctx, ACME_BODY, t_sign,
                                              secret),
                "X-Acme-Timestamp": str(t_sign if t_sent is None
                                        else t_sent)}
    cases = [
        ("stale timestamp (330 s)", ACME_BODY, headers(now - 330)),
        ("future timestamp (330 s)", ACME_BODY, headers(now + 330)),
        ("timestamp changed after signing", ACME_BODY,
         headers(now, now + 1)),
        ("missing timestamp header", ACME_BODY,
         dict(headers(now), **{"X-Acme-Timestamp": None})),
        ("timestamp not a number", ACME_BODY, headers(now, "%d.0" % now)),
        ("wrong secret", ACME_BODY, headers(now, secret="it-other")),
        ("missing signature", ACME_BODY,
         dict(headers(now), **{"X-Acme-Signature": None})),
        ("changed body byte", ACME_BODY.replace(b"1250", b"1251"),
         headers(now)),
    ]
    for what, body, h in cases:
        check_error(post(lt, "/acme", body, h), 401, what)
        ctx.assert_untouched(cfg, spool, what=what)
    t0 = now_ms()
    r = post(lt, "/acme", ACME_BODY, headers(now - 250))
    t1 = now_ms()
    ulid = accepted_id(r, "250 s old")
    check_event_file(spool, ulid, {
        "dedup_key": "acme:generic-hmac:charge.succeeded:ch_0001",
        "route": "acme", "provider": "generic-hmac",
        "type": "payment.succeeded", "provider_event": "charge.succeeded",
        "payment_id": None, "order_id": None, "refund_id": None,
        "status": None,
        "amount": {"value": "12.50", "minor": 1250, "currency": "EUR",
                   "exponent": 2},
        "occurred_at": None, "verified_by": "hmac-sha512",
        "raw": json.loads(ACME_BODY)}, t0, t1, "250 s old")
    # Signed anew 250 s ahead: the same event, a duplicate.
    check_duplicate(post(lt, "/acme", ACME_BODY, headers(now + 250)), ulid,
                    "250 s ahead, same event")


def test_sdk_generic_hmac_tolerance_and_sign(ctx):
    """tolerance_seconds narrows the window; payhook sign sends a fresh
    timestamp header with its signature, and it is accepted."""
    cfg, spool, _state = ctx.config(routes=[acme_route(
        tolerance_seconds=30)])
    lt = ctx.lighttpd_fcgi(cfg)
    now = int(time.time())
    for t in (now - 60, now + 60):
        h = {"X-Acme-Signature": acme_sign(ctx, ACME_BODY, t),
             "X-Acme-Timestamp": str(t)}
        check_error(post(lt, "/acme", ACME_BODY, h), 401,
                    "60 s off, tolerance 30")
    ctx.assert_untouched(cfg, spool, what="outside tolerance_seconds")
    out, status, answer = sign_and_send(ctx, cfg, lt, "acme", ACME_BODY)
    eq(status, 200, "payhook sign's delivery: status (%r)" % answer[:200])
    m = re.search(r"-H 'X-Acme-Timestamp: (\d+)'", out)
    check(m is not None, "payhook sign printed no timestamp: %r" % out)
    sig = re.search(r"-H 'X-Acme-Signature: ([A-Za-z0-9+/=]+)'", out)
    check(sig is not None, "payhook sign printed no signature: %r" % out)
    eq(sig.group(1), acme_sign(ctx, ACME_BODY, m.group(1)),
       "payhook sign's signature vs Node's crypto")
    eq(len(spool.new()), 1, "files in new/")


def test_sdk_generic_hmac_config_faults(ctx):
    """--check-config names the generic-hmac route's faults."""
    base = {"provider": "generic-hmac", "secrets": ["it-fault-gh-key"],
            "header": "X-Sig"}

    def route(**kw):
        r = dict(base)
        r.update(kw)
        return {k: v for k, v in r.items() if v is not None}
    config_faults(ctx, [
        (route(header=None),
         "key 'header': missing; the header that carries the signature"),
        (route(header="X Sig"), "key 'header': not a valid header name"),
        (route(secrets=None),
         "key 'secrets': missing; the HMAC key the sender signs with is "
         "required"),
        (route(algorithm="md5"),
         "key 'algorithm': must be \"sha1\", \"sha256\" or \"sha512\""),
        (route(encoding="base32"),
         "key 'encoding': must be \"hex\" or \"base64\""),
        (route(timestamp_header="X Ts"),
         "key 'timestamp_header': not a valid header name"),
        (route(signed_content="{timestamp}.{body}"),
         "key 'signed_content': must hold {body} once and {timestamp} "
         "once when 'timestamp_header' is set (never without it), and no "
         "other '{'"),
        (route(timestamp_header="X-Ts", signed_content="{body}"),
         "key 'signed_content': must hold {body} once and {timestamp} "
         "once when 'timestamp_header' is set (never without it), and no "
         "other '{'"),
        (route(timestamp_header="X-Ts", signed_content="{ts}.{body}"),
         "key 'signed_content': must hold {body} once and {timestamp} "
         "once when 'timestamp_header' is set (never without it), and no "
         "other '{'"),
        (route(signed_content="{body}{body}"),
         "key 'signed_content': must hold {body} once and {timestamp} "
         "once when 'timestamp_header' is set (never without it), and no "
         "other '{'"),
        (route(tolerance_seconds=0),
         "key 'tolerance_seconds': must be an integer from 1 to 86400"),
        (route(id="data..id"),
         "key 'id': must be a JSON path such as \"data.id\" (names of 1 "
         "to 127 bytes joined by '.')"),
        (route(type="a." + "x" * 128),
         "key 'type': must be a JSON path such as \"data.id\" (names of 1 "
         "to 127 bytes joined by '.')"),
        (route(type_map={"paid": "payment.succeeded"}),
         "key 'type_map': needs 'type' (the JSON path of the sender's type "
         "name)"),
        (route(type="event", type_map={"paid": "payment.paid"}),
         "key 'type_map.paid': must be one of payhook's event types"),
        (route(type="event", type_map=["paid"]),
         "key 'type_map': must be an object from the sender's type names "
         "to payhook's types"),
        (route(amount="amount", amount_unit="minor"),
         "keys 'amount' and 'currency': give both or neither"),
        (route(amount="amount", currency="currency"),
         "key 'amount_unit': missing; must be \"major\" or \"minor\" (is "
         "5000 USD 5000 dollars or cents? the sender's documents say)"),
        (route(amount="amount", currency="currency", amount_unit="cents"),
         "key 'amount_unit': must be \"major\" or \"minor\""),
        (route(amount_unit="minor"),
         "key 'amount_unit': needs 'amount' and 'currency'"),
    ])
