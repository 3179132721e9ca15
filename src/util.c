/* util.c - error idiom, allocation, hex, small helpers.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

int
ph_error_set(struct ph_error *err, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	if (err != NULL) {
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	errno = saved;
	return -1;
}

static void PH_NORETURN
oom(size_t n)
{
	ph_log_error("out of memory allocating %zu bytes", n);
	abort();
}

void *
ph_xmalloc(size_t n)
{
	void *p = malloc(n == 0 ? 1 : n);

	if (p == NULL)
		oom(n);
	return p;
}

void *
ph_xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb == 0 ? 1 : nmemb, size == 0 ? 1 : size);

	if (p == NULL)
		oom(nmemb * size);
	return p;
}

void *
ph_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n == 0 ? 1 : n);

	if (q == NULL)
		oom(n);
	return q;
}

char *
ph_xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		oom(strlen(s) + 1);
	return p;
}

char *
ph_xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);

	if (p == NULL)
		oom(n + 1);
	return p;
}

char *
ph_xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (n < 0)
		oom(0);
	return p;
}

void
ph_wipe(void *p, size_t n)
{
#ifdef HAVE_EXPLICIT_BZERO
	explicit_bzero(p, n);
#else
	volatile unsigned char *v = p;

	while (n-- > 0)
		*v++ = 0;
#endif
}

void
ph_hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * len] = '\0';
}

int
ph_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
ph_hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
ph_hex_decode(const char *in, size_t in_len, uint8_t *out, size_t out_len)
{
	if (in_len / 2 != out_len || in_len % 2 != 0)
		return -1;
	for (size_t i = 0; i < out_len; i++) {
		int hi = ph_hex_nibble(in[2 * i]);
		int lo = ph_hex_nibble(in[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

int
ph_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (*s == '\0')
		return -1;
	for (; *s != '\0'; s++) {
		unsigned d;

		if (*s < '0' || *s > '9')
			return -1;
		d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int
ph_parse_duration(const char *s, uint64_t min, uint64_t max,
		  uint64_t *seconds_r)
{
	static const struct {
		char unit;
		uint64_t seconds;
	} units[] = { { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 } };
	size_t len = strlen(s);
	uint64_t scale = 1, count;
	char digits[24];

	if (len > 0 && !(s[len - 1] >= '0' && s[len - 1] <= '9')) {
		size_t i;

		for (i = 0; i < PH_N_ELEMENTS(units); i++)
			if (s[len - 1] == units[i].unit)
				break;
		if (i == PH_N_ELEMENTS(units))
			return -1;
		scale = units[i].seconds;
		len--;
	}
	if (len == 0 || len >= sizeof(digits))
		return -1;
	memcpy(digits, s, len);
	digits[len] = '\0';
	if (ph_parse_uint(digits, 0, UINT64_MAX / scale, &count) < 0)
		return -1;
	count *= scale;
	if (count < min || count > max)
		return -1;
	*seconds_r = count;
	return 0;
}

bool
ph_str_of(const char *s, const char *punct)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		char c = *s;

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || strchr(punct, c) != NULL))
			return false;
	}
	return true;
}

bool
ph_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
	       c == '\v' || c == '\f';
}

size_t
ph_utf8_char_len(const uint8_t *p, size_t len)
{
	uint8_t lo = 0x80, hi = 0xbf;	/* range of the second byte */
	size_t n;

	if (p[0] < 0x80)
		return 1;
	/* RFC 3629 section 4: C0, C1 and F5..FF never appear; E0 and F0
	 * narrow the second byte against overlong forms, ED against
	 * surrogates, F4 against code points above U+10FFFF. */
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (p[0] == 0xe0)
		lo = 0xa0;
	else if (p[0] == 0xed)
		hi = 0x9f;
	else if (p[0] == 0xf0)
		lo = 0x90;
	else if (p[0] == 0xf4)
		hi = 0x8f;
	if (len < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++) {
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	}
	return n;
}

char *
ph_utf8_lossy(const void *s, size_t len, size_t *out_len_r)
{
	const uint8_t *p = s;
	char *out = ph_xmalloc(len * 3 + 1);
	size_t o = 0, n;

	while (len > 0) {
		if ((n = ph_utf8_char_len(p, len)) > 0) {
			memcpy(out + o, p, n);
			o += n;
		} else {
			memcpy(out + o, "\xef\xbf\xbd", 3);
			o += 3;
			n = 1;
		}
		p += n;
		len -= n;
	}
	out[o] = '\0';
	if (out_len_r != NULL)
		*out_len_r = o;
	return out;
}

bool
ph_strcaseeq(const char *a, const char *b)
{
	for (; *a != '\0' && *b != '\0'; a++, b++) {
		char ca = *a, cb = *b;

		if (ca >= 'A' && ca <= 'Z')
			ca = (char)(ca - 'A' + 'a');
		if (cb >= 'A' && cb <= 'Z')
			cb = (char)(cb - 'A' + 'a');
		if (ca != cb)
			return false;
	}
	return *a == *b;
}

uint64_t
ph_now_monotonic_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int
ph_read_file(const char *path, size_t max_len, char **data_r, size_t *len_r,
	     struct ph_error *err)
{
	struct stat st;

	return ph_read_file_stat(path, max_len, data_r, len_r, &st, err);
}

int
ph_read_file_stat(const char *path, size_t max_len, char **data_r,
		  size_t *len_r, struct stat *st_r, struct ph_error *err)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ph_error_set(err, "open(%s) failed: %s", path,
				    strerror(errno));
	if (fstat(fd, &st) < 0) {
		ph_error_set(err, "fstat(%s) failed: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		ph_error_set(err, "%s is not a regular file", path);
		goto fail;
	}
	/* Room for max_len bytes, one more to notice a longer file (it may
	 * have grown since fstat), and the NUL. */
	cap = ((uint64_t)st.st_size < max_len ? (size_t)st.st_size : max_len) + 2;
	buf = ph_xmalloc(cap);
	for (;;) {
		ssize_t n;

		if (len == cap - 1) {
			if (len > max_len) {
				ph_error_set(err, "%s is larger than %zu bytes",
					     path, max_len);
				goto fail;
			}
			cap = cap * 2 > max_len + 2 ? max_len + 2 : cap * 2;
			buf = ph_xrealloc(buf, cap);
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ph_error_set(err, "read(%s) failed: %s", path,
				     strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max_len) {
		ph_error_set(err, "%s is larger than %zu bytes", path, max_len);
		goto fail;
	}
	close(fd);
	buf[len] = '\0';
	*data_r = buf;
	*len_r = len;
	*st_r = st;
	return 0;
fail:
	if (buf != NULL)
		ph_wipe(buf, cap);
	free(buf);
	close(fd);
	return -1;
}

int
ph_random(void *buf, size_t len)
{
	uint8_t *p = buf;
	ssize_t n;

	while (len > 0) {
		n = getrandom(p, len, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}
