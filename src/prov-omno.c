/* prov-omno.c - OMNO: one webhook per status change, authentication chosen
 * per route.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * OMNO's dashboard offers an optional "authorization method" whose choices
 * are not published, so the route says what to expect ("auth"): HTTP Basic,
 * a bearer token, a static header, or an HMAC-SHA256 of the raw body in a
 * header. No authentication at all needs "allow_unauthenticated": true and
 * is logged as a warning each time the configuration is loaded.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "provider.h"
#include "sign.h"
#include "verify.h"

#define WHERE_MAX 192

enum omno_auth {
	OMNO_NONE,
	OMNO_BASIC,
	OMNO_BEARER,
	OMNO_HEADER,
	OMNO_HMAC,
};

static const struct {
	const char *name;
	enum omno_auth type;
	const char *keys[3];		/* allowed besides "type"; NULL-ended */
} omno_auths[] = {
	{ "none", OMNO_NONE, { NULL, NULL } },
	{ "basic", OMNO_BASIC, { "user", "password" } },
	{ "bearer", OMNO_BEARER, { "token", NULL } },
	{ "header", OMNO_HEADER, { "name", "value" } },
	{ "hmac-sha256", OMNO_HMAC, { "header", "secret" } },
};

struct omno_settings {
	enum omno_auth type;
	const char *verified_by;	/* the auth's name */
	const char *header;		/* header, hmac: borrowed from JSON */
	/* basic: "user:password"; bearer: the token; header: its value;
	 * hmac: auth.secret (else the route's "secrets" are the keys) */
	struct ph_secret secret;
};

/* Folded status (ph_status_fold) -> event type. */
static const struct {
	const char *status;
	const char *type;
} omno_types[] = {
	{ "created", "payment.created" },
	{ "pending", "payment.pending" },
	{ "pending3ds", "payment.action_required" },
	{ "success", "payment.succeeded" },
	{ "declined", "payment.failed" },
	{ "failed", "payment.failed" },
	{ "timeout", "payment.expired" },
	{ "refunded", "refund.succeeded" },
	{ "partiallyrefunded", "refund.succeeded" },
	{ "refundfailed", "refund.failed" },
};

static int
auth_header_name(struct json_object *auth, const char *where, const char *key,
		 const char **out, struct ph_faults *faults)
{
	int r = ph_auth_string(auth, where, key, out, faults);

	if (r < 0)
		return -1;
	if (r == 1) {
		if (*out != NULL)
			return 0;	/* a default */
		ph_faults_add(faults, "%s: key 'auth.%s': missing (required)",
			      where, key);
		return -1;
	}
	if (!ph_header_name_valid(*out)) {
		ph_faults_add(faults, "%s: key 'auth.%s': not a valid header "
			      "name", where, key);
		return -1;
	}
	return 0;
}

static void
warn_unauthenticated(const struct ph_route *route)
{
	char safe[64];

	ph_log_warn("route=%s has no authentication (allow_unauthenticated): "
		    "anyone who can reach its URL can submit events",
		    ph_log_sanitize(route->name, safe, sizeof(safe)));
}

static int
configure_auth(struct ph_route *route, struct omno_settings *s,
	       struct json_object *auth, const char *where,
	       struct ph_faults *faults)
{
	const char *type;
	size_t t;
	int ret = 0;

	if (ph_auth_type(auth, where, &type, faults) < 0)
		return -1;
	for (t = 0; t < PH_N_ELEMENTS(omno_auths); t++)
		if (strcmp(type, omno_auths[t].name) == 0)
			break;
	if (t == PH_N_ELEMENTS(omno_auths)) {
		ph_faults_add(faults, "%s: key 'auth.type': must be \"basic\", "
			      "\"bearer\", \"header\", \"hmac-sha256\" or "
			      "\"none\"", where);
		return -1;
	}
	s->type = omno_auths[t].type;
	s->verified_by = omno_auths[t].name;
	if (ph_auth_check_keys(auth, where, type, omno_auths[t].keys,
			       faults) < 0)
		ret = -1;
	if (s->type != OMNO_HMAC && route->n_secrets > 0) {
		ph_faults_add(faults, "%s: key 'secrets': not used by auth "
			      "type \"%s\"", where, type);
		ret = -1;
	}
	switch (s->type) {
	case OMNO_NONE:
		if (!route->allow_unauthenticated) {
			ph_faults_add(faults, "%s: key 'auth.type': \"none\" "
				      "needs \"allow_unauthenticated\": true",
				      where);
			return -1;
		}
		warn_unauthenticated(route);
		break;
	case OMNO_BASIC:
		if (ph_basic_configure(auth, where, &s->secret, faults) < 0)
			ret = -1;
		break;
	case OMNO_BEARER:
		if (ph_auth_secret(auth, where, "token", &s->secret, faults) < 0)
			ret = -1;
		break;
	case OMNO_HEADER:
		if (auth_header_name(auth, where, "name", &s->header,
				     faults) < 0 ||
		    ph_auth_secret(auth, where, "value", &s->secret, faults) < 0)
			ret = -1;
		break;
	case OMNO_HMAC:
		s->header = "X-Signature";
		if (auth_header_name(auth, where, "header", &s->header,
				     faults) < 0)
			ret = -1;
		if (json_object_object_get_ex(auth, "secret", NULL)) {
			if (route->n_secrets > 0) {
				ph_faults_add(faults, "%s: key 'auth.secret': "
					      "give the key here or in "
					      "'secrets', not both", where);
				ret = -1;
			} else if (ph_auth_secret(auth, where, "secret",
					       &s->secret, faults) < 0)
				ret = -1;
		} else if (route->n_secrets == 0) {
			ph_faults_add(faults, "%s: key 'auth.secret': missing; "
				      "the HMAC key goes here or in 'secrets'",
				      where);
			ret = -1;
		}
		break;
	}
	return ret;
}

static int
omno_configure(struct ph_route *route, struct ph_faults *faults)
{
	struct omno_settings *s = ph_xcalloc(1, sizeof(*s));
	struct json_object *auth;
	char where[WHERE_MAX];

	route->adapter = s;
	s->type = OMNO_NONE;
	s->verified_by = "none";
	ph_route_where(route, where, sizeof(where));
	if (json_object_object_get_ex(route->json, "auth", &auth))
		return configure_auth(route, s, auth, where, faults);
	if (!route->allow_unauthenticated) {
		ph_faults_add(faults, "%s: key 'auth': missing; set the "
			      "authorization method chosen in OMNO's dashboard "
			      "(basic, bearer, header, hmac-sha256), or "
			      "\"allow_unauthenticated\": true", where);
		return -1;
	}
	if (route->n_secrets > 0) {
		ph_faults_add(faults, "%s: key 'secrets': not used without "
			      "'auth'", where);
		return -1;
	}
	warn_unauthenticated(route);
	return 0;
}

static void
omno_unconfigure(struct ph_route *route)
{
	struct omno_settings *s = route->adapter;

	ph_secret_clear(&s->secret);
	ph_free(&route->adapter);
}

static enum ph_auth_result
omno_authenticate(const struct ph_route *route, struct ph_request *req,
		  struct ph_auth *auth)
{
	const struct omno_settings *s = route->adapter;
	const char *v;
	size_t len;
	int idx = 0;

	switch (s->type) {
	case OMNO_NONE:
		idx = -1;
		break;
	case OMNO_BASIC:
		if (!ph_basic_check(&s->secret, req))
			return PH_AUTH_FAIL;
		break;
	case OMNO_BEARER:
		v = ph_auth_param(req, "Bearer", &len);
		if (v == NULL || !ph_secret_equal(&s->secret, v, len))
			return PH_AUTH_FAIL;
		break;
	case OMNO_HEADER:
		v = ph_request_header(req, s->header);
		if (v == NULL || !ph_secret_equal(&s->secret, v, strlen(v)))
			return PH_AUTH_FAIL;
		break;
	case OMNO_HMAC:
		v = ph_request_header(req, s->header);
		if (s->secret.data != NULL)
			idx = ph_hmac_hex_match(PH_SHA256, &s->secret, 1,
						req->body, req->body_len, v);
		else
			idx = ph_hmac_hex_match(PH_SHA256, route->secrets,
						route->n_secrets, req->body,
						req->body_len, v);
		if (idx < 0)
			return PH_AUTH_FAIL;
		break;
	}
	auth->secret_index = idx;
	auth->verified_by = s->verified_by;
	return PH_AUTH_OK;
}

static void
omno_normalize(const struct ph_route *route, const struct ph_request *req,
	       struct ph_event *ev)
{
	struct json_object *doc = req->doc;
	struct json_object *status = ph_json_path(doc, "status");
	const char *parts[2];
	char folded[32];

	(void)route;
	ev->type = "unknown";
	/* Each webhook is one status: the status is the event. */
	if (ph_event_set_text(&ev->provider_event, status) &&
	    json_object_is_type(status, json_type_string)) {
		ph_status_fold(ev->provider_event, folded, sizeof(folded));
		for (size_t i = 0; i < PH_N_ELEMENTS(omno_types); i++) {
			if (strcmp(folded, omno_types[i].status) == 0)
				ev->type = omno_types[i].type;
		}
	}
	ph_event_set_text(&ev->status, status);
	ph_event_set_id(ev, &ev->payment_id, ph_json_path(doc, "id"), "id");
	/* A JSON number in major units; its text is used, never a double. */
	ph_event_set_amount(ev, ph_json_path(doc, "amount"),
			    ph_json_path(doc, "currency"), PH_UNIT_MAJOR);
	/* "2024-01-18T12:34:56" carries no zone: OMNO means UTC. */
	ph_event_set_time(&ev->occurred_at, ph_json_path(doc, "createdAt"));
	/* hmac-sha256 covers the whole body; basic, bearer and header
	 * credentials vouch for the sender, not the body, so whoever holds
	 * them can send any body anyway; "none" claims only keys of its own
	 * route. So the body's fields make the key. */
	parts[0] = ev->payment_id;
	parts[1] = ev->status;
	ph_event_set_dedup_key(ev, req->body, req->body_len, parts,
			       PH_N_ELEMENTS(parts));
}

static int
omno_sign(const struct ph_route *route, const uint8_t *payload, size_t len,
	  struct json_object *doc, struct ph_signed *out,
	  struct ph_error *err)
{
	const struct omno_settings *s = route->adapter;
	char hex[2 * PH_DIGEST_MAX + 1];
	char *value;
	size_t n;
	int ret;

	(void)doc;
	switch (s->type) {
	case OMNO_NONE:
		return 0;
	case OMNO_BASIC:
		return ph_basic_sign(&s->secret, out, err);
	case OMNO_BEARER:
		n = sizeof("Bearer ") - 1 + s->secret.len;
		value = ph_xmalloc(n + 1);
		memcpy(value, "Bearer ", 7);
		memcpy(value + 7, s->secret.data, s->secret.len);
		value[n] = '\0';
		ret = ph_signed_add_header(out, "Authorization", value, n,
					   err);
		ph_wipe(value, n);
		free(value);
		return ret;
	case OMNO_HEADER:
		return ph_signed_add_header(out, s->header,
					    (const char *)s->secret.data,
					    s->secret.len, err);
	case OMNO_HMAC:
		if (ph_sign_hmac_hex(PH_SHA256, s->secret.data != NULL ?
				     &s->secret : &route->secrets[0], payload,
				     len, hex, err) < 0)
			return -1;
		return ph_signed_add_header(out, s->header, hex, strlen(hex),
					    err);
	}
	return 0;
}

static const char *
omno_credential_header(const struct ph_route *route)
{
	const struct omno_settings *s = route->adapter;

	return s->header;
}

const struct ph_provider ph_provider_omno = {
	.name = "omno",
	.configure = omno_configure,
	.unconfigure = omno_unconfigure,
	.authenticate = omno_authenticate,
	.normalize = omno_normalize,
	.answer = NULL,
	.sign = omno_sign,
	.credential_header = omno_credential_header,
};
