#!/usr/bin/env node
// standard-webhooks.js - Standard Webhooks deliveries signed, and payhook
// sign's output verified, by the SDKs themselves (standardwebhooks, svix)
// and by Node's crypto for Ed25519 (v1a), which neither SDK signs.
//
// Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
//
// One JSON request on stdin, one JSON answer on stdout. Bodies travel in
// base64 ("body_b64") so every byte is exactly what is signed and sent.
//   {"op": "sign", "lib": "standardwebhooks"|"svix", "secret": "whsec_...",
//    "id": ..., "timestamp": <Unix seconds>, "body_b64": ...}
//     -> {"headers": {...}}: webhook-* for standardwebhooks, svix-* for svix
//   {"op": "keypair"} -> {"public_key": "whpk_...", "private_key": PEM}
//   {"op": "sign-ed25519", "private_key": PEM, "id", "timestamp",
//    "body_b64"} -> {"headers": {...}} with "v1a,<base64>"
//   {"op": "verify", "lib": ..., "secret": ..., "headers": {...},
//    "body_b64": ...} -> {"ok": true} or {"ok": false, "error": "..."}
"use strict";

const crypto = require("crypto");
const standardwebhooks = require("standardwebhooks");
const svix = require("svix");

function webhook(lib, secret) {
  if (lib === "standardwebhooks") return new standardwebhooks.Webhook(secret);
  if (lib === "svix") return new svix.Webhook(secret);
  throw new Error("unknown lib " + lib);
}

function headerNames(lib) {
  const p = lib === "svix" ? "svix-" : "webhook-";
  return [p + "id", p + "timestamp", p + "signature"];
}

function run(req) {
  const body = req.body_b64 !== undefined ?
    Buffer.from(req.body_b64, "base64") : undefined;
  switch (req.op) {
    case "sign": {
      // The SDKs take the payload as a string or Buffer and sign its
      // UTF-8 text; the timestamp as a Date.
      const sig = webhook(req.lib, req.secret).sign(
        req.id, new Date(req.timestamp * 1000), body);
      const [id, ts, s] = headerNames(req.lib);
      return { headers: { [id]: req.id, [ts]: String(req.timestamp),
                          [s]: sig } };
    }
    case "keypair": {
      const { publicKey, privateKey } = crypto.generateKeyPairSync("ed25519");
      // The raw 32-byte key is the last 32 bytes of its SPKI form.
      const raw = publicKey.export({ format: "der", type: "spki" })
        .subarray(-32);
      return {
        public_key: "whpk_" + raw.toString("base64"),
        private_key: privateKey.export({ format: "pem", type: "pkcs8" }),
      };
    }
    case "sign-ed25519": {
      const content = Buffer.concat([
        Buffer.from(`${req.id}.${req.timestamp}.`), body]);
      const sig = crypto.sign(null, content,
                              crypto.createPrivateKey(req.private_key));
      return { headers: { "webhook-id": req.id,
                          "webhook-timestamp": String(req.timestamp),
                          "webhook-signature": "v1a," +
                            sig.toString("base64") } };
    }
    case "verify":
      try {
        webhook(req.lib, req.secret).verify(body, req.headers);
        return { ok: true };
      } catch (e) {
        return { ok: false, error: String(e.message || e) };
      }
    default:
      throw new Error("unknown op " + req.op);
  }
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  process.stdout.write(JSON.stringify(run(JSON.parse(input))) + "\n");
});
