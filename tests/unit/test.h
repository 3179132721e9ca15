/* test.h - a small table-driven unit test harness.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * test_begin("name"); test_assert(expr); ... test_end();
 * Each begin/end pair is one case, printed as "ok - name" or
 * "not ok - name" (with the failing assertions above it). The runner exits
 * non-zero if any case failed and prints "N passed, N failed" last.
 */
#ifndef PH_TEST_H
#define PH_TEST_H

#include <stdbool.h>
#include <stdint.h>

void test_begin(const char *name);
bool test_assert_at(bool ok, const char *expr, const char *file, int line,
		    long long idx);
void test_end(void);

/* A scratch directory for this process, created on first use, removed
 * recursively at exit. */
const char *test_tmpdir(void);

/* The groups, one per test-*.c file. */
#define TEST(fn) void fn(void);
#include "tests.inc"
#undef TEST

/* Fault helper (test-dedup.c): join the dedup environment in dir, add
 * records, then die by SIGKILL inside a log flush, holding its mutex.
 * Returns (an exit code) only if that failed. */
int test_dedup_die_in_log_write(const char *dir);

#define test_assert(expr) test_assert_at(!!(expr), #expr, __FILE__, __LINE__, -1)
/* Name the table row that failed. */
#define test_assert_idx(expr, idx) \
	test_assert_at(!!(expr), #expr, __FILE__, __LINE__, (long long)(idx))

#endif
