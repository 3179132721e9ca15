/* conf.c - the JSON configuration file (payhook.json(5)).
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * Loading never stops at the first problem: every fault is collected with
 * its location, so --check-config can list them all at once. Fault lines
 * name keys and positions, never a secret's value.
 */
#include "config.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "conf.h"
#include "log.h"
#include "provider.h"
#include "secret.h"
#include "util.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

#define CONFIG_FILE_MAX (1024 * 1024)

/* Room for a location prefix such as "route 'NAME' (#N)". */
#define WHERE_MAX 192

static const char *const top_keys[] = {
	"spool_dir", "state_dir", "max_body_bytes", "dedup_retention_days",
	"max_json_depth", "routes",
	"quarantine_max_files", "quarantine_max_bytes",
	"trusted_proxies", "read_timeout_seconds", "nats",
};

/* Append a formatted line to the list *lines of *count lines. */
static void
lines_addv(char ***lines, size_t *count, const char *fmt, va_list ap)
{
	va_list aq;
	char *line;
	int n;

	va_copy(aq, ap);
	n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n < 0)
		n = 0;
	line = ph_xmalloc((size_t)n + 1);
	vsnprintf(line, (size_t)n + 1, fmt, ap);
	*lines = ph_xrealloc(*lines, (*count + 1) * sizeof(**lines));
	(*lines)[(*count)++] = line;
}

void
ph_faults_add(struct ph_faults *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	lines_addv(&f->lines, &f->count, fmt, ap);
	va_end(ap);
}

void
ph_faults_warn(struct ph_faults *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	lines_addv(&f->warnings, &f->n_warnings, fmt, ap);
	va_end(ap);
}

void
ph_faults_clear(struct ph_faults *f)
{
	if (f == NULL)
		return;
	for (size_t i = 0; i < f->count; i++)
		free(f->lines[i]);
	ph_free(&f->lines);
	f->count = 0;
	for (size_t i = 0; i < f->n_warnings; i++)
		free(f->warnings[i]);
	ph_free(&f->warnings);
	f->n_warnings = 0;
}

/* "WHERE: key 'KEY': MESSAGE", or "key 'KEY': MESSAGE" at the top level
 * (where is NULL). key is the configuration's own text: sanitized. */
static void PH_PRINTF(4, 5)
key_fault(struct ph_faults *f, const char *where, const char *key,
	  const char *fmt, ...)
{
	char safe_key[80], *msg;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	msg = ph_xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(msg, (size_t)n + 1, fmt, ap);
	va_end(ap);
	ph_log_sanitize(key, safe_key, sizeof(safe_key));
	if (where != NULL)
		ph_faults_add(f, "%s: key '%s': %s", where, safe_key, msg);
	else
		ph_faults_add(f, "key '%s': %s", safe_key, msg);
	free(msg);
}

/* A JSON string without embedded NUL bytes, or NULL. */
static const char *
json_cstring(struct json_object *v)
{
	const char *s;

	if (!json_object_is_type(v, json_type_string))
		return NULL;
	s = json_object_get_string(v);
	if (strlen(s) != (size_t)json_object_get_string_len(v))
		return NULL;
	return s;
}

static bool
has_space_or_control(const char *s)
{
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= ' ' || c == 0x7f)
			return true;
	}
	return false;
}

/* Optional integer key in [min, max]: *out untouched when absent. */
static void
get_uint(struct json_object *obj, const char *where, const char *key,
	 uint64_t min, uint64_t max, uint64_t *out, struct ph_faults *f)
{
	struct json_object *v;
	int64_t n;

	if (!json_object_object_get_ex(obj, key, &v))
		return;
	if (!json_object_is_type(v, json_type_int)) {
		key_fault(f, where, key, "must be an integer from %llu to %llu",
			  (unsigned long long)min, (unsigned long long)max);
		return;
	}
	/* json-c clamps out-of-range numbers to INT64_MIN / INT64_MAX, and
	 * max is below INT64_MAX: both fail the bounds check. */
	n = json_object_get_int64(v);
	if (n < 0 || (uint64_t)n < min || (uint64_t)n > max) {
		key_fault(f, where, key, "must be an integer from %llu to %llu",
			  (unsigned long long)min, (unsigned long long)max);
		return;
	}
	*out = (uint64_t)n;
}

/* Optional boolean key: *out untouched when absent. */
static void
get_bool(struct json_object *obj, const char *where, const char *key,
	 bool *out, struct ph_faults *f)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v))
		return;
	if (!json_object_is_type(v, json_type_boolean)) {
		key_fault(f, where, key, "must be true or false");
		return;
	}
	*out = json_object_get_boolean(v);
}

/* Required absolute directory path. */
static char *
get_abs_path(struct json_object *obj, const char *key, struct ph_faults *f)
{
	struct json_object *v;
	const char *s;

	if (!json_object_object_get_ex(obj, key, &v)) {
		key_fault(f, NULL, key, "missing (required)");
		return NULL;
	}
	if ((s = json_cstring(v)) == NULL) {
		key_fault(f, NULL, key, "must be a string");
		return NULL;
	}
	if (s[0] != '/') {
		key_fault(f, NULL, key, "must be an absolute path");
		return NULL;
	}
	return ph_xstrdup(s);
}

/* Optional list of CIDR strings (netacl.h) into *acl; *present says
 * whether the key was there. An empty list is a fault: it would refuse
 * every request, and leaving the key out is how to allow every address. */
static void
get_acl(struct json_object *obj, const char *where, const char *key,
	struct ph_acl *acl, bool *present, struct ph_faults *f)
{
	struct ph_error err;
	struct json_object *v;
	char safe[64];
	size_t n;

	*present = false;
	if (!json_object_object_get_ex(obj, key, &v))
		return;
	if (!json_object_is_type(v, json_type_array) ||
	    (n = json_object_array_length(v)) == 0) {
		key_fault(f, where, key, "must be a non-empty array of "
			  "addresses or networks (\"192.0.2.0/24\", "
			  "\"2001:db8::/32\")");
		return;
	}
	*present = true;
	for (size_t i = 0; i < n; i++) {
		const char *s = json_cstring(json_object_array_get_idx(v, i));
		struct ph_cidr net;

		if (s == NULL) {
			key_fault(f, where, key, "[%zu]: must be a string", i);
			continue;
		}
		if (ph_cidr_parse(s, &net, &err) < 0) {
			key_fault(f, where, key, "[%zu] '%s': %s", i,
				  ph_log_sanitize(s, safe, sizeof(safe)),
				  err.msg);
			continue;
		}
		ph_acl_add(acl, &net);
	}
}

/* Routes */

const char *
ph_route_where(const struct ph_route *r, char *buf, size_t size)
{
	if (r->name != NULL)
		snprintf(buf, size, "route '%s' (#%zu)", r->name, r->number);
	else
		snprintf(buf, size, "route #%zu", r->number);
	return buf;
}

int
ph_route_opt_string(struct ph_route *r, const char *key, const char **out,
		    struct ph_faults *faults)
{
	char where[WHERE_MAX];
	struct json_object *v;
	const char *s;

	if (!json_object_object_get_ex(r->json, key, &v))
		return 0;
	if ((s = json_cstring(v)) == NULL) {
		key_fault(faults, ph_route_where(r, where, sizeof(where)), key,
			  "must be a string");
		return -1;
	}
	*out = s;
	return 0;
}

/* Secrets */

int
ph_config_secret(struct json_object *v, const char *label,
		 struct ph_secret *out, struct ph_faults *faults)
{
	struct ph_error warn, err;
	const char *ref;
	int ret;

	out->data = NULL;
	out->len = 0;
	if ((ref = json_cstring(v)) == NULL) {
		ph_faults_add(faults, "%s: must be a string", label);
		return -1;
	}
	ret = ph_secret_resolve(ref, out, &warn, &err);
	if (ret < 0)
		ph_faults_add(faults, "%s: %s", label, err.msg);
	else if (warn.msg[0] != '\0')
		ph_faults_warn(faults, "%s: %s", label, warn.msg);
	/* json-c keeps the string in the tree for as long as the
	 * configuration lives; the copy in out is the one needed. ref has
	 * no NUL inside (json_cstring), so strlen covers it all. */
	if (ph_secret_is_literal(ref))
		ph_wipe((char *)ref, strlen(ref));
	return ret;
}

int
ph_route_secret_list(struct ph_route *r, const char *key,
		     struct ph_secret **out, size_t *n_out,
		     struct ph_faults *faults)
{
	char where[WHERE_MAX], label[WHERE_MAX + 64];
	struct json_object *v;
	size_t n;
	int ret = 0;

	if (!json_object_object_get_ex(r->json, key, &v))
		return 0;
	ph_route_where(r, where, sizeof(where));
	if (json_cstring(v) != NULL) {
		*out = ph_xcalloc(1, sizeof(**out));
		*n_out = 1;
		snprintf(label, sizeof(label), "%s: key '%s'", where, key);
		return ph_config_secret(v, label, &(*out)[0], faults);
	}
	if (!json_object_is_type(v, json_type_array)) {
		key_fault(faults, where, key,
			  "must be a string or an array of strings");
		return -1;
	}
	if ((n = json_object_array_length(v)) == 0) {
		key_fault(faults, where, key, "must list at least one secret");
		return -1;
	}
	*out = ph_xcalloc(n, sizeof(**out));
	*n_out = n;
	/* Positions count from 0, as in the JSON array; a fault never shows
	 * the value, which may be the literal secret. */
	for (size_t i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(v, i);
		const char *s = json_cstring(e);

		if (s == NULL || *s == '\0') {
			ph_faults_add(faults, "%s: %s[%zu]: must be a "
				      "non-empty string", where, key, i);
			ret = -1;
			continue;
		}
		snprintf(label, sizeof(label), "%s: %s[%zu]", where, key, i);
		if (ph_config_secret(e, label, &(*out)[i], faults) < 0)
			ret = -1;
	}
	return ret;
}

int
ph_route_opt_secret(struct ph_route *r, const char *key,
		    struct ph_secret *out, struct ph_faults *faults)
{
	char where[WHERE_MAX], label[WHERE_MAX + 64];
	struct json_object *v;

	if (!json_object_object_get_ex(r->json, key, &v))
		return 0;
	ph_route_where(r, where, sizeof(where));
	snprintf(label, sizeof(label), "%s: key '%s'", where, key);
	return ph_config_secret(v, label, out, faults);
}

int
ph_route_opt_bool(struct ph_route *r, const char *key, bool *out,
		  struct ph_faults *faults)
{
	char where[WHERE_MAX];
	struct json_object *v;

	if (!json_object_object_get_ex(r->json, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_boolean)) {
		key_fault(faults, ph_route_where(r, where, sizeof(where)), key,
			  "must be true or false");
		return -1;
	}
	*out = json_object_get_boolean(v);
	return 0;
}

int
ph_route_opt_uint(struct ph_route *r, const char *key, uint64_t min,
		  uint64_t max, uint64_t *out, struct ph_faults *faults)
{
	char where[WHERE_MAX];
	size_t before = faults->count;

	get_uint(r->json, ph_route_where(r, where, sizeof(where)), key, min,
		 max, out, faults);
	return faults->count == before ? 0 : -1;
}

/* The name goes first: every later fault of the route is located by it. */
static void
route_name(struct ph_config *cfg, size_t i, struct ph_faults *f)
{
	struct ph_route *r = &cfg->routes[i];
	char where[WHERE_MAX];
	struct json_object *v;
	const char *s;

	ph_route_where(r, where, sizeof(where));
	if (!json_object_object_get_ex(r->json, "name", &v)) {
		key_fault(f, where, "name", "missing (required)");
		return;
	}
	if ((s = json_cstring(v)) == NULL || !ph_str_of(s, "._-") ||
	    strlen(s) > PH_ROUTE_NAME_MAX) {
		key_fault(f, where, "name", "must be a non-empty string of "
			  "A-Z a-z 0-9 . _ -, at most "
			  PH_STRINGIFY(PH_ROUTE_NAME_MAX) " long");
		return;
	}
	r->name = ph_xstrdup(s);
	for (size_t j = 0; j < i; j++) {
		if (cfg->routes[j].name != NULL &&
		    strcmp(cfg->routes[j].name, s) == 0) {
			key_fault(f, ph_route_where(r, where, sizeof(where)),
				  "name", "duplicate of route #%zu",
				  cfg->routes[j].number);
			break;
		}
	}
}

static void
route_path(struct ph_config *cfg, size_t i, const char *where,
	   struct ph_faults *f)
{
	struct ph_route *r = &cfg->routes[i];
	struct json_object *v;
	const char *s;

	if (!json_object_object_get_ex(r->json, "path", &v)) {
		key_fault(f, where, "path", "missing (required)");
		return;
	}
	if ((s = json_cstring(v)) == NULL) {
		key_fault(f, where, "path", "must be a string");
		return;
	}
	if (s[0] != '/') {
		key_fault(f, where, "path", "must start with '/'");
		return;
	}
	/* The path is compared with PATH_INFO or REQUEST_URI minus its query:
	 * a '?' or white space could never match. */
	if (strchr(s, '?') != NULL || has_space_or_control(s)) {
		key_fault(f, where, "path", "must not contain '?', white space "
			  "or control characters");
		return;
	}
	for (size_t j = 0; j < i; j++) {
		if (cfg->routes[j].path != NULL &&
		    strcmp(cfg->routes[j].path, s) == 0) {
			key_fault(f, where, "path", "duplicate of route #%zu",
				  cfg->routes[j].number);
			return;
		}
	}
	r->path = ph_xstrdup(s);
}

static void
route_provider(struct ph_route *r, const char *where, struct ph_faults *f)
{
	char safe[80], known[256];
	struct json_object *v;
	const char *s;
	size_t off = 0;

	if (!json_object_object_get_ex(r->json, "provider", &v)) {
		key_fault(f, where, "provider", "missing (required)");
		return;
	}
	if ((s = json_cstring(v)) == NULL) {
		key_fault(f, where, "provider", "must be a string");
		return;
	}
	if ((r->provider = ph_provider_find(s)) != NULL)
		return;
	known[0] = '\0';
	for (size_t i = 0; ph_providers[i] != NULL && off < sizeof(known);
	     i++) {
		int n = snprintf(known + off, sizeof(known) - off, "%s%s",
				 i > 0 ? ", " : "", ph_providers[i]->name);

		if (n < 0)
			break;
		off += (size_t)n;
	}
	key_fault(f, where, "provider", "unknown provider '%s' (known: %s)",
		  ph_log_sanitize(s, safe, sizeof(safe)), known);
}

/* "sink": "spool" (the default) or "nats" (nats.h: direct mode). Whether
 * a "nats" object goes with it is checked once every route is read. */
static void
route_sink(struct ph_route *r, const char *where, struct ph_faults *f)
{
	struct json_object *v;
	const char *s;

	if (!json_object_object_get_ex(r->json, "sink", &v))
		return;
	s = json_cstring(v);
	if (s != NULL && strcmp(s, "spool") == 0)
		return;
	if (s == NULL || strcmp(s, "nats") != 0) {
		key_fault(f, where, "sink", "must be \"spool\" or \"nats\"");
		return;
	}
	if (!ph_nats_available()) {
		key_fault(f, where, "sink", "%s", PH_NATS_MISSING);
		return;
	}
	r->sink_nats = true;
}

/* The top-level "nats" object (nats.h), which a route with "sink": "nats"
 * needs. */
static void
load_nats(struct ph_config *cfg, struct json_object *root,
	  struct ph_faults *f)
{
	struct json_object *v = NULL;
	char where[WHERE_MAX];

	if (json_object_object_get_ex(root, "nats", &v))
		(void)ph_nats_config_load(v, &cfg->nats, f);
	for (size_t i = 0; i < cfg->n_routes; i++) {
		/* <prefix>.failed.> holds drain --nats's dead letters, which
		 * drain --nats does not run: a route whose first subject token
		 * is "failed" ("failed", "failed.eu") would have its events
		 * taken for dead letters. */
		if (v != NULL && cfg->routes[i].name != NULL &&
		    (strcmp(cfg->routes[i].name, "failed") == 0 ||
		     strncmp(cfg->routes[i].name, "failed.", 7) == 0))
			key_fault(f, ph_route_where(&cfg->routes[i], where,
						    sizeof(where)), "name",
				  "'failed' is reserved when there is a "
				  "\"nats\" object (its dead letters), as "
				  "a first dot-separated part too");
		if (cfg->routes[i].sink_nats && !json_object_object_get_ex(
		    root, "nats", NULL))
			key_fault(f, ph_route_where(&cfg->routes[i], where,
						    sizeof(where)), "sink",
				  "\"nats\" needs the top-level \"nats\" "
				  "object");
	}
}

static void
load_route(struct ph_config *cfg, size_t i, struct json_object *obj,
	   struct ph_faults *f)
{
	struct ph_route *r = &cfg->routes[i];
	char where[WHERE_MAX];
	uint64_t max_body = cfg->max_body_bytes;

	r->number = i + 1;
	r->max_body_bytes = cfg->max_body_bytes;
	r->require_json_type = true;
	r->allow_unauthenticated = false;
	r->max_json_depth = cfg->max_json_depth;
	if (!json_object_is_type(obj, json_type_object)) {
		ph_faults_add(f, "route #%zu: must be an object", r->number);
		return;
	}
	r->json = obj;
	route_name(cfg, i, f);
	ph_route_where(r, where, sizeof(where));
	route_path(cfg, i, where, f);
	route_provider(r, where, f);
	get_uint(obj, where, "max_body_bytes", 1, PH_MAX_BODY_CEILING,
		 &max_body, f);
	r->max_body_bytes = (size_t)max_body;
	get_bool(obj, where, "require_json_content_type",
		 &r->require_json_type, f);
	get_bool(obj, where, "allow_unauthenticated",
		 &r->allow_unauthenticated, f);
	(void)ph_route_secret_list(r, "secrets", &r->secrets, &r->n_secrets,
				   f);
	get_acl(obj, where, "allow_from", &r->allow_from, &r->has_allow_from,
		f);
	route_sink(r, where, f);
	/* Adapters own their extra keys; they also see the route when common
	 * keys were faulty, so one run reports as much as possible. */
	if (r->provider != NULL)
		(void)r->provider->configure(r, f);
}

static void
load_routes(struct ph_config *cfg, struct json_object *root,
	    struct ph_faults *f)
{
	struct json_object *v;
	size_t n;

	if (!json_object_object_get_ex(root, "routes", &v)) {
		key_fault(f, NULL, "routes", "missing (required)");
		return;
	}
	if (!json_object_is_type(v, json_type_array)) {
		key_fault(f, NULL, "routes", "must be an array of objects");
		return;
	}
	n = json_object_array_length(v);
	if (n == 0) {
		key_fault(f, NULL, "routes", "must list at least one route");
		return;
	}
	cfg->routes = ph_xcalloc(n, sizeof(*cfg->routes));
	cfg->n_routes = n;
	for (size_t i = 0; i < n; i++)
		load_route(cfg, i, json_object_array_get_idx(v, i), f);
}

/* The quarantine's caps (quarantine.h). */
static void
load_quarantine(struct ph_config *cfg, struct json_object *root,
		struct ph_faults *f)
{
	uint64_t files = PH_DEFAULT_QUARANTINE_FILES;
	uint64_t bytes = PH_DEFAULT_QUARANTINE_BYTES;

	get_uint(root, NULL, "quarantine_max_files", 0, 1000000, &files, f);
	get_uint(root, NULL, "quarantine_max_bytes", 0, UINT64_C(1) << 40,
		 &bytes, f);
	cfg->quarantine_max_files = (size_t)files;
	cfg->quarantine_max_bytes = bytes;
}

/* The top-level keys about reading requests: read_timeout_seconds and
 * trusted_proxies. */
static void
load_transport(struct ph_config *cfg, struct json_object *root,
	       struct ph_faults *f)
{
	uint64_t timeout = PH_DEFAULT_READ_TIMEOUT_S;
	bool present;

	get_uint(root, NULL, "read_timeout_seconds", 1, PH_MAX_READ_TIMEOUT_S,
		 &timeout, f);
	cfg->read_timeout_s = (unsigned)timeout;
	get_acl(root, NULL, "trusted_proxies", &cfg->trusted_proxies,
		&present, f);
}

static void
load_top(struct ph_config *cfg, struct json_object *root, struct ph_faults *f)
{
	uint64_t max_body = PH_DEFAULT_MAX_BODY;
	uint64_t days = PH_DEFAULT_RETENTION_DAYS;
	uint64_t depth = PH_DEFAULT_JSON_DEPTH;

	/* A misspelt key would otherwise silently fall back to a default. */
	json_object_object_foreach(root, key, val) {
		size_t i;

		(void)val;
		for (i = 0; i < PH_N_ELEMENTS(top_keys); i++)
			if (strcmp(key, top_keys[i]) == 0)
				break;
		if (i == PH_N_ELEMENTS(top_keys))
			key_fault(f, NULL, key, "unknown key");
	}
	cfg->spool_dir = get_abs_path(root, "spool_dir", f);
	cfg->state_dir = get_abs_path(root, "state_dir", f);
	get_uint(root, NULL, "max_body_bytes", 1, PH_MAX_BODY_CEILING,
		 &max_body, f);
	get_uint(root, NULL, "dedup_retention_days", 1, 3650, &days, f);
	get_uint(root, NULL, "max_json_depth", 2, 1000, &depth, f);
	cfg->max_body_bytes = (size_t)max_body;
	cfg->dedup_retention_days = (unsigned)days;
	cfg->max_json_depth = (unsigned)depth;
	load_quarantine(cfg, root, f);
	load_transport(cfg, root, f);
	load_routes(cfg, root, f);
	load_nats(cfg, root, f);
}

/* Parsing */

static void
line_column(const char *text, size_t len, size_t off, size_t *line_r,
	    size_t *col_r)
{
	size_t line = 1, col = 1;

	for (size_t i = 0; i < off && i < len; i++) {
		if (text[i] == '\n') {
			line++;
			col = 1;
		} else
			col++;
	}
	*line_r = line;
	*col_r = col;
}

static struct json_object *
parse(const char *name, const char *text, size_t len, struct ph_faults *f)
{
	struct json_tokener *tok;
	struct json_object *root;
	enum json_tokener_error jerr;
	size_t off, line, col;

	if (len > INT_MAX - 1) {
		ph_faults_add(f, "%s: too large", name);
		return NULL;
	}
	tok = json_tokener_new();
	if (tok == NULL) {
		ph_faults_add(f, "%s: out of memory", name);
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
			       JSON_TOKENER_VALIDATE_UTF8);
	root = json_tokener_parse_ex(tok, text, (int)len);
	jerr = json_tokener_get_error(tok);
	off = json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_continue) {
		/* Tell the tokener the input ends here. */
		root = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
		off = len;
	}
	json_tokener_free(tok);
	if (jerr != json_tokener_success) {
		line_column(text, len, off, &line, &col);
		ph_faults_add(f, "%s:%zu:%zu: JSON syntax error: %s", name,
			      line, col, json_tokener_error_desc(jerr));
		json_object_put(root);
		return NULL;
	}
	if (!json_object_is_type(root, json_type_object)) {
		ph_faults_add(f, "%s: the top level must be a JSON object",
			      name);
		json_object_put(root);
		return NULL;
	}
	return root;
}

struct ph_config *
ph_config_load_text(const char *name, const char *text, size_t len,
		    struct ph_faults *faults)
{
	struct ph_config *cfg;
	struct json_object *root;
	size_t before = faults->count;

	if ((root = parse(name, text, len, faults)) == NULL)
		return NULL;
	cfg = ph_xcalloc(1, sizeof(*cfg));
	cfg->root = root;
	cfg->file = ph_xstrdup(name);
	load_top(cfg, root, faults);
	if (faults->count != before)
		ph_config_free(&cfg);
	return cfg;
}

struct ph_config *
ph_config_load(const char *path, struct ph_faults *faults)
{
	struct ph_config *cfg;
	struct ph_error warn, err;
	struct stat st;
	char *text;
	size_t len;
	int mode;

	if (ph_read_file_stat(path, CONFIG_FILE_MAX, &text, &len, &st,
			      &err) < 0) {
		ph_faults_add(faults, "%s", err.msg);
		return NULL;
	}
	/* Whoever can write the file can add a route with a secret of their
	 * own. Judged on the descriptor read, so it is this text's file.
	 * The first fault is the one a responder logs: this one goes first,
	 * and the rest of the file is still checked. */
	if ((mode = ph_secret_file_check(path, &st, &warn, &err)) < 0)
		ph_faults_add(faults, "%s", err.msg);
	else if (warn.msg[0] != '\0')
		ph_faults_warn(faults, "%s", warn.msg);
	cfg = ph_config_load_text(path, text, len, faults);
	if (mode < 0)
		ph_config_free(&cfg);
	/* Literal secrets live in the text too. */
	ph_wipe(text, len);
	free(text);
	return cfg;
}

const char *
ph_config_locate(const char *opt_path)
{
	const char *env;

	if (opt_path != NULL)
		return opt_path;
	env = getenv("PAYHOOK_CONFIG");
	if (env != NULL && *env != '\0')
		return env;
	return SYSCONFDIR "/payhook.json";
}

struct ph_config *
ph_config_load_command(const char *opt_path)
{
	struct ph_faults faults = { 0 };
	const char *path = ph_config_locate(opt_path);
	struct ph_config *cfg = ph_config_load(path, &faults);

	if (cfg == NULL)
		fprintf(stderr, "payhook: %s is invalid: run payhook "
			"--check-config\n", path);
	ph_faults_clear(&faults);
	return cfg;
}

const struct ph_route *
ph_config_route(const struct ph_config *cfg, const char *path)
{
	for (size_t i = 0; i < cfg->n_routes; i++) {
		if (cfg->routes[i].path != NULL &&
		    strcmp(cfg->routes[i].path, path) == 0)
			return &cfg->routes[i];
	}
	return NULL;
}

static void
route_free(struct ph_route *r)
{
	/* The adapter may borrow strings from route->json: free it first. */
	if (r->provider != NULL && r->provider->unconfigure != NULL &&
	    r->adapter != NULL)
		r->provider->unconfigure(r);
	r->adapter = NULL;
	for (size_t i = 0; i < r->n_secrets; i++)
		ph_secret_clear(&r->secrets[i]);
	ph_free(&r->secrets);
	r->n_secrets = 0;
	ph_free(&r->name);
	ph_free(&r->path);
	ph_acl_clear(&r->allow_from);
	r->json = NULL;
}

void
ph_config_free(struct ph_config **cfgp)
{
	struct ph_config *cfg;

	if (cfgp == NULL || (cfg = *cfgp) == NULL)
		return;
	for (size_t i = 0; i < cfg->n_routes; i++)
		route_free(&cfg->routes[i]);
	free(cfg->routes);
	if (cfg->root != NULL)
		json_object_put(cfg->root);
	free(cfg->file);
	free(cfg->spool_dir);
	free(cfg->state_dir);
	ph_acl_clear(&cfg->trusted_proxies);
	ph_nats_config_free(&cfg->nats);
	free(cfg);
	*cfgp = NULL;
}
