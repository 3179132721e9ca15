/* stats.h - delivery counters and the last storage error, for "payhook
 * status" and the status page.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * On disk, under <state_dir>/stats/ (0700; files 0600):
 *
 *   route-<name>    one file per route name, PH_STATS_MINUTES fixed-size
 *                   buckets of struct ph_stats_bucket, bucket i holding the
 *                   minute m with m % PH_STATS_MINUTES == i (a bucket whose
 *                   minute is not the one wanted is stale and counts as
 *                   zero). 23 040 bytes, whatever the traffic.
 *   storage-error   one fixed-size record (struct ph_stats_fault): when and
 *                   what the last storage failure of the request path was.
 *
 * The state directory and stats/ are made (0700) when missing, as the
 * dedup database makes the state directory. Writers change a record in
 * place with pread/pwrite under an open file description lock
 * (F_OFD_SETLKW) on just that record, so any number of processes (FastCGI
 * workers, CGI) count safely and a process that dies holding a lock
 * releases it. Nothing is ever fsynced: a crash may lose
 * the last counts, never an event. The files are made at their full size
 * (posix_fallocate) when first opened, so a later full disk does not stop
 * them from being updated. Both in machine byte order: the files are
 * private to this machine.
 */
#ifndef PH_STATS_H
#define PH_STATS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "util.h"

#define PH_STATS_MINUTES 1440		/* one day of one-minute buckets */
#define PH_STATS_FAULT_MSG 500

enum ph_stats_outcome {
	PH_STATS_ACCEPTED,
	PH_STATS_DUPLICATE,
	PH_STATS_REJECTED,		/* answered 4xx */
	PH_STATS_N_OUTCOMES,
};

struct ph_stats_bucket {
	uint32_t minute;		/* Unix time / 60; 0: never used */
	uint32_t count[PH_STATS_N_OUTCOMES];
};

struct ph_stats_fault {
	int64_t at_ms;			/* Unix time in ms; 0: none recorded */
	uint32_t len;
	char msg[PH_STATS_FAULT_MSG];
};

/* The windows a report counts over: the last hour and the last day, each
 * ending with the current minute. */
enum { PH_STATS_1H, PH_STATS_24H, PH_STATS_N_WINDOWS };

/* One process's handle: the directory and the files it has open. */
struct ph_stats;

/* A handle for <state_dir>/stats; nothing is opened until used. */
struct ph_stats *ph_stats_new(const char *state_dir) PH_NONNULL(1);
void ph_stats_free(struct ph_stats **st);

/* Count one delivery of route at now. Never fails: an error (directory
 * or file not writable, disk full) is logged at most once every few
 * minutes per process and otherwise ignored. */
void ph_stats_count(struct ph_stats *st, const char *route,
		    enum ph_stats_outcome outcome, time_t now)
	PH_NONNULL(1, 2);

/* Record msg (cut to PH_STATS_FAULT_MSG bytes) as the last storage error,
 * at at_ms. Never fails, as ph_stats_count. */
void ph_stats_storage_error(struct ph_stats *st, int64_t at_ms,
			    const char *msg) PH_NONNULL(1, 3);

/* Read route's counts for the windows ending at now into
 * counts[outcome][window]; a route never counted reads as zeros.
 * Returns 0 or -1 (err set). */
int ph_stats_read_route(const char *state_dir, const char *route, time_t now,
			uint64_t counts[PH_STATS_N_OUTCOMES][PH_STATS_N_WINDOWS],
			struct ph_error *err) PH_NONNULL(1, 2, 4);

/* Read the last storage error: 1 and *fault filled (msg NUL-terminated,
 * len its length), 0 if none was ever recorded, -1 (err set). */
int ph_stats_read_fault(const char *state_dir, struct ph_stats_fault *fault,
			struct ph_error *err) PH_NONNULL(1, 2);

#endif
