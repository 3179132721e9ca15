/* commit-loop.c - the disk bound for payhook's durable path, for
 * bench/commit-bench: T threads each loop "write 1 KB to tmp/, fsync,
 * close, rename into new/, fsync new/" for S seconds, in DIR, and the
 * total rate is printed as "ops/s".
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * Usage: commit-loop DIR THREADS SECONDS
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int tmpfd, newfd;
static double stop_at;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *
loop(void *arg)
{
	long id = (long)arg, n = 0;
	char buf[1024], name[64];

	memset(buf, 'x', sizeof(buf));
	while (now() < stop_at) {
		int fd;

		snprintf(name, sizeof(name), "t%ld-%ld", id, n);
		fd = openat(tmpfd, name, O_WRONLY | O_CREAT | O_EXCL, 0600);
		if (fd < 0 || write(fd, buf, sizeof(buf)) != sizeof(buf) ||
		    fsync(fd) != 0 || close(fd) != 0 ||
		    renameat(tmpfd, name, newfd, name) != 0 ||
		    fsync(newfd) != 0) {
			perror("commit-loop");
			exit(1);
		}
		n++;
	}
	return (void *)n;
}

int
main(int argc, char **argv)
{
	pthread_t th[64];
	long threads, total = 0;
	double secs, t0;
	char path[4096];

	if (argc != 4 || (threads = atol(argv[2])) < 1 || threads > 64 ||
	    (secs = atof(argv[3])) <= 0) {
		fprintf(stderr, "usage: commit-loop DIR THREADS SECONDS\n");
		return 2;
	}
	snprintf(path, sizeof(path), "%s/tmp", argv[1]);
	mkdir(path, 0700);
	tmpfd = open(path, O_RDONLY | O_DIRECTORY);
	snprintf(path, sizeof(path), "%s/new", argv[1]);
	mkdir(path, 0700);
	newfd = open(path, O_RDONLY | O_DIRECTORY);
	if (tmpfd < 0 || newfd < 0) {
		perror(argv[1]);
		return 1;
	}
	t0 = now();
	stop_at = t0 + secs;
	for (long i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, loop, (void *)i);
	for (long i = 0; i < threads; i++) {
		void *r;

		pthread_join(th[i], &r);
		total += (long)r;
	}
	printf("%.0f ops/s\n", (double)total / (now() - t0));
	return 0;
}
