/* prov-ngn.c - the NGN payment gateway: HMAC over the raw body in a header.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * The gateway's page says only that the signature is in a header and is
 * checked with the dashboard secret. We take the common scheme: lowercase
 * hex HMAC-SHA512 (or SHA-256) of the exact body, header configurable.
 * "amount": 5000 is ambiguous between naira and kobo, so the route must say
 * which ("amount_unit").
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "provider.h"
#include "sign.h"
#include "verify.h"

struct ngn_settings {
	const char *header;		/* borrowed from the route's JSON */
	bool fixed_digest;		/* false: chosen by signature length */
	enum ph_digest digest;
	enum ph_amount_unit unit;
};

static const struct {
	const char *event;
	const char *type;
} ngn_types[] = {
	{ "payment.success", "payment.succeeded" },
	{ "payment.failed", "payment.failed" },
	{ "refund.processed", "refund.succeeded" },
	{ "transfer.success", "transfer.succeeded" },
	{ "subscription.renew", "subscription.renewed" },
};

static int
ngn_configure(struct ph_route *route, struct ph_faults *faults)
{
	struct ngn_settings *s = ph_xcalloc(1, sizeof(*s));
	const char *algorithm = NULL, *unit = NULL;
	char where[160];
	int ret = 0;

	route->adapter = s;
	s->header = "X-Signature";
	ph_route_where(route, where, sizeof(where));
	if (ph_route_opt_string(route, "header", &s->header, faults) < 0) {
		ret = -1;
	} else if (!ph_header_name_valid(s->header)) {
		ph_faults_add(faults, "%s: key 'header': not a valid header "
			      "name", where);
		ret = -1;
	}
	if (ph_route_opt_string(route, "algorithm", &algorithm, faults) < 0)
		ret = -1;
	else if (algorithm != NULL) {
		if (ph_digest_parse(algorithm, &s->digest) < 0 ||
		    s->digest == PH_SHA1) {
			ph_faults_add(faults, "%s: key 'algorithm': must be "
				      "\"sha512\" or \"sha256\"", where);
			ret = -1;
		}
		s->fixed_digest = true;
	}
	if (ph_route_opt_string(route, "amount_unit", &unit, faults) < 0)
		ret = -1;
	else if (unit == NULL) {
		ph_faults_add(faults, "%s: key 'amount_unit': missing; must be "
			      "\"major\" or \"minor\" (is 5000 NGN naira or "
			      "kobo? ask the gateway)", where);
		ret = -1;
	} else if (strcmp(unit, "major") == 0) {
		s->unit = PH_UNIT_MAJOR;
	} else if (strcmp(unit, "minor") == 0) {
		s->unit = PH_UNIT_MINOR;
	} else {
		ph_faults_add(faults, "%s: key 'amount_unit': must be "
			      "\"major\" or \"minor\"", where);
		ret = -1;
	}
	if (route->n_secrets == 0) {
		ph_faults_add(faults, "%s: key 'secrets': missing; the "
			      "dashboard's webhook secret is required", where);
		ret = -1;
	}
	return ret;
}

static void
ngn_unconfigure(struct ph_route *route)
{
	ph_free(&route->adapter);
}

static enum ph_auth_result
ngn_authenticate(const struct ph_route *route, struct ph_request *req,
		 struct ph_auth *auth)
{
	const struct ngn_settings *s = route->adapter;
	const char *sig = ph_request_header(req, s->header);
	enum ph_digest d = s->digest;
	size_t hexlen;
	int idx;

	if (sig == NULL)
		return PH_AUTH_FAIL;
	if (!s->fixed_digest) {
		/* Trimmed as ph_hmac_hex_match trims it. */
		hexlen = strlen(sig);
		while (hexlen > 0 && ph_is_space(sig[hexlen - 1]))
			hexlen--;
		while (hexlen > 0 && ph_is_space(*sig)) {
			sig++;
			hexlen--;
		}
		if (hexlen == 2 * ph_digest_size(PH_SHA512))
			d = PH_SHA512;
		else if (hexlen == 2 * ph_digest_size(PH_SHA256))
			d = PH_SHA256;
		else
			return PH_AUTH_FAIL;
	}
	idx = ph_hmac_hex_match(d, route->secrets, route->n_secrets,
				req->body, req->body_len, sig);
	if (idx < 0)
		return PH_AUTH_FAIL;
	auth->secret_index = idx;
	auth->verified_by = d == PH_SHA512 ? "hmac-sha512" : "hmac-sha256";
	return PH_AUTH_OK;
}

static void
ngn_normalize(const struct ph_route *route, const struct ph_request *req,
	      struct ph_event *ev)
{
	const struct ngn_settings *s = route->adapter;
	struct json_object *doc = req->doc;
	struct json_object *event = ph_json_path(doc, "event");
	struct json_object *txid = ph_json_path(doc, "data.transaction_id");
	const char *parts[2];

	ev->type = "unknown";
	if (ph_event_set_text(&ev->provider_event, event) &&
	    json_object_is_type(event, json_type_string)) {
		for (size_t i = 0; i < PH_N_ELEMENTS(ngn_types); i++) {
			if (strcmp(ev->provider_event, ngn_types[i].event) == 0)
				ev->type = ngn_types[i].type;
		}
	}
	ph_event_set_id(ev, &ev->payment_id, txid, "data.transaction_id");
	ph_event_set_text(&ev->status, ph_json_path(doc, "data.status"));
	ph_event_set_amount(ev, ph_json_path(doc, "data.amount"),
			    ph_json_path(doc, "data.currency"), s->unit);
	/* The HMAC covers the whole body: any of its fields may make the
	 * key. */
	parts[0] = ev->provider_event;
	parts[1] = ev->payment_id;
	ph_event_set_dedup_key(ev, req->body, req->body_len, parts,
			       PH_N_ELEMENTS(parts));
}

/* SHA-512 unless the route fixes the algorithm. */
static int
ngn_sign(const struct ph_route *route, const uint8_t *payload, size_t len,
	 struct json_object *doc, struct ph_signed *out, struct ph_error *err)
{
	const struct ngn_settings *s = route->adapter;
	enum ph_digest d = s->fixed_digest ? s->digest : PH_SHA512;
	char hex[2 * PH_DIGEST_MAX + 1];

	(void)doc;
	if (ph_sign_hmac_hex(d, &route->secrets[0], payload, len, hex,
			     err) < 0)
		return -1;
	return ph_signed_add_header(out, s->header, hex, strlen(hex), err);
}

static const char *
ngn_credential_header(const struct ph_route *route)
{
	const struct ngn_settings *s = route->adapter;

	return s->header;
}

const struct ph_provider ph_provider_ngn = {
	.name = "ngn-gateway",
	.configure = ngn_configure,
	.unconfigure = ngn_unconfigure,
	.authenticate = ngn_authenticate,
	.normalize = ngn_normalize,
	.answer = NULL,
	.sign = ngn_sign,
	.credential_header = ngn_credential_header,
};
