# test_sdk_flutterwave.py - Flutterwave deliveries through lighttpd (FastCGI).
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# Flutterwave signs nothing: https://developer.flutterwave.com/docs/webhooks
# has it send the dashboard's secret hash, as it is, in verif-hash.
# tests/sdk/simple.js makes that header. The hash authenticates the sender,
# not the body: a flipped body byte with the right hash is accepted as a
# different event (shown here), and the README says so.

from harness import accepted_id, check, eq
from sdk_simple import (JSON_CT, check_rejected, deliver_ok, fixture,
                        fixture_route, flip, node_sign)
from test_providers import sign_and_send

SECRET = "it-flutterwave-secret-hash"
OLD_SECRET = "it-flutterwave-old-hash"


def test_sdk_flutterwave(ctx):
    cfg, spool, _state = ctx.config(routes=[fixture_route(
        provider="flutterwave", secrets=[SECRET, OLD_SECRET])])
    lt = ctx.lighttpd_fcgi(cfg)
    path = "/flutterwave"

    card = fixture("flutterwave", "charge_completed_card")
    deliver_ok(ctx, lt, spool, path, card,
               node_sign(ctx, "flutterwave", SECRET, card), "flutterwave",
               "charge_completed_card")
    # The same charge failed: same id, another status, another event.
    failed = fixture("flutterwave", "charge_completed_failed_derived")
    deliver_ok(ctx, lt, spool, path, failed,
               node_sign(ctx, "flutterwave", OLD_SECRET, failed),
               "flutterwave", "charge_completed_failed_derived")

    transfer = fixture("flutterwave", "transfer_completed_successful")
    good = node_sign(ctx, "flutterwave", SECRET, transfer)
    check_rejected(ctx, lt, cfg, spool, path, [
        ("wrong secret hash", transfer,
         node_sign(ctx, "flutterwave", "wrong-hash", transfer)),
        ("secret hash with a byte more", transfer,
         {"verif-hash": SECRET + "x"}),
        ("secret hash one byte short", transfer,
         {"verif-hash": SECRET[:-1]}),
        ("missing header", transfer, {}),
        ("flipped body byte, no header", flip(transfer), {}),
    ], count=2)

    deliver_ok(ctx, lt, spool, path, transfer, good, "flutterwave",
               "transfer_completed_successful")
    # What the hash does not cover: the body. Another amount under the
    # same event, id and status is that event's duplicate; another id is
    # a new event, accepted with the right hash (README, Security).
    h = dict(JSON_CT)
    h.update(good)
    amount = transfer.replace(b'"amount": 30020', b'"amount": 30021')
    check(amount != transfer, "fixture edit (amount)")
    r = lt.request("POST", path, amount, h)
    eq(r.status, 200, "changed amount: status")
    check(r.body.startswith(b'{"status":"duplicate"'),
          "changed amount: %r" % r.body)
    other = transfer.replace(b'"id": 33286', b'"id": 33287')
    check(other != transfer, "fixture edit (id)")
    accepted_id(lt.request("POST", path, other, h),
                "another id with the right hash")

    # payhook sign's curl command is accepted (a duplicate by now).
    _cmd, status, answer = sign_and_send(ctx, cfg, lt, "flutterwave",
                                         card)
    eq(status, 200, "payhook sign delivery (answer %r)" % answer)
    check(answer.startswith(b'{"status":"duplicate"'), "answer %r" % answer)
    eq(len(spool.new()), 4, "files in new/ at the end")
    eq(ctx.dedup_count(cfg), 4, "dedup records at the end")


def test_sdk_flutterwave_config(ctx):
    cfg, _spool, _state = ctx.config(routes=[{
        "name": "flutterwave", "path": "/flutterwave",
        "provider": "flutterwave"}])
    p = ctx.run_payhook(["--check-config", "--config", cfg])
    eq(p.returncode, 1, "--check-config exit status")
    check(b"key 'secrets': missing; the secret hash" in p.stderr,
          "fault: %r" % p.stderr[-400:])
