/* prov-adyen.c - Adyen: the standard JSON webhook, several events per
 * request, each item signed on its own.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * Read: https://docs.adyen.com/development-resources/webhooks/webhook-types
 * (structure, event codes), .../webhooks/verify-hmac-signatures and the
 * API explorer's Webhooks pages (one per eventCode); the signer is
 * @adyen/api-library's HmacValidator (lib/src/utils/hmacValidator.js,
 * 32.1.0), which wins where the pages are vague.
 *
 * A request is {"live": "...", "notificationItems": [{
 * "NotificationRequestItem": {...}}, ...]}. Every item carries
 * additionalData.hmacSignature: base64 of HMAC-SHA256, keyed with the
 * hex-decoded key from the Customer Area, over
 *
 *   pspReference:originalReference:merchantAccountCode:merchantReference:
 *   amount.value:amount.currency:eventCode:success
 *
 * each field as JavaScript's Array.join writes it (a missing or null one
 * as ""), with no escaping: HmacValidator escapes ':' and '\' only in its
 * other form, for objects whose values are all strings (banking webhooks);
 * a NotificationRequestItem has the amount object, so it never is one.
 * Only those eight fields are signed: the rest of the item (additionalData,
 * eventDate, reason, paymentMethod) and the "live" flag are not.
 *
 * Every item must verify, under any of the route's keys, or the whole
 * request is refused (401) and nothing is spooled. Each item is then its
 * own event (provider.h, event_count/normalize_at), keyed on pspReference,
 * eventCode and success: Adyen sends one item again unchanged when it
 * retries, and a modification has a pspReference of its own.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "log.h"
#include "provider.h"
#include "sign.h"
#include "verify.h"

#define WHERE_MAX 192
#define HMAC_LEN 32			/* SHA-256 */
#define HMAC_B64_LEN 44			/* padded base64 of 32 bytes */

struct adyen_settings {
	struct ph_secret *keys;		/* the route's secrets, hex-decoded */
	size_t n_keys;
	bool basic;			/* "auth": {"type": "basic", ...} */
	struct ph_secret userpass;	/* "user:password" */
};

/* eventCode -> type, by success ("true" or not); NULL: unknown. Codes not
 * listed are unknown too (README has the list and the reasons). */
static const struct {
	const char *code;
	const char *success;
	const char *failure;
	bool refund;			/* pspReference is the refund's */
} adyen_types[] = {
	{ "AUTHORISATION", "payment.authorized", "payment.failed", false },
	{ "PENDING", "payment.pending", NULL, false },
	{ "CAPTURE", "payment.succeeded", "payment.capture_failed", false },
	{ "CAPTURE_FAILED", "payment.capture_failed",
	  "payment.capture_failed", false },
	{ "CANCELLATION", "payment.cancelled", "payment.cancel_failed",
	  false },
	{ "TECHNICAL_CANCEL", "payment.cancelled", "payment.cancel_failed",
	  false },
	{ "EXPIRE", "payment.expired", NULL, false },
	{ "OFFER_CLOSED", "payment.expired", NULL, false },
	{ "REFUND", "refund.succeeded", "refund.failed", true },
	{ "REFUND_WITH_DATA", "refund.succeeded", "refund.failed", true },
	{ "REFUND_FAILED", "refund.failed", "refund.failed", true },
	{ "REFUNDED_REVERSED", "refund.failed", "refund.failed", true },
	/* Cancel or refund: which one is in additionalData, unsigned. */
	{ "CANCEL_OR_REFUND", NULL, NULL, false },
	{ "NOTIFICATION_OF_CHARGEBACK", "dispute.opened", NULL, false },
	{ "CHARGEBACK", "dispute.opened", NULL, false },
	{ "CHARGEBACK_REVERSED", "dispute.won", NULL, false },
	{ "SECOND_CHARGEBACK", "dispute.lost", NULL, false },
	{ "PREARBITRATION_WON", "dispute.won", NULL, false },
	{ "PREARBITRATION_LOST", "dispute.lost", NULL, false },
	{ "SCHEME_ARBITRATION_WON", "dispute.won", NULL, false },
	{ "SCHEME_ARBITRATION_LOST", "dispute.lost", NULL, false },
};

/* The signed fields, in HmacValidator's order; "amount.x" inside the
 * amount object. */
static const char *const signed_fields[] = {
	"pspReference", "originalReference", "merchantAccountCode",
	"merchantReference", "amount.value", "amount.currency", "eventCode",
	"success",
};

static int
configure_keys(struct ph_route *route, struct adyen_settings *s,
	       const char *where, struct ph_faults *faults)
{
	int ret = 0;

	if (route->n_secrets == 0) {
		ph_faults_add(faults, "%s: key 'secrets': missing; the HMAC "
			      "key(s) shown in Adyen's Customer Area, in hex",
			      where);
		return -1;
	}
	s->keys = ph_xcalloc(route->n_secrets, sizeof(*s->keys));
	s->n_keys = route->n_secrets;
	for (size_t i = 0; i < route->n_secrets; i++) {
		const struct ph_secret *hex = &route->secrets[i];
		size_t n = hex->len / 2;

		s->keys[i].data = ph_xmalloc(n + 1);
		if (hex->len % 2 != 0 ||
		    ph_hex_decode((const char *)hex->data, hex->len,
				  s->keys[i].data, n) < 0) {
			ph_faults_add(faults, "%s: key 'secrets': entry %zu is "
				      "not a hex HMAC key", where, i + 1);
			ret = -1;
			continue;
		}
		s->keys[i].data[n] = '\0';
		s->keys[i].len = n;
	}
	return ret;
}

static int
configure_auth(struct adyen_settings *s, struct json_object *auth,
	       const char *where, struct ph_faults *faults)
{
	static const char *const keys[] = { "user", "password", NULL };
	const char *type;
	int ret;

	if (ph_auth_type(auth, where, &type, faults) < 0)
		return -1;
	if (strcmp(type, "basic") != 0) {
		ph_faults_add(faults, "%s: key 'auth.type': must be \"basic\" "
			      "(Adyen's only authentication besides HMAC)",
			      where);
		return -1;
	}
	ret = ph_auth_check_keys(auth, where, type, keys, faults);
	if (ph_basic_configure(auth, where, &s->userpass, faults) < 0)
		return -1;
	s->basic = true;
	return ret;
}

static int
adyen_configure(struct ph_route *route, struct ph_faults *faults)
{
	struct adyen_settings *s = ph_xcalloc(1, sizeof(*s));
	struct json_object *auth;
	char where[WHERE_MAX];
	int ret = 0;

	route->adapter = s;
	ph_route_where(route, where, sizeof(where));
	if (configure_keys(route, s, where, faults) < 0)
		ret = -1;
	if (json_object_object_get_ex(route->json, "auth", &auth) &&
	    configure_auth(s, auth, where, faults) < 0)
		ret = -1;
	return ret;
}

static void
adyen_unconfigure(struct ph_route *route)
{
	struct adyen_settings *s = route->adapter;

	for (size_t i = 0; i < s->n_keys; i++)
		ph_secret_clear(&s->keys[i]);
	free(s->keys);
	ph_secret_clear(&s->userpass);
	ph_free(&route->adapter);
}

/* The items array, or NULL when the body is not a notification. */
static struct json_object *
items_of(struct json_object *doc)
{
	struct json_object *items = ph_json_path(doc, "notificationItems");

	return json_object_is_type(items, json_type_array) ? items : NULL;
}

/* Item i's NotificationRequestItem object, or NULL. */
static struct json_object *
item_at(struct json_object *items, size_t i)
{
	struct json_object *wrap = json_object_array_get_idx(items, i);
	struct json_object *item = ph_json_path(wrap, "NotificationRequestItem");

	return json_object_is_type(wrap, json_type_object) &&
	       json_object_is_type(item, json_type_object) ? item : NULL;
}

/* Append a signed field's text as Array.prototype.join writes it: absent
 * or null as "", a string as it is (by length: a NUL inside is part of
 * it), a boolean as true/false, a number as its text (json-c keeps a
 * parsed number's text; JavaScript would rewrite "1.50" as "1.5", which
 * then simply fails to verify). Returns false for an object or array,
 * which no sender signs. */
static bool
append_field(struct json_object *val, char **buf, size_t *len, size_t *cap)
{
	const char *text = "";
	size_t n = 0;

	switch (json_object_get_type(val)) {
	case json_type_null:
		break;
	case json_type_string:
		text = json_object_get_string(val);
		n = (size_t)json_object_get_string_len(val);
		break;
	case json_type_boolean:
		text = json_object_get_boolean(val) ? "true" : "false";
		n = strlen(text);
		break;
	case json_type_int:
	case json_type_double:
		text = json_object_to_json_string_ext(val,
						      JSON_C_TO_STRING_PLAIN);
		n = strlen(text);
		break;
	default:
		return false;
	}
	if (*len + n + 2 > *cap) {
		*cap = 2 * (*len + n + 2);
		*buf = ph_xrealloc(*buf, *cap);
	}
	memcpy(*buf + *len, text, n);
	*len += n;
	return true;
}

/* The text HmacValidator signs for item, or NULL (and nothing to free)
 * when the item has no amount object or a field is an object or array:
 * HmacValidator throws on the first, and nobody signs the second. */
static char *
signed_text(struct json_object *item, size_t *len_r)
{
	struct json_object *amount = ph_json_path(item, "amount");
	size_t len = 0, cap = 128;
	char *buf;

	if (!json_object_is_type(amount, json_type_object))
		return NULL;
	buf = ph_xmalloc(cap);
	for (size_t f = 0; f < PH_N_ELEMENTS(signed_fields); f++) {
		if (f > 0)
			buf[len++] = ':';
		if (!append_field(ph_json_path(item, signed_fields[f]), &buf,
				  &len, &cap)) {
			free(buf);
			return NULL;
		}
	}
	*len_r = len;
	return buf;
}

/* Index of the key whose HMAC of item is its additionalData.hmacSignature
 * (padded base64 of the 32 bytes, compared in constant time), or -1. */
static int
item_key(const struct adyen_settings *s, struct json_object *item)
{
	struct json_object *sigv =
	    ph_json_path(item, "additionalData.hmacSignature");
	const char *sig = ph_json_cstring(sigv);
	uint8_t presented[HMAC_B64_LEN / 4 * 3], mac[PH_DIGEST_MAX];
	size_t len, mac_len;
	char *text;
	int found = -1;

	if (sig == NULL || strlen(sig) != HMAC_B64_LEN ||
	    sig[HMAC_B64_LEN - 1] != '=' || sig[HMAC_B64_LEN - 2] == '=' ||
	    EVP_DecodeBlock(presented, (const unsigned char *)sig,
			    HMAC_B64_LEN) != (int)sizeof(presented))
		return -1;
	if ((text = signed_text(item, &len)) == NULL)
		return -1;
	for (size_t k = 0; k < s->n_keys; k++) {
		if (ph_hmac(PH_SHA256, &s->keys[k], (const uint8_t *)text, len,
			    mac, &mac_len) < 0 || mac_len != HMAC_LEN)
			continue;
		if (CRYPTO_memcmp(mac, presented, HMAC_LEN) == 0 &&
		    found < 0)
			found = (int)k;
	}
	ph_wipe(mac, sizeof(mac));
	free(text);
	return found;
}

static enum ph_auth_result
adyen_authenticate(const struct ph_route *route, struct ph_request *req,
		   struct ph_auth *auth)
{
	const struct adyen_settings *s = route->adapter;
	struct json_object *items;
	size_t n;
	int worst = -1;

	if (s->basic && !ph_basic_check(&s->userpass, req))
		return PH_AUTH_FAIL;
	/* The signatures are inside the body: parse it here (the pipeline
	 * reuses the result). */
	if (ph_request_json(req, route->max_json_depth) != 200)
		return PH_AUTH_BAD_REQUEST;
	if ((items = items_of(req->doc)) == NULL ||
	    (n = json_object_array_length(items)) == 0)
		return PH_AUTH_BAD_REQUEST;
	for (size_t i = 0; i < n; i++) {
		struct json_object *item = item_at(items, i);
		int k;

		if (item == NULL)
			return PH_AUTH_BAD_REQUEST;
		/* One bad item refuses them all: nothing is spooled. */
		if ((k = item_key(s, item)) < 0)
			return PH_AUTH_FAIL;
		if (k > worst)
			worst = k;
	}
	/* The oldest key any item needed, so a rotation can tell when the
	 * old key is no longer used. */
	auth->secret_index = worst;
	auth->verified_by = s->basic ? "hmac-sha256+basic" : "hmac-sha256";
	return PH_AUTH_OK;
}

static size_t
adyen_event_count(const struct ph_route *route, const struct ph_request *req)
{
	struct json_object *items = items_of(req->doc);

	(void)route;
	return items != NULL ? json_object_array_length(items) : 0;
}

/* True if the item's success is "true" (Adyen sends a string; a JSON
 * true, which HmacValidator would sign as "true" too, counts). */
static bool
item_success(struct json_object *item)
{
	struct json_object *v = ph_json_path(item, "success");
	const char *s = ph_json_cstring(v);

	if (json_object_is_type(v, json_type_boolean))
		return json_object_get_boolean(v);
	return s != NULL && strcmp(s, "true") == 0;
}

static void
adyen_normalize_at(const struct ph_route *route, const struct ph_request *req,
		   size_t i, struct ph_event *ev)
{
	struct json_object *item = item_at(items_of(req->doc), i);
	struct json_object *code = ph_json_path(item, "eventCode");
	bool success = item_success(item), known = false, refund = false;
	char *psp = NULL;
	const char *parts[3];

	(void)route;
	ev->raw = item;
	ev->type = "unknown";
	if (ph_event_set_text(&ev->provider_event, code) &&
	    json_object_is_type(code, json_type_string)) {
		for (size_t t = 0; t < PH_N_ELEMENTS(adyen_types); t++) {
			const char *type;

			if (strcmp(ev->provider_event, adyen_types[t].code) != 0)
				continue;
			type = success ? adyen_types[t].success :
			    adyen_types[t].failure;
			if (type != NULL)
				ev->type = type;
			known = true;
			refund = adyen_types[t].refund;
		}
	}
	ph_event_set_text(&ev->status, ph_json_path(item, "success"));
	ph_event_set_id(ev, &psp, ph_json_path(item, "pspReference"),
			"pspReference");
	/* A modification's pspReference is its own; originalReference is
	 * the payment's. A refund's own reference is the refund id. Without
	 * originalReference, the pspReference of a payment or dispute event
	 * is the payment's; that of an unknown code (REPORT_AVAILABLE) may
	 * name anything. */
	if (!ph_event_set_id(ev, &ev->payment_id,
			     ph_json_path(item, "originalReference"),
			     "originalReference") && known && psp != NULL)
		ev->payment_id = ph_xstrdup(psp);
	if (refund && psp != NULL)
		ev->refund_id = ph_xstrdup(psp);
	ph_event_set_id(ev, &ev->order_id,
			ph_json_path(item, "merchantReference"),
			"merchantReference");
	ph_event_set_amount(ev, ph_json_path(item, "amount.value"),
			    ph_json_path(item, "amount.currency"),
			    PH_UNIT_MINOR);
	ph_event_set_time(&ev->occurred_at, ph_json_path(item, "eventDate"));
	/* All three are among the signed fields. */
	parts[0] = psp;
	parts[1] = ev->provider_event;
	parts[2] = ev->status;
	ph_event_set_dedup_key(ev, req->body, req->body_len, parts,
			       PH_N_ELEMENTS(parts));
	free(psp);
}

/* "[accepted]" acknowledges the whole request, whether its items were new
 * or already known (Adyen retries until it reads it). */
static void
adyen_answer(enum ph_outcome outcome, const struct ph_event *ev,
	     struct ph_answer *ans)
{
	static const char accepted[] = "[accepted]";

	if (outcome != PH_OUT_ACCEPTED && outcome != PH_OUT_DUPLICATE) {
		ph_answer_default(outcome, ev, ans);
		return;
	}
	ans->status = 200;
	ans->content_type = "text/plain";
	ans->body = ph_xstrdup(accepted);
	ans->body_len = sizeof(accepted) - 1;
}

/* Set item's additionalData.hmacSignature made with key. */
static int
sign_item(const struct ph_secret *key, struct json_object *item,
	  struct ph_error *err)
{
	struct json_object *extra = ph_json_path(item, "additionalData");
	uint8_t mac[PH_DIGEST_MAX];
	char b64[HMAC_B64_LEN + 1];
	size_t len, mac_len;
	char *text = signed_text(item, &len);
	int ret;

	if (text == NULL)
		return ph_error_set(err, "an item has no \"amount\" object, "
				    "or a signed field is an object");
	ret = ph_hmac(PH_SHA256, key, (const uint8_t *)text, len, mac,
		      &mac_len);
	free(text);
	if (ret < 0)
		return ph_error_set(err, "HMAC-SHA256 failed");
	EVP_EncodeBlock((unsigned char *)b64, mac, (int)mac_len);
	ph_wipe(mac, sizeof(mac));
	if (extra == NULL) {
		extra = json_object_new_object();
		json_object_object_add(item, "additionalData", extra);
	} else if (!json_object_is_type(extra, json_type_object)) {
		return ph_error_set(err, "an item's \"additionalData\" is not "
				    "an object");
	}
	json_object_object_add(extra, "hmacSignature",
			       json_object_new_string(b64));
	return 0;
}

/* Every item signed with the route's first key (the body is rewritten),
 * and Basic credentials when the route has them. */
static int
adyen_sign(const struct ph_route *route, const uint8_t *payload, size_t len,
	   struct json_object *doc, struct ph_signed *out,
	   struct ph_error *err)
{
	const struct adyen_settings *s = route->adapter;
	struct json_object *items = items_of(doc);
	size_t n = items != NULL ? json_object_array_length(items) : 0;
	const char *text;

	(void)payload;
	(void)len;
	if (n == 0)
		return ph_error_set(err, "not an Adyen notification: no "
				    "\"notificationItems\" array with items");
	for (size_t i = 0; i < n; i++) {
		struct json_object *item = item_at(items, i);

		if (item == NULL)
			return ph_error_set(err, "notificationItems[%zu] has "
					    "no NotificationRequestItem", i);
		if (sign_item(&s->keys[0], item, err) < 0)
			return -1;
	}
	text = json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN |
					      JSON_C_TO_STRING_NOSLASHESCAPE);
	out->body_len = strlen(text);
	out->body = ph_xstrndup(text, out->body_len);
	return s->basic ? ph_basic_sign(&s->userpass, out, err) : 0;
}

static const char *
adyen_credential_header(const struct ph_route *route)
{
	const struct adyen_settings *s = route->adapter;

	return s->basic ? "Authorization" : NULL;
}

const struct ph_provider ph_provider_adyen = {
	.name = "adyen",
	.configure = adyen_configure,
	.unconfigure = adyen_unconfigure,
	.authenticate = adyen_authenticate,
	.normalize = NULL,
	.answer = adyen_answer,
	.sign = adyen_sign,
	.credential_header = adyen_credential_header,
	.event_count = adyen_event_count,
	.normalize_at = adyen_normalize_at,
};
