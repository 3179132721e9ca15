#!/usr/bin/env python3
# ledger.py - an example job for "payhook drain": append each payment event
# to a ledger file, once per dedup_key, however often drain runs it.
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
#   payhook drain --exec '/usr/local/bin/ledger.py /srv/shop/ledger.tsv'
#
# drain gives the event (schema payhook.event/2, see README) on standard
# input. It runs an event at least once: again after a failure, and again
# if drain was killed while this ran. So the job must be idempotent: here a
# lock on the ledger, a look for the event's dedup_key, and an append only
# if it is not there yet. Exit 0 when the event is in the ledger (new or
# already), non-zero to be tried again later; what goes to stderr ends up
# in failed/<event>.err.json if all attempts fail.

import fcntl
import json
import os
import sys


def main():
    if len(sys.argv) != 2:
        print("usage: ledger.py LEDGER-FILE", file=sys.stderr)
        return 2
    event = json.load(sys.stdin)
    if event.get("schema") != "payhook.event/2":
        print("unexpected schema %r" % event.get("schema"), file=sys.stderr)
        return 1
    key = event["dedup_key"]
    amount = event.get("amount") or {}
    line = "\t".join([
        key,
        event["id"],
        event["type"],
        event.get("payment_id") or "-",
        amount.get("value", "-"),
        amount.get("currency", "-"),
    ]) + "\n"
    if "\t" in key or "\n" in key:
        print("dedup_key holds a tab or newline", file=sys.stderr)
        return 1
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "r+", encoding="utf-8") as ledger:
        fcntl.flock(ledger, fcntl.LOCK_EX)     # one writer at a time
        ledger.seek(0)
        for old in ledger:
            if old.split("\t", 1)[0] == key:
                return 0                        # recorded before: done
        ledger.write(line)
        ledger.flush()
        os.fsync(ledger.fileno())               # durable before exit 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
