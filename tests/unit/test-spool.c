/* test-spool.c - the maildir writer: names, modes, contents, failures.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"
#include "spool.h"

/* Number of entries (not . or ..) in dir; -1 if it cannot be read. */
static int
count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	}
	closedir(d);
	return n;
}

static void
test_spool_layout(void)
{
	static const char *const subdirs[] = { "tmp", "new", "cur", "done" };
	char dir[512], path[600];
	struct ph_error err;
	struct ph_spool *sp;
	struct stat st;

	test_begin("spool: open creates the four directories, mode 0700");
	snprintf(dir, sizeof(dir), "%s/spool-layout/deeper", test_tmpdir());
	/* A missing parent is an error, not silently created. */
	test_assert(ph_spool_open(dir, &err) == NULL);
	test_assert(strstr(err.msg, "mkdir(") != NULL);
	snprintf(dir, sizeof(dir), "%s/spool-layout", test_tmpdir());
	umask(022);
	sp = ph_spool_open(dir, &err);
	umask(077);
	test_assert(sp != NULL);
	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, subdirs[i]);
		test_assert_idx(stat(path, &st) == 0, i);
		test_assert_idx(S_ISDIR(st.st_mode), i);
		test_assert_idx((st.st_mode & 0777) == 0700, i);
	}
	ph_spool_close(&sp);
	test_assert(sp == NULL);
	ph_spool_close(&sp);	/* twice is fine */
	test_end();
}

static void
test_spool_deliver(void)
{
	static const char data[] = "{\"schema\":\"payhook.event/1\"}\n";
	struct timeval tv = { .tv_sec = 1795255200, .tv_usec = 123456 };
	const char *id = "01KAKQ7D8B0000000000000000";
	char dir[512], path[700], name[PH_SPOOL_NAME_MAX], buf[256];
	struct ph_error err;
	struct ph_spool *sp;
	struct stat st;
	FILE *f;
	size_t n;

	test_begin("spool: deliver writes new/<stamp>-<id>.json, 0600, whole");
	snprintf(dir, sizeof(dir), "%s/spool-deliver", test_tmpdir());
	sp = ph_spool_open(dir, &err);
	test_assert(sp != NULL);
	umask(0);	/* the file mode must not depend on the umask */
	test_assert(ph_spool_deliver(sp, &tv, id, data, sizeof(data) - 1,
				     name, &err) == 0);
	umask(077);
	test_assert(strcmp(name, "20261121T100000.123Z-"
			   "01KAKQ7D8B0000000000000000.json") == 0);
	snprintf(path, sizeof(path), "%s/new/%s", dir, name);
	test_assert(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	f = fopen(path, "r");
	test_assert(f != NULL);
	if (f != NULL) {
		n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		test_assert(n == sizeof(data) - 1 &&
			    memcmp(buf, data, n) == 0);
	}
	snprintf(path, sizeof(path), "%s/tmp", dir);
	test_assert(count_entries(path) == 0);

	/* The same id again must not overwrite the first file. */
	test_assert(ph_spool_deliver(sp, &tv, id, "x", 1, NULL, &err) == 0);
	snprintf(path, sizeof(path), "%s/new", dir);
	test_assert(count_entries(path) == 1);
	ph_spool_close(&sp);
	test_end();
}

static void
test_spool_failures(void)
{
	struct timeval tv = { .tv_sec = 1795255200, .tv_usec = 0 };
	char dir[512], path[600];
	struct ph_error err;
	struct ph_spool *sp;

	test_begin("spool: a planted tmp name or unwritable new/ fails clean");
	snprintf(dir, sizeof(dir), "%s/spool-fail", test_tmpdir());
	sp = ph_spool_open(dir, &err);
	test_assert(sp != NULL);

	/* A symlink planted at the tmp name is neither followed nor kept
	 * as a delivered file. */
	snprintf(path, sizeof(path), "%s/tmp/20261121T100000.000Z-"
		 "01KAKQ7D8B000000000000000A.json", dir);
	test_assert(symlink("/etc/passwd", path) == 0);
	test_assert(ph_spool_deliver(sp, &tv, "01KAKQ7D8B000000000000000A",
				     "x", 1, NULL, &err) < 0);
	test_assert(strstr(err.msg, "open(") != NULL);
	unlink(path);

	if (geteuid() != 0) {
		/* Root ignores directory modes; the integration tests run
		 * this case as an unprivileged user. */
		snprintf(path, sizeof(path), "%s/new", dir);
		test_assert(chmod(path, 0500) == 0);
		test_assert(ph_spool_deliver(sp, &tv,
		    "01KAKQ7D8B000000000000000B", "x", 1, NULL, &err) < 0);
		test_assert(strstr(err.msg, "rename(") != NULL);
		test_assert(chmod(path, 0700) == 0);
		snprintf(path, sizeof(path), "%s/tmp", dir);
		test_assert(count_entries(path) == 0);
	}
	snprintf(path, sizeof(path), "%s/new", dir);
	test_assert(count_entries(path) == 0);
	ph_spool_close(&sp);
	test_end();
}

void
test_spool(void)
{
	test_spool_layout();
	test_spool_deliver();
	test_spool_failures();
}
