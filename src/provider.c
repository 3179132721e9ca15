/* provider.c - the adapter registry and helpers shared by adapters.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "log.h"
#include "provider.h"
#include "sign.h"
#include "verify.h"

extern const struct ph_provider ph_provider_adyen;
extern const struct ph_provider ph_provider_ngn;
extern const struct ph_provider ph_provider_ompay;
extern const struct ph_provider ph_provider_omno;
extern const struct ph_provider ph_provider_paymentoptions;
extern const struct ph_provider ph_provider_standard_webhooks;
extern const struct ph_provider ph_provider_stripe;
extern const struct ph_provider ph_provider_generic_hmac;
extern const struct ph_provider ph_provider_paystack;
extern const struct ph_provider ph_provider_razorpay;
extern const struct ph_provider ph_provider_checkout;
extern const struct ph_provider ph_provider_flutterwave;
extern const struct ph_provider ph_provider_square;
extern const struct ph_provider ph_provider_status;

const struct ph_provider *const ph_providers[] = {
	&ph_provider_ngn,
	&ph_provider_ompay,
	&ph_provider_omno,
	&ph_provider_paymentoptions,
	&ph_provider_standard_webhooks,
	&ph_provider_adyen,
	&ph_provider_stripe,
	&ph_provider_generic_hmac,
	&ph_provider_paystack,
	&ph_provider_razorpay,
	&ph_provider_checkout,
	&ph_provider_flutterwave,
	&ph_provider_square,
	&ph_provider_status,
	NULL,
};

const struct ph_provider *
ph_provider_find(const char *name)
{
	for (size_t i = 0; ph_providers[i] != NULL; i++) {
		if (strcmp(ph_providers[i]->name, name) == 0)
			return ph_providers[i];
	}
	return NULL;
}

static void
answer_json(struct ph_answer *ans, int status, const char *body)
{
	ans->status = status;
	ans->content_type = "application/json";
	ans->body = ph_xstrdup(body);
	ans->body_len = strlen(body);
}

void
ph_answer_default(enum ph_outcome outcome, const struct ph_event *ev,
		  struct ph_answer *ans)
{
	switch (outcome) {
	case PH_OUT_ACCEPTED:
	case PH_OUT_DUPLICATE:
		/* The id is a ULID: no JSON escaping needed. */
		ans->status = 200;
		ans->content_type = "application/json";
		ans->body = ph_xasprintf("{\"status\":\"%s\",\"id\":\"%s\"}",
		    outcome == PH_OUT_ACCEPTED ? "accepted" : "duplicate",
		    ev->id);
		ans->body_len = strlen(ans->body);
		break;
	case PH_OUT_UNAUTHORIZED:
		answer_json(ans, 401, "{\"error\":\"unauthorized\"}");
		break;
	case PH_OUT_BAD_REQUEST:
		answer_json(ans, 400, "{\"error\":\"bad request\"}");
		break;
	}
}

void
ph_status_fold(const char *in, char *out, size_t size)
{
	size_t o = 0;

	if (size == 0)
		return;
	for (; in != NULL && *in != '\0' && o + 1 < size; in++) {
		char c = *in;

		if (c == '_' || c == '-' || c == ' ')
			continue;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		out[o++] = c;
	}
	out[o] = '\0';
}

void
ph_event_set_amount(struct ph_event *ev, struct json_object *amount,
		    struct json_object *currency, enum ph_amount_unit unit)
{
	struct ph_error err;
	const char *text, *cur;
	char safe[64];
	size_t len;

	ev->has_amount = false;
	if (amount == NULL || currency == NULL ||
	    !json_object_is_type(currency, json_type_string))
		return;
	switch (json_object_get_type(amount)) {
	case json_type_int:
		if (ph_json_int_overflowed(amount)) {
			ph_error_set(&err, "amount is an integer beyond 64 "
				     "bits");
			goto refused;
		}
		/* FALLTHROUGH */
	case json_type_double:
		/* A parsed double prints its source text ("123.450" stays
		 * "123.450"), an integer its decimal form: no double
		 * involved. */
		text = json_object_to_json_string_ext(amount,
						      JSON_C_TO_STRING_PLAIN);
		len = strlen(text);
		break;
	case json_type_string:
		/* By length: an embedded NUL must not cut "1\u00002" to "1". */
		text = json_object_get_string(amount);
		len = (size_t)json_object_get_string_len(amount);
		break;
	default:
		return;
	}
	/* "NGN\u0000X" is not NGN. */
	if ((cur = ph_json_cstring(currency)) == NULL) {
		ph_error_set(&err, "currency is not a 3-letter code");
		goto refused;
	}
	if (ph_money_parse(text, len, cur, unit, &ev->amount, &err) < 0)
		goto refused;
	ev->has_amount = true;
	return;
refused:
	ph_log_warn("route=%s amount not normalized: %s",
		    ph_log_sanitize(ev->route, safe, sizeof(safe)), err.msg);
}

bool
ph_event_set_id(const struct ph_event *ev, char **field,
		struct json_object *val, const char *name)
{
	char safe[64];

	if (ph_json_int_overflowed(val))
		ph_log_warn("route=%s %s is an integer beyond 64 bits: not "
			    "used", ph_log_sanitize(ev->route, safe,
			    sizeof(safe)), name);
	return ph_event_set_text(field, val);
}

/* The escaped length of part, and the escape itself into out when it is
 * not NULL (see ph_event_set_dedup_key). */
static size_t
escape_part(const char *part, char *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)part; *p != '\0';
	     p++) {
		if (*p == '%' || *p == ':' || *p == '#' || *p < 0x20 ||
		    *p == 0x7f) {
			if (out != NULL) {
				out[n] = '%';
				out[n + 1] = hex[*p >> 4];
				out[n + 2] = hex[*p & 0x0f];
			}
			n += 3;
		} else {
			if (out != NULL)
				out[n] = (char)*p;
			n++;
		}
	}
	return n;
}

void
ph_event_set_dedup_key(struct ph_event *ev, const uint8_t *body, size_t len,
		       const char *const *parts, size_t n)
{
	size_t head = strlen(ev->route) + 1 + strlen(ev->provider);
	size_t total = head, off;
	char safe[64], *key;

	for (size_t i = 0; i < n; i++) {
		if (parts[i] == NULL)
			goto body_hash;
		if (strstr(parts[i], "\xef\xbf\xbd") != NULL) {
			ph_log_warn("route=%s identity holds U+FFFD (json-c's "
				    "stand-in for a lone surrogate): using the "
				    "body hash", ph_log_sanitize(ev->route,
				    safe, sizeof(safe)));
			goto body_hash;
		}
		total += 1 + escape_part(parts[i], NULL);
	}
	if (total > PH_DEDUP_KEY_MAX) {
		ph_log_warn("route=%s identity too long for a dedup key, using "
			    "the body hash",
			    ph_log_sanitize(ev->route, safe, sizeof(safe)));
		goto body_hash;
	}
	key = ph_xmalloc(total + 1);
	off = (size_t)snprintf(key, total + 1, "%s:%s", ev->route,
			       ev->provider);
	for (size_t i = 0; i < n; i++) {
		key[off++] = ':';
		off += escape_part(parts[i], key + off);
	}
	key[off] = '\0';
	free(ev->dedup_key);
	ev->dedup_key = key;
	return;
body_hash:
	ph_event_dedup_body_hash(ev, body, len);
}

/* Days since 1970-01-01 of a proleptic Gregorian date, and back
 * (H. Hinnant's algorithms: exact, no time zone or locale involved). */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y_r, int *m_r, int *d_r)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d_r = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m_r = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y_r = era * 400 + yoe + (*m_r <= 2);
}

static bool
take_digits(const char **p, const char *end, size_t n, int *out)
{
	int v = 0;

	if ((size_t)(end - *p) < n)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = (*p)[i];

		if (c < '0' || c > '9')
			return false;
		v = v * 10 + (c - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static bool
take_char(const char **p, const char *end, const char *set)
{
	if (*p == end || strchr(set, **p) == NULL)
		return false;
	(*p)++;
	return true;
}

/* Seconds of the day, year 0000 to 9999 only: 253402300799 is
 * 9999-12-31T23:59:59Z. */
#define TIME_MAX_S INT64_C(253402300799)

static void
format_time(int64_t secs, const char *frac, size_t frac_len, char *out,
	    size_t size)
{
	int64_t days = secs / 86400, rem = secs % 86400, y;
	int m, d;

	civil_from_days(days, &y, &m, &d);
	snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d%s%.*sZ", (int)y, m,
		 d, (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60),
		 frac_len > 0 ? "." : "", (int)frac_len,
		 frac != NULL ? frac : "");
}

static bool
parse_time_text(const char *s, size_t len, char *out, size_t size)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
				     30, 31 };
	const char *p = s, *end = s + len, *frac = NULL;
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	size_t frac_len = 0;
	int64_t secs;

	if (!take_digits(&p, end, 4, &y) || !take_char(&p, end, "-") ||
	    !take_digits(&p, end, 2, &mo) || !take_char(&p, end, "-") ||
	    !take_digits(&p, end, 2, &d) || !take_char(&p, end, "Tt ") ||
	    !take_digits(&p, end, 2, &h) || !take_char(&p, end, ":") ||
	    !take_digits(&p, end, 2, &mi) || !take_char(&p, end, ":") ||
	    !take_digits(&p, end, 2, &sec))
		return false;
	if (take_char(&p, end, ".")) {
		frac = p;
		while (p < end && *p >= '0' && *p <= '9')
			p++;
		frac_len = (size_t)(p - frac);
		if (frac_len == 0 || frac_len > 9)
			return false;
	}
	if (take_char(&p, end, "Zz")) {
		/* UTC */
	} else if (p < end && (*p == '+' || *p == '-')) {
		sign = *p++ == '+' ? 1 : -1;
		if (!take_digits(&p, end, 2, &oh))
			return false;
		if (take_char(&p, end, ":")) {
			if (!take_digits(&p, end, 2, &om))
				return false;
		} else if (p < end && !take_digits(&p, end, 2, &om))
			return false;
		if (oh > 23 || om > 59)
			return false;
	}
	if (p != end)
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 ||
	    mi > 59 || sec > 59)
		return false;
	if (mo == 2 && d == 29 &&
	    !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return false;
	secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	secs -= (int64_t)sign * (oh * 3600 + om * 60);
	if (secs < 0 || secs > TIME_MAX_S)
		return false;
	format_time(secs, frac, frac_len, out, size);
	return true;
}

bool
ph_event_set_time(char **field, struct json_object *val)
{
	char out[64];
	int64_t n;

	switch (json_object_get_type(val)) {
	case json_type_string:
		if (!parse_time_text(json_object_get_string(val),
				     (size_t)json_object_get_string_len(val),
				     out, sizeof(out)))
			return false;
		break;
	case json_type_int:
		/* Beyond INT64_MAX json-c keeps a uint64_t and get_int64
		 * answers INT64_MAX, which the range check refuses; so it
		 * does every integer beyond 64 bits. */
		n = json_object_get_int64(val);
		if (n < 0)
			return false;
		if (n < INT64_C(100000000000)) {
			format_time(n, NULL, 0, out, sizeof(out));
		} else {
			char ms[4];

			if (n / 1000 > TIME_MAX_S)
				return false;
			snprintf(ms, sizeof(ms), "%03d", (int)(n % 1000));
			format_time(n / 1000, ms, 3, out, sizeof(out));
		}
		break;
	default:
		return false;
	}
	free(*field);
	*field = ph_xstrdup(out);
	return true;
}

bool
ph_header_name_valid(const char *s)
{
	/* RFC 9110 5.6.2 tchar */
	return ph_str_of(s, "!#$%&'*+-.^_`|~");
}

const char *
ph_json_cstring(struct json_object *val)
{
	const char *s;

	if (!json_object_is_type(val, json_type_string))
		return NULL;
	s = json_object_get_string(val);
	if (strlen(s) != (size_t)json_object_get_string_len(val))
		return NULL;
	return s;
}

struct json_object *
ph_json_path(struct json_object *obj, const char *path)
{
	char key[128];

	while (obj != NULL && *path != '\0') {
		size_t len = strcspn(path, ".");

		if (len >= sizeof(key) ||
		    !json_object_is_type(obj, json_type_object))
			return NULL;
		memcpy(key, path, len);
		key[len] = '\0';
		if (!json_object_object_get_ex(obj, key, &obj))
			return NULL;
		path += len;
		if (*path == '.')
			path++;
	}
	return obj;
}

/* Route "auth" objects (OMNO, Adyen). */

int
ph_auth_string(struct json_object *auth, const char *where, const char *key,
	       const char **out, struct ph_faults *faults)
{
	struct json_object *v;
	const char *s;

	if (!json_object_object_get_ex(auth, key, &v))
		return 1;
	if ((s = ph_json_cstring(v)) == NULL) {
		ph_faults_add(faults, "%s: key 'auth.%s': must be a string",
			      where, key);
		return -1;
	}
	*out = s;
	return 0;
}

int
ph_auth_type(struct json_object *auth, const char *where, const char **type,
	     struct ph_faults *faults)
{
	if (!json_object_is_type(auth, json_type_object)) {
		ph_faults_add(faults, "%s: key 'auth': must be an object with "
			      "a \"type\"", where);
		return -1;
	}
	return ph_auth_required_string(auth, where, "type", type, faults);
}

int
ph_auth_check_keys(struct json_object *auth, const char *where,
		   const char *type, const char *const *allowed,
		   struct ph_faults *faults)
{
	int ret = 0;

	json_object_object_foreach(auth, key, val) {
		const char *const *k;
		char safe[64];

		(void)val;
		if (strcmp(key, "type") == 0)
			continue;
		for (k = allowed; *k != NULL && strcmp(key, *k) != 0; k++)
			;
		if (*k != NULL)
			continue;
		ph_faults_add(faults, "%s: key 'auth.%s': unknown for type "
			      "\"%s\"", where,
			      ph_log_sanitize(key, safe, sizeof(safe)), type);
		ret = -1;
	}
	return ret;
}

int
ph_auth_required_string(struct json_object *auth, const char *where,
			const char *key, const char **out,
			struct ph_faults *faults)
{
	int r = ph_auth_string(auth, where, key, out, faults);

	if (r == 1)
		ph_faults_add(faults, "%s: key 'auth.%s': missing (required)",
			      where, key);
	return r == 0 ? 0 : -1;
}

int
ph_auth_secret(struct json_object *auth, const char *where, const char *key,
	       struct ph_secret *out, struct ph_faults *faults)
{
	char label[512];
	struct json_object *v;
	const char *ref;

	if (ph_auth_required_string(auth, where, key, &ref, faults) < 0)
		return -1;
	(void)json_object_object_get_ex(auth, key, &v);
	snprintf(label, sizeof(label), "%s: key 'auth.%s'", where, key);
	/* Resolves the reference and wipes a literal from the tree. */
	return ph_config_secret(v, label, out, faults);
}

int
ph_basic_configure(struct json_object *auth, const char *where,
		   struct ph_secret *userpass, struct ph_faults *faults)
{
	struct ph_secret password = { 0 };
	const char *user;
	size_t ulen;

	if (ph_auth_required_string(auth, where, "user", &user, faults) < 0)
		return -1;
	/* RFC 7617: the user-id cannot contain a colon. */
	if (*user == '\0' || strchr(user, ':') != NULL) {
		ph_faults_add(faults, "%s: key 'auth.user': must be non-empty "
			      "and without ':'", where);
		return -1;
	}
	if (ph_auth_secret(auth, where, "password", &password, faults) < 0)
		return -1;
	ulen = strlen(user);
	userpass->len = ulen + 1 + password.len;
	userpass->data = ph_xmalloc(userpass->len + 1);
	memcpy(userpass->data, user, ulen);
	userpass->data[ulen] = ':';
	memcpy(userpass->data + ulen + 1, password.data, password.len);
	userpass->data[userpass->len] = '\0';
	ph_secret_clear(&password);
	return 0;
}

const char *
ph_auth_param(const struct ph_request *req, const char *scheme, size_t *len_r)
{
	const char *h = ph_request_header(req, "Authorization");
	size_t n = strlen(scheme), len;

	if (h == NULL || strncasecmp(h, scheme, n) != 0 ||
	    (h[n] != ' ' && h[n] != '\t'))
		return NULL;
	h += n;
	while (*h == ' ' || *h == '\t')
		h++;
	len = strlen(h);
	while (len > 0 && (h[len - 1] == ' ' || h[len - 1] == '\t'))
		len--;
	*len_r = len;
	return h;
}

bool
ph_basic_check(const struct ph_secret *userpass, const struct ph_request *req)
{
	const char *b64;
	uint8_t *raw;
	size_t len, pad = 0;
	int n;
	bool ok;

	b64 = ph_auth_param(req, "Basic", &len);
	/* Padded base64 only, as RFC 7617 senders write it. */
	if (b64 == NULL || len == 0 || len % 4 != 0 || len > 8192)
		return false;
	if (b64[len - 1] == '=')
		pad = b64[len - 2] == '=' ? 2 : 1;
	raw = ph_xmalloc(len / 4 * 3 + 1);
	n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len);
	ok = n >= 0 && (size_t)n >= pad &&
	     ph_secret_equal(userpass, raw, (size_t)n - pad);
	ph_wipe(raw, len / 4 * 3 + 1);
	free(raw);
	return ok;
}

int
ph_basic_sign(const struct ph_secret *userpass, struct ph_signed *out,
	      struct ph_error *err)
{
	size_t n = 4 * ((userpass->len + 2) / 3);
	char *value = ph_xmalloc(sizeof("Basic ") + n);
	int ret;

	memcpy(value, "Basic ", 6);
	EVP_EncodeBlock((unsigned char *)value + 6, userpass->data,
			(int)userpass->len);
	ret = ph_signed_add_header(out, "Authorization", value, strlen(value),
				   err);
	ph_wipe(value, strlen(value));
	free(value);
	return ret;
}
