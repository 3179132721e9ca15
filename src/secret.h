/* secret.h - resolve secret references: literal, env:NAME, file:PATH.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#ifndef PH_SECRET_H
#define PH_SECRET_H

#include <stddef.h>
#include <stdint.h>
#include "util.h"

struct ph_secret {
	uint8_t *data;	/* the secret's bytes, NUL-terminated for convenience */
	size_t len;
};

/* Resolve ref: "env:NAME" reads the environment variable NAME, "file:PATH"
 * reads the file (at most 64 KiB, one trailing "\n" or "\r\n" removed),
 * anything else is the literal secret. An empty result is an error.
 * Error messages name the variable or file, never a secret value.
 * Returns 0 and fills *out (free with ph_secret_clear), or -1. */
int ph_secret_resolve(const char *ref, struct ph_secret *out,
		      struct ph_error *err) PH_NONNULL(1, 2);

/* Wipe and free the secret's bytes; safe to call twice. */
void ph_secret_clear(struct ph_secret *s);

#endif
