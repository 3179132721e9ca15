# test_sdk_square.py - Square deliveries through lighttpd (FastCGI), and
# "payhook sign" checked by the "square" npm SDK.
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# The SDK only verifies: in square 43.x that is the async
# WebhooksHelper.verifySignature({requestBody, signatureHeader, signatureKey,
# notificationUrl}) (isValidWebhookEventSignature was the name before the
# 40.0 rewrite). payhook sign's x-square-hmacsha256-signature must pass it;
# the deliveries are signed by tests/sdk/simple.js as
# https://developer.squareup.com/docs/webhooks/step3validate describes, each
# signature shown valid to the SDK before it is sent.

import re

from harness import check, eq
from sdk_simple import (check_rejected, deliver_ok, fixture, fixture_route,
                        flip, node_sign, sdk_verifies)
from test_providers import sign_and_send

SECRET = "it-square-signature-key"
OLD_SECRET = "it-square-old-key"
HEADER = "x-square-hmacsha256-signature"
URL = "https://shop.example/payhook/square"


def sdk_signed(ctx, secret, body, url=URL):
    h = node_sign(ctx, "square", secret, body, url)
    check(sdk_verifies(ctx, "square", secret, body, h[HEADER], url),
          "WebhooksHelper.verifySignature refuses the driver's signature")
    return h


def test_sdk_square(ctx):
    cfg, spool, _state = ctx.config(routes=[fixture_route(
        provider="square", secrets=[SECRET, OLD_SECRET],
        notification_url=URL)])
    lt = ctx.lighttpd_fcgi(cfg)
    path = "/square"

    updated = fixture("square", "payment_updated")
    deliver_ok(ctx, lt, spool, path, updated, sdk_signed(ctx, SECRET, updated),
               "square", "payment_updated")
    refund = fixture("square", "refund_updated")
    deliver_ok(ctx, lt, spool, path, refund,
               node_sign(ctx, "square", OLD_SECRET, refund, URL), "square",
               "refund_updated")

    created = fixture("square", "payment_created")
    # Loading the SDK takes seconds: it judges the driver's signatures
    # once above, then the flipped byte and payhook sign's output.
    good = node_sign(ctx, "square", SECRET, created, URL)
    check(not sdk_verifies(ctx, "square", SECRET, flip(created),
                           good[HEADER], URL),
          "the SDK accepts a flipped byte")
    check_rejected(ctx, lt, cfg, spool, path, [
        ("flipped body byte", flip(created), good),
        ("wrong secret", created,
         node_sign(ctx, "square", "wrong-key", created, URL)),
        ("missing header", created, {}),
        ("signed for another notification URL", created,
         node_sign(ctx, "square", SECRET, created, URL + "/")),
        ("signature of the body alone", created,
         node_sign(ctx, "square", SECRET, created, "")),
        ("hex in place of base64", created,
         {HEADER: "00" * 32}),
    ], count=2)

    # payhook sign: its signature passes the SDK, and its curl is accepted.
    dispute = fixture("square", "dispute_created")
    cmd, status, answer = sign_and_send(ctx, cfg, lt, "square", dispute)
    m = re.search(r"-H '%s: ([A-Za-z0-9+/=]{44})'" % HEADER, cmd)
    check(m is not None, "payhook sign's header: %r" % cmd)
    check(sdk_verifies(ctx, "square", SECRET, dispute, m.group(1), URL),
          "WebhooksHelper.verifySignature refuses payhook sign's signature")
    eq(status, 200, "payhook sign delivery (answer %r)" % answer)
    check(answer.startswith(b'{"status":"accepted"'), "answer %r" % answer)
    eq(len(spool.new()), 3, "files in new/ at the end")
    eq(ctx.dedup_count(cfg), 3, "dedup records at the end")


def test_sdk_square_config(ctx):
    cfg, _spool, _state = ctx.config(routes=[
        {"name": "sq1", "path": "/sq1", "provider": "square"},
        {"name": "sq2", "path": "/sq2", "provider": "square",
         "secrets": [SECRET], "notification_url": "/payhook/square"}])
    p = ctx.run_payhook(["--check-config", "--config", cfg])
    eq(p.returncode, 1, "--check-config exit status")
    err = p.stderr.decode()
    for want in ("key 'secrets': missing; the subscription's signature key",
                 "key 'notification_url': missing; Square signs the "
                 "notification URL",
                 "key 'notification_url': must be the absolute"):
        check(want in err, "fault %r not in %r" % (want, err[-800:]))
