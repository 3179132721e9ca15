# test_sdk_checkout.py - Checkout.com deliveries signed outside payhook,
# through lighttpd (FastCGI).
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# Checkout.com publishes no signer: tests/sdk/simple.js makes Cko-Signature
# with Node's crypto as https://www.checkout.com/docs/workflows/receive-webhooks
# describes (hex HMAC-SHA256 of the payload with the webhook's key). The
# optional Authorization header is the fixed value set in the webhook.

from harness import check, eq
from sdk_simple import (check_rejected, deliver_ok, fixture, fixture_route,
                        flip, node_sign)
from test_golden import route_of
from test_providers import sign_and_send

SECRET = "it-checkout-signature-key"
OLD_SECRET = "it-checkout-old-key"
AUTHZ = route_of("checkout")["authorization"]


def test_sdk_checkout(ctx):
    cfg, spool, _state = ctx.config(routes=[fixture_route(
        provider="checkout", secrets=[SECRET, OLD_SECRET])])
    ctx.secrets.add(AUTHZ)
    lt = ctx.lighttpd_fcgi(cfg)
    path = "/checkout"

    def signed(secret, body, authz=AUTHZ):
        h = node_sign(ctx, "checkout", secret, body)
        if authz is not None:
            h["Authorization"] = authz
        return h

    body = fixture("checkout", "payment_captured")
    deliver_ok(ctx, lt, spool, path, body, signed(SECRET, body), "checkout",
               "payment_captured")
    declined = fixture("checkout", "payment_capture_declined")
    deliver_ok(ctx, lt, spool, path, declined, signed(OLD_SECRET, declined),
               "checkout", "payment_capture_declined")

    refund = fixture("checkout", "payment_refunded")
    good = signed(SECRET, refund)
    check_rejected(ctx, lt, cfg, spool, path, [
        ("flipped body byte", flip(refund), good),
        ("wrong secret", refund, signed("wrong-key", refund)),
        ("missing Cko-Signature", refund, {"Authorization": AUTHZ}),
        ("missing Authorization", refund, signed(SECRET, refund, None)),
        ("wrong Authorization", refund, signed(SECRET, refund, AUTHZ + "x")),
        ("Authorization as Bearer", refund,
         signed(SECRET, refund, "Bearer " + AUTHZ)),
        ("signature of another body", refund, signed(SECRET, body)),
    ], count=2)

    # payhook sign's curl command carries both headers.
    cmd, status, answer = sign_and_send(ctx, cfg, lt, "checkout", refund)
    check("Cko-Signature: " + good["Cko-Signature"] in cmd,
          "payhook sign's signature differs from the driver's: %r" % cmd)
    eq(status, 200, "payhook sign delivery (answer %r)" % answer)
    check(answer.startswith(b'{"status":"accepted"'), "answer %r" % answer)
    eq(len(spool.new()), 3, "files in new/ at the end")
    eq(ctx.dedup_count(cfg), 3, "dedup records at the end")


def test_sdk_checkout_signature_only(ctx):
    """Without "authorization" the signature alone is enough, and any
    Authorization header is ignored."""
    route = fixture_route(provider="checkout", secrets=[SECRET])
    del route["authorization"]
    cfg, spool, _state = ctx.config(routes=[route])
    lt = ctx.lighttpd_fcgi(cfg)
    body = fixture("checkout", "payment_voided")
    h = node_sign(ctx, "checkout", SECRET, body)
    h["Content-Type"] = "application/json"
    h["Authorization"] = "anything"
    r = lt.request("POST", "/checkout", body, h)
    eq(r.status, 200, "signature only (body %r)" % r.body)
    ev = [e for _name, _data, e in spool.events()]
    eq(len(ev), 1, "events spooled")
    eq(ev[0]["verified_by"], "hmac-sha256", "verified_by")
    eq(ev[0]["type"], "payment.cancelled", "type")


def test_sdk_checkout_config(ctx):
    cfg, _spool, _state = ctx.config(routes=[{
        "name": "checkout", "path": "/checkout", "provider": "checkout",
        "authorization": ""}])
    p = ctx.run_payhook(["--check-config", "--config", cfg])
    eq(p.returncode, 1, "--check-config exit status")
    err = p.stderr.decode()
    check("key 'secrets': missing; the webhook's secret key" in err,
          "fault for secrets: %r" % err[-600:])
    check("key 'authorization': empty" in err,
          "fault for authorization: %r" % err[-600:])
