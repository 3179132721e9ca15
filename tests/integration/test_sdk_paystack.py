# test_sdk_paystack.py - Paystack deliveries signed outside payhook, through
# lighttpd (FastCGI).
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# Paystack publishes no signer: tests/sdk/simple.js signs with Node's crypto
# exactly as https://paystack.com/docs/payments/webhooks/ describes (hex
# HMAC-SHA512 of the body with the secret key, in x-paystack-signature).

from harness import check, check_error, eq
from sdk_simple import (JSON_CT, check_rejected, deliver_ok, fixture, fixture_route,
                        flip, node_sign)
from test_providers import sign_and_send

SECRET = "sk_test_it-paystack-secret"
OLD_SECRET = "sk_test_it-paystack-old"
HEADER = "x-paystack-signature"


def test_sdk_paystack(ctx):
    cfg, spool, _state = ctx.config(routes=[fixture_route(
        provider="paystack", secrets=[SECRET, OLD_SECRET])])
    lt = ctx.lighttpd_fcgi(cfg)
    path = "/paystack"

    body = fixture("paystack", "charge_success")
    headers = node_sign(ctx, "paystack", SECRET, body)
    eq(sorted(headers), [HEADER], "headers the driver makes")
    deliver_ok(ctx, lt, spool, path, body, headers, "paystack",
               "charge_success")
    # Rotation: the second secret is accepted too.
    refund = fixture("paystack", "refund_processed")
    deliver_ok(ctx, lt, spool, path, refund,
               node_sign(ctx, "paystack", OLD_SECRET, refund), "paystack",
               "refund_processed")

    transfer = fixture("paystack", "transfer_success")
    good = node_sign(ctx, "paystack", SECRET, transfer)
    check_rejected(ctx, lt, cfg, spool, path, [
        ("flipped body byte", flip(transfer), good),
        ("wrong secret", transfer,
         node_sign(ctx, "paystack", "sk_test_wrong", transfer)),
        ("missing header", transfer, {}),
        ("signature of another body", transfer,
         node_sign(ctx, "paystack", SECRET, body)),
        ("SHA-256 instead of SHA-512", transfer,
         {HEADER: good[HEADER][:64]}),
    ], count=2)

    # payhook sign's curl command is accepted.
    _cmd, status, answer = sign_and_send(ctx, cfg, lt, "paystack", transfer)
    eq(status, 200, "payhook sign delivery (answer %r)" % answer)
    check(answer.startswith(b'{"status":"accepted"'), "answer %r" % answer)
    eq(len(spool.new()), 3, "files in new/ at the end")
    eq(ctx.dedup_count(cfg), 3, "dedup records at the end")


def test_sdk_paystack_config(ctx):
    """No secret is a named fault; the README's allow_from route loads."""
    cfg, _spool, _state = ctx.config(routes=[{
        "name": "paystack", "path": "/paystack", "provider": "paystack"}])
    p = ctx.run_payhook(["--check-config", "--config", cfg])
    eq(p.returncode, 1, "--check-config exit status")
    check(b"key 'secrets': missing; Paystack signs every webhook"
          in p.stderr, "fault: %r" % p.stderr[-400:])
    cfg, _spool, _state = ctx.config(routes=[{
        "name": "paystack", "path": "/paystack", "provider": "paystack",
        "secrets": ["env:PAYSTACK_SECRET_KEY"],
        "allow_from": ["52.31.139.75", "52.49.173.169", "52.214.14.220"]}])
    p = ctx.run_payhook(["--check-config", "--config", cfg],
                        env={"PAYSTACK_SECRET_KEY": SECRET})
    eq(p.returncode, 0, "--check-config of the README's route (stderr %r)"
       % p.stderr[-400:])
    # From 127.0.0.1 such a route answers 403, however well signed.
    cfg, spool, _state = ctx.config(routes=[fixture_route(
        provider="paystack", secrets=[SECRET],
        allow_from=["52.31.139.75", "52.49.173.169", "52.214.14.220"])])
    lt = ctx.lighttpd_fcgi(cfg)
    body = fixture("paystack", "charge_success")
    h = dict(JSON_CT)
    h.update(node_sign(ctx, "paystack", SECRET, body))
    check_error(lt.request("POST", "/paystack", body, h), 403,
                "signed delivery from outside allow_from")
    ctx.assert_untouched(cfg, spool, what="after the 403")
