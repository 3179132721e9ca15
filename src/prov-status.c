/* prov-status.c - "provider": "status", the status page for people with no
 * shell (status.h): GET or HEAD answers a small self-contained HTML page.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * Never open: the route needs HTTP Basic ("auth": {"type": "basic", "user",
 * "password"}, as OMNO routes have it) or a "url_token" (a secret
 * reference, given as ?token=...), or both (either one lets in), both
 * compared in constant time. It is not a delivery route: it claims no
 * dedup key, spools and quarantines nothing, and is not counted.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "log.h"
#include "provider.h"
#include "status.h"
#include "verify.h"

#define WHERE_MAX 192

static const char *const basic_keys[] = { "user", "password", NULL };

struct status_settings {
	bool has_basic;
	struct ph_secret userpass;	/* "user:password" */
	bool has_token;
	struct ph_secret token;
};

/* The keys of a delivery route that mean nothing here: a fault rather than
 * a silent no-op. */
static const char *const foreign_keys[] = {
	"secrets", "allow_unauthenticated", "require_json_content_type",
	"max_body_bytes",
};

static int
configure_basic(struct status_settings *s, struct json_object *auth,
		const char *where, struct ph_faults *faults)
{
	const char *type;

	if (ph_auth_type(auth, where, &type, faults) < 0)
		return -1;
	if (strcmp(type, "basic") != 0) {
		ph_faults_add(faults, "%s: key 'auth.type': must be \"basic\" "
			      "for a status route", where);
		return -1;
	}
	if (ph_auth_check_keys(auth, where, type, basic_keys, faults) < 0)
		return -1;
	if (ph_basic_configure(auth, where, &s->userpass, faults) < 0)
		return -1;
	s->has_basic = true;
	return 0;
}

static int
status_configure(struct ph_route *route, struct ph_faults *faults)
{
	struct status_settings *s = ph_xcalloc(1, sizeof(*s));
	char where[WHERE_MAX];
	struct json_object *auth, *v;
	int ret = 0;

	route->adapter = s;
	ph_route_where(route, where, sizeof(where));
	for (size_t i = 0; i < PH_N_ELEMENTS(foreign_keys); i++) {
		if (json_object_object_get_ex(route->json, foreign_keys[i],
					      &v)) {
			ph_faults_add(faults, "%s: key '%s': not used by a "
				      "status route", where, foreign_keys[i]);
			ret = -1;
		}
	}
	if (json_object_object_get_ex(route->json, "auth", &auth) &&
	    configure_basic(s, auth, where, faults) < 0)
		ret = -1;
	if (json_object_object_get_ex(route->json, "url_token", &v)) {
		/* An empty secret is refused there. */
		if (ph_route_opt_secret(route, "url_token", &s->token,
					faults) < 0)
			ret = -1;
		else
			s->has_token = true;
	}
	if (ret == 0 && !s->has_basic && !s->has_token) {
		ph_faults_add(faults, "%s: a status route needs \"auth\" "
			      "(type \"basic\") or \"url_token\": the page "
			      "is never open to anyone", where);
		ret = -1;
	}
	return ret;
}

static void
status_unconfigure(struct ph_route *route)
{
	struct status_settings *s = route->adapter;

	ph_secret_clear(&s->userpass);
	ph_secret_clear(&s->token);
	free(s);
	route->adapter = NULL;
}

/* Does the request carry a credential the route takes? */
static bool
status_allowed(const struct status_settings *s, const struct ph_request *req)
{
	bool ok = false;

	if (s->has_basic && ph_basic_check(&s->userpass, req))
		ok = true;
	if (!ok && s->has_token) {
		char *token = ph_request_query_param(req, "token");

		if (token != NULL) {
			ok = ph_secret_equal(&s->token, token, strlen(token));
			ph_wipe(token, strlen(token));
			free(token);
		}
	}
	return ok;
}

/* The page's own header lines: never cached or indexed, no script, no
 * outside resource, and the token in the URL never sent on. */
#define PAGE_HEADERS \
	"Cache-Control: no-store\r\n" \
	"X-Content-Type-Options: nosniff\r\n" \
	"Referrer-Policy: no-referrer\r\n" \
	"Content-Security-Policy: default-src 'none'; " \
	"style-src 'unsafe-inline'; frame-ancestors 'none'\r\n"

static int
respond_text(struct ph_request *req, int status, const char *extra,
	     const char *text)
{
	char headers[512];

	snprintf(headers, sizeof(headers), "%s%s", extra != NULL ? extra : "",
		 "Cache-Control: no-store\r\n");
	ph_request_respond(req, status, headers, "text/plain; charset=utf-8",
			   text, strlen(text));
	return status;
}

static int
status_serve(const struct ph_config *cfg, const struct ph_route *route,
	     struct ph_request *req)
{
	const struct status_settings *s = route->adapter;
	struct ph_status_report r;
	struct ph_error err;
	struct timeval tv;
	char *page = NULL;
	size_t len = 0;
	FILE *f;

	if (strcmp(req->method, "GET") != 0 &&
	    strcmp(req->method, "HEAD") != 0)
		return respond_text(req, 405, "Allow: GET, HEAD\r\n",
				    "method not allowed\n");
	if (!status_allowed(s, req))
		return respond_text(req, 401, s->has_basic ?
				    "WWW-Authenticate: Basic realm=\"payhook "
				    "status\", charset=\"UTF-8\"\r\n" : NULL,
				    "unauthorized\n");
	gettimeofday(&tv, NULL);
	if (ph_status_collect(cfg, (int64_t)tv.tv_sec * 1000 +
			      tv.tv_usec / 1000, &r, &err) < 0) {
		ph_log_error("status page: %s", err.msg);
		return respond_text(req, 503, "Retry-After: 30\r\n",
				    "status unavailable\n");
	}
	if ((f = open_memstream(&page, &len)) == NULL) {
		ph_log_error("open_memstream failed: out of memory");
		abort();
	}
	ph_status_write_page(&r, f);
	if (fclose(f) != 0) {
		ph_log_error("status page: out of memory");
		abort();
	}
	ph_status_report_clear(&r);
	ph_request_respond(req, 200, PAGE_HEADERS, "text/html; charset=utf-8",
			   page, len);
	free(page);
	return 200;
}

const struct ph_provider ph_provider_status = {
	.name = "status",
	.configure = status_configure,
	.unconfigure = status_unconfigure,
	.serve = status_serve,
};
