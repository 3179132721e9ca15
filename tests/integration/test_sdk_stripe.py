# test_sdk_stripe.py - the stripe adapter against Stripe's own Node SDK,
# through lighttpd and FastCGI.
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# Signatures are made by stripe-node's webhooks.generateTestHeaderString
# (tests/sdk/stripe.js), never by code of ours, and payhook sign's output
# is checked by the SDK's constructEvent. Each accepted delivery must be
# spooled as the fixture's golden file says; each refused one is answered
# 401 with spool and dedup database untouched. scripts/test installs the
# SDK (npm ci in tests/sdk).

import json
import os
import re
import subprocess
import time

import harness
from harness import (accepted_id, check, check_duplicate, check_error, eq,
                     now_ms)
from test_golden import FIXTURES
from test_providers import sign_and_send

SDK_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "sdk")

SECRET = "whsec_it_stripe_endpoint_secret_new"
OLD_SECRET = "whsec_it_stripe_endpoint_secret_old"
WRONG_SECRET = "whsec_it_stripe_someone_elses"

# The fixtures delivered; their golden files say what must be spooled.
CASES = ("payment_intent_succeeded", "charge_refunded",
         "checkout_session_completed", "charge_dispute_created",
         "setup_intent_created_unmapped")


def node(script, *args):
    """Run tests/sdk/<script> with node; (exit status, stdout text)."""
    if not os.path.isdir(os.path.join(SDK_DIR, "node_modules")):
        raise harness.Failure("tests/sdk/node_modules is missing: run "
                              "scripts/deps (it runs npm ci there)")
    p = subprocess.run(["node", os.path.join(SDK_DIR, script)] +
                       [str(a) for a in args], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    check(p.returncode in (0, 1), "node %s failed (%d): %s"
          % (script, p.returncode, p.stderr.decode()[-1000:]))
    return p.returncode, p.stdout.decode().strip()


def fixture_bytes(case):
    with open(os.path.join(FIXTURES, "stripe", case + ".json"), "rb") as f:
        return f.read()


def golden(case):
    """The golden event, as json.loads reads it, for check_event_file."""
    with open(os.path.join(FIXTURES, "stripe", case + ".expected.json"),
              encoding="utf-8") as f:
        return json.load(f)


def sdk_header(ctx, body, timestamp="now", secrets=(SECRET,)):
    """Stripe-Signature for body, made by the SDK."""
    path = ctx.write(ctx.path("sdk-payload-%d.json" % time.monotonic_ns()),
                     body)
    rc, out = node("stripe.js", "sign", path, timestamp, *secrets)
    eq(rc, 0, "stripe.js sign exit status (%s)" % out)
    check(re.match(r"^t=\d+(,v1=[0-9a-f]{64})+$", out) is not None,
          "the SDK's header: %r" % out)
    return out


def post(lt, body, sig):
    headers = {"Content-Type": "application/json"}
    if sig is not None:
        headers["Stripe-Signature"] = sig
    return lt.request("POST", "/stripe", body=body, headers=headers)


def stripe_route(**kw):
    r = {"name": "stripe", "path": "/stripe", "provider": "stripe",
         "secrets": [SECRET, OLD_SECRET]}
    r.update(kw)
    return r


def test_sdk_stripe_accepted(ctx):
    """Deliveries signed by stripe-node are accepted and spooled as the
    golden files say; a retry (signed anew) is a duplicate; during a secret
    roll (two v1) and with the old secret alone they are accepted too."""
    cfg, spool, _state = ctx.config(routes=[stripe_route()])
    lt = ctx.lighttpd_fcgi(cfg)
    for case in CASES:
        body = fixture_bytes(case)
        t0 = now_ms()
        r = post(lt, body, sdk_header(ctx, body))
        t1 = now_ms()
        ulid = accepted_id(r, case)
        harness.check_event_file(spool, ulid, golden(case), t0, t1, case)
        # Stripe's retry carries a new timestamp and signature: the same
        # evt_ id is a duplicate.
        check_duplicate(post(lt, body, sdk_header(ctx, body)), ulid,
                        case + " retried")
    eq(ctx.dedup_count(cfg), len(CASES), "dedup records")
    # A secret roll: Stripe signs with the new and the old secret. Here the
    # first v1 is made with a secret the route does not know, the second
    # with its old one, which must still be found.
    body = fixture_bytes("payment_intent_canceled")
    r = post(lt, body, sdk_header(ctx, body,
                                  secrets=(WRONG_SECRET, OLD_SECRET)))
    accepted_id(r, "two v1, the second valid")
    body = fixture_bytes("charge_dispute_closed_won")
    accepted_id(post(lt, body, sdk_header(ctx, body, secrets=(OLD_SECRET,))),
                "signed with the route's second secret")
    # Within the tolerance either way: 250 s old, 250 s ahead.
    body = fixture_bytes("charge_dispute_closed_lost")
    accepted_id(post(lt, body, sdk_header(ctx, body,
                                          int(time.time()) - 250)),
                "250 s old")
    body = fixture_bytes("payment_intent_processing")
    accepted_id(post(lt, body, sdk_header(ctx, body,
                                          int(time.time()) + 250)),
                "250 s ahead")
    eq(len(spool.new()), len(CASES) + 4, "files in new/")


def test_sdk_stripe_refused(ctx):
    """A flipped body byte, a stale or future timestamp, a wrong secret, a
    missing header, a v0 signature alone, a header without t or v1: 401,
    nothing spooled, nothing recorded."""
    cfg, spool, _state = ctx.config(routes=[stripe_route()])
    lt = ctx.lighttpd_fcgi(cfg)
    body = fixture_bytes("payment_intent_succeeded")
    good = sdk_header(ctx, body)
    flipped = body.replace(b'"amount": 2000', b'"amount": 2001', 1)
    eq(len(flipped), len(body), "flipped body length")
    check(flipped != body, "the body byte was not flipped")
    now = int(time.time())
    mac = re.search(r"v1=([0-9a-f]{64})", good).group(1)
    t = re.match(r"^t=(\d+)", good).group(1)
    cases = [
        ("flipped body byte", flipped, good),
        ("stale timestamp (330 s)", body, sdk_header(ctx, body,
                                                     now - 330)),
        ("stale timestamp (1 day)", body, sdk_header(ctx, body,
                                                     now - 86400)),
        ("future timestamp (330 s)", body, sdk_header(ctx, body,
                                                      now + 330)),
        ("wrong secret", body, sdk_header(ctx, body,
                                          secrets=(WRONG_SECRET,))),
        ("missing header", body, None),
        ("empty header", body, ""),
        ("v0 only", body, "t=%s,v0=%s" % (t, mac)),
        ("no timestamp", body, "v1=%s" % mac),
        ("no v1", body, "t=%s" % t),
        ("timestamp not the signed one", body,
         "t=%d,v1=%s" % (int(t) + 1, mac)),
        ("upper-case scheme", body, "t=%s,V1=%s" % (t, mac)),
        ("space after the comma", body, "t=%s, v1=%s" % (t, mac)),
        ("signature cut short", body, "t=%s,v1=%s" % (t, mac[:-2])),
    ]
    for what, b, sig in cases:
        check_error(post(lt, b, sig), 401, what)
        ctx.assert_untouched(cfg, spool, what=what)
    # The same header, unchanged, is good: only the changes above failed.
    accepted_id(post(lt, body, good), "the untouched delivery")
    # A v0 next to the good v1 is ignored, as Stripe's test mode sends it.
    body = fixture_bytes("charge_refunded")
    good = sdk_header(ctx, body)
    accepted_id(post(lt, body, good + ",v0=" + "0" * 64), "v1 and a v0")


def test_sdk_stripe_tolerance_seconds(ctx):
    """tolerance_seconds narrows the window: 60 s old is refused with 30,
    20 s old accepted."""
    cfg, spool, _state = ctx.config(routes=[stripe_route(
        tolerance_seconds=30)])
    lt = ctx.lighttpd_fcgi(cfg)
    body = fixture_bytes("payment_intent_succeeded")
    now = int(time.time())
    check_error(post(lt, body, sdk_header(ctx, body, now - 60)), 401,
                "60 s old, tolerance 30")
    check_error(post(lt, body, sdk_header(ctx, body, now + 60)), 401,
                "60 s ahead, tolerance 30")
    ctx.assert_untouched(cfg, spool, what="outside tolerance_seconds")
    accepted_id(post(lt, body, sdk_header(ctx, body, now - 20)),
                "20 s old, tolerance 30")


def test_sdk_stripe_payhook_sign(ctx):
    """payhook sign's delivery is accepted, and its Stripe-Signature passes
    the SDK's constructEvent."""
    cfg, spool, _state = ctx.config(routes=[stripe_route()])
    lt = ctx.lighttpd_fcgi(cfg)
    body = fixture_bytes("checkout_session_completed")
    out, status, answer = sign_and_send(ctx, cfg, lt, "stripe", body)
    eq(status, 200, "payhook sign's delivery: status (%r)" % answer[:200])
    check(re.match(rb'^\{"status":"accepted","id":"[0-9A-Z]{26}"\}$',
                   answer) is not None, "answer %r" % answer)
    eq(len(spool.new()), 1, "files in new/")
    m = re.search(r"-H 'Stripe-Signature: (t=\d+,v1=[0-9a-f]{64})'", out)
    check(m is not None, "payhook sign printed no Stripe-Signature: %r"
          % out)
    path = ctx.write(ctx.path("signed.json"), body)
    rc, res = node("stripe.js", "verify", path, m.group(1), SECRET)
    eq((rc, res), (0, "evt_3MtwBwLkdIwHu7ix0011Strp"),
       "constructEvent on payhook sign's header")
    # The SDK is not fooled either: another secret fails its check.
    rc, res = node("stripe.js", "verify", path, m.group(1), WRONG_SECRET)
    eq(rc, 1, "constructEvent with another secret (%s)" % res)


def config_faults(ctx, cases):
    """Each (route keys, fault) pair: --check-config exits 1 and names the
    fault with its route."""
    for i, (keys, fault) in enumerate(cases):
        route = {"name": "r", "path": "/r"}
        route.update(keys)
        cfg, _spool, _state = ctx.config(routes=[route],
                                         name="fault%d.json" % i)
        p = ctx.run_payhook(["--check-config", "--config", cfg])
        err = p.stderr.decode()
        eq(p.returncode, 1, "case %d: exit status (%r)" % (i, err))
        line = "%s: route 'r' (#1): %s" % (cfg, fault)
        check(line in err.splitlines(), "case %d: expected the line %r, "
              "got %r" % (i, line, err))


def test_sdk_stripe_config_faults(ctx):
    """--check-config names the stripe route's faults."""
    config_faults(ctx, [
        ({"provider": "stripe"},
         "key 'secrets': missing; the endpoint's signing secret "
         "(whsec_...) is required"),
        ({"provider": "stripe", "secrets": ["it-fault-stripe-key"], "tolerance_seconds": 0},
         "key 'tolerance_seconds': must be an integer from 1 to 86400"),
        ({"provider": "stripe", "secrets": ["it-fault-stripe-key"],
          "tolerance_seconds": 86401},
         "key 'tolerance_seconds': must be an integer from 1 to 86400"),
        ({"provider": "stripe", "secrets": ["it-fault-stripe-key"],
          "tolerance_seconds": "300"},
         "key 'tolerance_seconds': must be an integer from 1 to 86400"),
    ])
