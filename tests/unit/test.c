/* test.c - unit test runner: runs every group in tests.inc.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * Usage: unit [--match SUBSTRING]
 *        unit --die-in-log-write STATE_DIR
 * The second form is a fault helper for the integration tests (see
 * test_dedup_die_in_log_write()), in this test-only binary so that no
 * such switch exists in payhook itself.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

static const struct {
	const char *name;
	void (*fn)(void);
} groups[] = {
#define TEST(fn) { #fn, fn },
#include "tests.inc"
#undef TEST
};

static const char *cur_name;
static bool cur_failed;
static unsigned n_passed, n_failed;
static char tmpdir[256];

void
test_begin(const char *name)
{
	cur_name = name;
	cur_failed = false;
}

bool
test_assert_at(bool ok, const char *expr, const char *file, int line,
	       long long idx)
{
	if (ok)
		return true;
	cur_failed = true;
	if (idx >= 0)
		printf("# %s:%d: assertion failed [row %lld]: %s\n",
		       file, line, idx, expr);
	else
		printf("# %s:%d: assertion failed: %s\n", file, line, expr);
	return false;
}

void
test_end(void)
{
	printf("%s - %s\n", cur_failed ? "not ok" : "ok", cur_name);
	if (cur_failed)
		n_failed++;
	else
		n_passed++;
	cur_name = NULL;
}

static void
tmpdir_remove(void)
{
	char cmd[700];

	if (tmpdir[0] == '\0')
		return;
	/* The path is our own mkdtemp result: no shell metacharacters. */
	snprintf(cmd, sizeof(cmd), "chmod -R u+rwx '%s' 2>/dev/null; rm -rf '%s'",
		 tmpdir, tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
}

const char *
test_tmpdir(void)
{
	if (tmpdir[0] == '\0') {
		const char *base = getenv("TMPDIR");

		snprintf(tmpdir, sizeof(tmpdir), "%s/payhook-unit.XXXXXX",
			 base != NULL && *base != '\0' ? base : "/tmp");
		if (mkdtemp(tmpdir) == NULL) {
			perror("mkdtemp");
			exit(2);
		}
		atexit(tmpdir_remove);
	}
	return tmpdir;
}

int
main(int argc, char **argv)
{
	const char *match = NULL;

	if (argc == 3 && strcmp(argv[1], "--die-in-log-write") == 0)
		return test_dedup_die_in_log_write(argv[2]);
	if (argc == 3 && strcmp(argv[1], "--match") == 0)
		match = argv[2];
	else if (argc != 1) {
		fprintf(stderr, "usage: %s [--match SUBSTRING]\n", argv[0]);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
		if (match != NULL && strstr(groups[i].name, match) == NULL)
			continue;
		groups[i].fn();
	}
	printf("%u passed, %u failed\n", n_passed, n_failed);
	return n_failed == 0 ? 0 : 1;
}
