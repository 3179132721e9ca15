/* test-standard-webhooks.c - the Standard Webhooks adapter: the
 * specification's libraries' test vectors, Ed25519 (RFC 8032 keys),
 * base64 with and without padding, and the route keys' faults.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "prov-standard-webhooks.h"
#include "test.h"

void test_standard_webhooks(void);

#define TOP "\"spool_dir\": \"/var/spool/payhook\", " \
	"\"state_dir\": \"/var/lib/payhook\""

/* The vector of the standard-webhooks libraries' tests ("sign function
 * works", libraries/javascript/src/webhook.test.ts and
 * libraries/python/tests/test_webhooks.py). */
#define V_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define V_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define V_TS "1614265330"
#define V_TS_N INT64_C(1614265330)
#define V_BODY "{\"test\": 2432232314}"
#define V_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
/* The python test's wrong signature: the vector's last character
 * changed. */
#define V_SIG_BAD "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="
/* RFC 8032 section 7.1 TEST 1's public key, and its Ed25519 signature
 * (made with the test's secret key by Node's crypto.sign) of the
 * vector's "{id}.{timestamp}.{body}". */
#define V_PK "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
#define V_SIG_A "v1a,fldxM4gAKugP6nnt1hdz3sgGfZ6d99nzrMFnZOELIxbzEHoVmAb2" \
	"ADpkJK7zgPePmPsle0zV9jSeGlHFG2NVAw=="

static struct ph_config *
load(const char *route_keys)
{
	struct ph_faults faults = { 0 };
	struct ph_config *cfg;
	char *text;

	text = ph_xasprintf("{" TOP ", \"routes\": [{\"name\": \"sw\", "
			    "\"path\": \"/sw\", \"provider\": "
			    "\"standard-webhooks\", %s}]}", route_keys);
	cfg = ph_config_load_text("sw.json", text, strlen(text), &faults);
	for (size_t i = 0; i < faults.count; i++)
		printf("# fault: %s\n", faults.lines[i]);
	ph_faults_clear(&faults);
	free(text);
	return cfg;
}

static bool
verify(const struct ph_config *cfg, const char *id, const char *ts,
       const char *sigs, const char *body, int64_t now, int *index_r)
{
	struct ph_auth auth = { NULL, -1 };
	bool ok;

	ok = ph_swh_verify(&cfg->routes[0], id, ts, sigs,
			   (const uint8_t *)body, strlen(body), now, &auth);
	*index_r = auth.secret_index;
	return ok;
}

static void
test_vectors(void)
{
	static const struct {
		const char *keys;
		const char *id, *ts, *sigs, *body;
		int64_t now;
		int index;		/* matching secret, -1: refused */
	} rows[] = {
		/* 0: the vector, at its own time and at the tolerance's
		 * edges either way */
		{ "\"secrets\": [\"" V_SECRET "\"]", V_ID, V_TS, V_SIG, V_BODY,
		  V_TS_N, 0 },
		{ "\"secrets\": [\"" V_SECRET "\"]", V_ID, V_TS, V_SIG, V_BODY,
		  V_TS_N + 300, 0 },
		{ "\"secrets\": [\"" V_SECRET "\"]", V_ID, V_TS, V_SIG, V_BODY,
		  V_TS_N - 300, 0 },
		/* 3: one second beyond, stale and from the future */
		{ "\"secrets\": [\"" V_SECRET "\"]", V_ID, V_TS, V_SIG, V_BODY,
		  V_TS_N + 301, -1 },
		{ "\"secrets\": [\"" V_SECRET "\"]", V_ID, V_TS, V_SIG, V_BODY,
		  V_TS_N - 301, -1 },
		/* 5: tolerance_seconds narrows it */
		{ "\"secrets\": [\"" V_SECRET "\"], \"tolerance_seconds\": 10",
		  V_ID, V_TS, V_SIG, V_BODY, V_TS_N + 10, 0 },
		{ "\"secrets\": [\"" V_SECRET "\"], \"tolerance_seconds\": 10",
		  V_ID, V_TS, V_SIG, V_BODY, V_TS_N + 11, -1 },
		/* 7: the python test's invalid signature; the JS test's
		 * partial and empty ones */
		{ "\"secrets\": [\"" V_SECRET "\"]", V_ID, V_TS, V_SIG_BAD,
		  V_BODY, V_TS_N, -1 },
		{ "\"secrets\": [\"" V_SECRET "\"]", V_ID, V_TS, "v1,g0hM9",
		  V_BODY, V_TS_N, -1 },
		{ "\"secrets\": [\"" V_SECRET "\"]", V_ID, V_TS, "v1,", V_BODY,
		  V_TS_N, -1 },
		{ "\"secrets\": [\"" V_SECRET "\"]", V_ID, V_TS,
		  "v1,dawfeoifkpqwoekfpqoekf", V_BODY, V_TS_N, -1 },
		/* 11: the multi-signature test: wrong v1, a v2, the valid
		 * one, another wrong v1 */
		{ "\"secrets\": [\"" V_SECRET "\"]", V_ID, V_TS,
		  "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= "
		  "v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= " V_SIG
		  " v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=",
		  V_BODY, V_TS_N, 0 },
		/* 12: the valid signature under another version */
		{ "\"secrets\": [\"" V_SECRET "\"]", V_ID, V_TS,
		  "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", V_BODY,
		  V_TS_N, -1 },
		/* 13: one byte changed in the body, the id, the timestamp */
		{ "\"secrets\": [\"" V_SECRET "\"]", V_ID, V_TS, V_SIG,
		  "{\"test\": 2432232315}", V_TS_N, -1 },
		{ "\"secrets\": [\"" V_SECRET "\"]", "msg_p5jXN8AQM9LWM0D4loKWxJeK",
		  V_TS, V_SIG, V_BODY, V_TS_N, -1 },
		{ "\"secrets\": [\"" V_SECRET "\"]", V_ID, "1614265331", V_SIG,
		  V_BODY, V_TS_N, -1 },
		/* 16: missing headers, an empty id, a timestamp that is not
		 * digits (the SDK's "hello") */
		{ "\"secrets\": [\"" V_SECRET "\"]", NULL, V_TS, V_SIG, V_BODY,
		  V_TS_N, -1 },
		{ "\"secrets\": [\"" V_SECRET "\"]", V_ID, NULL, V_SIG, V_BODY,
		  V_TS_N, -1 },
		{ "\"secrets\": [\"" V_SECRET "\"]", V_ID, V_TS, NULL, V_BODY,
		  V_TS_N, -1 },
		{ "\"secrets\": [\"" V_SECRET "\"]", "", V_TS, V_SIG, V_BODY,
		  V_TS_N, -1 },
		{ "\"secrets\": [\"" V_SECRET "\"]", V_ID, "hello", V_SIG,
		  V_BODY, V_TS_N, -1 },
		/* 21: rotation: the second secret matches */
		{ "\"secrets\": [\"whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\", \""
		  V_SECRET "\"]", V_ID, V_TS, V_SIG, V_BODY, V_TS_N, 1 },
		/* 22: Ed25519 alone, and after a wrong v1 */
		{ "\"secrets\": [\"" V_PK "\"]", V_ID, V_TS, V_SIG_A, V_BODY,
		  V_TS_N, 0 },
		{ "\"secrets\": [\"" V_SECRET "\", \"" V_PK "\"]", V_ID, V_TS,
		  V_SIG_BAD " " V_SIG_A, V_BODY, V_TS_N, 1 },
		/* 24: the spec's example header: v1 and v1a side by side */
		{ "\"secrets\": [\"" V_PK "\"]", V_ID, V_TS, V_SIG " " V_SIG_A,
		  V_BODY, V_TS_N, 0 },
		/* 25: the Ed25519 signature of another body; a v1a whose
		 * bytes are a v1's; a v1 given to a whpk_ route */
		{ "\"secrets\": [\"" V_PK "\"]", V_ID, V_TS, V_SIG_A,
		  "{\"test\": 2432232315}", V_TS_N, -1 },
		{ "\"secrets\": [\"" V_PK "\"]", V_ID, V_TS,
		  "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", V_BODY,
		  V_TS_N, -1 },
		{ "\"secrets\": [\"" V_PK "\"]", V_ID, V_TS, V_SIG, V_BODY,
		  V_TS_N, -1 },
		/* 28: tolerance_seconds at its largest, a day */
		{ "\"secrets\": [\"" V_SECRET "\"], "
		  "\"tolerance_seconds\": 86400", V_ID, V_TS, V_SIG, V_BODY,
		  V_TS_N - 86400, 0 },
		/* 29: extra spaces between entries are skipped */
		{ "\"secrets\": [\"" V_SECRET "\"]", V_ID, V_TS,
		  "  " V_SIG_BAD "   " V_SIG "  ", V_BODY, V_TS_N, 0 },
		/* 30: 17 entries are too many, even with the valid one */
		{ "\"secrets\": [\"" V_SECRET "\"]", V_ID, V_TS,
		  "v1,x v1,x v1,x v1,x v1,x v1,x v1,x v1,x "
		  "v1,x v1,x v1,x v1,x v1,x v1,x v1,x v1,x " V_SIG,
		  V_BODY, V_TS_N, -1 },
		/* 31: 16 are not */
		{ "\"secrets\": [\"" V_SECRET "\"]", V_ID, V_TS,
		  "v1,x v1,x v1,x v1,x v1,x v1,x v1,x v1,x "
		  "v1,x v1,x v1,x v1,x v1,x v1,x v1,x " V_SIG,
		  V_BODY, V_TS_N, 0 },
	};

	test_begin("standard-webhooks: the libraries' vectors, Ed25519, "
		   "tolerance, rotation");
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++) {
		struct ph_config *cfg = load(rows[i].keys);
		int index = -2;
		bool ok;

		test_assert_idx(cfg != NULL, i);
		if (cfg == NULL)
			continue;
		ok = verify(cfg, rows[i].id, rows[i].ts, rows[i].sigs,
			    rows[i].body, rows[i].now, &index);
		test_assert_idx(ok == (rows[i].index >= 0), i);
		test_assert_idx(index == rows[i].index, i);
		ph_config_free(&cfg);
	}
	test_end();
}

/* The python test's unpadded secrets, each with the signature the SDK
 * makes from its padded form. */
static void
test_unpadded_secrets(void)
{
	static const struct {
		const char *unpadded, *padded;
	} rows[] = {
		{ "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS=" },
		{ "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBr",
		  "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwBr==" },
	};

	test_begin("standard-webhooks: secrets with and without padding "
		   "decode alike");
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++) {
		uint8_t a[64], b[64];
		long na, nb;

		na = ph_swh_base64_decode(rows[i].unpadded,
					  strlen(rows[i].unpadded), a,
					  sizeof(a));
		nb = ph_swh_base64_decode(rows[i].padded,
					  strlen(rows[i].padded), b,
					  sizeof(b));
		test_assert_idx(na > 0 && na == nb, i);
		test_assert_idx(na > 0 && memcmp(a, b, (size_t)na) == 0, i);
	}
	test_end();
}

static void
test_base64(void)
{
	static const struct {
		const char *in;
		long n;
		const char *out;
	} rows[] = {
		{ "", 0, "" },
		{ "Zg==", 1, "f" },
		{ "Zg", 1, "f" },
		{ "Zm8=", 2, "fo" },
		{ "Zm8", 2, "fo" },
		{ "Zm9v", 3, "foo" },
		{ "Zm9vYmFy", 6, "foobar" },
		{ "Zg=", -1, NULL },		/* half the padding */
		{ "Z", -1, NULL },		/* no encoding is 1 char long */
		{ "Zm9v=", -1, NULL },
		{ "Zm=9v", -1, NULL },		/* '=' inside */
		{ "Zm9v YmFy", -1, NULL },	/* white space */
		{ "Zm9-", -1, NULL },		/* base64url is not base64 */
		{ "Zg===", -1, NULL },
		{ "Zm9vYmFyYmF6", -1, NULL },	/* 9 bytes: more than out */
	};

	test_begin("standard-webhooks: base64 decoding");
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++) {
		uint8_t out[8];
		long n = ph_swh_base64_decode(rows[i].in, strlen(rows[i].in),
					      out, sizeof(out));

		test_assert_idx(n == rows[i].n, i);
		if (n > 0 && rows[i].n > 0)
			test_assert_idx(memcmp(out, rows[i].out,
					       (size_t)n) == 0, i);
	}
	test_end();
}

static void
test_faults(void)
{
	static const struct {
		const char *keys;
		const char *fault;	/* substring of the one fault */
	} rows[] = {
		{ "\"allow_unauthenticated\": true",
		  "key 'secrets': missing" },
		{ "\"secrets\": [\"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]",
		  "secrets[0]: must begin with whsec_" },
		{ "\"secrets\": [\"" V_SECRET "\", \"whsec_\"]",
		  "secrets[1]: a whsec_ secret must be followed" },
		{ "\"secrets\": [\"whsec_abc!\"]",
		  "secrets[0]: a whsec_ secret must be followed" },
		{ "\"secrets\": [\"whpk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]",
		  "secrets[0]: a whpk_ key must be followed by a 32-byte" },
		{ "\"secrets\": [\"whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"]",
		  "secrets[0]: a whsk_ key is the sender's private" },
		{ "\"secrets\": [\"" V_SECRET "\"], \"tolerance_seconds\": 0",
		  "key 'tolerance_seconds': must be an integer from 1 to 86400" },
		{ "\"secrets\": [\"" V_SECRET "\"], \"tolerance_seconds\": "
		  "86401", "key 'tolerance_seconds': must be an integer" },
		{ "\"secrets\": [\"" V_SECRET "\"], \"tolerance_seconds\": "
		  "\"300\"", "key 'tolerance_seconds': must be an integer" },
		{ "\"secrets\": [\"" V_SECRET "\"], \"tolerance_seconds\": 1.5",
		  "key 'tolerance_seconds': must be an integer" },
		{ "\"secrets\": [\"" V_SECRET "\"], \"type_map\": [1]",
		  "key 'type_map': must be an object" },
		{ "\"secrets\": [\"" V_SECRET "\"], \"type_map\": "
		  "{\"invoice.paid\": \"payment.succeeded\", "
		  "\"invoice.failed\": \"payment.failure\"}",
		  "key 'type_map.invoice.failed': must be one of payhook's" },
		{ "\"secrets\": [\"" V_SECRET "\"], \"type_map\": "
		  "{\"invoice.paid\": 1}",
		  "key 'type_map.invoice.paid': must be one of payhook's" },
		{ "\"secrets\": [\"" V_SECRET "\"], \"amount\": \"data.amount\"",
		  "give all three or none" },
		{ "\"secrets\": [\"" V_SECRET "\"], \"amount\": \"data.amount\", "
		  "\"currency\": \"data.currency\", \"amount_unit\": \"cents\"",
		  "key 'amount_unit': must be \"major\" or \"minor\"" },
		{ "\"secrets\": [\"" V_SECRET "\"], \"amount\": \"\", "
		  "\"currency\": \"data.currency\", \"amount_unit\": \"minor\"",
		  "must be dotted JSON paths" },
	};

	test_begin("standard-webhooks: route keys' faults (--check-config)");
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++) {
		struct ph_faults faults = { 0 };
		struct ph_config *cfg;
		char *text;

		text = ph_xasprintf("{" TOP ", \"routes\": [{\"name\": "
				    "\"sw\", \"path\": \"/sw\", \"provider\": "
				    "\"standard-webhooks\", %s}]}",
				    rows[i].keys);
		cfg = ph_config_load_text("f.json", text, strlen(text),
					  &faults);
		test_assert_idx(cfg == NULL, i);
		test_assert_idx(faults.count == 1, i);
		test_assert_idx(faults.count >= 1 &&
				strstr(faults.lines[0], rows[i].fault) != NULL,
				i);
		/* No fault ever shows a secret's text. */
		for (size_t f = 0; f < faults.count; f++)
			test_assert_idx(strstr(faults.lines[f],
					       "MfKQ9r8GKYqr") == NULL, i);
		if (faults.count != 1 || strstr(faults.lines[0],
						rows[i].fault) == NULL)
			for (size_t f = 0; f < faults.count; f++)
				printf("# %zu: %s\n", i, faults.lines[f]);
		ph_faults_clear(&faults);
		ph_config_free(&cfg);
		free(text);
	}
	test_end();
}

static void
test_valid_keys(void)
{
	struct ph_config *cfg;

	test_begin("standard-webhooks: a route with every key loads");
	cfg = load("\"secrets\": [\"" V_SECRET "\", \"" V_PK "\"], "
		   "\"tolerance_seconds\": 86400, \"type_map\": "
		   "{\"invoice.paid\": \"payment.succeeded\", "
		   "\"x\": \"unknown\"}, \"amount\": \"data.amount\", "
		   "\"currency\": \"data.currency\", \"amount_unit\": "
		   "\"minor\"");
	test_assert(cfg != NULL);
	ph_config_free(&cfg);
	test_end();
}

void
test_standard_webhooks(void)
{
	test_vectors();
	test_unpadded_secrets();
	test_base64();
	test_faults();
	test_valid_keys();
}
