/* ids.h - event ids (ULID) and RFC 3339 timestamps.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#ifndef PH_IDS_H
#define PH_IDS_H

#include <stdint.h>
#include <sys/time.h>
#include "util.h"

#define PH_ULID_LEN 26
/* "2026-11-21T10:00:00.123Z" */
#define PH_RFC3339_LEN 24
/* "20261121T100000.123Z" */
#define PH_STAMP_LEN 20

/* A ULID (https://github.com/ulid/spec): 48-bit Unix time in ms, then 80
 * random bits, Crockford base32, 26 characters. Ids made by one process are
 * strictly increasing, even within one millisecond (the random part is
 * incremented); ids of different processes sort by millisecond.
 * out must hold PH_ULID_LEN + 1 bytes. now is the time to encode.
 * Returns 0, or -1 if no randomness could be had. */
int ph_ulid_generate(const struct timeval *now, char *out);

/* Encode a ULID from its parts: ms (< 2^48) and 10 random bytes, big
 * endian. The id generator's building block, exposed for tests. */
#define PH_ULID_RAND_BYTES 10
void ph_ulid_encode(uint64_t ms, const uint8_t rnd[PH_ULID_RAND_BYTES],
		    char *out);

/* Time from a ULID's first 10 characters, in ms since the epoch.
 * Returns 0, or -1 if id is not a well-formed ULID. */
int ph_ulid_time_ms(const char *id, uint64_t *ms_r);

/* Format now as RFC 3339 UTC with milliseconds into out (PH_RFC3339_LEN+1). */
void ph_time_rfc3339(const struct timeval *now, char *out);

/* Format now as a compact UTC stamp for file names into out (PH_STAMP_LEN+1):
 * "YYYYMMDDTHHMMSS.mmmZ"; names built from it sort by time. */
void ph_time_stamp(const struct timeval *now, char *out);

#endif
