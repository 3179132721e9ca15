/* money.c - decimal amounts to integer minor units, never via floating point.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#include "config.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "money.h"

struct currency {
	char code[4];
	int exponent;		/* -1: ISO 4217 says "N.A." */
};

/* ISO 4217 list one, published 2026-01-01 (178 codes, funds included).
 * Since the 2025 amendments ANG, BGN, CUC, SLL and ZWL are historic (list
 * three) and XAD, XCG and ZWG are new. Metals, bond-market units, XDR, XSU,
 * XUA, XTS and XXX have no minor unit ("N.A."): no amount in them can be
 * written in minor units, so they are listed with -1.
 * Sorted by code for bsearch; test_money checks the order. */
static const struct currency currencies[] = {
	{ "AED",  2 }, { "AFN",  2 }, { "ALL",  2 }, { "AMD",  2 },
	{ "AOA",  2 }, { "ARS",  2 }, { "AUD",  2 }, { "AWG",  2 },
	{ "AZN",  2 }, { "BAM",  2 }, { "BBD",  2 }, { "BDT",  2 },
	{ "BHD",  3 }, { "BIF",  0 }, { "BMD",  2 }, { "BND",  2 },
	{ "BOB",  2 }, { "BOV",  2 }, { "BRL",  2 }, { "BSD",  2 },
	{ "BTN",  2 }, { "BWP",  2 }, { "BYN",  2 }, { "BZD",  2 },
	{ "CAD",  2 }, { "CDF",  2 }, { "CHE",  2 }, { "CHF",  2 },
	{ "CHW",  2 }, { "CLF",  4 }, { "CLP",  0 }, { "CNY",  2 },
	{ "COP",  2 }, { "COU",  2 }, { "CRC",  2 }, { "CUP",  2 },
	{ "CVE",  2 }, { "CZK",  2 }, { "DJF",  0 }, { "DKK",  2 },
	{ "DOP",  2 }, { "DZD",  2 }, { "EGP",  2 }, { "ERN",  2 },
	{ "ETB",  2 }, { "EUR",  2 }, { "FJD",  2 }, { "FKP",  2 },
	{ "GBP",  2 }, { "GEL",  2 }, { "GHS",  2 }, { "GIP",  2 },
	{ "GMD",  2 }, { "GNF",  0 }, { "GTQ",  2 }, { "GYD",  2 },
	{ "HKD",  2 }, { "HNL",  2 }, { "HTG",  2 }, { "HUF",  2 },
	{ "IDR",  2 }, { "ILS",  2 }, { "INR",  2 }, { "IQD",  3 },
	{ "IRR",  2 }, { "ISK",  0 }, { "JMD",  2 }, { "JOD",  3 },
	{ "JPY",  0 }, { "KES",  2 }, { "KGS",  2 }, { "KHR",  2 },
	{ "KMF",  0 }, { "KPW",  2 }, { "KRW",  0 }, { "KWD",  3 },
	{ "KYD",  2 }, { "KZT",  2 }, { "LAK",  2 }, { "LBP",  2 },
	{ "LKR",  2 }, { "LRD",  2 }, { "LSL",  2 }, { "LYD",  3 },
	{ "MAD",  2 }, { "MDL",  2 }, { "MGA",  2 }, { "MKD",  2 },
	{ "MMK",  2 }, { "MNT",  2 }, { "MOP",  2 }, { "MRU",  2 },
	{ "MUR",  2 }, { "MVR",  2 }, { "MWK",  2 }, { "MXN",  2 },
	{ "MXV",  2 }, { "MYR",  2 }, { "MZN",  2 }, { "NAD",  2 },
	{ "NGN",  2 }, { "NIO",  2 }, { "NOK",  2 }, { "NPR",  2 },
	{ "NZD",  2 }, { "OMR",  3 }, { "PAB",  2 }, { "PEN",  2 },
	{ "PGK",  2 }, { "PHP",  2 }, { "PKR",  2 }, { "PLN",  2 },
	{ "PYG",  0 }, { "QAR",  2 }, { "RON",  2 }, { "RSD",  2 },
	{ "RUB",  2 }, { "RWF",  0 }, { "SAR",  2 }, { "SBD",  2 },
	{ "SCR",  2 }, { "SDG",  2 }, { "SEK",  2 }, { "SGD",  2 },
	{ "SHP",  2 }, { "SLE",  2 }, { "SOS",  2 }, { "SRD",  2 },
	{ "SSP",  2 }, { "STN",  2 }, { "SVC",  2 }, { "SYP",  2 },
	{ "SZL",  2 }, { "THB",  2 }, { "TJS",  2 }, { "TMT",  2 },
	{ "TND",  3 }, { "TOP",  2 }, { "TRY",  2 }, { "TTD",  2 },
	{ "TWD",  2 }, { "TZS",  2 }, { "UAH",  2 }, { "UGX",  0 },
	{ "USD",  2 }, { "USN",  2 }, { "UYI",  0 }, { "UYU",  2 },
	{ "UYW",  4 }, { "UZS",  2 }, { "VED",  2 }, { "VES",  2 },
	{ "VND",  0 }, { "VUV",  0 }, { "WST",  2 }, { "XAD",  2 },
	{ "XAF",  0 }, { "XAG", -1 }, { "XAU", -1 }, { "XBA", -1 },
	{ "XBB", -1 }, { "XBC", -1 }, { "XBD", -1 }, { "XCD",  2 },
	{ "XCG",  2 }, { "XDR", -1 }, { "XOF",  0 }, { "XPD", -1 },
	{ "XPF",  0 }, { "XPT", -1 }, { "XSU", -1 }, { "XTS", -1 },
	{ "XUA", -1 }, { "XXX", -1 }, { "YER",  2 }, { "ZAR",  2 },
	{ "ZMW",  2 }, { "ZWG",  2 },
};

/* Largest minor-unit magnitudes: int64_t is asymmetric. */
#define MAG_MAX_POS ((uint64_t)INT64_MAX)
#define MAG_MAX_NEG ((uint64_t)INT64_MAX + 1)

/* Exponents are clamped here while they are read: any larger magnitude
 * already means overflow (non-zero digits) or "not exact" (a fraction), and
 * the clamp keeps the scale arithmetic below far from int64_t limits. */
#define EXP_CLAMP 1000000000LL

static int
currency_cmp(const void *key, const void *elem)
{
	const struct currency *c = elem;

	return strcmp(key, c->code);
}

/* Upper-case a 3-letter code into out[4]. Returns false if code is not
 * exactly three ASCII letters. */
static bool
currency_normalize(const char *code, char out[4])
{
	if (code == NULL)
		return false;
	for (size_t i = 0; i < 3; i++) {
		char c = code[i];

		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c < 'A' || c > 'Z')
			return false;
		out[i] = c;
	}
	out[3] = '\0';
	return code[3] == '\0';
}

int
ph_currency_exponent(const char *code)
{
	const struct currency *c;
	char key[4];

	if (!currency_normalize(code, key))
		return -1;
	c = bsearch(key, currencies, PH_N_ELEMENTS(currencies),
		    sizeof(currencies[0]), currency_cmp);
	return c == NULL ? -1 : c->exponent;
}

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Write mag as decimal text with exactly exponent fraction digits:
 * 150, 2 -> "1.50"; 5, 3 -> "0.005"; 500, 0 -> "500". At most
 * '-' + 20 digits + '.' + NUL bytes: out is struct ph_money's value[48]. */
static void
format_value(bool neg, uint64_t mag, int exponent, char out[static 24])
{
	char digits[24];
	int n, ndig, pos = 0;

	n = snprintf(digits, sizeof(digits), "%" PRIu64, mag);
	ndig = n > exponent ? n : exponent + 1;	/* at least "0." */
	if (neg && mag != 0)
		out[pos++] = '-';
	for (int i = 0; i < ndig; i++) {
		int src = i - (ndig - n);	/* index into digits */

		if (i == ndig - exponent)
			out[pos++] = '.';
		out[pos++] = src >= 0 ? digits[src] : '0';
	}
	out[pos] = '\0';
}

int
ph_money_parse(const char *text, size_t len, const char *currency,
	       enum ph_amount_unit unit, struct ph_money *out,
	       struct ph_error *err)
{
	char code[4];
	size_t i = 0, int_start, int_len, frac_start, frac_len = 0;
	size_t first, last, ndig;
	bool neg = false, exp_neg = false;
	long long exp10 = 0, scale;
	uint64_t mag = 0, limit;
	int cexp;

	if (!currency_normalize(currency, code))
		return ph_error_set(err, "currency is not a 3-letter code");
	cexp = ph_currency_exponent(code);
	if (cexp < 0)
		return ph_error_set(err, "currency %s is unknown or has no "
				    "minor unit", code);

	/* JSON's number grammar:
	 * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
	if (i < len && text[i] == '-') {
		neg = true;
		i++;
	}
	int_start = i;
	while (i < len && is_digit(text[i]))
		i++;
	int_len = i - int_start;
	if (int_len == 0 || (int_len > 1 && text[int_start] == '0'))
		goto syntax;
	frac_start = i;
	if (i < len && text[i] == '.') {
		frac_start = ++i;
		while (i < len && is_digit(text[i]))
			i++;
		frac_len = i - frac_start;
		if (frac_len == 0)
			goto syntax;
	}
	if (i < len && (text[i] == 'e' || text[i] == 'E')) {
		size_t exp_start;

		i++;
		if (i < len && (text[i] == '+' || text[i] == '-'))
			exp_neg = text[i++] == '-';
		exp_start = i;
		for (; i < len && is_digit(text[i]); i++) {
			if (exp10 < EXP_CLAMP)
				exp10 = exp10 * 10 + (text[i] - '0');
		}
		if (i == exp_start)
			goto syntax;
		if (exp10 > EXP_CLAMP)
			exp10 = EXP_CLAMP;
		if (exp_neg)
			exp10 = -exp10;
	}
	if (i != len)
		goto syntax;

	/* The digits int_part || frac_part, read as an integer D, give
	 * value = D * 10^(exp10 - frac_len), so the minor-unit amount is
	 * D * 10^scale with scale = exp10 - frac_len (+ the currency's
	 * exponent for major units). Leading zeros of D are dropped and
	 * trailing ones moved into scale, so a negative scale left over means
	 * digits below the minor unit. */
	ndig = int_len + frac_len;
#define DIGIT(k) ((k) < int_len ? text[int_start + (k)] : \
		  text[frac_start + (k) - int_len])
	for (first = 0; first < ndig && DIGIT(first) == '0'; first++)
		;
	if (first == ndig) {
		mag = 0;
		neg = false;
		goto done;
	}
	for (last = ndig - 1; DIGIT(last) == '0'; last--)
		;
	if (frac_len > (size_t)EXP_CLAMP)
		goto overflow_or_inexact;
	scale = exp10 - (long long)frac_len + (long long)(ndig - 1 - last) +
	    (unit == PH_UNIT_MAJOR ? cexp : 0);
	if (scale < 0)
		goto inexact;
	/* D has last - first + 1 significant digits; 10^19 > 2^63. */
	if ((long long)(last - first + 1) + scale > 19)
		goto overflow;
	for (size_t k = first; k <= last; k++)
		mag = mag * 10 + (uint64_t)(DIGIT(k) - '0');
	for (long long k = 0; k < scale; k++)
		mag *= 10;
#undef DIGIT
	limit = neg ? MAG_MAX_NEG : MAG_MAX_POS;
	if (mag > limit)
		goto overflow;

done:
	memcpy(out->currency, code, sizeof(code));
	out->exponent = cexp;
	if (!neg)
		out->minor = (int64_t)mag;
	else if (mag == MAG_MAX_NEG)
		out->minor = INT64_MIN;
	else
		out->minor = -(int64_t)mag;
	format_value(neg, mag, cexp, out->value);
	return 0;

syntax:
	return ph_error_set(err, "amount is not a decimal number");
overflow_or_inexact:
	/* Over a billion fraction digits: not worth telling apart. */
	return ph_error_set(err, "amount has too many digits");
inexact:
	if (unit == PH_UNIT_MINOR)
		return ph_error_set(err,
		    "amount in minor units is not an integer");
	return ph_error_set(err, "amount has more decimals than %s allows (%d)",
			    code, cexp);
overflow:
	return ph_error_set(err, "amount is out of range");
}
