/* sign.h - "payhook sign": a ready curl command that delivers a payload to a
 * route with valid credentials, to test a deployment end to end.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#ifndef PH_SIGN_H
#define PH_SIGN_H

#include <stddef.h>
#include <stdint.h>
#include "secret.h"
#include "util.h"
#include "verify.h"

#define PH_SIGN_MAX_HEADERS 4

/* What an adapter's sign hook adds to a delivery. Everything is owned. */
struct ph_signed {
	char *body;			/* NULL: send the payload unchanged */
	size_t body_len;
	char *query;			/* "name=value", already URL-encoded */
	char *headers[PH_SIGN_MAX_HEADERS];	/* "Name: value" */
	size_t n_headers;
};

/* Append the header "name: value". Returns 0, or -1 with err when the
 * value cannot travel in a header (CR, LF or NUL in it). */
int ph_signed_add_header(struct ph_signed *s, const char *name,
			 const char *value, size_t value_len,
			 struct ph_error *err) PH_NONNULL(1, 2, 3);

/* Free what s owns; safe to call twice. */
void ph_signed_clear(struct ph_signed *s);

/* Lower-case hex HMAC of msg into hex (2 * PH_DIGEST_MAX + 1 bytes).
 * Returns 0 or -1 (OpenSSL failure, err set). */
int ph_sign_hmac_hex(enum ph_digest d, const struct ph_secret *key,
		     const uint8_t *msg, size_t msg_len, char *hex,
		     struct ph_error *err);

/* Percent-encode len bytes for a URL query value: A-Z a-z 0-9 - . _ ~
 * stay, everything else becomes %XX. Caller frees. */
char *ph_url_encode(const uint8_t *s, size_t len) PH_MALLOC;

/* Quote s for a POSIX shell: '...' with each ' written as '\''.
 * Caller frees. */
char *ph_shell_quote(const char *s, size_t len) PH_MALLOC;

/* "payhook sign [--config PATH] ROUTE FILE [--url BASE]", argv[0] being
 * "sign". Returns the process exit status. */
int ph_sign_main(int argc, char **argv);

#endif
