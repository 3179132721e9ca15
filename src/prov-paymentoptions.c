/* prov-paymentoptions.c - Payment Options (PO Gateway): a secret token in the
 * webhook URL, optionally an HMAC of the body.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * Payment Options publishes no signature: the merchant gives a webhook URL
 * per transaction (return_url.webhook_url), and its own shop plugins verify
 * nothing. payhook authenticates by a secret token in that URL's query
 * (?token=...), which the merchant puts there, and, where something in
 * front of payhook can add one, an HMAC-SHA256 of the raw body in a header.
 * When both are configured both must pass.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "provider.h"
#include "sign.h"
#include "verify.h"

struct po_settings {
	struct ph_secret *tokens;	/* "url_token": one or a list */
	size_t n_tokens;
	const char *header;		/* HMAC header, NULL if none */
	const char *verified_by;
};

/* Folded transaction_type -> event type on success, on failure. A failed
 * CAPTURE or VOID is the operation's failure, not the payment's: the
 * authorization stands (payment.capture_failed, payment.cancel_failed). */
static const struct {
	const char *ttype;
	const char *success;
	const char *failure;
} po_types[] = {
	{ "preauth", "payment.authorized", "payment.failed" },
	{ "capture", "payment.succeeded", "payment.capture_failed" },
	{ "sale", "payment.succeeded", "payment.failed" },
	{ "refund", "refund.succeeded", "refund.failed" },
	{ "void", "payment.cancelled", "payment.cancel_failed" },
};

static int
po_configure(struct ph_route *route, struct ph_faults *faults)
{
	struct po_settings *s = ph_xcalloc(1, sizeof(*s));
	char where[192], safe[64];
	int ret = 0;

	route->adapter = s;
	ph_route_where(route, where, sizeof(where));
	/* "url_token": one secret reference, or a list so that a token can
	 * be rotated while transactions made with the old URL still call
	 * back. */
	if (ph_route_secret_list(route, "url_token", &s->tokens, &s->n_tokens,
				 faults) < 0)
		ret = -1;
	if (ph_route_opt_string(route, "header", &s->header, faults) < 0) {
		ret = -1;
	} else if (s->header != NULL && !ph_header_name_valid(s->header)) {
		ph_faults_add(faults, "%s: key 'header': not a valid header "
			      "name", where);
		ret = -1;
	}
	if (s->header != NULL && route->n_secrets == 0) {
		ph_faults_add(faults, "%s: key 'header': needs 'secrets' (the "
			      "HMAC-SHA256 key)", where);
		ret = -1;
	} else if (s->header == NULL && route->n_secrets > 0) {
		ph_faults_add(faults, "%s: key 'secrets': needs 'header' "
			      "(where the HMAC-SHA256 of the body is sent)",
			      where);
		ret = -1;
	}
	if (ret < 0)
		return ret;
	if (s->n_tokens == 0 && !route->allow_unauthenticated) {
		ph_faults_add(faults, "%s: key 'url_token': missing; Payment "
			      "Options signs nothing, the token in the webhook "
			      "URL is the authentication (or set "
			      "\"allow_unauthenticated\": true)", where);
		return -1;
	}
	if (s->n_tokens > 0)
		s->verified_by = s->header != NULL ?
		    "url-token+hmac-sha256" : "url-token";
	else if (s->header != NULL)
		s->verified_by = "hmac-sha256";
	else {
		s->verified_by = "none";
		ph_log_warn("route=%s has no authentication "
			    "(allow_unauthenticated): anyone who can reach its "
			    "URL can submit events",
			    ph_log_sanitize(route->name, safe, sizeof(safe)));
	}
	return 0;
}

static void
po_unconfigure(struct ph_route *route)
{
	struct po_settings *s = route->adapter;

	for (size_t i = 0; i < s->n_tokens; i++)
		ph_secret_clear(&s->tokens[i]);
	free(s->tokens);
	ph_free(&route->adapter);
}

static enum ph_auth_result
po_authenticate(const struct ph_route *route, struct ph_request *req,
		struct ph_auth *auth)
{
	const struct po_settings *s = route->adapter;
	bool ok = true;
	int idx = -1;

	if (s->n_tokens > 0) {
		char *token = ph_request_query_param(req, "token");
		size_t len = token != NULL ? strlen(token) : 0;

		/* Every token is compared, so the time taken does not tell
		 * which one matched. */
		for (size_t i = 0; token != NULL && i < s->n_tokens; i++) {
			if (ph_secret_equal(&s->tokens[i], token, len) &&
			    idx < 0)
				idx = (int)i;
		}
		ok = idx >= 0;
		if (token != NULL) {
			ph_wipe(token, len);
			free(token);
		}
	}
	if (s->header != NULL) {
		/* Checked even when the token failed: the time taken does not
		 * tell which one did. */
		idx = ph_hmac_hex_match(PH_SHA256, route->secrets,
					route->n_secrets, req->body,
					req->body_len,
					ph_request_header(req, s->header));
		ok = ok && idx >= 0;
	}
	if (!ok)
		return PH_AUTH_FAIL;
	auth->secret_index = idx;
	auth->verified_by = s->verified_by;
	return PH_AUTH_OK;
}

static void
po_normalize(const struct ph_route *route, const struct ph_request *req,
	     struct ph_event *ev)
{
	struct json_object *doc = req->doc;
	struct json_object *success = ph_json_path(doc, "success");
	struct json_object *ttype = ph_json_path(doc, "transaction_type");
	const char *outcome = NULL, *parts[3];
	char folded[32];

	(void)route;
	if (json_object_is_type(success, json_type_boolean))
		outcome = json_object_get_boolean(success) ?
		    "success" : "failure";
	ev->type = "unknown";
	if (ph_event_set_text(&ev->provider_event, ttype) &&
	    json_object_is_type(ttype, json_type_string) && outcome != NULL) {
		ph_status_fold(ev->provider_event, folded, sizeof(folded));
		for (size_t i = 0; i < PH_N_ELEMENTS(po_types); i++) {
			if (strcmp(folded, po_types[i].ttype) == 0)
				ev->type = json_object_get_boolean(success) ?
				    po_types[i].success : po_types[i].failure;
		}
	}
	if (outcome != NULL)
		ev->status = ph_xstrdup(outcome);
	ph_event_set_id(ev, &ev->payment_id,
			ph_json_path(doc, "transaction_details.id"),
			"transaction_details.id");
	if (!ph_event_set_id(ev, &ev->order_id, ph_json_path(doc,
	    "merchant_details.merchant_txn_ref"),
	    "merchant_details.merchant_txn_ref"))
		ph_event_set_id(ev, &ev->order_id, ph_json_path(doc,
		    "transaction_details.merchant_txn_ref"),
		    "transaction_details.merchant_txn_ref");
	ph_event_set_amount(ev, ph_json_path(doc, "payment_details.amount"),
			    ph_json_path(doc, "payment_details.currency"),
			    PH_UNIT_MAJOR);
	ph_event_set_time(&ev->occurred_at,
			  ph_json_path(doc, "transaction_details.timestamp"));
	/* The URL token vouches for the sender, not the body (whoever holds
	 * it can send any body anyway), the optional HMAC for the whole
	 * body: the body's fields make the key. */
	parts[0] = ev->payment_id;
	parts[1] = ev->provider_event;
	parts[2] = outcome;
	ph_event_set_dedup_key(ev, req->body, req->body_len, parts,
			       PH_N_ELEMENTS(parts));
}

static int
po_sign(const struct ph_route *route, const uint8_t *payload, size_t len,
	struct json_object *doc, struct ph_signed *out, struct ph_error *err)
{
	const struct po_settings *s = route->adapter;
	char hex[2 * PH_DIGEST_MAX + 1];
	char *enc;

	(void)doc;
	if (s->n_tokens > 0) {
		enc = ph_url_encode(s->tokens[0].data, s->tokens[0].len);
		out->query = ph_xasprintf("token=%s", enc);
		ph_wipe(enc, strlen(enc));
		free(enc);
	}
	if (s->header == NULL)
		return 0;
	if (ph_sign_hmac_hex(PH_SHA256, &route->secrets[0], payload, len, hex,
			     err) < 0)
		return -1;
	return ph_signed_add_header(out, s->header, hex, strlen(hex), err);
}

static const char *
po_credential_header(const struct ph_route *route)
{
	const struct po_settings *s = route->adapter;

	return s->header;
}

const struct ph_provider ph_provider_paymentoptions = {
	.name = "paymentoptions",
	.configure = po_configure,
	.unconfigure = po_unconfigure,
	.authenticate = po_authenticate,
	.normalize = po_normalize,
	.answer = NULL,
	.sign = po_sign,
	.credential_header = po_credential_header,
};
