/* prov-ompay.c - OMPAY: HMAC-SHA256 of "orderId|paymentId" in data.signature.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * OMPAY puts the signature inside the body: lowercase hex of
 * HMAC-SHA256(client secret, trim(orderId) + "|" + trim(paymentId)). It does
 * not cover eventType, paymentStatus or amount, so verified_by says exactly
 * what was proven and the README tells users what that means. The answers
 * are OMPAY's own: 204 with no body on success, 400 "Signature mismatched".
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "provider.h"
#include "sign.h"
#include "verify.h"

#define OMPAY_VERIFIED_BY "hmac-sha256(orderId|paymentId)"
#define OMPAY_MISMATCH "Signature mismatched"

static const struct {
	const char *event;
	const char *type;
} ompay_types[] = {
	{ "TRANSACTION_COMPLETED", "payment.succeeded" },
	{ "TRANSACTION_FAILED", "payment.failed" },
	{ "REFUND_SUCCESS", "refund.succeeded" },
	{ "REFUND_FAILED", "refund.failed" },
};

static int
ompay_configure(struct ph_route *route, struct ph_faults *faults)
{
	char where[160];

	if (route->n_secrets > 0)
		return 0;
	ph_faults_add(faults, "%s: key 'secrets': missing; OMPAY's client "
		      "secret is required (it signs every webhook)",
		      ph_route_where(route, where, sizeof(where)));
	return -1;
}

/* A signed field's text as the signature covers it, in a new string: a
 * string (possibly empty, not holding a NUL) or an integer's decimal text
 * (for one beyond 64 bits, its text as sent), with surrounding ASCII white
 * space removed. NULL for anything else. */
static char *
signed_text(struct json_object *val)
{
	const char *s;
	size_t len;

	if (json_object_is_type(val, json_type_int))
		s = json_object_to_json_string_ext(val, JSON_C_TO_STRING_PLAIN);
	else
		s = ph_json_cstring(val);
	if (s == NULL)
		return NULL;
	len = strlen(s);
	while (len > 0 && ph_is_space(*s)) {
		s++;
		len--;
	}
	while (len > 0 && ph_is_space(s[len - 1]))
		len--;
	return ph_xstrndup(s, len);
}

/* "trim(orderId)|trim(paymentId)" from data, into a new string and its
 * length; NULL when either field is missing or of the wrong type. */
static char *
signed_message(struct json_object *data, size_t *len_r)
{
	char *order, *payment, *msg = NULL;

	order = signed_text(ph_json_path(data, "orderId"));
	payment = signed_text(ph_json_path(data, "paymentId"));
	if (order != NULL && payment != NULL) {
		msg = ph_xasprintf("%s|%s", order, payment);
		*len_r = strlen(msg);
	}
	free(order);
	free(payment);
	return msg;
}

static enum ph_auth_result
ompay_authenticate(const struct ph_route *route, struct ph_request *req,
		   struct ph_auth *auth)
{
	struct json_object *data, *sig;
	const char *sig_hex;
	char *msg;
	size_t len;
	int idx = -1;

	/* The signature is inside the body: parse it here (the pipeline
	 * reuses the result). */
	if (ph_request_json(req, route->max_json_depth) != 200)
		return PH_AUTH_BAD_REQUEST;
	data = ph_json_path(req->doc, "data");
	sig = ph_json_path(data, "signature");
	/* A NUL inside the string must not hide trailing bytes. */
	if ((sig_hex = ph_json_cstring(sig)) == NULL)
		return PH_AUTH_FAIL;
	msg = signed_message(data, &len);
	if (msg == NULL)
		return PH_AUTH_FAIL;
	idx = ph_hmac_hex_match(PH_SHA256, route->secrets, route->n_secrets,
				(const uint8_t *)msg, len, sig_hex);
	free(msg);
	if (idx < 0)
		return PH_AUTH_FAIL;
	auth->secret_index = idx;
	auth->verified_by = OMPAY_VERIFIED_BY;
	return PH_AUTH_OK;
}

/* The event's identity, made only of what the signature covers or
 * cannot be used to reach another payment: the signed paymentId, trimmed
 * as the signature check trims it, is in every key, so a signature
 * captured for one payment can claim keys of that payment only.
 * eventType and refundId are not signed: with such a signature anyone can
 * claim that payment's keys for any event type or refund (README, OMPAY,
 * Security). A paymentId beyond 64 bits, or none, gives the body hash. */
static void
ompay_dedup_key(struct ph_event *ev, const struct ph_request *req,
		struct json_object *data)
{
	struct json_object *pid = ph_json_path(data, "paymentId");
	const char *parts[3] = { ev->provider_event, NULL, ev->refund_id };
	char *payment = NULL;

	if (!ph_json_int_overflowed(pid))
		payment = signed_text(pid);
	if (payment != NULL && *payment != '\0')
		parts[1] = payment;
	ph_event_set_dedup_key(ev, req->body, req->body_len, parts,
			       ev->refund_id != NULL ? 3 : 2);
	free(payment);
}

static void
ompay_normalize(const struct ph_route *route, const struct ph_request *req,
		struct ph_event *ev)
{
	struct json_object *doc = req->doc;
	struct json_object *event = ph_json_path(doc, "eventType");
	struct json_object *data = ph_json_path(doc, "data");

	(void)route;
	ev->type = "unknown";
	if (ph_event_set_text(&ev->provider_event, event) &&
	    json_object_is_type(event, json_type_string)) {
		for (size_t i = 0; i < PH_N_ELEMENTS(ompay_types); i++) {
			if (strcmp(ev->provider_event,
				   ompay_types[i].event) == 0)
				ev->type = ompay_types[i].type;
		}
	}
	ph_event_set_id(ev, &ev->payment_id, ph_json_path(data, "paymentId"),
			"data.paymentId");
	ph_event_set_id(ev, &ev->order_id, ph_json_path(data, "orderId"),
			"data.orderId");
	ph_event_set_id(ev, &ev->refund_id, ph_json_path(data, "refundId"),
			"data.refundId");
	ph_event_set_text(&ev->status, ph_json_path(data, "paymentStatus"));
	ph_event_set_amount(ev, ph_json_path(data, "amount"),
			    ph_json_path(data, "currency"), PH_UNIT_MAJOR);
	/* OMPAY writes RFC 3339 UTC; the common parser checks it and makes
	 * every adapter's occurred_at alike. */
	ph_event_set_time(&ev->occurred_at, ph_json_path(data, "completedAt"));
	ompay_dedup_key(ev, req, data);
}

static void
ompay_answer(enum ph_outcome outcome, const struct ph_event *ev,
	     struct ph_answer *ans)
{
	switch (outcome) {
	case PH_OUT_ACCEPTED:
	case PH_OUT_DUPLICATE:
		ans->status = 204;
		ans->content_type = NULL;
		ans->body = NULL;
		ans->body_len = 0;
		break;
	case PH_OUT_UNAUTHORIZED:
		ans->status = 400;
		ans->content_type = "text/plain";
		ans->body = ph_xstrdup(OMPAY_MISMATCH);
		ans->body_len = strlen(OMPAY_MISMATCH);
		break;
	case PH_OUT_BAD_REQUEST:
	default:
		ph_answer_default(outcome, ev, ans);
		break;
	}
}

/* The payload with data.signature made by the first secret; unchanged
 * when it already carries that signature. */
static int
ompay_sign(const struct ph_route *route, const uint8_t *payload, size_t len,
	   struct json_object *doc, struct ph_signed *out,
	   struct ph_error *err)
{
	char hex[2 * PH_DIGEST_MAX + 1];
	struct json_object *data, *sig;
	const char *text;
	size_t msg_len, text_len;
	char *msg;
	int ret;

	(void)payload;
	(void)len;
	data = ph_json_path(doc, "data");
	if (!json_object_is_type(data, json_type_object))
		return ph_error_set(err, "the payload has no \"data\" object "
				    "to carry OMPAY's signature");
	msg = signed_message(data, &msg_len);
	if (msg == NULL)
		return ph_error_set(err, "data.orderId and data.paymentId "
				    "are needed: the signature covers them");
	ret = ph_sign_hmac_hex(PH_SHA256, &route->secrets[0],
			       (const uint8_t *)msg, msg_len, hex, err);
	free(msg);
	if (ret < 0)
		return -1;
	sig = ph_json_path(data, "signature");
	if (ph_json_cstring(sig) != NULL &&
	    ph_strcaseeq(ph_json_cstring(sig), hex))
		return 0;
	if (json_object_object_add(data, "signature",
				   json_object_new_string(hex)) != 0)
		return ph_error_set(err, "json-c: out of memory");
	text = json_object_to_json_string_length(doc, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE, &text_len);
	if (text == NULL)
		return ph_error_set(err, "json-c: out of memory");
	out->body = ph_xstrndup(text, text_len);
	out->body_len = text_len;
	return 0;
}

const struct ph_provider ph_provider_ompay = {
	.name = "ompay",
	.configure = ompay_configure,
	.unconfigure = NULL,
	.authenticate = ompay_authenticate,
	.normalize = ompay_normalize,
	.answer = ompay_answer,
	.sign = ompay_sign,
};
