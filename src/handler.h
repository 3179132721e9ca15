/* handler.h - the request pipeline: route, verify, normalize, dedup, spool.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#ifndef PH_HANDLER_H
#define PH_HANDLER_H

#include <stdint.h>

#include "conf.h"
#include "dedup.h"
#include "nats.h"
#include "request.h"
#include "spool.h"
#include "stats.h"

/* Per-process state, opened once and reused for every request. */
struct ph_context {
	const char *config_path;
	struct ph_config *cfg;		/* NULL: misconfigured, answer 500 */
	char *config_fault;		/* first fault, for the 500 log line */
	struct ph_spool *spool;		/* NULL until opened successfully */
	struct ph_dedup *dedup;		/* NULL until opened successfully */
	uint64_t last_maintain_us;	/* monotonic time of the last purge check */
	char *unreleased;		/* a claim whose release failed, owned */
	struct ph_stats *stats;		/* delivery counters; NULL if no cfg */
	struct ph_nats *nats;		/* "sink": "nats" routes; NULL until used */
};

/* Load the configuration and open storage. Never fails: faults are kept
 * so each request can answer 500 (configuration) or 503 (storage, retried
 * on the next request). */
void ph_context_init(struct ph_context *ctx, const char *config_path);
void ph_context_clear(struct ph_context *ctx);

/* Handle one request completely, including its answer and log line. */
void ph_handle(struct ph_context *ctx, struct ph_request *req);

/* Housekeeping between requests, after the answer is out: retry the
 * release of a claim that failed to release (other processes would wait
 * for it while this process lives), and purge expired dedup records (the
 * database rate-limits this to once an hour across all processes; this
 * process asks at most every few minutes). */
void ph_context_maintain(struct ph_context *ctx);

/* Group commit (README, "How a delivery becomes durable"): dedup commits
 * are written, not flushed, and one flush of the log covers every commit
 * made before it, by any process. ph_context_maintain() flushes once the
 * oldest unflushed commit of this process is PH_FLUSH_DELAY_US old; a
 * FastCGI worker waiting for its next request flushes when that time comes
 * first (ph_context_flush_due()), and ph_context_clear() flushes before it
 * closes. */
#define PH_FLUSH_DELAY_US (1000ull * 1000)

/* Flush now if this process has unflushed commits. */
void ph_context_flush(struct ph_context *ctx);

/* When a flush is due (ph_now_monotonic_us() time), or 0 for none. */
uint64_t ph_context_flush_due(const struct ph_context *ctx);

#endif
