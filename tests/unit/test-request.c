/* test-request.c - request parsing: params, headers, query, limits, JSON.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "request.h"

/* An in-memory stream: reads from `in`, appends writes to `out`. */
struct mem_io {
	const char *in;
	size_t in_len, in_pos;
	char out[4096];
	size_t out_len;
};

static ssize_t
mem_read(void *ctx, uint8_t *buf, size_t len)
{
	struct mem_io *m = ctx;
	size_t n = m->in_len - m->in_pos;

	if (n > len)
		n = len;
	if (n > 3)
		n = 3;	/* short reads, as from a socket */
	memcpy(buf, m->in + m->in_pos, n);
	m->in_pos += n;
	return (ssize_t)n;
}

static int
mem_write(void *ctx, const void *buf, size_t len)
{
	struct mem_io *m = ctx;

	if (len > sizeof(m->out) - m->out_len)
		return -1;
	memcpy(m->out + m->out_len, buf, len);
	m->out_len += len;
	return 0;
}

static void
setup(struct ph_request *req, struct mem_io *m, char **envp, const char *body)
{
	struct ph_stream io = { mem_read, mem_write, m };

	memset(m, 0, sizeof(*m));
	m->in = body;
	m->in_len = strlen(body);
	ph_request_init(req, envp, &io);
}

static void
test_request_params(void)
{
	char *env1[] = { "REQUEST_METHOD=POST", "PATH_INFO=/ompay",
			 "REQUEST_URI=/cgi-bin/payhook/ompay?x=1",
			 "HTTP_X_SIGNATURE=abc", "CONTENT_TYPE=application/json",
			 "QUERY_STRING=a=1&token=s%2Bx+y&b&c=%zz", NULL };
	char *env2[] = { "REQUEST_URI=/ngn?token=1", "PATH_INFO=", NULL };
	struct ph_request req;
	struct mem_io m;
	char *v;

	test_begin("request: path, params, headers, query");
	setup(&req, &m, env1, "");
	test_assert(strcmp(req.method, "POST") == 0);
	test_assert(strcmp(req.path, "/ompay") == 0);
	test_assert(strcmp(ph_request_header(&req, "x-signature"), "abc") == 0);
	test_assert(strcmp(ph_request_header(&req, "Content-Type"),
			   "application/json") == 0);
	test_assert(ph_request_header(&req, "X-Other") == NULL);
	test_assert(ph_request_param(&req, "REQUEST") == NULL);
	v = ph_request_query_param(&req, "token");
	test_assert(v != NULL && strcmp(v, "s+x y") == 0);
	free(v);
	v = ph_request_query_param(&req, "b");
	test_assert(v != NULL && strcmp(v, "") == 0);
	free(v);
	test_assert(ph_request_query_param(&req, "c") == NULL);	/* bad % */
	test_assert(ph_request_query_param(&req, "tok") == NULL);
	ph_request_clear(&req);
	ph_request_clear(&req);

	setup(&req, &m, env2, "");
	test_assert(strcmp(req.method, "") == 0);
	test_assert(strcmp(req.path, "/ngn") == 0);	/* empty PATH_INFO */
	ph_request_clear(&req);
	test_end();
}

static void
test_request_body(void)
{
	static const struct {
		const char *cl;		/* NULL: no CONTENT_LENGTH */
		const char *body;
		size_t max;
		int status;
	} rows[] = {
		{ "7", "{\"a\":1}", 100, 200 },
		{ "7", "{\"a\":1}", 7, 200 },
		{ "7", "{\"a\":1}", 6, 413 },
		{ NULL, "{}", 100, 411 },
		{ "", "{}", 100, 411 },
		{ "-1", "{}", 100, 400 },
		{ "1x", "{}", 100, 400 },
		{ "99999999999999999999999", "{}", 100, 400 },
		{ "10", "{}", 100, 503 },	/* short body: retryable */
		{ "0", "", 100, 200 },
	};

	test_begin("request: Content-Length limits and body reading");
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++) {
		char clvar[64];
		char *env[] = { clvar, NULL };
		struct ph_request req;
		struct mem_io m;
		int status;

		if (rows[i].cl != NULL)
			snprintf(clvar, sizeof(clvar), "CONTENT_LENGTH=%s",
				 rows[i].cl);
		else
			snprintf(clvar, sizeof(clvar), "X=1");
		setup(&req, &m, env, rows[i].body);
		test_assert_idx(ph_request_check_length(&req, rows[i].max) ==
				(rows[i].status == 503 ? 200 : rows[i].status),
				i);
		status = ph_request_read_body(&req, rows[i].max);
		test_assert_idx(status == rows[i].status, i);
		if (status == 200)
			test_assert_idx(req.body_len == strlen(rows[i].body) &&
			    memcmp(req.body, rows[i].body, req.body_len) == 0,
			    i);
		/* 413 must not have consumed the body. */
		if (status == 413)
			test_assert_idx(m.in_pos == 0, i);
		ph_request_clear(&req);
	}
	test_end();
}

static void
test_request_json(void)
{
	static const struct {
		const char *body;
		unsigned depth;
		int status;
	} rows[] = {
		{ "{\"a\":1}", 32, 200 },
		{ "{\"a\":1}\r\n ", 32, 200 },
		{ "{\"a\":1} x", 32, 400 },
		{ "{\"a\":1}{}", 32, 400 },
		{ "[1,2]", 32, 400 },
		{ "\"s\"", 32, 400 },
		{ "{\"a\":", 32, 400 },
		{ "", 32, 400 },
		{ "{a:1}", 32, 400 },
		{ "{\"a\":NaN}", 32, 400 },
		{ "{\"a\":[1,-Infinity]}", 32, 400 },
		{ "{\"a\":01}", 32, 400 },
		{ "{\"a\":1,}", 32, 400 },
		{ "{\"a\":\"\xff\"}", 32, 400 },
		{ "{\"a\":{\"b\":{\"c\":{}}}}", 4, 200 },
		{ "{\"a\":{\"b\":{\"c\":{\"d\":{}}}}}", 4, 400 },
	};

	test_begin("request: strict JSON object, depth limit, no trailing junk");
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++) {
		char clvar[64];
		char *env[] = { clvar, NULL };
		struct ph_request req;
		struct mem_io m;

		snprintf(clvar, sizeof(clvar), "CONTENT_LENGTH=%zu",
			 strlen(rows[i].body));
		setup(&req, &m, env, rows[i].body);
		test_assert_idx(ph_request_read_body(&req, 1000) == 200, i);
		test_assert_idx(ph_request_json(&req, rows[i].depth) ==
				rows[i].status, i);
		/* cached */
		test_assert_idx(ph_request_json(&req, rows[i].depth) ==
				rows[i].status, i);
		test_assert_idx((req.doc != NULL) == (rows[i].status == 200), i);
		ph_request_clear(&req);
	}
	test_end();
}

static void
test_request_content_type(void)
{
	static const struct {
		const char *ct;
		bool json;
	} rows[] = {
		{ "application/json", true },
		{ "Application/JSON; charset=utf-8", true },
		{ " application/json", true },
		{ "application/vnd.api+json", true },
		{ "application/jsonx", false },
		{ "text/plain", false },
		{ "+json", false },
		{ "", false },
		{ NULL, false },
	};

	test_begin("request: Content-Type is JSON");
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++)
		test_assert_idx(ph_content_type_is_json(rows[i].ct) ==
				rows[i].json, i);
	test_end();
}

static void
test_request_respond(void)
{
	static const char expect200[] =
		"Status: 200 OK\r\nContent-Type: application/json\r\n"
		"Content-Length: 2\r\n\r\n{}";
	static const char expect204[] = "Status: 204 No Content\r\n\r\n";
	static const char expect405[] =
		"Status: 405 Method Not Allowed\r\nAllow: POST\r\n"
		"Content-Length: 0\r\n\r\n";
	char *env[] = { NULL };
	struct ph_request req;
	struct mem_io m;

	test_begin("request: answers are complete CGI responses");
	setup(&req, &m, env, "");
	test_assert(ph_request_respond(&req, 200, NULL, "application/json",
				       "{}", 2) == 0);
	test_assert(m.out_len == sizeof(expect200) - 1 &&
		    memcmp(m.out, expect200, m.out_len) == 0);
	test_assert(req.answered);
	ph_request_clear(&req);

	setup(&req, &m, env, "");
	test_assert(ph_request_respond(&req, 204, NULL, NULL, NULL, 0) == 0);
	test_assert(m.out_len == sizeof(expect204) - 1 &&
		    memcmp(m.out, expect204, m.out_len) == 0);
	ph_request_clear(&req);

	setup(&req, &m, env, "");
	test_assert(ph_request_respond(&req, 405, "Allow: POST\r\n", NULL,
				       NULL, 0) == 0);
	test_assert(m.out_len == sizeof(expect405) - 1 &&
		    memcmp(m.out, expect405, m.out_len) == 0);
	ph_request_clear(&req);
	test_end();
}

void
test_request(void)
{
	test_request_params();
	test_request_body();
	test_request_json();
	test_request_content_type();
	test_request_respond();
}
