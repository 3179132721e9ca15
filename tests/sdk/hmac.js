#!/usr/bin/env node
// hmac.js - a timestamped HMAC signature made with Node's own crypto, as a
// generic-hmac route with timestamp_header describes it, for senders that
// publish no signer (test_sdk_generic_hmac.py).
//
// Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
//
//   node hmac.js PAYLOAD_FILE SECRET ALGORITHM ENCODING TIMESTAMP
//       Prints the digest (hex or base64) of HMAC-ALGORITHM over
//       "<TIMESTAMP>.<payload>" keyed with SECRET.
'use strict';

const crypto = require('crypto');
const fs = require('fs');

const [file, secret, algorithm, encoding, timestamp] = process.argv.slice(2);
if (!timestamp || !['hex', 'base64'].includes(encoding)) {
  process.stderr.write('usage: hmac.js FILE SECRET ALGORITHM hex|base64 ' +
                       'TIMESTAMP\n');
  process.exit(2);
}
const body = fs.readFileSync(file);
const mac = crypto.createHmac(algorithm, secret)
  .update(Buffer.concat([Buffer.from(timestamp + '.'), body]))
  .digest(encoding);
process.stdout.write(mac + '\n');
