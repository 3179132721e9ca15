/* verify.h - HMAC signatures and constant-time credential checks.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#ifndef PH_VERIFY_H
#define PH_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "secret.h"
#include "util.h"

enum ph_digest {
	PH_SHA1,
	PH_SHA256,
	PH_SHA512,
};

#define PH_DIGEST_MAX 64

/* Parse "sha1", "sha256", "sha512" (case-insensitive). Returns 0 or -1. */
int ph_digest_parse(const char *name, enum ph_digest *out);
const char *ph_digest_name(enum ph_digest d);
size_t ph_digest_size(enum ph_digest d);

/* HMAC(key, msg) into mac (PH_DIGEST_MAX bytes); *mac_len_r set.
 * Returns 0 or -1 (OpenSSL failure). */
int ph_hmac(enum ph_digest d, const struct ph_secret *key,
	    const uint8_t *msg, size_t msg_len, uint8_t *mac, size_t *mac_len_r);

/* Check a hex signature (either case, no prefix, surrounding white space
 * ignored) of msg against each secret in turn. The comparison is constant
 * time in the signature's content; a wrong length fails without comparing.
 * Returns the index of the matching secret, or -1. */
int ph_hmac_hex_match(enum ph_digest d, const struct ph_secret *secrets,
		      size_t n_secrets, const uint8_t *msg, size_t msg_len,
		      const char *sig_hex);

/* Constant-time equality of a presented credential and a secret: takes the
 * same time for any presented value of a given length. */
bool ph_secret_equal(const struct ph_secret *secret, const void *presented,
		     size_t presented_len);

/* The default tolerance of signed timestamps (Stripe, Standard Webhooks,
 * generic-hmac with timestamp_header): five minutes either way. */
#define PH_TIMESTAMP_TOLERANCE_S 300
/* The largest tolerance a route may configure ("tolerance_seconds"). */
#define PH_TIMESTAMP_TOLERANCE_MAX_S 86400

/* A provider's signed timestamp: text (len bytes, not NUL-terminated) must
 * be 1 to 12 ASCII digits of Unix time in seconds, and within tolerance_s
 * of now in either direction (a timestamp from the future is as suspect as
 * a stale one: both are replays or a wrong clock). On true, *ts_r (may be
 * NULL) receives the value. The event's received_at stays payhook's own
 * clock; this only decides whether to believe the signature. */
bool ph_timestamp_fresh(const char *text, size_t len, unsigned tolerance_s,
			int64_t now, int64_t *ts_r);

#endif
