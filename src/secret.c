/* secret.c - resolve secret references: literal, env:NAME, file:PATH.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "secret.h"
#include "util.h"

#define PH_SECRET_FILE_MAX (64 * 1024)

static void
secret_take(struct ph_secret *out, const char *src, size_t len)
{
	out->data = ph_xmalloc(len + 1);
	memcpy(out->data, src, len);
	out->data[len] = '\0';
	out->len = len;
}

static int
secret_from_env(const char *name, struct ph_secret *out,
		struct ph_error *err)
{
	const char *val;

	if (*name == '\0')
		return ph_error_set(err, "env: needs a variable name");
	val = getenv(name);
	if (val == NULL)
		return ph_error_set(err, "environment variable %s is not set",
				    name);
	if (*val == '\0')
		return ph_error_set(err, "environment variable %s is empty",
				    name);
	secret_take(out, val, strlen(val));
	return 0;
}

int
ph_secret_file_check(const char *path, const struct stat *st,
		     struct ph_error *warn, struct ph_error *err)
{
	unsigned mode = (unsigned)(st->st_mode & 07777);

	warn->msg[0] = '\0';
	if (st->st_mode & (S_IWGRP | S_IWOTH))
		return ph_error_set(err, "%s is writable by group or others "
				    "(mode %04o): refused; chmod go-w it",
				    path, mode);
	if (st->st_mode & S_IROTH)
		ph_error_set(warn, "%s is readable by others (mode %04o); "
			     "chmod o-r it", path, mode);
	return 0;
}

static int
secret_from_file(const char *path, struct ph_secret *out,
		 struct ph_error *warn, struct ph_error *err)
{
	struct stat st;
	char *data;
	size_t len;

	if (*path == '\0')
		return ph_error_set(err, "file: needs a path");
	/* ph_read_file's message names the path and the errno text. The
	 * mode is that of the file read, not of whatever the path names
	 * by the time it could be checked. */
	if (ph_read_file_stat(path, PH_SECRET_FILE_MAX, &data, &len, &st,
			      err) < 0)
		return -1;
	if (ph_secret_file_check(path, &st, warn, err) < 0) {
		ph_wipe(data, len);
		free(data);
		return -1;
	}
	/* One line ending only: editors add it, and a secret could end in
	 * other white space on purpose. */
	if (len > 0 && data[len - 1] == '\n') {
		len--;
		if (len > 0 && data[len - 1] == '\r')
			len--;
	}
	if (len == 0) {
		free(data);
		return ph_error_set(err, "secret file %s is empty", path);
	}
	/* The stripped line ending is not secret, but keep the NUL promise. */
	data[len] = '\0';
	out->data = (uint8_t *)data;
	out->len = len;
	return 0;
}

bool
ph_secret_is_literal(const char *ref)
{
	return strncmp(ref, "env:", 4) != 0 && strncmp(ref, "file:", 5) != 0;
}

int
ph_secret_resolve(const char *ref, struct ph_secret *out,
		  struct ph_error *warn, struct ph_error *err)
{
	out->data = NULL;
	out->len = 0;
	warn->msg[0] = '\0';
	if (strncmp(ref, "env:", 4) == 0)
		return secret_from_env(ref + 4, out, err);
	if (strncmp(ref, "file:", 5) == 0)
		return secret_from_file(ref + 5, out, warn, err);
	if (*ref == '\0')
		return ph_error_set(err, "empty secret");
	secret_take(out, ref, strlen(ref));
	return 0;
}

void
ph_secret_clear(struct ph_secret *s)
{
	if (s == NULL || s->data == NULL)
		return;
	ph_wipe(s->data, s->len);
	ph_free(&s->data);
	s->len = 0;
}
