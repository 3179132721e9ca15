# sdk_simple.py - shared by test_sdk_{paystack,razorpay,checkout,flutterwave,
# square}.py: run the Node driver tests/sdk/simple.js, deliver what it signs
# through a real lighttpd (FastCGI), and check the exact event and the
# rejections.
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# The driver's npm packages are installed by scripts/deps (ph_sdk_install,
# "npm ci" from tests/sdk/package-lock.json); without them the SDK tests
# fail, they do not skip: a fresh machine gets them from scripts/test.

import json
import os
import subprocess

from harness import Failure, accepted_id, check, check_duplicate, eq
from test_golden import (FIXTURES, SUFFIX, first_difference, load_exact,
                         route_of)

HERE = os.path.dirname(os.path.abspath(__file__))
SDK_DIR = os.path.join(os.path.dirname(HERE), "sdk")
DRIVER = os.path.join(SDK_DIR, "simple.js")
JSON_CT = {"Content-Type": "application/json"}


def node(args, timeout=60):
    """Run the driver; returns (exit status, stdout text)."""
    if not os.path.isdir(os.path.join(SDK_DIR, "node_modules")):
        raise Failure("tests/sdk/node_modules is missing: run scripts/deps "
                      "(npm ci in tests/sdk)")
    p = subprocess.run(["node", DRIVER] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    check(p.returncode in (0, 1), "node simple.js %s: exit %d, stderr %r"
          % (" ".join(args[:2]), p.returncode, p.stderr[-600:]))
    return p.returncode, p.stdout.decode()


def node_sign(ctx, provider, secret, body, url=None):
    """The headers the driver makes for body (a dict); url is Square's
    notification URL."""
    path = ctx.write(ctx.path("node-body.json"), body)
    rc, out = node(["sign", provider, secret, path] +
                   ([url] if url is not None else []))
    eq(rc, 0, "node simple.js sign %s" % provider)
    return json.loads(out)


def sdk_verifies(ctx, provider, secret, body, signature, url=None):
    """True if the provider's own SDK accepts signature for body."""
    path = ctx.write(ctx.path("node-verify.json"), body)
    args = ["verify", provider, secret, path, signature]
    if url is not None:
        args.append(url)
    rc, out = node(args)
    eq(out, "valid\n" if rc == 0 else "invalid\n", "driver output")
    return rc == 0


def fixture(provider, case):
    with open(os.path.join(FIXTURES, provider, case + ".json"), "rb") as f:
        return f.read()


def golden(provider, case):
    with open(os.path.join(FIXTURES, provider, case + SUFFIX),
              encoding="utf-8") as f:
        return load_exact(f.read())


def fixture_route(**over):
    """The route of tests/fixtures/routes.json for a provider, so that
    the spooled event is the golden one (dedup keys name the route)."""
    r = dict(route_of(over.pop("provider")))
    r.update(over)
    return r


def check_spooled(spool, ulid, provider, case):
    """The event spooled under ulid is the golden event of the case."""
    names = [n for n in spool.new() if ulid in n]
    eq(len(names), 1, "files in new/ for %s" % ulid)
    ev = load_exact(spool.read(names[0]).decode("utf-8"))
    actual = type(ev)((k, v) for k, v in ev if k not in ("id",
                                                         "received_at"))
    diff = first_difference(golden(provider, case), actual)
    check(diff is None, "%s/%s: spooled event differs from the golden "
          "file: %s" % (provider, case, diff))


def flip(body):
    """body with one byte changed inside a JSON string (the first
    character of the first string that starts past the middle and with a
    letter or digit), so that it is still JSON and only its signature
    can refuse it."""
    i = len(body) // 2
    while True:
        i = body.index(b'"', i) + 1
        if chr(body[i]).isalnum():
            break
    b = bytearray(body)
    b[i] = ord("0") if b[i] != ord("0") else ord("1")
    return bytes(b)


def deliver_ok(ctx, lt, spool, path, body, headers, provider, case):
    """An accepted delivery with the golden event, then its duplicate."""
    h = dict(JSON_CT)
    h.update(headers)
    ulid = accepted_id(lt.request("POST", path, body, h),
                       "%s/%s signed delivery" % (provider, case))
    check_spooled(spool, ulid, provider, case)
    check_duplicate(lt.request("POST", path, body, h), ulid,
                    "%s/%s again" % (provider, case))
    return ulid


def check_rejected(ctx, lt, cfg, spool, path, cases, count):
    """Each (what, body, headers) of cases is 401 unauthorized with the
    spool and database as they were (count events)."""
    for what, body, headers in cases:
        h = dict(JSON_CT)
        h.update(headers)
        r = lt.request("POST", path, body, h)
        eq(r.status, 401, what + ": status (body %r)" % r.body[:200])
        eq(r.body, b'{"error":"unauthorized"}', what + ": body")
        ctx.assert_untouched(cfg, spool, count=count, new=count,
                             what="after " + what)
