/* test-spool.c - the maildir writer: names, modes, contents, failures.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
	sp = NULL;
	test_assert(ph_spool_open(dir, &sp, &err) == -1 && sp == NULL);
	test_assert(strstr(err.msg, "mkdir(") != NULL);
	snprintf(dir, sizeof(dir), "%s/spool-layout", test_tmpdir());
	umask(022);
	test_assert(ph_spool_open(dir, &sp, &err) == 0);
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
	test_assert(ph_spool_open(dir, &sp, &err) == 0);
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
	test_assert(ph_spool_open(dir, &sp, &err) == 0);

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

/* Remove dir and everything in it (two levels are enough here). */
static void
remove_tree(const char *dir)
{
	char cmd[700];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	test_assert(system(cmd) == 0);
}

/* A fresh spool at <tmpdir>/<name>, opened; path receives its path. */
static struct ph_spool *
fresh_spool(const char *name, char *path, size_t size)
{
	struct ph_spool *sp = NULL;
	struct ph_error err;

	snprintf(path, size, "%s/%s", test_tmpdir(), name);
	remove_tree(path);
	test_assert(ph_spool_open(path, &sp, &err) == 0);
	return sp;
}

static void
test_spool_unsafe(void)
{
	static const char *const subs[] = { "", "/tmp", "/new", "/cur",
					    "/done" };
	struct timeval tv = { .tv_sec = 1795255200, .tv_usec = 0 };
	char dir[512], path[600], target[600];
	struct ph_error err;
	struct ph_spool *sp;

	test_begin("spool: a symlinked, foreign or open directory is refused");
	for (size_t i = 0; i < PH_N_ELEMENTS(subs); i++) {
		/* Each directory replaced by a symlink to a good one: never
		 * followed, refused by name. */
		sp = fresh_spool("spool-unsafe", dir, sizeof(dir));
		ph_spool_close(&sp);
		snprintf(path, sizeof(path), "%s%s", dir, subs[i]);
		snprintf(target, sizeof(target), "%s/spool-unsafe-target%zu",
			 test_tmpdir(), i);
		remove_tree(target);
		test_assert_idx(rename(path, target) == 0, i);
		test_assert_idx(symlink(target, path) == 0, i);
		test_assert_idx(ph_spool_open(dir, &sp, &err) ==
				PH_SPOOL_UNSAFE && sp == NULL, i);
		test_assert_idx(strstr(err.msg, path) != NULL &&
				strstr(err.msg, "symbolic link") != NULL, i);
		unlink(path);
		remove_tree(target);
	}

	/* Writable by group or others, at open or later. */
	sp = fresh_spool("spool-unsafe", dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/new", dir);
	test_assert(chmod(path, 0777) == 0);
	test_assert(ph_spool_deliver(sp, &tv, "01KAKQ7D8B000000000000000C",
				     "x", 1, NULL, &err) == PH_SPOOL_UNSAFE);
	test_assert(strstr(err.msg, path) != NULL &&
		    strstr(err.msg, "mode 0777") != NULL);
	test_assert(count_entries(path) == 0);
	ph_spool_close(&sp);
	test_assert(ph_spool_open(dir, &sp, &err) == PH_SPOOL_UNSAFE);
	test_assert(chmod(path, 0720) == 0);
	test_assert(ph_spool_open(dir, &sp, &err) == PH_SPOOL_UNSAFE);
	test_assert(strstr(err.msg, "writable by group") != NULL);
	test_assert(chmod(path, 0700) == 0);
	test_assert(chmod(dir, 0707) == 0);
	test_assert(ph_spool_open(dir, &sp, &err) == PH_SPOOL_UNSAFE);
	test_assert(strstr(err.msg, dir) != NULL);
	test_assert(chmod(dir, 0700) == 0);

	/* A file where a directory belongs. */
	snprintf(path, sizeof(path), "%s/cur", dir);
	test_assert(rmdir(path) == 0);
	test_assert(close(creat(path, 0600)) == 0);
	test_assert(ph_spool_open(dir, &sp, &err) == PH_SPOOL_UNSAFE);
	test_assert(strstr(err.msg, "not a directory") != NULL);
	test_assert(unlink(path) == 0);

	/* Owned by someone else (root can make that happen). */
	if (geteuid() == 0) {
		snprintf(path, sizeof(path), "%s/tmp", dir);
		test_assert(chown(path, 65534, 65534) == 0);
		test_assert(ph_spool_open(dir, &sp, &err) == PH_SPOOL_UNSAFE);
		test_assert(strstr(err.msg, path) != NULL &&
			    strstr(err.msg, "owned by uid 65534") != NULL);
		test_assert(chown(path, 0, 0) == 0);
	}
	test_assert(ph_spool_open(dir, &sp, &err) == 0);
	ph_spool_close(&sp);
	test_end();
}

/* The one file name in dir/new, or "" (into name, size bytes). */
static void
only_entry(const char *dir, char *name, size_t size)
{
	char path[600];
	struct dirent *e;
	DIR *d;

	name[0] = '\0';
	snprintf(path, sizeof(path), "%s/new", dir);
	if ((d = opendir(path)) == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.')
			snprintf(name, size, "%s", e->d_name);
	}
	closedir(d);
}

static void
test_spool_follows_path(void)
{
	struct timeval tv = { .tv_sec = 1795255200, .tv_usec = 0 };
	char dir[512], moved[600], path[700], name[PH_SPOOL_NAME_MAX];
	char found[256];
	struct ph_error err;
	struct ph_spool *sp;

	test_begin("spool: a spool moved away, recreated or deleted is "
		   "followed");
	sp = fresh_spool("spool-follow", dir, sizeof(dir));
	snprintf(moved, sizeof(moved), "%s.old", dir);
	remove_tree(moved);
	test_assert(ph_spool_deliver(sp, &tv, "01KAKQ7D8B000000000000000D",
				     "1", 1, name, &err) == 0);

	/* mv spool spool.old; mkdir spool (as a restore would). */
	test_assert(rename(dir, moved) == 0);
	test_assert(mkdir(dir, 0700) == 0);
	test_assert(ph_spool_deliver(sp, &tv, "01KAKQ7D8B000000000000000E",
				     "2", 1, name, &err) == 0);
	only_entry(dir, found, sizeof(found));
	test_assert(strcmp(found, name) == 0);
	snprintf(path, sizeof(path), "%s/new", moved);
	test_assert(count_entries(path) == 1);

	/* Only new/ replaced. */
	snprintf(path, sizeof(path), "%s/new", dir);
	snprintf(moved, sizeof(moved), "%s/new.old", dir);
	test_assert(rename(path, moved) == 0);
	test_assert(mkdir(path, 0700) == 0);
	test_assert(ph_spool_deliver(sp, &tv, "01KAKQ7D8B000000000000000F",
				     "3", 1, name, &err) == 0);
	only_entry(dir, found, sizeof(found));
	test_assert(strcmp(found, name) == 0);

	/* rm -rf spool: recreated at the path, with its subdirectories. */
	remove_tree(dir);
	test_assert(ph_spool_deliver(sp, &tv, "01KAKQ7D8B000000000000000G",
				     "4", 1, name, &err) == 0);
	only_entry(dir, found, sizeof(found));
	test_assert(strcmp(found, name) == 0);
	snprintf(path, sizeof(path), "%s/cur", dir);
	test_assert(count_entries(path) == 0);
	ph_spool_close(&sp);
	snprintf(moved, sizeof(moved), "%s.old", dir);
	remove_tree(moved);
	test_end();
}

void
test_spool(void)
{
	test_spool_layout();
	test_spool_deliver();
	test_spool_failures();
	test_spool_unsafe();
	test_spool_follows_path();
}
