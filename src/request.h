/* request.h - one HTTP request as FastCGI or CGI delivers it, and its answer.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * The same code serves both transports: a request reads its parameters
 * from an envp array (FCGX_Request.envp, or environ in CGI mode) and its
 * body and answer go through a tiny stream interface.
 */
#ifndef PH_REQUEST_H
#define PH_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <json-c/json.h>
#include "util.h"

struct ph_stream {
	/* Read up to len bytes; returns bytes read, 0 at end, -1 on error. */
	ssize_t (*read)(void *ctx, uint8_t *buf, size_t len);
	/* Write all len bytes; returns 0 or -1. */
	int (*write)(void *ctx, const void *buf, size_t len);
	void *ctx;
};

struct ph_request {
	char **envp;			/* CGI/FastCGI parameters, borrowed */
	struct ph_stream io;
	const char *method;		/* REQUEST_METHOD, "" if absent */
	char *path;			/* PATH_INFO, else REQUEST_URI sans query */
	const char *query;		/* QUERY_STRING, "" if absent */
	uint8_t *body;			/* exactly body_len bytes, plus a NUL */
	size_t body_len;
	struct json_object *doc;	/* parsed body, owned; see ph_request_json */
	int json_status;		/* 0 until parsed, then 200 or 400 */
	bool answered;
	unsigned read_timeout_s;	/* bound on reading the body; 0: none */
};

/* Set up req over envp and io; nothing is read yet. */
void ph_request_init(struct ph_request *req, char **envp,
		     const struct ph_stream *io) PH_NONNULL(1, 2, 3);

/* Free what the request owns; safe to call twice. */
void ph_request_clear(struct ph_request *req);

/* A CGI/FastCGI parameter by exact name ("CONTENT_TYPE"), or NULL. */
const char *ph_request_param(const struct ph_request *req, const char *name);

/* An HTTP request header by its HTTP name ("X-Signature" is looked up as
 * HTTP_X_SIGNATURE; Content-Type and Content-Length map to CONTENT_TYPE and
 * CONTENT_LENGTH), or NULL. */
const char *ph_request_header(const struct ph_request *req, const char *name);

/* The value of query parameter name in QUERY_STRING, percent-decoded, in a
 * new string the caller frees; NULL when absent or badly encoded. */
char *ph_request_query_param(const struct ph_request *req, const char *name);

/* Check CONTENT_LENGTH against max without reading anything.
 * Returns an HTTP status: 200 fine, 411 no length, 400 not a number,
 * 413 over max. */
int ph_request_check_length(const struct ph_request *req, size_t max);

/* Check CONTENT_LENGTH against max and read exactly that many bytes,
 * within req->read_timeout_s seconds for the whole body (not per read: a
 * client trickling a byte at a time is cut off too). Returns an HTTP
 * status: 200 read; 411 no length; 400 a malformed length (the client's own
 * framing); 413 over max (the body is not read); 408 the time ran out;
 * 503 the body ended early or could not be read, which is never the
 * sender's fault for certain (a server or proxy may have cut it), so the
 * answer lets the sender retry.
 * The time bound uses SIGALRM and ITIMER_REAL for the duration of the call
 * (the previous SIGALRM action is restored, ITIMER_REAL is left disarmed,
 * so nothing else in the process may use them); a read interrupted by it
 * fails, which is what ends a blocked libfcgi read. */
int ph_request_read_body(struct ph_request *req, size_t max);

/* Parse the body with ph_json_parse_object(); cached after the first
 * call. Returns 200 (req->doc set) or 400. */
int ph_request_json(struct ph_request *req, unsigned depth);

/* Parse text (len bytes) as RFC 8259 JSON, strictly, and require an
 * object: well-formed UTF-8 (no overlong forms, surrogates or code points
 * above U+10FFFF), no unescaped control character in a string, numbers as
 * the grammar writes them (no NaN, Infinity or "-01"), nesting at most
 * depth, nothing but white space after it. A number too large for a double
 * ("1e400") is accepted and prints back as its text. An integer beyond 64
 * bits, which json-c would clamp, prints back as its text too, and
 * ph_json_int_overflowed() tells it apart; a body that has one together
 * with a repeated member name is refused (which text belongs to which
 * integer is then unknown). An escaped lone surrogate ("\ud800") is taken,
 * and becomes U+FFFD, as json-c makes it. Returns a new object, or NULL. */
struct json_object *ph_json_parse_object(const uint8_t *text, size_t len,
					 unsigned depth) PH_NONNULL(1);

/* True if val is a JSON integer beyond 64 bits (json-c's value is clamped
 * to INT64_MIN or UINT64_MAX, its text is what it prints): not usable as
 * an identity or an amount. */
bool ph_json_int_overflowed(struct json_object *val);

/* True if the Content-Type media type is application/json or ends in
 * "+json" (parameters such as charset ignored, case-insensitive). */
bool ph_content_type_is_json(const char *content_type);

/* Send a complete answer: Status, optional extra header lines (each ending in
 * "\r\n", may be NULL), Content-Type (omitted if NULL), Content-Length,
 * body. The answer to a HEAD request has the same header lines and no
 * body (RFC 9110 9.3.2). Returns 0 or -1 (write failed: the client went
 * away). */
int ph_request_respond(struct ph_request *req, int status,
		       const char *extra_headers, const char *content_type,
		       const void *body, size_t body_len);

/* Reason phrase of an HTTP status ("Not Found"). */
const char *ph_http_reason(int status);

#endif
