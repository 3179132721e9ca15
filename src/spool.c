/* spool.c - durable maildir-style delivery of event files.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * The protocol is maildir(5)'s: a file is written whole in tmp/, fsynced,
 * and renamed into new/; rename(2) is atomic, so a consumer sees either no
 * file or a complete one. The directory fsync after the rename makes the new
 * name itself durable before we answer 2xx.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ids.h"
#include "spool.h"

struct ph_spool {
	char *dir;
	int dirfd;		/* the spool directory itself */
	int newfd;		/* new/, for fsync after each rename */
};

static const char *const spool_subdirs[] = { "tmp", "new", "cur", "done" };

static int
mkdir_0700(int atfd, const char *path, const char *shown,
	   struct ph_error *err)
{
	if (mkdirat(atfd, path, 0700) == 0 || errno == EEXIST)
		return 0;
	return ph_error_set(err, "mkdir(%s) failed: %s", shown,
			    strerror(errno));
}

struct ph_spool *
ph_spool_open(const char *dir, struct ph_error *err)
{
	struct ph_spool *sp;
	char shown[4096];

	if (mkdir_0700(AT_FDCWD, dir, dir, err) < 0)
		return NULL;
	sp = ph_xcalloc(1, sizeof(*sp));
	sp->dir = ph_xstrdup(dir);
	sp->newfd = -1;
	sp->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sp->dirfd < 0) {
		ph_error_set(err, "open(%s) failed: %s", dir, strerror(errno));
		goto fail;
	}
	for (size_t i = 0; i < PH_N_ELEMENTS(spool_subdirs); i++) {
		snprintf(shown, sizeof(shown), "%s/%s", dir, spool_subdirs[i]);
		if (mkdir_0700(sp->dirfd, spool_subdirs[i], shown, err) < 0)
			goto fail;
	}
	sp->newfd = openat(sp->dirfd, "new", O_RDONLY | O_DIRECTORY |
			   O_CLOEXEC);
	if (sp->newfd < 0) {
		ph_error_set(err, "open(%s/new) failed: %s", dir,
			     strerror(errno));
		goto fail;
	}
	return sp;
fail:
	ph_spool_close(&sp);
	return NULL;
}

void
ph_spool_close(struct ph_spool **spp)
{
	struct ph_spool *sp = *spp;

	if (sp == NULL)
		return;
	if (sp->newfd >= 0)
		close(sp->newfd);
	if (sp->dirfd >= 0)
		close(sp->dirfd);
	free(sp->dir);
	free(sp);
	*spp = NULL;
}

int
ph_spool_deliver(struct ph_spool *sp, const struct timeval *received,
		 const char *id, const void *data, size_t len, char *name_r,
		 struct ph_error *err)
{
	char stamp[PH_STAMP_LEN + 1];
	char tmpname[PH_SPOOL_NAME_MAX + 8], newname[PH_SPOOL_NAME_MAX + 8];
	int fd, n;

	ph_time_stamp(received, stamp);
	n = snprintf(newname, sizeof(newname), "new/%s-%s.json", stamp, id);
	if (n < 0 || (size_t)n - 4 >= PH_SPOOL_NAME_MAX)
		return ph_error_set(err, "spool file name too long");
	snprintf(tmpname, sizeof(tmpname), "tmp/%s", newname + 4);

	/* The id is unique, so EEXIST means something is badly wrong (or an
	 * attacker planted the name): refuse rather than overwrite. */
	fd = openat(sp->dirfd, tmpname, O_WRONLY | O_CREAT | O_EXCL |
		    O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return ph_error_set(err, "open(%s/%s) failed: %s", sp->dir,
				    tmpname, strerror(errno));
	if (ph_write_all(fd, data, len) < 0) {
		ph_error_set(err, "write(%s/%s) failed: %s", sp->dir, tmpname,
			     strerror(errno));
		goto fail_open;
	}
	if (fsync(fd) < 0) {
		ph_error_set(err, "fsync(%s/%s) failed: %s", sp->dir, tmpname,
			     strerror(errno));
		goto fail_open;
	}
	if (close(fd) < 0) {
		fd = -1;
		ph_error_set(err, "close(%s/%s) failed: %s", sp->dir, tmpname,
			     strerror(errno));
		goto fail;
	}
	fd = -1;
	if (renameat(sp->dirfd, tmpname, sp->dirfd, newname) < 0) {
		ph_error_set(err, "rename(%s/%s, %s) failed: %s", sp->dir,
			     tmpname, newname, strerror(errno));
		goto fail;
	}
	if (fsync(sp->newfd) < 0) {
		/* The file is in new/ but its name may not survive a crash.
		 * Take it back: a 503 makes the provider deliver again, and
		 * a consumer that already took it keeps it (at-least-once). */
		ph_error_set(err, "fsync(%s/new) failed: %s", sp->dir,
			     strerror(errno));
		unlinkat(sp->dirfd, newname, 0);
		return -1;
	}
	if (name_r != NULL)
		memcpy(name_r, newname + 4, (size_t)n - 4 + 1);
	return 0;
fail_open:
	close(fd);
fail:
	unlinkat(sp->dirfd, tmpname, 0);
	return -1;
}
