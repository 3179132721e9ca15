/* money.h - decimal amounts to integer minor units, never via floating point.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#ifndef PH_MONEY_H
#define PH_MONEY_H

#include <stdint.h>
#include "util.h"

enum ph_amount_unit {
	PH_UNIT_MAJOR,	/* "123.45" EUR means 123.45 euro */
	PH_UNIT_MINOR,	/* "12345" EUR means 12345 cent */
};

struct ph_money {
	int64_t minor;		/* amount in minor units */
	char currency[4];	/* ISO 4217 alphabetic code, upper case */
	int exponent;		/* ISO 4217 minor-unit exponent: 0..4 */
	char value[48];		/* decimal text at exactly `exponent` places */
};

/* ISO 4217 minor-unit exponent of an active currency code (3 letters,
 * upper case as ISO writes it; lower case is accepted), or -1 when the code
 * is unknown or has no minor unit defined (XAU, XXX, ...). */
int ph_currency_exponent(const char *code);

/* Parse the decimal text of an amount: an optional '-', digits, an optional
 * fraction, an optional exponent ("1e3", "1.5E-1"), exactly as JSON writes
 * numbers; the same text in a JSON string is accepted too. No surrounding
 * white space, no '+', no leading zeros before other digits.
 *
 * The value must be exact at the currency's exponent: "1.000" OMR and
 * "1.0" EUR are fine, "1.001" EUR is refused rather than rounded. The result
 * must fit int64_t minor units.
 *
 * Returns 0 and fills *out, or -1 with a reason in err. */
int ph_money_parse(const char *text, size_t len, const char *currency,
		   enum ph_amount_unit unit, struct ph_money *out,
		   struct ph_error *err) PH_NONNULL(1, 3, 5);

#endif
