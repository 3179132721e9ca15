/* secret.h - resolve secret references: literal, env:NAME, file:PATH.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#ifndef PH_SECRET_H
#define PH_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "util.h"

struct stat;

struct ph_secret {
	uint8_t *data;	/* the secret's bytes, NUL-terminated for convenience */
	size_t len;
};

/* Resolve ref: "env:NAME" reads the environment variable NAME, "file:PATH"
 * reads the file (at most 64 KiB, one trailing "\n" or "\r\n" removed),
 * anything else is the literal secret. An empty result is an error. A file
 * is judged by ph_secret_file_check(): writable by group or others is an
 * error, readable by others fills warn (its msg is "" otherwise).
 * Error and warning messages name the variable or file, never a secret
 * value. Returns 0 and fills *out (free with ph_secret_clear), or -1. */
int ph_secret_resolve(const char *ref, struct ph_secret *out,
		      struct ph_error *warn, struct ph_error *err)
	PH_NONNULL(1, 2, 3);

/* True if ref is a literal secret rather than an env: or file: reference:
 * then ref itself is the secret and should be wiped once copied. */
bool ph_secret_is_literal(const char *ref) PH_NONNULL(1);

/* The policy for a file holding secrets (a file: secret, the configuration
 * file), judged from st, fstat(2) of the descriptor it was read from:
 * writable by group or others is refused (-1, err naming path: whoever can
 * write it can replace the secrets or the routes); readable by others is
 * allowed with a warning in warn; otherwise warn->msg is "". Returns 0 or
 * -1. */
int ph_secret_file_check(const char *path, const struct stat *st,
			 struct ph_error *warn, struct ph_error *err)
	PH_NONNULL(1, 2, 3);

/* Wipe and free the secret's bytes; safe to call twice. */
void ph_secret_clear(struct ph_secret *s);

#endif
