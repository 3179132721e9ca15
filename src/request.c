/* request.c - reading a CGI/FastCGI request within limits, and answering.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#include "config.h"

#include <errno.h>
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

/* JSON. json-c 0.16 in strict mode with UTF-8 validation still lets
 * through what RFC 8259 does not allow and what a strict reader of the
 * spool would refuse: overlong UTF-8, encoded surrogates, code points above
 * U+10FFFF, raw control characters inside strings, leading zeros after a
 * minus ("-01"), NaN and Infinity. And it saturates integers beyond 64 bits
 * without a word, keeping no text for integers. So the text is first read
 * once by scan_text(), which checks what json-c does not and notes the
 * integer tokens json-c clamps; json-c builds the tree; check_tree() then
 * refuses NaN and Infinity and gives each clamped integer its own text. */

/* RFC 8259 white space. */
static bool
only_json_space(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
			return false;
	}
	return true;
}

static bool
is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

/* What scan_text() found that json-c's tree does not tell. */
struct text_scan {
	size_t names;		/* member names: strings followed by ':' */
	/* Integer tokens json-c turns into INT64_MIN or UINT64_MAX: those
	 * beyond 64 bits and those exactly at the bound, in text order, as
	 * offsets into the text. */
	struct { size_t off, len; bool beyond; } *clamped;
	size_t n_clamped, cap;
	bool overflow;		/* one of them is beyond 64 bits */
};

/* The length of the JSON number at [p, p+len) (RFC 8259 section 6:
 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?), or 0 if there is none.
 * *integer is set when it has neither fraction nor exponent. */
static size_t
number_len(const uint8_t *p, size_t len, bool *integer)
{
	size_t i = 0, d;

	*integer = true;
	if (i < len && p[i] == '-')
		i++;
	if (i < len && p[i] == '0') {
		i++;
	} else if (i < len && is_digit(p[i])) {
		while (i < len && is_digit(p[i]))
			i++;
	} else {
		return 0;
	}
	if (i < len && p[i] == '.') {
		*integer = false;
		for (d = ++i; i < len && is_digit(p[i]); i++)
			;
		if (i == d)
			return 0;
	}
	if (i < len && (p[i] == 'e' || p[i] == 'E')) {
		*integer = false;
		if (++i < len && (p[i] == '+' || p[i] == '-'))
			i++;
		for (d = i; i < len && is_digit(p[i]); i++)
			;
		if (i == d)
			return 0;
	}
	/* "-01" would otherwise read as "-0" then "1" (json-c takes it). */
	if (i < len && (is_digit(p[i]) || p[i] == '.' || p[i] == 'e' ||
			p[i] == 'E' || p[i] == '+' || p[i] == '-'))
		return 0;
	return i;
}

/* Note the integer token [p, p+len) if json-c clamps it: a negative one at
 * or below INT64_MIN, a positive one at or above UINT64_MAX. The token is
 * well-formed (no leading zeros), so its digit count orders it. */
static void
note_integer(struct text_scan *sc, const uint8_t *text, size_t off,
	     size_t len)
{
	static const char min_digits[] = "9223372036854775808";
	static const char max_digits[] = "18446744073709551615";
	const uint8_t *digits = text + off;
	const char *bound = max_digits;
	size_t n = len, bound_len;
	int cmp;

	if (*digits == '-') {
		digits++;
		n--;
		bound = min_digits;
	}
	bound_len = strlen(bound);
	if (n != bound_len)
		cmp = n > bound_len ? 1 : -1;
	else
		cmp = memcmp(digits, bound, bound_len);
	if (cmp < 0)
		return;
	if (sc->n_clamped == sc->cap) {
		/* Doubling: a body of nothing but such integers stays linear.
		 * No overflow: each entry stands for 19 bytes of text or more,
		 * and the text is below INT32_MAX bytes. */
		sc->cap = sc->cap == 0 ? 8 : 2 * sc->cap;
		sc->clamped = ph_xrealloc(sc->clamped,
		    sc->cap * sizeof(*sc->clamped));
	}
	sc->clamped[sc->n_clamped].off = off;
	sc->clamped[sc->n_clamped].len = len;
	sc->clamped[sc->n_clamped].beyond = cmp > 0;
	sc->n_clamped++;
	if (cmp > 0)
		sc->overflow = true;
}

/* The string whose opening quote is at p[*i]: well-formed UTF-8, no byte
 * below 0x20 (RFC 8259 section 7: control characters must be escaped).
 * Escapes are json-c's to check; here only their extent matters, and
 * whether one is "\u0000" (*nul). Advances *i past the closing quote. */
static bool
scan_string(const uint8_t *p, size_t len, size_t *i, bool *nul)
{
	size_t j = *i + 1, n;

	*nul = false;
	while (j < len && p[j] != '"') {
		if (p[j] < 0x20)
			return false;
		if (p[j] == '\\') {
			if (j + 1 == len || p[j + 1] < 0x20 || p[j + 1] >= 0x80)
				return false;
			if (p[j + 1] == 'u' && len - j >= 6 &&
			    memcmp(p + j + 2, "0000", 4) == 0)
				*nul = true;
			j += 2;
		} else if (p[j] < 0x80) {
			j++;
		} else if ((n = ph_utf8_char_len(p + j, len - j)) == 0) {
			return false;
		} else {
			j += n;
		}
	}
	if (j == len)
		return false;
	*i = j + 1;
	return true;
}

/* One pass over the raw text: strict UTF-8 and unescaped control
 * characters in strings, nothing but JSON's white space and ASCII outside
 * them, every number well-formed, no member name holding "\u0000" (json-c
 * keeps names as C strings: "id\u0000x" would silently be "id"). Returns
 * false to refuse the text. A text json-c refuses anyway may pass; what
 * passes here and there is JSON. */
static bool
scan_text(const uint8_t *p, size_t len, struct text_scan *sc)
{
	size_t i = 0, n;
	bool integer, nul;

	while (i < len) {
		if (p[i] == '"') {
			if (!scan_string(p, len, &i, &nul))
				return false;
			n = i;
			while (n < len && (p[n] == ' ' || p[n] == '\t' ||
					   p[n] == '\n' || p[n] == '\r'))
				n++;
			if (n < len && p[n] == ':') {
				if (nul)
					return false;
				sc->names++;
			}
		} else if (p[i] == '-' || is_digit(p[i])) {
			n = number_len(p + i, len - i, &integer);
			if (n == 0)
				return false;
			if (integer)
				note_integer(sc, p, i, n);
			i += n;
		} else if (p[i] >= 0x80 || (p[i] < 0x20 && p[i] != '\t' &&
					    p[i] != '\n' && p[i] != '\r')) {
			return false;
		} else {
			i++;
		}
	}
	return true;
}

/* What check_tree() counts, and where it is in the list of clamped
 * integers while it gives them their text. */
struct tree_walk {
	const uint8_t *text;
	const struct text_scan *sc;
	bool assign;		/* second pass: set the clamped integers' text */
	size_t names;
	size_t n_clamped;
};

static bool
is_clamped(struct json_object *o)
{
	int64_t v = json_object_get_int64(o);

	/* For a positive value beyond INT64_MAX json-c keeps a uint64_t;
	 * get_int64 then answers INT64_MAX, get_uint64 the value. */
	return v == INT64_MIN ||
	    (v == INT64_MAX && json_object_get_uint64(o) == UINT64_MAX);
}

/* Walk the tree in text order (json-c keeps members in insertion order):
 * refuse NaN and Infinity, which json-c 0.16 parses even in strict mode
 * (their text is not a number's); count member names and clamped integers;
 * in the assigning pass, give each integer beyond 64 bits a serializer
 * printing its own text, which also marks it (ph_json_int_overflowed).
 * Recursion is bounded by the parse depth. */
static bool
check_tree(struct json_object *o, struct tree_walk *w)
{
	const char *s;

	switch (json_object_get_type(o)) {
	case json_type_double:
		/* A parsed double prints its source text. */
		s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
		return s != NULL && (is_digit((uint8_t)s[0]) ||
		    (s[0] == '-' && is_digit((uint8_t)s[1])));
	case json_type_int:
		if (!is_clamped(o))
			return true;
		if (w->assign) {
			const struct text_scan *sc = w->sc;
			size_t k = w->n_clamped;
			char *text;

			if (k >= sc->n_clamped)
				return false;
			if (sc->clamped[k].beyond) {
				text = ph_xstrndup((const char *)w->text +
				    sc->clamped[k].off, sc->clamped[k].len);
				json_object_set_serializer(o,
				    json_object_userdata_to_json_string, text,
				    json_object_free_userdata);
			}
		}
		w->n_clamped++;
		return true;
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(o); i++) {
			if (!check_tree(json_object_array_get_idx(o, i), w))
				return false;
		}
		return true;
	case json_type_object: {
		json_object_object_foreach(o, key, val) {
			(void)key;
			w->names++;
			if (!check_tree(val, w))
				return false;
		}
		return true;
	}
	default:
		return true;
	}
}

/* Give every integer json-c clamped its own text. The clamped integers of
 * the tree and of the text pair up in order, unless a repeated member name
 * dropped one of them (json-c keeps the last value at the first name's
 * place): then which text belongs to which integer is unknown, and the
 * body is refused rather than spooled with a clamped number. An integer
 * exactly at the bound keeps json-c's value, which is right. */
static bool
restore_clamped(struct json_object *doc, const uint8_t *text,
		const struct text_scan *sc)
{
	struct tree_walk w = { .text = text, .sc = sc };

	if (!check_tree(doc, &w))
		return false;
	if (!sc->overflow)
		return true;	/* only exact bounds: the values are right */
	if (w.names != sc->names || w.n_clamped != sc->n_clamped)
		return false;
	memset(&w, 0, sizeof(w));
	w.text = text;
	w.sc = sc;
	w.assign = true;
	return check_tree(doc, &w);
}

struct json_object *
ph_json_parse_object(const uint8_t *text, size_t len, unsigned depth)
{
	struct text_scan sc = { 0 };
	struct json_tokener *tok = NULL;
	struct json_object *obj = NULL;
	size_t end;

	/* json-c takes an int length; the configuration caps bodies far
	 * below INT_MAX (PH_MAX_BODY_CEILING). */
	if (len > (size_t)INT32_MAX || !scan_text(text, len, &sc))
		goto fail;
	tok = json_tokener_new_ex((int)depth);
	if (tok == NULL)
		goto fail;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
				    JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, (const char *)text, (int)len);
	end = json_tokener_get_parse_end(tok);
	if (obj == NULL || json_tokener_get_error(tok) != json_tokener_success ||
	    !only_json_space(text + end, len - end) ||
	    !json_object_is_type(obj, json_type_object) ||
	    !restore_clamped(obj, text, &sc))
		goto fail;
	json_tokener_free(tok);
	free(sc.clamped);
	return obj;
fail:
	json_object_put(obj);
	if (tok != NULL)
		json_tokener_free(tok);
	free(sc.clamped);
	return NULL;
}

bool
ph_json_int_overflowed(struct json_object *val)
{
	/* json-c sets userdata on parsed doubles only; on an integer it is
	 * the text restore_clamped() gave it. */
	return json_object_is_type(val, json_type_int) &&
	    json_object_get_userdata(val) != NULL;
}

int
ph_request_json(struct ph_request *req, unsigned depth)
{
	if (req->json_status != 0)
		return req->json_status;
	req->json_status = 400;
	if (req->body == NULL)
		return 400;
	req->doc = ph_json_parse_object(req->body, req->body_len, depth);
	if (req->doc == NULL)
		return 400;
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
