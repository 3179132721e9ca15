/* fuzz-time.c - libFuzzer target: the provider time parser,
 * ph_event_set_time().
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * Input: a mode byte, then the value. Mode 0: the value is a JSON string's
 * bytes (embedded NULs and all); 1: the value is JSON text, parsed as a
 * provider's body would be (numbers of any size, strings with escapes);
 * 2: eight bytes of a 64-bit integer.
 *
 * Checked beyond "no crash": a time that is accepted is RFC 3339 UTC of the
 * documented form, and parsing it again gives it back unchanged.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "provider.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_output(const char *t)
{
	struct json_object *again = json_object_new_string(t);
	char *t2 = NULL;
	size_t len = strlen(t);

	/* YYYY-MM-DDTHH:MM:SS[.f{1,9}]Z */
	if (again == NULL || len < 20 || len > 30 || t[4] != '-' ||
	    t[10] != 'T' || t[len - 1] != 'Z')
		abort();
	if (!ph_event_set_time(&t2, again) || strcmp(t, t2) != 0)
		abort();
	free(t2);
	json_object_put(again);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_object *val = NULL;
	struct json_tokener *tok;
	char *out = NULL;
	int64_t n;

	if (size < 1)
		return 0;
	switch (data[0] % 3) {
	case 0:
		val = json_object_new_string_len((const char *)data + 1,
						 (int)(size - 1));
		break;
	case 1:
		tok = json_tokener_new_ex(8);
		if (tok == NULL)
			return 0;
		json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
					    JSON_TOKENER_VALIDATE_UTF8);
		val = json_tokener_parse_ex(tok, (const char *)data + 1,
					    (int)(size - 1));
		json_tokener_free(tok);
		break;
	case 2:
		if (size < 1 + sizeof(n))
			return 0;
		memcpy(&n, data + 1, sizeof(n));
		val = json_object_new_int64(n);
		break;
	}
	if (ph_event_set_time(&out, val)) {
		if (out == NULL)
			abort();
		check_output(out);
	} else if (out != NULL) {
		abort();
	}
	free(out);
	json_object_put(val);
	return 0;
}
