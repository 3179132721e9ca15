#!/usr/bin/env node
// octokit.js - GitHub-style signatures (X-Hub-Signature-256) made and
// checked by @octokit/webhooks-methods, for test_sdk_generic_hmac.py.
//
// Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
//
//   node octokit.js sign PAYLOAD_FILE SECRET
//       Prints sign(secret, payload): "sha256=<hex>".
//   node octokit.js verify PAYLOAD_FILE SECRET SIGNATURE
//       Prints verify(secret, payload, signature) ("true" or "false") and
//       exits 0 for true, 1 for false.
'use strict';

const fs = require('fs');

function usage() {
  process.stderr.write('usage: octokit.js sign FILE SECRET\n' +
                       '       octokit.js verify FILE SECRET SIGNATURE\n');
  process.exit(2);
}

async function main() {
  // An ES module: loaded with import() from this CommonJS script.
  const { sign, verify } = await import('@octokit/webhooks-methods');
  const [cmd, file, secret, signature] = process.argv.slice(2);
  if (!cmd || !file || !secret) usage();
  // The SDK signs a string, encoded as UTF-8: the fixtures are UTF-8.
  const payload = fs.readFileSync(file, 'utf8');
  if (cmd === 'sign' && signature === undefined) {
    process.stdout.write(await sign(secret, payload) + '\n');
  } else if (cmd === 'verify' && signature !== undefined) {
    const ok = await verify(secret, payload, signature);
    process.stdout.write(String(ok) + '\n');
    process.exit(ok ? 0 : 1);
  } else {
    usage();
  }
}

main().catch((e) => {
  process.stderr.write(String(e && e.stack || e) + '\n');
  process.exit(3);
});
