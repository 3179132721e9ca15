/* retry.h - retry policy and dead-letter records of payhook drain.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * What happens to an event whose command failed, independent of where the
 * event came from (the spool today; a message queue may follow): the
 * backoff before the next attempt, the record of each attempt, and the
 * dead-letter report ("payhook.drain-error/1") written when the attempts
 * are used up. Nothing here touches files.
 */
#ifndef PH_RETRY_H
#define PH_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#include <json-c/json.h>

#include "util.h"

#define PH_DRAIN_ERROR_SCHEMA "payhook.drain-error/1"

/* The delay before attempt number failed + 1, after failed attempts
 * (failed >= 1), in milliseconds: d = min(max_ms, min_ms * 2^(failed-1)),
 * less up to a quarter of d taken from rnd (any 32 random bits), so that
 * events that failed together do not all come back together; never below
 * min_ms nor above max_ms (max_ms >= min_ms). */
uint64_t ph_backoff_delay_ms(unsigned failed, uint64_t min_ms,
			     uint64_t max_ms, uint32_t rnd);

/* 32 random bits for ph_backoff_delay_ms() (OpenSSL's generator; the
 * time mixed with the pid should that fail: jitter needs no secrecy). */
uint32_t ph_backoff_random(void);

/* The string member key of obj (an event, a state record), or NULL when
 * obj is NULL or the member is absent or not a string. Borrowed from obj. */
const char *ph_json_str(struct json_object *obj, const char *key);

/* One run of the command for one event. */
struct ph_attempt {
	unsigned number;		/* counted from 1 */
	struct timeval started, finished;	/* wall clock */
	int exit_status;		/* 0-255, or -1: ended by a signal */
	int signal;			/* the signal that ended it, or 0 */
	bool timed_out;			/* killed for passing the timeout */
};

/* Whether the attempt succeeded: exit status 0, not timed out. */
bool ph_attempt_succeeded(const struct ph_attempt *a) PH_NONNULL(1);

/* {"number":1,"started_at":"<RFC 3339 ms>","finished_at":"...",
 *  "exit_status":<int or null>,"signal":"SIGKILL" or null,
 *  "timed_out":false} */
struct json_object *ph_attempt_to_json(const struct ph_attempt *a);

/* The inverse, for state read back after a restart. Returns 0, or -1 if
 * obj is not such an object. */
int ph_attempt_from_json(struct json_object *obj, struct ph_attempt *a_r)
	PH_NONNULL(2);

/* "SIGKILL" for SIGKILL, "SIG<n>" for a number without a name. buf holds
 * at least 16 bytes; the result is buf or a constant. */
const char *ph_signal_name(int sig, char *buf, size_t size) PH_NONNULL(2);

/* "exit status 3", "killed by SIGKILL", "timed out", into buf. */
void ph_attempt_describe(const struct ph_attempt *a, char *buf, size_t size)
	PH_NONNULL(1, 2);

/* The dead-letter report (README, "payhook drain"):
 * {"schema":"payhook.drain-error/1","event_file":...,"event_id":...,
 *  "dedup_key":...,"route":...,"type":...,"attempts":[...],
 *  "stderr_tail":"..."}. The four event fields are taken from event (the
 * event's JSON object; NULL or a missing field gives null). tail is the
 * raw end of the last attempt's standard error, made valid UTF-8 here.
 * Caller puts the result. */
struct json_object *ph_drain_error_json(const char *event_file,
					struct json_object *event,
					const struct ph_attempt *attempts,
					size_t n_attempts, const void *tail,
					size_t tail_len) PH_NONNULL(1);

#endif
