#!/usr/bin/env node
// adyen.js - sign or verify Adyen standard notifications with
// @adyen/api-library's own HmacValidator, for payhook's integration tests.
//
// Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
//
//   node adyen.js sign HEXKEY   < notification.json   -> signed body
//   node adyen.js sign-unsigned HEXKEY < ...          -> the same, items
//                                     that carry an hmacSignature kept as is
//   node adyen.js verify HEXKEY < body                -> "valid N", exit 0,
//                                                        else exit 1
//
// sign sets each item's additionalData.hmacSignature to what the SDK
// computes for it (calculateHmac on the NotificationRequestItem object) and
// writes the body back with JSON.stringify (key order kept).
"use strict";

const { hmacValidator: HmacValidator } = require("@adyen/api-library");

function readStdin() {
    return require("fs").readFileSync(0, "utf8");
}

function items(doc) {
    if (!doc || !Array.isArray(doc.notificationItems))
        throw new Error("no notificationItems array");
    return doc.notificationItems.map((w) => w.NotificationRequestItem);
}

function main(argv) {
    const [mode, key] = argv;
    const validator = new HmacValidator();
    if (!key || !["sign", "sign-unsigned", "verify"].includes(mode)) {
        process.stderr.write("usage: adyen.js sign|sign-unsigned|verify "
                             + "HEXKEY\n");
        return 2;
    }
    const doc = JSON.parse(readStdin());
    if (mode !== "verify") {
        for (const item of items(doc)) {
            item.additionalData = item.additionalData || {};
            if (mode === "sign-unsigned" && item.additionalData.hmacSignature)
                continue;
            item.additionalData.hmacSignature =
                validator.calculateHmac(item, key);
        }
        process.stdout.write(JSON.stringify(doc));
        return 0;
    }
    let n = 0;
    for (const item of items(doc)) {
        if (!validator.validateHMAC(item, key)) {
            process.stdout.write("invalid item " + n + "\n");
            return 1;
        }
        n++;
    }
    process.stdout.write("valid " + n + "\n");
    return 0;
}

process.exitCode = main(process.argv.slice(2));
