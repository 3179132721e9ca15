#!/usr/bin/env php
<?php
// ledger.php - an example job for "payhook drain", in PHP: append each
// payment event to a ledger file, once per dedup_key, however often drain
// runs it.
//
// Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
//
//   payhook drain --exec 'php /home/shop/ledger.php /home/shop/ledger.tsv'
//
// drain gives the event (schema payhook.event/2, see README) on standard
// input and runs it at least once (again after a failure, or after drain
// was killed while this ran), so this job is idempotent: it locks the
// ledger, looks for the event's dedup_key and appends only when it is
// not there yet. Exit 0 when the event is in the ledger, non-zero to be
// tried again later; what goes to stderr ends up in
// failed/<event>.err.json if every attempt fails.

if ($argc != 2) {
    fwrite(STDERR, "usage: ledger.php LEDGER-FILE\n");
    exit(2);
}
$event = json_decode(stream_get_contents(STDIN), true, 512,
                     JSON_BIGINT_AS_STRING);
if (!is_array($event) || ($event['schema'] ?? null) !== 'payhook.event/2') {
    fwrite(STDERR, "not a payhook.event/2 event\n");
    exit(1);
}
$key = $event['dedup_key'];
if (strpbrk($key, "\t\n") !== false) {
    fwrite(STDERR, "dedup_key holds a tab or newline\n");
    exit(1);
}
$amount = $event['amount'] ?? [];
$line = implode("\t", [
    $key,
    $event['id'],
    $event['type'],
    $event['payment_id'] ?? '-',
    $amount['value'] ?? '-',
    $amount['currency'] ?? '-',
]) . "\n";

$old = umask(077);
$ledger = fopen($argv[1], 'a+');
umask($old);
if ($ledger === false || !flock($ledger, LOCK_EX)) {  // one writer at a time
    fwrite(STDERR, "cannot open or lock the ledger\n");
    exit(1);
}
rewind($ledger);
while (($old_line = fgets($ledger)) !== false) {
    if (explode("\t", $old_line, 2)[0] === $key) {
        exit(0);                                       // recorded before
    }
}
if (fwrite($ledger, $line) !== strlen($line) || !fflush($ledger) ||
    !fsync($ledger)) {                                 // durable before exit 0
    fwrite(STDERR, "cannot write the ledger\n");
    exit(1);
}
exit(0);
