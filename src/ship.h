/* ship.h - "payhook ship": the spool's events to a NATS JetStream stream.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * Each file of <spool>/new/ is claimed by the spool protocol (opened,
 * flock()ed, then renamed into cur/; the lock is held until the file has
 * left cur/), published (nats.h), and once JetStream has acknowledged it
 * (or answered that its key is already there) moved to done/, or removed
 * with --delete-done. A claim whose owner died holds no lock: any ship
 * takes it back into new/. Nothing is ever dropped: a publish without an
 * acknowledgement puts the file back into new/ and is retried with
 * backoff; "--once" gives up after --give-up (default 60 s) of failures in
 * a row, exiting 1 with every unsent event in new/.
 *
 * After each pass, <state_dir>/ship-status.json (mode 0600, written to a
 * temporary file and renamed, not fsynced) holds
 * {"schema":"payhook.ship-status/1","updated_at":T,"sent_total":N,
 *  "duplicate_total":N,"last_sent_at":T|null,"last_error":S|null,
 *  "last_error_at":T|null}, the totals counted across runs.
 *
 * A spool is emptied by one kind of consumer: ship or a drain, not both.
 */
#ifndef PH_SHIP_H
#define PH_SHIP_H

#define PH_SHIP_STATUS_FILE "ship-status.json"
#define PH_SHIP_STATUS_SCHEMA "payhook.ship-status/1"
#define PH_SHIP_GIVE_UP_DEFAULT_S 60

/* "payhook ship [--config PATH] [--once] [--delete-done]
 * [--give-up DURATION]" with argv[0] "ship". Returns the exit status. */
int ph_ship_main(int argc, char **argv);

#endif
