/* log.c - one-line diagnostics on stderr.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

/* Build the whole line first and write it with one write(2), so lines of
 * concurrent processes sharing the web server's error log do not interleave. */
static void
log_line(const char *level, const char *fmt, va_list ap)
{
	char line[1024];
	int n, m;

	n = snprintf(line, sizeof(line), "payhook[%ld]: %s: ", (long)getpid(),
		     level);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		return;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	/* A message may carry request-derived text: never let it break the
	 * line or smuggle terminal escapes into the error log. */
	for (int i = 0; i < n; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c < 0x20 || c == 0x7f)
			line[i] = '?';
	}
	line[n++] = '\n';
	/* Nothing sensible to do if stderr is gone. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

void
ph_log_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line("error", fmt, ap);
	va_end(ap);
}

void
ph_log_warn(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line("warning", fmt, ap);
	va_end(ap);
}

void
ph_log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_line("info", fmt, ap);
	va_end(ap);
}

char *
ph_log_sanitize(const char *src, char *dst, size_t dst_size)
{
	size_t i = 0;

	if (dst_size == 0)
		return dst;
	if (src == NULL)
		src = "-";
	for (; *src != '\0' && i + 1 < dst_size; src++) {
		unsigned char c = (unsigned char)*src;

		if (i + 4 >= dst_size && src[1] != '\0') {
			/* Room left only for "...". */
			while (i + 4 > dst_size && i > 0)
				i--;
			memcpy(dst + i, "...", 3);
			i += 3;
			break;
		}
		dst[i++] = (c > 0x20 && c < 0x7f && c != '"' && c != '\\') ?
		    (char)c : '?';
	}
	dst[i] = '\0';
	return dst;
}
