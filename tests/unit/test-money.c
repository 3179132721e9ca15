/* test-money.c - decimal amount parsing and the ISO 4217 table.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "test.h"
#include "money.h"

/* Called by the runner, which declares the groups from tests.inc. */
void test_money(void);

static void
test_currency_exponent(void)
{
	static const struct {
		const char *code;
		int exponent;
	} rows[] = {
		{ "JPY", 0 }, { "EUR", 2 }, { "OMR", 3 }, { "CLF", 4 },
		{ "UYW", 4 }, { "USD", 2 }, { "KWD", 3 }, { "BHD", 3 },
		{ "TND", 3 }, { "ISK", 0 }, { "KRW", 0 }, { "XOF", 0 },
		{ "UYI", 0 }, { "VND", 0 }, { "HUF", 2 }, { "NGN", 2 },
		{ "XCG", 2 }, { "ZWG", 2 }, { "SLE", 2 }, { "XAD", 2 },
		{ "AED", 2 }, { "ZWG", 2 },	/* first and last rows */
		{ "jpy", 0 }, { "Omr", 3 },
		/* no minor unit, historic, or not a code */
		{ "XAU", -1 }, { "XAG", -1 }, { "XDR", -1 }, { "XTS", -1 },
		{ "XXX", -1 }, { "XBA", -1 }, { "XUA", -1 }, { "ANG", -1 },
		{ "BGN", -1 }, { "ZWL", -1 }, { "ZZZ", -1 }, { "", -1 },
		{ "EU", -1 }, { "EURO", -1 }, { "E1R", -1 }, { "EU\xc3", -1 },
	};

	test_begin("currency exponent");
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++)
		test_assert_idx(ph_currency_exponent(rows[i].code) ==
				rows[i].exponent, i);
	test_assert(ph_currency_exponent(NULL) == -1);
	test_end();
}

/* The table must stay sorted for bsearch: every code in it must be found.
 * Walk all 3-letter codes and count the known ones. */
static void
test_currency_table(void)
{
	static const char *const na[] = {
		"XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD",
		"XPT", "XSU", "XTS", "XUA", "XXX",
	};
	char code[4] = "AAA";
	unsigned known = 0, no_minor = 0;

	test_begin("currency table is complete and searchable");
	for (char a = 'A'; a <= 'Z'; a++)
		for (char b = 'A'; b <= 'Z'; b++)
			for (char c = 'A'; c <= 'Z'; c++) {
				int e;

				code[0] = a;
				code[1] = b;
				code[2] = c;
				e = ph_currency_exponent(code);
				test_assert(e >= -1 && e <= 4);
				if (e >= 0)
					known++;
			}
	/* 178 codes in list one, 13 of them without a minor unit. */
	for (size_t i = 0; i < PH_N_ELEMENTS(na); i++) {
		if (ph_currency_exponent(na[i]) == -1)
			no_minor++;
	}
	test_assert(known == 178 - 13);
	test_assert(no_minor == 13);
	test_end();
}

struct money_row {
	const char *text;
	const char *currency;
	enum ph_amount_unit unit;
	int ret;
	int64_t minor;
	const char *value;	/* expected value text when ret == 0 */
	const char *norm;	/* expected currency when ret == 0 */
};

#define MAJ PH_UNIT_MAJOR
#define MIN PH_UNIT_MINOR
#define OK(t, c, u, m, v, n) { t, c, u, 0, m, v, n }
#define BAD(t, c, u) { t, c, u, -1, 0, NULL, NULL }

static const struct money_row money_rows[] = {
	OK("0", "EUR", MAJ, 0, "0.00", "EUR"),
	OK("-0", "EUR", MAJ, 0, "0.00", "EUR"),
	OK("0.0", "EUR", MAJ, 0, "0.00", "EUR"),
	OK("0.1", "EUR", MAJ, 10, "0.10", "EUR"),
	OK("0.01", "EUR", MAJ, 1, "0.01", "EUR"),
	OK("123.45", "EUR", MAJ, 12345, "123.45", "EUR"),
	OK("1.0", "EUR", MAJ, 100, "1.00", "EUR"),
	OK("1.000", "EUR", MAJ, 100, "1.00", "EUR"),
	OK("1.00", "OMR", MAJ, 1000, "1.000", "OMR"),
	OK("1.000", "OMR", MAJ, 1000, "1.000", "OMR"),
	OK("1", "OMR", MAJ, 1000, "1.000", "OMR"),
	OK("0.005", "OMR", MAJ, 5, "0.005", "OMR"),
	OK("500", "JPY", MAJ, 500, "500", "JPY"),
	OK("500.00", "JPY", MAJ, 500, "500", "JPY"),
	OK("0", "JPY", MAJ, 0, "0", "JPY"),
	OK("1.2345", "CLF", MAJ, 12345, "1.2345", "CLF"),
	OK("1e3", "EUR", MAJ, 100000, "1000.00", "EUR"),
	OK("1E3", "EUR", MAJ, 100000, "1000.00", "EUR"),
	OK("1e+3", "EUR", MAJ, 100000, "1000.00", "EUR"),
	OK("1.5E-1", "EUR", MAJ, 15, "0.15", "EUR"),
	OK("1e-2", "EUR", MAJ, 1, "0.01", "EUR"),
	OK("100e-4", "EUR", MAJ, 1, "0.01", "EUR"),
	OK("1.5e0", "EUR", MAJ, 150, "1.50", "EUR"),
	OK("0e999999999", "EUR", MAJ, 0, "0.00", "EUR"),
	OK("0.000e-999999999", "EUR", MAJ, 0, "0.00", "EUR"),
	OK("-123.45", "EUR", MAJ, -12345, "-123.45", "EUR"),
	OK("-0.5", "EUR", MAJ, -50, "-0.50", "EUR"),
	OK("-0.05", "EUR", MAJ, -5, "-0.05", "EUR"),
	OK("-1", "JPY", MAJ, -1, "-1", "JPY"),
	OK("0.00000000000000000000000000000000000001e38", "EUR", MAJ,
	   100, "1.00", "EUR"),
	OK("92233720368547758.07", "EUR", MAJ, INT64_MAX,
	   "92233720368547758.07", "EUR"),
	OK("-92233720368547758.08", "EUR", MAJ, INT64_MIN,
	   "-92233720368547758.08", "EUR"),
	OK("-92233720368547758.07", "EUR", MAJ, -INT64_MAX,
	   "-92233720368547758.07", "EUR"),
	OK("9223372036854775807", "JPY", MAJ, INT64_MAX,
	   "9223372036854775807", "JPY"),
	OK("-9223372036854775808", "JPY", MAJ, INT64_MIN,
	   "-9223372036854775808", "JPY"),
	OK("9223372036854775807", "EUR", MIN, INT64_MAX,
	   "92233720368547758.07", "EUR"),
	OK("922337203685477580.7e1", "EUR", MIN, INT64_MAX,
	   "92233720368547758.07", "EUR"),
	OK("12.34", "eur", MAJ, 1234, "12.34", "EUR"),
	OK("12.34", "Eur", MAJ, 1234, "12.34", "EUR"),
	/* minor units */
	OK("5000", "NGN", MIN, 5000, "50.00", "NGN"),
	OK("5000.00", "NGN", MIN, 5000, "50.00", "NGN"),
	OK("5e3", "NGN", MIN, 5000, "50.00", "NGN"),
	OK("1", "OMR", MIN, 1, "0.001", "OMR"),
	OK("-150", "EUR", MIN, -150, "-1.50", "EUR"),
	OK("7", "JPY", MIN, 7, "7", "JPY"),
	BAD("50.5", "NGN", MIN),
	BAD("5e-1", "NGN", MIN),
	/* not exact at the currency exponent */
	BAD("1.001", "EUR", MAJ),
	BAD("0.5", "JPY", MAJ),
	BAD("0.0001", "OMR", MAJ),
	BAD("1e-3", "EUR", MAJ),
	BAD("1.5e-2", "EUR", MAJ),
	BAD("1e-999999999", "EUR", MAJ),
	BAD("1e-99999999999999999999999", "EUR", MAJ),
	/* out of range */
	BAD("92233720368547758.08", "EUR", MAJ),
	BAD("-92233720368547758.09", "EUR", MAJ),
	BAD("9223372036854775808", "JPY", MAJ),
	BAD("-9223372036854775809", "JPY", MAJ),
	BAD("9223372036854775808", "EUR", MIN),
	BAD("99999999999999999999", "EUR", MAJ),
	BAD("18446744073709551616", "JPY", MAJ),
	BAD("1e17", "EUR", MAJ),
	BAD("1e19", "JPY", MAJ),
	BAD("1e999999999", "EUR", MAJ),
	BAD("1e99999999999999999999999", "EUR", MAJ),
	BAD("-1e999999999", "EUR", MAJ),
	/* not a JSON number */
	BAD("", "EUR", MAJ),
	BAD(" 1", "EUR", MAJ),
	BAD("1 ", "EUR", MAJ),
	BAD("+1", "EUR", MAJ),
	BAD("01", "EUR", MAJ),
	BAD("-01", "EUR", MAJ),
	BAD("00", "EUR", MAJ),
	BAD("1.", "EUR", MAJ),
	BAD(".5", "EUR", MAJ),
	BAD("-.5", "EUR", MAJ),
	BAD("-", "EUR", MAJ),
	BAD("1e", "EUR", MAJ),
	BAD("1e+", "EUR", MAJ),
	BAD("1.e3", "EUR", MAJ),
	BAD("1e3.5", "EUR", MAJ),
	BAD("abc", "EUR", MAJ),
	BAD("0x10", "EUR", MAJ),
	BAD("1,00", "EUR", MAJ),
	BAD("NaN", "EUR", MAJ),
	BAD("Infinity", "EUR", MAJ),
	BAD("--1", "EUR", MAJ),
	BAD("1-", "EUR", MAJ),
	BAD("\"1\"", "EUR", MAJ),
	/* currency */
	BAD("1", "ZZZ", MAJ),
	BAD("1", "XAU", MAJ),
	BAD("1", "XXX", MAJ),
	BAD("1", "", MAJ),
	BAD("1", "EURO", MAJ),
	BAD("1", "€", MAJ),
};

static void
test_money_parse_table(void)
{
	test_begin("money parse table");
	for (size_t i = 0; i < PH_N_ELEMENTS(money_rows); i++) {
		const struct money_row *r = &money_rows[i];
		struct ph_money m;
		struct ph_error err;
		int ret;

		memset(&m, 0x5a, sizeof(m));
		err.msg[0] = '\0';
		ret = ph_money_parse(r->text, strlen(r->text), r->currency,
				     r->unit, &m, &err);
		if (!test_assert_idx(ret == r->ret, i))
			continue;
		if (ret != 0) {
			test_assert_idx(err.msg[0] != '\0', i);
			continue;
		}
		test_assert_idx(m.minor == r->minor, i);
		test_assert_idx(strcmp(m.value, r->value) == 0, i);
		test_assert_idx(strcmp(m.currency, r->norm) == 0, i);
		test_assert_idx(m.exponent == ph_currency_exponent(r->norm), i);
	}
	test_end();
}

/* The text is bounded by len, not by a NUL: a JSON string's bytes. */
static void
test_money_parse_len(void)
{
	static const char buf[] = "12.34567";
	struct ph_money m;
	struct ph_error err;

	test_begin("money parse honours len");
	test_assert(ph_money_parse(buf, 5, "EUR", PH_UNIT_MAJOR, &m, &err) ==
		    0);
	test_assert(m.minor == 1234);
	test_assert(strcmp(m.value, "12.34") == 0);
	test_assert(ph_money_parse(buf, 0, "EUR", PH_UNIT_MAJOR, &m, &err) ==
		    -1);
	test_assert(ph_money_parse("1\0" "2", 3, "EUR", PH_UNIT_MAJOR, &m,
				   &err) == -1);
	test_assert(ph_money_parse(buf, 8, "EUR", PH_UNIT_MAJOR, &m, NULL) ==
		    -1);
	test_end();
}

/* Huge exponents and very long digit strings are decided without
 * looping over the exponent. */
static void
test_money_parse_fast(void)
{
	static char big[200001];
	struct ph_money m;
	struct ph_error err;
	clock_t start = clock();

	test_begin("money parse of huge inputs is quick and exact");
	/* "0.000...0001" = 10^-100000 (100000 fraction digits), refused for
	 * EUR; then "0.000...0001e100001" = 10 EUR. */
	memset(big, '0', sizeof(big) - 1);
	big[1] = '.';
	big[100001] = '1';
	big[100002] = '\0';
	test_assert(ph_money_parse(big, strlen(big), "EUR", PH_UNIT_MAJOR, &m,
				   &err) == -1);
	memcpy(big + 100002, "e100001", 8);
	test_assert(ph_money_parse(big, strlen(big), "EUR", PH_UNIT_MAJOR, &m,
				   &err) == 0);
	test_assert(m.minor == 1000);
	for (int i = 0; i < 1000; i++) {
		test_assert(ph_money_parse("1e999999999", 11, "EUR",
					   PH_UNIT_MAJOR, &m, &err) == -1);
		test_assert(ph_money_parse("1e-999999999", 12, "EUR",
					   PH_UNIT_MAJOR, &m, &err) == -1);
	}
	test_assert((double)(clock() - start) / CLOCKS_PER_SEC < 1.0);
	test_end();
}

void
test_money(void)
{
	test_currency_exponent();
	test_currency_table();
	test_money_parse_table();
	test_money_parse_len();
	test_money_parse_fast();
}
