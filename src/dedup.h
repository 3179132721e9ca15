/* dedup.h - exactly-once claims on event keys, in a Berkeley DB environment.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * Many processes (FastCGI workers, CGI invocations) share one transactional
 * environment in state_dir. A delivery goes:
 *
 *   ph_dedup_claim()    atomically: key unknown -> record "pending" (owner
 *                       pid and start time, time) and return
 *                       PH_CLAIM_OWNED; key done -> PH_CLAIM_DUPLICATE; key
 *                       pending under a live owner -> wait (bounded) until
 *                       it resolves. A pending record whose owner died (no
 *                       such pid, or a pid with another start time) is
 *                       taken over at once; a live owner's only when it is
 *                       ten times the claim timeout old, with an error
 *                       logged. A record that does not decode is logged
 *                       and taken over. Short transactions only: no lock
 *                       is held while the caller writes the spool, so
 *                       distinct events never wait on each other's disk.
 *   (caller spools the event durably)
 *   ph_dedup_commit()   record -> "done" with the event id, written to the
 *                       log but not flushed: the event file is durable
 *                       already, and ph_dedup_flush() (after the answer,
 *                       at most a second later) or, after a crash, the
 *                       rebuild from the spool (rebuild below) makes the
 *                       record durable
 *   ph_dedup_release()  on a spool failure: delete the pending record
 *
 * Records carry their time; ph_dedup_purge() deletes those older than the
 * retention. The environment is registered (DB_REGISTER) so that recovery
 * runs automatically when a process died inside it, uses automatic deadlock
 * detection and lock timeouts, checkpoints, and removes log files it no
 * longer needs. Its region files are allocated in full, so that a full
 * file system fails a write with ENOSPC instead of a SIGBUS. Every wait is
 * bounded: see ph_dedup_wedged() for what happens when one is not.
 */
#ifndef PH_DEDUP_H
#define PH_DEDUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "util.h"

struct ph_dedup;

enum ph_claim {
	PH_CLAIM_ERROR = -1,	/* storage problem: answer 503 */
	PH_CLAIM_OWNED = 0,	/* caller must spool, then commit or release */
	PH_CLAIM_DUPLICATE = 1,	/* already recorded: answer duplicate */
	PH_CLAIM_BUSY = 2,	/* still pending elsewhere after waiting: 503 */
};

struct ph_dedup_options {
	unsigned retention_days;	/* records older than this are purged */
	unsigned claim_wait_ms;		/* how long to wait on a pending claim */
	/* How long a live owner may take to resolve its claim: its pending
	 * record is taken over (and purged) only at 10x this age; a dead
	 * owner's is taken over at once and purged past 1x. */
	unsigned claim_timeout_s;
	/* Bound on one stretch of Berkeley DB calls (a transaction, an
	 * open, a close); 0 means 10 s. See ph_dedup_wedged(). */
	unsigned watchdog_ms;
	/*
	 * Commits are not flushed one by one, so records of the last moments
	 * before an operating system crash or power cut may be missing from
	 * the recovered database. The first open after each boot, and of a
	 * new environment, therefore calls rebuild(dd, rebuild_arg, err)
	 * after recovery, while it holds the environment's open lock (no
	 * other process can claim until it returns): rebuild puts back, with
	 * ph_dedup_restore(), the record of every event the spool still
	 * holds, and returns 0 or -1 with err. On -1 the open fails (503),
	 * and the next open runs recovery and rebuild again. It may also
	 * return 1, "not now" (an administrative command that cannot read
	 * the spool): the open succeeds, and the next open recovers and
	 * rebuilds. NULL: nothing to rebuild from (tests).
	 */
	int (*rebuild)(struct ph_dedup *dd, void *arg, struct ph_error *err);
	void *rebuild_arg;
	/* How long one unforced ph_dedup_purge() call may work; 0 means
	 * 100 ms. */
	unsigned purge_slice_ms;
};

/* Open (creating if needed, mode 0600 files in a 0700 directory) the
 * environment and database in state_dir. Runs recovery if a process died
 * inside the environment. Returns NULL with err on failure. */
struct ph_dedup *ph_dedup_open(const char *state_dir,
			       const struct ph_dedup_options *opt,
			       struct ph_error *err) PH_NONNULL(1, 2);

/* A handle belongs to the process that opened it (Berkeley DB's
 * DB_REGISTER allows one per process): a forked child opens its own;
 * closing an inherited handle in a child only frees memory. */
void ph_dedup_close(struct ph_dedup **dd);

/* Bound the waiting of the work in hand (one request's claim, commit and
 * release): waits on another process's pending claim and retries of lock
 * conflicts give up at until_us (ph_now_monotonic_us() time; 0 removes the
 * bound), each operation still retrying for at least half a second. So a
 * request held up behind a stopped process is answered within its budget,
 * not after the sum of every operation's own limit. */
void ph_dedup_set_deadline(struct ph_dedup *dd, uint64_t until_us)
	PH_NONNULL(1);

/* See the file comment. On PH_CLAIM_DUPLICATE, id_r (27 bytes, may be NULL)
 * receives the event id recorded for the key ("" if unknown). A pending
 * record of this process's own pid is stale and taken over (PH_CLAIM_OWNED):
 * either this single-threaded process left it when a commit and release
 * both failed, or an earlier process with the same pid died. On
 * PH_CLAIM_BUSY err says why. */
enum ph_claim ph_dedup_claim(struct ph_dedup *dd, const char *key,
			     char *id_r, struct ph_error *err)
	PH_NONNULL(1, 2);

/* Mark an owned claim done with event id. When it returns 0 the record is
 * in the log in the operating system's hands: it survives the death of any
 * process (recovery replays it), but not a crash of the system until
 * ph_dedup_flush() has run; see rebuild above for that case. */
int ph_dedup_commit(struct ph_dedup *dd, const char *key, const char *id,
		    struct ph_error *err) PH_NONNULL(1, 2, 3);

/* Flush the log to disk: every record committed so far, by any process,
 * is durable when it returns 0. One flush covers the commits of every
 * process in the environment (group commit). */
int ph_dedup_flush(struct ph_dedup *dd, struct ph_error *err) PH_NONNULL(1);

/* When this handle's oldest commit not yet flushed by it was made
 * (ph_now_monotonic_us() time), or 0 when it has none. */
uint64_t ph_dedup_unflushed_since(const struct ph_dedup *dd) PH_NONNULL(1);

/* For rebuild callbacks only: record key as done with event id, created
 * at `created` (seconds since the epoch), unless it is recorded done
 * already. Not flushed: the open flushes after the rebuild. */
int ph_dedup_restore(struct ph_dedup *dd, const char *key, const char *id,
		     int64_t created, struct ph_error *err) PH_NONNULL(1, 2, 3);

/* Remove an owned pending claim so a retry can deliver the event. */
int ph_dedup_release(struct ph_dedup *dd, const char *key,
		     struct ph_error *err) PH_NONNULL(1, 2);

/* Delete records older than the retention, in small transactions; a purge
 * starts at most once per hour across all processes unless force. A
 * forced purge runs to its end. An unforced one works for purge_slice_ms
 * at most, so that a worker that purges between requests keeps answering
 * (a purge of 10 M records reads them all, for about a minute); the next
 * call goes on where it stopped, and ph_dedup_purging() says whether one
 * is under way. Returns the number of records the purge deleted once it
 * has ended in this call, 0 while it goes on or when none was due, or -1
 * (the purge is then abandoned; the next hour's starts again). */
long ph_dedup_purge(struct ph_dedup *dd, bool force, struct ph_error *err)
	PH_NONNULL(1);

/* True while a purge started by this handle has work left. */
bool ph_dedup_purging(const struct ph_dedup *dd) PH_NONNULL(1);

/*
 * Whether this process must stop: a stretch of Berkeley DB calls overran
 * its watchdog_ms (a mutex left held by a process that died inside the
 * environment, a stalled disk) or faulted with SIGBUS, and was abandoned
 * by a siglongjmp() out of it. Every dedup function then fails at once
 * without touching the environment (ph_dedup_close() only frees memory);
 * the caller answers 503 and exits, and the next process to open the
 * environment recovers it. Waits for dedup.lock are bounded too (5 s),
 * failing the call without wedging. Installs handlers for SIGRTMIN (a
 * POSIX timer of its own) and SIGBUS at the first dedup call.
 */
bool ph_dedup_wedged(void);

/* Number of records (for tests and --dedup-count), counted in batches of
 * short transactions: not a snapshot while others write. Returns -1 on
 * error. */
long ph_dedup_count(struct ph_dedup *dd, struct ph_error *err) PH_NONNULL(1);

/* For tests only: store a record under key as if claimed by process pid
 * (done false; its start time is read from /proc) or committed with id
 * (done true), with time created (seconds since the epoch), replacing any
 * record. Returns 0 or -1. */
int ph_dedup_put_raw(struct ph_dedup *dd, const char *key, bool done,
		     long pid, int64_t created, const char *id,
		     struct ph_error *err) PH_NONNULL(1, 2, 6);

#endif
