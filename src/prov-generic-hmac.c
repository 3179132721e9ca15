/* prov-generic-hmac.c - any sender that signs the raw body (optionally with
 * a timestamp) with an HMAC in a header: GitHub, Shopify and many gateways.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * Documentation read: GitHub, "Validating webhook deliveries",
 * https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries
 * (X-Hub-Signature-256: "sha256=" and the hex HMAC-SHA256 of the body);
 * Shopify, "Verify webhooks", https://shopify.dev/docs/apps/build/webhooks
 * (X-Shopify-Hmac-Sha256: the base64 HMAC-SHA256 of the body). SDK read:
 * @octokit/webhooks-methods 5.1.1, sign() and verify().
 *
 * The route says everything the sender does: header, algorithm, encoding,
 * prefix, and, for senders that sign a timestamp too, the header carrying
 * it and the shape of the signed content ("{timestamp}.{body}"). The
 * identity, type, amount and currency are JSON paths into the body; the
 * sender's type names map to payhook's through "type_map", and a name not
 * in it is "unknown".
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "log.h"
#include "provider.h"
#include "sign.h"
#include "verify.h"

#define PH_B64_LEN(n) (4 * (((n) + 2) / 3))

/* A piece of the signed content: literal text, the timestamp or the body. */
enum gh_piece_kind { GH_TEXT, GH_TIMESTAMP, GH_BODY };

struct gh_piece {
	enum gh_piece_kind kind;
	const char *text;		/* GH_TEXT: borrowed from the route */
	size_t len;
};

struct gh_settings {
	const char *header;		/* all strings borrowed from the route */
	enum ph_digest digest;
	bool base64;
	const char *prefix;		/* "" when none */
	const char *ts_header;		/* NULL: nothing but the body signed */
	struct gh_piece pieces[5];	/* text {timestamp} text {body} text */
	size_t n_pieces;
	unsigned tolerance_s;
	const char *id_path, *type_path, *amount_path, *currency_path;
	struct json_object *type_map;	/* borrowed; values checked */
	enum ph_amount_unit unit;
	char verified_by[16];		/* "hmac-sha256" */
};

/* Append a piece; false when the template has more than pieces holds. */
static bool
gh_piece_add(struct gh_settings *s, enum gh_piece_kind kind,
	     const char *text, size_t len)
{
	if (s->n_pieces == PH_N_ELEMENTS(s->pieces))
		return false;
	s->pieces[s->n_pieces++] = (struct gh_piece){ kind, text, len };
	return true;
}

/* Split "signed_content" into pieces: "{body}" exactly once,
 * "{timestamp}" once when there is a timestamp header and never
 * otherwise, and no other '{'. */
static int
gh_signed_content(struct gh_settings *s, const char *tmpl, const char *where,
		  struct ph_faults *faults)
{
	static const char ts[] = "{timestamp}", body[] = "{body}";
	size_t n_ts = 0, n_body = 0, lit;
	const char *p = tmpl;
	bool ok = true;

	while (ok && *p != '\0') {
		if ((lit = strcspn(p, "{")) > 0) {
			ok = gh_piece_add(s, GH_TEXT, p, lit);
			p += lit;
		} else if (strncmp(p, ts, sizeof(ts) - 1) == 0) {
			ok = gh_piece_add(s, GH_TIMESTAMP, NULL, 0) &&
			    ++n_ts == 1;
			p += sizeof(ts) - 1;
		} else if (strncmp(p, body, sizeof(body) - 1) == 0) {
			ok = gh_piece_add(s, GH_BODY, NULL, 0) &&
			    ++n_body == 1;
			p += sizeof(body) - 1;
		} else {
			ok = false;
		}
	}
	if (!ok || n_body != 1 || n_ts != (s->ts_header != NULL ? 1u : 0u)) {
		ph_faults_add(faults, "%s: key 'signed_content': must hold "
			      "{body} once and {timestamp} once when "
			      "'timestamp_header' is set (never without it), "
			      "and no other '{'", where);
		return -1;
	}
	return 0;
}

/* An optional key that is a dotted JSON path (ph_json_path): non-empty
 * names of at most 127 bytes between the dots. */
static int
gh_path(struct ph_route *route, const char *key, const char **out,
	const char *where, struct ph_faults *faults)
{
	const char *p;

	if (ph_route_opt_string(route, key, out, faults) < 0)
		return -1;
	if (*out == NULL)
		return 0;
	for (p = *out;; p++) {
		size_t len = strcspn(p, ".");

		if (len == 0 || len > 127)
			break;
		p += len;
		if (*p == '\0')
			return 0;
	}
	ph_faults_add(faults, "%s: key '%s': must be a JSON path such as "
		      "\"data.id\" (names of 1 to 127 bytes joined by '.')",
		      where, key);
	*out = NULL;
	return -1;
}

/* "type_map": an object from the sender's type names to payhook's. */
static int
gh_type_map(struct ph_route *route, struct gh_settings *s, const char *where,
	    struct ph_faults *faults)
{
	struct json_object *map;
	char safe[64];
	int ret = 0;

	if (!json_object_object_get_ex(route->json, "type_map", &map))
		return 0;
	if (!json_object_is_type(map, json_type_object)) {
		ph_faults_add(faults, "%s: key 'type_map': must be an object "
			      "from the sender's type names to payhook's "
			      "types", where);
		return -1;
	}
	json_object_object_foreach(map, name, val) {
		if (!ph_event_type_valid(ph_json_cstring(val))) {
			ph_faults_add(faults, "%s: key 'type_map.%s': must be "
				      "one of payhook's event types",
				      where, ph_log_sanitize(name, safe,
				      sizeof(safe)));
			ret = -1;
		}
	}
	if (s->type_path == NULL) {
		ph_faults_add(faults, "%s: key 'type_map': needs 'type' (the "
			      "JSON path of the sender's type name)", where);
		ret = -1;
	}
	s->type_map = map;
	return ret;
}

/* "amount", "currency" and "amount_unit": all three or none. */
static int
gh_amount(struct ph_route *route, struct gh_settings *s, const char *where,
	  struct ph_faults *faults)
{
	const char *unit = NULL;
	int ret = 0;

	if (gh_path(route, "amount", &s->amount_path, where, faults) < 0 ||
	    gh_path(route, "currency", &s->currency_path, where,
		    faults) < 0 ||
	    ph_route_opt_string(route, "amount_unit", &unit, faults) < 0)
		return -1;
	if ((s->amount_path == NULL) != (s->currency_path == NULL)) {
		ph_faults_add(faults, "%s: keys 'amount' and 'currency': give "
			      "both or neither", where);
		ret = -1;
	}
	if (unit == NULL && s->amount_path != NULL) {
		ph_faults_add(faults, "%s: key 'amount_unit': missing; must be "
			      "\"major\" or \"minor\" (is 5000 USD 5000 "
			      "dollars or cents? the sender's documents say)",
			      where);
		ret = -1;
	} else if (unit != NULL && s->amount_path == NULL) {
		ph_faults_add(faults, "%s: key 'amount_unit': needs 'amount' "
			      "and 'currency'", where);
		ret = -1;
	} else if (unit != NULL && strcmp(unit, "major") == 0) {
		s->unit = PH_UNIT_MAJOR;
	} else if (unit != NULL && strcmp(unit, "minor") == 0) {
		s->unit = PH_UNIT_MINOR;
	} else if (unit != NULL) {
		ph_faults_add(faults, "%s: key 'amount_unit': must be "
			      "\"major\" or \"minor\"", where);
		ret = -1;
	}
	return ret;
}

/* "header", "algorithm", "encoding", "prefix", "timestamp_header",
 * "signed_content" and "tolerance_seconds": how the sender signs. */
static int
gh_signature(struct ph_route *route, struct gh_settings *s,
	     const char *where, struct ph_faults *faults)
{
	const char *algorithm = NULL, *encoding = NULL, *tmpl = NULL;
	uint64_t tolerance = PH_TIMESTAMP_TOLERANCE_S;
	int ret = 0;

	if (ph_route_opt_string(route, "header", &s->header, faults) < 0) {
		ret = -1;
	} else if (s->header == NULL) {
		ph_faults_add(faults, "%s: key 'header': missing; the header "
			      "that carries the signature", where);
		ret = -1;
	} else if (!ph_header_name_valid(s->header)) {
		ph_faults_add(faults, "%s: key 'header': not a valid header "
			      "name", where);
		ret = -1;
	}
	s->digest = PH_SHA256;
	if (ph_route_opt_string(route, "algorithm", &algorithm, faults) < 0) {
		ret = -1;
	} else if (algorithm != NULL &&
		   ph_digest_parse(algorithm, &s->digest) < 0) {
		ph_faults_add(faults, "%s: key 'algorithm': must be \"sha1\", "
			      "\"sha256\" or \"sha512\"", where);
		ret = -1;
	}
	snprintf(s->verified_by, sizeof(s->verified_by), "hmac-%s",
		 ph_digest_name(s->digest));
	if (ph_route_opt_string(route, "encoding", &encoding, faults) < 0) {
		ret = -1;
	} else if (encoding != NULL && strcmp(encoding, "base64") == 0) {
		s->base64 = true;
	} else if (encoding != NULL && strcmp(encoding, "hex") != 0) {
		ph_faults_add(faults, "%s: key 'encoding': must be \"hex\" or "
			      "\"base64\"", where);
		ret = -1;
	}
	s->prefix = "";
	if (ph_route_opt_string(route, "prefix", &s->prefix, faults) < 0)
		ret = -1;
	if (ph_route_opt_string(route, "timestamp_header", &s->ts_header,
				faults) < 0) {
		ret = -1;
	} else if (s->ts_header != NULL &&
		   !ph_header_name_valid(s->ts_header)) {
		ph_faults_add(faults, "%s: key 'timestamp_header': not a valid "
			      "header name", where);
		ret = -1;
	}
	if (ph_route_opt_uint(route, "tolerance_seconds", 1,
			      PH_TIMESTAMP_TOLERANCE_MAX_S, &tolerance,
			      faults) < 0)
		ret = -1;
	s->tolerance_s = (unsigned)tolerance;
	if (ph_route_opt_string(route, "signed_content", &tmpl, faults) < 0)
		return -1;
	if (tmpl == NULL)
		tmpl = s->ts_header != NULL ? "{timestamp}.{body}" : "{body}";
	if (gh_signed_content(s, tmpl, where, faults) < 0)
		ret = -1;
	return ret;
}

static int
gh_configure(struct ph_route *route, struct ph_faults *faults)
{
	struct gh_settings *s = ph_xcalloc(1, sizeof(*s));
	char where[160];
	int ret = 0;

	route->adapter = s;
	ph_route_where(route, where, sizeof(where));
	if (gh_signature(route, s, where, faults) < 0)
		ret = -1;
	if (gh_path(route, "id", &s->id_path, where, faults) < 0 ||
	    gh_path(route, "type", &s->type_path, where, faults) < 0)
		ret = -1;
	if (gh_type_map(route, s, where, faults) < 0)
		ret = -1;
	if (gh_amount(route, s, where, faults) < 0)
		ret = -1;
	if (route->n_secrets == 0) {
		ph_faults_add(faults, "%s: key 'secrets': missing; the HMAC "
			      "key the sender signs with is required", where);
		ret = -1;
	}
	return ret;
}

static void
gh_unconfigure(struct ph_route *route)
{
	ph_free(&route->adapter);
}

/* The signed content for a body and a timestamp's text (NULL when the
 * route has none), in a new buffer of *len_r bytes. */
static uint8_t *
gh_message(const struct gh_settings *s, const char *ts, size_t ts_len,
	   const uint8_t *body, size_t body_len, size_t *len_r)
{
	size_t total = 0, off = 0;
	uint8_t *msg;

	for (size_t i = 0; i < s->n_pieces; i++)
		total += s->pieces[i].kind == GH_TEXT ? s->pieces[i].len :
		    s->pieces[i].kind == GH_TIMESTAMP ? ts_len : body_len;
	msg = ph_xmalloc(total + 1);
	for (size_t i = 0; i < s->n_pieces; i++) {
		const void *src = s->pieces[i].kind == GH_TEXT ?
		    (const void *)s->pieces[i].text :
		    s->pieces[i].kind == GH_TIMESTAMP ?
		    (const void *)ts : (const void *)body;
		size_t len = s->pieces[i].kind == GH_TEXT ? s->pieces[i].len :
		    s->pieces[i].kind == GH_TIMESTAMP ? ts_len : body_len;

		if (len > 0)
			memcpy(msg + off, src, len);
		off += len;
	}
	*len_r = total;
	return msg;
}

/* The index of the first secret whose base64 HMAC of msg is sig
 * (sig_len bytes), or -1. Our MAC is encoded and the two texts compared in
 * constant time, every secret tried, so neither the content nor which
 * secret matched shows in the time taken. */
static int
gh_base64_match(const struct ph_route *route, enum ph_digest d,
		const uint8_t *msg, size_t msg_len, const char *sig,
		size_t sig_len)
{
	uint8_t mac[PH_DIGEST_MAX];
	char enc[PH_B64_LEN(PH_DIGEST_MAX) + 1];
	size_t mac_len, enc_len = PH_B64_LEN(ph_digest_size(d));
	int match = -1;

	if (sig_len != enc_len)
		return -1;
	for (size_t i = 0; i < route->n_secrets; i++) {
		if (ph_hmac(d, &route->secrets[i], msg, msg_len, mac,
			    &mac_len) < 0 || mac_len != ph_digest_size(d))
			continue;
		EVP_EncodeBlock((unsigned char *)enc, mac, (int)mac_len);
		if (CRYPTO_memcmp(enc, sig, enc_len) == 0 && match < 0)
			match = (int)i;
	}
	ph_wipe(mac, sizeof(mac));
	ph_wipe(enc, sizeof(enc));
	return match;
}

static enum ph_auth_result
gh_authenticate(const struct ph_route *route, struct ph_request *req,
		struct ph_auth *auth)
{
	const struct gh_settings *s = route->adapter;
	const char *sig = ph_request_header(req, s->header), *ts = NULL;
	size_t sig_len, prefix_len = strlen(s->prefix), ts_len = 0, msg_len;
	uint8_t *msg;
	char safe[64];
	int idx;

	if (sig == NULL)
		return PH_AUTH_FAIL;
	while (ph_is_space(*sig))
		sig++;
	sig_len = strlen(sig);
	while (sig_len > 0 && ph_is_space(sig[sig_len - 1]))
		sig_len--;
	/* The prefix is public text ("sha256="), compared as such. */
	if (sig_len < prefix_len || memcmp(sig, s->prefix, prefix_len) != 0)
		return PH_AUTH_FAIL;
	sig += prefix_len;
	sig_len -= prefix_len;
	if (s->ts_header != NULL) {
		ts = ph_request_header(req, s->ts_header);
		ts_len = ts != NULL ? strlen(ts) : 0;
		if (!ph_timestamp_fresh(ts, ts_len, s->tolerance_s,
					(int64_t)time(NULL), NULL)) {
			if (ts != NULL)
				ph_log_warn("route=%s %s not within %u s of "
					    "now (or not a number): refused",
					    ph_log_sanitize(route->name, safe,
					    sizeof(safe)), s->ts_header,
					    s->tolerance_s);
			return PH_AUTH_FAIL;
		}
	}
	msg = gh_message(s, ts, ts_len, req->body, req->body_len, &msg_len);
	if (s->base64) {
		idx = gh_base64_match(route, s->digest, msg, msg_len, sig,
				      sig_len);
	} else {
		/* ph_hmac_hex_match takes a C string: sig_len ends at the
		 * string's end or at trailing white space it skips too. */
		idx = ph_hmac_hex_match(s->digest, route->secrets,
					route->n_secrets, msg, msg_len, sig);
	}
	free(msg);
	if (idx < 0)
		return PH_AUTH_FAIL;
	auth->secret_index = idx;
	auth->verified_by = s->verified_by;
	return PH_AUTH_OK;
}

/* The payhook type type_map gives the sender's name, or "unknown". */
static const char *
gh_type(const struct gh_settings *s, const char *name)
{
	struct json_object *v;
	const char *type;

	if (s->type_map == NULL || name == NULL ||
	    !json_object_object_get_ex(s->type_map, name, &v) ||
	    (type = ph_json_cstring(v)) == NULL)
		return "unknown";
	/* The list's own string: the event outlives nothing, but its type
	 * must be one of ph_event_types by contract. */
	for (size_t i = 0; ph_event_types[i] != NULL; i++)
		if (strcmp(type, ph_event_types[i]) == 0)
			return ph_event_types[i];
	return "unknown";
}

static void
gh_normalize(const struct ph_route *route, const struct ph_request *req,
	     struct ph_event *ev)
{
	const struct gh_settings *s = route->adapter;
	struct json_object *doc = req->doc;
	char *id = NULL;
	const char *parts[2];
	size_t n = 0;

	ev->type = "unknown";
	if (s->type_path != NULL) {
		struct json_object *type = ph_json_path(doc, s->type_path);

		if (json_object_is_type(type, json_type_string) &&
		    ph_event_set_text(&ev->provider_event, type))
			ev->type = gh_type(s, ev->provider_event);
		parts[n++] = ev->provider_event;
	}
	if (s->amount_path != NULL)
		ph_event_set_amount(ev, ph_json_path(doc, s->amount_path),
				    ph_json_path(doc, s->currency_path),
				    s->unit);
	/* The HMAC covers the whole body: its fields may make the key. The
	 * sender's type is part of it, so that one id's successive states
	 * are successive events; without an id the body hash is the key. */
	if (s->id_path != NULL) {
		ph_event_set_id(ev, &id, ph_json_path(doc, s->id_path),
				s->id_path);
		parts[n++] = id;
		ph_event_set_dedup_key(ev, req->body, req->body_len, parts,
				       n);
	} else {
		ph_event_dedup_body_hash(ev, req->body, req->body_len);
	}
	free(id);
}

/* The route's signature header, and its timestamp header with the current
 * time, made with the first secret. */
static int
gh_sign(const struct ph_route *route, const uint8_t *payload, size_t len,
	struct json_object *doc, struct ph_signed *out, struct ph_error *err)
{
	const struct gh_settings *s = route->adapter;
	uint8_t mac[PH_DIGEST_MAX], *msg;
	char ts[24], *value, *enc;
	size_t mac_len, msg_len, enc_size;
	int ret;

	(void)doc;
	snprintf(ts, sizeof(ts), "%lld", (long long)time(NULL));
	msg = gh_message(s, ts, strlen(ts), payload, len, &msg_len);
	ret = ph_hmac(s->digest, &route->secrets[0], msg, msg_len, mac,
		      &mac_len);
	free(msg);
	if (ret < 0)
		return ph_error_set(err, "HMAC failed (OpenSSL)");
	enc_size = PH_B64_LEN(mac_len) + 2 * mac_len + 1;
	enc = ph_xmalloc(enc_size);
	if (s->base64)
		EVP_EncodeBlock((unsigned char *)enc, mac, (int)mac_len);
	else
		ph_hex_encode(mac, mac_len, enc);
	ph_wipe(mac, sizeof(mac));
	value = ph_xasprintf("%s%s", s->prefix, enc);
	free(enc);
	ret = ph_signed_add_header(out, s->header, value, strlen(value), err);
	free(value);
	if (ret == 0 && s->ts_header != NULL)
		ret = ph_signed_add_header(out, s->ts_header, ts, strlen(ts),
					   err);
	return ret;
}

static const char *
gh_credential_header(const struct ph_route *route)
{
	const struct gh_settings *s = route->adapter;

	return s->header;
}

const struct ph_provider ph_provider_generic_hmac = {
	.name = "generic-hmac",
	.configure = gh_configure,
	.unconfigure = gh_unconfigure,
	.authenticate = gh_authenticate,
	.normalize = gh_normalize,
	.answer = NULL,
	.sign = gh_sign,
	.credential_header = gh_credential_header,
};
