/* drain.h - payhook drain: run a command for each event of the spool.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * The spool side of the consumer (README, "Running your job for each
 * event: payhook drain"): claims (new/X renamed to cur/X, then an
 * exclusive flock(2) on cur/X held for as long as the command runs; the
 * command inherits the locked file as its standard input, so the lock
 * lives exactly as long as either of them), the state of events in retry
 * (<spool>/.drain/X, written by the lock holder only), ordering, the
 * moves to done/ and failed/, inotify and the periodic scan. Running the
 * command is job.c's; backoff and the dead-letter report retry.c's.
 */
#ifndef PH_DRAIN_H
#define PH_DRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util.h"

#define PH_DRAIN_STATE_DIR ".drain"
#define PH_DRAIN_STATE_SCHEMA "payhook.drain-state/1"
#define PH_DRAIN_JOBS_MAX 256

struct ph_drain_options {
	const char *spool_dir;
	const char *command;		/* for /bin/sh -c */
	unsigned jobs;			/* commands at once, >= 1 */
	bool ordered;			/* one at a time per payment, in order */
	bool once;			/* run what is due, then exit */
	bool delete_done;		/* remove instead of moving to done/ */
	uint64_t timeout_ms;		/* per attempt; 0: none */
	uint64_t retry_min_ms, retry_max_ms;
	unsigned max_attempts;		/* >= 1 */
	uint64_t scan_interval_ms;	/* fallback scan of new/ and cur/ */
};

/* Run until SIGTERM or SIGINT (or, with once, until nothing is due).
 * Returns the exit status: 0, or 1 when the spool cannot be used. */
int ph_drain_run(const struct ph_drain_options *opt) PH_NONNULL(1);

/* Move the dead letters of failed/ whose event id is one of ids (all of
 * them when n_ids is 0) back to new/, forgetting their attempts. Prints
 * one line per event moved to out. Returns 0, or 1 when an id was not
 * found or a move failed (the others are still moved). */
int ph_drain_retry_failed(const char *spool_dir, char *const *ids,
			  size_t n_ids, FILE *out) PH_NONNULL(1, 4);

#endif
