/* test-dedup.c - claims, commits, crashes and purges in a real environment.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * Every case works in its own subdirectory of test_tmpdir(). Other
 * processes are forked children that open their own handle (DB_REGISTER
 * allows one per process) and report through their exit code; they leave
 * with _exit() so the runner's atexit cleanup stays with the parent.
 */
#include "config.h"

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <db.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "dedup.h"
#include "ids.h"
#include "util.h"

#define ID_A "01ARZ3NDEKTSV4RRFFQ69G5FAV"
#define ID_B "01BX5ZZKBKACTAV9WEVGEMMVRZ"
#define DAY 86400

static char *
test_dir(const char *name)
{
	return ph_xasprintf("%s/%s", test_tmpdir(), name);
}

static struct ph_dedup *
open_dd(const char *dir, unsigned wait_ms, struct ph_error *err)
{
	struct ph_dedup_options opt = { .claim_wait_ms = wait_ms };

	return ph_dedup_open(dir, &opt, err);
}

/* Begin the test called name with the database in dir (claim waits of
 * wait_ms). NULL when it does not open: the failure is recorded with
 * Berkeley DB's message, the test ended and dir freed; the caller returns. */
static struct ph_dedup *
begin_with_dd(const char *name, char *dir, unsigned wait_ms)
{
	struct ph_error err = { "" };
	struct ph_dedup *dd;

	test_begin(name);
	dd = open_dd(dir, wait_ms, &err);
	test_assert(dd != NULL);
	if (dd == NULL) {
		printf("# %s\n", err.msg);
		test_end();
		free(dir);
	}
	return dd;
}

static void
sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Exit code of a child, 128 + signal if it was killed, -1 on error. */
static int
reap(pid_t pid)
{
	int st;

	if (pid < 0)
		return -1;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static bool
read_byte(int fd)
{
	char c;
	ssize_t n;

	while ((n = read(fd, &c, 1)) < 0 && errno == EINTR)
		;
	return n == 1;
}

static void
write_byte(int fd)
{
	while (write(fd, "x", 1) < 0 && errno == EINTR)
		;
}

static void
child_fail(const char *what, const struct ph_error *err)
{
	fprintf(stderr, "# child %ld: %s: %s\n", (long)getpid(), what,
		err->msg);
}

/* Inode of dir/name, 0 if absent. */
static ino_t
inode_of(const char *dir, const char *name)
{
	char *path = ph_xasprintf("%s/%s", dir, name);
	struct stat st;
	ino_t ino = stat(path, &st) == 0 ? st.st_ino : 0;

	free(path);
	return ino;
}

/*
 * Recovery removes and recreates the region files, so a new inode for
 * __db.001 shows that it ran. A hard link outside dir keeps the old inode
 * allocated meanwhile, or the file system could hand the number out again.
 * Returns the inode, 0 on failure; region_unpin() drops the link.
 */
static ino_t
region_pin(const char *dir)
{
	char *from = ph_xasprintf("%s/__db.001", dir);
	char *to = ph_xasprintf("%s/pinned-region", test_tmpdir());
	ino_t ino;

	(void)unlink(to);
	ino = link(from, to) == 0 ? inode_of(dir, "__db.001") : 0;
	free(from);
	free(to);
	return ino;
}

static void
region_unpin(void)
{
	char *to = ph_xasprintf("%s/pinned-region", test_tmpdir());

	(void)unlink(to);
	free(to);
}

static unsigned
count_files(const char *dir, const char *prefix, unsigned *max_log_r)
{
	struct dirent *de;
	unsigned n = 0;
	DIR *d;

	if ((d = opendir(dir)) == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
			continue;
		n++;
		if (max_log_r != NULL) {
			unsigned num = (unsigned)strtoul(de->d_name + 4, NULL,
							 10);

			if (num > *max_log_r)
				*max_log_r = num;
		}
	}
	closedir(d);
	return n;
}

static void
test_dedup_permissions(void)
{
	static const char *const expect[] = {
		"dedup.db", "__db.register", "__db.001", "log.0000000001",
	};
	struct ph_error err = { "" };
	char *dir = test_dir("perm"), *path, *file, *bad;
	struct ph_dedup *dd;
	struct dirent *de;
	struct stat st;
	unsigned n = 0;
	mode_t omask;
	DIR *d;
	int fd;

	test_begin("dedup: open makes a 0700 directory of 0600 files");
	/* A careless umask must not leak into the state directory. */
	omask = umask(0);
	dd = open_dd(dir, 0, &err);
	test_assert(dd != NULL);
	if (dd != NULL) {
		test_assert(ph_dedup_claim(dd, "test:perm", NULL, &err) ==
			    PH_CLAIM_OWNED);
		test_assert(ph_dedup_commit(dd, "test:perm", ID_A, &err) == 0);
		ph_dedup_close(&dd);
		test_assert(dd == NULL);
	}
	umask(omask);
	test_assert(stat(dir, &st) == 0 && S_ISDIR(st.st_mode) &&
		    (st.st_mode & 07777) == 0700);
	test_assert((d = opendir(dir)) != NULL);
	while (d != NULL && (de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		path = ph_xasprintf("%s/%s", dir, de->d_name);
		test_assert_idx(lstat(path, &st) == 0 &&
				S_ISREG(st.st_mode) &&
				(st.st_mode & 07777) == 0600, n);
		if ((st.st_mode & 07777) != 0600)
			printf("# %s has mode %o\n", path,
			       (unsigned)(st.st_mode & 07777));
		free(path);
		n++;
	}
	if (d != NULL)
		closedir(d);
	test_assert(n >= PH_N_ELEMENTS(expect));
	for (size_t i = 0; i < PH_N_ELEMENTS(expect); i++) {
		path = ph_xasprintf("%s/%s", dir, expect[i]);
		test_assert_idx(access(path, F_OK) == 0, i);
		free(path);
	}
	test_end();

	test_begin("dedup: open reports where it failed");
	file = test_dir("plainfile");
	fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0600);
	test_assert(fd >= 0 && close(fd) == 0);
	bad = ph_xasprintf("%s/state", file);
	path = ph_xasprintf("mkdir(%s) failed: Not a directory", bad);
	test_assert(open_dd(bad, 0, &err) == NULL);
	test_assert(strcmp(err.msg, path) == 0);
	free(path);
	free(bad);
	test_assert(open_dd(file, 0, &err) == NULL);
	path = ph_xasprintf("%s is not a directory", file);
	test_assert(strcmp(err.msg, path) == 0);
	free(path);
	free(file);
	test_end();
	free(dir);
}

struct busy_child {
	const char *dir;
	const char *key;
};

/* 0: BUSY after waiting about its 50 ms; 1: BUSY too early or too late;
 * 2: another answer. */
static int
busy_child(const struct busy_child *bc)
{
	struct ph_error err = { "" };
	struct ph_dedup *dd = open_dd(bc->dir, 50, &err);
	uint64_t t0;
	enum ph_claim r;
	int code;

	if (dd == NULL) {
		child_fail("open", &err);
		return 3;
	}
	t0 = ph_now_monotonic_us();
	r = ph_dedup_claim(dd, bc->key, NULL, &err);
	t0 = ph_now_monotonic_us() - t0;
	if (r != PH_CLAIM_BUSY)
		code = 2;
	else
		code = t0 >= 45000 && t0 < 5000000 ? 0 : 1;
	ph_dedup_close(&dd);
	return code;
}

static void
test_dedup_claim(void)
{
	struct busy_child bc;
	struct ph_error err = { "" };
	char *dir = test_dir("claim");
	char id[27] = "x";
	struct ph_dedup *dd;
	uint64_t t0;
	pid_t pid;

	dd = begin_with_dd("dedup: claim, busy, commit, duplicate",
			   dir, 50);
	if (dd == NULL)
		return;
	test_assert(ph_dedup_count(dd, &err) == 0);
	test_assert(ph_dedup_claim(dd, "test:claim", id, &err) ==
		    PH_CLAIM_OWNED);
	test_assert(id[0] == '\0');
	/* Our own pending claim, as a request whose commit and release both
	 * failed leaves it: nobody will resolve it, so the retry that
	 * reaches this process takes it over at once instead of waiting. */
	t0 = ph_now_monotonic_us();
	test_assert(ph_dedup_claim(dd, "test:claim", id, &err) ==
		    PH_CLAIM_OWNED);
	test_assert(ph_now_monotonic_us() - t0 < 45000);
	test_assert(ph_dedup_count(dd, &err) == 1);
	/* Another live process waits its claim_wait_ms, then gives up. */
	bc.dir = dir;
	bc.key = "test:claim";
	pid = fork();
	if (pid == 0)
		_exit(busy_child(&bc));
	test_assert(reap(pid) == 0);
	test_assert(ph_dedup_count(dd, &err) == 1);
	test_assert(ph_dedup_commit(dd, "test:claim", ID_A, &err) == 0);
	test_assert(ph_dedup_claim(dd, "test:claim", id, &err) ==
		    PH_CLAIM_DUPLICATE);
	test_assert(strcmp(id, ID_A) == 0);
	test_assert(ph_dedup_claim(dd, "test:claim", NULL, &err) ==
		    PH_CLAIM_DUPLICATE);
	/* Committing again keeps the first record. */
	test_assert(ph_dedup_commit(dd, "test:claim", ID_B, &err) == 0);
	test_assert(ph_dedup_claim(dd, "test:claim", id, &err) ==
		    PH_CLAIM_DUPLICATE);
	test_assert(strcmp(id, ID_A) == 0);
	test_assert(ph_dedup_count(dd, &err) == 1);
	test_end();

	test_begin("dedup: bad arguments");
	test_assert(ph_dedup_claim(dd, "", id, &err) == PH_CLAIM_ERROR);
	test_assert(strcmp(err.msg, "dedup key of 0 bytes: must be 1 to "
			   "1024") == 0);
	test_assert(ph_dedup_claim(dd, "\001payhook:last-purge", id, &err) ==
		    PH_CLAIM_ERROR);
	test_assert(strcmp(err.msg, "dedup key starts with a reserved byte") ==
		    0);
	test_assert(ph_dedup_commit(dd, "test:bad", ID_A "X", &err) == -1);
	test_assert(strcmp(err.msg, "event id of 27 bytes: at most 26") == 0);
	test_assert(ph_dedup_release(dd, "test:unknown", &err) == 0);
	/* Commit without a claim still records the key. */
	test_assert(ph_dedup_commit(dd, "test:unclaimed", ID_B, &err) == 0);
	test_assert(ph_dedup_claim(dd, "test:unclaimed", id, &err) ==
		    PH_CLAIM_DUPLICATE);
	test_assert(strcmp(id, ID_B) == 0);
	test_assert(ph_dedup_count(dd, &err) == 2);
	test_end();

	test_begin("dedup: a forked child cannot use its parent's handle");
	pid = fork();
	if (pid == 0) {
		struct ph_error cerr = { "" };
		int code;

		code = ph_dedup_claim(dd, "test:fork", NULL, &cerr) ==
		       PH_CLAIM_ERROR &&
		       strstr(cerr.msg, "open one per process") != NULL ?
		       0 : 1;
		/* Frees memory only: the parent stays registered. */
		ph_dedup_close(&dd);
		_exit(code);
	}
	test_assert(reap(pid) == 0);
	test_assert(ph_dedup_claim(dd, "test:fork", NULL, &err) ==
		    PH_CLAIM_OWNED);
	test_assert(ph_dedup_release(dd, "test:fork", &err) == 0);
	test_end();
	ph_dedup_close(&dd);
	free(dir);
}

static pid_t
dead_pid(void)
{
	pid_t pid = fork();

	if (pid == 0)
		_exit(0);
	(void)reap(pid);
	return pid;
}

static void
test_dedup_release(void)
{
	struct ph_error err = { "" };
	char *dir = test_dir("release");
	struct ph_dedup *dd;
	char id[27];
	pid_t pid;

	dd = begin_with_dd("dedup: release lets the key be claimed again",
			   dir, 50);
	if (dd == NULL)
		return;
	test_assert(ph_dedup_claim(dd, "test:rel", NULL, &err) ==
		    PH_CLAIM_OWNED);
	test_assert(ph_dedup_release(dd, "test:rel", &err) == 0);
	test_assert(ph_dedup_count(dd, &err) == 0);
	test_assert(ph_dedup_claim(dd, "test:rel", NULL, &err) ==
		    PH_CLAIM_OWNED);
	test_assert(ph_dedup_commit(dd, "test:rel", ID_A, &err) == 0);
	/* A done record is not ours to release. */
	test_assert(ph_dedup_release(dd, "test:rel", &err) == 0);
	test_assert(ph_dedup_claim(dd, "test:rel", id, &err) ==
		    PH_CLAIM_DUPLICATE);
	test_end();

	test_begin("dedup: pending records of others: live, old, dead");
	/* Our parent is alive and is not us. */
	test_assert(ph_dedup_put_raw(dd, "test:live", false, (long)getppid(),
				     time(NULL), "", &err) == 0);
	test_assert(ph_dedup_release(dd, "test:live", &err) == 0);
	test_assert(ph_dedup_count(dd, &err) == 2);
	test_assert(ph_dedup_claim(dd, "test:live", id, &err) ==
		    PH_CLAIM_BUSY);
	test_assert(strstr(err.msg, "still pending in process") != NULL);
	/* Older than claim_timeout_s (120), but its owner lives (a stalled
	 * disk, a clock step): still its claim, in either direction. */
	test_assert(ph_dedup_put_raw(dd, "test:old", false, (long)getppid(),
				     time(NULL) - 121, "", &err) == 0);
	test_assert(ph_dedup_claim(dd, "test:old", id, &err) ==
		    PH_CLAIM_BUSY);
	test_assert(ph_dedup_put_raw(dd, "test:future", false,
				     (long)getppid(), time(NULL) + 1199, "",
				     &err) == 0);
	test_assert(ph_dedup_claim(dd, "test:future", id, &err) ==
		    PH_CLAIM_BUSY);
	/* Ten times the claim timeout: the live owner is hung. */
	test_assert(ph_dedup_put_raw(dd, "test:old", false, (long)getppid(),
				     time(NULL) - 1200, "", &err) == 0);
	test_assert(ph_dedup_claim(dd, "test:old", id, &err) ==
		    PH_CLAIM_OWNED);
	test_assert(ph_dedup_put_raw(dd, "test:future", false,
				     (long)getppid(), time(NULL) + 1200, "",
				     &err) == 0);
	test_assert(ph_dedup_claim(dd, "test:future", id, &err) ==
		    PH_CLAIM_OWNED);
	/* Owner gone. */
	pid = dead_pid();
	test_assert(ph_dedup_put_raw(dd, "test:dead", false, (long)pid,
				     time(NULL), "", &err) == 0);
	test_assert(ph_dedup_claim(dd, "test:dead", id, &err) ==
		    PH_CLAIM_OWNED);
	/* Our pid, but not this handle: left by a dead process whose pid
	 * we reuse. */
	test_assert(ph_dedup_put_raw(dd, "test:reused", false, (long)getpid(),
				     time(NULL), "", &err) == 0);
	test_assert(ph_dedup_claim(dd, "test:reused", id, &err) ==
		    PH_CLAIM_OWNED);
	test_assert(ph_dedup_count(dd, &err) == 6);
	test_end();
	ph_dedup_close(&dd);
	free(dir);
}

static void
test_dedup_dead_owner(void)
{
	struct ph_error err = { "" };
	char *dir = test_dir("dead");
	struct ph_dedup *dd;
	uint64_t t0;
	pid_t pid;

	test_begin("dedup: a claim left by an exited process is taken over");
	dd = open_dd(dir, 0, &err);
	test_assert(dd != NULL);
	pid = fork();
	if (pid == 0) {
		struct ph_error cerr = { "" };
		struct ph_dedup *cdd = open_dd(dir, 0, &cerr);

		if (cdd == NULL ||
		    ph_dedup_claim(cdd, "test:dead", NULL, &cerr) !=
		    PH_CLAIM_OWNED) {
			child_fail("claim", &cerr);
			_exit(1);
		}
		ph_dedup_close(&cdd);
		_exit(0);
	}
	test_assert(reap(pid) == 0);
	if (dd != NULL) {
		t0 = ph_now_monotonic_us();
		test_assert(ph_dedup_claim(dd, "test:dead", NULL, &err) ==
			    PH_CLAIM_OWNED);
		/* Well under the 10 s claim_wait_ms default. */
		test_assert(ph_now_monotonic_us() - t0 < 5000000);
		test_assert(ph_dedup_commit(dd, "test:dead", ID_A, &err) == 0);
	}
	test_end();
	ph_dedup_close(&dd);
	free(dir);
}

/* A region file left zeroed by a process killed while creating it (seen
 * after a SIGKILL storm: "BDB0126 mmap: Invalid argument" from every open)
 * is rebuilt from the log, and the records survive. */
static void
test_dedup_region_rebuild(void)
{
	struct ph_error err = { "" };
	char *dir = test_dir("rebuild");
	char *region = ph_xasprintf("%s/__db.001", dir);
	char id[PH_ULID_LEN + 1] = "";
	struct ph_dedup *dd;
	struct stat st;
	uint8_t *zero;
	int fd;

	test_begin("dedup: regions left half-made by a killed process are "
		   "rebuilt");
	dd = open_dd(dir, 0, &err);
	test_assert(dd != NULL);
	if (dd != NULL) {
		test_assert(ph_dedup_claim(dd, "test:kept", NULL, &err) ==
			    PH_CLAIM_OWNED);
		test_assert(ph_dedup_commit(dd, "test:kept", ID_A, &err) == 0);
		ph_dedup_close(&dd);
	}
	fd = open(region, O_WRONLY);
	test_assert(fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 0);
	if (fd >= 0) {
		zero = calloc(1, (size_t)st.st_size);
		test_assert(zero != NULL &&
			    write(fd, zero, (size_t)st.st_size) == st.st_size);
		free(zero);
		close(fd);
	}
	dd = open_dd(dir, 0, &err);
	test_assert(dd != NULL);
	if (dd != NULL) {
		test_assert(ph_dedup_claim(dd, "test:kept", id, &err) ==
			    PH_CLAIM_DUPLICATE);
		test_assert(strcmp(id, ID_A) == 0);
		test_assert(ph_dedup_claim(dd, "test:new", NULL, &err) ==
			    PH_CLAIM_OWNED);
	}
	test_end();
	ph_dedup_close(&dd);
	free(region);
	free(dir);
}

/* A request's deadline (ph_dedup_set_deadline) cuts the wait on a live
 * owner's pending claim short of claim_wait_ms: behind a stopped process,
 * the answer is a 503 within the request's budget. */
static void
test_dedup_deadline(void)
{
	struct ph_error err = { "" };
	char *dir = test_dir("deadline");
	struct ph_dedup *dd;
	int ready[2], hold[2];
	uint64_t t0, took;
	char c;
	pid_t pid;

	test_begin("dedup: a request's deadline bounds the wait on a claim");
	dd = open_dd(dir, 0, &err);	/* the 10 s default wait */
	test_assert(dd != NULL && pipe(ready) == 0 && pipe(hold) == 0);
	pid = fork();
	if (pid == 0) {
		struct ph_error cerr = { "" };
		struct ph_dedup *cdd = open_dd(dir, 0, &cerr);

		if (cdd == NULL ||
		    ph_dedup_claim(cdd, "test:slow", NULL, &cerr) !=
		    PH_CLAIM_OWNED) {
			child_fail("claim", &cerr);
			_exit(1);
		}
		(void)write(ready[1], "r", 1);
		(void)read(hold[0], &c, 1);	/* alive until told */
		_exit(0);
	}
	test_assert(read(ready[0], &c, 1) == 1);
	if (dd != NULL) {
		t0 = ph_now_monotonic_us();
		ph_dedup_set_deadline(dd, t0 + 300000);
		test_assert(ph_dedup_claim(dd, "test:slow", NULL, &err) ==
			    PH_CLAIM_BUSY);
		took = ph_now_monotonic_us() - t0;
		test_assert(took >= 250000 && took < 2000000);
		ph_dedup_set_deadline(dd, 0);
	}
	(void)write(hold[1], "h", 1);
	test_assert(reap(pid) == 0);
	if (dd != NULL) {
		/* The owner has exited: its claim is taken over at once. */
		test_assert(ph_dedup_claim(dd, "test:slow", NULL, &err) ==
			    PH_CLAIM_OWNED);
	}
	close(ready[0]);
	close(ready[1]);
	close(hold[0]);
	close(hold[1]);
	test_end();
	ph_dedup_close(&dd);
	free(dir);
}

enum {
	RACE_OWNED = 10,
	RACE_DUPLICATE = 11,
	RACE_BUSY = 12,
	RACE_ERROR = 13,
	RACE_BAD_ID = 14,
	RACE_NO_OPEN = 15,
	RACE_NO_COMMIT = 16,
};

static int
race_child(const char *dir, int ready_fd, int go_fd)
{
	struct ph_error err = { "" };
	struct ph_dedup *dd;
	char id[27];
	int code;

	dd = open_dd(dir, 0, &err);
	if (dd == NULL) {
		child_fail("open", &err);
		return RACE_NO_OPEN;
	}
	write_byte(ready_fd);
	(void)read_byte(go_fd);		/* EOF: everybody goes at once */
	switch (ph_dedup_claim(dd, "test:race", id, &err)) {
	case PH_CLAIM_OWNED:
		sleep_ms(50);
		code = ph_dedup_commit(dd, "test:race", ID_A, &err) == 0 ?
		       RACE_OWNED : RACE_NO_COMMIT;
		break;
	case PH_CLAIM_DUPLICATE:
		code = strcmp(id, ID_A) == 0 ? RACE_DUPLICATE : RACE_BAD_ID;
		break;
	case PH_CLAIM_BUSY:
		code = RACE_BUSY;
		break;
	default:
		child_fail("claim", &err);
		code = RACE_ERROR;
		break;
	}
	ph_dedup_close(&dd);
	return code;
}

static void
test_dedup_race(void)
{
	enum { N = 8 };
	char *dir = test_dir("race");
	int ready[2], go[2], codes[N];
	unsigned owned = 0, dup = 0, ready_n = 0;
	pid_t pids[N];

	test_begin("dedup: 8 processes claim one key, exactly one owns it");
	test_assert(pipe(ready) == 0 && pipe(go) == 0);
	/* The environment does not exist yet: they also race to create it. */
	for (int i = 0; i < N; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			close(ready[0]);
			close(go[1]);
			_exit(race_child(dir, ready[1], go[0]));
		}
	}
	close(ready[1]);
	close(go[0]);
	while (ready_n < N && read_byte(ready[0]))
		ready_n++;
	test_assert(ready_n == N);
	close(go[1]);
	close(ready[0]);
	for (int i = 0; i < N; i++) {
		codes[i] = reap(pids[i]);
		if (codes[i] == RACE_OWNED)
			owned++;
		else if (codes[i] == RACE_DUPLICATE)
			dup++;
		else
			printf("# child %d exited %d\n", i, codes[i]);
	}
	test_assert(owned == 1);
	test_assert(dup == N - 1);
	test_end();
	free(dir);
}

static void
test_dedup_distinct(void)
{
	struct ph_error err = { "" };
	char *dir = test_dir("distinct");
	struct ph_dedup *dd;
	int ready[2], go[2];
	enum ph_claim r;
	uint64_t t0;
	pid_t pid;

	test_begin("dedup: a pending claim does not hold up other keys");
	dd = open_dd(dir, 0, &err);
	test_assert(dd != NULL && pipe(ready) == 0 && pipe(go) == 0);
	pid = fork();
	if (pid == 0) {
		struct ph_error cerr = { "" };
		struct ph_dedup *cdd = open_dd(dir, 0, &cerr);

		close(ready[0]);
		close(go[1]);
		if (cdd == NULL ||
		    ph_dedup_claim(cdd, "test:A", NULL, &cerr) !=
		    PH_CLAIM_OWNED) {
			child_fail("claim A", &cerr);
			_exit(1);
		}
		write_byte(ready[1]);
		(void)read_byte(go[0]);
		_exit(ph_dedup_release(cdd, "test:A", &cerr) == 0 ? 0 : 2);
	}
	close(ready[1]);
	close(go[0]);
	test_assert(read_byte(ready[0]));
	if (dd != NULL) {
		t0 = ph_now_monotonic_us();
		r = ph_dedup_claim(dd, "test:B", NULL, &err);
		t0 = ph_now_monotonic_us() - t0;
		test_assert(r == PH_CLAIM_OWNED);
		test_assert(t0 < 5000000);
		test_assert(ph_dedup_commit(dd, "test:B", ID_B, &err) == 0);
	}
	close(go[1]);
	close(ready[0]);
	test_assert(reap(pid) == 0);
	test_end();
	ph_dedup_close(&dd);
	free(dir);
}

/* Join the environment directly, as a foreign process would, without our
 * error handling; used to hold locks and to panic the environment. */
static int
raw_is_alive(DB_ENV *env, pid_t pid, db_threadid_t tid, u_int32_t flags)
{
	(void)env;
	(void)tid;
	(void)flags;
	return kill(pid, 0) == 0 || errno == EPERM;
}

static int
raw_open(const char *dir, DB_ENV **env_r, DB **db_r)
{
	DB_ENV *env;
	DB *db;

	if (db_env_create(&env, 0) != 0)
		return -1;
	env->set_isalive(env, raw_is_alive);
	if (env->open(env, dir, DB_INIT_LOCK | DB_INIT_LOG | DB_INIT_MPOOL |
		      DB_INIT_TXN, 0600) != 0 ||
	    db_create(&db, env, 0) != 0)
		return -1;
	if (db->open(db, NULL, "dedup.db", NULL, DB_BTREE, DB_AUTO_COMMIT,
		     0) != 0)
		return -1;
	*env_r = env;
	*db_r = db;
	return 0;
}

static void
test_dedup_crash(void)
{
	struct ph_error err = { "" };
	char *dir = test_dir("crash");
	struct ph_dedup *dd;
	int ready[2];
	char id[27];
	uint64_t t0;
	ino_t region;
	pid_t pid;

	dd = begin_with_dd("dedup: SIGKILL after a claim: recover, reopen, "
			   "take over", dir, 0);
	if (dd == NULL)
		return;
	test_assert(ph_dedup_claim(dd, "test:before", NULL, &err) ==
		    PH_CLAIM_OWNED);
	test_assert(ph_dedup_commit(dd, "test:before", ID_A, &err) == 0);
	test_assert(pipe(ready) == 0);
	pid = fork();
	if (pid == 0) {
		struct ph_error cerr = { "" };
		struct ph_dedup *cdd = open_dd(dir, 0, &cerr);

		close(ready[0]);
		if (cdd == NULL ||
		    ph_dedup_claim(cdd, "test:crash", NULL, &cerr) !=
		    PH_CLAIM_OWNED)
			_exit(1);
		write_byte(ready[1]);
		for (;;)
			pause();
	}
	close(ready[1]);
	test_assert(read_byte(ready[0]));
	close(ready[0]);
	test_assert(kill(pid, SIGKILL) == 0);
	test_assert(reap(pid) == 128 + SIGKILL);
	region = region_pin(dir);
	test_assert(region != 0);
	/* A new process finds the dead registration and recovers. */
	pid = fork();
	if (pid == 0) {
		struct ph_error cerr = { "" };
		struct ph_dedup *cdd = open_dd(dir, 0, &cerr);
		char cid[27];

		if (cdd == NULL) {
			child_fail("open after kill", &cerr);
			_exit(1);
		}
		if (ph_dedup_claim(cdd, "test:crash", NULL, &cerr) !=
		    PH_CLAIM_OWNED)
			_exit(2);
		if (ph_dedup_commit(cdd, "test:crash", ID_B, &cerr) != 0)
			_exit(3);
		if (ph_dedup_claim(cdd, "test:before", cid, &cerr) !=
		    PH_CLAIM_DUPLICATE || strcmp(cid, ID_A) != 0)
			_exit(4);
		ph_dedup_close(&cdd);
		_exit(0);
	}
	test_assert(reap(pid) == 0);
	test_assert(inode_of(dir, "__db.001") != region);
	region_unpin();
	/* The handle opened before the kill reopens and carries on. */
	test_assert(ph_dedup_claim(dd, "test:crash", id, &err) ==
		    PH_CLAIM_DUPLICATE);
	test_assert(strcmp(id, ID_B) == 0);
	test_assert(ph_dedup_claim(dd, "test:after", NULL, &err) ==
		    PH_CLAIM_OWNED);
	test_assert(ph_dedup_commit(dd, "test:after", ID_A, &err) == 0);
	test_assert(ph_dedup_count(dd, &err) == 3);
	test_end();

	test_begin("dedup: a killed process's locks time out, failchk frees");
	test_assert(pipe(ready) == 0);
	pid = fork();
	if (pid == 0) {
		DB_ENV *env;
		DB_TXN *txn;
		DB *db;
		DBT k, d;

		close(ready[0]);
		memset(&k, 0, sizeof(k));
		memset(&d, 0, sizeof(d));
		k.data = (void *)"test:locked";
		k.size = (u_int32_t)strlen("test:locked");
		d.data = (void *)"junk";
		d.size = 4;
		if (raw_open(dir, &env, &db) != 0 ||
		    env->txn_begin(env, NULL, &txn, 0) != 0 ||
		    db->put(db, txn, &k, &d, 0) != 0)
			_exit(1);
		write_byte(ready[1]);
		for (;;)
			pause();
	}
	close(ready[1]);
	test_assert(read_byte(ready[0]));
	close(ready[0]);
	test_assert(kill(pid, SIGKILL) == 0);
	test_assert(reap(pid) == 128 + SIGKILL);
	/* The dead transaction write-locked the page every key is on. */
	t0 = ph_now_monotonic_us();
	test_assert(ph_dedup_claim(dd, "test:locked", NULL, &err) ==
		    PH_CLAIM_OWNED);
	t0 = ph_now_monotonic_us() - t0;
	printf("# claim behind a dead lock holder took %llu ms\n",
	       (unsigned long long)(t0 / 1000));
	test_assert(t0 < 9000000);
	test_assert(ph_dedup_commit(dd, "test:locked", ID_A, &err) == 0);
	test_assert(ph_dedup_count(dd, &err) == 4);
	test_end();

	test_begin("dedup: after a panic the handle reopens by itself");
	pid = fork();
	if (pid == 0) {
		DB_ENV *env;
		DB *db;

		if (raw_open(dir, &env, &db) != 0 ||
		    env->set_flags(env, DB_PANIC_ENVIRONMENT, 1) != 0)
			_exit(1);
		_exit(0);
	}
	test_assert(reap(pid) == 0);
	test_assert(ph_dedup_claim(dd, "test:panic", NULL, &err) ==
		    PH_CLAIM_OWNED);
	if (err.msg[0] != '\0')
		printf("# %s\n", err.msg);
	test_assert(ph_dedup_commit(dd, "test:panic", ID_B, &err) == 0);
	test_assert(ph_dedup_claim(dd, "test:before", id, &err) ==
		    PH_CLAIM_DUPLICATE);
	test_assert(strcmp(id, ID_A) == 0);
	test_assert(ph_dedup_count(dd, &err) == 5);
	test_end();
	ph_dedup_close(&dd);
	free(dir);
}

/* Store val under key from a child that joins the environment directly,
 * as another program (or a later payhook) would. Returns 0 on success. */
static int
raw_put(const char *dir, const char *key, const void *val, size_t len)
{
	pid_t pid = fork();

	if (pid == 0) {
		DB_ENV *env;
		DB_TXN *txn;
		DB *db;
		DBT k, d;

		memset(&k, 0, sizeof(k));
		memset(&d, 0, sizeof(d));
		k.data = (void *)key;
		k.size = (u_int32_t)strlen(key);
		d.data = (void *)val;
		d.size = (u_int32_t)len;
		if (raw_open(dir, &env, &db) != 0 ||
		    env->txn_begin(env, NULL, &txn, 0) != 0 ||
		    db->put(db, txn, &k, &d, 0) != 0 ||
		    txn->commit(txn, 0) != 0 ||
		    db->close(db, 0) != 0 || env->close(env, 0) != 0)
			_exit(1);
		_exit(0);
	}
	return reap(pid);
}

static void
put_be_bytes(uint8_t *p, uint64_t v, unsigned n)
{
	while (n-- > 0) {
		p[n] = (uint8_t)(v & 0xff);
		v >>= 8;
	}
}

/* A record as dedup.c lays it out (see its comment): version 1 is 51
 * bytes, version 2 adds the owner's start time. Returns the length. */
static size_t
rec_bytes(uint8_t *out, unsigned version, unsigned state, uint32_t pid,
	  int64_t created, uint64_t start, const char *id)
{
	memset(out, 0, 59);
	out[0] = (uint8_t)version;
	out[1] = (uint8_t)state;
	put_be_bytes(out + 4, pid, 4);
	put_be_bytes(out + 8, (uint64_t)created, 8);
	memcpy(out + 24, id, strlen(id));
	if (version == 1)
		return 51;
	put_be_bytes(out + 51, start, 8);
	return 59;
}

static void
test_dedup_records(void)
{
	struct ph_error err = { "" };
	char *dir = test_dir("records");
	struct ph_dedup *dd;
	uint8_t buf[64];
	char id[27];
	size_t n;

	dd = begin_with_dd("dedup: unreadable records are taken over, not 503",
			   dir, 50);
	if (dd == NULL)
		return;
	test_assert(raw_put(dir, "test:garbage", "\xff\x00junk", 6) == 0);
	test_assert(ph_dedup_claim(dd, "test:garbage", id, &err) ==
		    PH_CLAIM_OWNED);
	test_assert(ph_dedup_commit(dd, "test:garbage", ID_A, &err) == 0);
	test_assert(ph_dedup_claim(dd, "test:garbage", id, &err) ==
		    PH_CLAIM_DUPLICATE);
	test_assert(strcmp(id, ID_A) == 0);
	/* A later version's record, during a rolling upgrade. */
	n = rec_bytes(buf, 3, 2, (uint32_t)getppid(), time(NULL), 0, ID_B);
	test_assert(raw_put(dir, "test:future", buf, n) == 0);
	test_assert(ph_dedup_claim(dd, "test:future", id, &err) ==
		    PH_CLAIM_OWNED);
	/* A right version with a state it does not know. */
	n = rec_bytes(buf, 2, 9, (uint32_t)getppid(), time(NULL), 0, "");
	test_assert(raw_put(dir, "test:state", buf, n) == 0);
	test_assert(ph_dedup_claim(dd, "test:state", id, &err) ==
		    PH_CLAIM_OWNED);
	test_assert(ph_dedup_count(dd, &err) == 3);
	test_end();

	test_begin("dedup: version 1 records still decode");
	n = rec_bytes(buf, 1, 2, 0, time(NULL), 0, ID_B);
	test_assert(n == 51);
	test_assert(raw_put(dir, "test:v1-done", buf, n) == 0);
	test_assert(ph_dedup_claim(dd, "test:v1-done", id, &err) ==
		    PH_CLAIM_DUPLICATE);
	test_assert(strcmp(id, ID_B) == 0);
	/* A pending claim of a live process, of unknown start time. */
	n = rec_bytes(buf, 1, 1, (uint32_t)getppid(), time(NULL), 0, "");
	test_assert(raw_put(dir, "test:v1-pending", buf, n) == 0);
	test_assert(ph_dedup_claim(dd, "test:v1-pending", id, &err) ==
		    PH_CLAIM_BUSY);
	test_end();

	test_begin("dedup: a live pid with another start time is not the owner");
	/* Same pid, but started at tick 1: the pid was reused. */
	n = rec_bytes(buf, 2, 1, (uint32_t)getppid(), time(NULL), 1, "");
	test_assert(raw_put(dir, "test:reused", buf, n) == 0);
	test_assert(ph_dedup_claim(dd, "test:reused", id, &err) ==
		    PH_CLAIM_OWNED);
	/* put_raw records the pid's real start time: the owner lives. */
	test_assert(ph_dedup_put_raw(dd, "test:live", false, (long)getppid(),
				     time(NULL), "", &err) == 0);
	test_assert(ph_dedup_claim(dd, "test:live", id, &err) ==
		    PH_CLAIM_BUSY);
	test_end();
	ph_dedup_close(&dd);
	free(dir);
}

/* Berkeley DB's write and pwrite, replaced in a child: the process dies
 * inside the log write of a commit, holding the log region's mutex, as a
 * worker SIGKILLed (or OOM-killed) at that moment would. The mutex is not
 * robust, so whoever writes the log next (every transaction) waits for it
 * for ever. */
static ssize_t
write_and_die(int fd, const void *buf, size_t len)
{
	(void)fd;
	(void)buf;
	(void)len;
	(void)kill(getpid(), SIGKILL);
	return -1;
}

static ssize_t
pwrite_and_die(int fd, const void *buf, size_t len, off_t off)
{
	(void)off;
	return write_and_die(fd, buf, len);
}

static void
die_in_next_write(void)
{
	db_env_set_func_write(write_and_die);
	db_env_set_func_pwrite(pwrite_and_die);
}

int
test_dedup_die_in_log_write(const char *dir)
{
	struct ph_dedup_options opt = { 0 };
	struct ph_error err = { "" };
	struct ph_dedup *dd = ph_dedup_open(dir, &opt, &err);
	char key[64];

	if (dd == NULL) {
		fprintf(stderr, "die-in-log-write: %s\n", err.msg);
		return 1;
	}
	/* Records between the key below and the ones the tests deliver
	 * ("ngn:ngn-gateway:..."), so that their leaf pages differ: see
	 * test_dedup_wedged(). */
	for (int i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "m-fill:%04d", i);
		if (ph_dedup_put_raw(dd, key, true, 0, time(NULL), ID_A,
				     &err) != 0) {
			fprintf(stderr, "die-in-log-write: %s\n", err.msg);
			return 1;
		}
	}
	if (ph_dedup_claim(dd, "a-killer", NULL, &err) != PH_CLAIM_OWNED) {
		fprintf(stderr, "die-in-log-write: %s\n", err.msg);
		return 1;
	}
	die_in_next_write();
	(void)ph_dedup_commit(dd, "a-killer", ID_B, &err);
	fprintf(stderr, "die-in-log-write: the commit did not write: %s\n",
		err.msg);
	return 1;
}

/* Wait up to ms for child pid; on time out kill it and return -1. */
static int
reap_within(pid_t pid, unsigned ms)
{
	uint64_t end = ph_now_monotonic_us() + (uint64_t)ms * 1000;
	int st;

	while (ph_now_monotonic_us() < end) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) :
			       128 + WTERMSIG(st);
		if (r < 0 && errno != EINTR)
			return -1;
		sleep_ms(20);
	}
	(void)kill(pid, SIGKILL);
	(void)reap(pid);
	return -1;
}

static void
test_dedup_wedged(void)
{
	struct ph_dedup_options opt = { .watchdog_ms = 1000 };
	char *dir = test_dir("wedged");
	int ready[2], go[2], code;
	pid_t killer, victim, after;

	test_begin("dedup: a process stuck on a dead process's mutex gives up");
	/* Enough records that the two keys below are on different leaf
	 * pages: the victim must not meet the killer's page locks (a lock
	 * conflict runs failchk, which notices the dead process), only the
	 * mutex it died holding. */
	after = fork();
	if (after == 0) {
		struct ph_error err = { "" };
		struct ph_dedup *dd = ph_dedup_open(dir, &opt, &err);
		char key[64];
		int ok = 0;

		if (dd == NULL)
			_exit(1);
		for (int i = 0; i < 2000; i++) {
			snprintf(key, sizeof(key), "test:m-fill:%04d", i);
			ok |= ph_dedup_put_raw(dd, key, true, 0, time(NULL),
					       ID_A, &err);
		}
		ph_dedup_close(&dd);
		_exit(ok == 0 ? 0 : 2);
	}
	test_assert(reap_within(after, 60000) == 0);
	test_assert(pipe(ready) == 0 && pipe(go) == 0);
	victim = fork();
	if (victim == 0) {
		struct ph_error err = { "" };
		struct ph_dedup *dd = ph_dedup_open(dir, &opt, &err);
		enum ph_claim r;
		uint64_t t0;
		int c;

		close(ready[0]);
		close(go[1]);
		if (dd == NULL)
			_exit(10);
		write_byte(ready[1]);
		(void)read_byte(go[0]);
		t0 = ph_now_monotonic_us();
		r = ph_dedup_claim(dd, "test:z-victim", NULL, &err);
		if (r == PH_CLAIM_OWNED)
			c = ph_dedup_commit(dd, "test:z-victim", ID_A, &err) < 0 ?
			    0 : 11;
		else
			c = r == PH_CLAIM_ERROR ? 0 : 12;
		t0 = ph_now_monotonic_us() - t0;
		printf("# the stuck call gave up after %llu ms: %s\n",
		       (unsigned long long)(t0 / 1000), err.msg);
		if (c == 0 && (!ph_dedup_wedged() || t0 > 3000000))
			c = 13;
		/* Wedged: fails at once, never touches the environment. */
		if (c == 0 && (ph_dedup_claim(dd, "test:x", NULL, &err) !=
			       PH_CLAIM_ERROR ||
			       strstr(err.msg, "not used in this process") ==
			       NULL))
			c = 14;
		ph_dedup_close(&dd);
		_exit(c);
	}
	close(go[0]);
	close(ready[1]);
	test_assert(read_byte(ready[0]));
	killer = fork();
	if (killer == 0) {
		struct ph_error err = { "" };
		struct ph_dedup *dd = ph_dedup_open(dir, &opt, &err);

		if (dd == NULL ||
		    ph_dedup_claim(dd, "test:a-killer", NULL, &err) !=
		    PH_CLAIM_OWNED)
			_exit(1);
		die_in_next_write();
		(void)ph_dedup_commit(dd, "test:a-killer", ID_B, &err);
		_exit(2);
	}
	test_assert(reap_within(killer, 20000) == 128 + SIGKILL);
	close(go[1]);			/* the victim goes */
	code = reap_within(victim, 20000);
	if (code != 0)
		printf("# the victim: %s\n", code < 0 ?
		       "still stuck after 20 s, killed" : "failed");
	test_assert(code == 0);
	close(ready[0]);
	/* Both are gone: the next process recovers and carries on. */
	after = fork();
	if (after == 0) {
		struct ph_error err = { "" };
		struct ph_dedup *dd = ph_dedup_open(dir, &opt, &err);

		if (dd == NULL) {
			child_fail("open after", &err);
			_exit(1);
		}
		if (ph_dedup_claim(dd, "test:z-victim", NULL, &err) !=
		    PH_CLAIM_OWNED ||
		    ph_dedup_commit(dd, "test:z-victim", ID_A, &err) != 0) {
			child_fail("claim after", &err);
			_exit(2);
		}
		ph_dedup_close(&dd);
		_exit(ph_dedup_wedged() ? 3 : 0);
	}
	test_assert(reap_within(after, 20000) == 0);
	test_end();
	free(dir);
}

/* Claim and commit new keys for ms milliseconds, spread over the key
 * range of test_dedup_count_load()'s records (n of them). */
static int
load_child(const char *dir, unsigned c, unsigned n, unsigned ms)
{
	struct ph_error err = { "" };
	struct ph_dedup *dd = open_dd(dir, 0, &err);
	uint64_t end = ph_now_monotonic_us() + (uint64_t)ms * 1000;
	char key[64];

	if (dd == NULL)
		return 1;
	for (unsigned i = 0; ph_now_monotonic_us() < end; i++) {
		snprintf(key, sizeof(key), "test:count:%06u:%u:%u",
			 (i * 7919u + c * 1000u) % n, c, i);
		if (ph_dedup_claim(dd, key, NULL, &err) != PH_CLAIM_OWNED ||
		    ph_dedup_commit(dd, key, ID_A, &err) != 0) {
			child_fail("load", &err);
			return 2;
		}
	}
	ph_dedup_close(&dd);
	return 0;
}

static void
test_dedup_count_load(void)
{
	enum { CHILDREN = 3, RECORDS = 20000, LOAD_MS = 6000 };
	struct ph_error err = { "" };
	char *dir = test_dir("count-load");
	struct ph_dedup *dd;
	pid_t pids[CHILDREN];
	char key[64];
	long n, last = 0;
	uint64_t t0, worst = 0;
	int ok = 0, counts = 0;

	dd = begin_with_dd("dedup: counting while other processes commit",
			   dir, 0);
	if (dd == NULL)
		return;
	for (int i = 0; i < RECORDS; i++) {
		snprintf(key, sizeof(key), "test:count:%06d", i);
		ok |= ph_dedup_put_raw(dd, key, true, 0, time(NULL), ID_A,
				       &err);
	}
	test_assert(ok == 0);
	t0 = ph_now_monotonic_us();
	test_assert(ph_dedup_count(dd, &err) == RECORDS);
	printf("# counting %d records without load took %llu ms\n", RECORDS,
	       (unsigned long long)((ph_now_monotonic_us() - t0) / 1000));
	for (int c = 0; c < CHILDREN; c++) {
		pids[c] = fork();
		if (pids[c] == 0)
			_exit(load_child(dir, (unsigned)c, RECORDS, LOAD_MS));
	}
	sleep_ms(200);
	t0 = ph_now_monotonic_us();
	while (ph_now_monotonic_us() - t0 < (LOAD_MS - 700) * 1000ull) {
		uint64_t t1 = ph_now_monotonic_us(), took;

		n = ph_dedup_count(dd, &err);
		took = ph_now_monotonic_us() - t1;
		worst = took > worst ? took : worst;
		if (n < 0)
			printf("# count failed: %s\n", err.msg);
		test_assert(n >= last && n >= RECORDS);
		last = n;
		counts++;
	}
	for (int c = 0; c < CHILDREN; c++)
		test_assert_idx(reap(pids[c]) == 0, c);
	printf("# %d counts under load, the slowest took %llu ms; "
	       "%ld records\n", counts, (unsigned long long)(worst / 1000),
	       ph_dedup_count(dd, &err));
	/* One transaction over every record used to start over on each
	 * conflict: one or two counts got through in this time. */
	test_assert(counts >= 5);
	test_end();
	ph_dedup_close(&dd);
	free(dir);
}

/* Claim and commit keys as fast as possible, reporting each commit. */
static void PH_NORETURN
storm_child(const char *dir, unsigned round, int fd)
{
	struct ph_error err = { "" };
	struct ph_dedup *dd = open_dd(dir, 0, &err);
	char key[64];

	if (dd == NULL)
		_exit(1);
	for (uint32_t i = 0;; i++) {
		snprintf(key, sizeof(key), "test:storm:%u:%u", round,
			 (unsigned)i);
		if (ph_dedup_claim(dd, key, NULL, &err) != PH_CLAIM_OWNED ||
		    ph_dedup_commit(dd, key, ID_A, &err) != 0)
			_exit(2);
		if (write(fd, &i, sizeof(i)) != sizeof(i))
			_exit(3);
	}
}

static void
test_dedup_storm(void)
{
	static const unsigned kill_after_ms[] = { 7, 19, 31, 43, 13, 3 };
	struct ph_error err = { "" };
	char *dir = test_dir("storm");
	struct ph_dedup *dd;
	char key[64], id[27];
	unsigned fds_before;
	uint32_t i, n;
	int fds[2];
	pid_t pid;

	test_begin("dedup: processes SIGKILLed mid-transaction");
	dd = open_dd(dir, 0, &err);
	test_assert(dd != NULL);
	/* Descriptors: compare with the log file open in both counts. */
	test_assert(dd != NULL &&
		    ph_dedup_claim(dd, "test:fd:1", NULL, &err) ==
		    PH_CLAIM_OWNED &&
		    ph_dedup_commit(dd, "test:fd:1", ID_A, &err) == 0);
	fds_before = count_files("/proc/self/fd", "", NULL);
	for (unsigned round = 0;
	     dd != NULL && round < PH_N_ELEMENTS(kill_after_ms); round++) {
		test_assert(pipe(fds) == 0);
		pid = fork();
		if (pid == 0) {
			close(fds[0]);
			storm_child(dir, round, fds[1]);
		}
		close(fds[1]);
		sleep_ms(kill_after_ms[round]);
		test_assert_idx(kill(pid, SIGKILL) == 0, round);
		test_assert_idx(reap(pid) == 128 + SIGKILL, round);
		n = 0;
		while (read(fds[0], &i, sizeof(i)) == sizeof(i))
			n = i + 1;
		close(fds[0]);
		/* Someone opens the environment after the death (DB_REGISTER
		 * notices it there), then the old handle goes on. */
		pid = fork();
		if (pid == 0) {
			struct ph_error cerr = { "" };
			struct ph_dedup *cdd = open_dd(dir, 0, &cerr);

			if (cdd == NULL) {
				child_fail("open", &cerr);
				_exit(1);
			}
			ph_dedup_close(&cdd);
			_exit(0);
		}
		test_assert_idx(reap(pid) == 0, round);
		/* Every commit that returned is durable and visible; the
		 * claim in flight, if any, is taken over. */
		for (i = 0; i <= n; i++) {
			enum ph_claim r;

			snprintf(key, sizeof(key), "test:storm:%u:%u", round,
				 (unsigned)i);
			r = ph_dedup_claim(dd, key, id, &err);
			if (i < n)
				test_assert_idx(r == PH_CLAIM_DUPLICATE &&
						strcmp(id, ID_A) == 0, i);
			else
				test_assert_idx(r == PH_CLAIM_OWNED ||
						r == PH_CLAIM_DUPLICATE, i);
			if (r == PH_CLAIM_ERROR)
				printf("# %s\n", err.msg);
		}
	}
	/* Reopening after a recovery leaks no descriptor. */
	test_assert(dd != NULL &&
		    ph_dedup_claim(dd, "test:fd:2", NULL, &err) ==
		    PH_CLAIM_OWNED &&
		    ph_dedup_commit(dd, "test:fd:2", ID_A, &err) == 0);
	test_assert(count_files("/proc/self/fd", "", NULL) == fds_before);
	test_end();
	ph_dedup_close(&dd);
	free(dir);
}

/* One short-lived process per delivery, as under CGI. */
static int
churn_runner(const char *dir, unsigned runner, unsigned n)
{
	unsigned bad = 0;

	for (unsigned i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			struct ph_error err = { "" };
			struct ph_dedup *dd = open_dd(dir, 0, &err);
			char key[64];
			int code = 0;

			if (dd == NULL)
				_exit(1);
			snprintf(key, sizeof(key), "test:churn:%u:%u", runner,
				 i);
			if (ph_dedup_claim(dd, key, NULL, &err) !=
			    PH_CLAIM_OWNED ||
			    ph_dedup_commit(dd, key, ID_A, &err) != 0) {
				child_fail("churn", &err);
				code = 2;
			}
			ph_dedup_close(&dd);
			_exit(code);
		}
		if (reap(pid) != 0)
			bad++;
	}
	return bad == 0 ? 0 : 1;
}

static void
test_dedup_churn(void)
{
	enum { RUNNERS = 4, PER_RUNNER = 60 };
	struct ph_error err = { "" };
	char *dir = test_dir("churn");
	pid_t pids[RUNNERS];
	struct ph_dedup *dd;
	ino_t region;

	test_begin("dedup: processes coming and going never force recovery");
	dd = open_dd(dir, 0, &err);
	test_assert(dd != NULL);
	region = region_pin(dir);
	test_assert(region != 0);
	for (unsigned r = 0; r < RUNNERS; r++) {
		pids[r] = fork();
		if (pids[r] == 0)
			_exit(churn_runner(dir, r, PER_RUNNER));
	}
	for (unsigned r = 0; r < RUNNERS; r++)
		test_assert_idx(reap(pids[r]) == 0, r);
	test_assert(inode_of(dir, "__db.001") == region);
	region_unpin();
	test_assert(dd != NULL &&
		    ph_dedup_count(dd, &err) == RUNNERS * PER_RUNNER);
	test_end();
	ph_dedup_close(&dd);
	free(dir);
}

static void
test_dedup_reboot(void)
{
	static const char other_boot[] =
		"00000000-0000-0000-0000-000000000000\n";
	char *dir = test_dir("reboot"), *lock;
	struct ph_error err = { "" };
	char boot[64] = "", mark[64] = "";
	struct ph_dedup *dd;
	ino_t region;
	ssize_t n;
	int fd;

	test_begin("dedup: the first open after a reboot recovers");
	fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY);
	n = fd >= 0 ? read(fd, boot, sizeof(boot) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n != 37) {
		printf("# no boot id: skipped\n");
		test_end();
		free(dir);
		return;
	}
	dd = open_dd(dir, 0, &err);
	test_assert(dd != NULL);
	test_assert(dd != NULL &&
		    ph_dedup_claim(dd, "test:boot", NULL, &err) ==
		    PH_CLAIM_OWNED &&
		    ph_dedup_commit(dd, "test:boot", ID_A, &err) == 0);
	ph_dedup_close(&dd);
	lock = ph_xasprintf("%s/dedup.lock", dir);
	/* Same boot: reopening does not recover. */
	region = region_pin(dir);
	test_assert(region != 0);
	dd = open_dd(dir, 0, &err);
	test_assert(dd != NULL);
	ph_dedup_close(&dd);
	test_assert(inode_of(dir, "__db.001") == region);
	/* Pretend the region files are from before a reboot. */
	fd = open(lock, O_WRONLY | O_TRUNC);
	test_assert(fd >= 0 && write(fd, other_boot, sizeof(other_boot) - 1)
		    == (ssize_t)sizeof(other_boot) - 1 && close(fd) == 0);
	dd = open_dd(dir, 0, &err);
	test_assert(dd != NULL);
	test_assert(inode_of(dir, "__db.001") != region);
	region_unpin();
	test_assert(dd != NULL &&
		    ph_dedup_claim(dd, "test:boot", NULL, &err) ==
		    PH_CLAIM_DUPLICATE);
	ph_dedup_close(&dd);
	fd = open(lock, O_RDONLY);
	test_assert(fd >= 0 && read(fd, mark, sizeof(mark) - 1) == 37 &&
		    close(fd) == 0);
	test_assert(strcmp(mark, boot) == 0);
	test_end();
	free(lock);
	free(dir);
}

static void
test_dedup_purge(void)
{
	struct ph_dedup_options opt = {
		.retention_days = 30,
		.claim_wait_ms = 50,
		.claim_timeout_s = 35 * DAY,
	};
	struct ph_error err = { "" };
	char *dir = test_dir("purge"), *dir2 = test_dir("purge2");
	struct ph_dedup *dd;
	time_t now = time(NULL);
	char key[64];
	int ok = 0;

	test_begin("dedup: purge deletes exactly the expired records");
	dd = ph_dedup_open(dir, &opt, &err);
	test_assert(dd != NULL);
	if (dd == NULL) {
		test_end();
		free(dir);
		free(dir2);
		return;
	}
	/* In key order: 250 expired, 1050 recent (more than one batch
	 * scans), 30 expired behind them, and two pending. */
	for (int i = 0; i < 250; i++) {
		snprintf(key, sizeof(key), "test:a-old:%03d", i);
		ok |= ph_dedup_put_raw(dd, key, true, 0, now - 31 * DAY, ID_A,
				       &err);
	}
	for (int i = 0; i < 1050; i++) {
		snprintf(key, sizeof(key), "test:b-new:%04d", i);
		ok |= ph_dedup_put_raw(dd, key, true, 0, now - 29 * DAY, ID_A,
				       &err);
	}
	for (int i = 0; i < 30; i++) {
		snprintf(key, sizeof(key), "test:c-old:%03d", i);
		ok |= ph_dedup_put_raw(dd, key, true, 0, now - 31 * DAY, ID_A,
				       &err);
	}
	/* Past the retention, but younger than the claim timeout: kept. */
	ok |= ph_dedup_put_raw(dd, "test:d-pending", false, (long)getppid(),
			       now - 34 * DAY, "", &err);
	/* Past both, its owner dead: deleted. */
	ok |= ph_dedup_put_raw(dd, "test:e-pending", false, (long)dead_pid(),
			       now - 36 * DAY, "", &err);
	/* Past both, its owner alive: kept until ten claim timeouts. */
	ok |= ph_dedup_put_raw(dd, "test:f-pending", false, (long)getppid(),
			       now - 36 * DAY, "", &err);
	ok |= ph_dedup_put_raw(dd, "test:g-pending", false, (long)getppid(),
			       now - 351 * DAY, "", &err);
	test_assert(ok == 0);
	test_assert(ph_dedup_count(dd, &err) == 1334);
	test_assert(ph_dedup_purge(dd, true, &err) == 282);
	test_assert(ph_dedup_count(dd, &err) == 1052);
	test_assert(ph_dedup_claim(dd, "test:f-pending", NULL, &err) ==
		    PH_CLAIM_BUSY);
	test_assert(ph_dedup_claim(dd, "test:a-old:000", NULL, &err) ==
		    PH_CLAIM_OWNED);
	test_assert(ph_dedup_claim(dd, "test:c-old:029", NULL, &err) ==
		    PH_CLAIM_OWNED);
	test_assert(ph_dedup_claim(dd, "test:b-new:0000", NULL, &err) ==
		    PH_CLAIM_DUPLICATE);
	test_assert(ph_dedup_claim(dd, "test:d-pending", NULL, &err) ==
		    PH_CLAIM_BUSY);
	test_assert(ph_dedup_release(dd, "test:a-old:000", &err) == 0);
	test_assert(ph_dedup_release(dd, "test:c-old:029", &err) == 0);
	test_assert(ph_dedup_count(dd, &err) == 1052);
	test_end();

	test_begin("dedup: an unforced purge works in slices");
	{
		struct ph_dedup_options sliced = opt;
		char *dir4 = test_dir("purge4");
		struct ph_dedup *d4;
		long n = 0, calls = 0;

		sliced.purge_slice_ms = 1;
		d4 = ph_dedup_open(dir4, &sliced, &err);
		test_assert(d4 != NULL);
		for (int i = 0; d4 != NULL && i < 5000; i++) {
			snprintf(key, sizeof(key), "test:old:%05d", i);
			ok |= ph_dedup_put_raw(d4, key, true, 0,
					       now - 31 * DAY, ID_A, &err);
		}
		ok |= ph_dedup_put_raw(d4, "test:z-new", true, 0,
				       now - DAY, ID_A, &err);
		test_assert(ok == 0);
		test_assert(!ph_dedup_purging(d4));
		/* Each slice ends after its first batch (1000 records
		 * scanned): the purge takes several calls, and only the
		 * last one returns its count. */
		do {
			n = ph_dedup_purge(d4, false, &err);
			calls++;
			if (ph_dedup_purging(d4))
				test_assert(n == 0);
		} while (n == 0 && ph_dedup_purging(d4) && calls < 100);
		test_assert(n == 5000);
		test_assert(calls >= 5);
		test_assert(!ph_dedup_purging(d4));
		test_assert(ph_dedup_count(d4, &err) == 1);
		/* Stamped when it started: the next is an hour away. */
		test_assert(ph_dedup_purge(d4, false, &err) == 0);
		test_assert(!ph_dedup_purging(d4));
		ph_dedup_close(&d4);
		free(dir4);
	}
	test_end();

	test_begin("dedup: purge runs at most hourly unless forced");
	test_assert(ph_dedup_put_raw(dd, "test:a-old:late", true, 0,
				     now - 31 * DAY, ID_A, &err) == 0);
	test_assert(ph_dedup_purge(dd, false, &err) == 0);
	test_assert(ph_dedup_count(dd, &err) == 1053);
	test_assert(ph_dedup_purge(dd, true, &err) == 1);
	test_assert(ph_dedup_count(dd, &err) == 1052);
	ph_dedup_close(&dd);
	/* A first purge needs no force. */
	dd = ph_dedup_open(dir2, &opt, &err);
	test_assert(dd != NULL);
	if (dd != NULL) {
		test_assert(ph_dedup_put_raw(dd, "test:old", true, 0,
					     now - 31 * DAY, ID_A, &err) == 0);
		test_assert(ph_dedup_put_raw(dd, "test:new", true, 0, now,
					     ID_A, &err) == 0);
		test_assert(ph_dedup_purge(dd, false, &err) == 1);
		test_assert(ph_dedup_purge(dd, false, &err) == 0);
		test_assert(ph_dedup_count(dd, &err) == 1);
	}
	test_end();
	ph_dedup_close(&dd);

	test_begin("dedup: purge drops pending records past the claim timeout");
	{
		/* The default claim timeout (120 s) and retention (30 days).
		 * A pending record an hour old was left by a failed request;
		 * it must not stay for the whole retention period. */
		struct ph_dedup_options defaults = { .claim_wait_ms = 50 };
		char *dir3 = test_dir("purge3");

		dd = ph_dedup_open(dir3, &defaults, &err);
		test_assert(dd != NULL);
		if (dd != NULL) {
			test_assert(ph_dedup_put_raw(dd, "test:stale", false,
			    (long)getppid(), now - 3600, "", &err) == 0);
			test_assert(ph_dedup_put_raw(dd, "test:young", false,
			    (long)getppid(), now - 60, "", &err) == 0);
			test_assert(ph_dedup_purge(dd, true, &err) == 1);
			test_assert(ph_dedup_count(dd, &err) == 1);
			/* The survivor is the young one, still pending under
			 * its live owner. */
			test_assert(ph_dedup_claim(dd, "test:young", NULL,
			    &err) == PH_CLAIM_BUSY);
		}
		ph_dedup_close(&dd);
		free(dir3);
	}
	test_end();
	free(dir);
	free(dir2);
}

static void
test_dedup_logs(void)
{
	enum { CYCLES = 3000 };
	struct ph_error err = { "" };
	char *dir = test_dir("logs"), *conf;
	static const char db_config[] = "set_lg_max 131072\n";
	unsigned max_seen = 0, max_log = 0, n;
	struct ph_dedup *dd;
	char key[64];
	uint64_t t0;
	int fd, bad = 0;

	test_begin("dedup: log files are removed as they fill");
	/* Small log files (BDB's DB_CONFIG overrides our 1 MiB) so that
	 * 3000 cycles fill many of them. */
	test_assert(mkdir(dir, 0700) == 0);
	conf = ph_xasprintf("%s/DB_CONFIG", dir);
	fd = open(conf, O_WRONLY | O_CREAT | O_EXCL, 0600);
	test_assert(fd >= 0 && write(fd, db_config, sizeof(db_config) - 1) ==
		    (ssize_t)sizeof(db_config) - 1 && close(fd) == 0);
	free(conf);
	dd = open_dd(dir, 0, &err);
	test_assert(dd != NULL);
	t0 = ph_now_monotonic_us();
	for (int i = 0; dd != NULL && i < CYCLES; i++) {
		snprintf(key, sizeof(key), "test:log:%05d", i);
		if (ph_dedup_claim(dd, key, NULL, &err) != PH_CLAIM_OWNED ||
		    ph_dedup_commit(dd, key, ID_A, &err) != 0)
			bad++;
		if (i % 100 == 99) {
			n = count_files(dir, "log.", NULL);
			if (n > max_seen)
				max_seen = n;
		}
	}
	t0 = ph_now_monotonic_us() - t0;
	printf("# %d claim+commit cycles took %llu ms\n", CYCLES,
	       (unsigned long long)(t0 / 1000));
	test_assert(bad == 0);
	n = count_files(dir, "log.", &max_log);
	printf("# log files: %u now, at most %u, last is number %u\n", n,
	       max_seen, max_log);
	test_assert(n <= 3);
	test_assert(max_seen <= 3);
	test_assert(max_log >= 5);
	test_assert(ph_dedup_count(dd, &err) == CYCLES);
	test_end();
	ph_dedup_close(&dd);
	free(dir);
}


/* The rebuild callback of test_dedup_rebuild(): counts its calls, puts
 * back one record (the spool's, in payhook), and fails when asked. */
struct rebuild_probe {
	unsigned calls;
	bool fail;
	bool not_now;		/* answer 1: leave it to the next open */
	bool lock_held;		/* dedup.lock was exclusive during the call */
	const char *dir;
};

static int
rebuild_probe(struct ph_dedup *dd, void *arg, struct ph_error *err)
{
	struct rebuild_probe *rp = arg;
	char *lock = ph_xasprintf("%s/dedup.lock", rp->dir);
	int fd = open(lock, O_RDONLY | O_CLOEXEC);

	rp->calls++;
	/* Another open file description cannot share it meanwhile. */
	rp->lock_held = fd >= 0 && flock(fd, LOCK_SH | LOCK_NB) != 0 &&
			errno == EWOULDBLOCK;
	if (fd >= 0)
		close(fd);
	free(lock);
	if (rp->fail)
		return ph_error_set(err, "rebuild failed on purpose");
	if (rp->not_now)
		return 1;
	return ph_dedup_restore(dd, "test:spooled", ID_A, (int64_t)time(NULL),
				err);
}

static void
test_dedup_rebuild(void)
{
	static const char other_boot[] =
		"00000000-0000-0000-0000-000000000000\n";
	char *dir = test_dir("boot-rebuild"), *lock = NULL;
	struct rebuild_probe rp = { .dir = dir };
	struct ph_dedup_options opt = {
		.rebuild = rebuild_probe,
		.rebuild_arg = &rp,
	};
	struct ph_error err = { "" };
	char id[PH_ULID_LEN + 1];
	struct ph_dedup *dd;
	int fd;

	test_begin("dedup: a fresh start rebuilds under the lock, once a "
		   "boot; commits wait for a flush");
	if (access("/proc/sys/kernel/random/boot_id", R_OK) != 0) {
		printf("# no boot id: skipped\n");
		test_end();
		free(dir);
		return;
	}
	/* A new environment is a fresh start. */
	dd = ph_dedup_open(dir, &opt, &err);
	test_assert(dd != NULL && rp.calls == 1 && rp.lock_held);
	test_assert(dd != NULL &&
		    ph_dedup_claim(dd, "test:spooled", id, &err) ==
		    PH_CLAIM_DUPLICATE && strcmp(id, ID_A) == 0);
	/* A restore keeps a record that is done already. */
	test_assert(dd != NULL &&
		    ph_dedup_restore(dd, "test:spooled", ID_B, 0, &err) == 0 &&
		    ph_dedup_claim(dd, "test:spooled", id, &err) ==
		    PH_CLAIM_DUPLICATE && strcmp(id, ID_A) == 0);
	/* Commits are written, and flushed by ph_dedup_flush(). */
	test_assert(dd != NULL && ph_dedup_unflushed_since(dd) == 0);
	test_assert(dd != NULL &&
		    ph_dedup_claim(dd, "test:new", NULL, &err) ==
		    PH_CLAIM_OWNED &&
		    ph_dedup_commit(dd, "test:new", ID_B, &err) == 0 &&
		    ph_dedup_unflushed_since(dd) != 0 &&
		    ph_dedup_flush(dd, &err) == 0 &&
		    ph_dedup_unflushed_since(dd) == 0);
	ph_dedup_close(&dd);
	/* The same boot: no rebuild. */
	dd = ph_dedup_open(dir, &opt, &err);
	test_assert(dd != NULL && rp.calls == 1);
	ph_dedup_close(&dd);
	/* Another boot: a rebuild; when it fails the open fails and
	 * records nothing, so the next open rebuilds again. */
	lock = ph_xasprintf("%s/dedup.lock", dir);
	fd = open(lock, O_WRONLY | O_TRUNC);
	test_assert(fd >= 0 && write(fd, other_boot, sizeof(other_boot) - 1)
		    == (ssize_t)sizeof(other_boot) - 1 && close(fd) == 0);
	rp.fail = true;
	dd = ph_dedup_open(dir, &opt, &err);
	test_assert(dd == NULL && rp.calls == 2 &&
		    strstr(err.msg, "on purpose") != NULL);
	ph_dedup_close(&dd);
	rp.fail = false;
	dd = ph_dedup_open(dir, &opt, &err);
	test_assert(dd != NULL && rp.calls == 3 && rp.lock_held);
	test_assert(dd != NULL &&
		    ph_dedup_claim(dd, "test:new", id, &err) ==
		    PH_CLAIM_DUPLICATE && strcmp(id, ID_B) == 0);
	ph_dedup_close(&dd);
	dd = ph_dedup_open(dir, &opt, &err);
	test_assert(dd != NULL && rp.calls == 3);
	ph_dedup_close(&dd);
	/* "Not now": the open succeeds and the next one rebuilds. */
	fd = open(lock, O_WRONLY | O_TRUNC);
	test_assert(fd >= 0 && write(fd, other_boot, sizeof(other_boot) - 1)
		    == (ssize_t)sizeof(other_boot) - 1 && close(fd) == 0);
	rp.not_now = true;
	dd = ph_dedup_open(dir, &opt, &err);
	test_assert(dd != NULL && rp.calls == 4);
	ph_dedup_close(&dd);
	rp.not_now = false;
	dd = ph_dedup_open(dir, &opt, &err);
	test_assert(dd != NULL && rp.calls == 5);
	ph_dedup_close(&dd);
	dd = ph_dedup_open(dir, &opt, &err);
	test_assert(dd != NULL && rp.calls == 5);
	ph_dedup_close(&dd);
	test_end();
	free(lock);
	free(dir);
}

void
test_dedup(void)
{
	test_dedup_permissions();
	test_dedup_claim();
	test_dedup_release();
	test_dedup_dead_owner();
	test_dedup_deadline();
	test_dedup_region_rebuild();
	test_dedup_race();
	test_dedup_distinct();
	test_dedup_crash();
	test_dedup_records();
	test_dedup_count_load();
	test_dedup_wedged();
	test_dedup_storm();
	test_dedup_churn();
	test_dedup_reboot();
	test_dedup_rebuild();
	test_dedup_purge();
	test_dedup_logs();
}
