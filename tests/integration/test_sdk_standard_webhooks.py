# test_sdk_standard_webhooks.py - the standard-webhooks adapter against
# deliveries signed by the SDKs themselves (npm standardwebhooks and svix,
# through tests/sdk/standard-webhooks.js) and Ed25519 (v1a) signed by
# Node's crypto, through a real lighttpd (FastCGI).
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# Accepted with the exact event; redelivery of a webhook-id is a duplicate;
# a flipped body byte, a stale and a future timestamp, a wrong secret and
# each missing header are 401 with spool and database untouched; payhook
# sign's headers pass the SDKs' own verify(), and a route of whpk_ keys
# only cannot sign.

import base64
import json
import os
import re
import subprocess
import time

from harness import (Failure, accepted_id, check, check_duplicate,
                     check_error, check_event_file, eq, now_ms)
from test_providers import sign_and_send

HERE = os.path.dirname(os.path.abspath(__file__))
SDK = os.path.join(os.path.dirname(HERE), "sdk")
DRIVER = os.path.join(SDK, "standard-webhooks.js")
JSON_CT = {"Content-Type": "application/json"}

# 32 random bytes each, as Svix's dashboard shows a signing secret.
WHSEC = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
WHSEC_OLD = "whsec_9qD7y0hRZ1Zj5u3b6sKwXw3eU0oHq3xPq1w5Zb0m7Wc="
WHSEC_WRONG = "whsec_" + base64.b64encode(b"not the endpoint's secret!!!").decode()
TYPE_MAP = {"invoice.paid": "payment.succeeded",
            "invoice.payment_failed": "payment.failed"}


def node(req):
    """One request to the Node driver; its JSON answer."""
    if not os.path.isdir(os.path.join(SDK, "node_modules")):
        raise Failure("tests/sdk/node_modules is missing: run scripts/deps "
                      "(npm ci in tests/sdk)")
    p = subprocess.run(["node", DRIVER], input=json.dumps(req).encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       cwd=SDK, timeout=60)
    eq(p.returncode, 0, "node %s: exit status (stderr %r)"
       % (req.get("op"), p.stderr.decode()[-800:]))
    return json.loads(p.stdout.decode())


def sdk_sign(lib, secret, msg_id, ts, body):
    return node({"op": "sign", "lib": lib, "secret": secret, "id": msg_id,
                 "timestamp": ts,
                 "body_b64": base64.b64encode(body).decode()})["headers"]


def payload(msg, type_="invoice.paid", amount=1999):
    """The specification's example payload, with a payment's fields."""
    return json.dumps({"type": type_,
                       "timestamp": "2022-11-03T20:26:10.344522Z",
                       "data": {"id": "in_" + msg, "amount": amount,
                                "currency": "USD"}},
                      separators=(",", ":")).encode()


def expected(route, msg_id, body, verified_by, type_="payment.succeeded"):
    doc = json.loads(body)
    return {"schema": "payhook.event/2",
            "dedup_key": "%s:standard-webhooks:%s" % (route, msg_id),
            "route": route, "provider": "standard-webhooks",
            "type": type_, "provider_event": doc["type"],
            "payment_id": None, "order_id": None, "refund_id": None,
            "status": None,
            "amount": {"value": "%d.%02d" % divmod(doc["data"]["amount"],
                                                   100),
                       "minor": doc["data"]["amount"], "currency": "USD",
                       "exponent": 2},
            "occurred_at": "2022-11-03T20:26:10.344522Z",
            "verified_by": verified_by, "raw": doc}


def post(lt, route, body, headers):
    return lt.request("POST", "/" + route, body, dict(JSON_CT, **headers))


def deliver(lt, spool, route, msg_id, body, headers, verified_by,
            what, type_="payment.succeeded"):
    t0 = now_ms()
    ulid = accepted_id(post(lt, route, body, headers), what)
    t1 = now_ms()
    check_event_file(spool, ulid, expected(route, msg_id, body, verified_by,
                                           type_), t0, t1, what)
    return ulid


def signed_headers(out):
    """The -H headers of payhook sign's curl command."""
    return dict(m.groups() for m in
                re.finditer(r"^  -H '([^:']+): ([^']*)' \\$", out, re.M))


def test_sdk_standard_webhooks(ctx):
    keys = node({"op": "keypair"})
    other = node({"op": "keypair"})
    common = {"provider": "standard-webhooks", "type_map": TYPE_MAP,
              "amount": "data.amount", "currency": "data.currency",
              "amount_unit": "minor"}
    routes = [dict(common, name="sw", path="/sw",
                   secrets=[WHSEC, WHSEC_OLD]),
              dict(common, name="sw-ed", path="/sw-ed",
                   secrets=[keys["public_key"]])]
    cfg, spool, _state = ctx.config(routes=routes)
    lt = ctx.lighttpd_fcgi(cfg)
    hmac_vb = "hmac-sha256(id.timestamp.body)"
    n = 0

    # standardwebhooks' sign, webhook-* headers, the current secret.
    body = payload("1")
    h = sdk_sign("standardwebhooks", WHSEC, "msg_sw_1", int(time.time()),
                 body)
    ulid = deliver(lt, spool, "sw", "msg_sw_1", body, h, hmac_vb,
                   "standardwebhooks delivery")
    n += 1
    # A retry: same webhook-id, a new attempt's timestamp and signature.
    h2 = sdk_sign("standardwebhooks", WHSEC, "msg_sw_1",
                  int(time.time()) - 60, body)
    check(h2 != h, "the retry's headers differ")
    check_duplicate(post(lt, "sw", body, h2), ulid, "redelivered webhook-id")

    # svix's sign, svix-* headers, the old secret (rotation).
    body = payload("2", "invoice.payment_failed", 500)
    h = sdk_sign("svix", WHSEC_OLD, "msg_svix_2", int(time.time()), body)
    eq(sorted(h), ["svix-id", "svix-signature", "svix-timestamp"],
       "svix header names")
    deliver(lt, spool, "sw", "msg_svix_2", body, h, hmac_vb,
            "svix delivery", "payment.failed")
    n += 1

    # Both secrets listed, as a sender does during a rotation; an unmapped
    # type is "unknown", never dropped.
    body = payload("3", "invoice.created")
    ts = int(time.time())
    a = sdk_sign("standardwebhooks", WHSEC_WRONG, "msg_sw_3", ts, body)
    b = sdk_sign("standardwebhooks", WHSEC, "msg_sw_3", ts, body)
    h = dict(b, **{"webhook-signature": a["webhook-signature"] + " " +
                   b["webhook-signature"]})
    deliver(lt, spool, "sw", "msg_sw_3", body, h, hmac_vb,
            "two signatures, the second valid", "unknown")
    n += 1

    # Ed25519: signed by Node's crypto, verified with the whpk_ key.
    body = payload("4")
    h = node({"op": "sign-ed25519", "private_key": keys["private_key"],
              "id": "msg_ed_4", "timestamp": int(time.time()),
              "body_b64": base64.b64encode(body).decode()})["headers"]
    check(h["webhook-signature"].startswith("v1a,"), "a v1a signature")
    ulid = deliver(lt, spool, "sw-ed", "msg_ed_4", body, h,
                   "ed25519(id.timestamp.body)", "Ed25519 delivery")
    n += 1
    check_duplicate(post(lt, "sw-ed", body, h), ulid, "Ed25519 redelivery")

    # Rejections: 401, nothing spooled, nothing recorded.
    body = payload("5")
    now = int(time.time())
    good = sdk_sign("standardwebhooks", WHSEC, "msg_bad_5", now, body)
    flipped = bytearray(body)
    flipped[body.index(b"1999")] ^= 0x01          # "1999" -> "0999"
    bad = [
        ("flipped body byte", "sw", bytes(flipped), good),
        ("stale timestamp", "sw", body,
         sdk_sign("standardwebhooks", WHSEC, "msg_bad_5", now - 400, body)),
        ("future timestamp", "sw", body,
         sdk_sign("standardwebhooks", WHSEC, "msg_bad_5", now + 400, body)),
        ("wrong secret", "sw", body,
         sdk_sign("standardwebhooks", WHSEC_WRONG, "msg_bad_5", now, body)),
        ("another webhook-id", "sw", body,
         dict(good, **{"webhook-id": "msg_bad_6"})),
        ("v1 signature on a whpk_ route", "sw-ed", body, good),
        ("another key's Ed25519 signature", "sw-ed", body,
         node({"op": "sign-ed25519", "private_key": other["private_key"],
               "id": "msg_bad_5", "timestamp": now,
               "body_b64": base64.b64encode(body).decode()})["headers"]),
    ]
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        bad.append(("missing " + name, "sw", body,
                    {k: v for k, v in good.items() if k != name}))
    for what, route, b, hdrs in bad:
        check_error(post(lt, route, b, hdrs), 401, what)
        ctx.assert_untouched(cfg, spool, count=n, new=n, what="after " + what)
    # The very delivery those were made from is fine.
    deliver(lt, spool, "sw", "msg_bad_5", body, good, hmac_vb,
            "the unaltered delivery")
    n += 1

    # payhook sign: accepted by payhook, and its headers pass both SDKs'
    # verify().
    body = payload("7")
    out, status, answer = sign_and_send(ctx, cfg, lt, "sw", body, "p7.json")
    eq(status, 200, "payhook sign's delivery status (%r)" % answer)
    check(answer.startswith(b'{"status":"accepted","id":"'),
          "payhook sign's delivery answer %r" % answer)
    n += 1
    h = signed_headers(out)
    eq(sorted(h), ["Content-Type", "webhook-id", "webhook-signature",
                   "webhook-timestamp"], "payhook sign's headers")
    check(re.match(r"^msg_[0-9A-Z]{26}$", h["webhook-id"]),
          "payhook sign's webhook-id %r" % h["webhook-id"])
    for lib in ("standardwebhooks", "svix"):
        r = node({"op": "verify", "lib": lib, "secret": WHSEC,
                  "headers": h, "body_b64": base64.b64encode(body).decode()})
        eq(r, {"ok": True}, lib + " verify() of payhook sign's headers")
        r = node({"op": "verify", "lib": lib, "secret": WHSEC_OLD,
                  "headers": h, "body_b64": base64.b64encode(body).decode()})
        eq(r.get("ok"), False, lib + " verify() with another secret")

    # A route of public keys only cannot sign: said plainly, exit 1.
    path = ctx.write(ctx.path("p8.json"), payload("8"))
    p = ctx.run_payhook(["sign", "--config", cfg, "sw-ed", path])
    eq(p.returncode, 1, "payhook sign on a whpk_-only route: exit status")
    eq(p.stdout, b"", "payhook sign on a whpk_-only route: stdout")
    eq(p.stderr.decode(),
       "payhook sign: route 'sw-ed': the route holds only whpk_ public "
       "keys: a v1a signature needs the sender's private key, which "
       "payhook never holds, so payhook sign needs a whsec_ secret in "
       "'secrets'\n", "payhook sign on a whpk_-only route: message")
    ctx.assert_untouched(cfg, spool, count=n, new=n, what="at the end")
