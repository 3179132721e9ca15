/* event.h - the normalized event, schema payhook.event/2.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#ifndef PH_EVENT_H
#define PH_EVENT_H

#include <stdbool.h>
#include <sys/time.h>
#include <json-c/json.h>
#include "ids.h"
#include "money.h"

#define PH_EVENT_SCHEMA "payhook.event/2"

/* All string fields are owned by the event (NULL means JSON null), except
 * route, provider and verified_by, which point at static or configuration
 * strings, and raw, a borrowed reference to the request's parsed body. */
struct ph_event {
	char id[PH_ULID_LEN + 1];
	char *dedup_key;
	const char *route;
	const char *provider;
	const char *type;		/* one of ph_event_types, or "unknown" */
	char *provider_event;
	char *payment_id;
	char *order_id;
	char *refund_id;
	char *status;
	bool has_amount;
	struct ph_money amount;
	char *occurred_at;
	char received_at[PH_RFC3339_LEN + 1];
	struct timeval received_tv;
	const char *verified_by;
	struct json_object *raw;
};

/* NULL-terminated list of the event types the schema allows. */
extern const char *const ph_event_types[];

/* True if type is one of ph_event_types. */
bool ph_event_type_valid(const char *type);

/* Stamp a new id and received_at from now. Returns 0 or -1. */
int ph_event_stamp(struct ph_event *ev, const struct timeval *now,
		   struct ph_error *err);

/* Copy a JSON value into *field as text: strings as-is, integers in their
 * decimal form. Null, absent, an empty string, a string holding a NUL, an
 * integer beyond 64 bits (ph_json_int_overflowed) and any other type are
 * no value: *field is left as it is and false returned. */
bool ph_event_set_text(char **field, struct json_object *val);

/* Set ev->dedup_key to "<route>:<provider>:#sha256:<hex of body>", the
 * key of an event without a usable identity (see ph_event_set_dedup_key in
 * provider.h). ev->route and ev->provider must be set. */
void ph_event_dedup_body_hash(struct ph_event *ev, const uint8_t *body,
			      size_t len);

/* Serialize as one JSON object followed by "\n". Caller frees. */
char *ph_event_to_json(const struct ph_event *ev, size_t *len_r);

/* Free owned fields; safe to call twice. */
void ph_event_clear(struct ph_event *ev);

#endif
