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

/* A signed field's text into *out (owned): a string, possibly empty, or an
 * integer's decimal form. False for anything else, or a string holding a
 * NUL byte. */
static bool
signed_field(struct json_object *val, char **out)
{
	if (json_object_is_type(val, json_type_string) &&
	    json_object_get_string_len(val) == 0) {
		*out = ph_xstrdup("");
		return true;
	}
	return ph_event_set_text(out, val);
}

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
	       c == '\v' || c == '\f';
}

/* Append s to buf at *off with surrounding ASCII white space removed. */
static void
append_trimmed(char *buf, size_t *off, const char *s)
{
	size_t len = strlen(s);

	while (len > 0 && is_space(*s)) {
		s++;
		len--;
	}
	while (len > 0 && is_space(s[len - 1]))
		len--;
	memcpy(buf + *off, s, len);
	*off += len;
}

/* "trim(orderId)|trim(paymentId)" from data, into a new string and its
 * length; NULL when either field is missing or of the wrong type. */
static char *
signed_message(struct json_object *data, size_t *len_r)
{
	char *order = NULL, *payment = NULL, *msg = NULL;
	size_t off = 0;

	if (signed_field(ph_json_path(data, "orderId"), &order) &&
	    signed_field(ph_json_path(data, "paymentId"), &payment)) {
		msg = ph_xmalloc(strlen(order) + strlen(payment) + 2);
		append_trimmed(msg, &off, order);
		msg[off++] = '|';
		append_trimmed(msg, &off, payment);
		msg[off] = '\0';
		*len_r = off;
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
	if (!json_object_is_type(sig, json_type_string) ||
	    strlen(json_object_get_string(sig)) !=
	    (size_t)json_object_get_string_len(sig))
		return PH_AUTH_FAIL;
	msg = signed_message(data, &len);
	if (msg == NULL)
		return PH_AUTH_FAIL;
	idx = ph_hmac_hex_match(PH_SHA256, route->secrets, route->n_secrets,
				(const uint8_t *)msg, len,
				json_object_get_string(sig));
	free(msg);
	if (idx < 0)
		return PH_AUTH_FAIL;
	auth->secret_index = idx;
	auth->verified_by = OMPAY_VERIFIED_BY;
	return PH_AUTH_OK;
}

static void
ompay_normalize(const struct ph_route *route, const struct ph_request *req,
		struct ph_event *ev)
{
	struct json_object *doc = req->doc;
	struct json_object *event = ph_json_path(doc, "eventType");
	struct json_object *data = ph_json_path(doc, "data");
	struct json_object *completed = ph_json_path(data, "completedAt");
	const char *id;

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
	ph_event_set_text(&ev->payment_id, ph_json_path(data, "paymentId"));
	ph_event_set_text(&ev->order_id, ph_json_path(data, "orderId"));
	ph_event_set_text(&ev->refund_id, ph_json_path(data, "refundId"));
	ph_event_set_text(&ev->status, ph_json_path(data, "paymentStatus"));
	ph_event_set_amount(ev, ph_json_path(data, "amount"),
			    ph_json_path(data, "currency"), PH_UNIT_MAJOR);
	/* As sent: OMPAY already writes RFC 3339 UTC. */
	if (json_object_is_type(completed, json_type_string))
		ph_event_set_text(&ev->occurred_at, completed);
	id = ev->refund_id != NULL ? ev->refund_id : ev->payment_id;
	if (ev->provider_event != NULL && id != NULL)
		ph_event_set_dedup_key(ev, req->body, req->body_len, "%s:%s",
				       ev->provider_event, id);
	else
		ph_event_dedup_body_hash(ev, req->body, req->body_len);
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
	if (json_object_is_type(sig, json_type_string) &&
	    (size_t)json_object_get_string_len(sig) == strlen(hex) &&
	    ph_strcaseeq(json_object_get_string(sig), hex))
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
