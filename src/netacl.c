/* netacl.c - IP address lists: route allowlists and trusted proxies.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * Addresses are parsed by inet_pton only; the one thing parsed here is the
 * "/PREFIX" suffix.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "netacl.h"

/* Longest address text inet_pton accepts, plus "/128" and a NUL. */
#define CIDR_TEXT_MAX (INET6_ADDRSTRLEN + 5)
#define V4_MAPPED_PREFIX 96

static const uint8_t v4_mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff,
};

/* Returns 4 (IPv4, stored mapped), 6 (IPv6) or 0 (not an address). */
static int
addr_parse(const char *s, uint8_t out[16])
{
	if (inet_pton(AF_INET, s, out + 12) == 1) {
		memcpy(out, v4_mapped, sizeof(v4_mapped));
		return 4;
	}
	if (inet_pton(AF_INET6, s, out) == 1)
		return 6;
	return 0;
}

int
ph_addr_parse(const char *s, uint8_t out[16])
{
	return addr_parse(s, out) != 0 ? 0 : -1;
}

/* Are the first prefix bits of a and b (16 bytes each) equal? */
static bool
prefix_equal(const uint8_t *a, const uint8_t *b, unsigned prefix)
{
	unsigned whole = prefix / 8, rest = prefix % 8;

	if (memcmp(a, b, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[whole] ^ b[whole]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

/* Is every bit of a (16 bytes) past the first prefix bits zero? */
static bool
host_bits_zero(const uint8_t *a, unsigned prefix)
{
	unsigned whole = prefix / 8, rest = prefix % 8;

	if (rest != 0 && (a[whole] & (uint8_t)(0xff >> rest)) != 0)
		return false;
	for (unsigned i = whole + (rest != 0); i < 16; i++)
		if (a[i] != 0)
			return false;
	return true;
}

int
ph_cidr_parse(const char *s, struct ph_cidr *out, struct ph_error *err)
{
	char text[CIDR_TEXT_MAX];
	const char *slash = strchr(s, '/');
	size_t addr_len = slash != NULL ? (size_t)(slash - s) : strlen(s);
	uint64_t prefix;
	unsigned max;
	int family;

	if (addr_len >= sizeof(text))
		return ph_error_set(err, "not an IPv4 or IPv6 address");
	memcpy(text, s, addr_len);
	text[addr_len] = '\0';
	family = addr_parse(text, out->addr);
	if (family == 0)
		return ph_error_set(err, "not an IPv4 or IPv6 address");
	max = family == 4 ? 32 : 128;
	if (slash == NULL) {
		prefix = max;
	} else if (ph_parse_uint(slash + 1, 0, max, &prefix) < 0) {
		return ph_error_set(err, "the prefix after '/' must be a "
				    "number from 0 to %u", max);
	}
	out->prefix = (unsigned)prefix + (family == 4 ? V4_MAPPED_PREFIX : 0);
	if (!host_bits_zero(out->addr, out->prefix))
		return ph_error_set(err, "bits are set past the /%u prefix "
				    "(write the network address)",
				    (unsigned)prefix);
	return 0;
}

void
ph_acl_add(struct ph_acl *acl, const struct ph_cidr *net)
{
	acl->nets = ph_xrealloc(acl->nets, (acl->n + 1) * sizeof(*acl->nets));
	acl->nets[acl->n++] = *net;
}

bool
ph_acl_match(const struct ph_acl *acl, const uint8_t addr[16])
{
	for (size_t i = 0; i < acl->n; i++)
		if (prefix_equal(addr, acl->nets[i].addr, acl->nets[i].prefix))
			return true;
	return false;
}

void
ph_acl_clear(struct ph_acl *acl)
{
	if (acl == NULL)
		return;
	ph_free(&acl->nets);
	acl->n = 0;
}

/* Parse the entry [p, p+len) of an X-Forwarded-For list, trimmed of
 * spaces and tabs. Returns 0 or -1. */
static int
xff_entry(const char *p, size_t len, uint8_t out[16])
{
	char text[INET6_ADDRSTRLEN + 1];

	while (len > 0 && (*p == ' ' || *p == '\t')) {
		p++;
		len--;
	}
	while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
		len--;
	if (len == 0 || len >= sizeof(text))
		return -1;
	memcpy(text, p, len);
	text[len] = '\0';
	return ph_addr_parse(text, out);
}

int
ph_client_addr(const char *remote_addr, const char *xff,
	       const struct ph_acl *trusted, uint8_t out[16])
{
	const char *end;
	bool found = false;

	if (remote_addr == NULL || ph_addr_parse(remote_addr, out) < 0)
		return -1;
	if (xff == NULL || !ph_acl_match(trusted, out))
		return 0;
	/* Every entry is checked, right to left; the client is the first
	 * one (from the right) that is not a trusted proxy, else the
	 * left-most entry. */
	end = xff + strlen(xff);
	for (;;) {
		const char *start = end;
		uint8_t a[16];

		while (start > xff && start[-1] != ',')
			start--;
		if (xff_entry(start, (size_t)(end - start), a) < 0)
			return -1;
		if (!found) {
			memcpy(out, a, 16);
			found = !ph_acl_match(trusted, a);
		}
		if (start == xff)
			return 0;
		end = start - 1;
	}
}
