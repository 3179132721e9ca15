/* log.h - one-line diagnostics on stderr (the web server's error log).
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * Every line is "payhook[PID]: LEVEL: message". Callers never pass secrets,
 * request bodies or card numbers; request-derived strings that end up in a
 * line go through ph_log_sanitize() first.
 */
#ifndef PH_LOG_H
#define PH_LOG_H

#include <stddef.h>
#include "util.h"

void ph_log_error(const char *fmt, ...) PH_PRINTF(1, 2);
void ph_log_warn(const char *fmt, ...) PH_PRINTF(1, 2);
void ph_log_info(const char *fmt, ...) PH_PRINTF(1, 2);

/* Copy src into dst (dst_size bytes, always NUL-terminated), replacing
 * bytes outside printable ASCII, spaces, quotes and backslashes with '?',
 * and truncating long values with "...". Keeps request-supplied text from
 * forging or splitting log lines. Returns dst. */
char *ph_log_sanitize(const char *src, char *dst, size_t dst_size);

#endif
