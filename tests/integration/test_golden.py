#!/usr/bin/env python3
# test_golden.py - every provider fixture through payhook (CGI), the whole
# normalized event compared with its checked-in expected file.
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# tests/fixtures/<provider>/<case>.json is a payload as the provider sends
# it; <case>.expected.json is the event payhook must spool for it, minus
# "id" and "received_at" (which change every run). The expected files are
# the specification: they were written by --regen once and then checked by
# hand, field by field, against providers.md. Never regenerate them to make
# a failing test pass without reading the difference.
#
# Each fixture is delivered in a fresh spool and state, with the credentials
# of tests/fixtures/routes.json:
#   ompay           data.signature replaced, in the raw bytes, by the
#                   HMAC-SHA256 of trim(orderId)|trim(paymentId) made with
#                   the route's secret (the documents' own signature was made
#                   with a secret nobody has); nothing else changes.
#   omno            HTTP Basic with the route's user and password.
#   paymentoptions  ?token=<url_token> in the query string.
#   standard-webhooks  webhook-id (the specification's example id),
#                   webhook-timestamp (now) and a v1 HMAC-SHA256 signature
#                   of "{id}.{timestamp}.{body}" with the route's whsec_
#                   secret.
#   adyen           each item's additionalData.hmacSignature set to the
#                   HMAC-SHA256 (hex-decoded key) of its eight signed fields,
#                   made here as @adyen/api-library's HmacValidator makes it
#                   (tests/sdk/adyen.js checks the SDK agrees); the body is
#                   written back with json.dumps, key order kept. An Adyen
#                   request carries several events: its expected file is the
#                   list of events, in the items' order.
#   stripe          Stripe-Signature: t=<now>,v1=<HMAC-SHA256 of "<now>.<body>">
#                   made with the route's first secret.
#   generic-hmac    the route's header (and timestamp header) as the route
#                   describes them (generic_hmac_headers), with its first
#                   secret; a case named <route>_... is delivered to the
#                   generic-hmac route of that name (github_..., shopify_...).
#   paystack        x-paystack-signature: hex HMAC-SHA512 of the body.
#   razorpay        X-Razorpay-Signature: hex HMAC-SHA256 of the body.
#   checkout        Cko-Signature: hex HMAC-SHA256 of the body, and the
#                   Authorization header equal to the route's
#                   "authorization". Its dispute_won_derived and
#                   dispute_lost_derived are Checkout.com's
#                   dispute_evidence_required example with only type and id
#                   changed: no won or lost example was found in its docs.
#   flutterwave     verif-hash: the route's secret as it is. Its
#                   charge_completed_failed_derived and _pending_derived are
#                   the documented successful examples with only
#                   data.status (and processor_response) changed; no
#                   documented failed, pending or refund sample was found.
#   square          x-square-hmacsha256-signature: base64 HMAC-SHA256 of
#                   the route's notification_url followed by the body.
#
# Numbers are compared by their text, and objects by their keys in order,
# so "123.45" is not "123.450" and raw keeps the payload's key order.
#
# As part of the suite: run.py --only golden. Alone:
#   test_golden.py --payhook PATH [--only PROVIDER[/CASE]] [--regen]

import base64
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402
from harness import Failure, check, eq  # noqa: E402

FIXTURES = os.path.join(os.path.dirname(HERE), "fixtures")
PROVIDERS = ("ompay", "omno", "paymentoptions", "standard-webhooks",
             "adyen", "stripe", "generic-hmac", "paystack", "razorpay",
             "checkout", "flutterwave", "square")
SUFFIX = ".expected.json"

# What each provider's mapping must be seen doing across its fixtures:
# every event type it can produce, "unknown" included.
MAPPED_TYPES = {
    "ompay": {"payment.succeeded", "payment.failed", "refund.succeeded",
              "refund.failed", "unknown"},
    "omno": {"payment.created", "payment.pending", "payment.action_required",
             "payment.succeeded", "payment.failed", "payment.expired",
             "refund.succeeded", "refund.failed", "unknown"},
    "paymentoptions": {"payment.authorized", "payment.succeeded",
                       "payment.failed", "payment.capture_failed",
                       "refund.succeeded", "refund.failed",
                       "payment.cancelled", "payment.cancel_failed",
                       "unknown"},
    "standard-webhooks": {"payment.succeeded", "payment.failed", "unknown"},
    "adyen": {"payment.authorized", "payment.failed", "payment.succeeded",
              "payment.capture_failed", "payment.cancelled",
              "payment.cancel_failed", "payment.expired", "refund.succeeded",
              "refund.failed", "dispute.opened", "dispute.won",
              "dispute.lost", "unknown"},
    "stripe": {"payment.created", "payment.pending", "payment.action_required",
               "payment.authorized", "payment.succeeded", "payment.failed",
               "payment.cancelled", "payment.expired", "refund.pending",
               "refund.succeeded", "refund.failed", "subscription.renewed",
               "dispute.opened", "dispute.won", "dispute.lost", "unknown"},
    "generic-hmac": {"payment.succeeded", "payment.cancelled",
                     "refund.succeeded", "unknown"},
    "paystack": {"payment.succeeded", "payment.failed", "refund.pending",
                 "refund.succeeded", "refund.failed", "transfer.succeeded",
                 "transfer.failed", "dispute.opened", "dispute.lost",
                 "unknown"},
    "razorpay": {"payment.authorized", "payment.succeeded", "payment.failed",
                 "refund.pending", "refund.succeeded", "refund.failed",
                 "dispute.opened", "dispute.won", "dispute.lost", "unknown"},
    "checkout": {"payment.authorized", "payment.succeeded", "payment.failed",
                 "payment.cancelled", "payment.capture_failed",
                 "refund.succeeded", "refund.failed", "dispute.opened",
                 "dispute.won", "dispute.lost", "unknown"},
    "flutterwave": {"payment.succeeded", "payment.failed", "payment.pending",
                    "transfer.succeeded", "transfer.failed"},
    "square": {"payment.authorized", "payment.succeeded", "refund.pending",
               "refund.succeeded", "dispute.opened", "dispute.won"},
}
# The specification's example webhook-id.
SWH_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"


# ---------------------------------------------------------------- exact JSON

class Num:
    """A JSON number as its text."""

    def __init__(self, text):
        self.text = text

    def __eq__(self, other):
        return isinstance(other, Num) and other.text == self.text

    def __ne__(self, other):
        return not self == other

    def __repr__(self):
        return self.text


class Obj(list):
    """A JSON object as its (key, value) pairs, in order."""


def load_exact(text):
    return json.loads(text, object_pairs_hook=Obj, parse_float=Num,
                      parse_int=Num)


def dump_exact(v, level=0):
    """Indented JSON, numbers written back as their own text."""
    pad, end = "  " * (level + 1), "  " * level
    if isinstance(v, Obj):
        if not v:
            return "{}"
        return "{\n" + ",\n".join(
            pad + json.dumps(k, ensure_ascii=False) + ": " +
            dump_exact(x, level + 1) for k, x in v) + "\n" + end + "}"
    if isinstance(v, list):
        if not v:
            return "[]"
        return "[\n" + ",\n".join(pad + dump_exact(x, level + 1)
                                  for x in v) + "\n" + end + "]"
    if isinstance(v, Num):
        return v.text
    return json.dumps(v, ensure_ascii=False)


def first_difference(a, b, path="$"):
    """Where expected a and actual b first differ, as a readable line."""
    if type(a) is not type(b):
        return "%s: expected %s, got %s" % (path, dump_exact(a),
                                            dump_exact(b))
    if isinstance(a, Obj):
        ka, kb = [k for k, _ in a], [k for k, _ in b]
        if ka != kb:
            return "%s: keys expected %r, got %r" % (path, ka, kb)
        for (k, x), (_k, y) in zip(a, b):
            d = first_difference(x, y, "%s.%s" % (path, k))
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return "%s: %d elements expected, got %d" % (path, len(a),
                                                        len(b))
        for i, (x, y) in enumerate(zip(a, b)):
            d = first_difference(x, y, "%s[%d]" % (path, i))
            if d:
                return d
        return None
    if a != b:
        return "%s: expected %s, got %s" % (path, dump_exact(a),
                                            dump_exact(b))
    return None


# ---------------------------------------------------------------- fixtures

def fixture_cases():
    """[(provider, case)] for every payload file, sorted."""
    out = []
    for provider in PROVIDERS:
        d = os.path.join(FIXTURES, provider)
        for name in sorted(os.listdir(d)):
            if name.endswith(".json") and not name.endswith(SUFFIX):
                out.append((provider, name[:-len(".json")]))
    return out


def fixture_path(provider, case, expected=False):
    return os.path.join(FIXTURES, provider,
                        case + (SUFFIX if expected else ".json"))


def fixture_routes():
    with open(os.path.join(FIXTURES, "routes.json")) as f:
        return json.load(f)["routes"]


def route_of(provider, case=None):
    """The provider's route in routes.json: the one whose name begins the
    case's name ("github" for "github_sponsorship_created"), else the
    provider's first."""
    routes = [r for r in fixture_routes() if r["provider"] == provider]
    for r in routes:
        if case is not None and case.startswith(r["name"] + "_"):
            return r
    if routes:
        return routes[0]
    raise Failure("tests/fixtures/routes.json has no %s route" % provider)


def generic_hmac_headers(route, body, timestamp=None):
    """The signature header (and timestamp header) a generic-hmac route
    expects for body, made with its first secret."""
    algo = route.get("algorithm", "sha256")
    headers = {}
    msg = body
    if "timestamp_header" in route:
        t = str(int(time.time()) if timestamp is None else timestamp)
        headers[route["timestamp_header"]] = t
        tmpl = route.get("signed_content", "{timestamp}.{body}").encode()
        head, _sep, tail = tmpl.partition(b"{body}")
        msg = (head.replace(b"{timestamp}", t.encode()) + body +
               tail.replace(b"{timestamp}", t.encode()))
    mac = hmac.new(route["secrets"][0].encode(), msg,
                   getattr(hashlib, algo)).digest()
    enc = (base64.b64encode(mac).decode()
           if route.get("encoding") == "base64" else mac.hex())
    headers[route["header"]] = route.get("prefix", "") + enc
    return headers


def ompay_text(v):
    """A signed field as OMPAY's signer sees it (strings and integers)."""
    if isinstance(v, str):
        return v
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v)
    raise Failure("fixture: orderId/paymentId must be a string or integer")


def ompay_resign(body, secret):
    """body with data.signature's value replaced, in place, by the valid
    signature; every other byte unchanged."""
    data = json.loads(body.decode("utf-8"))["data"]
    ws = " \t\n\r\v\f"
    msg = (ompay_text(data["orderId"]).strip(ws) + "|" +
           ompay_text(data["paymentId"]).strip(ws))
    sig = hmac.new(secret.encode(), msg.encode("utf-8"),
                   hashlib.sha256).hexdigest()
    old = json.dumps(data["signature"]).encode()
    eq(body.count(old), 1, "occurrences of the fixture's signature text")
    return body.replace(old, ('"%s"' % sig).encode())


def adyen_field(v):
    """A signed field as JavaScript's Array.join writes it."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (str, int)):
        return str(v)
    raise Failure("fixture: a signed Adyen field is %r" % (v,))


def adyen_signature(item, hex_key):
    """HmacValidator.calculateHmac for a NotificationRequestItem."""
    amount = item.get("amount") or {}
    fields = [item.get("pspReference"), item.get("originalReference"),
              item.get("merchantAccountCode"), item.get("merchantReference"),
              amount.get("value"), amount.get("currency"),
              item.get("eventCode"), item.get("success")]
    msg = ":".join(adyen_field(v) for v in fields)
    mac = hmac.new(bytes.fromhex(hex_key), msg.encode("utf-8"),
                   hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def adyen_resign(body, hex_key):
    """body with every item's hmacSignature made with hex_key."""
    doc = json.loads(body.decode("utf-8"))
    for wrap in doc["notificationItems"]:
        item = wrap["NotificationRequestItem"]
        item.setdefault("additionalData", {})["hmacSignature"] = \
            adyen_signature(item, hex_key)
    return json.dumps(doc, ensure_ascii=False).encode("utf-8")


def credentials(provider, body, case=None):
    """(body, headers, extra CGI environment) for a valid delivery."""
    route = route_of(provider, case)
    headers = {"Content-Type": "application/json"}
    env = {}
    if provider == "ompay":
        body = ompay_resign(body, route["secrets"][0])
    elif provider == "omno":
        auth = route["auth"]
        cred = ("%s:%s" % (auth["user"], auth["password"])).encode()
        headers["Authorization"] = "Basic " + base64.b64encode(cred).decode()
    elif provider == "adyen":
        body = adyen_resign(body, route["secrets"][0])
    elif provider == "paymentoptions":
        env["QUERY_STRING"] = "token=" + urllib.parse.quote(
            route["url_token"], safe="")
    elif provider == "standard-webhooks":
        key = base64.b64decode(route["secrets"][0][len("whsec_"):])
        ts = str(int(time.time()))
        mac = hmac.new(key, SWH_ID.encode() + b"." + ts.encode() + b"." +
                       body, hashlib.sha256).digest()
        headers["webhook-id"] = SWH_ID
        headers["webhook-timestamp"] = ts
        headers["webhook-signature"] = "v1," + base64.b64encode(mac).decode()
    elif provider == "stripe":
        t = str(int(time.time()))
        mac = hmac.new(route["secrets"][0].encode(), t.encode() + b"." + body,
                       hashlib.sha256).hexdigest()
        headers["Stripe-Signature"] = "t=%s,v1=%s" % (t, mac)
    elif provider == "generic-hmac":
        headers.update(generic_hmac_headers(route, body))
    elif provider == "paystack":
        headers["x-paystack-signature"] = hmac.new(
            route["secrets"][0].encode(), body, hashlib.sha512).hexdigest()
    elif provider == "razorpay":
        headers["X-Razorpay-Signature"] = hmac.new(
            route["secrets"][0].encode(), body, hashlib.sha256).hexdigest()
    elif provider == "checkout":
        headers["Cko-Signature"] = hmac.new(
            route["secrets"][0].encode(), body, hashlib.sha256).hexdigest()
        headers["Authorization"] = route["authorization"]
    elif provider == "flutterwave":
        headers["verif-hash"] = route["secrets"][0]
    elif provider == "square":
        headers["x-square-hmacsha256-signature"] = base64.b64encode(
            hmac.new(route["secrets"][0].encode(),
                     route["notification_url"].encode() + body,
                     hashlib.sha256).digest()).decode()
    return body, headers, env


def deliver(ctx, provider, case):
    """Deliver one fixture; return its spooled event (Obj) without id and
    received_at (Adyen: the list of them)."""
    route = route_of(provider, case)
    for key in ("password", "token", "value", "secret"):
        if isinstance(route.get("auth", {}).get(key), str):
            ctx.secrets.add(route["auth"][key])
    if isinstance(route.get("url_token"), str):
        ctx.secrets.add(route["url_token"])
    if isinstance(route.get("authorization"), str):
        ctx.secrets.add(route["authorization"])
    cfg, spool, _state = ctx.config(routes=fixture_routes())
    with open(fixture_path(provider, case), "rb") as f:
        body = f.read()
    body, headers, env = credentials(provider, body, case)
    r = ctx.cgi(cfg, body=body, path=route["path"], headers=headers, env=env)
    want = 204 if provider == "ompay" else 200
    eq(r.status, want, "%s/%s: status (stdout %r, stderr %r)"
       % (provider, case, r.stdout[:300], r.stderr[-600:]))
    names = spool.new()
    if provider != "adyen":
        eq(len(names), 1, "%s/%s: files in new/" % (provider, case))
        return read_event(spool, names[0], provider, case)
    # One event per item; the ids are monotonic, so the names sort in
    # the items' order.
    items = json.loads(body.decode("utf-8"))["notificationItems"]
    eq(len(names), len(items), "%s/%s: files in new/" % (provider, case))
    eq(r.body, b"[accepted]", "%s/%s: answer body" % (provider, case))
    eq(r.headers.get("content-type"), "text/plain",
       "%s/%s: answer Content-Type" % (provider, case))
    return [read_event(spool, n, provider, case) for n in names]


def read_event(spool, name, provider, case):
    """The spooled event (Obj) without id and received_at."""
    data = spool.read(name).decode("utf-8")
    check(data.endswith("}\n"), "event file does not end in a newline")
    ev = load_exact(data)
    keys = [k for k, _ in ev]
    eq(keys, harness.EVENT_KEYS, "%s/%s: event keys" % (provider, case))
    return Obj((k, v) for k, v in ev if k not in ("id", "received_at"))


def check_fixture(ctx, provider, case, regen=False):
    actual = deliver(ctx, provider, case)
    path = fixture_path(provider, case, expected=True)
    if regen:
        with open(path, "w", encoding="utf-8") as f:
            f.write(dump_exact(actual) + "\n")
        return
    check(os.path.exists(path), "%s is missing (write it with --regen, "
          "then check it by hand)" % os.path.relpath(path))
    with open(path, encoding="utf-8") as f:
        expected = load_exact(f.read())
    diff = first_difference(expected, actual)
    check(diff is None, "%s/%s: the event differs from %s: %s"
          % (provider, case, os.path.basename(path), diff))


# ---------------------------------------------------------------- tests

def test_golden_fixtures_complete(ctx):
    """Every payload has an expected file, every expected file a payload,
    and each provider's fixtures cover every type of its mapping."""
    cases = fixture_cases()
    check(len(cases) > 0, "no fixtures found in " + FIXTURES)
    for provider in PROVIDERS:
        d = os.path.join(FIXTURES, provider)
        seen = set()
        for name in sorted(os.listdir(d)):
            if not name.endswith(SUFFIX):
                continue
            case = name[:-len(SUFFIX)]
            check((provider, case) in cases, "%s/%s has no payload"
                  % (provider, name))
            with open(os.path.join(d, name), encoding="utf-8") as f:
                expected = load_exact(f.read())
            for ev in (expected if provider == "adyen" else [expected]):
                seen.add(dict(ev)["type"])
        for p, case in cases:
            if p == provider:
                check(os.path.exists(fixture_path(p, case, True)),
                      "%s/%s has no %s file" % (p, case, SUFFIX))
        eq(seen, MAPPED_TYPES[provider], provider + ": event types covered")


def _golden_test(provider, case):
    def test(ctx):
        check_fixture(ctx, provider, case)
    name = "test_golden_%s_%s" % (provider, case)
    test.__name__ = test.__qualname__ = name
    return name, test


for _provider, _case in fixture_cases():
    _name, _fn = _golden_test(_provider, _case)
    globals()[_name] = _fn


# ---------------------------------------------------------------- standalone

def main():
    import argparse

    repo = os.path.dirname(os.path.dirname(HERE))
    ap = argparse.ArgumentParser(description="payhook golden tests")
    ap.add_argument("--payhook",
                    default=os.path.join(repo, "build", "src", "payhook"))
    ap.add_argument("--only", action="append", default=[],
                    help="PROVIDER or PROVIDER/CASE (repeatable)")
    ap.add_argument("--regen", action="store_true",
                    help="(re)write the expected files from payhook's "
                    "output; review every change by hand")
    args = ap.parse_args()
    payhook = os.path.abspath(args.payhook)
    harness.ensure_test_user()
    passed = failed = 0
    for provider, case in fixture_cases():
        if args.only and provider not in args.only and \
                "%s/%s" % (provider, case) not in args.only:
            continue
        name = "golden_%s_%s" % (provider, case)
        ctx = harness.Ctx(payhook, name)
        detail = None
        try:
            check_fixture(ctx, provider, case, regen=args.regen)
        except Exception as e:          # report and go on
            detail = str(e)
        problems = ctx.cleanup()
        if problems:
            detail = ((detail + "\n") if detail else "") + \
                "\n".join(problems)
        if detail is None:
            passed += 1
            print("ok - %s%s" % (name, " (written)" if args.regen else ""))
        else:
            failed += 1
            print("not ok - %s" % name)
            harness.note(detail)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
