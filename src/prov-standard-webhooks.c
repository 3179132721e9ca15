/* prov-standard-webhooks.c - Standard Webhooks (Svix and the providers
 * built on it): signed id, timestamp and body.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * Specification: "Standard Webhooks" 1.0.0,
 * https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md
 * ("Verifying webhook authenticity"); signer checked against the npm
 * packages standardwebhooks 1.1.1 and svix 1.99.1 (tests/sdk/).
 *
 * A delivery carries webhook-id, webhook-timestamp (Unix seconds) and
 * webhook-signature, a space-separated list of "v1,<base64 HMAC-SHA256>"
 * and "v1a,<base64 Ed25519>" signatures of "{id}.{timestamp}.{body}"; one
 * valid entry is enough (senders list one per key while keys rotate).
 * Svix spells the headers svix-id, svix-timestamp and svix-signature; like
 * the svix SDK, each svix- header is taken before its webhook- twin. The
 * route's secrets are "whsec_<base64>" HMAC keys and "whpk_<base64>"
 * Ed25519 public keys. The id is signed, so it is the dedup key; the
 * payload's "type" is mapped through the route's "type_map".
 */
#include "config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ids.h"
#include "log.h"
#include "prov-standard-webhooks.h"
#include "sign.h"
#include "verify.h"

#define WHERE_MAX 192
#define SWH_HMAC_PREFIX "whsec_"
#define SWH_PUBLIC_PREFIX "whpk_"
#define SWH_PRIVATE_PREFIX "whsk_"
#define SWH_HMAC_SIZE 32		/* HMAC-SHA256 */
#define SWH_ED25519_KEY_SIZE 32
#define SWH_ED25519_SIG_SIZE 64
/* tolerance_seconds: a day at most; a sender stamps every attempt anew,
 * so the window only has to cover clock skew and transit. */
#define SWH_TOLERANCE_MAX 86400

/* One of the route's secrets, decoded (same index as route->secrets). */
struct swh_key {
	struct ph_secret hmac;		/* whsec_: the HMAC key's bytes */
	EVP_PKEY *ed25519;		/* whpk_: the public key */
};

struct swh_settings {
	struct swh_key *keys;		/* route->n_secrets of them */
	size_t n_keys;
	unsigned tolerance_s;
	struct json_object *type_map;	/* borrowed from route->json */
	const char *amount;		/* JSON paths, borrowed; NULL: none */
	const char *currency;
	enum ph_amount_unit unit;
};

/* The header by its Svix spelling, else by the standard one (the svix
 * SDK's order). Authentication and the dedup key both use this, so the
 * id in the key is always the one the signature covered. */
static const char *
swh_header(const struct ph_request *req, const char *name)
{
	char svix[32];
	const char *v;

	snprintf(svix, sizeof(svix), "svix-%s", name);
	if ((v = ph_request_header(req, svix)) != NULL)
		return v;
	snprintf(svix, sizeof(svix), "webhook-%s", name);
	return ph_request_header(req, svix);
}

static int
b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

long
ph_swh_base64_decode(const char *in, size_t len, uint8_t *out, size_t size)
{
	size_t pad = 0, padded, decoded;
	unsigned char *buf, *raw;
	int n;

	while (len > 0 && in[len - 1] == '=' && pad < 2) {
		len--;
		pad++;
	}
	/* The SDKs decode secrets with or without their '=' padding. */
	if (len % 4 == 1 || (pad > 0 && (len + pad) % 4 != 0) ||
	    len > (size_t)INT_MAX / 2)
		return -1;
	for (size_t i = 0; i < len; i++)
		if (b64_value(in[i]) < 0)
			return -1;
	decoded = len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
	if (decoded > size)
		return -1;
	/* EVP_DecodeBlock wants whole 4-character groups and counts the
	 * padding's zero bytes: pad here, drop them after. */
	padded = (len + 3) / 4 * 4;
	buf = ph_xmalloc(padded + 1);
	memcpy(buf, in, len);
	memset(buf + len, '=', padded - len);
	raw = ph_xmalloc(padded / 4 * 3 + 1);
	n = EVP_DecodeBlock(raw, buf, (int)padded);
	if (n >= 0 && (size_t)n >= decoded) {
		memcpy(out, raw, decoded);
		n = (int)decoded;
	} else {
		n = -1;
	}
	ph_wipe(raw, padded / 4 * 3 + 1);
	ph_wipe(buf, padded + 1);
	free(raw);
	free(buf);
	return n;
}

/* ---------------------------------------------------------------- configure */

static bool
has_prefix(const struct ph_secret *s, const char *prefix)
{
	size_t n = strlen(prefix);

	return s->len >= n && memcmp(s->data, prefix, n) == 0;
}

/* Decode route->secrets[i] into key. Faults name the secret's position,
 * never its value. */
static int
configure_key(const struct ph_secret *s, size_t i, struct swh_key *key,
	      const char *where, struct ph_faults *faults)
{
	const char *b64;
	size_t len;
	long n;

	if (has_prefix(s, SWH_HMAC_PREFIX)) {
		b64 = (const char *)s->data + strlen(SWH_HMAC_PREFIX);
		len = s->len - strlen(SWH_HMAC_PREFIX);
		key->hmac.data = ph_xmalloc(len / 4 * 3 + 3);
		n = ph_swh_base64_decode(b64, len, key->hmac.data,
					 len / 4 * 3 + 2);
		if (n <= 0) {
			ph_faults_add(faults, "%s: secrets[%zu]: a whsec_ "
				      "secret must be followed by its key in "
				      "base64", where, i);
			ph_secret_clear(&key->hmac);
			return -1;
		}
		key->hmac.len = (size_t)n;
		key->hmac.data[n] = '\0';
		return 0;
	}
	if (has_prefix(s, SWH_PUBLIC_PREFIX)) {
		uint8_t raw[SWH_ED25519_KEY_SIZE];

		b64 = (const char *)s->data + strlen(SWH_PUBLIC_PREFIX);
		len = s->len - strlen(SWH_PUBLIC_PREFIX);
		if (ph_swh_base64_decode(b64, len, raw, sizeof(raw)) !=
		    SWH_ED25519_KEY_SIZE) {
			ph_faults_add(faults, "%s: secrets[%zu]: a whpk_ key "
				      "must be followed by a 32-byte Ed25519 "
				      "public key in base64", where, i);
			return -1;
		}
		key->ed25519 = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519,
							   NULL, raw,
							   sizeof(raw));
		if (key->ed25519 == NULL) {
			ph_faults_add(faults, "%s: secrets[%zu]: OpenSSL "
				      "refused the Ed25519 public key", where,
				      i);
			return -1;
		}
		return 0;
	}
	if (has_prefix(s, SWH_PRIVATE_PREFIX)) {
		ph_faults_add(faults, "%s: secrets[%zu]: a whsk_ key is the "
			      "sender's private signing key; give payhook its "
			      "public key (whpk_) instead, and keep the private "
			      "one secret", where, i);
		return -1;
	}
	ph_faults_add(faults, "%s: secrets[%zu]: must begin with whsec_ (a "
		      "signing secret) or whpk_ (an Ed25519 public key); a "
		      "signing secret shown without its prefix takes "
		      "\"whsec_\" in front", where, i);
	return -1;
}

static int
configure_tolerance(struct ph_route *route, struct swh_settings *s,
		    const char *where, struct ph_faults *faults)
{
	struct json_object *v;
	int64_t n;

	s->tolerance_s = PH_TIMESTAMP_TOLERANCE_S;
	if (!json_object_object_get_ex(route->json, "tolerance_seconds", &v))
		return 0;
	n = json_object_get_int64(v);
	if (!json_object_is_type(v, json_type_int) ||
	    ph_json_int_overflowed(v) || n < 1 || n > SWH_TOLERANCE_MAX) {
		ph_faults_add(faults, "%s: key 'tolerance_seconds': must be an "
			      "integer from 1 to %d", where,
			      SWH_TOLERANCE_MAX);
		return -1;
	}
	s->tolerance_s = (unsigned)n;
	return 0;
}

static int
configure_type_map(struct ph_route *route, struct swh_settings *s,
		   const char *where, struct ph_faults *faults)
{
	struct json_object *map;
	char safe[64];
	int ret = 0;

	if (!json_object_object_get_ex(route->json, "type_map", &map))
		return 0;
	if (!json_object_is_type(map, json_type_object)) {
		ph_faults_add(faults, "%s: key 'type_map': must be an object "
			      "from the sender's event types to payhook's",
			      where);
		return -1;
	}
	json_object_object_foreach(map, name, val) {
		if (!ph_event_type_valid(ph_json_cstring(val))) {
			ph_faults_add(faults, "%s: key 'type_map.%s': must be "
				      "one of payhook's event types (see "
				      "payhook.json(5))", where,
				      ph_log_sanitize(name, safe,
						      sizeof(safe)));
			ret = -1;
		}
	}
	s->type_map = map;
	return ret;
}

static int
configure_amount(struct ph_route *route, struct swh_settings *s,
		 const char *where, struct ph_faults *faults)
{
	const char *unit = NULL;
	int ret = 0;

	if (ph_route_opt_string(route, "amount", &s->amount, faults) < 0 ||
	    ph_route_opt_string(route, "currency", &s->currency, faults) < 0 ||
	    ph_route_opt_string(route, "amount_unit", &unit, faults) < 0)
		return -1;
	if (s->amount == NULL && s->currency == NULL && unit == NULL)
		return 0;
	if (s->amount == NULL || s->currency == NULL || unit == NULL) {
		ph_faults_add(faults, "%s: keys 'amount', 'currency' and "
			      "'amount_unit': give all three or none", where);
		ret = -1;
	}
	if (unit == NULL) {
		/* reported above */
	} else if (strcmp(unit, "major") == 0) {
		s->unit = PH_UNIT_MAJOR;
	} else if (strcmp(unit, "minor") == 0) {
		s->unit = PH_UNIT_MINOR;
	} else {
		ph_faults_add(faults, "%s: key 'amount_unit': must be "
			      "\"major\" or \"minor\"", where);
		ret = -1;
	}
	if ((s->amount != NULL && *s->amount == '\0') ||
	    (s->currency != NULL && *s->currency == '\0')) {
		ph_faults_add(faults, "%s: keys 'amount' and 'currency': must "
			      "be dotted JSON paths such as \"data.amount\"",
			      where);
		ret = -1;
	}
	return ret;
}

static int
swh_configure(struct ph_route *route, struct ph_faults *faults)
{
	struct swh_settings *s = ph_xcalloc(1, sizeof(*s));
	char where[WHERE_MAX];
	int ret = 0;

	route->adapter = s;
	ph_route_where(route, where, sizeof(where));
	if (route->n_secrets == 0) {
		ph_faults_add(faults, "%s: key 'secrets': missing; the "
			      "endpoint's signing secret (whsec_...) or the "
			      "sender's public key (whpk_...) is required",
			      where);
		ret = -1;
	}
	s->keys = ph_xcalloc(route->n_secrets + 1, sizeof(*s->keys));
	s->n_keys = route->n_secrets;
	for (size_t i = 0; i < route->n_secrets; i++) {
		/* A secret that did not resolve was reported by conf.c. */
		if (route->secrets[i].data != NULL &&
		    configure_key(&route->secrets[i], i, &s->keys[i], where,
				  faults) < 0)
			ret = -1;
	}
	if (configure_tolerance(route, s, where, faults) < 0)
		ret = -1;
	if (configure_type_map(route, s, where, faults) < 0)
		ret = -1;
	if (configure_amount(route, s, where, faults) < 0)
		ret = -1;
	return ret;
}

static void
swh_unconfigure(struct ph_route *route)
{
	struct swh_settings *s = route->adapter;

	for (size_t i = 0; i < s->n_keys; i++) {
		ph_secret_clear(&s->keys[i].hmac);
		EVP_PKEY_free(s->keys[i].ed25519);
	}
	free(s->keys);
	ph_free(&route->adapter);
}

/* ---------------------------------------------------------------- verify */

/* "{id}.{timestamp}.{body}", the signed content, in a new buffer. The
 * timestamp is digits only and a JSON body begins with '{', so no other
 * id, timestamp and body give the same bytes. */
static uint8_t *
signed_content(const char *id, const char *timestamp, const uint8_t *body,
	       size_t len, size_t *len_r)
{
	size_t id_len = strlen(id), ts_len = strlen(timestamp);
	size_t n = id_len + 1 + ts_len + 1 + len;
	uint8_t *msg = ph_xmalloc(n + 1);

	memcpy(msg, id, id_len);
	msg[id_len] = '.';
	memcpy(msg + id_len + 1, timestamp, ts_len);
	msg[id_len + 1 + ts_len] = '.';
	if (len > 0)
		memcpy(msg + id_len + ts_len + 2, body, len);
	msg[n] = '\0';
	*len_r = n;
	return msg;
}

static bool
ed25519_verify(EVP_PKEY *key, const uint8_t *sig, const uint8_t *msg,
	       size_t len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok;

	/* Ed25519 is one-shot: no digest named, the whole message at once. */
	ok = ctx != NULL &&
	     EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, key) == 1 &&
	     EVP_DigestVerify(ctx, sig, SWH_ED25519_SIG_SIZE, msg, len) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* The expected v1 signature of one whsec_ key; ok false for a whpk_ key
 * (or if OpenSSL failed), so that nothing can match it. */
struct swh_mac {
	uint8_t mac[SWH_HMAC_SIZE];
	bool ok;
};

/* Check one "version,base64" entry; *match (the first matching key's
 * index, or -1) is updated. Every HMAC is compared, even after a match,
 * so the time does not tell which key or entry matched. */
static void
check_entry(const struct swh_settings *s, const char *entry, size_t len,
	    const struct swh_mac *macs, const uint8_t *msg, size_t msg_len,
	    int *match)
{
	uint8_t sig[SWH_ED25519_SIG_SIZE];
	const char *comma = memchr(entry, ',', len);
	size_t vlen;
	long n;

	if (comma == NULL)
		return;
	vlen = (size_t)(comma - entry);
	n = ph_swh_base64_decode(comma + 1, len - vlen - 1, sig, sizeof(sig));
	if (vlen == 2 && memcmp(entry, "v1", 2) == 0 && n == SWH_HMAC_SIZE) {
		for (size_t k = 0; k < s->n_keys; k++) {
			if (macs[k].ok &&
			    CRYPTO_memcmp(macs[k].mac, sig,
					  SWH_HMAC_SIZE) == 0 && *match < 0)
				*match = (int)k;
		}
	} else if (vlen == 3 && memcmp(entry, "v1a", 3) == 0 &&
		   n == SWH_ED25519_SIG_SIZE) {
		/* Public keys and signatures: nothing secret to time. */
		for (size_t k = 0; k < s->n_keys; k++) {
			if (s->keys[k].ed25519 != NULL && *match < 0 &&
			    ed25519_verify(s->keys[k].ed25519, sig, msg,
					   msg_len))
				*match = (int)k;
		}
	}
	/* Other versions are for other schemes: skipped, as the SDKs do. */
}

bool
ph_swh_verify(const struct ph_route *route, const char *id,
	      const char *timestamp, const char *signatures,
	      const uint8_t *body, size_t len, int64_t now,
	      struct ph_auth *auth)
{
	const struct swh_settings *s = route->adapter;
	struct swh_mac *macs;
	const char *p;
	size_t msg_len, mac_len, entries = 0;
	uint8_t *msg;
	int match = -1;

	if (id == NULL || *id == '\0' || timestamp == NULL ||
	    signatures == NULL)
		return false;
	if (!ph_timestamp_fresh(timestamp, strlen(timestamp), s->tolerance_s,
				now, NULL))
		return false;
	for (p = signatures + strspn(signatures, " "); *p != '\0';
	     p += strspn(p, " ")) {
		p += strcspn(p, " ");
		entries++;
	}
	if (entries > PH_SWH_MAX_SIGNATURES)
		return false;
	msg = signed_content(id, timestamp, body, len, &msg_len);
	macs = ph_xcalloc(s->n_keys + 1, sizeof(*macs));
	for (size_t k = 0; k < s->n_keys; k++) {
		uint8_t mac[PH_DIGEST_MAX];

		if (s->keys[k].hmac.data == NULL ||
		    ph_hmac(PH_SHA256, &s->keys[k].hmac, msg, msg_len, mac,
			    &mac_len) < 0 || mac_len != SWH_HMAC_SIZE)
			continue;
		memcpy(macs[k].mac, mac, SWH_HMAC_SIZE);
		macs[k].ok = true;
		ph_wipe(mac, sizeof(mac));
	}
	for (p = signatures + strspn(signatures, " "); *p != '\0';
	     p += strspn(p, " ")) {
		size_t n = strcspn(p, " ");

		check_entry(s, p, n, macs, msg, msg_len, &match);
		p += n;
	}
	ph_wipe(macs, (s->n_keys + 1) * sizeof(*macs));
	free(macs);
	free(msg);
	if (match < 0)
		return false;
	auth->secret_index = match;
	auth->verified_by = s->keys[match].ed25519 != NULL ?
	    "ed25519(id.timestamp.body)" : "hmac-sha256(id.timestamp.body)";
	return true;
}

static enum ph_auth_result
swh_authenticate(const struct ph_route *route, struct ph_request *req,
		 struct ph_auth *auth)
{
	const struct swh_settings *s = route->adapter;
	const char *ts = swh_header(req, "timestamp");
	int64_t now = (int64_t)time(NULL);
	char safe[64];

	if (!ph_swh_verify(route, swh_header(req, "id"), ts,
			   swh_header(req, "signature"), req->body,
			   req->body_len, now, auth)) {
		/* Say when the clock is the reason: a sender (or payhook)
		 * with a wrong clock is otherwise hard to tell from an
		 * attack. */
		if (ts != NULL && !ph_timestamp_fresh(ts, strlen(ts),
						      s->tolerance_s, now,
						      NULL))
			ph_log_warn("route=%s webhook-timestamp is not Unix "
				    "time within %u s of now: refused",
				    ph_log_sanitize(route->name, safe,
						    sizeof(safe)),
				    s->tolerance_s);
		return PH_AUTH_FAIL;
	}
	return PH_AUTH_OK;
}

/* ---------------------------------------------------------------- normalize */

static void
swh_normalize(const struct ph_route *route, const struct ph_request *req,
	      struct ph_event *ev)
{
	const struct swh_settings *s = route->adapter;
	struct json_object *doc = req->doc, *type, *mapped;
	const char *parts[1];

	ev->type = "unknown";
	type = ph_json_path(doc, "type");
	if (ph_event_set_text(&ev->provider_event, type) &&
	    json_object_is_type(type, json_type_string) &&
	    s->type_map != NULL &&
	    json_object_object_get_ex(s->type_map, ev->provider_event,
				      &mapped)) {
		/* The list's own string (configure checked it is there). */
		for (size_t i = 0; ph_event_types[i] != NULL; i++)
			if (strcmp(ph_json_cstring(mapped),
				   ph_event_types[i]) == 0)
				ev->type = ph_event_types[i];
	}
	/* The spec's payload "timestamp" is when the event happened; the
	 * header's is when this attempt was made. */
	ph_event_set_time(&ev->occurred_at, ph_json_path(doc, "timestamp"));
	if (s->amount != NULL)
		ph_event_set_amount(ev, ph_json_path(doc, s->amount),
				    ph_json_path(doc, s->currency), s->unit);
	/* The id is part of what the signature covers, and stays the same
	 * over every retry of one message: the spec's idempotency key. */
	parts[0] = swh_header(req, "id");
	ph_event_set_dedup_key(ev, req->body, req->body_len, parts, 1);
}

/* ---------------------------------------------------------------- sign */

/* Headers for payload signed now with the route's first whsec_ secret, a
 * new "msg_<ULID>" id each time. Ed25519 needs the sender's private key,
 * which payhook never holds: a route of whpk_ keys only cannot sign. */
static int
swh_sign(const struct ph_route *route, const uint8_t *payload, size_t len,
	 struct json_object *doc, struct ph_signed *out,
	 struct ph_error *err)
{
	const struct swh_settings *s = route->adapter;
	uint8_t mac[PH_DIGEST_MAX], *msg;
	char id[4 + PH_ULID_LEN + 1], ts[24];
	char sig[3 + 4 * ((SWH_HMAC_SIZE + 2) / 3) + 1];
	struct timeval now;
	size_t k, msg_len, mac_len;
	int ret;

	(void)doc;
	for (k = 0; k < s->n_keys && s->keys[k].hmac.data == NULL; k++)
		;
	if (k == s->n_keys)
		return ph_error_set(err, "the route holds only whpk_ public "
				    "keys: a v1a signature needs the sender's "
				    "private key, which payhook never holds, "
				    "so payhook sign needs a whsec_ secret in "
				    "'secrets'");
	gettimeofday(&now, NULL);
	memcpy(id, "msg_", 4);
	if (ph_ulid_generate(&now, id + 4) < 0)
		return ph_error_set(err, "cannot make a message id (no "
				    "randomness?)");
	snprintf(ts, sizeof(ts), "%lld", (long long)now.tv_sec);
	msg = signed_content(id, ts, payload, len, &msg_len);
	ret = ph_hmac(PH_SHA256, &s->keys[k].hmac, msg, msg_len, mac,
		      &mac_len);
	free(msg);
	if (ret < 0 || mac_len != SWH_HMAC_SIZE)
		return ph_error_set(err, "OpenSSL could not make the HMAC");
	memcpy(sig, "v1,", 3);
	EVP_EncodeBlock((unsigned char *)sig + 3, mac, SWH_HMAC_SIZE);
	ph_wipe(mac, sizeof(mac));
	if (ph_signed_add_header(out, "webhook-id", id, strlen(id), err) < 0 ||
	    ph_signed_add_header(out, "webhook-timestamp", ts, strlen(ts),
				 err) < 0 ||
	    ph_signed_add_header(out, "webhook-signature", sig, strlen(sig),
				 err) < 0)
		return -1;
	return 0;
}

static const char *
swh_credential_header(const struct ph_route *route)
{
	(void)route;
	/* svix-signature is redacted too: its name holds "signature". */
	return "webhook-signature";
}

const struct ph_provider ph_provider_standard_webhooks = {
	.name = "standard-webhooks",
	.configure = swh_configure,
	.unconfigure = swh_unconfigure,
	.authenticate = swh_authenticate,
	.normalize = swh_normalize,
	.answer = NULL,
	.sign = swh_sign,
	.credential_header = swh_credential_header,
};
