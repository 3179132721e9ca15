/* test-verify.c - HMAC (RFC 4231 / RFC 2202 vectors), hex signature
 * matching with rotated secrets, constant-time credential equality.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#include "config.h"

#include <string.h>

#include "test.h"
#include "util.h"
#include "verify.h"

void test_verify(void);

/* A secret over static bytes (the tests never clear these). */
static struct ph_secret
mksecret(const char *s, size_t len)
{
	struct ph_secret k = { (uint8_t *)(uintptr_t)s, len };

	return k;
}

static void
test_digest_names(void)
{
	static const struct {
		const char *name;
		int ret;
		enum ph_digest d;
		size_t size;
	} rows[] = {
		{ "sha1", 0, PH_SHA1, 20 },
		{ "sha256", 0, PH_SHA256, 32 },
		{ "SHA256", 0, PH_SHA256, 32 },
		{ "Sha512", 0, PH_SHA512, 64 },
		{ "sha-256", -1, PH_SHA1, 0 },
		{ "md5", -1, PH_SHA1, 0 },
		{ "", -1, PH_SHA1, 0 },
	};

	test_begin("verify: digest names and sizes");
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++) {
		enum ph_digest d = (enum ph_digest)-1;

		test_assert_idx(ph_digest_parse(rows[i].name, &d) ==
				rows[i].ret, i);
		if (rows[i].ret == 0) {
			test_assert_idx(d == rows[i].d, i);
			test_assert_idx(ph_digest_size(d) == rows[i].size, i);
			test_assert_idx(ph_strcaseeq(ph_digest_name(d),
						     rows[i].name), i);
		}
	}
	test_assert(ph_digest_parse(NULL, &(enum ph_digest){ PH_SHA1 }) < 0);
	test_end();
}

/* RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?" */
#define JEFE_MSG "what do ya want for nothing?"
#define JEFE256_A "5bdcc146bf60754e6a042426089575c7"
#define JEFE256_B "5a003f089d2739839dec58b964ec3843"
#define JEFE256 JEFE256_A JEFE256_B
#define JEFE512_A "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd6"
#define JEFE512_B "10270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fd"
#define JEFE512_C "caeab1a34d4a6b4b636e070a38bce737"
#define JEFE512 JEFE512_A JEFE512_B JEFE512_C

static void
test_hmac_vectors(void)
{
	static char key6[131];
	static const struct {
		enum ph_digest d;
		const char *key;
		size_t key_len;
		const char *msg;
		const char *mac_hex;
	} rows[] = {
		/* RFC 4231 test case 1 */
		{ PH_SHA256, "\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b"
		  "\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b\x0b", 20, "Hi There",
		  "b0344c61d8db38535ca8afceaf0bf12b"
		  "881dc200c9833da726e9376c2e32cff7" },
		/* RFC 4231 test case 2 */
		{ PH_SHA256, "Jefe", 4, JEFE_MSG, JEFE256 },
		{ PH_SHA512, "Jefe", 4, JEFE_MSG, JEFE512 },
		/* RFC 4231 test case 6: a key longer than the block size */
		{ PH_SHA256, key6, sizeof(key6),
		  "Test Using Larger Than Block-Size Key - Hash Key First",
		  "60e431591ee0b67f0d8a26aacbf5b77f"
		  "8e0bc6213728c5140546040f0ee37f54" },
		{ PH_SHA512, key6, sizeof(key6),
		  "Test Using Larger Than Block-Size Key - Hash Key First",
		  "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1"
		  "121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e52"
		  "95e64f73f63f0aec8b915a985d786598" },
		/* RFC 2202 test case 2 */
		{ PH_SHA1, "Jefe", 4, JEFE_MSG,
		  "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79" },
	};

	memset(key6, 0xaa, sizeof(key6));
	test_begin("verify: HMAC against RFC 4231 and RFC 2202 vectors");
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++) {
		struct ph_secret k = mksecret(rows[i].key, rows[i].key_len);
		uint8_t mac[PH_DIGEST_MAX];
		char hex[2 * PH_DIGEST_MAX + 1];
		size_t mac_len = 0;

		test_assert_idx(ph_hmac(rows[i].d, &k,
					(const uint8_t *)rows[i].msg,
					strlen(rows[i].msg), mac,
					&mac_len) == 0, i);
		test_assert_idx(mac_len == ph_digest_size(rows[i].d), i);
		test_assert_idx(mac_len == strlen(rows[i].mac_hex) / 2, i);
		ph_hex_encode(mac, mac_len, hex);
		test_assert_idx(strcmp(hex, rows[i].mac_hex) == 0, i);
	}
	test_end();
}

static void
test_hex_match(void)
{
	static const struct {
		const char *sig;
		int want;
	} rows[] = {
		{ JEFE256, 0 },
		{ "5BDCC146BF60754E6A042426089575C7"
		  "5A003F089D2739839DEC58B964EC3843", 0 },
		{ "5bdcc146BF60754E6a042426089575c7" JEFE256_B, 0 },
		{ "  " JEFE256 "\r\n", 0 },
		{ "\t" JEFE256 " ", 0 },
		/* one nibble changed, first and last */
		{ "4bdcc146bf60754e6a042426089575c7" JEFE256_B, -1 },
		{ JEFE256_A "5a003f089d2739839dec58b964ec3844", -1 },
		/* one character short, one extra */
		{ JEFE256_A "5a003f089d2739839dec58b964ec384", -1 },
		{ JEFE256 "0", -1 },
		/* white space inside is not trimmed */
		{ JEFE256_A " " JEFE256_B, -1 },
		{ "", -1 },
		{ "   ", -1 },
		/* non-hex of the right length */
		{ JEFE256_A "5a003f089d2739839dec58b964ec384g", -1 },
		{ "zzdcc146bf60754e6a042426089575c7" JEFE256_B, -1 },
		/* a prefix is not accepted */
		{ "sha256=" JEFE256, -1 },
	};
	static const char msg[] = JEFE_MSG;
	const uint8_t *m = (const uint8_t *)msg;
	struct ph_secret k = mksecret("Jefe", 4);
	struct ph_secret k2 = mksecret("jefe", 4);

	test_begin("verify: hex signature match");
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++)
		test_assert_idx(ph_hmac_hex_match(PH_SHA256, &k, 1, m,
						  strlen(msg), rows[i].sig) ==
				rows[i].want, i);
	test_assert(ph_hmac_hex_match(PH_SHA256, &k, 1, m, strlen(msg),
				      NULL) == -1);
	/* the same message under another key, and another message */
	test_assert(ph_hmac_hex_match(PH_SHA256, &k2, 1, m, strlen(msg),
				      JEFE256) == -1);
	test_assert(ph_hmac_hex_match(PH_SHA256, &k, 1, m, strlen(msg) - 1,
				      JEFE256) == -1);
	/* no secrets at all */
	test_assert(ph_hmac_hex_match(PH_SHA256, NULL, 0, m, strlen(msg),
				      JEFE256) == -1);
	test_end();
}

static void
test_digest_lengths(void)
{
	static const char msg[] = JEFE_MSG;
	const uint8_t *m = (const uint8_t *)msg;
	struct ph_secret k = mksecret("Jefe", 4);

	test_begin("verify: the algorithm fixes the signature length");
	test_assert(ph_hmac_hex_match(PH_SHA512, &k, 1, m, strlen(msg),
				      JEFE512) == 0);
	test_assert(ph_hmac_hex_match(PH_SHA256, &k, 1, m, strlen(msg),
				      JEFE512) == -1);
	test_assert(ph_hmac_hex_match(PH_SHA512, &k, 1, m, strlen(msg),
				      JEFE256) == -1);
	/* the first half of a SHA-512 MAC is not a SHA-256 MAC */
	test_assert(ph_hmac_hex_match(PH_SHA256, &k, 1, m, strlen(msg),
				      JEFE512_A "10270cd7ea250554") == -1);
	test_end();
}

static void
test_rotation(void)
{
	static const char body[] = "{\"event\":\"payment.success\"}";
	struct ph_secret secrets[2] = {
		mksecret("old-secret", 10),
		mksecret("new-secret", 10),
	};
	struct ph_secret other = mksecret("other-secret", 12);
	static const struct {
		int signer;	/* 0 old, 1 new, 2 other */
		enum ph_digest d;
		int want;
	} rows[] = {
		{ 1, PH_SHA256, 1 },
		{ 0, PH_SHA256, 0 },
		{ 2, PH_SHA256, -1 },
		{ 1, PH_SHA512, 1 },
		{ 0, PH_SHA512, 0 },
		{ 2, PH_SHA512, -1 },
	};

	test_begin("verify: rotated secrets report the matching position");
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++) {
		const struct ph_secret *key = rows[i].signer < 2 ?
			&secrets[rows[i].signer] : &other;
		uint8_t mac[PH_DIGEST_MAX];
		char hex[2 * PH_DIGEST_MAX + 1];
		size_t mac_len;

		test_assert_idx(ph_hmac(rows[i].d, key, (const uint8_t *)body,
					strlen(body), mac, &mac_len) == 0, i);
		ph_hex_encode(mac, mac_len, hex);
		test_assert_idx(ph_hmac_hex_match(rows[i].d, secrets, 2,
						  (const uint8_t *)body,
						  strlen(body), hex) ==
				rows[i].want, i);
	}
	/* The same secret twice: the first position wins. */
	secrets[0] = secrets[1];
	{
		uint8_t mac[PH_DIGEST_MAX];
		char hex[2 * PH_DIGEST_MAX + 1];
		size_t mac_len;

		test_assert(ph_hmac(PH_SHA256, &secrets[1],
				    (const uint8_t *)body, strlen(body), mac,
				    &mac_len) == 0);
		ph_hex_encode(mac, mac_len, hex);
		test_assert(ph_hmac_hex_match(PH_SHA256, secrets, 2,
					      (const uint8_t *)body,
					      strlen(body), hex) == 0);
	}
	test_end();
}

static void
test_secret_equal(void)
{
	static const struct {
		const char *secret;
		const char *presented;
		size_t presented_len;
		bool want;
	} rows[] = {
		{ "s3cr3t-token", "s3cr3t-token", 12, true },
		{ "s3cr3t-token", "s3cr3t-tokem", 12, false },
		{ "s3cr3t-token", "S3cr3t-token", 12, false },
		{ "s3cr3t-token", "s3cr3t-toke", 11, false },
		{ "s3cr3t-token", "s3cr3t-token!", 13, false },
		{ "s3cr3t-token", "", 0, false },
		/* an embedded NUL is part of the value */
		{ "s3cr3t-token", "s3cr3t-token\0", 13, false },
		{ "a", "a", 1, true },
	};

	test_begin("verify: constant-time secret equality");
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++) {
		struct ph_secret s = mksecret(rows[i].secret,
					      strlen(rows[i].secret));

		test_assert_idx(ph_secret_equal(&s, rows[i].presented,
						rows[i].presented_len) ==
				rows[i].want, i);
		/* the answer does not change on a second call */
		test_assert_idx(ph_secret_equal(&s, rows[i].presented,
						rows[i].presented_len) ==
				rows[i].want, i);
	}
	test_assert(!ph_secret_equal(&(struct ph_secret){ NULL, 0 }, "", 0));
	test_assert(!ph_secret_equal(&(struct ph_secret){
		(uint8_t *)(uintptr_t)"x", 1 }, NULL, 1));
	test_end();
}

static void
test_timestamp_fresh(void)
{
	static const struct {
		const char *text;
		bool want;
		int64_t ts;
	} rows[] = {
		{ "1700000000", true, 1700000000 },	/* now */
		{ "1700000300", true, 1700000300 },	/* +300: the edge */
		{ "1699999700", true, 1699999700 },	/* -300: the edge */
		{ "1700000301", false, 0 },		/* from the future */
		{ "1699999699", false, 0 },		/* stale */
		{ "", false, 0 },
		{ "-1700000000", false, 0 },
		{ "+1700000000", false, 0 },
		{ " 1700000000", false, 0 },
		{ "1700000000 ", false, 0 },
		{ "1700000000.5", false, 0 },
		{ "0x65530F00", false, 0 },
		{ "1700000000000", false, 0 },		/* 13 digits: ms */
		{ "999999999999", false, 0 },		/* 12 digits, far */
	};
	int64_t ts;

	test_begin("verify: signed timestamps within the tolerance");
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++) {
		ts = -1;
		test_assert_idx(ph_timestamp_fresh(rows[i].text,
		    strlen(rows[i].text), PH_TIMESTAMP_TOLERANCE_S,
		    1700000000, &ts) == rows[i].want, i);
		test_assert_idx(ts == (rows[i].want ? rows[i].ts : -1), i);
	}
	/* the length is the caller's: text need not end there */
	test_assert(ph_timestamp_fresh("1700000000,v1=ab", 10, 0, 1700000000,
				       NULL));
	test_assert(!ph_timestamp_fresh(NULL, 0, 300, 1700000000, NULL));
	test_end();
}

void
test_verify(void)
{
	test_digest_names();
	test_hmac_vectors();
	test_hex_match();
	test_digest_lengths();
	test_rotation();
	test_secret_equal();
	test_timestamp_fresh();
}
