#!/usr/bin/env node
// simple.js - signatures for payhook's SDK tests of the providers that sign
// the body (or notification URL and body) with one HMAC: Paystack, Razorpay,
// Checkout.com, Flutterwave, Square.
//
// Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
//
//   node simple.js sign PROVIDER SECRET FILE [URL]
//       Print, as one JSON object, the headers that deliver FILE's bytes
//       to PROVIDER with SECRET (square: to the notification URL URL). For providers that publish no signer
//       (Paystack, Checkout.com, Flutterwave) this follows their
//       documentation with Node's crypto; nothing here is payhook's code.
//   node simple.js verify PROVIDER SECRET FILE SIGNATURE [URL]
//       Ask the provider's own npm SDK whether SIGNATURE is valid for
//       FILE's bytes: prints "valid" (exit 0) or "invalid" (exit 1).
//       razorpay: Razorpay.validateWebhookSignature(body, sig, secret)
//       square:   WebhooksHelper.verifySignature({requestBody,
//                 signatureHeader, signatureKey, notificationUrl: URL})
'use strict';

const crypto = require('crypto');
const fs = require('fs');

function hmacHex(algo, secret, body) {
	return crypto.createHmac(algo, secret).update(body).digest('hex');
}

const signers = {
	// https://paystack.com/docs/payments/webhooks/ : "x-paystack-signature
	// ... HMAC SHA512 signature of the event payload signed using your
	// secret key".
	paystack: (secret, body) => ({
		'x-paystack-signature': hmacHex('sha512', secret, body),
	}),
	// https://razorpay.com/docs/webhooks/validate-test/ : "HMAC with
	// SHA256 algorithm; with your webhook secret set as the key and the
	// webhook request body as the message" (the SDK only verifies).
	razorpay: (secret, body) => ({
		'X-Razorpay-Signature': hmacHex('sha256', secret, body),
	}),
	// https://www.checkout.com/docs/workflows/receive-webhooks : the
	// HMAC of the payload with the webhook action's key, "hex-encoded
	// (Base16)" in Cko-Signature.
	checkout: (secret, body) => ({
		'Cko-Signature': hmacHex('sha256', secret, body),
	}),
	// https://developer.flutterwave.com/docs/webhooks : the secret hash
	// from the dashboard, as it is, in verif-hash; nothing is signed.
	flutterwave: (secret) => ({
		'verif-hash': secret,
	}),
	// https://developer.squareup.com/docs/webhooks/step3validate : base64
	// HMAC-SHA256 of the notification URL followed by the body, as the
	// SDK's WebhooksHelper computes it (the SDK only verifies).
	square: (secret, body, url) => ({
		'x-square-hmacsha256-signature': crypto.createHmac('sha256',
		    secret).update(Buffer.concat([Buffer.from(url, 'utf8'),
		    body])).digest('base64'),
	}),
};

async function verify(provider, secret, body, signature, url) {
	switch (provider) {
	case 'razorpay': {
		const Razorpay = require('razorpay');
		return Razorpay.validateWebhookSignature(body.toString('utf8'),
		    signature, secret);
	}
	case 'square': {
		const { WebhooksHelper } = require('square');
		return WebhooksHelper.verifySignature({
			requestBody: body.toString('utf8'),
			signatureHeader: signature,
			signatureKey: secret,
			notificationUrl: url,
		});
	}
	default:
		throw new Error('no SDK verifier for ' + provider);
	}
}

async function main(argv) {
	const [cmd, provider, secret, file, signature, url] = argv;
	if (file === undefined)
		throw new Error('usage: simple.js sign|verify PROVIDER SECRET ' +
		    'FILE [SIGNATURE [URL]]');
	const body = fs.readFileSync(file);
	if (cmd === 'sign') {
		if (!(provider in signers))
			throw new Error('no signer for ' + provider);
		// sign's fifth argument is Square's notification URL.
		process.stdout.write(JSON.stringify(signers[provider](secret,
		    body, argv[4])) + '\n');
		return 0;
	}
	if (cmd === 'verify') {
		const ok = await verify(provider, secret, body, signature, url);
		process.stdout.write(ok ? 'valid\n' : 'invalid\n');
		return ok ? 0 : 1;
	}
	throw new Error('unknown command ' + cmd);
}

main(process.argv.slice(2)).then((rc) => { process.exitCode = rc; },
    (e) => { process.stderr.write(String(e.stack || e) + '\n');
	process.exitCode = 2; });
