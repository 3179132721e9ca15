/* test-quarantine.c - quarantine entries: fields, redaction, body forms,
 * caps, the list/show/purge commands and the configuration keys.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#include "config.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "test.h"
#include "conf.h"
#include "quarantine.h"
#include "spool.h"

static const char config_text[] =
	"{ \"spool_dir\": \"/nonexistent/spool\", \"state_dir\": \"/s\", "
	"  \"routes\": ["
	"  { \"name\": \"ngn\", \"path\": \"/ngn\", \"provider\": "
	"    \"ngn-gateway\", \"secrets\": [\"whsk_unit\"], "
	"    \"header\": \"X-Hub-Check\", \"amount_unit\": \"minor\" } ] }";

static ssize_t
no_read(void *ctx, uint8_t *buf, size_t len)
{
	(void)ctx, (void)buf, (void)len;
	return 0;
}

static int
no_write(void *ctx, const void *buf, size_t len)
{
	(void)ctx, (void)buf, (void)len;
	return 0;
}

/* req over envp with body (len bytes) as if it had been read. */
static void
setup(struct ph_request *req, char **envp, const void *body, size_t len)
{
	struct ph_stream io = { no_read, no_write, NULL };

	ph_request_init(req, envp, &io);
	req->body = ph_xmalloc(len + 1);
	memcpy(req->body, body, len);
	req->body[len] = '\0';
	req->body_len = len;
}

static struct ph_config *
load_config(const char *text)
{
	struct ph_faults faults = { 0 };
	struct ph_config *cfg;

	cfg = ph_config_load_text("unit.json", text, strlen(text), &faults);
	for (size_t i = 0; i < faults.count; i++)
		printf("#   fault: %s\n", faults.lines[i]);
	ph_faults_clear(&faults);
	return cfg;
}

static const char *
str(struct json_object *obj, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return "(none)";
	return json_object_get_string(v);
}

static void
test_quarantine_entry(void)
{
	char *envp[] = {
		"REQUEST_METHOD=POST", "PATH_INFO=/ngn",
		"REQUEST_URI=/ngn?token=tok1&x=1",
		"QUERY_STRING=token=tok1&x=1&api_key=k2;T%6Fken=t3&flag&"
		"mySecret=s4",
		"REMOTE_ADDR=192.0.2.7",
		"CONTENT_TYPE=application/json", "CONTENT_LENGTH=13",
		"HTTP_X_HUB_CHECK=sig-value-1",
		"HTTP_AUTHORIZATION=Basic dXNlcjpwYXNz",
		"HTTP_PROXY_AUTHORIZATION=Bearer p",
		"HTTP_COOKIE=session=c1", "HTTP_SET_COOKIE=c2",
		"HTTP_X_API_KEY=k3", "HTTP_X_SIGNATURE=s5",
		"HTTP_X_ACCESS_TOKEN=t6", "HTTP_X_WEBHOOK_SECRET=s7",
		"HTTP_USER_AGENT=Provider/1.0 \xff", "HTTP_ACCEPT=*/*",
		"SERVER_SOFTWARE=lighttpd", NULL,
	};
	struct timeval tv = { .tv_sec = 1795255200, .tv_usec = 123456 };
	const char *id = "01KAKQ7D8B0000000000000000";
	struct ph_config *cfg = load_config(config_text);
	struct json_object *obj, *h, *v;
	struct ph_request req;
	size_t len;
	char *text;

	test_begin("quarantine: entry fields, headers and query redacted");
	test_assert(cfg != NULL);
	if (cfg == NULL) {
		test_end();
		return;
	}
	setup(&req, envp, "not json at \x01", 13);
	text = ph_quarantine_entry(ph_config_route(cfg, "/ngn"), &req,
				   "unauthorized", 401, &tv, id, &len);
	test_assert(len == strlen(text) && text[len - 1] == '\n');
	obj = json_tokener_parse(text);
	test_assert(obj != NULL);
	test_assert(strcmp(str(obj, "schema"), "payhook.quarantine/1") == 0);
	test_assert(strcmp(str(obj, "id"), id) == 0);
	test_assert(strcmp(str(obj, "received_at"),
			   "2026-11-21T10:00:00.123Z") == 0);
	test_assert(strcmp(str(obj, "route"), "ngn") == 0);
	test_assert(strcmp(str(obj, "provider"), "ngn-gateway") == 0);
	test_assert(strcmp(str(obj, "reason"), "unauthorized") == 0);
	test_assert(json_object_object_get_ex(obj, "status", &v) &&
		    json_object_get_int(v) == 401);
	test_assert(strcmp(str(obj, "remote_addr"), "192.0.2.7") == 0);
	test_assert(strcmp(str(obj, "method"), "POST") == 0);
	test_assert(strcmp(str(obj, "path"), "/ngn") == 0);
	test_assert(strcmp(str(obj, "query"), "token=[redacted]&x=1&"
			   "api_key=[redacted];T%6Fken=[redacted]&flag&"
			   "mySecret=[redacted]") == 0);
	test_assert(json_object_object_get_ex(obj, "headers", &h));
	test_assert(json_object_object_length(h) == 13);
	test_assert(strcmp(str(h, "content-type"), "application/json") == 0);
	test_assert(strcmp(str(h, "content-length"), "13") == 0);
	test_assert(strcmp(str(h, "accept"), "*/*") == 0);
	/* Latin-1 in a header: replaced, so the entry stays UTF-8. */
	test_assert(strcmp(str(h, "user-agent"),
			   "Provider/1.0 \xef\xbf\xbd") == 0);
	{
		static const char *const redacted[] = {
			"x-hub-check", "authorization", "proxy-authorization",
			"cookie", "set-cookie", "x-api-key", "x-signature",
			"x-access-token", "x-webhook-secret",
		};

		for (size_t i = 0; i < PH_N_ELEMENTS(redacted); i++)
			test_assert_idx(strcmp(str(h, redacted[i]),
					       "[redacted]") == 0, i);
	}
	test_assert(strcmp(str(h, "server-software"), "(none)") == 0);
	test_assert(strstr(text, "sig-value-1") == NULL);
	test_assert(strstr(text, "dXNlcjpwYXNz") == NULL);
	test_assert(strstr(text, "tok1") == NULL);
	test_assert(strstr(text, "session=c1") == NULL);
	test_assert(json_object_object_get_ex(obj, "body_length", &v) &&
		    json_object_get_int64(v) == 13);
	test_assert(json_object_object_get_ex(obj, "body_truncated", &v) &&
		    !json_object_get_boolean(v));
	test_assert(strcmp(str(obj, "body_encoding"), "utf-8") == 0);
	test_assert(strcmp(str(obj, "body"), "not json at \x01") == 0);
	json_object_put(obj);
	free(text);
	ph_request_clear(&req);
	ph_config_free(&cfg);
	test_end();
}

/* The entry for a body of len bytes; the caller puts it. */
static struct json_object *
entry_for(const struct ph_config *cfg, const void *body, size_t len)
{
	char *envp[] = { "REQUEST_METHOD=POST", "PATH_INFO=/ngn", NULL };
	struct timeval tv = { .tv_sec = 1795255200, .tv_usec = 0 };
	struct json_object *obj;
	struct ph_request req;
	size_t n;
	char *text;

	setup(&req, envp, body, len);
	text = ph_quarantine_entry(ph_config_route(cfg, "/ngn"), &req, "json",
				   400, &tv, "01KAKQ7D8B0000000000000000", &n);
	obj = json_tokener_parse(text);
	test_assert(obj != NULL);
	free(text);
	ph_request_clear(&req);
	return obj;
}

static int64_t
num(struct json_object *obj, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v))
		return -1;
	return json_object_is_type(v, json_type_boolean) ?
	    json_object_get_boolean(v) : json_object_get_int64(v);
}

static void
test_quarantine_body(void)
{
	struct ph_config *cfg = load_config(config_text);
	size_t big = PH_QUARANTINE_BODY_MAX + 100;
	struct json_object *obj;
	char *body = ph_xmalloc(big);

	test_begin("quarantine: body as text, base64, truncated at a limit");
	test_assert(cfg != NULL);
	if (cfg == NULL) {
		free(body);
		test_end();
		return;
	}
	/* Not UTF-8 (an overlong '/'): base64 of the bytes. */
	obj = entry_for(cfg, "\x00\xc0\xaf\xff", 4);
	test_assert(strcmp(str(obj, "body_encoding"), "base64") == 0);
	test_assert(strcmp(str(obj, "body"), "AMCv/w==") == 0);
	test_assert(num(obj, "body_length") == 4);
	test_assert(num(obj, "body_truncated") == 0);
	json_object_put(obj);

	/* A surrogate (ED A0 80) is not UTF-8 either; U+10FFFF is. */
	obj = entry_for(cfg, "\xed\xa0\x80", 3);
	test_assert(strcmp(str(obj, "body_encoding"), "base64") == 0);
	json_object_put(obj);
	obj = entry_for(cfg, "\xf4\x8f\xbf\xbf", 4);
	test_assert(strcmp(str(obj, "body_encoding"), "utf-8") == 0);
	json_object_put(obj);

	/* Longer than the limit: cut there, full length said. */
	memset(body, 'a', big);
	obj = entry_for(cfg, body, big);
	test_assert(num(obj, "body_length") == (int64_t)big);
	test_assert(num(obj, "body_truncated") == 1);
	test_assert(strlen(str(obj, "body")) == PH_QUARANTINE_BODY_MAX);
	json_object_put(obj);

	/* A two-byte character across the limit: cut before it, still
	 * text. */
	memcpy(body + PH_QUARANTINE_BODY_MAX - 1, "\xc3\xa9", 2);
	obj = entry_for(cfg, body, big);
	test_assert(strcmp(str(obj, "body_encoding"), "utf-8") == 0);
	test_assert(strlen(str(obj, "body")) == PH_QUARANTINE_BODY_MAX - 1);
	json_object_put(obj);

	/* Binary beyond the limit: base64 of exactly the limit. */
	memset(body, 0xff, big);
	obj = entry_for(cfg, body, big);
	test_assert(strcmp(str(obj, "body_encoding"), "base64") == 0);
	test_assert(strlen(str(obj, "body")) ==
		    4 * ((PH_QUARANTINE_BODY_MAX + 2) / 3));
	json_object_put(obj);
	free(body);
	ph_config_free(&cfg);
	test_end();
}

/* Names in dir, sorted, joined by ' ' into out. */
static void
listing(const char *dir, char *out, size_t size)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort);

	out[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (names[i]->d_name[0] != '.') {
			size_t len = strlen(out);

			snprintf(out + len, size - len, "%s%s",
				 len > 0 ? " " : "", names[i]->d_name);
		}
		free(names[i]);
	}
	free(names);
}

static void
test_quarantine_caps(void)
{
	char spool[512], qdir[600], names[1024], data[100];
	struct ph_error err;
	struct stat st;

	test_begin("quarantine: stored 0600 in a 0700 directory; caps drop "
		   "the oldest");
	snprintf(spool, sizeof(spool), "%s/q-spool", test_tmpdir());
	snprintf(qdir, sizeof(qdir), "%s/quarantine", spool);
	memset(data, 'x', sizeof(data));
	for (int i = 1; i <= 5; i++) {
		char name[64];

		snprintf(name, sizeof(name), "2026010%dT000000.000Z-E%d.json",
			 i, i);
		test_assert_idx(ph_quarantine_store(spool, 3, 1000, name,
				data, sizeof(data), &err) == 0, i);
	}
	listing(qdir, names, sizeof(names));
	test_assert(strcmp(names, "20260103T000000.000Z-E3.json "
			   "20260104T000000.000Z-E4.json "
			   "20260105T000000.000Z-E5.json") == 0);
	test_assert(stat(qdir, &st) == 0 && (st.st_mode & 07777) == 0700);
	snprintf(qdir + strlen(qdir), sizeof(qdir) - strlen(qdir),
		 "/20260105T000000.000Z-E5.json");
	test_assert(stat(qdir, &st) == 0 && (st.st_mode & 07777) == 0600);
	snprintf(qdir, sizeof(qdir), "%s/quarantine", spool);

	/* 250 bytes hold two entries of 100. */
	test_assert(ph_quarantine_store(spool, 1000, 250,
		    "20260106T000000.000Z-E6.json", data, sizeof(data),
		    &err) == 0);
	listing(qdir, names, sizeof(names));
	test_assert(strcmp(names, "20260105T000000.000Z-E5.json "
			   "20260106T000000.000Z-E6.json") == 0);
	/* One larger than the cap is not kept. */
	test_assert(ph_quarantine_store(spool, 1000, 99,
		    "20260107T000000.000Z-E7.json", data, sizeof(data),
		    &err) == 0);
	listing(qdir, names, sizeof(names));
	test_assert(strcmp(names, "") == 0);

	/* The quarantine directory has the spool's checks. */
	test_assert(chmod(qdir, 0777) == 0);
	test_assert(ph_quarantine_store(spool, 10, 1000,
		    "20260108T000000.000Z-E8.json", data, sizeof(data),
		    &err) == PH_SPOOL_UNSAFE);
	test_assert(strstr(err.msg, qdir) != NULL);
	test_assert(chmod(qdir, 0700) == 0);
	test_assert(rmdir(qdir) == 0);
	test_assert(symlink(spool, qdir) == 0);
	test_assert(ph_quarantine_store(spool, 10, 1000,
		    "20260108T000000.000Z-E8.json", data, sizeof(data),
		    &err) == PH_SPOOL_UNSAFE);
	test_assert(strstr(err.msg, "symbolic link") != NULL);
	test_assert(unlink(qdir) == 0);
	test_end();
}

/* Run fn's output into buf through a memory stream. */
static int
capture(int (*list)(const char *, FILE *, struct ph_error *),
	const char *spool, char *buf, size_t size, struct ph_error *err)
{
	FILE *f;
	int ret;

	buf[0] = '\0';
	if ((f = fmemopen(buf, size, "w")) == NULL)
		return -1;
	ret = list(spool, f, err);
	fclose(f);
	return ret;
}

static void
test_quarantine_commands(void)
{
	char *envp[] = { "REQUEST_METHOD=POST", "PATH_INFO=/ngn",
			 "REMOTE_ADDR=2001:db8::1", NULL };
	struct timeval tv = { .tv_sec = 1795255200, .tv_usec = 5000 };
	const char *id = "01KAKQ7D8B000000000000000Q";
	struct ph_config *cfg = load_config(config_text);
	char spool[512], buf[4096], *text;
	struct ph_request req;
	struct ph_error err;
	FILE *f;
	size_t len;
	long n;

	test_begin("quarantine: list, show, purge");
	test_assert(cfg != NULL);
	if (cfg == NULL) {
		test_end();
		return;
	}
	snprintf(spool, sizeof(spool), "%s/q-commands", test_tmpdir());
	/* No quarantine yet: empty, not an error. */
	test_assert(capture(ph_quarantine_list, spool, buf, sizeof(buf),
			    &err) == 0 && buf[0] == '\0');
	test_assert(ph_quarantine_purge(spool, &n, &err) == 0 && n == 0);
	setup(&req, envp, "{", 1);
	text = ph_quarantine_entry(ph_config_route(cfg, "/ngn"), &req,
				   "json", 400, &tv, id, &len);
	test_assert(ph_quarantine_store(spool, 10, 100000,
		    "20261121T100000.005Z-01KAKQ7D8B000000000000000Q.json",
		    text, len, &err) == 0);
	test_assert(ph_quarantine_store(spool, 10, 100000,
		    "20261121T100001.000Z-01KAKQ7D8B000000000000000R.json",
		    "not json", 8, &err) == 0);
	test_assert(capture(ph_quarantine_list, spool, buf, sizeof(buf),
			    &err) == 0);
	test_assert(strcmp(buf, "2026-11-21T10:00:00.005Z ngn 2001:db8::1 "
			   "json 01KAKQ7D8B000000000000000Q\n"
			   "- - - unreadable 20261121T100001.000Z-"
			   "01KAKQ7D8B000000000000000R.json\n") == 0);
	f = fmemopen(buf, sizeof(buf), "w");
	test_assert(ph_quarantine_show(spool, id, f, &err) == 0);
	fclose(f);
	test_assert(strcmp(buf, text) == 0);
	test_assert(ph_quarantine_show(spool, "01KAKQ7D8B000000000000000Z",
				       stdout, &err) < 0);
	test_assert(strstr(err.msg, "no quarantine entry") != NULL);
	test_assert(ph_quarantine_show(spool, "../../etc/passwd", stdout,
				       &err) < 0);
	test_assert(strstr(err.msg, "not an entry id") != NULL);
	test_assert(ph_quarantine_purge(spool, &n, &err) == 0 && n == 2);
	test_assert(capture(ph_quarantine_list, spool, buf, sizeof(buf),
			    &err) == 0 && buf[0] == '\0');
	free(text);
	ph_request_clear(&req);
	ph_config_free(&cfg);
	test_end();
}

static void
test_quarantine_config(void)
{
	static const struct {
		const char *keys;
		size_t files;
		uint64_t bytes;
		const char *fault;
	} rows[] = {
		{ "", 1000, 16777216, NULL },
		{ "\"quarantine_max_files\": 0, ", 0, 16777216, NULL },
		{ "\"quarantine_max_files\": 5, \"quarantine_max_bytes\": "
		  "65536, ", 5, 65536, NULL },
		{ "\"quarantine_max_files\": -1, ", 0, 0,
		  "key 'quarantine_max_files': must be an integer from 0 to "
		  "1000000" },
		{ "\"quarantine_max_bytes\": \"16M\", ", 0, 0,
		  "key 'quarantine_max_bytes': must be an integer from 0 to "
		  "1099511627776" },
	};
	char text[1024];

	test_begin("quarantine: configuration keys, defaults and faults");
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++) {
		struct ph_faults faults = { 0 };
		struct ph_config *cfg;

		snprintf(text, sizeof(text), "{ %s \"spool_dir\": \"/sp\", "
			 "\"state_dir\": \"/st\", \"routes\": [ { \"name\": "
			 "\"n\", \"path\": \"/n\", \"provider\": "
			 "\"ngn-gateway\", \"secrets\": [\"s\"], "
			 "\"amount_unit\": \"minor\" } ] }", rows[i].keys);
		cfg = ph_config_load_text("q.json", text, strlen(text),
					  &faults);
		if (rows[i].fault == NULL) {
			test_assert_idx(cfg != NULL, i);
			test_assert_idx(cfg != NULL &&
					cfg->quarantine_max_files ==
					rows[i].files, i);
			test_assert_idx(cfg != NULL &&
					cfg->quarantine_max_bytes ==
					rows[i].bytes, i);
		} else {
			test_assert_idx(cfg == NULL && faults.count == 1, i);
			test_assert_idx(faults.count == 1 &&
					strstr(faults.lines[0],
					       rows[i].fault) != NULL, i);
		}
		ph_config_free(&cfg);
		ph_faults_clear(&faults);
	}
	test_end();
}

void
test_quarantine(void)
{
	test_quarantine_entry();
	test_quarantine_body();
	test_quarantine_caps();
	test_quarantine_commands();
	test_quarantine_config();
}
