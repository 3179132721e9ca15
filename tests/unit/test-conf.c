/* test-conf.c - secret references and the configuration file: a valid
 * file with its defaults, and one row per fault.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "test.h"
#include "conf.h"
#include "provider.h"
#include "secret.h"
#include "util.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

void test_conf(void);

/* Values the tests set in the environment. */
#define ENV_SECRET "PH_TEST_SECRET_ENV"
#define ENV_UNSET "PH_TEST_UNSET_VAR"
#define ENV_EMPTY "PH_TEST_EMPTY_VAR"

/* A literal secret that must never show up in a fault line. */
#define LIT "lit-visible-secret"

#define TOP "\"spool_dir\": \"/var/spool/payhook\", " \
	"\"state_dir\": \"/var/lib/payhook\""
#define NGN(name, path) "{\"name\": \"" name "\", \"path\": \"" path "\", " \
	"\"provider\": \"ngn-gateway\", \"secrets\": [\"" LIT "\"], " \
	"\"amount_unit\": \"minor\"}"

static void
write_file(const char *name, const char *data, size_t len)
{
	char path[512];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s", test_tmpdir(), name);
	fp = fopen(path, "w");
	if (fp == NULL) {
		perror(path);
		exit(2);
	}
	if (len > 0 && fwrite(data, 1, len, fp) != len) {
		perror(path);
		exit(2);
	}
	if (fclose(fp) != 0 || chmod(path, 0600) != 0) {
		perror(path);
		exit(2);
	}
}

static bool
faults_have(const struct ph_faults *f, const char *needle)
{
	for (size_t i = 0; i < f->count; i++)
		if (strstr(f->lines[i], needle) != NULL)
			return true;
	return false;
}

static void
faults_print(const struct ph_faults *f)
{
	for (size_t i = 0; i < f->count; i++)
		printf("#   fault: %s\n", f->lines[i]);
}

static bool
secret_is(const struct ph_secret *s, const char *want, size_t want_len)
{
	return s->data != NULL && s->len == want_len &&
	       memcmp(s->data, want, want_len) == 0 &&
	       s->data[want_len] == '\0';
}

static void
test_secret_resolve(void)
{
	static const struct {
		const char *ref;	/* NULL: "file:" + tmpdir/file */
		const char *file;
		const char *want;	/* NULL: an error is expected */
		size_t want_len;
		const char *err;	/* substring of the error */
	} rows[] = {
		{ "literal-value", NULL, "literal-value", 13, NULL },
		{ "ENV:" ENV_SECRET, NULL, "ENV:" ENV_SECRET, 22, NULL },
		{ "env:" ENV_SECRET, NULL, "env-secret", 10, NULL },
		{ "env:" ENV_UNSET, NULL, NULL, 0,
		  "environment variable " ENV_UNSET " is not set" },
		{ "env:" ENV_EMPTY, NULL, NULL, 0,
		  "environment variable " ENV_EMPTY " is empty" },
		{ "env:", NULL, NULL, 0, "needs a variable name" },
		{ NULL, "crlf", "crlf-secret", 11, NULL },
		{ NULL, "lf", "lf-secret", 9, NULL },
		{ NULL, "lf2", "two\n", 4, NULL },
		{ NULL, "nonl", "no newline", 10, NULL },
		{ NULL, "cr", "cr\r", 3, NULL },
		{ NULL, "exact", NULL, 65536, NULL },
		{ NULL, "empty", NULL, 0, "is empty" },
		{ NULL, "onlynl", NULL, 0, "is empty" },
		{ NULL, "onlycrlf", NULL, 0, "is empty" },
		{ NULL, "big", NULL, 0, "is larger than 65536 bytes" },
		{ NULL, "absent", NULL, 0, "No such file or directory" },
		{ "file:", NULL, NULL, 0, "needs a path" },
		{ "", NULL, NULL, 0, "empty secret" },
	};
	static char big[65537];
	char ref[512];

	memset(big, 'k', sizeof(big));
	write_file("crlf", "crlf-secret\r\n", 13);
	write_file("lf", "lf-secret\n", 10);
	write_file("lf2", "two\n\n", 5);
	write_file("nonl", "no newline", 10);
	write_file("cr", "cr\r", 3);
	write_file("exact", big, 65536);
	write_file("empty", "", 0);
	write_file("onlynl", "\n", 1);
	write_file("onlycrlf", "\r\n", 2);
	write_file("big", big, sizeof(big));

	test_begin("conf: secret references");
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++) {
		struct ph_secret s = { (uint8_t *)1, 99 };
		struct ph_error err = { "" }, warn = { "x" };
		int ret;

		if (rows[i].ref != NULL)
			snprintf(ref, sizeof(ref), "%s", rows[i].ref);
		else
			snprintf(ref, sizeof(ref), "file:%s/%s", test_tmpdir(),
				 rows[i].file);
		ret = ph_secret_resolve(ref, &s, &warn, &err);
		test_assert_idx(warn.msg[0] == '\0', i);
		if (rows[i].err != NULL) {
			test_assert_idx(ret == -1, i);
			test_assert_idx(s.data == NULL && s.len == 0, i);
			test_assert_idx(strstr(err.msg, rows[i].err), i);
			/* a file error names the file */
			if (rows[i].file != NULL)
				test_assert_idx(strstr(err.msg, ref + 5), i);
			continue;
		}
		test_assert_idx(ret == 0, i);
		if (rows[i].want != NULL)
			test_assert_idx(secret_is(&s, rows[i].want,
						  rows[i].want_len), i);
		else
			test_assert_idx(s.len == rows[i].want_len &&
					memcmp(s.data, big, s.len) == 0 &&
					s.data[s.len] == '\0', i);
		ph_secret_clear(&s);
		test_assert_idx(s.data == NULL && s.len == 0, i);
		ph_secret_clear(&s);
		test_assert_idx(s.data == NULL && s.len == 0, i);
	}
	ph_secret_clear(NULL);
	test_end();
}

static void
test_load_valid(void)
{
	char text[2048], where[64];
	struct ph_faults faults = { 0 };
	const struct ph_provider *ngn = ph_provider_find("ngn-gateway");
	struct ph_config *cfg;
	struct ph_route *r;
	struct json_object *v;

	snprintf(text, sizeof(text),
		 "{\n"
		 "  \"spool_dir\": \"/var/spool/payhook\",\n"
		 "  \"state_dir\": \"/var/lib/payhook\",\n"
		 "  \"max_body_bytes\": 65536,\n"
		 "  \"routes\": [\n"
		 "    { \"name\": \"ngn\", \"path\": \"/ngn\",\n"
		 "      \"provider\": \"ngn-gateway\",\n"
		 "      \"secrets\": [\"lit-secret\", \"env:" ENV_SECRET "\",\n"
		 "                  \"file:%s/crlf\"],\n"
		 "      \"amount_unit\": \"minor\", \"header\": \"X-Sig\",\n"
		 "      \"max_body_bytes\": 2048,\n"
		 "      \"require_json_content_type\": false },\n"
		 "    { \"name\": \"ngn.2_b-C\", \"path\": \"/hooks/ngn2\",\n"
		 "      \"provider\": \"ngn-gateway\",\n"
		 "      \"secrets\": \"single\",\n"
		 "      \"amount_unit\": \"major\",\n"
		 "      \"allow_unauthenticated\": true }\n"
		 "  ]\n"
		 "}\n", test_tmpdir());

	test_begin("conf: a valid configuration and its defaults");
	cfg = ph_config_load_text("valid.json", text, strlen(text), &faults);
	test_assert(cfg != NULL);
	test_assert(faults.count == 0);
	if (cfg == NULL) {
		faults_print(&faults);
		ph_faults_clear(&faults);
		test_end();
		return;
	}
	test_assert(strcmp(cfg->file, "valid.json") == 0);
	test_assert(strcmp(cfg->spool_dir, "/var/spool/payhook") == 0);
	test_assert(strcmp(cfg->state_dir, "/var/lib/payhook") == 0);
	test_assert(cfg->max_body_bytes == 65536);
	test_assert(cfg->dedup_retention_days == 30);
	test_assert(cfg->max_json_depth == 32);
	test_assert(cfg->n_routes == 2);

	r = &cfg->routes[0];
	test_assert(strcmp(r->name, "ngn") == 0);
	test_assert(strcmp(r->path, "/ngn") == 0);
	test_assert(ngn != NULL && r->provider == ngn);
	test_assert(r->number == 1);
	test_assert(r->max_body_bytes == 2048);
	test_assert(!r->require_json_type);
	test_assert(!r->allow_unauthenticated);
	test_assert(r->n_secrets == 3);
	test_assert(secret_is(&r->secrets[0], "lit-secret", 10));
	test_assert(secret_is(&r->secrets[1], "env-secret", 10));
	test_assert(secret_is(&r->secrets[2], "crlf-secret", 11));
	test_assert(r->adapter != NULL);
	test_assert(json_object_object_get_ex(r->json, "header", &v) &&
		    strcmp(json_object_get_string(v), "X-Sig") == 0);
	test_assert(strcmp(ph_route_where(r, where, sizeof(where)),
			   "route 'ngn' (#1)") == 0);

	r = &cfg->routes[1];
	test_assert(strcmp(r->name, "ngn.2_b-C") == 0);
	test_assert(strcmp(r->path, "/hooks/ngn2") == 0);
	test_assert(r->number == 2);
	test_assert(r->max_body_bytes == 65536);	/* the file's value */
	test_assert(r->require_json_type);
	test_assert(r->allow_unauthenticated);
	test_assert(r->n_secrets == 1);
	test_assert(secret_is(&r->secrets[0], "single", 6));

	test_assert(ph_config_route(cfg, "/ngn") == &cfg->routes[0]);
	test_assert(ph_config_route(cfg, "/hooks/ngn2") == &cfg->routes[1]);
	test_assert(ph_config_route(cfg, "/ngn/") == NULL);
	test_assert(ph_config_route(cfg, "/NGN") == NULL);
	test_assert(ph_config_route(cfg, "/hooks") == NULL);
	test_assert(ph_config_route(cfg, "") == NULL);

	ph_config_free(&cfg);
	test_assert(cfg == NULL);
	ph_config_free(&cfg);
	ph_config_free(NULL);
	test_end();
}

static void
test_load_bounds(void)
{
	static const struct {
		const char *text;
		size_t max_body, route_body;
		unsigned days, depth;
	} rows[] = {
		{ "{" TOP ", \"routes\": [" NGN("a", "/a") "]}",
		  1048576, 1048576, 30, 32 },
		{ "{" TOP ", \"max_body_bytes\": 67108864, "
		  "\"dedup_retention_days\": 3650, \"max_json_depth\": 1000, "
		  "\"routes\": [" NGN("a", "/a") "]}",
		  67108864, 67108864, 3650, 1000 },
		{ "{" TOP ", \"max_body_bytes\": 1, "
		  "\"dedup_retention_days\": 1, \"max_json_depth\": 2, "
		  "\"routes\": [{\"name\": \"a\", \"path\": \"/\", "
		  "\"provider\": \"ngn-gateway\", \"secrets\": \"x\", "
		  "\"amount_unit\": \"major\", \"max_body_bytes\": 5}]}",
		  1, 5, 1, 2 },
	};

	test_begin("conf: bounds are inclusive, defaults apply");
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++) {
		struct ph_faults faults = { 0 };
		struct ph_config *cfg;

		cfg = ph_config_load_text("b.json", rows[i].text,
					  strlen(rows[i].text), &faults);
		test_assert_idx(cfg != NULL && faults.count == 0, i);
		if (cfg == NULL) {
			faults_print(&faults);
			ph_faults_clear(&faults);
			continue;
		}
		test_assert_idx(cfg->max_body_bytes == rows[i].max_body, i);
		test_assert_idx(cfg->routes[0].max_body_bytes ==
				rows[i].route_body, i);
		test_assert_idx(cfg->dedup_retention_days == rows[i].days, i);
		test_assert_idx(cfg->max_json_depth == rows[i].depth, i);
		ph_config_free(&cfg);
	}
	test_end();
}

static void
test_load_faults(void)
{
	static const struct {
		const char *text;
		const char *fault;	/* substring of one fault line */
		size_t count;		/* exact number of faults */
	} rows[] = {
		/* top level */
		{ "{\"state_dir\": \"/s\", \"routes\": [" NGN("a", "/a") "]}",
		  "key 'spool_dir': missing", 1 },
		{ "{\"spool_dir\": \"/s\", \"state_dir\": \"var/lib\", "
		  "\"routes\": [" NGN("a", "/a") "]}",
		  "key 'state_dir': must be an absolute path", 1 },
		{ "{\"spool_dir\": 5, \"state_dir\": \"/s\", "
		  "\"routes\": [" NGN("a", "/a") "]}",
		  "key 'spool_dir': must be a string", 1 },
		{ "{" TOP ", \"max_body_bytes\": 0, \"routes\": ["
		  NGN("a", "/a") "]}",
		  "key 'max_body_bytes': must be an integer from 1 to 67108864",
		  1 },
		{ "{" TOP ", \"max_body_bytes\": 67108865, \"routes\": ["
		  NGN("a", "/a") "]}",
		  "key 'max_body_bytes': must be an integer from 1 to 67108864",
		  1 },
		{ "{" TOP ", \"max_body_bytes\": -1, \"routes\": ["
		  NGN("a", "/a") "]}",
		  "key 'max_body_bytes': must be an integer", 1 },
		{ "{" TOP ", \"max_body_bytes\": 99999999999999999999999, "
		  "\"routes\": [" NGN("a", "/a") "]}",
		  "key 'max_body_bytes': must be an integer", 1 },
		{ "{" TOP ", \"max_body_bytes\": \"1024\", \"routes\": ["
		  NGN("a", "/a") "]}",
		  "key 'max_body_bytes': must be an integer", 1 },
		{ "{" TOP ", \"max_body_bytes\": 1024.0, \"routes\": ["
		  NGN("a", "/a") "]}",
		  "key 'max_body_bytes': must be an integer", 1 },
		{ "{" TOP ", \"dedup_retention_days\": 0, \"routes\": ["
		  NGN("a", "/a") "]}",
		  "key 'dedup_retention_days': must be an integer from 1 "
		  "to 3650", 1 },
		{ "{" TOP ", \"dedup_retention_days\": 3651, \"routes\": ["
		  NGN("a", "/a") "]}",
		  "key 'dedup_retention_days': must be an integer from 1 "
		  "to 3650", 1 },
		{ "{" TOP ", \"max_json_depth\": 1, \"routes\": ["
		  NGN("a", "/a") "]}",
		  "key 'max_json_depth': must be an integer from 2 to 1000",
		  1 },
		{ "{" TOP ", \"max_json_depth\": 1001, \"routes\": ["
		  NGN("a", "/a") "]}",
		  "key 'max_json_depth': must be an integer from 2 to 1000",
		  1 },
		{ "{" TOP ", \"spool_dri\": \"/x\", \"routes\": ["
		  NGN("a", "/a") "]}",
		  "key 'spool_dri': unknown key", 1 },
		{ "{" TOP "}", "key 'routes': missing", 1 },
		{ "{" TOP ", \"routes\": []}",
		  "key 'routes': must list at least one route", 1 },
		{ "{" TOP ", \"routes\": {}}",
		  "key 'routes': must be an array", 1 },
		{ "{" TOP ", \"routes\": " NGN("a", "/a") "}",
		  "key 'routes': must be an array", 1 },
		{ "{" TOP ", \"routes\": [" NGN("a", "/a") ", 1]}",
		  "route #2: must be an object", 1 },
		{ "{" TOP ", \"routes\": [null]}",
		  "route #1: must be an object", 1 },

		/* routes */
		{ "{" TOP ", \"routes\": [{\"path\": \"/a\", "
		  "\"provider\": \"ngn-gateway\", \"secrets\": \"s\", "
		  "\"amount_unit\": \"minor\"}]}",
		  "route #1: key 'name': missing", 1 },
		{ "{" TOP ", \"routes\": [{\"name\": \"a b\", "
		  "\"path\": \"/a\", "
		  "\"provider\": \"ngn-gateway\", \"secrets\": \"s\", "
		  "\"amount_unit\": \"minor\"}]}",
		  "route #1: key 'name': must be a non-empty string", 1 },
		{ "{" TOP ", \"routes\": [{\"name\": \"\", \"path\": \"/a\", "
		  "\"provider\": \"ngn-gateway\", \"secrets\": \"s\", "
		  "\"amount_unit\": \"minor\"}]}",
		  "route #1: key 'name': must be a non-empty string", 1 },
		{ "{" TOP ", \"routes\": [" NGN("a", "/a") ", " NGN("b", "/b")
		  ", " NGN("a", "/c") "]}",
		  "route 'a' (#3): key 'name': duplicate of route #1", 1 },
		{ "{" TOP ", \"routes\": [" NGN("a", "/a") ", " NGN("b", "/a")
		  "]}",
		  "route 'b' (#2): key 'path': duplicate of route #1", 1 },
		{ "{" TOP ", \"routes\": [" NGN("a", "a") "]}",
		  "route 'a' (#1): key 'path': must start with '/'", 1 },
		{ "{" TOP ", \"routes\": [" NGN("a", "") "]}",
		  "route 'a' (#1): key 'path': must start with '/'", 1 },
		{ "{" TOP ", \"routes\": [" NGN("a", "/a?token=1") "]}",
		  "route 'a' (#1): key 'path': must not contain '?'", 1 },
		{ "{" TOP ", \"routes\": [" NGN("a", "/a b") "]}",
		  "route 'a' (#1): key 'path': must not contain '?', white",
		  1 },
		{ "{" TOP ", \"routes\": [" NGN("a", "/a\\t") "]}",
		  "route 'a' (#1): key 'path': must not contain '?', white",
		  1 },
		{ "{" TOP ", \"routes\": [{\"name\": \"a\", "
		  "\"provider\": \"ngn-gateway\", \"secrets\": \"s\", "
		  "\"amount_unit\": \"minor\"}]}",
		  "route 'a' (#1): key 'path': missing", 1 },
		{ "{" TOP ", \"routes\": [{\"name\": \"a\", \"path\": \"/a\", "
		  "\"provider\": \"no-such-gateway\", \"secrets\": \"s\"}]}",
		  "route 'a' (#1): key 'provider': unknown provider "
		  "'no-such-gateway' (known: ", 1 },
		{ "{" TOP ", \"routes\": [{\"name\": \"a\", \"path\": \"/a\", "
		  "\"secrets\": \"s\"}]}",
		  "route 'a' (#1): key 'provider': missing", 1 },
		{ "{" TOP ", \"routes\": [{\"name\": \"a\", \"path\": \"/a\", "
		  "\"provider\": \"ngn-gateway\", \"secrets\": \"s\", "
		  "\"amount_unit\": \"minor\", \"max_body_bytes\": 0}]}",
		  "route 'a' (#1): key 'max_body_bytes': must be an integer "
		  "from 1 to 67108864", 1 },
		{ "{" TOP ", \"routes\": [{\"name\": \"a\", \"path\": \"/a\", "
		  "\"provider\": \"ngn-gateway\", \"secrets\": \"s\", "
		  "\"amount_unit\": \"minor\", "
		  "\"require_json_content_type\": \"yes\"}]}",
		  "route 'a' (#1): key 'require_json_content_type': must be "
		  "true or false", 1 },
		{ "{" TOP ", \"routes\": [{\"name\": \"a\", \"path\": \"/a\", "
		  "\"provider\": \"ngn-gateway\", \"secrets\": \"s\", "
		  "\"amount_unit\": \"minor\", "
		  "\"allow_unauthenticated\": 1}]}",
		  "route 'a' (#1): key 'allow_unauthenticated': must be "
		  "true or false", 1 },

		/* secrets */
		{ "{" TOP ", \"routes\": [{\"name\": \"a\", \"path\": \"/a\", "
		  "\"provider\": \"ngn-gateway\", \"amount_unit\": \"minor\", "
		  "\"secrets\": [\"" LIT "\", \"env:" ENV_UNSET "\"]}]}",
		  "route 'a' (#1): secrets[1]: environment variable "
		  ENV_UNSET " is not set", 1 },
		{ "{" TOP ", \"routes\": [{\"name\": \"a\", \"path\": \"/a\", "
		  "\"provider\": \"ngn-gateway\", \"amount_unit\": \"minor\", "
		  "\"secrets\": \"env:" ENV_UNSET "\"}]}",
		  "route 'a' (#1): key 'secrets': environment variable "
		  ENV_UNSET " is not set", 1 },
		{ "{" TOP ", \"routes\": [{\"name\": \"a\", \"path\": \"/a\", "
		  "\"provider\": \"ngn-gateway\", \"amount_unit\": \"minor\", "
		  "\"secrets\": [\"env:" ENV_EMPTY "\", \"" LIT "\"]}]}",
		  "route 'a' (#1): secrets[0]: environment variable "
		  ENV_EMPTY " is empty", 1 },
		{ "{" TOP ", \"routes\": [{\"name\": \"a\", \"path\": \"/a\", "
		  "\"provider\": \"ngn-gateway\", \"amount_unit\": \"minor\", "
		  "\"secrets\": [\"file:/nonexistent/payhook.secret\"]}]}",
		  "route 'a' (#1): secrets[0]: "
		  "open(/nonexistent/payhook.secret) failed: No such file or "
		  "directory", 1 },
		{ "{" TOP ", \"routes\": [{\"name\": \"a\", \"path\": \"/a\", "
		  "\"provider\": \"ngn-gateway\", \"amount_unit\": \"minor\", "
		  "\"secrets\": [\"" LIT "\", \"\"]}]}",
		  "route 'a' (#1): secrets[1]: must be a non-empty string", 1 },
		{ "{" TOP ", \"routes\": [{\"name\": \"a\", \"path\": \"/a\", "
		  "\"provider\": \"ngn-gateway\", \"amount_unit\": \"minor\", "
		  "\"secrets\": [12345]}]}",
		  "route 'a' (#1): secrets[0]: must be a non-empty string", 1 },
		{ "{" TOP ", \"routes\": [{\"name\": \"a\", \"path\": \"/a\", "
		  "\"provider\": \"ngn-gateway\", \"amount_unit\": \"minor\", "
		  "\"secrets\": {\"k\": \"" LIT "\"}}]}",
		  "route 'a' (#1): key 'secrets': must be a string or an array",
		  2 },	/* and the adapter's "secrets: missing" */

		/* the NGN adapter's own key */
		{ "{" TOP ", \"routes\": [{\"name\": \"ngn\", "
		  "\"path\": \"/n\", \"provider\": \"ngn-gateway\", "
		  "\"secrets\": [\"" LIT "\"]}]}",
		  "route 'ngn' (#1): key 'amount_unit': missing", 1 },

		/* JSON syntax */
		{ "{\n  \"spool_dir\": \"/s\",\n  oops\n}",
		  "t.json:3:3: JSON syntax error", 1 },
		{ "{" TOP ", \"routes\": [" NGN("a", "/a") ",]}",
		  "t.json:1:", 1 },
		{ "{" TOP ", \"routes\": [" NGN("a", "/a") "]}\n}",
		  "t.json:2:1: JSON syntax error", 1 },
		{ "{" TOP ", \"routes\": [" NGN("a", "/a") "]",
		  "JSON syntax error: unexpected end of data", 1 },
		{ "{\n\"a\": [1,\n", "t.json:3:1: JSON syntax error: "
		  "unexpected end of data", 1 },
		{ "", "t.json:1:1: JSON syntax error: unexpected end of data",
		  1 },
		{ "[]", "t.json: the top level must be a JSON object", 1 },
		{ "42", "t.json: the top level must be a JSON object", 1 },
	};

	test_begin("conf: every fault is named with its location");
	setenv(ENV_EMPTY, "", 1);
	unsetenv(ENV_UNSET);
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++) {
		struct ph_faults faults = { 0 };
		struct ph_config *cfg;

		cfg = ph_config_load_text("t.json", rows[i].text,
					  strlen(rows[i].text), &faults);
		test_assert_idx(cfg == NULL, i);
		test_assert_idx(faults.count == rows[i].count, i);
		if (!test_assert_idx(faults_have(&faults, rows[i].fault), i) ||
		    faults.count != rows[i].count)
			faults_print(&faults);
		test_assert_idx(!faults_have(&faults, LIT), i);
		ph_config_free(&cfg);
		ph_faults_clear(&faults);
		test_assert_idx(faults.count == 0 && faults.lines == NULL, i);
	}
	test_end();
}

static void
test_load_many_faults(void)
{
	static const char text[] =
		"{ \"state_dir\": \"/var/lib/payhook\",\n"
		"  \"max_json_depth\": 1,\n"
		"  \"routes\": [" NGN("a", "a") "] }";
	static const char text2[] =
		"{" TOP ", \"bogus\": 1,\n"
		"  \"routes\": [{\"path\": \"/a\", \"provider\": \"nope\"},\n"
		"    {\"name\": \"b\", \"path\": \"/a\", \"provider\": "
		"\"ngn-gateway\", \"amount_unit\": \"minor\", "
		"\"secrets\": [\"" LIT "\", \"env:" ENV_UNSET "\", 7]}] }";
	struct ph_faults faults = { 0 };
	struct ph_config *cfg;

	test_begin("conf: all faults are reported, not just the first");
	cfg = ph_config_load_text("m.json", text, strlen(text), &faults);
	test_assert(cfg == NULL);
	test_assert(faults.count == 3);
	test_assert(faults_have(&faults, "key 'spool_dir': missing"));
	test_assert(faults_have(&faults, "key 'max_json_depth': must be"));
	test_assert(faults_have(&faults,
				"route 'a' (#1): key 'path': must start"));
	if (faults.count != 3)
		faults_print(&faults);

	/* Faults already in the list are kept; new ones are appended. */
	cfg = ph_config_load_text("m2.json", text2, strlen(text2), &faults);
	test_assert(cfg == NULL);
	test_assert(faults.count == 3 + 6);
	test_assert(faults_have(&faults, "key 'bogus': unknown key"));
	test_assert(faults_have(&faults, "route #1: key 'name': missing"));
	test_assert(faults_have(&faults, "route #1: key 'provider': unknown "
				"provider 'nope'"));
	test_assert(faults_have(&faults, "route 'b' (#2): key 'path': "
				"duplicate of route #1"));
	test_assert(faults_have(&faults, "route 'b' (#2): secrets[1]: "
				"environment variable " ENV_UNSET));
	test_assert(faults_have(&faults, "route 'b' (#2): secrets[2]: must be "
				"a non-empty string"));
	test_assert(!faults_have(&faults, LIT));
	if (faults.count != 9)
		faults_print(&faults);
	ph_faults_clear(&faults);
	ph_faults_clear(&faults);

	/* A valid load after faulty ones leaves the old faults alone. */
	ph_faults_add(&faults, "earlier %d", 1);
	cfg = ph_config_load_text("ok.json", "{" TOP ", \"routes\": ["
				  NGN("a", "/a") "]}",
				  strlen("{" TOP ", \"routes\": ["
					 NGN("a", "/a") "]}"), &faults);
	test_assert(cfg != NULL);
	test_assert(faults.count == 1 &&
		    strcmp(faults.lines[0], "earlier 1") == 0);
	ph_config_free(&cfg);
	ph_faults_clear(&faults);
	test_end();
}

static void
test_load_file(void)
{
	static const char text[] =
		"{" TOP ", \"routes\": [" NGN("a", "/a") "]}\n";
	struct ph_faults faults = { 0 };
	struct ph_config *cfg;
	char path[512];

	test_begin("conf: load from a file");
	write_file("payhook.json", text, strlen(text));
	snprintf(path, sizeof(path), "%s/payhook.json", test_tmpdir());
	cfg = ph_config_load(path, &faults);
	test_assert(cfg != NULL && faults.count == 0);
	if (cfg != NULL) {
		test_assert(strcmp(cfg->file, path) == 0);
		test_assert(cfg->n_routes == 1);
		test_assert(secret_is(&cfg->routes[0].secrets[0], LIT,
				      strlen(LIT)));
	}
	ph_config_free(&cfg);

	snprintf(path, sizeof(path), "%s/absent.json", test_tmpdir());
	cfg = ph_config_load(path, &faults);
	test_assert(cfg == NULL);
	test_assert(faults.count == 1);
	test_assert(faults_have(&faults, path));
	test_assert(faults_have(&faults, "No such file or directory"));
	ph_faults_clear(&faults);

	/* A syntax error in a file is located by its path. */
	write_file("bad.json", "{\n\"a\": tru }\n", 13);
	snprintf(path, sizeof(path), "%s/bad.json:2:", test_tmpdir());
	{
		char file[512];

		snprintf(file, sizeof(file), "%s/bad.json", test_tmpdir());
		cfg = ph_config_load(file, &faults);
	}
	test_assert(cfg == NULL);
	test_assert(faults.count == 1 && faults_have(&faults, path));
	ph_faults_clear(&faults);
	test_end();
}

static void
test_locate(void)
{
	char *saved = getenv("PAYHOOK_CONFIG") != NULL ?
		ph_xstrdup(getenv("PAYHOOK_CONFIG")) : NULL;

	test_begin("conf: where the configuration is found");
	setenv("PAYHOOK_CONFIG", "/from/env.json", 1);
	test_assert(strcmp(ph_config_locate("/from/option.json"),
			   "/from/option.json") == 0);
	test_assert(strcmp(ph_config_locate(NULL), "/from/env.json") == 0);
	setenv("PAYHOOK_CONFIG", "", 1);
	test_assert(strcmp(ph_config_locate(NULL),
			   SYSCONFDIR "/payhook.json") == 0);
	unsetenv("PAYHOOK_CONFIG");
	test_assert(strcmp(ph_config_locate(NULL),
			   SYSCONFDIR "/payhook.json") == 0);
	if (saved != NULL)
		setenv("PAYHOOK_CONFIG", saved, 1);
	free(saved);
	test_end();
}

static void
test_route_helpers(void)
{
	static const char json[] =
		"{\"s\": \"str\", \"b\": true, \"f\": false, \"n\": 5, "
		"\"nul\": \"a\\u0000b\", \"sec\": \"env:" ENV_SECRET "\", "
		"\"badsec\": \"env:" ENV_UNSET "\", \"numsec\": 7}";
	struct ph_route r = { .number = 7 };
	struct ph_faults faults = { 0 };
	struct ph_secret sec = { NULL, 0 };
	const char *s = "untouched";
	char where[64], tiny[8];
	bool b = false;

	test_begin("conf: route helpers for adapters");
	r.json = json_tokener_parse(json);
	r.name = ph_xstrdup("hand");
	test_assert(r.json != NULL);

	test_assert(ph_route_opt_string(&r, "absent", &s, &faults) == 0);
	test_assert(strcmp(s, "untouched") == 0);
	test_assert(ph_route_opt_string(&r, "s", &s, &faults) == 0);
	test_assert(strcmp(s, "str") == 0);
	test_assert(ph_route_opt_string(&r, "n", &s, &faults) == -1);
	test_assert(ph_route_opt_string(&r, "nul", &s, &faults) == -1);
	test_assert(strcmp(s, "str") == 0);
	test_assert(faults.count == 2);
	test_assert(faults.count == 2 && strcmp(faults.lines[0],
		    "route 'hand' (#7): key 'n': must be a string") == 0);

	test_assert(ph_route_opt_bool(&r, "absent", &b, &faults) == 0);
	test_assert(!b);
	test_assert(ph_route_opt_bool(&r, "b", &b, &faults) == 0);
	test_assert(b);
	test_assert(ph_route_opt_bool(&r, "f", &b, &faults) == 0);
	test_assert(!b);
	test_assert(ph_route_opt_bool(&r, "s", &b, &faults) == -1);
	test_assert(faults.count == 3 && strcmp(faults.lines[2],
		    "route 'hand' (#7): key 's': must be true or false") == 0);

	test_assert(ph_route_opt_secret(&r, "absent", &sec, &faults) == 0);
	test_assert(sec.data == NULL);
	test_assert(ph_route_opt_secret(&r, "sec", &sec, &faults) == 0);
	test_assert(secret_is(&sec, "env-secret", 10));
	ph_secret_clear(&sec);
	test_assert(ph_route_opt_secret(&r, "badsec", &sec, &faults) == -1);
	test_assert(sec.data == NULL);
	test_assert(faults.count == 4 && strcmp(faults.lines[3],
		    "route 'hand' (#7): key 'badsec': environment variable "
		    ENV_UNSET " is not set") == 0);
	test_assert(ph_route_opt_secret(&r, "numsec", &sec, &faults) == -1);
	test_assert(faults.count == 5);

	test_assert(strcmp(ph_route_where(&r, where, sizeof(where)),
			   "route 'hand' (#7)") == 0);
	test_assert(strcmp(ph_route_where(&r, tiny, sizeof(tiny)),
			   "route '") == 0);
	ph_free(&r.name);
	test_assert(strcmp(ph_route_where(&r, where, sizeof(where)),
			   "route #7") == 0);
	test_assert(ph_route_opt_string(&r, "n", &s, &faults) == -1);
	test_assert(faults.count == 6 && strcmp(faults.lines[5],
		    "route #7: key 'n': must be a string") == 0);

	json_object_put(r.json);
	ph_faults_clear(&faults);
	test_end();
}

/* A file: secret and the configuration file are judged by their mode:
 * writable by group or others is refused, readable by others warned
 * about, each message naming the file. */
static void
test_secret_modes(void)
{
	static const struct {
		mode_t mode;
		const char *err;	/* substring of the error, or NULL */
		const char *warn;	/* substring of the warning, or NULL */
	} rows[] = {
		{ 0600, NULL, NULL },
		{ 0400, NULL, NULL },
		{ 0640, NULL, NULL },
		{ 0644, NULL, "is readable by others (mode 0644); chmod o-r" },
		{ 0604, NULL, "is readable by others (mode 0604)" },
		{ 0620, "is writable by group or others (mode 0620): refused",
		  NULL },
		{ 0602, "is writable by group or others (mode 0602)", NULL },
		{ 0666, "is writable by group or others (mode 0666)", NULL },
		{ 01660, "is writable by group or others (mode 1660)", NULL },
	};
	char path[512], ref[520];

	test_begin("conf: file secrets are judged by their mode");
	snprintf(path, sizeof(path), "%s/moded.secret", test_tmpdir());
	snprintf(ref, sizeof(ref), "file:%s", path);
	write_file("moded.secret", "moded-secret\n", 13);
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++) {
		struct ph_secret s = { 0 };
		struct ph_error err = { "" }, warn = { "" };
		int ret;

		test_assert_idx(chmod(path, rows[i].mode) == 0, i);
		ret = ph_secret_resolve(ref, &s, &warn, &err);
		if (rows[i].err != NULL) {
			test_assert_idx(ret == -1 && s.data == NULL, i);
			test_assert_idx(strstr(err.msg, rows[i].err), i);
			test_assert_idx(strstr(err.msg, path) == err.msg, i);
			test_assert_idx(!strstr(err.msg, "moded-secret"), i);
			continue;
		}
		test_assert_idx(ret == 0, i);
		test_assert_idx(secret_is(&s, "moded-secret", 12), i);
		if (rows[i].warn != NULL) {
			test_assert_idx(strstr(warn.msg, rows[i].warn), i);
			test_assert_idx(strstr(warn.msg, path) == warn.msg, i);
		} else {
			test_assert_idx(warn.msg[0] == '\0', i);
		}
		ph_secret_clear(&s);
	}
	test_end();
}

static void
test_config_modes(void)
{
	struct ph_faults faults = { 0 };
	struct ph_config *cfg;
	char path[512], secret[512], text[1024], want[1200];

	test_begin("conf: the configuration file and its secrets' modes");
	snprintf(path, sizeof(path), "%s/moded.json", test_tmpdir());
	snprintf(secret, sizeof(secret), "%s/route.secret", test_tmpdir());
	write_file("route.secret", "route-secret\n", 13);
	snprintf(text, sizeof(text), "{" TOP ", \"routes\": [{\"name\": \"a\", "
		 "\"path\": \"/a\", \"provider\": \"ngn-gateway\", "
		 "\"amount_unit\": \"minor\", \"secrets\": [\"" LIT "\", "
		 "\"file:%s\"]}]}\n", secret);
	write_file("moded.json", text, strlen(text));

	/* Private: no fault, no warning. */
	cfg = ph_config_load(path, &faults);
	test_assert(cfg != NULL && faults.count == 0 &&
		    faults.n_warnings == 0);
	ph_config_free(&cfg);

	/* Group-writable configuration: refused, its fault first. */
	test_assert(chmod(path, 0660) == 0);
	cfg = ph_config_load(path, &faults);
	snprintf(want, sizeof(want), "%s is writable by group or others "
		 "(mode 0660): refused; chmod go-w it", path);
	test_assert(cfg == NULL && faults.count == 1 &&
		    strcmp(faults.lines[0], want) == 0);
	test_assert(faults.n_warnings == 0);
	ph_faults_clear(&faults);

	/* World-readable configuration: loaded, with a warning. */
	test_assert(chmod(path, 0644) == 0);
	cfg = ph_config_load(path, &faults);
	snprintf(want, sizeof(want), "%s is readable by others (mode 0644); "
		 "chmod o-r it", path);
	test_assert(cfg != NULL && faults.count == 0);
	test_assert(faults.n_warnings == 1 &&
		    strcmp(faults.warnings[0], want) == 0);
	ph_config_free(&cfg);
	ph_faults_clear(&faults);
	test_assert(faults.warnings == NULL && faults.n_warnings == 0);

	/* A world-readable secret file: a warning located by the route. */
	test_assert(chmod(path, 0600) == 0 && chmod(secret, 0604) == 0);
	cfg = ph_config_load(path, &faults);
	snprintf(want, sizeof(want), "route 'a' (#1): secrets[1]: %s is "
		 "readable by others (mode 0604); chmod o-r it", secret);
	test_assert(cfg != NULL && faults.count == 0);
	test_assert(faults.n_warnings == 1 &&
		    strcmp(faults.warnings[0], want) == 0);
	if (cfg != NULL)
		test_assert(secret_is(&cfg->routes[0].secrets[1],
				      "route-secret", 12));
	ph_config_free(&cfg);
	ph_faults_clear(&faults);

	/* A group-writable secret file: a fault located by the route. */
	test_assert(chmod(secret, 0620) == 0);
	cfg = ph_config_load(path, &faults);
	snprintf(want, sizeof(want), "route 'a' (#1): secrets[1]: %s is "
		 "writable by group or others (mode 0620): refused; chmod go-w "
		 "it", secret);
	test_assert(cfg == NULL && faults.count == 1 &&
		    strcmp(faults.lines[0], want) == 0);
	test_assert(!faults_have(&faults, LIT) &&
		    !faults_have(&faults, "route-secret"));
	ph_faults_clear(&faults);
	test_end();
}

/* True if the serialized tree holds s anywhere. */
static bool
tree_has(struct json_object *root, const char *s)
{
	return strstr(json_object_to_json_string_ext(root,
		      JSON_C_TO_STRING_PLAIN), s) != NULL;
}

/* Literal secrets leave the parsed tree once copied; references stay. */
static void
test_literal_wipe(void)
{
	static const char text[] = "{" TOP ", \"routes\": ["
		"{\"name\": \"a\", \"path\": \"/a\", \"provider\": \"ngn-gateway\","
		" \"amount_unit\": \"minor\", \"secrets\": [\"lit-ngn-1\","
		" \"env:" ENV_SECRET "\", \"lit-ngn-2\"]},"
		"{\"name\": \"b\", \"path\": \"/b\", \"provider\": \"omno\","
		" \"auth\": {\"type\": \"basic\", \"user\": \"omno-user\","
		" \"password\": \"lit-omno-pw\"}},"
		"{\"name\": \"c\", \"path\": \"/c\", \"provider\": \"omno\","
		" \"auth\": {\"type\": \"hmac-sha256\", \"secret\": \"lit-omno-h\"}},"
		"{\"name\": \"d\", \"path\": \"/d\", \"provider\": \"paymentoptions\","
		" \"url_token\": [\"lit-po-1\", \"lit-po-2\"], \"header\": \"X-S\","
		" \"secrets\": \"lit-po-h\"},"
		"{\"name\": \"e\", \"path\": \"/e\", \"provider\": \"ompay\","
		" \"secrets\": \"lit-ompay\"}]}";
	static const char *const literals[] = {
		"lit-ngn-1", "lit-ngn-2", "lit-omno-pw", "lit-omno-h",
		"lit-po-1", "lit-po-2", "lit-po-h", "lit-ompay",
	};
	struct ph_faults faults = { 0 };
	struct ph_config *cfg;
	struct json_object *v;

	test_begin("conf: literal secrets are wiped from the parsed file");
	cfg = ph_config_load_text("wipe.json", text, strlen(text), &faults);
	test_assert(cfg != NULL && faults.count == 0);
	if (cfg == NULL) {
		faults_print(&faults);
		ph_faults_clear(&faults);
		test_end();
		return;
	}
	for (size_t i = 0; i < PH_N_ELEMENTS(literals); i++)
		test_assert_idx(!tree_has(cfg->root, literals[i]), i);
	/* References and other strings are left as they were. */
	test_assert(tree_has(cfg->root, "\"env:" ENV_SECRET "\""));
	test_assert(tree_has(cfg->root, "\"omno-user\""));
	/* Wiped in place: same length, zero bytes. */
	v = json_object_array_get_idx(json_object_object_get(
		cfg->routes[0].json, "secrets"), 0);
	test_assert(json_object_get_string_len(v) == 9 &&
		    memcmp(json_object_get_string(v), "\0\0\0\0\0\0\0\0\0",
			   9) == 0);
	/* The resolved copies are intact. */
	test_assert(secret_is(&cfg->routes[0].secrets[0], "lit-ngn-1", 9));
	test_assert(secret_is(&cfg->routes[0].secrets[1], "env-secret", 10));
	test_assert(secret_is(&cfg->routes[0].secrets[2], "lit-ngn-2", 9));
	test_assert(secret_is(&cfg->routes[3].secrets[0], "lit-po-h", 8));
	ph_config_free(&cfg);
	ph_faults_clear(&faults);
	test_end();
}

void
test_conf(void)
{
	setenv(ENV_SECRET, "env-secret", 1);
	setenv(ENV_EMPTY, "", 1);
	unsetenv(ENV_UNSET);
	test_secret_resolve();
	test_load_valid();
	test_load_bounds();
	test_load_faults();
	test_load_many_faults();
	test_load_file();
	test_locate();
	test_route_helpers();
	test_secret_modes();
	test_config_modes();
	test_literal_wipe();
}
