/* prov-checkout.c - Checkout.com: hex HMAC-SHA256 of the body in Cko-Signature.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * Source: Checkout.com's "Receive webhooks" page,
 * https://www.checkout.com/docs/workflows/receive-webhooks , and the
 * examples of its webhook event types pages
 * (https://www.checkout.com/docs/workflows/webhook-event-types/<type>).
 * Cko-Signature is the hex HMAC-SHA256 of the payload keyed with the
 * secret set in the workflow's webhook action. The action may also send
 * fixed headers; a route with "authorization" requires the Authorization
 * header to equal that secret as well (both checks, constant time).
 * Checkout.com publishes no signer of its own.
 *
 * Every event has its own id (evt_...), inside the signed body: that is the
 * dedup key. Amounts are in the currency's minor unit.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "provider.h"
#include "sign.h"
#include "verify.h"

#define CKO_HEADER "Cko-Signature"

struct cko_settings {
	bool has_authorization;
	struct ph_secret authorization;	/* "authorization", owned */
};

static const struct {
	const char *event;
	const char *type;
} cko_types[] = {
	{ "payment_approved", "payment.authorized" },
	{ "payment_pending", "payment.pending" },
	{ "payment_captured", "payment.succeeded" },
	{ "payment_declined", "payment.failed" },
	{ "payment_expired", "payment.expired" },
	{ "payment_canceled", "payment.cancelled" },
	{ "payment_voided", "payment.cancelled" },
	/* The operation failed; the payment itself stands. */
	{ "payment_capture_declined", "payment.capture_failed" },
	{ "payment_void_declined", "payment.cancel_failed" },
	{ "payment_refunded", "refund.succeeded" },
	{ "payment_refund_pending", "refund.pending" },
	{ "payment_refund_declined", "refund.failed" },
	{ "dispute_received", "dispute.opened" },
	{ "dispute_evidence_required", "dispute.opened" },
	{ "dispute_won", "dispute.won" },
	{ "dispute_lost", "dispute.lost" },
	/* The merchant accepted it, or let the time to answer run out:
	 * the disputed amount stays debited. */
	{ "dispute_accepted", "dispute.lost" },
	{ "dispute_expired", "dispute.lost" },
};

static int
cko_configure(struct ph_route *route, struct ph_faults *faults)
{
	struct cko_settings *s = ph_xcalloc(1, sizeof(*s));
	struct json_object *v;
	char where[160];
	int ret = 0;

	route->adapter = s;
	ph_route_where(route, where, sizeof(where));
	if (route->n_secrets == 0) {
		ph_faults_add(faults, "%s: key 'secrets': missing; the "
			      "webhook's secret key (it signs Cko-Signature) "
			      "is required", where);
		ret = -1;
	}
	if (json_object_object_get_ex(route->json, "authorization", &v)) {
		if (ph_route_opt_secret(route, "authorization",
					&s->authorization, faults) < 0) {
			ret = -1;
		} else if (s->authorization.len == 0) {
			ph_faults_add(faults, "%s: key 'authorization': empty; "
				      "leave it out, or give the Authorization "
				      "header value set in Checkout.com's "
				      "webhook", where);
			ret = -1;
		} else {
			s->has_authorization = true;
		}
	}
	return ret;
}

static void
cko_unconfigure(struct ph_route *route)
{
	struct cko_settings *s = route->adapter;

	if (s != NULL)
		ph_secret_clear(&s->authorization);
	ph_free(&route->adapter);
}

static enum ph_auth_result
cko_authenticate(const struct ph_route *route, struct ph_request *req,
		 struct ph_auth *auth)
{
	const struct cko_settings *s = route->adapter;
	const char *sig = ph_request_header(req, CKO_HEADER);
	const char *authz;
	bool authz_ok = true;
	int idx;

	if (s->has_authorization) {
		authz = ph_request_header(req, "Authorization");
		authz_ok = authz != NULL &&
		    ph_secret_equal(&s->authorization, authz, strlen(authz));
	}
	if (sig == NULL)
		return PH_AUTH_FAIL;
	/* The signature is checked even when the Authorization header was
	 * wrong, so the time taken does not tell which of the two failed. */
	idx = ph_hmac_hex_match(PH_SHA256, route->secrets, route->n_secrets,
				req->body, req->body_len, sig);
	if (idx < 0 || !authz_ok)
		return PH_AUTH_FAIL;
	auth->secret_index = idx;
	auth->verified_by = s->has_authorization ?
	    "hmac-sha256+authorization" : "hmac-sha256";
	return PH_AUTH_OK;
}

static void
cko_normalize(const struct ph_route *route, const struct ph_request *req,
	      struct ph_event *ev)
{
	struct json_object *doc = req->doc;
	struct json_object *type = ph_json_path(doc, "type");
	struct json_object *data = ph_json_path(doc, "data");
	bool dispute = false;
	char *event_id = NULL;
	const char *parts[1];

	(void)route;
	ev->type = "unknown";
	if (ph_event_set_text(&ev->provider_event, type) &&
	    json_object_is_type(type, json_type_string)) {
		for (size_t i = 0; i < PH_N_ELEMENTS(cko_types); i++) {
			if (strcmp(ev->provider_event, cko_types[i].event) == 0)
				ev->type = cko_types[i].type;
		}
		dispute = strncmp(ev->provider_event, "dispute_", 8) == 0;
	}
	/* A payment event's data is the payment; a dispute's is the
	 * dispute, naming its payment. */
	if (dispute) {
		ph_event_set_id(ev, &ev->payment_id,
				ph_json_path(data, "payment_id"),
				"data.payment_id");
		ph_event_set_text(&ev->order_id,
				  ph_json_path(data, "payment_reference"));
		ph_event_set_text(&ev->status, ph_json_path(data, "category"));
	} else {
		ph_event_set_id(ev, &ev->payment_id, ph_json_path(data, "id"),
				"data.id");
		ph_event_set_text(&ev->order_id,
				  ph_json_path(data, "reference"));
		ph_event_set_text(&ev->status,
				  ph_json_path(data, "response_summary"));
		/* A refund is an action on the payment. */
		if (strncmp(ev->type, "refund.", 7) == 0)
			ph_event_set_id(ev, &ev->refund_id,
					ph_json_path(data, "action_id"),
					"data.action_id");
	}
	ph_event_set_amount(ev, ph_json_path(data, "amount"),
			    ph_json_path(data, "currency"), PH_UNIT_MINOR);
	/* Older examples say created_on, the workflow ones timestamp. */
	if (!ph_event_set_time(&ev->occurred_at,
			       ph_json_path(doc, "created_on")))
		ph_event_set_time(&ev->occurred_at,
				  ph_json_path(doc, "timestamp"));
	/* The event id is in the signed body and names this one event. */
	ph_event_set_id(ev, &event_id, ph_json_path(doc, "id"), "id");
	parts[0] = event_id;
	ph_event_set_dedup_key(ev, req->body, req->body_len, parts,
			       PH_N_ELEMENTS(parts));
	free(event_id);
}

static int
cko_sign(const struct ph_route *route, const uint8_t *payload, size_t len,
	 struct json_object *doc, struct ph_signed *out, struct ph_error *err)
{
	const struct cko_settings *s = route->adapter;
	char hex[2 * PH_DIGEST_MAX + 1];

	(void)doc;
	if (ph_sign_hmac_hex(PH_SHA256, &route->secrets[0], payload, len, hex,
			     err) < 0)
		return -1;
	if (ph_signed_add_header(out, CKO_HEADER, hex, strlen(hex), err) < 0)
		return -1;
	if (s->has_authorization)
		return ph_signed_add_header(out, "Authorization",
		    (const char *)s->authorization.data, s->authorization.len,
		    err);
	return 0;
}

static const char *
cko_credential_header(const struct ph_route *route)
{
	(void)route;
	return CKO_HEADER;
}

const struct ph_provider ph_provider_checkout = {
	.name = "checkout",
	.configure = cko_configure,
	.unconfigure = cko_unconfigure,
	.authenticate = cko_authenticate,
	.normalize = cko_normalize,
	.answer = NULL,
	.sign = cko_sign,
	.credential_header = cko_credential_header,
};
