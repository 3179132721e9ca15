/* fuzz-money.c - libFuzzer target: the money parser.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * Input: a byte choosing the unit (bit 0: minor) and whether the currency
 * is taken from the input (bit 1) or from a list of codes covering every
 * exponent (the other bits pick one); then three currency bytes when taken
 * from the input; then the amount's text.
 *
 * Checked beyond "no crash": a parsed amount's value is its minor units at
 * the currency's exponent, and parsing that value again in major units
 * gives the same amount.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "money.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const codes[] = {
	"EUR", "JPY", "KWD", "CLF", "NGN", "eur", "XAU", "XXX",
};

static void
check_round_trip(const struct ph_money *m)
{
	struct ph_money again;
	struct ph_error err;

	if (m->exponent < 0 || m->exponent > 4 || strlen(m->currency) != 3)
		abort();
	if (ph_money_parse(m->value, strlen(m->value), m->currency,
			   PH_UNIT_MAJOR, &again, &err) < 0)
		abort();
	if (again.minor != m->minor || again.exponent != m->exponent ||
	    strcmp(again.value, m->value) != 0)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum ph_amount_unit unit;
	struct ph_money m;
	struct ph_error err;
	char currency[4];
	char *text;
	size_t off = 1;

	if (size < 1)
		return 0;
	unit = (data[0] & 1) ? PH_UNIT_MINOR : PH_UNIT_MAJOR;
	if (data[0] & 2) {
		if (size < 4)
			return 0;
		memcpy(currency, data + 1, 3);
		currency[3] = '\0';
		off = 4;
	} else {
		snprintf(currency, sizeof(currency), "%s",
			 codes[(data[0] >> 2) % PH_N_ELEMENTS(codes)]);
	}
	/* A copy of exactly the text's length: reads past it are caught. */
	text = malloc(size - off + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data + off, size - off);
	if (ph_money_parse(text, size - off, currency, unit, &m, &err) == 0)
		check_round_trip(&m);
	free(text);
	return 0;
}
