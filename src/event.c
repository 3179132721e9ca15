/* event.c - the normalized event, schema payhook.event/2.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "event.h"
#include "log.h"
#include "request.h"

const char *const ph_event_types[] = {
	"payment.created",
	"payment.pending",
	"payment.action_required",
	"payment.authorized",
	"payment.succeeded",
	"payment.failed",
	"payment.cancelled",
	"payment.expired",
	"payment.capture_failed",
	"payment.cancel_failed",
	"refund.pending",
	"refund.succeeded",
	"refund.failed",
	"transfer.succeeded",
	"transfer.failed",
	"subscription.renewed",
	"dispute.opened",
	"dispute.won",
	"dispute.lost",
	"unknown",
	NULL
};

bool
ph_event_type_valid(const char *type)
{
	if (type == NULL)
		return false;
	for (size_t i = 0; ph_event_types[i] != NULL; i++) {
		if (strcmp(type, ph_event_types[i]) == 0)
			return true;
	}
	return false;
}

int
ph_event_stamp(struct ph_event *ev, const struct timeval *now,
	       struct ph_error *err)
{
	if (ph_ulid_generate(now, ev->id) < 0)
		return ph_error_set(err, "no randomness, or the clock is "
				    "outside the ULID range");
	ph_time_rfc3339(now, ev->received_at);
	ev->received_tv = *now;
	return 0;
}

/* On no value *field is left as it is, so a caller can try a second
 * source; on a value the old text is freed and replaced. */
bool
ph_event_set_text(char **field, struct json_object *val)
{
	char buf[24];
	const char *s;
	size_t len;

	switch (json_object_get_type(val)) {
	case json_type_string:
		s = json_object_get_string(val);
		len = (size_t)json_object_get_string_len(val);
		/* "a\u0000b" would be cut to "a" and could then collide with
		 * another id in a dedup key: treat it as no value. */
		if (len == 0 || memchr(s, '\0', len) != NULL)
			return false;
		break;
	case json_type_int:
		/* Clamped by json-c: two different ids would read the same. */
		if (ph_json_int_overflowed(val))
			return false;
		/* json-c keeps integers above INT64_MAX as uint64_t. */
		if (json_object_get_int64(val) < 0)
			snprintf(buf, sizeof(buf), "%" PRId64,
				 json_object_get_int64(val));
		else
			snprintf(buf, sizeof(buf), "%" PRIu64,
				 json_object_get_uint64(val));
		s = buf;
		len = strlen(buf);
		break;
	default:
		return false;
	}
	free(*field);
	*field = ph_xstrndup(s, len);
	return true;
}

void
ph_event_dedup_body_hash(struct ph_event *ev, const uint8_t *body, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	char hex[2 * EVP_MAX_MD_SIZE + 1];
	unsigned int md_len = 0;

	/* Fails only when libcrypto cannot allocate: same policy as OOM. */
	if (EVP_Digest(body, len, md, &md_len, EVP_sha256(), NULL) != 1) {
		ph_log_error("EVP_Digest(sha256) failed");
		abort();
	}
	ph_hex_encode(md, md_len, hex);
	free(ev->dedup_key);
	/* '#' starts no escaped identity part, so no provider's id can
	 * make this key. */
	ev->dedup_key = ph_xasprintf("%s:%s:#sha256:%s", ev->route,
				     ev->provider, hex);
}

/* json-c returns NULL only when out of memory. */
static struct json_object *
checked(struct json_object *obj)
{
	if (obj == NULL) {
		ph_log_error("json-c: out of memory");
		abort();
	}
	return obj;
}

/* A string or JSON null for NULL. */
static struct json_object *
new_text(const char *s)
{
	return s == NULL ? NULL : checked(json_object_new_string(s));
}

/* Keys are literals added once each, in the schema's order (json-c keeps
 * insertion order when serializing). */
static void
add(struct json_object *obj, const char *key, struct json_object *val)
{
	const unsigned flags =
	    JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_ADD_CONSTANT_KEY;

	if (json_object_object_add_ex(obj, key, val, flags) != 0) {
		ph_log_error("json-c: out of memory");
		abort();
	}
}

static struct json_object *
amount_to_json(const struct ph_money *m)
{
	struct json_object *obj = checked(json_object_new_object());

	add(obj, "value", new_text(m->value));
	add(obj, "minor", checked(json_object_new_int64(m->minor)));
	add(obj, "currency", new_text(m->currency));
	add(obj, "exponent", checked(json_object_new_int(m->exponent)));
	return obj;
}

char *
ph_event_to_json(const struct ph_event *ev, size_t *len_r)
{
	struct json_object *obj = checked(json_object_new_object());
	const char *type = ev->type, *s;
	size_t len;
	char *out;

	if (!ph_event_type_valid(type)) {
		/* An adapter bug must not break the schema's promise. */
		if (type != NULL)
			ph_log_warn("event type not in schema, using unknown");
		type = "unknown";
	}
	add(obj, "schema", new_text(PH_EVENT_SCHEMA));
	add(obj, "id", new_text(ev->id[0] != '\0' ? ev->id : NULL));
	add(obj, "dedup_key", new_text(ev->dedup_key));
	add(obj, "route", new_text(ev->route));
	add(obj, "provider", new_text(ev->provider));
	add(obj, "type", new_text(type));
	add(obj, "provider_event", new_text(ev->provider_event));
	add(obj, "payment_id", new_text(ev->payment_id));
	add(obj, "order_id", new_text(ev->order_id));
	add(obj, "refund_id", new_text(ev->refund_id));
	add(obj, "status", new_text(ev->status));
	add(obj, "amount", ev->has_amount ? amount_to_json(&ev->amount) : NULL);
	add(obj, "occurred_at", new_text(ev->occurred_at));
	add(obj, "received_at",
	    new_text(ev->received_at[0] != '\0' ? ev->received_at : NULL));
	add(obj, "verified_by", new_text(ev->verified_by));
	/* Our reference to the caller's parsed body; dropped with obj. */
	add(obj, "raw", ev->raw != NULL ? json_object_get(ev->raw) : NULL);

	s = json_object_to_json_string_length(obj,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (s == NULL) {
		ph_log_error("json-c: out of memory");
		abort();
	}
	out = ph_xmalloc(len + 2);
	memcpy(out, s, len);
	out[len] = '\n';
	out[len + 1] = '\0';
	json_object_put(obj);
	if (len_r != NULL)
		*len_r = len + 1;
	return out;
}

void
ph_event_clear(struct ph_event *ev)
{
	ph_free(&ev->dedup_key);
	ph_free(&ev->provider_event);
	ph_free(&ev->payment_id);
	ph_free(&ev->order_id);
	ph_free(&ev->refund_id);
	ph_free(&ev->status);
	ph_free(&ev->occurred_at);
}
