/* stats.c - delivery counters and the last storage error (stats.h).
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * The request path calls ph_stats_count() once per delivery, after the
 * answer's status is known: in a process that has the file open already,
 * that is four system calls (lock, pread, pwrite, unlock) on 16 bytes and
 * no fsync. A CGI process opens the file first (openat, fstat).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "stats.h"

#define STATS_DIR "stats"
#define FAULT_FILE "storage-error"
#define ROUTE_PREFIX "route-"
/* Log a counter write error at most this often per process. */
#define WARN_EVERY_S 300

#define ROUTE_FILE_SIZE \
	((off_t)(PH_STATS_MINUTES * sizeof(struct ph_stats_bucket)))

struct open_file {
	char *route;			/* NULL: the storage-error file */
	int fd;
};

struct ph_stats {
	char *state_dir;
	char *dir;			/* <state_dir>/stats */
	struct open_file *files;
	size_t n_files;
	time_t last_warn;
};

struct ph_stats *
ph_stats_new(const char *state_dir)
{
	struct ph_stats *st = ph_xcalloc(1, sizeof(*st));

	st->state_dir = ph_xstrdup(state_dir);
	st->dir = ph_xasprintf("%s/" STATS_DIR, state_dir);
	return st;
}

void
ph_stats_free(struct ph_stats **stp)
{
	struct ph_stats *st = *stp;

	if (st == NULL)
		return;
	for (size_t i = 0; i < st->n_files; i++) {
		close(st->files[i].fd);
		free(st->files[i].route);
	}
	free(st->files);
	free(st->state_dir);
	free(st->dir);
	free(st);
	*stp = NULL;
}

static void
warn(struct ph_stats *st, time_t now, const struct ph_error *err)
{
	if (st->last_warn != 0 && now - st->last_warn < WARN_EVERY_S)
		return;
	st->last_warn = now;
	ph_log_warn("status counters not updated (deliveries are not "
		    "affected; said at most every %d s): %s", WARN_EVERY_S,
		    err->msg);
}

/* Open (creating it, and the directory, when missing) the file name in
 * st->dir, at least size bytes long, its blocks reserved. Returns the
 * descriptor or -1 (err set). */
static int
open_file(const struct ph_stats *st, const char *name, off_t size,
	  struct ph_error *err)
{
	char path[4096];
	struct stat sb;
	int fd, e;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", st->dir, name) >=
	    sizeof(path))
		return ph_error_set(err, "%s/%s: path too long", st->dir,
				    name);
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 && errno == ENOENT) {
		/* The state directory too, as the dedup database makes it:
		 * a route that refuses every request (a wrong secret) is
		 * counted before anything was ever delivered. No fsync:
		 * losing a new directory in a crash loses counts, nothing
		 * else. */
		if (mkdir(st->state_dir, 0700) < 0 && errno != EEXIST)
			return ph_error_set(err, "mkdir(%s) failed: %s",
					    st->state_dir, strerror(errno));
		if (mkdir(st->dir, 0700) < 0 && errno != EEXIST)
			return ph_error_set(err, "mkdir(%s) failed: %s",
					    st->dir, strerror(errno));
		fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
			  0600);
	}
	if (fd < 0)
		return ph_error_set(err, "open(%s) failed: %s", path,
				    strerror(errno));
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		ph_error_set(err, "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	/* Where blocks cannot be reserved, a sparse file of the full size
	 * still reads as stale buckets. */
	if (sb.st_size < size && (e = posix_fallocate(fd, 0, size)) != 0 &&
	    ((e != EOPNOTSUPP && e != EINVAL) || ftruncate(fd, size) < 0)) {
		ph_error_set(err, "allocating %s failed: %s", path,
			     strerror(e != EOPNOTSUPP && e != EINVAL ? e :
				      errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* The descriptor of route's file (route NULL: the storage-error file),
 * opened on first use and kept. Returns it or -1 (err set). */
static int
file_fd(struct ph_stats *st, const char *route, struct ph_error *err)
{
	char name[sizeof(ROUTE_PREFIX) + 256];
	int fd;

	for (size_t i = 0; i < st->n_files; i++) {
		const char *r = st->files[i].route;

		if (route == NULL ? r == NULL :
		    (r != NULL && strcmp(r, route) == 0))
			return st->files[i].fd;
	}
	if (route == NULL) {
		fd = open_file(st, FAULT_FILE,
			       (off_t)sizeof(struct ph_stats_fault), err);
	} else {
		/* Route names are [A-Za-z0-9._-]{1,128} (conf.c): the prefix
		 * keeps "." and ".." from naming a directory. */
		snprintf(name, sizeof(name), ROUTE_PREFIX "%s", route);
		fd = open_file(st, name, ROUTE_FILE_SIZE, err);
	}
	if (fd < 0)
		return -1;
	st->files = ph_xrealloc(st->files,
				(st->n_files + 1) * sizeof(*st->files));
	st->files[st->n_files].route = route != NULL ? ph_xstrdup(route) :
	    NULL;
	st->files[st->n_files].fd = fd;
	st->n_files++;
	return fd;
}

/* Lock (type F_RDLCK, F_WRLCK or F_UNLCK) len bytes at off, waiting. */
static int
lock_range(int fd, short type, off_t off, off_t len)
{
	struct flock fl = {
		.l_type = type, .l_whence = SEEK_SET, .l_start = off,
		.l_len = len,
	};
	int ret;

	while ((ret = fcntl(fd, F_OFD_SETLKW, &fl)) < 0 && errno == EINTR)
		;
	return ret;
}

/* Read exactly len bytes at off; a short read (a file cut short by
 * someone) leaves the rest zero. */
static int
read_at(int fd, void *buf, size_t len, off_t off)
{
	ssize_t n;

	memset(buf, 0, len);
	while ((n = pread(fd, buf, len, off)) < 0 && errno == EINTR)
		;
	return n < 0 ? -1 : 0;
}

static int
write_at(int fd, const void *buf, size_t len, off_t off)
{
	ssize_t n;

	while ((n = pwrite(fd, buf, len, off)) < 0 && errno == EINTR)
		;
	if (n >= 0 && (size_t)n != len)
		errno = ENOSPC;
	return n >= 0 && (size_t)n == len ? 0 : -1;
}

/* Read-modify-write one record of len bytes at off under its lock; apply
 * changes rec. Returns 0 or -1 (err set). */
static int
update_record(int fd, off_t off, void *rec, size_t len,
	      void (*apply)(void *rec, const void *arg), const void *arg,
	      const char *what, struct ph_error *err)
{
	int ret = 0;

	if (lock_range(fd, F_WRLCK, off, (off_t)len) < 0)
		return ph_error_set(err, "lock of %s failed: %s", what,
				    strerror(errno));
	if (read_at(fd, rec, len, off) < 0) {
		ret = ph_error_set(err, "read of %s failed: %s", what,
				   strerror(errno));
	} else {
		apply(rec, arg);
		if (write_at(fd, rec, len, off) < 0)
			ret = ph_error_set(err, "write of %s failed: %s",
					   what, strerror(errno));
	}
	(void)lock_range(fd, F_UNLCK, off, (off_t)len);
	return ret;
}

struct count_arg {
	uint32_t minute;
	enum ph_stats_outcome outcome;
};

static void
apply_count(void *rec, const void *arg)
{
	struct ph_stats_bucket *b = rec;
	const struct count_arg *a = arg;

	if (b->minute != a->minute)
		memset(b, 0, sizeof(*b));
	b->minute = a->minute;
	if (b->count[a->outcome] < UINT32_MAX)
		b->count[a->outcome]++;
}

void
ph_stats_count(struct ph_stats *st, const char *route,
	       enum ph_stats_outcome outcome, time_t now)
{
	struct count_arg a = { .minute = (uint32_t)(now / 60),
			       .outcome = outcome };
	struct ph_stats_bucket b;
	struct ph_error err;
	int fd;

	if ((fd = file_fd(st, route, &err)) < 0 ||
	    update_record(fd, (off_t)(a.minute % PH_STATS_MINUTES) *
			  (off_t)sizeof(b), &b, sizeof(b), apply_count, &a,
			  "a status counter", &err) < 0)
		warn(st, now, &err);
}

static void
apply_fault(void *rec, const void *arg)
{
	memcpy(rec, arg, sizeof(struct ph_stats_fault));
}

void
ph_stats_storage_error(struct ph_stats *st, int64_t at_ms, const char *msg)
{
	struct ph_stats_fault f = { .at_ms = at_ms }, old;
	struct ph_error err;
	size_t len = strlen(msg);
	int fd;

	if (len >= sizeof(f.msg))
		len = sizeof(f.msg) - 1;
	memcpy(f.msg, msg, len);
	f.len = (uint32_t)len;
	if ((fd = file_fd(st, NULL, &err)) < 0 ||
	    update_record(fd, 0, &old, sizeof(old), apply_fault, &f,
			  "the storage-error record", &err) < 0)
		warn(st, (time_t)(at_ms / 1000), &err);
}

/* Open <state_dir>/stats/name for reading: the descriptor, -1 with errno
 * ENOENT when there is none (nothing recorded yet), or -1 (err set). */
static int
open_read(const char *state_dir, const char *name, struct ph_error *err)
{
	char path[4096];
	int fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/" STATS_DIR "/%s",
			     state_dir, name) >= sizeof(path)) {
		ph_error_set(err, "%s: path too long", state_dir);
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		ph_error_set(err, "open(%s) failed: %s", path,
			     strerror(errno));
	return fd;
}

int
ph_stats_read_route(const char *state_dir, const char *route, time_t now,
		    uint64_t counts[PH_STATS_N_OUTCOMES][PH_STATS_N_WINDOWS],
		    struct ph_error *err)
{
	struct ph_stats_bucket b[PH_STATS_MINUTES];
	static const uint32_t span[PH_STATS_N_WINDOWS] = { 60,
							   PH_STATS_MINUTES };
	uint32_t minute = (uint32_t)(now / 60);
	char name[sizeof(ROUTE_PREFIX) + 256];
	int fd, ret;

	memset(counts, 0, sizeof(uint64_t) * PH_STATS_N_OUTCOMES *
	       PH_STATS_N_WINDOWS);
	snprintf(name, sizeof(name), ROUTE_PREFIX "%s", route);
	if ((fd = open_read(state_dir, name, err)) < 0)
		return errno == ENOENT ? 0 : -1;
	ret = lock_range(fd, F_RDLCK, 0, 0);
	if (ret == 0)
		ret = read_at(fd, b, sizeof(b), 0);
	if (ret < 0)
		ph_error_set(err, "%s/" STATS_DIR "/%s: %s", state_dir, name,
			     strerror(errno));
	close(fd);		/* drops the lock */
	if (ret < 0)
		return -1;
	for (size_t i = 0; i < PH_STATS_MINUTES; i++) {
		/* A bucket from the future (the clock went back) counts in
		 * neither window. */
		if (b[i].minute == 0 || b[i].minute > minute)
			continue;
		for (size_t w = 0; w < PH_STATS_N_WINDOWS; w++) {
			if (minute - b[i].minute >= span[w])
				continue;
			for (size_t o = 0; o < PH_STATS_N_OUTCOMES; o++)
				counts[o][w] += b[i].count[o];
		}
	}
	return 0;
}

int
ph_stats_read_fault(const char *state_dir, struct ph_stats_fault *fault,
		    struct ph_error *err)
{
	int fd, ret;

	memset(fault, 0, sizeof(*fault));
	if ((fd = open_read(state_dir, FAULT_FILE, err)) < 0)
		return errno == ENOENT ? 0 : -1;
	ret = lock_range(fd, F_RDLCK, 0, (off_t)sizeof(*fault));
	if (ret == 0)
		ret = read_at(fd, fault, sizeof(*fault), 0);
	if (ret < 0)
		ph_error_set(err, "%s/" STATS_DIR "/" FAULT_FILE ": %s",
			     state_dir, strerror(errno));
	close(fd);
	if (ret < 0)
		return -1;
	if (fault->len >= sizeof(fault->msg))
		fault->len = sizeof(fault->msg) - 1;
	fault->msg[fault->len] = '\0';
	return fault->at_ms != 0 ? 1 : 0;
}
