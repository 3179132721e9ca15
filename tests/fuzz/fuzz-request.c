/* fuzz-request.c - libFuzzer target: a CGI request's parameters and body.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * The input is a request as fuzz.h describes. The target goes through what
 * the pipeline does with a request before an adapter sees it: set-up from
 * the parameters, the Content-Length check, reading the body through a
 * stream, header and query lookups, the Content-Type test, the strict JSON
 * parse, and an answer.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "request.h"

#define FZ_MAX_BODY (256 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
lookups(const struct ph_request *req)
{
	static const char *const headers[] = {
		"Content-Type", "content-length", "X-Signature",
		"Authorization", "x-sig", "A-Very-Long-Header-Name-That-Is-"
		"Longer-Than-Any-Environment-Variable-Payhook-Builds-For-A-"
		"Header-Lookup-0123456789abcdef",
	};
	static const char *const params[] = { "token", "", "a", "t" };

	for (size_t i = 0; i < PH_N_ELEMENTS(headers); i++)
		(void)ph_request_header(req, headers[i]);
	for (size_t i = 0; i < PH_N_ELEMENTS(params); i++) {
		char *v = ph_request_query_param(req, params[i]);

		/* A decoded value never holds a NUL (%00 is refused). */
		if (v != NULL && strlen(v) > strlen(req->query))
			abort();
		free(v);
	}
	(void)ph_content_type_is_json(ph_request_param(req, "CONTENT_TYPE"));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_request fr;
	struct ph_request req;
	struct ph_stream io;
	int status;

	fz_request_parse(&fr, data, size);
	io = fz_request_stream(&fr);
	ph_request_init(&req, fr.envp, &io);
	lookups(&req);
	status = ph_request_check_length(&req, FZ_MAX_BODY);
	if (status == 200) {
		status = ph_request_read_body(&req, FZ_MAX_BODY);
		if (status == 200) {
			/* Exactly Content-Length bytes, NUL-terminated. */
			if (req.body == NULL || req.body[req.body_len] != '\0')
				abort();
			status = ph_request_json(&req, 32);
			/* Cached: a second call answers the same. */
			if (ph_request_json(&req, 32) != status)
				abort();
			if (status == 200 &&
			    !json_object_is_type(req.doc, json_type_object))
				abort();
		}
	}
	(void)ph_request_respond(&req, status, NULL, "application/json",
				 "{}", 2);
	ph_request_clear(&req);
	fz_request_free(&fr);
	return 0;
}
