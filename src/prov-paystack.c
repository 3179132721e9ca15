/* prov-paystack.c - Paystack: hex HMAC-SHA512 of the body in x-paystack-signature.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * Source: Paystack's "Webhooks" page, https://paystack.com/docs/payments/webhooks/
 * (signature validation, IP whitelisting, supported events), and the event
 * samples it shows (PaystackOSS/doc-code-snippets, src/doc/payments/webhooks/
 * events/). Paystack signs every event with the account's secret key
 * (sk_live_... or sk_test_...): x-paystack-signature is the lowercase hex
 * HMAC-SHA512 of the exact body. There is no timestamp, so a captured
 * delivery can be replayed; dedup makes a replay a duplicate, and the README
 * recommends allow_from with Paystack's three published source addresses.
 * Paystack publishes no signer of its own.
 *
 * Amounts are integers in the currency's subunit (kobo, pesewas, cents);
 * refund samples send them as strings ("5000"), taken the same way.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "provider.h"
#include "sign.h"
#include "verify.h"

#define PAYSTACK_HEADER "x-paystack-signature"

static const struct {
	const char *event;
	const char *type;
} paystack_types[] = {
	{ "charge.success", "payment.succeeded" },
	{ "refund.pending", "refund.pending" },
	{ "refund.processing", "refund.pending" },
	{ "refund.processed", "refund.succeeded" },
	{ "refund.failed", "refund.failed" },
	{ "transfer.success", "transfer.succeeded" },
	{ "transfer.failed", "transfer.failed" },
	/* The money came back to the balance: the transfer did not pay. */
	{ "transfer.reversed", "transfer.failed" },
	/* A subscription's invoice could not be charged. */
	{ "invoice.payment_failed", "payment.failed" },
	{ "charge.dispute.create", "dispute.opened" },
};

/* Where an event's own identity lives, first present wins: transactions,
 * transfers and disputes have an id, refunds only their refund_reference,
 * subscriptions and invoices their codes. All are in the signed body. */
static const char *const paystack_identity[] = {
	"data.id", "data.refund_reference", "data.subscription_code",
	"data.invoice_code",
};

/* The event's own time: when it was paid, else last updated, else
 * created (the samples spell both created_at and createdAt). */
static const char *const paystack_times[] = {
	"data.paid_at", "data.updated_at", "data.updatedAt", "data.created_at",
	"data.createdAt",
};

static int
paystack_configure(struct ph_route *route, struct ph_faults *faults)
{
	char where[160];

	if (route->n_secrets > 0)
		return 0;
	ph_faults_add(faults, "%s: key 'secrets': missing; Paystack signs "
		      "every webhook with the account's secret key (sk_live_... "
		      "or sk_test_...)",
		      ph_route_where(route, where, sizeof(where)));
	return -1;
}

static enum ph_auth_result
paystack_authenticate(const struct ph_route *route, struct ph_request *req,
		      struct ph_auth *auth)
{
	const char *sig = ph_request_header(req, PAYSTACK_HEADER);
	int idx;

	if (sig == NULL)
		return PH_AUTH_FAIL;
	idx = ph_hmac_hex_match(PH_SHA512, route->secrets, route->n_secrets,
				req->body, req->body_len, sig);
	if (idx < 0)
		return PH_AUTH_FAIL;
	auth->secret_index = idx;
	auth->verified_by = "hmac-sha512";
	return PH_AUTH_OK;
}

/* charge.dispute.resolve says who won in data.resolution: the merchant
 * accepted (or Paystack auto-accepted) the chargeback and lost it, or the
 * merchant's evidence had it declined and won. */
static const char *
paystack_dispute_resolution(struct json_object *doc)
{
	const char *res = ph_json_cstring(ph_json_path(doc, "data.resolution"));
	size_t len;

	if (res == NULL)
		return "unknown";
	len = strlen(res);
	if (len >= 8 && strcmp(res + len - 8, "accepted") == 0)
		return "dispute.lost";
	if (strcmp(res, "declined") == 0)
		return "dispute.won";
	return "unknown";
}

static void
paystack_normalize(const struct ph_route *route, const struct ph_request *req,
		   struct ph_event *ev)
{
	struct json_object *doc = req->doc;
	struct json_object *event = ph_json_path(doc, "event");
	struct json_object *amount;
	char *identity = NULL;
	const char *parts[2];

	(void)route;
	ev->type = "unknown";
	if (ph_event_set_text(&ev->provider_event, event) &&
	    json_object_is_type(event, json_type_string)) {
		for (size_t i = 0; i < PH_N_ELEMENTS(paystack_types); i++) {
			if (strcmp(ev->provider_event,
				   paystack_types[i].event) == 0)
				ev->type = paystack_types[i].type;
		}
		if (strcmp(ev->provider_event, "charge.dispute.resolve") == 0)
			ev->type = paystack_dispute_resolution(doc);
	}
	/* The merchant's reference of the transaction (what Paystack's
	 * verify endpoint takes); a refund and a dispute name it too. */
	if (!ph_event_set_id(ev, &ev->payment_id,
			     ph_json_path(doc, "data.reference"),
			     "data.reference") &&
	    !ph_event_set_id(ev, &ev->payment_id,
			     ph_json_path(doc, "data.transaction_reference"),
			     "data.transaction_reference"))
		ph_event_set_id(ev, &ev->payment_id,
				ph_json_path(doc, "data.transaction.reference"),
				"data.transaction.reference");
	ph_event_set_id(ev, &ev->refund_id,
			ph_json_path(doc, "data.refund_reference"),
			"data.refund_reference");
	ph_event_set_text(&ev->status, ph_json_path(doc, "data.status"));
	/* A dispute carries the amount in question as refund_amount. */
	amount = ph_json_path(doc, "data.amount");
	if (amount == NULL)
		amount = ph_json_path(doc, "data.refund_amount");
	ph_event_set_amount(ev, amount, ph_json_path(doc, "data.currency"),
			    PH_UNIT_MINOR);
	for (size_t i = 0; i < PH_N_ELEMENTS(paystack_times); i++) {
		if (ph_event_set_time(&ev->occurred_at,
				      ph_json_path(doc, paystack_times[i])))
			break;
	}
	/* The HMAC covers the whole body: the event's name and its own
	 * identity make the key; without an identity, the body hash. */
	for (size_t i = 0; i < PH_N_ELEMENTS(paystack_identity); i++) {
		if (ph_event_set_id(ev, &identity,
				    ph_json_path(doc, paystack_identity[i]),
				    paystack_identity[i]))
			break;
	}
	parts[0] = ev->provider_event;
	parts[1] = identity;
	ph_event_set_dedup_key(ev, req->body, req->body_len, parts,
			       PH_N_ELEMENTS(parts));
	free(identity);
}

static int
paystack_sign(const struct ph_route *route, const uint8_t *payload,
	      size_t len, struct json_object *doc, struct ph_signed *out,
	      struct ph_error *err)
{
	char hex[2 * PH_DIGEST_MAX + 1];

	(void)doc;
	if (ph_sign_hmac_hex(PH_SHA512, &route->secrets[0], payload, len, hex,
			     err) < 0)
		return -1;
	return ph_signed_add_header(out, PAYSTACK_HEADER, hex, strlen(hex),
				    err);
}

static const char *
paystack_credential_header(const struct ph_route *route)
{
	(void)route;
	return PAYSTACK_HEADER;
}

const struct ph_provider ph_provider_paystack = {
	.name = "paystack",
	.configure = paystack_configure,
	.unconfigure = NULL,
	.authenticate = paystack_authenticate,
	.normalize = paystack_normalize,
	.answer = NULL,
	.sign = paystack_sign,
	.credential_header = paystack_credential_header,
};
