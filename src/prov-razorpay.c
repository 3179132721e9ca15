/* prov-razorpay.c - Razorpay: hex HMAC-SHA256 of the body in X-Razorpay-Signature.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * Source: Razorpay's "Validate and Test Webhooks" page,
 * https://razorpay.com/docs/webhooks/validate-test/ , and the sample
 * payloads of its Payments, Orders, Refunds and Disputes webhook pages
 * (razorpay/markdown-docs, webhooks/<topic>.md). The SDK's verifier is
 * validateWebhookSignature(body, signature, secret) of the "razorpay" npm
 * package: HMAC-SHA256 keyed with the webhook secret over the raw body,
 * lowercase hex, compared with ===.
 *
 * The page suggests deduplicating on the x-razorpay-event-id header, but
 * the signature does not cover headers: whoever replays a captured body
 * can put any event id there. payhook keys on the event's name and the id
 * of the entity it is about, both inside the signed body, and only logs
 * the header. The body carries no event id and no signed timestamp.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "provider.h"
#include "sign.h"
#include "verify.h"

#define RAZORPAY_HEADER "X-Razorpay-Signature"
#define RAZORPAY_EVENT_ID "x-razorpay-event-id"

static const struct {
	const char *event;
	const char *type;
} razorpay_types[] = {
	{ "payment.authorized", "payment.authorized" },
	{ "payment.captured", "payment.succeeded" },
	{ "payment.failed", "payment.failed" },
	{ "payment.pending", "payment.pending" },
	{ "order.paid", "payment.succeeded" },
	{ "refund.created", "refund.pending" },
	{ "refund.processed", "refund.succeeded" },
	{ "refund.failed", "refund.failed" },
	{ "payment.dispute.created", "dispute.opened" },
	{ "payment.dispute.won", "dispute.won" },
	{ "payment.dispute.lost", "dispute.lost" },
};

static int
razorpay_configure(struct ph_route *route, struct ph_faults *faults)
{
	char where[160];

	if (route->n_secrets > 0)
		return 0;
	ph_faults_add(faults, "%s: key 'secrets': missing; the webhook's "
		      "secret (set when the webhook was created in Razorpay's "
		      "dashboard) is required",
		      ph_route_where(route, where, sizeof(where)));
	return -1;
}

static enum ph_auth_result
razorpay_authenticate(const struct ph_route *route, struct ph_request *req,
		      struct ph_auth *auth)
{
	const char *sig = ph_request_header(req, RAZORPAY_HEADER);
	int idx;

	if (sig == NULL)
		return PH_AUTH_FAIL;
	idx = ph_hmac_hex_match(PH_SHA256, route->secrets, route->n_secrets,
				req->body, req->body_len, sig);
	if (idx < 0)
		return PH_AUTH_FAIL;
	auth->secret_index = idx;
	auth->verified_by = "hmac-sha256";
	return PH_AUTH_OK;
}

/* payload.<name>.entity, or NULL. The name may hold dots
 * ("payment.downtime"), so it is one member, not a path. */
static struct json_object *
razorpay_entity(struct json_object *doc, const char *name, size_t len)
{
	struct json_object *payload = ph_json_path(doc, "payload"), *v;
	char key[64];

	if (len == 0 || len >= sizeof(key) ||
	    !json_object_is_type(payload, json_type_object))
		return NULL;
	memcpy(key, name, len);
	key[len] = '\0';
	if (!json_object_object_get_ex(payload, key, &v))
		return NULL;
	v = ph_json_path(v, "entity");
	return json_object_is_type(v, json_type_object) ? v : NULL;
}

/* The entity an event is about: the payload member named by the event
 * without its last word ("payment.downtime" of payment.downtime.started,
 * "refund" of refund.processed), else by that prefix's last word
 * ("dispute" of payment.dispute.won). NULL when there is none. */
static struct json_object *
razorpay_subject(struct json_object *doc, const char *event)
{
	const char *last = strrchr(event, '.'), *word;
	struct json_object *e;

	if (last == NULL)
		return NULL;
	if ((e = razorpay_entity(doc, event, (size_t)(last - event))) != NULL)
		return e;
	for (word = last; word > event && word[-1] != '.'; word--)
		;
	if (word == event)
		return NULL;
	return razorpay_entity(doc, word, (size_t)(last - word));
}

/* The unsigned event id, for the log only (see the header comment). */
static void
razorpay_log_event_id(const struct ph_event *ev, const struct ph_request *req)
{
	const char *id = ph_request_header(req, RAZORPAY_EVENT_ID);
	char route_s[64], id_s[80];

	if (id == NULL)
		return;
	ph_log_info("route=%s x-razorpay-event-id=%s (not signed, not in the "
		    "dedup key)",
		    ph_log_sanitize(ev->route, route_s, sizeof(route_s)),
		    ph_log_sanitize(id, id_s, sizeof(id_s)));
}

static void
razorpay_normalize(const struct ph_route *route, const struct ph_request *req,
		   struct ph_event *ev)
{
	struct json_object *doc = req->doc;
	struct json_object *event = ph_json_path(doc, "event");
	struct json_object *payment, *subject = NULL;
	char *subject_id = NULL;
	const char *parts[2];

	(void)route;
	ev->type = "unknown";
	if (ph_event_set_text(&ev->provider_event, event) &&
	    json_object_is_type(event, json_type_string)) {
		for (size_t i = 0; i < PH_N_ELEMENTS(razorpay_types); i++) {
			if (strcmp(ev->provider_event,
				   razorpay_types[i].event) == 0)
				ev->type = razorpay_types[i].type;
		}
		subject = razorpay_subject(doc, ev->provider_event);
	}
	payment = razorpay_entity(doc, "payment", strlen("payment"));
	ph_event_set_id(ev, &ev->payment_id, ph_json_path(payment, "id"),
			"payload.payment.entity.id");
	if (!ph_event_set_id(ev, &ev->order_id,
			     ph_json_path(payment, "order_id"),
			     "payload.payment.entity.order_id"))
		ph_event_set_id(ev, &ev->order_id, ph_json_path(
		    razorpay_entity(doc, "order", strlen("order")), "id"),
		    "payload.order.entity.id");
	ph_event_set_id(ev, &ev->refund_id, ph_json_path(
	    razorpay_entity(doc, "refund", strlen("refund")), "id"),
	    "payload.refund.entity.id");
	if (subject == NULL)
		subject = payment;
	ph_event_set_text(&ev->status, ph_json_path(subject, "status"));
	ph_event_set_amount(ev, ph_json_path(subject, "amount"),
			    ph_json_path(subject, "currency"), PH_UNIT_MINOR);
	ph_event_set_time(&ev->occurred_at, ph_json_path(doc, "created_at"));
	/* The HMAC covers the whole body: the event's name and the id of
	 * the entity it is about; without that id, the body hash. */
	ph_event_set_id(ev, &subject_id, ph_json_path(subject, "id"),
			"the event's entity id");
	parts[0] = ev->provider_event;
	parts[1] = subject_id;
	ph_event_set_dedup_key(ev, req->body, req->body_len, parts,
			       PH_N_ELEMENTS(parts));
	free(subject_id);
	razorpay_log_event_id(ev, req);
}

static int
razorpay_sign(const struct ph_route *route, const uint8_t *payload,
	      size_t len, struct json_object *doc, struct ph_signed *out,
	      struct ph_error *err)
{
	char hex[2 * PH_DIGEST_MAX + 1];

	(void)doc;
	if (ph_sign_hmac_hex(PH_SHA256, &route->secrets[0], payload, len, hex,
			     err) < 0)
		return -1;
	return ph_signed_add_header(out, RAZORPAY_HEADER, hex, strlen(hex),
				    err);
}

static const char *
razorpay_credential_header(const struct ph_route *route)
{
	(void)route;
	return RAZORPAY_HEADER;
}

const struct ph_provider ph_provider_razorpay = {
	.name = "razorpay",
	.configure = razorpay_configure,
	.unconfigure = NULL,
	.authenticate = razorpay_authenticate,
	.normalize = razorpay_normalize,
	.answer = NULL,
	.sign = razorpay_sign,
	.credential_header = razorpay_credential_header,
};
