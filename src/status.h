/* status.h - what is waiting and what arrived: "payhook status" and the
 * status page (product.md; README "payhook status").
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * A report is collected once (spool counts, the counters of stats.h, the
 * last storage error, ship-status.json) and then written in one of the
 * formats. Only event files count: "*.json", not starting with '.', not a
 * dead letter's "*.err.json" sidecar. The page also lists the newest
 * events and the dead letters, each read from its file; it never shows an
 * event's "raw" body or customer data, only id, route, type, amount and
 * age.
 */
#ifndef PH_STATUS_H
#define PH_STATUS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#include "conf.h"
#include "stats.h"

enum { PH_SPOOL_NEW, PH_SPOOL_CUR, PH_SPOOL_DONE, PH_SPOOL_FAILED,
       PH_SPOOL_N_DIRS };

/* How many events and dead letters the page lists, newest first. */
#define PH_STATUS_PAGE_EVENTS 20

struct ph_status_route {
	const char *name;		/* borrowed from the configuration */
	uint64_t counts[PH_STATS_N_OUTCOMES][PH_STATS_N_WINDOWS];
};

struct ph_status_report {
	int64_t now_ms;			/* when it was collected */
	const char *spool_dir;		/* borrowed */
	uint64_t events[PH_SPOOL_N_DIRS];
	bool has_oldest;		/* new/ holds an event */
	int64_t oldest_new_age_s;
	struct ph_status_route *routes;	/* the delivery routes, in order */
	size_t n_routes;
	bool has_fault;
	struct ph_stats_fault fault;
	/* <state_dir>/ship-status.json, parsed; NULL when absent. When it
	 * cannot be read or is not a ship status, ship_error says why. */
	struct json_object *ship;
	char *ship_error;
};

/* Collect the report for cfg at now_ms (Unix time in ms). Returns 0, or
 * -1 (err set) when a spool folder or the counters cannot be read (a
 * missing folder counts as empty). Clear with ph_status_report_clear. */
int ph_status_collect(const struct ph_config *cfg, int64_t now_ms,
		      struct ph_status_report *r, struct ph_error *err)
	PH_NONNULL(1, 3);
void ph_status_report_clear(struct ph_status_report *r);

/* The three formats of "payhook status". */
void ph_status_write_text(const struct ph_status_report *r, FILE *out);
void ph_status_write_json(const struct ph_status_report *r, FILE *out);
void ph_status_write_prometheus(const struct ph_status_report *r, FILE *out);

/* The status page for the report: a complete HTML document, every text
 * from a file escaped. The newest events of new/, cur/ and done/ and the
 * dead letters of failed/ are read from r->spool_dir. */
void ph_status_write_page(const struct ph_status_report *r, FILE *out);

/* "payhook status [--json|--prometheus] [--config PATH]". */
int ph_status_main(int argc, char **argv);

#endif
