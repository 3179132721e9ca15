/* test-ids.c - ULIDs, timestamps, the normalized event's JSON and the
 * helpers adapters fill it with (dedup keys, ids, amounts, times).
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <json-c/json.h>

#include "test.h"
#include "event.h"
#include "ids.h"
#include "provider.h"
#include "request.h"

/* Called by the runner, which declares the groups from tests.inc. */
void test_ids(void);

#define CROCKFORD "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

static bool
ulid_well_formed(const char *id)
{
	return strlen(id) == PH_ULID_LEN &&
	    strspn(id, CROCKFORD) == PH_ULID_LEN && id[0] <= '7';
}

static uint64_t
tv_ms(const struct timeval *tv)
{
	return (uint64_t)tv->tv_sec * 1000 + (uint64_t)tv->tv_usec / 1000;
}

static void
test_ulid_encode(void)
{
	static const uint8_t zero[PH_ULID_RAND_BYTES];
	static const uint8_t ones[PH_ULID_RAND_BYTES] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	};
	static const uint8_t seq[PH_ULID_RAND_BYTES] = {
		0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x00, 0x10,
	};
	char id[PH_ULID_LEN + 1];
	uint64_t ms;

	test_begin("ulid encode known vectors");
	/* Time part from the ULID spec's example 01ARYZ6S41TSV4RRFFQ69G5FAV. */
	ph_ulid_encode(UINT64_C(1469918176385), zero, id);
	test_assert(strcmp(id, "01ARYZ6S410000000000000000") == 0);
	ph_ulid_encode(UINT64_C(1469918176385), ones, id);
	test_assert(strcmp(id, "01ARYZ6S41ZZZZZZZZZZZZZZZZ") == 0);
	ph_ulid_encode((UINT64_C(1) << 48) - 1, ones, id);
	test_assert(strcmp(id, "7ZZZZZZZZZZZZZZZZZZZZZZZZZ") == 0);
	ph_ulid_encode(0, zero, id);
	test_assert(strcmp(id, "00000000000000000000000000") == 0);
	/* 0x0123456789 = 00000 00100 10001 10100 01010 11001 11100 01001,
	 * 0xabcdef0010 = 10101 01111 00110 11110 11110 00000 00000 10000 */
	ph_ulid_encode(1, seq, id);
	test_assert(strcmp(id, "000000000104HMASW9NF6YY00G") == 0);
	test_assert(ph_ulid_time_ms("01ARYZ6S41TSV4RRFFQ69G5FAV", &ms) == 0);
	test_assert(ms == UINT64_C(1469918176385));
	test_assert(ph_ulid_time_ms("01aryz6s41tsv4rrffq69g5fav", &ms) == 0);
	test_assert(ms == UINT64_C(1469918176385));
	test_end();
}

static void
test_ulid_time_ms_invalid(void)
{
	static const char *const bad[] = {
		"",
		"01ARYZ6S41TSV4RRFFQ69G5FA",	/* 25 */
		"01ARYZ6S41TSV4RRFFQ69G5FAVX",	/* 27 */
		"01ARYZ6S41TSV4RRFFQ69G5FAI",	/* I is not Crockford */
		"01ARYZ6S41TSV4RRFFQ69G5FAU",	/* nor U */
		"01ARYZ6S41TSV4RRFFQ69G5FA-",
		"81ARYZ6S41TSV4RRFFQ69G5FAV",	/* over 128 bits */
		"01ARYZ6S41 SV4RRFFQ69G5FAV",
	};
	uint64_t ms = 42;

	test_begin("ulid time of malformed ids");
	for (size_t i = 0; i < PH_N_ELEMENTS(bad); i++)
		test_assert_idx(ph_ulid_time_ms(bad[i], &ms) == -1, i);
	test_assert(ms == 42);
	test_end();
}

static void
test_ulid_generate(void)
{
	char prev[PH_ULID_LEN + 1], id[PH_ULID_LEN + 1];
	struct timeval tv, back;
	uint64_t ms, first_ms = 0;
	bool ok = true;

	test_begin("ulid generate: form, time round trip, monotonic");
	gettimeofday(&tv, NULL);
	test_assert(ph_ulid_generate(&tv, prev) == 0);
	test_assert(ulid_well_formed(prev));
	test_assert(ph_ulid_time_ms(prev, &first_ms) == 0);
	test_assert(first_ms == tv_ms(&tv));

	/* One millisecond, many ids: the random part counts up. */
	for (int i = 0; i < 10000 && ok; i++) {
		ok = ph_ulid_generate(&tv, id) == 0 && ulid_well_formed(id) &&
		    strcmp(prev, id) < 0 && ph_ulid_time_ms(id, &ms) == 0 &&
		    ms == first_ms;
		memcpy(prev, id, sizeof(id));
	}
	test_assert(ok);

	/* The clock steps back ten seconds: ids keep increasing, with the
	 * last time. */
	back = tv;
	back.tv_sec -= 10;
	test_assert(ph_ulid_generate(&back, id) == 0);
	test_assert(strcmp(prev, id) < 0);
	test_assert(ph_ulid_time_ms(id, &ms) == 0 && ms == first_ms);
	memcpy(prev, id, sizeof(id));

	/* Real time, 10000 ids. */
	for (int i = 0; i < 10000 && ok; i++) {
		gettimeofday(&tv, NULL);
		ok = ph_ulid_generate(&tv, id) == 0 && ulid_well_formed(id) &&
		    strcmp(prev, id) < 0;
		memcpy(prev, id, sizeof(id));
	}
	test_assert(ok);

	/* Out of the 48-bit range or before the epoch. */
	tv.tv_sec = (time_t)((UINT64_C(1) << 48) / 1000 + 1);
	tv.tv_usec = 0;
	test_assert(ph_ulid_generate(&tv, id) == -1);
	tv.tv_sec = -1;
	test_assert(ph_ulid_generate(&tv, id) == -1);
	test_end();
}

static void
test_time_format(void)
{
	static const struct {
		time_t sec;
		suseconds_t usec;
		const char *rfc3339;
		const char *stamp;
	} rows[] = {
		/* 1795255200 = 20778 days + 36000 s; day 20778 is
		 * 2026-01-01 (day 20454) + 324 = 21 November 2026. */
		{ 1795255200, 123456, "2026-11-21T10:00:00.123Z",
		  "20261121T100000.123Z" },
		{ 0, 0, "1970-01-01T00:00:00.000Z", "19700101T000000.000Z" },
		{ 951782400, 999999, "2000-02-29T00:00:00.999Z",
		  "20000229T000000.999Z" },
		{ 1767225599, 1000, "2025-12-31T23:59:59.001Z",
		  "20251231T235959.001Z" },
	};
	char out[PH_RFC3339_LEN + 1];
	char stamp[PH_STAMP_LEN + 1];

	test_begin("rfc3339 and file-name stamps");
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++) {
		struct timeval tv = { rows[i].sec, rows[i].usec };

		ph_time_rfc3339(&tv, out);
		ph_time_stamp(&tv, stamp);
		test_assert_idx(strcmp(out, rows[i].rfc3339) == 0, i);
		test_assert_idx(strcmp(stamp, rows[i].stamp) == 0, i);
		test_assert_idx(strlen(out) == PH_RFC3339_LEN, i);
		test_assert_idx(strlen(stamp) == PH_STAMP_LEN, i);
	}
	test_end();
}

static void
test_event_types(void)
{
	size_t n = 0;

	test_begin("event types");
	while (ph_event_types[n] != NULL) {
		test_assert_idx(ph_event_type_valid(ph_event_types[n]), n);
		n++;
	}
	test_assert(n == 20);
	test_assert(strcmp(ph_event_types[0], "payment.created") == 0);
	test_assert(strcmp(ph_event_types[19], "unknown") == 0);
	test_assert(ph_event_type_valid("payment.capture_failed"));
	test_assert(ph_event_type_valid("payment.cancel_failed"));
	test_assert(ph_event_type_valid("dispute.opened"));
	test_assert(ph_event_type_valid("dispute.won"));
	test_assert(ph_event_type_valid("dispute.lost"));
	test_assert(ph_event_type_valid("payment.action_required"));
	test_assert(ph_event_type_valid("subscription.renewed"));
	test_assert(!ph_event_type_valid("Payment.succeeded"));
	test_assert(!ph_event_type_valid("payment.succeeded "));
	test_assert(!ph_event_type_valid("payment"));
	test_assert(!ph_event_type_valid(""));
	test_assert(!ph_event_type_valid(NULL));
	test_end();
}

static struct json_object *
parse(const char *s)
{
	return json_tokener_parse(s);
}

static void
test_event_set_text(void)
{
	static const struct {
		const char *json;	/* the value, as JSON text */
		const char *text;	/* NULL: no value */
	} rows[] = {
		{ "\"pay_123\"", "pay_123" },
		{ "\"\\u00e9t\\u00e9\"", "\xc3\xa9t\xc3\xa9" },
		{ "123", "123" },
		{ "0", "0" },
		{ "-42", "-42" },
		{ "9223372036854775807", "9223372036854775807" },
		{ "-9223372036854775808", "-9223372036854775808" },
		{ "18446744073709551615", "18446744073709551615" },
		{ "\"\"", NULL },
		{ "\"a\\u0000b\"", NULL },
		{ "null", NULL },
		{ "1.5", NULL },
		{ "true", NULL },
		{ "{}", NULL },
		{ "[\"x\"]", NULL },
	};
	char *field;

	test_begin("event set text");
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++) {
		struct json_object *val = parse(rows[i].json);
		bool set;

		if (!test_assert_idx(val != NULL ||
				     strcmp(rows[i].json, "null") == 0, i))
			continue;
		field = NULL;
		set = ph_event_set_text(&field, val);
		test_assert_idx(set == (rows[i].text != NULL), i);
		if (rows[i].text == NULL)
			test_assert_idx(field == NULL, i);
		else
			test_assert_idx(field != NULL &&
					strcmp(field, rows[i].text) == 0, i);
		free(field);
		/* A present value replaces, an absent one leaves as is. */
		field = ph_xstrdup("old");
		set = ph_event_set_text(&field, val);
		test_assert_idx(strcmp(field, rows[i].text != NULL ?
				       rows[i].text : "old") == 0, i);
		free(field);
		json_object_put(val);
	}
	field = NULL;
	test_assert(!ph_event_set_text(&field, NULL));
	test_assert(field == NULL);
	test_end();
}

static void
test_event_stamp(void)
{
	struct ph_event ev;
	struct ph_error err;
	struct timeval tv;
	char rfc[PH_RFC3339_LEN + 1];
	uint64_t ms;

	test_begin("event stamp");
	memset(&ev, 0, sizeof(ev));
	gettimeofday(&tv, NULL);
	test_assert(ph_event_stamp(&ev, &tv, &err) == 0);
	test_assert(ulid_well_formed(ev.id));
	test_assert(ph_ulid_time_ms(ev.id, &ms) == 0 && ms >= tv_ms(&tv));
	ph_time_rfc3339(&tv, rfc);
	test_assert(strcmp(ev.received_at, rfc) == 0);
	test_assert(ev.received_tv.tv_sec == tv.tv_sec &&
		    ev.received_tv.tv_usec == tv.tv_usec);
	tv.tv_sec = -1;
	err.msg[0] = '\0';
	test_assert(ph_event_stamp(&ev, &tv, &err) == -1);
	test_assert(err.msg[0] != '\0');
	test_end();
}

static void
test_event_dedup_body_hash(void)
{
	struct ph_event ev;

	test_begin("event dedup key from body hash");
	memset(&ev, 0, sizeof(ev));
	ev.route = "op-1";
	ev.provider = "ompay";
	/* FIPS 180-2 test vector: SHA-256("abc"). */
	ph_event_dedup_body_hash(&ev, (const uint8_t *)"abc", 3);
	test_assert(strcmp(ev.dedup_key, "op-1:ompay:#sha256:"
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
	    == 0);
	/* Bytes, not a string: the length rules, NULs included. */
	ph_event_dedup_body_hash(&ev, (const uint8_t *)"", 0);
	test_assert(strcmp(ev.dedup_key, "op-1:ompay:#sha256:"
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
	    == 0);
	ph_event_dedup_body_hash(&ev, (const uint8_t *)"abc\0def", 7);
	test_assert(strncmp(ev.dedup_key, "op-1:ompay:#sha256:", 19) == 0);
	test_assert(strlen(ev.dedup_key) == 19 + 64);
	test_assert(strcmp(ev.dedup_key + 19, "ba7816bf8f01cfea414140de5dae2223"
			   "b00361a396177a9cb410ff61f20015ad") != 0);
	ph_event_clear(&ev);
	test_end();
}

/* The key ph_event_set_dedup_key makes of parts for route r, provider p,
 * body "abc"; owned by the caller. */
static char *
key_of(const char *route, const char *const *parts, size_t n)
{
	struct ph_event ev;
	char *key;

	memset(&ev, 0, sizeof(ev));
	ev.route = route;
	ev.provider = "p";
	ph_event_set_dedup_key(&ev, (const uint8_t *)"abc", 3, parts, n);
	key = ev.dedup_key;
	ev.dedup_key = NULL;
	ph_event_clear(&ev);
	return key;
}

#define ABC_HASH "ba7816bf8f01cfea414140de5dae2223" \
		 "b00361a396177a9cb410ff61f20015ad"

static void
test_event_dedup_key(void)
{
	static const struct {
		const char *parts[3];
		size_t n;
		const char *key;
	} rows[] = {
		{ { "E", "pay_1" }, 2, "r:p:E:pay_1" },
		/* Joins are unambiguous. */
		{ { "a:b", "c" }, 2, "r:p:a%3Ab:c" },
		{ { "a", "b:c" }, 2, "r:p:a:b%3Ac" },
		{ { "a%3Ab", "c" }, 2, "r:p:a%253Ab:c" },
		{ { "a", "b", "c" }, 3, "r:p:a:b:c" },
		{ { "a", "b" }, 2, "r:p:a:b" },
		{ { "a:b" }, 1, "r:p:a%3Ab" },
		/* Escaped: % : # controls DEL; other bytes (UTF-8) kept. */
		{ { "%#:\x01\x1f\x7f \xc3\xa9~" }, 1,
		  "r:p:%25%23%3A%01%1F%7F \xc3\xa9~" },
		{ { "x\ty\n" }, 1, "r:p:x%09y%0A" },
		/* No id can be the body-hash fallback. */
		{ { "#sha256:" ABC_HASH }, 1, "r:p:%23sha256%3A" ABC_HASH },
		{ { "", "sha256", ABC_HASH }, 3, "r:p::sha256:" ABC_HASH },
		/* No identity: the body hash. */
		{ { "E", NULL }, 2, "r:p:#sha256:" ABC_HASH },
		{ { NULL, "pay_1" }, 2, "r:p:#sha256:" ABC_HASH },
		/* U+FFFD stands in for any lone surrogate: no identity. */
		{ { "E", "pay\xef\xbf\xbd" }, 2, "r:p:#sha256:" ABC_HASH },
	};
	const char *parts[1];
	char *key, *other, *id;

	test_begin("event dedup key: route-scoped, escaped, fallback");
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++) {
		key = key_of("r", rows[i].parts, rows[i].n);
		test_assert_idx(strcmp(key, rows[i].key) == 0, i);
		if (strcmp(key, rows[i].key) != 0)
			printf("# row %zu: got %s\n", i, key);
		free(key);
	}
	/* The same identity on two routes: two keys. */
	key = key_of("shop-a", rows[0].parts, 2);
	other = key_of("shop-b", rows[0].parts, 2);
	test_assert(strcmp(key, "shop-a:p:E:pay_1") == 0);
	test_assert(strcmp(other, "shop-b:p:E:pay_1") == 0);
	free(key);
	free(other);
	/* The longest key the database takes, and one byte more. */
	id = ph_xmalloc(PH_DEDUP_KEY_MAX + 1);
	memset(id, 'x', PH_DEDUP_KEY_MAX - 4);
	id[PH_DEDUP_KEY_MAX - 4] = '\0';		/* "r:p:" + id */
	parts[0] = id;
	key = key_of("r", parts, 1);
	test_assert(strlen(key) == PH_DEDUP_KEY_MAX &&
		    strncmp(key, "r:p:xxx", 7) == 0);
	free(key);
	id[PH_DEDUP_KEY_MAX - 5] = ':';		/* escaped: 2 bytes more */
	key = key_of("r", parts, 1);
	test_assert(strcmp(key, "r:p:#sha256:" ABC_HASH) == 0);
	free(key);
	free(id);
	test_end();
}

/* doc's member "v" after parsing text as a request body is. */
static struct json_object *
parse_body(const char *text, struct json_object **doc)
{
	*doc = ph_json_parse_object((const uint8_t *)text, strlen(text), 32);
	if (*doc == NULL)
		return NULL;
	return json_object_object_get(*doc, "v");
}

static void
test_event_ids_beyond_64_bits(void)
{
	static const struct {
		const char *text;
		const char *id;		/* NULL: not usable */
	} rows[] = {
		{ "{\"v\":99999999999999999999}", NULL },
		{ "{\"v\":99999999999999999998}", NULL },
		{ "{\"v\":18446744073709551616}", NULL },
		{ "{\"v\":-9223372036854775809}", NULL },
		{ "{\"v\":-99999999999999999999}", NULL },
		{ "{\"v\":18446744073709551615}", "18446744073709551615" },
		{ "{\"v\":-9223372036854775808}", "-9223372036854775808" },
		{ "{\"v\":9223372036854775808}", "9223372036854775808" },
	};
	struct ph_event ev;

	test_begin("event ids: integers beyond 64 bits are not used");
	memset(&ev, 0, sizeof(ev));
	ev.route = "r";
	ev.provider = "p";
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++) {
		struct json_object *doc, *v = parse_body(rows[i].text, &doc);
		char *field = NULL;

		if (!test_assert_idx(v != NULL, i))
			continue;
		test_assert_idx(ph_event_set_id(&ev, &field, v, "id") ==
				(rows[i].id != NULL), i);
		test_assert_idx(rows[i].id == NULL ? field == NULL :
				strcmp(field, rows[i].id) == 0, i);
		test_assert_idx(ph_event_set_text(&field, v) ==
				(rows[i].id != NULL), i);
		free(field);
		json_object_put(doc);
	}
	test_end();
}

static void
test_event_set_amount(void)
{
	static const struct {
		const char *text;	/* "v" is the amount */
		enum ph_amount_unit unit;
		const char *value;	/* NULL: amount null */
		int64_t minor;
	} rows[] = {
		{ "{\"v\":123.45,\"c\":\"EUR\"}", PH_UNIT_MAJOR, "123.45",
		  12345 },
		{ "{\"v\":\"5000\",\"c\":\"NGN\"}", PH_UNIT_MINOR, "50.00",
		  5000 },
		{ "{\"v\":-9223372036854775808,\"c\":\"NGN\"}", PH_UNIT_MINOR,
		  "-92233720368547758.08", INT64_MIN },
		/* Clamped by json-c to INT64_MIN / UINT64_MAX: refused. */
		{ "{\"v\":-99999999999999999999,\"c\":\"NGN\"}", PH_UNIT_MINOR,
		  NULL, 0 },
		{ "{\"v\":99999999999999999999,\"c\":\"JPY\"}", PH_UNIT_MINOR,
		  NULL, 0 },
		/* A NUL in the currency: not NGN. */
		{ "{\"v\":5000,\"c\":\"NGN\\u0000X\"}", PH_UNIT_MINOR, NULL, 0 },
		{ "{\"v\":5000,\"c\":\"NG\\u0000\"}", PH_UNIT_MINOR, NULL, 0 },
		{ "{\"v\":1e400,\"c\":\"EUR\"}", PH_UNIT_MAJOR, NULL, 0 },
	};
	struct ph_event ev;

	test_begin("event amount: text, not clamped values; currency by "
		   "length");
	memset(&ev, 0, sizeof(ev));
	ev.route = "r";
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++) {
		struct json_object *doc, *v = parse_body(rows[i].text, &doc);

		if (!test_assert_idx(v != NULL, i))
			continue;
		ev.has_amount = true;
		ph_event_set_amount(&ev, v, json_object_object_get(doc, "c"),
				    rows[i].unit);
		test_assert_idx(ev.has_amount == (rows[i].value != NULL), i);
		if (ev.has_amount && rows[i].value != NULL)
			test_assert_idx(strcmp(ev.amount.value,
					       rows[i].value) == 0 &&
					ev.amount.minor == rows[i].minor, i);
		json_object_put(doc);
	}
	test_end();
}

static void
test_event_set_time(void)
{
	static const struct {
		const char *text;	/* "v" is the time */
		const char *time;	/* NULL: not set */
	} rows[] = {
		{ "{\"v\":\"2025-05-29T07:21:19.846Z\"}",
		  "2025-05-29T07:21:19.846Z" },
		{ "{\"v\":\"2024-01-18 12:34:56+01:00\"}",
		  "2024-01-18T11:34:56Z" },
		{ "{\"v\":1700000000}", "2023-11-14T22:13:20Z" },
		{ "{\"v\":1700000000123}", "2023-11-14T22:13:20.123Z" },
		{ "{\"v\":99999999999999999999}", NULL },
		{ "{\"v\":-99999999999999999999}", NULL },
		{ "{\"v\":\"2025-05-29\"}", NULL },
		{ "{\"v\":1.5}", NULL },
	};

	test_begin("event time: the common parser");
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++) {
		struct json_object *doc, *v = parse_body(rows[i].text, &doc);
		char *field = NULL;

		if (!test_assert_idx(v != NULL, i))
			continue;
		test_assert_idx(ph_event_set_time(&field, v) ==
				(rows[i].time != NULL), i);
		test_assert_idx(rows[i].time == NULL ? field == NULL :
				strcmp(field, rows[i].time) == 0, i);
		free(field);
		json_object_put(doc);
	}
	test_end();
}

static void
test_event_to_json(void)
{
	static const char raw_text[] =
		"{\"a\":123.450,\"b\":\"x/y\",\"c\":[1,-2E3,0.10,true,null],"
		"\"d\":{\"e\":\"\\u00e9\"}}";
	static const char expect[] =
		"{\"schema\":\"payhook.event/2\","
		"\"id\":\"01ARYZ6S41TSV4RRFFQ69G5FAV\","
		"\"dedup_key\":\"ngn:ngn-gateway:charge.success:pay_1\","
		"\"route\":\"ngn\","
		"\"provider\":\"ngn-gateway\","
		"\"type\":\"payment.succeeded\","
		"\"provider_event\":\"charge.success\","
		"\"payment_id\":\"pay_1\","
		"\"order_id\":null,"
		"\"refund_id\":null,"
		"\"status\":\"success\","
		"\"amount\":{\"value\":\"50.00\",\"minor\":5000,"
		"\"currency\":\"NGN\",\"exponent\":2},"
		"\"occurred_at\":null,"
		"\"received_at\":\"2026-11-21T10:00:00.123Z\","
		"\"verified_by\":\"hmac-sha512\","
		"\"raw\":{\"a\":123.450,\"b\":\"x/y\","
		"\"c\":[1,-2E3,0.10,true,null],\"d\":{\"e\":\"\xc3\xa9\"}}}\n";
	static const char expect_bare[] =
		"{\"schema\":\"payhook.event/2\",\"id\":null,"
		"\"dedup_key\":null,\"route\":\"r\",\"provider\":\"p\","
		"\"type\":\"unknown\",\"provider_event\":null,"
		"\"payment_id\":null,\"order_id\":null,\"refund_id\":null,"
		"\"status\":null,\"amount\":null,\"occurred_at\":null,"
		"\"received_at\":null,\"verified_by\":null,\"raw\":null}\n";
	struct timeval tv = { 1795255200, 123456 };
	struct json_tokener *tok;
	struct json_object *raw;
	struct ph_event ev;
	struct ph_error err;
	size_t len = 0;
	char *json;

	test_begin("event to json, byte for byte");
	tok = json_tokener_new();
	raw = json_tokener_parse_ex(tok, raw_text, (int)strlen(raw_text));
	test_assert(raw != NULL);
	json_tokener_free(tok);

	memset(&ev, 0, sizeof(ev));
	strcpy(ev.id, "01ARYZ6S41TSV4RRFFQ69G5FAV");
	ev.dedup_key = ph_xstrdup("ngn:ngn-gateway:charge.success:pay_1");
	ev.route = "ngn";
	ev.provider = "ngn-gateway";
	ev.type = "payment.succeeded";
	ev.provider_event = ph_xstrdup("charge.success");
	ev.payment_id = ph_xstrdup("pay_1");
	ev.status = ph_xstrdup("success");
	ev.has_amount = true;
	test_assert(ph_money_parse("5000", 4, "NGN", PH_UNIT_MINOR,
				   &ev.amount, &err) == 0);
	ph_time_rfc3339(&tv, ev.received_at);
	ev.received_tv = tv;
	ev.verified_by = "hmac-sha512";
	ev.raw = raw;

	json = ph_event_to_json(&ev, &len);
	test_assert(strcmp(json, expect) == 0);
	if (strcmp(json, expect) != 0)
		printf("# got: %s", json);
	test_assert(len == strlen(expect));
	free(json);
	/* Twice: the event is not changed by serializing it. */
	json = ph_event_to_json(&ev, NULL);
	test_assert(strcmp(json, expect) == 0);
	free(json);
	/* The caller's reference to raw is still its own. */
	test_assert(json_object_get_double(json_object_object_get(raw, "a"))
		    == 123.45);

	ph_event_clear(&ev);
	test_assert(ev.dedup_key == NULL && ev.payment_id == NULL &&
		    ev.provider_event == NULL && ev.status == NULL);
	ph_event_clear(&ev);
	json_object_put(raw);

	memset(&ev, 0, sizeof(ev));
	ev.route = "r";
	ev.provider = "p";
	json = ph_event_to_json(&ev, &len);
	test_assert(strcmp(json, expect_bare) == 0);
	if (strcmp(json, expect_bare) != 0)
		printf("# got: %s", json);
	test_assert(len == strlen(expect_bare));
	free(json);
	ph_event_clear(&ev);
	test_end();
}

static void
test_parse_duration(void)
{
	static const struct {
		const char *text;
		int ret;
		uint64_t seconds;
	} rows[] = {
		{ "30", 0, 30 }, { "30s", 0, 30 }, { "5m", 0, 300 },
		{ "1h", 0, 3600 }, { "24h", 0, 86400 }, { "2d", 0, 172800 },
		{ "0", 0, 0 }, { "", -1, 0 }, { "s", -1, 0 }, { "-5", -1, 0 },
		{ "+5", -1, 0 }, { "1.5h", -1, 0 }, { "5 m", -1, 0 },
		{ "5ms", -1, 0 }, { "5M", -1, 0 }, { "5w", -1, 0 },
		{ "10x", -1, 0 }, { "h5", -1, 0 },
		{ "18446744073709551615", 0, UINT64_MAX },
		{ "18446744073709551616", -1, 0 },
		{ "307445734561825860d", -1, 0 },
		{ "213503982334601d", 0, UINT64_C(213503982334601) * 86400 },
	};
	uint64_t v;

	test_begin("parse durations with and without a unit");
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++) {
		v = 12345;
		test_assert_idx(ph_parse_duration(rows[i].text, 0, UINT64_MAX,
						  &v) == rows[i].ret, i);
		test_assert_idx(v == (rows[i].ret == 0 ? rows[i].seconds :
				      12345), i);
	}
	test_assert(ph_parse_duration("1m", 61, 100, &v) < 0);
	test_assert(ph_parse_duration("2m", 61, 120, &v) == 0 && v == 120);
	test_assert(ph_parse_duration("2h", 0, 7199, &v) < 0);
	test_end();
}

void
test_ids(void)
{
	test_parse_duration();
	test_ulid_encode();
	test_ulid_time_ms_invalid();
	test_ulid_generate();
	test_time_format();
	test_event_types();
	test_event_set_text();
	test_event_stamp();
	test_event_dedup_body_hash();
	test_event_dedup_key();
	test_event_ids_beyond_64_bits();
	test_event_set_amount();
	test_event_set_time();
	test_event_to_json();
}
