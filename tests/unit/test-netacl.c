/* test-netacl.c - address lists: CIDR syntax, matching (IPv4, IPv6,
 * IPv4-mapped, prefixes 0 and maximal), the client address behind trusted
 * proxies, and the configuration keys that use them.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "conf.h"
#include "netacl.h"

/* An ACL from a space-separated list of CIDRs that must all parse. */
static void
acl_of(struct ph_acl *acl, const char *list)
{
	char *copy = ph_xstrdup(list), *save = NULL;

	memset(acl, 0, sizeof(*acl));
	for (char *t = strtok_r(copy, " ", &save); t != NULL;
	     t = strtok_r(NULL, " ", &save)) {
		struct ph_cidr net;
		struct ph_error err;

		if (!test_assert(ph_cidr_parse(t, &net, &err) == 0))
			fprintf(stderr, "# %s: %s\n", t, err.msg);
		else
			ph_acl_add(acl, &net);
	}
	free(copy);
}

static void
test_cidr_parse(void)
{
	static const struct {
		const char *text;
		const char *fault;	/* NULL: valid; else part of the error */
	} rows[] = {
		{ "192.0.2.7", NULL },
		{ "192.0.2.0/24", NULL },
		{ "0.0.0.0/0", NULL },
		{ "192.0.2.7/32", NULL },
		{ "2001:db8::/32", NULL },
		{ "2001:db8::1", NULL },
		{ "::/0", NULL },
		{ "::1/128", NULL },
		{ "::ffff:192.0.2.0/120", NULL },
		{ "::ffff:0:0/96", NULL },
		{ "", "not an IPv4 or IPv6 address" },
		{ "192.0.2", "not an IPv4 or IPv6 address" },
		{ "192.0.2.256", "not an IPv4 or IPv6 address" },
		{ " 192.0.2.7", "not an IPv4 or IPv6 address" },
		{ "192.0.2.7 ", "not an IPv4 or IPv6 address" },
		{ "example.com", "not an IPv4 or IPv6 address" },
		{ "fe80::1%eth0", "not an IPv4 or IPv6 address" },
		{ "/24", "not an IPv4 or IPv6 address" },
		{ "192.0.2.0/", "from 0 to 32" },
		{ "192.0.2.0/33", "from 0 to 32" },
		{ "192.0.2.0/-1", "from 0 to 32" },
		{ "192.0.2.0/+24", "from 0 to 32" },
		{ "192.0.2.0/24/1", "from 0 to 32" },
		{ "192.0.2.0/ 24", "from 0 to 32" },
		{ "2001:db8::/129", "from 0 to 128" },
		{ "2001:db8::/99999999999999999999", "from 0 to 128" },
		{ "192.0.2.7/24", "bits are set past the /24 prefix" },
		{ "192.0.2.128/24", "bits are set past the /24 prefix" },
		{ "1.0.0.0/0", "bits are set past the /0 prefix" },
		{ "2001:db8::1/64", "bits are set past the /64 prefix" },
		{ "2001:db8:8000::/33", NULL },
		{ "2001:db8:8000::/32", "bits are set past the /32 prefix" },
	};

	test_begin("netacl: CIDR syntax");
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++) {
		struct ph_cidr net;
		struct ph_error err = { "" };
		int r = ph_cidr_parse(rows[i].text, &net, &err);

		if (rows[i].fault == NULL) {
			test_assert_idx(r == 0, i);
		} else {
			test_assert_idx(r == -1, i);
			if (!test_assert_idx(strstr(err.msg, rows[i].fault) !=
					     NULL, i))
				fprintf(stderr, "# got: %s\n", err.msg);
		}
	}
	test_end();
}

static void
test_acl_match(void)
{
	static const struct {
		const char *acl;
		const char *addr;
		bool match;
	} rows[] = {
		{ "192.0.2.0/24", "192.0.2.0", true },
		{ "192.0.2.0/24", "192.0.2.255", true },
		{ "192.0.2.0/24", "192.0.3.0", false },
		{ "192.0.2.0/24", "192.0.1.255", false },
		{ "192.0.2.7", "192.0.2.7", true },
		{ "192.0.2.7", "192.0.2.6", false },
		{ "192.0.2.7/32", "192.0.2.8", false },
		{ "192.0.2.0/25", "192.0.2.127", true },
		{ "192.0.2.0/25", "192.0.2.128", false },
		{ "10.0.0.0/8 192.0.2.0/24", "192.0.2.9", true },
		{ "10.0.0.0/8 192.0.2.0/24", "10.255.0.1", true },
		{ "10.0.0.0/8 192.0.2.0/24", "11.0.0.1", false },
		/* prefix 0 */
		{ "0.0.0.0/0", "203.0.113.1", true },
		{ "0.0.0.0/0", "255.255.255.255", true },
		{ "0.0.0.0/0", "2001:db8::1", false },	/* IPv4 only */
		{ "::/0", "2001:db8::1", true },
		{ "::/0", "192.0.2.1", true },		/* everything */
		/* IPv6 */
		{ "2001:db8::/32", "2001:db8:ffff::1", true },
		{ "2001:db8::/32", "2001:db9::1", false },
		{ "2001:db8::1", "2001:db8::1", true },
		{ "2001:db8::1/128", "2001:db8::2", false },
		{ "2001:db8:8000::/33", "2001:db8:7fff::1", false },
		{ "2001:db8:8000::/33", "2001:db8:8000::1", true },
		{ "2001:db8::/127", "2001:db8::1", true },
		{ "2001:db8::/127", "2001:db8::2", false },
		/* IPv4-mapped IPv6 matches its IPv4 network, and back */
		{ "192.0.2.0/24", "::ffff:192.0.2.7", true },
		{ "192.0.2.0/24", "::ffff:192.0.3.7", false },
		{ "192.0.2.7", "::ffff:c000:207", true },
		{ "::ffff:0:0/96", "192.0.2.7", true },
		{ "::ffff:192.0.2.0/120", "192.0.2.77", true },
		{ "::ffff:192.0.2.0/120", "192.0.3.77", false },
		{ "::ffff:0:0/96", "2001:db8::1", false },
		/* not mapped: ::192.0.2.7 (deprecated compatible form) */
		{ "192.0.2.0/24", "::192.0.2.7", false },
		{ "2001:db8::/32", "192.0.2.7", false },
	};

	test_begin("netacl: matching");
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++) {
		struct ph_acl acl;
		uint8_t a[16];

		acl_of(&acl, rows[i].acl);
		test_assert_idx(ph_addr_parse(rows[i].addr, a) == 0, i);
		test_assert_idx(ph_acl_match(&acl, a) == rows[i].match, i);
		ph_acl_clear(&acl);
	}
	test_end();
}

static void
test_client_addr(void)
{
	static const char *const trusted_list = "10.0.0.0/8 2001:db8:1::/48";
	static const struct {
		const char *remote;	/* NULL: REMOTE_ADDR absent */
		const char *xff;	/* NULL: no X-Forwarded-For */
		const char *client;	/* NULL: unknown */
	} rows[] = {
		/* the peer is the client unless it is a trusted proxy */
		{ "192.0.2.7", NULL, "192.0.2.7" },
		{ "192.0.2.7", "198.51.100.1", "192.0.2.7" },
		{ "192.0.2.7", "garbage", "192.0.2.7" },
		{ "::ffff:192.0.2.7", NULL, "192.0.2.7" },
		{ NULL, NULL, NULL },
		{ "", NULL, NULL },
		{ "localhost", NULL, NULL },
		{ "192.0.2.7:443", NULL, NULL },
		/* behind a trusted proxy: right-most untrusted entry */
		{ "10.0.0.1", NULL, "10.0.0.1" },
		{ "10.0.0.1", "198.51.100.1", "198.51.100.1" },
		{ "10.0.0.1", "203.0.113.9, 198.51.100.1", "198.51.100.1" },
		{ "10.0.0.1", "203.0.113.9, 198.51.100.1, 10.2.3.4",
		  "198.51.100.1" },
		{ "10.0.0.1", "203.0.113.9,198.51.100.1,10.2.3.4,10.9.9.9",
		  "198.51.100.1" },
		{ "10.0.0.1", " \t198.51.100.1\t ", "198.51.100.1" },
		{ "10.0.0.1", "10.1.1.1, 10.2.2.2", "10.1.1.1" },
		{ "::ffff:10.0.0.1", "198.51.100.1", "198.51.100.1" },
		{ "2001:db8:1::5", "2001:db8:2::9", "2001:db8:2::9" },
		{ "2001:db8:1::5", "::ffff:198.51.100.1, 2001:db8:1::6",
		  "198.51.100.1" },
		/* garbage anywhere in a header that is read: unknown */
		{ "10.0.0.1", "", NULL },
		{ "10.0.0.1", " ", NULL },
		{ "10.0.0.1", "unknown", NULL },
		{ "10.0.0.1", "198.51.100.1:5000", NULL },
		{ "10.0.0.1", "[2001:db8::1]", NULL },
		{ "10.0.0.1", "198.51.100.1,", NULL },
		{ "10.0.0.1", ",198.51.100.1", NULL },
		{ "10.0.0.1", "198.51.100.1,,10.2.2.2", NULL },
		{ "10.0.0.1", "junk, 198.51.100.1", NULL },
		{ "10.0.0.1", "198.51.100.1 10.2.2.2", NULL },
		{ "10.0.0.1", "for=198.51.100.1", NULL },
	};
	struct ph_acl trusted;

	test_begin("netacl: client address and X-Forwarded-For");
	acl_of(&trusted, trusted_list);
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++) {
		uint8_t got[16], want[16];
		int r = ph_client_addr(rows[i].remote, rows[i].xff, &trusted,
				       got);

		if (rows[i].client == NULL) {
			test_assert_idx(r == -1, i);
			continue;
		}
		test_assert_idx(r == 0, i);
		test_assert_idx(ph_addr_parse(rows[i].client, want) == 0, i);
		test_assert_idx(memcmp(got, want, 16) == 0, i);
	}
	ph_acl_clear(&trusted);
	ph_acl_clear(&trusted);
	test_end();
}

#define TOP "\"spool_dir\": \"/s\", \"state_dir\": \"/t\""
#define ROUTE(extra) "{\"name\": \"r1\", \"path\": \"/r\", " \
	"\"provider\": \"ngn-gateway\", \"secrets\": [\"lit-secret\"], " \
	"\"amount_unit\": \"minor\"" extra "}"

static bool
faults_have(const struct ph_faults *f, const char *s)
{
	for (size_t i = 0; i < f->count; i++)
		if (strstr(f->lines[i], s) != NULL)
			return true;
	return false;
}

static void
test_netacl_conf(void)
{
	static const struct {
		const char *text;
		const char *fault;	/* NULL: valid */
	} rows[] = {
		{ "{" TOP ", \"routes\": [" ROUTE("") "]}", NULL },
		{ "{" TOP ", \"read_timeout_seconds\": 1, \"trusted_proxies\": "
		  "[\"10.0.0.0/8\", \"::1\"], \"routes\": [" ROUTE(
		  ", \"allow_from\": [\"192.0.2.0/24\", \"2001:db8::/32\"]")
		  "]}", NULL },
		{ "{" TOP ", \"read_timeout_seconds\": 0, \"routes\": ["
		  ROUTE("") "]}",
		  "key 'read_timeout_seconds': must be an integer from 1 to "
		  "3600" },
		{ "{" TOP ", \"read_timeout_seconds\": 3601, \"routes\": ["
		  ROUTE("") "]}", "key 'read_timeout_seconds'" },
		{ "{" TOP ", \"read_timeout_seconds\": \"30\", \"routes\": ["
		  ROUTE("") "]}", "key 'read_timeout_seconds'" },
		{ "{" TOP ", \"trusted_proxies\": \"10.0.0.0/8\", \"routes\": ["
		  ROUTE("") "]}",
		  "key 'trusted_proxies': must be a non-empty array" },
		{ "{" TOP ", \"trusted_proxies\": [\"10.0.0.1/8\"], "
		  "\"routes\": [" ROUTE("") "]}",
		  "key 'trusted_proxies': [0] '10.0.0.1/8': bits are set past "
		  "the /8 prefix" },
		{ "{" TOP ", \"routes\": [" ROUTE(", \"allow_from\": []") "]}",
		  "route 'r1' (#1): key 'allow_from': must be a non-empty "
		  "array" },
		{ "{" TOP ", \"routes\": [" ROUTE(", \"allow_from\": "
		  "[\"192.0.2.0/24\", 5]") "]}",
		  "route 'r1' (#1): key 'allow_from': [1]: must be a string" },
		{ "{" TOP ", \"routes\": [" ROUTE(", \"allow_from\": "
		  "[\"192.0.2.0/24\", \"192.0.2.300\"]") "]}",
		  "route 'r1' (#1): key 'allow_from': [1] '192.0.2.300': not "
		  "an IPv4 or IPv6 address" },
		{ "{" TOP ", \"routes\": [" ROUTE(", \"allow_from\": "
		  "[\"2001:db8::/200\"]") "]}",
		  "route 'r1' (#1): key 'allow_from': [0] '2001:db8::/200': "
		  "the prefix after '/' must be a number from 0 to 128" },
	};

	test_begin("netacl: configuration keys");
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++) {
		struct ph_faults faults = { 0 };
		struct ph_config *cfg;

		cfg = ph_config_load_text("t.json", rows[i].text,
					  strlen(rows[i].text), &faults);
		if (rows[i].fault == NULL) {
			test_assert_idx(cfg != NULL && faults.count == 0, i);
		} else {
			test_assert_idx(cfg == NULL && faults.count == 1, i);
			if (!test_assert_idx(faults_have(&faults,
							 rows[i].fault), i))
				for (size_t j = 0; j < faults.count; j++)
					fprintf(stderr, "# %s\n",
						faults.lines[j]);
		}
		if (i == 0 && cfg != NULL) {
			test_assert(cfg->read_timeout_s == 30);
			test_assert(cfg->trusted_proxies.n == 0);
			test_assert(!cfg->routes[0].has_allow_from);
		}
		if (i == 1 && cfg != NULL) {
			test_assert(cfg->read_timeout_s == 1);
			test_assert(cfg->trusted_proxies.n == 2);
			test_assert(cfg->routes[0].has_allow_from &&
				    cfg->routes[0].allow_from.n == 2);
		}
		ph_config_free(&cfg);
		ph_faults_clear(&faults);
	}
	test_end();
}

void
test_netacl(void)
{
	test_cidr_parse();
	test_acl_match();
	test_client_addr();
	test_netacl_conf();
}
