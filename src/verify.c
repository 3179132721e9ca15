/* verify.c - HMAC signatures and constant-time credential checks.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#include "config.h"

#include <limits.h>
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "util.h"
#include "verify.h"

static const struct {
	const char *name;
	enum ph_digest d;
	size_t size;
} digests[] = {
	{ "sha1", PH_SHA1, 20 },
	{ "sha256", PH_SHA256, 32 },
	{ "sha512", PH_SHA512, 64 },
};

int
ph_digest_parse(const char *name, enum ph_digest *out)
{
	if (name == NULL)
		return -1;
	for (size_t i = 0; i < PH_N_ELEMENTS(digests); i++) {
		if (ph_strcaseeq(name, digests[i].name)) {
			*out = digests[i].d;
			return 0;
		}
	}
	return -1;
}

const char *
ph_digest_name(enum ph_digest d)
{
	for (size_t i = 0; i < PH_N_ELEMENTS(digests); i++)
		if (digests[i].d == d)
			return digests[i].name;
	return "unknown";
}

size_t
ph_digest_size(enum ph_digest d)
{
	for (size_t i = 0; i < PH_N_ELEMENTS(digests); i++)
		if (digests[i].d == d)
			return digests[i].size;
	return 0;
}

static const EVP_MD *
digest_md(enum ph_digest d)
{
	switch (d) {
	case PH_SHA1:
		return EVP_sha1();
	case PH_SHA256:
		return EVP_sha256();
	case PH_SHA512:
		return EVP_sha512();
	}
	return NULL;
}

static int
hmac_raw(enum ph_digest d, const void *key, size_t key_len,
	 const uint8_t *msg, size_t msg_len, uint8_t *mac, size_t *mac_len_r)
{
	static const uint8_t empty[1];
	const EVP_MD *md = digest_md(d);
	unsigned int len = 0;

	if (md == NULL || key_len > INT_MAX)
		return -1;
	/* HMAC() (one-shot) is not deprecated in OpenSSL 3.0, unlike the
	 * HMAC_CTX functions. Never hand it NULL pointers for empty input. */
	if (HMAC(md, key_len > 0 ? key : empty, (int)key_len,
		 msg_len > 0 ? msg : empty, msg_len, mac, &len) == NULL)
		return -1;
	*mac_len_r = len;
	return 0;
}

int
ph_hmac(enum ph_digest d, const struct ph_secret *key,
	const uint8_t *msg, size_t msg_len, uint8_t *mac, size_t *mac_len_r)
{
	return hmac_raw(d, key->data, key->len, msg, msg_len, mac, mac_len_r);
}

int
ph_hmac_hex_match(enum ph_digest d, const struct ph_secret *secrets,
		  size_t n_secrets, const uint8_t *msg, size_t msg_len,
		  const char *sig_hex)
{
	uint8_t sig[PH_DIGEST_MAX], mac[PH_DIGEST_MAX];
	size_t size = ph_digest_size(d), start, end, mac_len;
	int match = -1;

	if (sig_hex == NULL || size == 0)
		return -1;
	end = strlen(sig_hex);
	for (start = 0; start < end && ph_is_space(sig_hex[start]); start++)
		;
	while (end > start && ph_is_space(sig_hex[end - 1]))
		end--;
	/* The length is public (it follows from the algorithm), so failing
	 * early on a wrong one leaks nothing. */
	if (end - start != 2 * size ||
	    ph_hex_decode(sig_hex + start, end - start, sig, size) < 0)
		return -1;
	/* Try every secret even after a match, so the time taken does not
	 * tell which position matched. */
	for (size_t i = 0; i < n_secrets; i++) {
		if (ph_hmac(d, &secrets[i], msg, msg_len, mac, &mac_len) < 0 ||
		    mac_len != size)
			continue;
		if (CRYPTO_memcmp(mac, sig, size) == 0 && match < 0)
			match = (int)i;
	}
	ph_wipe(mac, sizeof(mac));
	return match;
}

static uint8_t equal_key[32];
static bool equal_key_ok;
static pthread_once_t equal_key_once = PTHREAD_ONCE_INIT;

static void
equal_key_init(void)
{
	equal_key_ok = ph_random(equal_key, sizeof(equal_key)) == 0;
}

bool
ph_secret_equal(const struct ph_secret *secret, const void *presented,
		size_t presented_len)
{
	uint8_t a[PH_DIGEST_MAX], b[PH_DIGEST_MAX];
	size_t a_len, b_len;
	bool eq;

	/* Comparing keyed digests instead of the bytes makes the work depend
	 * only on the lengths, never on where the first difference is, and
	 * the random key keeps the digests themselves unpredictable. */
	pthread_once(&equal_key_once, equal_key_init);
	if (!equal_key_ok || secret == NULL || secret->data == NULL ||
	    (presented == NULL && presented_len > 0))
		return false;
	if (hmac_raw(PH_SHA256, equal_key, sizeof(equal_key), secret->data,
		     secret->len, a, &a_len) < 0 ||
	    hmac_raw(PH_SHA256, equal_key, sizeof(equal_key), presented,
		     presented_len, b, &b_len) < 0)
		return false;
	eq = CRYPTO_memcmp(a, b, a_len) == 0 && a_len == b_len &&
	     secret->len == presented_len;
	ph_wipe(a, sizeof(a));
	ph_wipe(b, sizeof(b));
	return eq;
}

bool
ph_timestamp_fresh(const char *text, size_t len, unsigned tolerance_s,
		   int64_t now, int64_t *ts_r)
{
	int64_t ts = 0;

	if (text == NULL || len == 0 || len > 12)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (text[i] < '0' || text[i] > '9')
			return false;
		ts = ts * 10 + (text[i] - '0');
	}
	if (ts > now + (int64_t)tolerance_s || ts < now - (int64_t)tolerance_s)
		return false;
	if (ts_r != NULL)
		*ts_r = ts;
	return true;
}
