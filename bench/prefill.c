/* prefill.c - fill a dedup database with COUNT recorded events, for
 * bench/run's growth measurements.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * Usage: prefill STATE_DIR COUNT [ROUTE:PROVIDER:EVENT]
 *
 * Stores COUNT "done" records under the keys payhook would make for
 * ngn-gateway deliveries of route "ngn" (ngn:ngn-gateway:payment.success:ID,
 * the prefix can be changed), with IDs of 16 hex digits spread evenly over
 * their whole range. bench/run's events carry random IDs of the same form,
 * so its requests look up and insert keys among the prefilled ones, all
 * over the tree, as a provider's payment ids would.
 *
 * It uses only dedup.h, as payhook does, and stays out of the request
 * path: one ph_dedup_put_raw() transaction (not synced) per record, keys
 * in ascending order, so Berkeley DB appends to the tree's last leaf.
 * Every CKP_EVERY-th record, and the last, is claimed and committed
 * instead (a synced commit), because a commit is what
 * checkpoints the environment and lets Berkeley DB remove the log files
 * the fill has written; without it the log would grow by about 200 bytes
 * per record and the next opener would replay all of it.
 *
 * Prints its progress on stderr and, on stdout, one line:
 *   prefill: COUNT records in SECONDS s (RATE/s)
 * Exits 0 on success, 1 on a dedup error, 2 on bad arguments.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dedup.h"
#include "util.h"

#define DEFAULT_PREFIX	"ngn:ngn-gateway:payment.success"
#define CKP_EVERY	50000UL
#define PROGRESS_EVERY	1000000UL
/* The event id recorded for every key: a fixed, valid ULID. */
#define FILL_ID		"01JBENCHPREFILL00000000000"

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A claim and a commit of key: the commit checkpoints (see above). */
static int
claim_commit(struct ph_dedup *dd, const char *key, struct ph_error *err)
{
	switch (ph_dedup_claim(dd, key, NULL, err)) {
	case PH_CLAIM_OWNED:
		return ph_dedup_commit(dd, key, FILL_ID, err);
	case PH_CLAIM_DUPLICATE:
		return ph_error_set(err, "key %s is already recorded: prefill "
				    "an empty state directory", key);
	default:
		return -1;
	}
}

int
main(int argc, char **argv)
{
	struct ph_dedup_options opt = { 0 };
	struct ph_error err = { "" };
	struct ph_dedup *dd;
	const char *prefix = DEFAULT_PREFIX;
	unsigned long count, i;
	uint64_t step;
	int64_t created = (int64_t)time(NULL);
	char key[128], *end;
	double t0, t;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: prefill STATE_DIR COUNT "
			"[ROUTE:PROVIDER:EVENT]\n");
		return 2;
	}
	errno = 0;
	count = strtoul(argv[2], &end, 10);
	if (errno != 0 || *end != '\0' || count == 0 ||
	    count > 1000UL * 1000 * 1000) {
		fprintf(stderr, "prefill: COUNT must be 1 to 10^9\n");
		return 2;
	}
	if (argc == 4)
		prefix = argv[3];
	if (strlen(prefix) > 64) {
		fprintf(stderr, "prefill: prefix longer than 64 bytes\n");
		return 2;
	}
	/* retention_days 0 would purge everything at the first commit. */
	opt.retention_days = 3650;
	dd = ph_dedup_open(argv[1], &opt, &err);
	if (dd == NULL) {
		fprintf(stderr, "prefill: %s\n", err.msg);
		return 1;
	}
	step = UINT64_MAX / count;
	t0 = now_s();
	for (i = 0; i < count; i++) {
		int ret;

		snprintf(key, sizeof(key), "%s:%016" PRIx64, prefix,
			 (uint64_t)i * step);
		if ((i + 1) % CKP_EVERY == 0 || i + 1 == count)
			ret = claim_commit(dd, key, &err);
		else
			ret = ph_dedup_put_raw(dd, key, true, 0, created,
					       FILL_ID, &err);
		if (ret != 0) {
			fprintf(stderr, "prefill: record %lu: %s\n", i,
				err.msg);
			ph_dedup_close(&dd);
			return 1;
		}
		if ((i + 1) % PROGRESS_EVERY == 0) {
			t = now_s() - t0;
			fprintf(stderr, "prefill: %lu records, %.0f s, "
				"%.0f/s\n", i + 1, t, (double)(i + 1) / t);
		}
	}
	t = now_s() - t0;
	ph_dedup_close(&dd);
	printf("prefill: %lu records in %.1f s (%.0f/s)\n", count, t,
	       (double)count / t);
	return 0;
}
