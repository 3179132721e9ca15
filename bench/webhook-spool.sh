#!/bin/sh
# webhook-spool.sh - bench/run's command for adnanh/webhook: spool the
# delivery the way a webhook user would, for comparison with payhook.
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# webhook has already checked the HMAC (payload-hmac-sha256 rule) and
# passes the raw body in $PAYLOAD; it runs this in the spool directory and
# answers with what it prints. Writes the body to a new file in tmp/ and
# renames it into new/. No fsync (a 200 does not mean the event is on
# disk) and no deduplication.
set -eu
f=$(mktemp tmp/ev.XXXXXXXXXX)
printf '%s' "$PAYLOAD" > "$f"
mv "$f" new/
printf '{"status":"accepted"}\n'
