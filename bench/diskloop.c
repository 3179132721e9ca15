/* diskloop.c - the disk bound of bench/run: what a durable spool write
 * costs when nothing else is done.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * Usage: diskloop DIR THREADS SECONDS
 *
 * Each of THREADS threads, for SECONDS seconds, repeats: write 1024 bytes
 * to a new file in DIR/tmp, fsync it, close it, rename it into DIR/new,
 * fsync DIR/new. That is maildir delivery made durable, as payhook's spool
 * does it for one event, without HMAC, JSON, dedup or HTTP. DIR/tmp and
 * DIR/new are created if missing (0700); the files are left for the caller
 * to remove.
 *
 * Prints one line: "diskloop: THREADS threads OPS ops SECONDS s RATE ops/s"
 * and exits 0, or 1 with a message on the first failed call.
 * Built by bench/run with "cc -O2 -pthread"; needs only libc.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS	64
#define RECORD_SIZE	1024

struct worker {
	pthread_t thread;
	unsigned index;
	unsigned long ops;
	int failed;
};

static const char *dir;
static double seconds;
static int tmpfd = -1, newfd = -1;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One durable delivery of buf under name; 0 or -1 (errno kept). */
static int
deliver(const char *name, const char *buf, size_t len)
{
	int fd = openat(tmpfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
			0600);
	size_t off = 0;

	if (fd < 0)
		return -1;
	while (off < len) {
		ssize_t n = write(fd, buf + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			(void)close(fd);
			return -1;
		}
		off += (size_t)n;
	}
	if (fsync(fd) != 0) {
		(void)close(fd);
		return -1;
	}
	if (close(fd) != 0)
		return -1;
	if (renameat(tmpfd, name, newfd, name) != 0)
		return -1;
	return fsync(newfd);
}

static void *
work(void *arg)
{
	struct worker *w = arg;
	char buf[RECORD_SIZE], name[64];
	double end = now_s() + seconds;

	memset(buf, 'x', sizeof(buf));
	do {
		snprintf(name, sizeof(name), "%ld.%u.%lu", (long)getpid(),
			 w->index, w->ops);
		if (deliver(name, buf, sizeof(buf)) != 0) {
			fprintf(stderr, "diskloop: %s/%s: %s\n", dir, name,
				strerror(errno));
			w->failed = 1;
			return NULL;
		}
		w->ops++;
	} while (now_s() < end);
	return NULL;
}

static int
open_sub(const char *name)
{
	char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "diskloop: mkdir %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		fprintf(stderr, "diskloop: %s: %s\n", path, strerror(errno));
	return fd;
}

int
main(int argc, char **argv)
{
	struct worker workers[MAX_THREADS];
	unsigned long total = 0;
	unsigned n;
	double t0, t;
	int failed = 0;

	if (argc != 4 || (n = (unsigned)atoi(argv[2])) < 1 ||
	    n > MAX_THREADS || (seconds = atof(argv[3])) <= 0 ||
	    seconds > 3600) {
		fprintf(stderr, "usage: diskloop DIR THREADS(1-%d) "
			"SECONDS(<=3600)\n", MAX_THREADS);
		return 2;
	}
	dir = argv[1];
	if ((tmpfd = open_sub("tmp")) < 0 || (newfd = open_sub("new")) < 0)
		return 1;
	memset(workers, 0, sizeof(workers));
	t0 = now_s();
	for (unsigned i = 0; i < n; i++) {
		workers[i].index = i;
		if (pthread_create(&workers[i].thread, NULL, work,
				   &workers[i]) != 0) {
			fprintf(stderr, "diskloop: pthread_create failed\n");
			return 1;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		(void)pthread_join(workers[i].thread, NULL);
		total += workers[i].ops;
		failed |= workers[i].failed;
	}
	t = now_s() - t0;
	if (failed)
		return 1;
	printf("diskloop: %u threads %lu ops %.2f s %.0f ops/s\n", n, total,
	       t, (double)total / t);
	return 0;
}
