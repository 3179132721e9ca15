/* conf.h - the JSON configuration file (payhook.json(5)).
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#ifndef PH_CONF_H
#define PH_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>
#include "nats.h"
#include "netacl.h"
#include "secret.h"
#include "util.h"

struct ph_provider;

#define PH_DEFAULT_MAX_BODY (1024 * 1024)
#define PH_MAX_BODY_CEILING (64 * 1024 * 1024)	/* json-c takes an int length */
#define PH_DEFAULT_RETENTION_DAYS 30
#define PH_DEFAULT_JSON_DEPTH 32
/* A route's name begins every dedup key of its events, which the database
 * takes up to 1024 bytes long: the body-hash key must always fit. */
#define PH_ROUTE_NAME_MAX 128
#define PH_DEFAULT_QUARANTINE_FILES 1000
#define PH_DEFAULT_QUARANTINE_BYTES (16 * 1024 * 1024)
#define PH_DEFAULT_READ_TIMEOUT_S 30
#define PH_MAX_READ_TIMEOUT_S 3600

/* Every fault found while loading, each one line naming its location,
 * e.g. "route 'ngn' (#4): key 'amount_unit': missing; must be ...". */
struct ph_faults {
	char **lines;
	size_t count;
	/* Warnings: worth an operator's attention, not a reason to refuse
	 * the configuration (a secret file readable by others). */
	char **warnings;
	size_t n_warnings;
};

/* Append one fault line. */
void ph_faults_add(struct ph_faults *f, const char *fmt, ...) PH_PRINTF(2, 3);
/* Append one warning line. */
void ph_faults_warn(struct ph_faults *f, const char *fmt, ...)
	PH_PRINTF(2, 3);
/* Free the fault and the warning lines. */
void ph_faults_clear(struct ph_faults *f);

struct ph_route {
	char *name;
	char *path;			/* matched exactly, see ph_config_route() */
	const struct ph_provider *provider;
	size_t max_body_bytes;
	bool require_json_type;		/* 415 unless Content-Type is JSON */
	bool allow_unauthenticated;
	unsigned max_json_depth;	/* the file's, for adapters that parse
					 * the body in authenticate() */
	struct ph_secret *secrets;	/* "secrets": tried in order */
	size_t n_secrets;
	struct json_object *json;	/* the route's own object, for adapters */
	void *adapter;			/* the adapter's parsed settings */
	size_t number;			/* 1-based position in "routes" */
	struct ph_acl allow_from;	/* "allow_from"; used if has_allow_from */
	bool has_allow_from;		/* false: every client address */
	bool sink_nats;			/* "sink": "nats" (nats.h), not the spool */
};

struct ph_config {
	char *file;			/* where it was loaded from */
	char *spool_dir;
	char *state_dir;
	size_t max_body_bytes;
	unsigned dedup_retention_days;
	unsigned max_json_depth;
	struct ph_route *routes;
	size_t n_routes;
	struct json_object *root;	/* keeps every route->json alive */
	/* <spool>/quarantine/ caps (quarantine.h); max_files 0: none kept */
	size_t quarantine_max_files;
	uint64_t quarantine_max_bytes;
	struct ph_acl trusted_proxies;	/* whose X-Forwarded-For is believed */
	unsigned read_timeout_s;	/* bound on reading one request body */
	struct ph_nats_config *nats;	/* the "nats" object, or NULL */
};

/* Where the configuration lives: opt_path (--config) if non-NULL, else
 * $PAYHOOK_CONFIG if set and non-empty, else the compiled-in default. */
const char *ph_config_locate(const char *opt_path);

/* Load and validate the file at path, resolving secrets. Every fault is
 * appended to faults (there may be many). Returns a configuration only when
 * there was no fault; otherwise NULL. Free with ph_config_free(). */
struct ph_config *ph_config_load(const char *path, struct ph_faults *faults)
	PH_NONNULL(1, 2);

/* For the administrative commands: load the configuration that
 * ph_config_locate(opt_path) names. On a fault, print "payhook: PATH is
 * invalid: run payhook --check-config" to stderr and return NULL.
 * Warnings are dropped: --check-config shows them. */
struct ph_config *ph_config_load_command(const char *opt_path);

/* Same as ph_config_load, from an in-memory JSON text (used by the demo
 * and tests); name is used in messages. */
struct ph_config *ph_config_load_text(const char *name, const char *text,
				      size_t len, struct ph_faults *faults)
	PH_NONNULL(1, 2, 4);

void ph_config_free(struct ph_config **cfg);

/* The route whose path equals path, or NULL. */
const struct ph_route *ph_config_route(const struct ph_config *cfg,
				       const char *path) PH_NONNULL(1, 2);

/* Helpers for adapters' configure(): read an optional key of the route's
 * object. Each records a fault (naming the route and key) and returns -1 on a
 * wrong type or value; returns 0 and leaves *out untouched when absent. */
int ph_route_opt_string(struct ph_route *r, const char *key,
			const char **out, struct ph_faults *faults);
int ph_route_opt_secret(struct ph_route *r, const char *key,
			struct ph_secret *out, struct ph_faults *faults);
int ph_route_opt_bool(struct ph_route *r, const char *key, bool *out,
		      struct ph_faults *faults);
/* Resolve the secret reference held by the JSON value v (a string without
 * NUL bytes) into out. label locates v in fault and warning lines, e.g.
 * "route 'ngn' (#4): key 'secrets'" gives "route 'ngn' (#4): key 'secrets':
 * environment variable X is not set". A file: secret readable by others
 * adds a warning; writable by group or others, a fault. A literal secret is
 * wiped from v once copied, so the parsed configuration holds no secret but
 * the resolved ones (which ph_secret_clear() wipes). Returns 0, or -1 with
 * a fault added. */
int ph_config_secret(struct json_object *v, const char *label,
		     struct ph_secret *out, struct ph_faults *faults)
	PH_NONNULL(1, 2, 3, 4);
/* The route's key as a list of secrets: one secret reference, or a
 * non-empty array of them (tried in order; a list lets a secret be
 * rotated). Fills a new array *out of *n_out secrets (free each with
 * ph_secret_clear, then the array); both untouched when key is absent.
 * Returns 0, or -1 with faults added (naming "key 'KEY'" or "KEY[i]"). */
int ph_route_secret_list(struct ph_route *r, const char *key,
			 struct ph_secret **out, size_t *n_out,
			 struct ph_faults *faults);
/* An integer in [min, max] (max below INT64_MAX). */
int ph_route_opt_uint(struct ph_route *r, const char *key, uint64_t min,
		      uint64_t max, uint64_t *out, struct ph_faults *faults);
/* "where" prefix for fault messages about r: "route 'ngn' (#4)". */
const char *ph_route_where(const struct ph_route *r, char *buf, size_t size);

#endif
