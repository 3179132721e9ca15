/* prov-square.c - Square: base64 HMAC-SHA256 of the notification URL and body.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * Source: Square's "Validate and verify webhook event notifications" page,
 * https://developer.squareup.com/docs/webhooks/step3validate , the event
 * examples of its API specification (square/connect-api-specification,
 * api.json: PaymentUpdatedEvent and the others), and the "square" npm
 * SDK's WebhooksHelper.verifySignature: x-square-hmacsha256-signature is
 * the base64 HMAC-SHA256, keyed with the subscription's signature key, of
 * the notification URL exactly as registered with Square followed by the
 * raw body, compared as a string. The route must name that URL: payhook
 * cannot rebuild it from the request (proxies, ports, the server's own
 * path prefix), and any difference fails every signature.
 *
 * Every event has its event_id inside the signed body: the dedup key.
 * Amounts (amount_money) are in the currency's minor unit.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "provider.h"
#include "sign.h"
#include "verify.h"

#define SQUARE_HEADER "x-square-hmacsha256-signature"
/* Base64 of a 32-byte digest: 44 characters and a NUL. */
#define SQUARE_SIG_LEN 44

struct square_settings {
	const char *notification_url;	/* borrowed from the route's JSON */
};

/* The type of an event and its object's folded status or state. */
static const struct {
	const char *event;
	const char *status;
	const char *type;
} square_types[] = {
	{ "payment.", "approved", "payment.authorized" },
	{ "payment.", "pending", "payment.pending" },
	{ "payment.", "completed", "payment.succeeded" },
	{ "payment.", "failed", "payment.failed" },
	{ "payment.", "canceled", "payment.cancelled" },
	{ "refund.", "pending", "refund.pending" },
	{ "refund.", "completed", "refund.succeeded" },
	{ "refund.", "failed", "refund.failed" },
	{ "refund.", "rejected", "refund.failed" },
	{ "dispute.state.", "won", "dispute.won" },
	{ "dispute.state.", "lost", "dispute.lost" },
	/* The merchant accepted the dispute: the money goes back. */
	{ "dispute.state.", "accepted", "dispute.lost" },
};

static int
square_configure(struct ph_route *route, struct ph_faults *faults)
{
	struct square_settings *s = ph_xcalloc(1, sizeof(*s));
	const char *url = NULL;
	char where[160];
	int ret = 0;

	route->adapter = s;
	ph_route_where(route, where, sizeof(where));
	if (route->n_secrets == 0) {
		ph_faults_add(faults, "%s: key 'secrets': missing; the "
			      "subscription's signature key is required", where);
		ret = -1;
	}
	if (ph_route_opt_string(route, "notification_url", &url,
				faults) < 0) {
		ret = -1;
	} else if (url == NULL) {
		ph_faults_add(faults, "%s: key 'notification_url': missing; "
			      "Square signs the notification URL with the body: "
			      "give it exactly as registered with Square", where);
		ret = -1;
	} else if (strncmp(url, "https://", 8) != 0 &&
		   strncmp(url, "http://", 7) != 0) {
		ph_faults_add(faults, "%s: key 'notification_url': must be "
			      "the absolute http:// or https:// URL registered "
			      "with Square", where);
		ret = -1;
	}
	s->notification_url = url;
	return ret;
}

static void
square_unconfigure(struct ph_route *route)
{
	ph_free(&route->adapter);
}

/* The signature of body with key, as Square writes it, into sig
 * (SQUARE_SIG_LEN + 1 bytes). Returns 0 or -1 (OpenSSL failure). */
static int
square_signature(const struct square_settings *s, const struct ph_secret *key,
		 const uint8_t *body, size_t len, char *sig)
{
	size_t url_len = strlen(s->notification_url), mac_len;
	uint8_t mac[PH_DIGEST_MAX];
	uint8_t *msg = ph_xmalloc(url_len + len + 1);
	int ret;

	memcpy(msg, s->notification_url, url_len);
	if (len > 0)
		memcpy(msg + url_len, body, len);
	ret = ph_hmac(PH_SHA256, key, msg, url_len + len, mac, &mac_len);
	free(msg);
	if (ret < 0 || mac_len != 32)
		return -1;
	/* EVP_EncodeBlock writes 44 characters and a NUL for 32 bytes. */
	EVP_EncodeBlock((unsigned char *)sig, mac, (int)mac_len);
	ph_wipe(mac, sizeof(mac));
	return 0;
}

static enum ph_auth_result
square_authenticate(const struct ph_route *route, struct ph_request *req,
		    struct ph_auth *auth)
{
	const struct square_settings *s = route->adapter;
	const char *sig = ph_request_header(req, SQUARE_HEADER);
	char want[SQUARE_SIG_LEN + 1];
	int match = -1;

	/* The length is public (it follows from SHA-256): a wrong one fails
	 * without comparing. */
	if (sig == NULL || strlen(sig) != SQUARE_SIG_LEN)
		return PH_AUTH_FAIL;
	for (size_t i = 0; i < route->n_secrets; i++) {
		if (square_signature(s, &route->secrets[i], req->body,
				     req->body_len, want) < 0)
			continue;
		if (CRYPTO_memcmp(want, sig, SQUARE_SIG_LEN) == 0 && match < 0)
			match = (int)i;
	}
	ph_wipe(want, sizeof(want));
	if (match < 0)
		return PH_AUTH_FAIL;
	auth->secret_index = match;
	auth->verified_by = "hmac-sha256(notification_url+body)";
	return PH_AUTH_OK;
}

static void
square_set_type(struct ph_event *ev)
{
	char folded[32];

	ev->type = "unknown";
	if (ev->provider_event == NULL)
		return;
	if (strcmp(ev->provider_event, "dispute.created") == 0) {
		ev->type = "dispute.opened";
		return;
	}
	if (ev->status == NULL)
		return;
	ph_status_fold(ev->status, folded, sizeof(folded));
	for (size_t i = 0; i < PH_N_ELEMENTS(square_types); i++) {
		size_t n = strlen(square_types[i].event);

		if (strncmp(ev->provider_event, square_types[i].event, n) == 0
		    && strcmp(folded, square_types[i].status) == 0)
			ev->type = square_types[i].type;
	}
}

static void
square_normalize(const struct ph_route *route, const struct ph_request *req,
		 struct ph_event *ev)
{
	struct json_object *doc = req->doc;
	struct json_object *object = ph_json_path(doc, "data.object");
	struct json_object *payment = ph_json_path(object, "payment");
	struct json_object *refund = ph_json_path(object, "refund");
	struct json_object *dispute = ph_json_path(object, "dispute");
	struct json_object *subject = NULL;
	char *event_id = NULL;
	const char *parts[1];

	(void)route;
	if (json_object_is_type(ph_json_path(doc, "type"), json_type_string))
		ph_event_set_text(&ev->provider_event,
				  ph_json_path(doc, "type"));
	if (payment != NULL) {
		subject = payment;
		ph_event_set_id(ev, &ev->payment_id,
				ph_json_path(payment, "id"), "payment.id");
		ph_event_set_text(&ev->order_id,
				  ph_json_path(payment, "order_id"));
		ph_event_set_text(&ev->status,
				  ph_json_path(payment, "status"));
	} else if (refund != NULL) {
		subject = refund;
		ph_event_set_id(ev, &ev->refund_id,
				ph_json_path(refund, "id"), "refund.id");
		ph_event_set_id(ev, &ev->payment_id,
				ph_json_path(refund, "payment_id"),
				"refund.payment_id");
		ph_event_set_text(&ev->order_id,
				  ph_json_path(refund, "order_id"));
		ph_event_set_text(&ev->status, ph_json_path(refund, "status"));
	} else if (dispute != NULL) {
		subject = dispute;
		ph_event_set_id(ev, &ev->payment_id,
		    ph_json_path(dispute, "disputed_payment.payment_id"),
		    "dispute.disputed_payment.payment_id");
		ph_event_set_text(&ev->status, ph_json_path(dispute, "state"));
	}
	square_set_type(ev);
	ph_event_set_amount(ev, ph_json_path(subject, "amount_money.amount"),
			    ph_json_path(subject, "amount_money.currency"),
			    PH_UNIT_MINOR);
	ph_event_set_time(&ev->occurred_at, ph_json_path(doc, "created_at"));
	/* event_id is in the signed body and names this one notification. */
	ph_event_set_id(ev, &event_id, ph_json_path(doc, "event_id"),
			"event_id");
	parts[0] = event_id;
	ph_event_set_dedup_key(ev, req->body, req->body_len, parts,
			       PH_N_ELEMENTS(parts));
	free(event_id);
}

static int
square_sign(const struct ph_route *route, const uint8_t *payload, size_t len,
	    struct json_object *doc, struct ph_signed *out,
	    struct ph_error *err)
{
	const struct square_settings *s = route->adapter;
	char sig[SQUARE_SIG_LEN + 1];

	(void)doc;
	if (square_signature(s, &route->secrets[0], payload, len, sig) < 0)
		return ph_error_set(err, "OpenSSL could not make the HMAC");
	return ph_signed_add_header(out, SQUARE_HEADER, sig, strlen(sig),
				    err);
}

static const char *
square_credential_header(const struct ph_route *route)
{
	(void)route;
	return SQUARE_HEADER;
}

const struct ph_provider ph_provider_square = {
	.name = "square",
	.configure = square_configure,
	.unconfigure = square_unconfigure,
	.authenticate = square_authenticate,
	.normalize = square_normalize,
	.answer = NULL,
	.sign = square_sign,
	.credential_header = square_credential_header,
};
