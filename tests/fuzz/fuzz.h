/* fuzz.h - shared pieces of the libFuzzer targets in tests/fuzz/.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * A request input is text as a CGI program sees it:
 *
 *   NAME=value\n          one CGI/FastCGI parameter per line, then
 *   \n                    an empty line, then
 *   body bytes            the request body, to the end of the input
 *
 * Without an empty line the whole input is parameters and the body is
 * empty. The body is read through a memory stream that hands out at most
 * a few bytes per call, so the reading loop is exercised as with a slow
 * client.
 */
#ifndef PH_FUZZ_H
#define PH_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "request.h"

struct fz_request {
	char **envp;		/* NULL-terminated, every entry owned */
	size_t n_env;
	uint8_t *body;		/* owned copy of the body */
	size_t body_len;
	size_t pos;		/* read position in body */
	size_t chunk;		/* most bytes one read call returns */
	size_t written;		/* bytes of answer written */
};

/* Split data into parameters and body as described above. */
void fz_request_parse(struct fz_request *fr, const uint8_t *data,
		      size_t size);

/* Put "NAME=value" before the parsed parameters, so it wins a lookup
 * (ph_request_param returns the first match). */
void fz_request_prepend(struct fz_request *fr, const char *entry);

/* Replace the body by a copy of len bytes. */
void fz_request_set_body(struct fz_request *fr, const void *body, size_t len);

/* A stream over fr: reads the body, counts and discards the answer. */
struct ph_stream fz_request_stream(struct fz_request *fr);

void fz_request_free(struct fz_request *fr);

#endif
