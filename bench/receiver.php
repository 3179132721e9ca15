<?php
// receiver.php - bench/run's PHP receiver: what a PHP developer would write
// for a signed webhook, to compare payhook with.
//
// Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
//
// Checks the HMAC-SHA256 of the raw body (hex, X-Signature header) in
// constant time, decodes the JSON, writes the body to a new file in
// $BENCH_SPOOL/tmp and renames it into $BENCH_SPOOL/new. No fsync (a 200
// does not mean the event is on disk) and no deduplication: cheaper than
// what payhook does. BENCH_SECRET and BENCH_SPOOL come from the server's
// environment (lighttpd bin-environment or setenv).

$body = file_get_contents('php://input');
$given = isset($_SERVER['HTTP_X_SIGNATURE']) ? $_SERVER['HTTP_X_SIGNATURE'] : '';
$expected = hash_hmac('sha256', $body, getenv('BENCH_SECRET'));
header('Content-Type: application/json');
if (!hash_equals($expected, $given)) {
    http_response_code(401);
    echo '{"status":"rejected"}';
    exit;
}
$event = json_decode($body, true);
if (!is_array($event) || !isset($event['data']['transaction_id'])) {
    http_response_code(400);
    echo '{"status":"invalid"}';
    exit;
}
$spool = getenv('BENCH_SPOOL');
$tmp = tempnam($spool . '/tmp', 'ev');
if ($tmp === false || file_put_contents($tmp, $body) !== strlen($body) ||
    !rename($tmp, $spool . '/new/' . basename($tmp))) {
    http_response_code(503);
    echo '{"status":"unavailable"}';
    exit;
}
echo '{"status":"accepted"}';
