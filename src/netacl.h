/* netacl.h - IP address lists: route allowlists and trusted proxies.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * Every address is kept as 16 bytes in IPv6 form; an IPv4 address becomes
 * its IPv4-mapped form ::ffff:a.b.c.d and an IPv4 prefix /n becomes /96+n.
 * So 192.0.2.0/24 and ::ffff:192.0.2.0/120 are one network, a client that
 * reaches us as ::ffff:192.0.2.7 (a dual-stack socket) matches its IPv4
 * rule, and an IPv4 client matches a ::ffff:0:0/96 rule. 0.0.0.0/0 means
 * every IPv4 address; ::/0 means every address.
 */
#ifndef PH_NETACL_H
#define PH_NETACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

struct ph_cidr {
	uint8_t addr[16];	/* network address, host bits zero */
	unsigned prefix;	/* 0..128, in the IPv6 form */
};

struct ph_acl {
	struct ph_cidr *nets;	/* owned */
	size_t n;
};

/* Parse one address (inet_pton, IPv4 dotted quad or IPv6 text, no zone
 * id, no surrounding space) into its 16-byte form. Returns 0 or -1. */
int ph_addr_parse(const char *s, uint8_t out[16]) PH_NONNULL(1, 2);

/* Parse "ADDRESS" or "ADDRESS/PREFIX": a bare address is /32 or /128; the
 * prefix is decimal, 0-32 for IPv4 and 0-128 for IPv6; host bits past the
 * prefix must be zero (192.0.2.7/24 is refused, so a typo cannot widen or
 * shift a rule silently). Returns 0, or -1 with err saying why. */
int ph_cidr_parse(const char *s, struct ph_cidr *out, struct ph_error *err)
	PH_NONNULL(1, 2);

/* Append one network to acl. */
void ph_acl_add(struct ph_acl *acl, const struct ph_cidr *net)
	PH_NONNULL(1, 2);

/* True if addr is inside one of acl's networks. */
bool ph_acl_match(const struct ph_acl *acl, const uint8_t addr[16])
	PH_NONNULL(1, 2);

void ph_acl_clear(struct ph_acl *acl);

/* The client's address, decided from the peer (remote_addr, the server's
 * REMOTE_ADDR) and the X-Forwarded-For value xff (may be NULL; several
 * header lines arrive comma-joined):
 * - if the peer is not in trusted, it is the client and xff is ignored;
 * - else xff is read from the right: the first entry that is not itself in
 *   trusted is the client; if every entry is trusted, the left-most one is;
 *   if xff is absent, the peer is.
 * Entries are addresses with optional spaces or tabs around them; when xff
 * is read at all, anything else in it (a port, a name, "unknown", an empty
 * entry) makes the client unknown. Returns 0 (*out set) or -1 (unknown:
 * remote_addr absent or not an address, or a bad xff entry). */
int ph_client_addr(const char *remote_addr, const char *xff,
		   const struct ph_acl *trusted, uint8_t out[16])
	PH_NONNULL(3, 4);

#endif
