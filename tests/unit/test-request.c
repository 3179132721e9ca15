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
test_utf8_char_len(void)
{
	static const struct {
		const char *bytes;
		size_t len;
	} rows[] = {
		{ "a", 1 },
		{ "\xc2\x80", 2 },		/* U+0080 */
		{ "\xdf\xbf", 2 },		/* U+07FF */
		{ "\xe0\xa0\x80", 3 },		/* U+0800 */
		{ "\xed\x9f\xbf", 3 },		/* U+D7FF */
		{ "\xee\x80\x80", 3 },		/* U+E000 */
		{ "\xef\xbf\xbd", 3 },		/* U+FFFD */
		{ "\xef\xbf\xbf", 3 },		/* U+FFFF */
		{ "\xf0\x90\x80\x80", 4 },	/* U+10000 */
		{ "\xf4\x8f\xbf\xbf", 4 },	/* U+10FFFF */
		{ "\x80", 0 },			/* continuation */
		{ "\xc0\x80", 0 },		/* overlong NUL */
		{ "\xc1\xbf", 0 },		/* overlong */
		{ "\xe0\x80\x80", 0 },		/* overlong */
		{ "\xe0\x9f\xbf", 0 },		/* overlong */
		{ "\xf0\x80\x80\x80", 0 },	/* overlong */
		{ "\xf0\x8f\xbf\xbf", 0 },	/* overlong */
		{ "\xed\xa0\x80", 0 },		/* U+D800 */
		{ "\xed\xbf\xbf", 0 },		/* U+DFFF */
		{ "\xf4\x90\x80\x80", 0 },	/* U+110000 */
		{ "\xf5\x80\x80\x80", 0 },
		{ "\xff", 0 },
		{ "\xc3", 0 },			/* truncated */
		{ "\xe2\x82", 0 },
		{ "\xc3\x28", 0 },		/* bad continuation */
		{ "\xe2\x28\xa1", 0 },
		{ "\xf0\x90\x28\xbc", 0 },
	};

	test_begin("UTF-8: well-formed sequences only (RFC 3629)");
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++)
		test_assert_idx(ph_utf8_char_len((const uint8_t *)rows[i].bytes,
		    strlen(rows[i].bytes)) == rows[i].len, i);
	test_end();
}

static void
test_json_strict(void)
{
	static const struct {
		const char *text;
		const char *out;	/* NULL: refused; "=": as text */
	} rows[] = {
		{ "{\"a\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}", "=" },
		{ "{\"a\":\"\xf4\x8f\xbf\xbf\xed\x9f\xbf\xee\x80\x80\"}", "=" },
		{ "{\"a\":\"x\x7fy\"}", "=" },		/* DEL is allowed */
		/* Overlong, surrogates, above U+10FFFF, stray bytes. */
		{ "{\"a\":\"\xc0\x80\"}", NULL },
		{ "{\"a\":\"\xc1\xbf\"}", NULL },
		{ "{\"a\":\"\xe0\x80\xaf\"}", NULL },
		{ "{\"a\":\"\xf0\x80\x80\xaf\"}", NULL },
		{ "{\"a\":\"\xed\xa0\x80\"}", NULL },
		{ "{\"a\":\"\xed\xbf\xbf\"}", NULL },
		{ "{\"a\":\"\xed\xa0\xbd\xed\xb8\x80\"}", NULL },	/* CESU-8 */
		{ "{\"a\":\"\xf4\x90\x80\x80\"}", NULL },
		{ "{\"a\":\"\xf7\xbf\xbf\xbf\"}", NULL },
		{ "{\"a\":\"\x80\"}", NULL },
		{ "{\"a\":\"\xc3\"}", NULL },
		{ "{\"a\":\"x\"}\xc3\xa9", NULL },
		{ "{\"\xc0\x80\":1}", NULL },			/* in a name */
		/* Unescaped control characters in strings. */
		{ "{\"a\":\"x\ty\"}", NULL },
		{ "{\"a\":\"x\ny\"}", NULL },
		{ "{\"a\":\"x\ry\"}", NULL },
		{ "{\"a\":\"\x01\"}", NULL },
		{ "{\"a\":\"\x1f\"}", NULL },
		{ "{\"a\\\x01\":1}", NULL },
		{ "{\"a\tb\":1}", NULL },
		{ "{\"a\":\"x\\ty\\n\\u0001\"}", "{\"a\":\"x\\ty\\n\\u0001\"}" },
		/* NUL: fine in a value, not in a name (json-c cuts it). */
		{ "{\"a\":\"x\\u0000y\"}", "=" },
		{ "{\"a\\u0000x\":1}", NULL },
		{ "{\"a\\u0000\" :1}", NULL },
		{ "{\"a\\\\u0000\":1}", "=" },
		{ "\t{\"a\":\r\n1}\n", "{\"a\":1}" },
		{ "{\"a\":1}\x0b", NULL },
		{ "{\"a\":\x0c" "1}", NULL },
		/* Numbers as the grammar writes them. */
		{ "{\"a\":-01}", NULL },
		{ "{\"a\":-00}", NULL },
		{ "{\"a\":-0000000000000000000000}", NULL },
		{ "{\"a\":01}", NULL },
		{ "{\"a\":1.}", NULL },
		{ "{\"a\":.5}", NULL },
		{ "{\"a\":1e}", NULL },
		{ "{\"a\":+1}", NULL },
		{ "{\"a\":-}", NULL },
		{ "{\"a\":NaN}", NULL },
		{ "{\"a\":Infinity}", NULL },
		{ "{\"a\":-Infinity}", NULL },
		{ "{\"a\":[0,-0,1.5e-3,-2E+3,0.10]}", "{\"a\":[0,0,1.5e-3,-2E+3,0.10]}" },
		/* Beyond a double, beyond 64 bits: kept as sent. */
		{ "{\"a\":1e400,\"b\":-1e400}", "=" },
		{ "{\"a\":99999999999999999999,\"b\":99999999999999999998}", "=" },
		{ "{\"a\":[-99999999999999999999,18446744073709551616,"
		  "18446744073709551615,-9223372036854775808,"
		  "123456789012345678901234567890]}", "=" },
		{ "{\"a\":{\"b\":[1,{\"c\":18446744073709551616}]},"
		  "\"d\":-9223372036854775809}", "=" },
		/* A repeated name: the last value, as json-c keeps it... */
		{ "{\"a\":1,\"a\":2}", "{\"a\":2}" },
		{ "{\"a\":18446744073709551615,\"a\":1}", "{\"a\":1}" },
		/* ...but not with an integer whose text cannot be placed. */
		{ "{\"a\":\"x\",\"b\":99999999999999999999,\"a\":7}", NULL },
		{ "{\"a\":99999999999999999999,\"a\":1}", NULL },
		/* Escaped lone surrogates: taken, as U+FFFD. */
		{ "{\"a\":\"\\ud800\",\"b\":\"\\udc00x\"}",
		  "{\"a\":\"\xef\xbf\xbd\",\"b\":\"\xef\xbf\xbdx\"}" },
		{ "{\"a\":\"\\ud83d\\ude00\"}", "{\"a\":\"\xf0\x9f\x98\x80\"}" },
	};

	test_begin("JSON: strict RFC 8259, numbers keep their text");
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++) {
		const char *text = rows[i].text, *out;
		struct json_object *doc;

		doc = ph_json_parse_object((const uint8_t *)text, strlen(text),
					   32);
		test_assert_idx((doc != NULL) == (rows[i].out != NULL), i);
		if (doc == NULL || rows[i].out == NULL) {
			json_object_put(doc);
			continue;
		}
		out = json_object_to_json_string_ext(doc,
		    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		if (strcmp(rows[i].out, "=") != 0)
			text = rows[i].out;
		test_assert_idx(strcmp(out, text) == 0, i);
		if (strcmp(out, text) != 0)
			printf("# row %zu: got %s\n", i, out);
		json_object_put(doc);
	}
	test_end();
}

static void
test_json_int_overflowed(void)
{
	static const char text[] =
		"{\"a\":99999999999999999999,\"b\":18446744073709551615,"
		"\"c\":-9223372036854775809,\"d\":-9223372036854775808,"
		"\"e\":1,\"f\":1e400,\"g\":\"99999999999999999999\"}";
	static const struct {
		const char *name;
		bool overflowed;
	} rows[] = {
		{ "a", true }, { "b", false }, { "c", true }, { "d", false },
		{ "e", false }, { "f", false }, { "g", false },
	};
	struct json_object *doc;

	test_begin("JSON: integers beyond 64 bits are told apart");
	doc = ph_json_parse_object((const uint8_t *)text, strlen(text), 32);
	if (test_assert(doc != NULL)) {
		for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++)
			test_assert_idx(ph_json_int_overflowed(
			    json_object_object_get(doc, rows[i].name)) ==
			    rows[i].overflowed, i);
	}
	test_assert(!ph_json_int_overflowed(NULL));
	json_object_put(doc);
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
	test_utf8_char_len();
	test_json_strict();
	test_json_int_overflowed();
	test_request_content_type();
	test_request_respond();
}
