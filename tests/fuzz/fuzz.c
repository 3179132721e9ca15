/* fuzz.c - shared pieces of the libFuzzer targets, see fuzz.h.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "util.h"

void
fz_request_parse(struct fz_request *fr, const uint8_t *data, size_t size)
{
	const uint8_t *p = data, *end = data + size;

	memset(fr, 0, sizeof(*fr));
	fr->envp = ph_xcalloc(1, sizeof(*fr->envp));
	while (p < end) {
		const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

		if (len == 0) {		/* the empty line: the body follows */
			p++;
			break;
		}
		/* An environment entry ends at its first NUL, as in execve. */
		fr->envp = ph_xrealloc(fr->envp,
				       (fr->n_env + 2) * sizeof(*fr->envp));
		fr->envp[fr->n_env++] = ph_xstrndup((const char *)p, len);
		fr->envp[fr->n_env] = NULL;
		p += len;
		if (p < end)
			p++;		/* the '\n' */
		if (p == end)
			break;
	}
	fz_request_set_body(fr, p, (size_t)(end - p));
	/* 1 to 8 bytes per read, chosen by the input itself. */
	fr->chunk = 1 + size % 8;
}

void
fz_request_prepend(struct fz_request *fr, const char *entry)
{
	fr->envp = ph_xrealloc(fr->envp, (fr->n_env + 2) * sizeof(*fr->envp));
	memmove(fr->envp + 1, fr->envp, (fr->n_env + 1) * sizeof(*fr->envp));
	fr->envp[0] = ph_xstrdup(entry);
	fr->n_env++;
}

void
fz_request_set_body(struct fz_request *fr, const void *body, size_t len)
{
	free(fr->body);
	fr->body = ph_xmalloc(len + 1);
	if (len > 0)
		memcpy(fr->body, body, len);
	fr->body_len = len;
	fr->pos = 0;
}

static ssize_t
fz_read(void *ctx, uint8_t *buf, size_t len)
{
	struct fz_request *fr = ctx;
	size_t n = fr->body_len - fr->pos;

	if (n > len)
		n = len;
	if (n > fr->chunk)
		n = fr->chunk;
	memcpy(buf, fr->body + fr->pos, n);
	fr->pos += n;
	return (ssize_t)n;
}

static int
fz_write(void *ctx, const void *buf, size_t len)
{
	struct fz_request *fr = ctx;

	(void)buf;
	fr->written += len;
	return 0;
}

struct ph_stream
fz_request_stream(struct fz_request *fr)
{
	struct ph_stream io = { fz_read, fz_write, fr };

	return io;
}

void
fz_request_free(struct fz_request *fr)
{
	for (size_t i = 0; i < fr->n_env; i++)
		free(fr->envp[i]);
	ph_free(&fr->envp);
	ph_free(&fr->body);
	fr->n_env = 0;
}
