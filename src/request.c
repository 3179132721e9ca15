/* request.c - reading a CGI/FastCGI request within limits, and answering.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "request.h"

/* After the deadline the timer keeps firing at this interval, so that a
 * read entered just after the first expiry is still interrupted. */
#define READ_TIMER_REPEAT_US 50000

void
ph_request_init(struct ph_request *req, char **envp,
		const struct ph_stream *io)
{
	const char *p;

	memset(req, 0, sizeof(*req));
	req->envp = envp;
	req->io = *io;
	p = ph_request_param(req, "REQUEST_METHOD");
	req->method = p != NULL ? p : "";
	p = ph_request_param(req, "QUERY_STRING");
	req->query = p != NULL ? p : "";

	/* The route is matched on PATH_INFO when the server sets one (CGI in
	 * a cgi-bin, Apache's handler mappings), else on the request path. */
	p = ph_request_param(req, "PATH_INFO");
	if (p != NULL && *p != '\0') {
		req->path = ph_xstrdup(p);
	} else {
		p = ph_request_param(req, "REQUEST_URI");
		if (p == NULL)
			p = "";
		req->path = ph_xstrndup(p, strcspn(p, "?#"));
	}
}

void
ph_request_clear(struct ph_request *req)
{
	ph_free(&req->path);
	ph_free(&req->body);
	req->body_len = 0;
	if (req->doc != NULL) {
		json_object_put(req->doc);
		req->doc = NULL;
	}
}

const char *
ph_request_param(const struct ph_request *req, const char *name)
{
	size_t n = strlen(name);

	for (char **e = req->envp; e != NULL && *e != NULL; e++) {
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	}
	return NULL;
}

const char *
ph_request_header(const struct ph_request *req, const char *name)
{
	char var[128];
	size_t i = 0;

	if (ph_strcaseeq(name, "Content-Type"))
		return ph_request_param(req, "CONTENT_TYPE");
	if (ph_strcaseeq(name, "Content-Length"))
		return ph_request_param(req, "CONTENT_LENGTH");
	if (strlen(name) + sizeof("HTTP_") > sizeof(var))
		return NULL;
	memcpy(var, "HTTP_", 5);
	i = 5;
	for (; *name != '\0'; name++) {
		char c = *name;

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		else if (c == '-')
			c = '_';
		var[i++] = c;
	}
	var[i] = '\0';
	return ph_request_param(req, var);
}

/* Percent-decode [s, s+len) into a new string; NULL on a bad escape or an
 * encoded NUL. '+' is a space, as in application/x-www-form-urlencoded. */
static char *
url_decode(const char *s, size_t len)
{
	char *out = ph_xmalloc(len + 1);
	size_t o = 0;

	for (size_t i = 0; i < len; i++) {
		if (s[i] == '%') {
			int hi, lo;

			if (len - i < 3)
				goto bad;
			hi = ph_hex_nibble(s[i + 1]);
			lo = ph_hex_nibble(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				goto bad;
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (s[i] == '+') {
			out[o++] = ' ';
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

char *
ph_request_query_param(const struct ph_request *req, const char *name)
{
	size_t name_len = strlen(name);
	const char *p = req->query;

	while (*p != '\0') {
		size_t len = strcspn(p, "&;");
		const char *eq = memchr(p, '=', len);
		size_t key_len = eq != NULL ? (size_t)(eq - p) : len;

		if (key_len == name_len && memcmp(p, name, name_len) == 0) {
			if (eq == NULL)
				return ph_xstrdup("");
			return url_decode(eq + 1, len - key_len - 1);
		}
		p += len;
		if (*p != '\0')
			p++;
	}
	return NULL;
}

static int
content_length(const struct ph_request *req, size_t max, uint64_t *len_r)
{
	const char *cl = ph_request_param(req, "CONTENT_LENGTH");

	if (cl == NULL || *cl == '\0')
		return 411;
	if (ph_parse_uint(cl, 0, UINT64_MAX, len_r) < 0)
		return 400;
	if (*len_r > max)
		return 413;
	return 200;
}

int
ph_request_check_length(const struct ph_request *req, size_t max)
{
	uint64_t len;

	return content_length(req, max, &len);
}

/* The body read's deadline: SIGALRM sets the flag and, having no
 * SA_RESTART, makes the blocked read(2) fail with EINTR. */
static volatile sig_atomic_t read_expired;

static void
on_read_timer(int sig)
{
	(void)sig;
	read_expired = 1;
}

static int
read_timer_arm(unsigned seconds, struct sigaction *saved)
{
	struct sigaction sa;
	struct itimerval it = {
		.it_value = { .tv_sec = (time_t)seconds },
		.it_interval = { .tv_usec = READ_TIMER_REPEAT_US },
	};

	read_expired = 0;
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_read_timer;
	if (sigaction(SIGALRM, &sa, saved) < 0)
		return -1;
	if (setitimer(ITIMER_REAL, &it, NULL) < 0) {
		sigaction(SIGALRM, saved, NULL);
		return -1;
	}
	return 0;
}

static void
read_timer_disarm(const struct sigaction *saved)
{
	struct itimerval off = { { 0, 0 }, { 0, 0 } };

	setitimer(ITIMER_REAL, &off, NULL);
	sigaction(SIGALRM, saved, NULL);
}

/* Read exactly want bytes into req->body. Returns 200, 408 or 503. */
static int
read_exactly(struct ph_request *req, size_t want)
{
	size_t got = 0;

	while (got < want) {
		ssize_t n;

		if (read_expired)
			return 408;
		n = req->io.read(req->io.ctx, req->body + got, want - got);
		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (read_expired)
			return 408;
		/* A stray signal (CGI's plain read); a libfcgi stream that
		 * failed stays failed and returns 0 next. */
		if (n < 0 && errno == EINTR)
			continue;
		return 503;
	}
	req->body[got] = '\0';
	req->body_len = got;
	return 200;
}

int
ph_request_read_body(struct ph_request *req, size_t max)
{
	struct sigaction saved;
	uint64_t want;
	bool timed;
	int status;

	status = content_length(req, max, &want);
	if (status != 200)
		return status;
	req->body = ph_xmalloc((size_t)want + 1);
	timed = req->read_timeout_s > 0;
	if (timed && read_timer_arm(req->read_timeout_s, &saved) < 0)
		return 503;
	status = read_exactly(req, (size_t)want);
	if (timed)
		read_timer_disarm(&saved);
	read_expired = 0;
	if (status != 200)
		ph_free(&req->body);
	return status;
}

static bool
only_json_space(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
			return false;
	}
	return true;
}

/* json-c 0.16 accepts NaN and Infinity even in strict mode; JSON has no
 * such numbers, so refuse them. Recursion is bounded by the parse depth. */
static bool
json_numbers_finite(struct json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_double:
		return isfinite(json_object_get_double(o));
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(o); i++) {
			if (!json_numbers_finite(json_object_array_get_idx(o, i)))
				return false;
		}
		return true;
	case json_type_object: {
		json_object_object_foreach(o, key, val) {
			(void)key;
			if (!json_numbers_finite(val))
				return false;
		}
		return true;
	}
	default:
		return true;
	}
}

int
ph_request_json(struct ph_request *req, unsigned depth)
{
	struct json_tokener *tok;
	struct json_object *obj;
	size_t end;

	if (req->json_status != 0)
		return req->json_status;
	req->json_status = 400;
	/* json-c takes an int length; the configuration caps bodies far
	 * below INT_MAX (PH_MAX_BODY_CEILING). */
	if (req->body == NULL || req->body_len > (size_t)INT32_MAX)
		return 400;
	tok = json_tokener_new_ex((int)depth);
	if (tok == NULL)
		return 400;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
				    JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, (const char *)req->body,
				    (int)req->body_len);
	end = json_tokener_get_parse_end(tok);
	if (obj == NULL || json_tokener_get_error(tok) != json_tokener_success ||
	    !only_json_space(req->body + end, req->body_len - end) ||
	    !json_object_is_type(obj, json_type_object) ||
	    !json_numbers_finite(obj)) {
		json_object_put(obj);
		json_tokener_free(tok);
		return 400;
	}
	json_tokener_free(tok);
	req->doc = obj;
	req->json_status = 200;
	return 200;
}

bool
ph_content_type_is_json(const char *ct)
{
	size_t len, i;
	char type[128];

	if (ct == NULL)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	len = strcspn(ct, "; \t");
	if (len == 0 || len >= sizeof(type))
		return false;
	for (i = 0; i < len; i++) {
		char c = ct[i];

		type[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
	}
	type[len] = '\0';
	if (strcmp(type, "application/json") == 0)
		return true;
	/* application/vnd.foo+json and the like */
	return len > 5 && strchr(type, '/') != NULL &&
	    strcmp(type + len - 5, "+json") == 0;
}

const char *
ph_http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	default: return "Unknown";
	}
}

int
ph_request_respond(struct ph_request *req, int status,
		   const char *extra_headers, const char *content_type,
		   const void *body, size_t body_len)
{
	char head[512];
	int n;

	req->answered = true;
	n = snprintf(head, sizeof(head), "Status: %d %s\r\n%s", status,
		     ph_http_reason(status),
		     extra_headers != NULL ? extra_headers : "");
	if (n < 0 || (size_t)n >= sizeof(head))
		return -1;
	if (content_type != NULL) {
		int m = snprintf(head + n, sizeof(head) - (size_t)n,
				 "Content-Type: %s\r\n", content_type);
		if (m < 0 || (size_t)m >= sizeof(head) - (size_t)n)
			return -1;
		n += m;
	}
	/* RFC 9110 8.6: no Content-Length in a 204 answer. */
	if (status != 204) {
		int m = snprintf(head + n, sizeof(head) - (size_t)n,
				 "Content-Length: %zu\r\n", body_len);
		if (m < 0 || (size_t)m >= sizeof(head) - (size_t)n)
			return -1;
		n += m;
	}
	if ((size_t)n + 2 >= sizeof(head))
		return -1;
	memcpy(head + n, "\r\n", 2);
	n += 2;
	if (req->io.write(req->io.ctx, head, (size_t)n) < 0)
		return -1;
	if (strcmp(req->method, "HEAD") == 0)
		return 0;
	if (body_len > 0 && req->io.write(req->io.ctx, body, body_len) < 0)
		return -1;
	return 0;
}
