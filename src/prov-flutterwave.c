/* prov-flutterwave.c - Flutterwave: the secret hash in the verif-hash header.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * Source: Flutterwave's "Webhooks" page,
 * https://developer.flutterwave.com/docs/webhooks (v3: structure of a
 * webhook payload, verifying webhook signatures, sample payloads).
 * Flutterwave sends the "secret hash" set in its dashboard, as it is, in
 * the verif-hash header; it signs nothing. So the header is compared with
 * the route's secrets in constant time, like a password, and proves who
 * sent the request, not what the body says: whoever learns the hash can
 * send any body. Flutterwave publishes no signer.
 *
 * One event name covers several outcomes: charge.completed says
 * successful, failed or pending in data.status, transfer.completed
 * SUCCESSFUL or FAILED. The dedup key therefore holds the status with the
 * event and the id. Amounts are in major units (100 NGN is 100 naira).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "provider.h"
#include "sign.h"
#include "verify.h"

#define FLW_HEADER "verif-hash"

/* The type of an event and its folded data.status (ph_status_fold). */
static const struct {
	const char *event;
	const char *status;
	const char *type;
} flw_types[] = {
	{ "charge.completed", "successful", "payment.succeeded" },
	{ "charge.completed", "failed", "payment.failed" },
	{ "charge.completed", "pending", "payment.pending" },
	{ "transfer.completed", "successful", "transfer.succeeded" },
	{ "transfer.completed", "failed", "transfer.failed" },
	{ "refund.completed", "completed", "refund.succeeded" },
	{ "refund.completed", "failed", "refund.failed" },
};

static int
flw_configure(struct ph_route *route, struct ph_faults *faults)
{
	char where[160];

	if (route->n_secrets > 0)
		return 0;
	ph_faults_add(faults, "%s: key 'secrets': missing; the secret hash "
		      "set in Flutterwave's dashboard (Settings > Webhooks) is "
		      "required", ph_route_where(route, where, sizeof(where)));
	return -1;
}

static enum ph_auth_result
flw_authenticate(const struct ph_route *route, struct ph_request *req,
		 struct ph_auth *auth)
{
	const char *hash = ph_request_header(req, FLW_HEADER);
	size_t len;
	int match = -1;

	if (hash == NULL)
		return PH_AUTH_FAIL;
	len = strlen(hash);
	/* Every secret is compared, so the time taken does not tell which
	 * position matched. */
	for (size_t i = 0; i < route->n_secrets; i++) {
		if (ph_secret_equal(&route->secrets[i], hash, len) &&
		    match < 0)
			match = (int)i;
	}
	if (match < 0)
		return PH_AUTH_FAIL;
	auth->secret_index = match;
	auth->verified_by = "verif-hash";
	return PH_AUTH_OK;
}

static void
flw_normalize(const struct ph_route *route, const struct ph_request *req,
	      struct ph_event *ev)
{
	struct json_object *doc = req->doc;
	struct json_object *event = ph_json_path(doc, "event");
	struct json_object *data = ph_json_path(doc, "data");
	char folded[32];
	char *id = NULL;
	const char *parts[3];

	(void)route;
	ev->type = "unknown";
	ph_event_set_text(&ev->provider_event, event);
	ph_event_set_text(&ev->status, ph_json_path(data, "status"));
	if (ev->provider_event != NULL && ev->status != NULL &&
	    json_object_is_type(event, json_type_string)) {
		ph_status_fold(ev->status, folded, sizeof(folded));
		for (size_t i = 0; i < PH_N_ELEMENTS(flw_types); i++) {
			if (strcmp(ev->provider_event, flw_types[i].event) == 0
			    && strcmp(folded, flw_types[i].status) == 0)
				ev->type = flw_types[i].type;
		}
	}
	/* data.id is Flutterwave's own id of the charge, transfer or refund
	 * (the one its verify endpoint takes); a refund names its charge in
	 * tx_ref's stead as tx_id (the refund object of Flutterwave's API).
	 * The merchant's reference is tx_ref for charges, reference for
	 * transfers. */
	if (ev->provider_event != NULL &&
	    strcmp(ev->provider_event, "refund.completed") == 0) {
		ph_event_set_id(ev, &ev->refund_id, ph_json_path(data, "id"),
				"data.id");
		ph_event_set_id(ev, &ev->payment_id,
				ph_json_path(data, "tx_id"), "data.tx_id");
	} else {
		ph_event_set_id(ev, &ev->payment_id, ph_json_path(data, "id"),
				"data.id");
	}
	if (!ph_event_set_id(ev, &ev->order_id, ph_json_path(data, "tx_ref"),
			     "data.tx_ref"))
		ph_event_set_id(ev, &ev->order_id,
				ph_json_path(data, "reference"),
				"data.reference");
	ph_event_set_amount(ev, ph_json_path(data, "amount"),
			    ph_json_path(data, "currency"), PH_UNIT_MAJOR);
	ph_event_set_time(&ev->occurred_at, ph_json_path(data, "created_at"));
	/* The header authenticates the whole request (not its content):
	 * event, id and status, as sent. */
	ph_event_set_id(ev, &id, ph_json_path(data, "id"), "data.id");
	parts[0] = ev->provider_event;
	parts[1] = id;
	parts[2] = ev->status;
	ph_event_set_dedup_key(ev, req->body, req->body_len, parts,
			       PH_N_ELEMENTS(parts));
	free(id);
}

static int
flw_sign(const struct ph_route *route, const uint8_t *payload, size_t len,
	 struct json_object *doc, struct ph_signed *out, struct ph_error *err)
{
	(void)payload;
	(void)len;
	(void)doc;
	return ph_signed_add_header(out, FLW_HEADER,
	    (const char *)route->secrets[0].data, route->secrets[0].len, err);
}

static const char *
flw_credential_header(const struct ph_route *route)
{
	(void)route;
	return FLW_HEADER;
}

const struct ph_provider ph_provider_flutterwave = {
	.name = "flutterwave",
	.configure = flw_configure,
	.unconfigure = NULL,
	.authenticate = flw_authenticate,
	.normalize = flw_normalize,
	.answer = NULL,
	.sign = flw_sign,
	.credential_header = flw_credential_header,
};
