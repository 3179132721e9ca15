/* prov-standard-webhooks.h - the Standard Webhooks check, exposed for the
 * unit tests (the adapter itself is ph_provider_standard_webhooks).
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#ifndef PH_PROV_STANDARD_WEBHOOKS_H
#define PH_PROV_STANDARD_WEBHOOKS_H

#include <stddef.h>
#include <stdint.h>
#include "provider.h"

/* The most signatures one webhook-signature header may list: each v1a
 * entry costs an Ed25519 verification per public key, so an unbounded
 * list would let anyone spend our CPU. Senders list one per active key. */
#define PH_SWH_MAX_SIGNATURES 16

/* Decide whether the headers' values (id, timestamp, the signature list;
 * NULL when absent) and body (len bytes) are a delivery that route (a
 * configured standard-webhooks route) accepts at Unix time now: the
 * timestamp within the route's tolerance of now, either way, and one entry
 * of the list a v1 HMAC-SHA256 made with one of the route's whsec_ secrets
 * or a v1a Ed25519 signature by one of its whpk_ keys, of
 * "{id}.{timestamp}.{body}". On true, auth says which secret matched. */
bool ph_swh_verify(const struct ph_route *route, const char *id,
		   const char *timestamp, const char *signatures,
		   const uint8_t *body, size_t len, int64_t now,
		   struct ph_auth *auth);

/* Decode standard base64 (RFC 4648 section 4) of len bytes, padded or not,
 * into out (size bytes). Returns the decoded length, or -1: a character
 * outside the alphabet, '=' anywhere but the end, a length no encoding
 * has, or more than size bytes. */
long ph_swh_base64_decode(const char *in, size_t len, uint8_t *out,
			  size_t size);

#endif
