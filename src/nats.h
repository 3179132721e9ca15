/* nats.h - events to a NATS JetStream stream, for several hosts.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * The "nats" object of payhook.json names the cluster and the stream;
 * "payhook ship" (ship.h) and a route with "sink": "nats" publish through
 * this module. Every event goes to the subject
 *
 *     <subject_prefix>.<route>.<type>.<key token>
 *
 * where the key token is the first 128 bits (32 hex digits) of the SHA-256
 * of the event's dedup key. The stream keeps one message per subject and
 * discards a new one on a subject that already has one
 * (max_msgs_per_subject 1, discard new, discard_new_per_subject): a second
 * publish of the same key, from any host and at any time, is refused by the
 * server, and that refusal is a delivery (PH_NATS_DUPLICATE). The headers
 * Nats-Msg-Id (the dedup key) and Payhook-Event-Id (the event id) go with
 * it; Nats-Msg-Id also catches a resend within the duplicate window.
 *
 * The configuration part is always built; the client needs libnats
 * (configure --with-nats). Without it, ph_nats_available() is false, a
 * "nats" sink is a configuration fault and ph_nats_open() says how to get
 * the client.
 */
#ifndef PH_NATS_H
#define PH_NATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>
#include "secret.h"
#include "util.h"

struct ph_faults;

#define PH_NATS_DEFAULT_STREAM "PAYHOOK"
#define PH_NATS_DEFAULT_PREFIX "payhook"
#define PH_NATS_DEFAULT_REPLICAS 3
#define PH_NATS_DEFAULT_WINDOW_S 120
#define PH_NATS_MAX_SERVERS 32
#define PH_NATS_KEY_TOKEN_LEN 32	/* hex digits of SHA-256 in a subject */

/* How the build was made: what to tell someone who asks for NATS when it
 * was built without it. */
#define PH_NATS_MISSING "payhook was built without NATS support: install " \
	"libnats-dev (the NATS C client) and build again with configure " \
	"--with-nats"

/* The parsed "nats" object. Secrets are resolved (user/password, token);
 * creds_file and ca_file are paths handed to the client library. */
struct ph_nats_config {
	char **servers;			/* "nats://host:port", n_servers of them */
	size_t n_servers;
	char *stream;
	char *subject_prefix;
	unsigned replicas;
	uint64_t duplicate_window_s;
	struct ph_secret user;		/* .data NULL: not given */
	struct ph_secret password;
	struct ph_secret token;
	char *creds_file;
	char *ca_file;			/* "tls": { "ca_file": PATH } */
};

/* True when this payhook was built with the NATS client. */
bool ph_nats_available(void);

/* Parse the top-level "nats" value v into a new *out. Every fault is
 * added (named "key 'nats': ..." or "key 'nats.servers'..."). Returns 0,
 * or -1 with *out NULL. */
int ph_nats_config_load(struct json_object *v, struct ph_nats_config **out,
			struct ph_faults *f) PH_NONNULL(1, 2, 3);
void ph_nats_config_free(struct ph_nats_config **nc);

/* The subject of an event with these fields into a new string, or NULL
 * with err filled when route or type would not make subject tokens
 * (A-Z a-z 0-9 _ - and single dots). */
char *ph_nats_subject(const struct ph_nats_config *nc, const char *route,
		      const char *type, const char *dedup_key,
		      struct ph_error *err) PH_NONNULL(1, 2, 3, 4);

struct ph_nats;

/* Connect to the cluster (each server tried once, connect_timeout_ms
 * each) and make sure the stream exists and fits: created when absent
 * (the configured replicas, file storage, the limits above); an existing
 * stream that would break exactly-once (another discard policy, more than
 * one message per subject, memory storage, a retention that deletes) is an
 * error naming what differs. Returns 0 or -1 (err filled). Once
 * connected, the client reconnects by itself. */
int ph_nats_open(const struct ph_nats_config *nc, int64_t connect_timeout_ms,
		 struct ph_nats **out, struct ph_error *err) PH_NONNULL(1, 3);
void ph_nats_close(struct ph_nats **n);

/* True while the connection is up (not reconnecting). */
bool ph_nats_connected(const struct ph_nats *n) PH_NONNULL(1);

enum ph_nats_result {
	PH_NATS_FAILED = -1,	/* no acknowledgement: try again later */
	PH_NATS_SENT = 0,	/* stored by the stream (its replicas) */
	PH_NATS_DUPLICATE = 1,	/* the key was already in the stream */
};

/* Publish one event (data, len: its JSON) and wait at most timeout_ms for
 * JetStream's acknowledgement. A connection that is reconnecting fails at
 * once. Returns a ph_nats_result; PH_NATS_FAILED fills err. */
int ph_nats_publish(struct ph_nats *n, const char *route, const char *type,
		    const char *dedup_key, const char *event_id,
		    const void *data, size_t len, int64_t timeout_ms,
		    struct ph_error *err) PH_NONNULL(1, 2, 3, 4, 5, 6);

/* "payhook drain --nats" (natsdrain.c): every drain binds to this durable
 * pull consumer of the stream. */
#define PH_NATS_DRAIN_CONSUMER "payhook-drain"

struct ph_nats_drain_options {
	const char *command;		/* for /bin/sh -c */
	uint64_t timeout_ms;		/* per attempt; 0: none */
	uint64_t retry_min_ms, retry_max_ms;
	unsigned max_attempts;		/* >= 1 */
	bool once;			/* until a fetch finds nothing */
};

/* Run the command for each message of the stream's consumer until SIGTERM
 * or SIGINT (or, with once, until none is waiting). Returns the exit
 * status: 0, or 1 when --once could not reach the cluster. */
int ph_nats_drain_run(const struct ph_nats_config *nc,
		      const struct ph_nats_drain_options *o) PH_NONNULL(1, 2);

#ifdef HAVE_NATS
struct __jsCtx;
/* The JetStream context of an open connection (natsdrain.c). */
struct __jsCtx *ph_nats_js(struct ph_nats *n) PH_NONNULL(1);
#endif

#endif
