#!/usr/bin/env node
// stripe.js - Stripe-Signature headers made and checked by Stripe's own
// Node SDK (package "stripe"), for tests/integration/test_sdk_stripe.py.
//
// Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
//
//   node stripe.js sign PAYLOAD_FILE TIMESTAMP SECRET [SECRET...]
//       Prints the Stripe-Signature value for the file's exact bytes made
//       by stripe.webhooks.generateTestHeaderString, one v1 per secret (as
//       Stripe signs during a secret roll), all with TIMESTAMP ("now": the
//       current time).
//   node stripe.js verify PAYLOAD_FILE HEADER SECRET
//       stripe.webhooks.constructEvent on the file's bytes (tolerance 300 s):
//       prints the event's id and exits 0, or prints the SDK's error and
//       exits 1.
'use strict';

const fs = require('fs');
const Stripe = require('stripe');

// No request is ever made: the key only satisfies the constructor.
const stripe = new Stripe('sk_test_payhook_offline');

function usage() {
  process.stderr.write('usage: stripe.js sign FILE TIMESTAMP SECRET...\n' +
                       '       stripe.js verify FILE HEADER SECRET\n');
  process.exit(2);
}

const [cmd, file, arg, ...secrets] = process.argv.slice(2);
if (!cmd || !file || !arg || secrets.length === 0) usage();
// The SDK signs a string, encoded as UTF-8: the fixtures are UTF-8.
const payload = fs.readFileSync(file, 'utf8');

if (cmd === 'sign') {
  const timestamp = arg === 'now' ? Math.floor(Date.now() / 1000)
                                  : parseInt(arg, 10);
  const v1 = secrets.map((secret) => {
    const h = stripe.webhooks.generateTestHeaderString({
      payload, secret, timestamp,
    });
    const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(h);
    if (!m) throw new Error('unexpected header from the SDK: ' + h);
    return m[2];
  });
  process.stdout.write('t=' + timestamp +
                       v1.map((s) => ',v1=' + s).join('') + '\n');
} else if (cmd === 'verify') {
  if (secrets.length !== 1) usage();
  try {
    const ev = stripe.webhooks.constructEvent(payload, arg, secrets[0], 300);
    process.stdout.write(ev.id + '\n');
  } catch (e) {
    process.stdout.write(String(e.message).split('\n')[0] + '\n');
    process.exit(1);
  }
} else {
  usage();
}
