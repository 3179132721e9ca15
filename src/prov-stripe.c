/* prov-stripe.c - Stripe: a signed timestamp and HMAC-SHA256 in
 * Stripe-Signature.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * Documentation read: https://docs.stripe.com/webhooks ("Verify webhook
 * signatures manually") and https://docs.stripe.com/api/events/object;
 * SDK read: stripe-node 22.6.2, src/Webhooks.ts (parseHeader,
 * generateTestHeaderString, validateComputedSignature).
 *
 * Stripe-Signature is "t=<unix seconds>,v1=<hex>[,v1=<hex>...]": during
 * a secret roll Stripe signs with both secrets, and test mode adds a v0
 * made with a fake key, which is ignored. Each v1 is the lowercase hex
 * HMAC-SHA256, keyed with the endpoint secret's text as it stands
 * ("whsec_..."; nothing is decoded), of "<t>.<raw body>". The header is
 * split as the SDK splits it: elements at ',', key and value at '=', no
 * white space trimmed, the last t wins. The SDK signs the decimal form of
 * the timestamp it parsed, and so does payhook.
 *
 * Where payhook is stricter than the SDK: the SDK refuses only a timestamp
 * older than its tolerance; payhook refuses one from the future too
 * (ph_timestamp_fresh), as the project decides for every signed timestamp.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "log.h"
#include "provider.h"
#include "sign.h"
#include "verify.h"

#define STRIPE_HEADER "Stripe-Signature"
#define STRIPE_SIG_LEN 32		/* HMAC-SHA256 */

struct stripe_settings {
	unsigned tolerance_s;
};

/* Event types whose payhook type does not depend on the object's state. */
static const struct {
	const char *event;
	const char *type;
} stripe_types[] = {
	{ "payment_intent.created", "payment.created" },
	{ "payment_intent.processing", "payment.pending" },
	{ "payment_intent.requires_action", "payment.action_required" },
	{ "payment_intent.amount_capturable_updated", "payment.authorized" },
	{ "payment_intent.succeeded", "payment.succeeded" },
	{ "payment_intent.payment_failed", "payment.failed" },
	{ "payment_intent.canceled", "payment.cancelled" },
	{ "charge.refunded", "refund.succeeded" },
	{ "refund.failed", "refund.failed" },
	{ "checkout.session.async_payment_succeeded", "payment.succeeded" },
	{ "checkout.session.async_payment_failed", "payment.failed" },
	{ "checkout.session.expired", "payment.expired" },
	{ "invoice.payment_failed", "payment.failed" },
	{ "charge.dispute.created", "dispute.opened" },
};

static int
stripe_configure(struct ph_route *route, struct ph_faults *faults)
{
	struct stripe_settings *s = ph_xcalloc(1, sizeof(*s));
	uint64_t tolerance = PH_TIMESTAMP_TOLERANCE_S;
	char where[160];
	int ret = 0;

	route->adapter = s;
	ph_route_where(route, where, sizeof(where));
	if (ph_route_opt_uint(route, "tolerance_seconds", 1,
			      PH_TIMESTAMP_TOLERANCE_MAX_S, &tolerance,
			      faults) < 0)
		ret = -1;
	s->tolerance_s = (unsigned)tolerance;
	if (route->n_secrets == 0) {
		ph_faults_add(faults, "%s: key 'secrets': missing; the "
			      "endpoint's signing secret (whsec_...) is "
			      "required", where);
		ret = -1;
	}
	return ret;
}

static void
stripe_unconfigure(struct ph_route *route)
{
	ph_free(&route->adapter);
}

/* The header's elements as stripe-node's parseHeader reads them: the last
 * "t", and the "v1" values, each ending at the next '=' or ','. Stripe
 * sends one or two v1; beyond the first 16 they are not looked at. */
struct stripe_header {
	const char *t;			/* NULL: none */
	size_t t_len;
	const char *v1[16];
	size_t v1_len[16];
	size_t n_v1;
};

static void
stripe_parse_header(const char *h, struct stripe_header *out)
{
	memset(out, 0, sizeof(*out));
	while (*h != '\0') {
		size_t elen = strcspn(h, ","), klen = strcspn(h, "=,");
		const char *val = h + klen + (h[klen] == '=');
		size_t vlen = h[klen] == '=' ? strcspn(val, "=,") : 0;

		if (klen == 1 && h[0] == 't' && h[klen] == '=') {
			out->t = val;
			out->t_len = vlen;
		} else if (klen == 2 && h[0] == 'v' && h[1] == '1' &&
			   h[klen] == '=') {
			if (out->n_v1 < PH_N_ELEMENTS(out->v1)) {
				out->v1[out->n_v1] = val;
				out->v1_len[out->n_v1] = vlen;
				out->n_v1++;
			}
		}
		h += elen;
		if (*h == ',')
			h++;
	}
}

/* The index of the first secret whose HMAC-SHA256 of msg equals one of the
 * header's v1 signatures, or -1. Every secret is tried against every
 * signature, each comparison in constant time, so the time taken does not
 * tell which one matched. */
static int
stripe_match(const struct ph_route *route, const struct stripe_header *hd,
	     const uint8_t *msg, size_t msg_len)
{
	uint8_t sig[PH_N_ELEMENTS(hd->v1)][STRIPE_SIG_LEN];
	bool usable[PH_N_ELEMENTS(hd->v1)];
	uint8_t mac[PH_DIGEST_MAX];
	size_t mac_len;
	int match = -1;

	for (size_t j = 0; j < hd->n_v1; j++)
		usable[j] = hd->v1_len[j] == 2 * STRIPE_SIG_LEN &&
		    ph_hex_decode(hd->v1[j], hd->v1_len[j], sig[j],
				  STRIPE_SIG_LEN) == 0;
	for (size_t i = 0; i < route->n_secrets; i++) {
		if (ph_hmac(PH_SHA256, &route->secrets[i], msg, msg_len, mac,
			    &mac_len) < 0 || mac_len != STRIPE_SIG_LEN)
			continue;
		for (size_t j = 0; j < hd->n_v1; j++) {
			if (usable[j] && CRYPTO_memcmp(mac, sig[j],
			    STRIPE_SIG_LEN) == 0 && match < 0)
				match = (int)i;
		}
	}
	ph_wipe(mac, sizeof(mac));
	return match;
}

/* "<t>.<body>" in a new buffer of *len_r bytes. */
static uint8_t *
stripe_signed_payload(int64_t t, const uint8_t *body, size_t len,
		      size_t *len_r)
{
	char head[32];
	int n = snprintf(head, sizeof(head), "%" PRId64 ".", t);
	uint8_t *msg = ph_xmalloc((size_t)n + len + 1);

	memcpy(msg, head, (size_t)n);
	if (len > 0)
		memcpy(msg + n, body, len);
	*len_r = (size_t)n + len;
	return msg;
}

static enum ph_auth_result
stripe_authenticate(const struct ph_route *route, struct ph_request *req,
		    struct ph_auth *auth)
{
	const struct stripe_settings *s = route->adapter;
	const char *header = ph_request_header(req, STRIPE_HEADER);
	struct stripe_header hd;
	int64_t t, now = (int64_t)time(NULL);
	uint8_t *msg;
	size_t msg_len;
	char safe[64];
	int idx;

	if (header == NULL)
		return PH_AUTH_FAIL;
	stripe_parse_header(header, &hd);
	if (hd.t == NULL || hd.n_v1 == 0)
		return PH_AUTH_FAIL;
	/* The window is checked first only to know what to sign: a stale
	 * timestamp is refused below whatever the signature says. */
	if (!ph_timestamp_fresh(hd.t, hd.t_len, s->tolerance_s, now, &t)) {
		/* Not fresh, or not digits: which does not matter, the
		 * request is refused either way, but an operator whose
		 * clock is wrong must be able to see it. */
		ph_log_warn("route=%s Stripe-Signature timestamp not within "
			    "%u s of now (or not a number): refused",
			    ph_log_sanitize(route->name, safe, sizeof(safe)),
			    s->tolerance_s);
		return PH_AUTH_FAIL;
	}
	msg = stripe_signed_payload(t, req->body, req->body_len, &msg_len);
	idx = stripe_match(route, &hd, msg, msg_len);
	free(msg);
	if (idx < 0)
		return PH_AUTH_FAIL;
	auth->secret_index = idx;
	auth->verified_by = "stripe-v1";
	return PH_AUTH_OK;
}

/* The payhook type of a Stripe event named name about object obj. */
static const char *
stripe_type(const char *name, struct json_object *obj)
{
	const char *status = ph_json_cstring(ph_json_path(obj, "status"));

	for (size_t i = 0; i < PH_N_ELEMENTS(stripe_types); i++) {
		if (strcmp(name, stripe_types[i].event) == 0)
			return stripe_types[i].type;
	}
	if (strcmp(name, "checkout.session.completed") == 0) {
		/* Delayed payment methods complete the session unpaid; the
		 * money follows in async_payment_succeeded or _failed. */
		status = ph_json_cstring(ph_json_path(obj, "payment_status"));
		if (status == NULL)
			return "unknown";
		if (strcmp(status, "paid") == 0 ||
		    strcmp(status, "no_payment_required") == 0)
			return "payment.succeeded";
		if (strcmp(status, "unpaid") == 0)
			return "payment.pending";
		return "unknown";
	}
	if (strcmp(name, "invoice.paid") == 0) {
		const char *reason = ph_json_cstring(ph_json_path(obj,
		    "billing_reason"));

		return reason != NULL &&
		    strcmp(reason, "subscription_cycle") == 0 ?
		    "subscription.renewed" : "payment.succeeded";
	}
	if (status == NULL)
		return "unknown";
	if (strcmp(name, "charge.refund.updated") == 0 ||
	    strcmp(name, "refund.updated") == 0) {
		if (strcmp(status, "succeeded") == 0)
			return "refund.succeeded";
		if (strcmp(status, "pending") == 0 ||
		    strcmp(status, "requires_action") == 0)
			return "refund.pending";
		if (strcmp(status, "failed") == 0 ||
		    strcmp(status, "canceled") == 0)
			return "refund.failed";
		return "unknown";
	}
	if (strcmp(name, "charge.dispute.closed") == 0) {
		/* warning_closed: an inquiry that never became a chargeback;
		 * the money stays with the merchant. */
		if (strcmp(status, "won") == 0 ||
		    strcmp(status, "warning_closed") == 0)
			return "dispute.won";
		if (strcmp(status, "lost") == 0)
			return "dispute.lost";
	}
	return "unknown";
}

/* Stripe writes currencies in lower case, ISO 4217 in upper case. */
static void
stripe_amount(struct ph_event *ev, struct json_object *amount,
	      struct json_object *currency)
{
	const char *cur = ph_json_cstring(currency);
	struct json_object *upper;
	char code[8];
	size_t n;

	if (amount == NULL || cur == NULL || (n = strlen(cur)) >= sizeof(code))
		return;
	for (size_t i = 0; i <= n; i++)
		code[i] = cur[i] >= 'a' && cur[i] <= 'z' ?
		    (char)(cur[i] - 'a' + 'A') : cur[i];
	upper = json_object_new_string(code);
	if (upper == NULL)
		return;
	ph_event_set_amount(ev, amount, upper, PH_UNIT_MINOR);
	json_object_put(upper);
}

/* Ids and amount by the kind of object the event carries. */
static void
stripe_object(struct ph_event *ev, struct json_object *obj)
{
	const char *kind = ph_json_cstring(ph_json_path(obj, "object"));
	struct json_object *id = ph_json_path(obj, "id");
	struct json_object *pi = ph_json_path(obj, "payment_intent");
	struct json_object *charge = ph_json_path(obj, "charge");
	const char *amount = "amount";

	if (kind == NULL)
		return;
	if (strcmp(kind, "payment_intent") == 0) {
		ph_event_set_id(ev, &ev->payment_id, id, "data.object.id");
	} else if (strcmp(kind, "charge") == 0) {
		if (!ph_event_set_id(ev, &ev->payment_id, pi,
				     "data.object.payment_intent"))
			ph_event_set_id(ev, &ev->payment_id, id,
					"data.object.id");
		/* charge.refunded carries the charge: what was refunded, in
		 * all, is amount_refunded. */
		if (ev->provider_event != NULL &&
		    strcmp(ev->provider_event, "charge.refunded") == 0)
			amount = "amount_refunded";
	} else if (strcmp(kind, "refund") == 0 ||
		   strcmp(kind, "dispute") == 0) {
		if (!ph_event_set_id(ev, &ev->payment_id, pi,
				     "data.object.payment_intent"))
			ph_event_set_id(ev, &ev->payment_id, charge,
					"data.object.charge");
		if (strcmp(kind, "refund") == 0)
			ph_event_set_id(ev, &ev->refund_id, id,
					"data.object.id");
	} else if (strcmp(kind, "checkout.session") == 0) {
		ph_event_set_id(ev, &ev->payment_id, pi,
				"data.object.payment_intent");
		ph_event_set_id(ev, &ev->order_id,
				ph_json_path(obj, "client_reference_id"),
				"data.object.client_reference_id");
		amount = "amount_total";
	} else if (strcmp(kind, "invoice") == 0) {
		ph_event_set_id(ev, &ev->payment_id, pi,
				"data.object.payment_intent");
		ph_event_set_id(ev, &ev->order_id, id, "data.object.id");
		amount = ev->provider_event != NULL &&
		    strcmp(ev->provider_event, "invoice.paid") == 0 ?
		    "amount_paid" : "amount_due";
	} else {
		return;
	}
	stripe_amount(ev, ph_json_path(obj, amount),
		      ph_json_path(obj, "currency"));
}

static void
stripe_normalize(const struct ph_route *route, const struct ph_request *req,
		 struct ph_event *ev)
{
	struct json_object *doc = req->doc;
	struct json_object *type = ph_json_path(doc, "type");
	struct json_object *obj = ph_json_path(doc, "data.object");
	char *event_id = NULL;
	const char *parts[1];

	(void)route;
	ev->type = "unknown";
	if (json_object_is_type(type, json_type_string) &&
	    ph_event_set_text(&ev->provider_event, type))
		ev->type = stripe_type(ev->provider_event, obj);
	ph_event_set_text(&ev->status, ph_json_path(obj, "status"));
	stripe_object(ev, obj);
	ph_event_set_time(&ev->occurred_at, ph_json_path(doc, "created"));
	/* The signature covers the whole body, so its id may make the key;
	 * Stripe retries an event under its own id (evt_...). */
	if (json_object_is_type(ph_json_path(doc, "id"), json_type_string))
		ph_event_set_text(&event_id, ph_json_path(doc, "id"));
	parts[0] = event_id;
	ph_event_set_dedup_key(ev, req->body, req->body_len, parts,
			       PH_N_ELEMENTS(parts));
	free(event_id);
}

/* Stripe-Signature: t=<now>,v1=<hex> with the route's first secret. */
static int
stripe_sign(const struct ph_route *route, const uint8_t *payload, size_t len,
	    struct json_object *doc, struct ph_signed *out,
	    struct ph_error *err)
{
	char hex[2 * PH_DIGEST_MAX + 1], value[160];
	int64_t t = (int64_t)time(NULL);
	uint8_t *msg;
	size_t msg_len;
	int ret;

	(void)doc;
	msg = stripe_signed_payload(t, payload, len, &msg_len);
	ret = ph_sign_hmac_hex(PH_SHA256, &route->secrets[0], msg, msg_len,
			       hex, err);
	free(msg);
	if (ret < 0)
		return -1;
	snprintf(value, sizeof(value), "t=%" PRId64 ",v1=%s", t, hex);
	return ph_signed_add_header(out, STRIPE_HEADER, value, strlen(value),
				    err);
}

static const char *
stripe_credential_header(const struct ph_route *route)
{
	(void)route;
	return STRIPE_HEADER;
}

const struct ph_provider ph_provider_stripe = {
	.name = "stripe",
	.configure = stripe_configure,
	.unconfigure = stripe_unconfigure,
	.authenticate = stripe_authenticate,
	.normalize = stripe_normalize,
	.answer = NULL,
	.sign = stripe_sign,
	.credential_header = stripe_credential_header,
};
