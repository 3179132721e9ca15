# test_sdk_razorpay.py - Razorpay deliveries through lighttpd (FastCGI), and
# "payhook sign" checked by the "razorpay" npm SDK.
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# The SDK only verifies (Razorpay.validateWebhookSignature(body, signature,
# secret)), so: payhook sign's X-Razorpay-Signature must pass it, and the
# deliveries are signed by tests/sdk/simple.js with Node's crypto as
# https://razorpay.com/docs/webhooks/validate-test/ describes, each signature
# also shown valid to the SDK before it is sent.

import re

from harness import check, eq
from sdk_simple import (check_rejected, deliver_ok, fixture, fixture_route,
                        flip, node_sign, sdk_verifies)
from test_providers import sign_and_send

SECRET = "it-razorpay-webhook-secret"
OLD_SECRET = "it-razorpay-old-secret"
HEADER = "X-Razorpay-Signature"


def sdk_signed(ctx, secret, body):
    """Headers for body, after the SDK has accepted their signature."""
    h = node_sign(ctx, "razorpay", secret, body)
    check(sdk_verifies(ctx, "razorpay", secret, body, h[HEADER]),
          "the razorpay SDK refuses the driver's signature")
    return h


def test_sdk_razorpay(ctx):
    cfg, spool, _state = ctx.config(routes=[fixture_route(
        provider="razorpay", secrets=[SECRET, OLD_SECRET])])
    lt = ctx.lighttpd_fcgi(cfg)
    path = "/razorpay"

    captured = fixture("razorpay", "payment_captured")
    h = sdk_signed(ctx, SECRET, captured)
    h["x-razorpay-event-id"] = "EVENT-ONE"
    deliver_ok(ctx, lt, spool, path, captured, h, "razorpay",
               "payment_captured")
    # The unsigned event id is logged, never keyed on: another one with
    # the same signed body is still a duplicate.
    entry = lt.wait_log(lambda e: "x-razorpay-event-id" in e[2])
    check(entry is not None, "no log line with x-razorpay-event-id")
    eq(entry[2].get("x-razorpay-event-id"), "EVENT-ONE", "logged event id")
    h["x-razorpay-event-id"] = "EVENT-TWO"
    r = lt.request("POST", path, captured,
                   dict(h, **{"Content-Type": "application/json"}))
    eq(r.status, 200, "same body, other x-razorpay-event-id: status")
    check(re.match(rb'^\{"status":"duplicate"', r.body) is not None,
          "same body, other x-razorpay-event-id: %r" % r.body)

    refund = fixture("razorpay", "refund_processed")
    deliver_ok(ctx, lt, spool, path, refund,
               sdk_signed(ctx, OLD_SECRET, refund), "razorpay",
               "refund_processed")

    failed = fixture("razorpay", "payment_failed")
    good = sdk_signed(ctx, SECRET, failed)
    check(not sdk_verifies(ctx, "razorpay", SECRET, flip(failed),
                           good[HEADER]),
          "the SDK accepts a flipped byte")
    check_rejected(ctx, lt, cfg, spool, path, [
        ("flipped body byte", flip(failed), good),
        ("wrong secret", failed,
         node_sign(ctx, "razorpay", "wrong-secret", failed)),
        ("missing header", failed, {"x-razorpay-event-id": "EVENT-3"}),
        ("signature of another body", failed,
         node_sign(ctx, "razorpay", SECRET, captured)),
    ], count=2)

    # payhook sign: its signature passes the SDK, and its curl is accepted.
    order = fixture("razorpay", "order_paid")
    cmd, status, answer = sign_and_send(ctx, cfg, lt, "razorpay", order)
    m = re.search(r"-H '%s: ([0-9a-f]{64})'" % HEADER, cmd)
    check(m is not None, "payhook sign's header: %r" % cmd)
    check(sdk_verifies(ctx, "razorpay", SECRET, order, m.group(1)),
          "Razorpay.validateWebhookSignature refuses payhook sign's "
          "signature")
    eq(status, 200, "payhook sign delivery (answer %r)" % answer)
    check(answer.startswith(b'{"status":"accepted"'), "answer %r" % answer)
    eq(len(spool.new()), 3, "files in new/ at the end")
    eq(ctx.dedup_count(cfg), 3, "dedup records at the end")


def test_sdk_razorpay_config(ctx):
    cfg, _spool, _state = ctx.config(routes=[{
        "name": "razorpay", "path": "/razorpay", "provider": "razorpay"}])
    p = ctx.run_payhook(["--check-config", "--config", cfg])
    eq(p.returncode, 1, "--check-config exit status")
    check(b"key 'secrets': missing; the webhook's secret" in p.stderr,
          "fault: %r" % p.stderr[-400:])
