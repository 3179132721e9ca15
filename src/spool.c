/* spool.c - durable maildir-style delivery of event files.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * The protocol is maildir(5)'s: a file is written whole in tmp/, fsynced,
 * and renamed into new/; rename(2) is atomic, so a consumer sees either no
 * file or a complete one. The directory fsync after the rename makes the new
 * name itself durable before we answer 2xx.
 *
 * A long-lived worker holds descriptors of the spool, tmp/ and new/. Each
 * delivery first compares them with what the configured path names now,
 * so a spool directory that an operator moved away and recreated (or a
 * restore replaced, or someone deleted) is followed rather than written
 * to in its old place, or failed on forever.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ids.h"
#include "log.h"
#include "spool.h"

struct ph_spool {
	char *dir;		/* the configured path */
	int dirfd;		/* the spool directory itself; -1: not open */
	int tmpfd;		/* tmp/, where files are written */
	int newfd;		/* new/, for fsync after each rename */
	struct stat dir_st, tmp_st, new_st;	/* as opened */
};

static const char *const spool_subdirs[] = { "tmp", "new", "cur", "done" };

static int PH_PRINTF(2, 3)
unsafe(struct ph_error *err, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL) {
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return PH_SPOOL_UNSAFE;
}

/* The checks of spool.h on an open directory's stat. */
static int
check_dir(const struct stat *st, const char *shown, struct ph_error *err)
{
	uid_t uid = geteuid();

	if (!S_ISDIR(st->st_mode))
		return unsafe(err, "refusing %s: not a directory", shown);
	if (st->st_uid != uid)
		return unsafe(err, "refusing %s: owned by uid %lu, not by "
			      "payhook's uid %lu", shown,
			      (unsigned long)st->st_uid, (unsigned long)uid);
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) != 0)
		return unsafe(err, "refusing %s: writable by group or others "
			      "(mode %04o; make it 0700)", shown,
			      (unsigned)(st->st_mode & 07777));
	return 0;
}

/* fsync the directory that holds path (a path with at least one byte). */
static int
fsync_parent_of(const char *path, struct ph_error *err)
{
	char *parent = ph_xstrdup(path), *slash;
	size_t n = strlen(parent);
	int fd, ret = 0;

	while (n > 1 && parent[n - 1] == '/')
		parent[--n] = '\0';
	slash = strrchr(parent, '/');
	if (slash == NULL)
		strcpy(parent, ".");
	else if (slash == parent)
		parent[1] = '\0';
	else
		*slash = '\0';
	fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		ret = ph_error_set(err, "fsync(%s) after mkdir(%s) failed: %s",
				   parent, path, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(parent);
	return ret;
}

int
ph_spool_open_dir(int atfd, const char *name, const char *shown, bool create,
		  struct stat *st_r, struct ph_error *err)
{
	struct stat st;
	int fd, ret;

	if (create) {
		if (mkdirat(atfd, name, 0700) == 0) {
			/* The new entry must survive a crash as surely as
			 * the events that will be renamed under it. */
			if (atfd == AT_FDCWD)
				ret = fsync_parent_of(name, err);
			else if ((ret = fsync(atfd)) < 0)
				ph_error_set(err, "fsync of the directory "
					     "holding %s failed: %s", shown,
					     strerror(errno));
			if (ret < 0)
				return -1;
		} else if (errno != EEXIST) {
			return ph_error_set(err, "mkdir(%s) failed: %s", shown,
					    strerror(errno));
		}
	}
	/* Judged by the name first, so that a directory we may not even
	 * open (another user's 0700) is reported for what it is. */
	if (fstatat(atfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return ph_error_set(err, "stat(%s) failed: %s", shown,
				    strerror(errno));
	if (S_ISLNK(st.st_mode))
		return unsafe(err, "refusing %s: a symbolic link (never "
			      "followed)", shown);
	if ((ret = check_dir(&st, shown, err)) < 0)
		return ret;
	fd = openat(atfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
	if (fd < 0) {
		/* ELOOP or ENOTDIR: swapped for a symlink since the stat. */
		if (errno == ELOOP || errno == ENOTDIR)
			return unsafe(err, "refusing %s: replaced while being "
				      "opened", shown);
		return ph_error_set(err, "open(%s) failed: %s", shown,
				    strerror(errno));
	}
	/* What was opened is checked too: it may not be what was stat'ed. */
	if (fstat(fd, &st) < 0) {
		ret = ph_error_set(err, "fstat(%s) failed: %s", shown,
				   strerror(errno));
		close(fd);
		return ret;
	}
	if ((ret = check_dir(&st, shown, err)) < 0) {
		close(fd);
		return ret;
	}
	if (st_r != NULL)
		*st_r = st;
	return fd;
}

static void
close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void
spool_close_dirs(struct ph_spool *sp)
{
	close_fd(&sp->newfd);
	close_fd(&sp->tmpfd);
	close_fd(&sp->dirfd);
}

/* Open (creating) and check the spool and its subdirectories; keep
 * descriptors of the spool, tmp/ and new/. Returns 0, -1 or
 * PH_SPOOL_UNSAFE; on failure nothing stays open. */
static int
spool_open_dirs(struct ph_spool *sp, struct ph_error *err)
{
	char shown[4096];
	struct stat st;
	int fd;

	fd = ph_spool_open_dir(AT_FDCWD, sp->dir, sp->dir, true, &sp->dir_st,
			       err);
	if (fd < 0)
		return fd;
	sp->dirfd = fd;
	for (size_t i = 0; i < PH_N_ELEMENTS(spool_subdirs); i++) {
		snprintf(shown, sizeof(shown), "%s/%s", sp->dir,
			 spool_subdirs[i]);
		fd = ph_spool_open_dir(sp->dirfd, spool_subdirs[i], shown,
				       true, &st, err);
		if (fd < 0) {
			spool_close_dirs(sp);
			return fd;
		}
		if (i == 0) {
			sp->tmpfd = fd;
			sp->tmp_st = st;
		} else if (i == 1) {
			sp->newfd = fd;
			sp->new_st = st;
		} else {
			close(fd);
		}
	}
	return 0;
}

/* Is what name under atfd now the directory opened as *opened, still
 * passing the checks? One fstatat, no I/O beyond the inode cache. */
static bool
still_current(int atfd, const char *name, const struct stat *opened)
{
	struct stat st;

	if (fstatat(atfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return false;
	return st.st_dev == opened->st_dev && st.st_ino == opened->st_ino &&
	    check_dir(&st, name, NULL) == 0;
}

/* Make the held descriptors name what the configured path names now
 * (spool.h): reopen when anything moved. Returns 0, -1, PH_SPOOL_UNSAFE. */
static int
spool_follow(struct ph_spool *sp, struct ph_error *err)
{
	if (sp->dirfd >= 0 &&
	    still_current(AT_FDCWD, sp->dir, &sp->dir_st) &&
	    still_current(sp->dirfd, "tmp", &sp->tmp_st) &&
	    still_current(sp->dirfd, "new", &sp->new_st))
		return 0;
	spool_close_dirs(sp);
	return spool_open_dirs(sp, err);
}

int
ph_spool_open(const char *dir, struct ph_spool **sp_r, struct ph_error *err)
{
	struct ph_spool *sp = ph_xcalloc(1, sizeof(*sp));
	int ret;

	sp->dir = ph_xstrdup(dir);
	sp->dirfd = sp->tmpfd = sp->newfd = -1;
	ret = spool_open_dirs(sp, err);
	if (ret < 0) {
		ph_spool_close(&sp);
		return ret;
	}
	*sp_r = sp;
	return 0;
}

void
ph_spool_close(struct ph_spool **spp)
{
	struct ph_spool *sp = *spp;

	if (sp == NULL)
		return;
	spool_close_dirs(sp);
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
	char name[PH_SPOOL_NAME_MAX + 8];
	int fd, n, ret;

	ph_time_stamp(received, stamp);
	n = snprintf(name, sizeof(name), "%s-%s.json", stamp, id);
	if (n < 0 || (size_t)n >= PH_SPOOL_NAME_MAX)
		return ph_error_set(err, "spool file name too long");
	if ((ret = spool_follow(sp, err)) < 0)
		return ret;

	/* The id is unique, so EEXIST means something is badly wrong (or an
	 * attacker planted the name): refuse rather than overwrite. */
	fd = openat(sp->tmpfd, name, O_WRONLY | O_CREAT | O_EXCL |
		    O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return ph_error_set(err, "open(%s/tmp/%s) failed: %s", sp->dir,
				    name, strerror(errno));
	if (ph_write_all(fd, data, len) < 0) {
		ph_error_set(err, "write(%s/tmp/%s) failed: %s", sp->dir, name,
			     strerror(errno));
		goto fail_open;
	}
	if (fsync(fd) < 0) {
		ph_error_set(err, "fsync(%s/tmp/%s) failed: %s", sp->dir, name,
			     strerror(errno));
		goto fail_open;
	}
	if (close(fd) < 0) {
		fd = -1;
		ph_error_set(err, "close(%s/tmp/%s) failed: %s", sp->dir, name,
			     strerror(errno));
		goto fail;
	}
	fd = -1;
	if (renameat(sp->tmpfd, name, sp->newfd, name) < 0) {
		ph_error_set(err, "rename(%s/tmp/%s, new/) failed: %s",
			     sp->dir, name, strerror(errno));
		goto fail;
	}
	if (fsync(sp->newfd) < 0) {
		/* The file is in new/ but its name may not survive a crash.
		 * Take it back: a 503 makes the provider deliver again, and
		 * a consumer that already took it keeps it (at-least-once). */
		ph_error_set(err, "fsync(%s/new) failed: %s", sp->dir,
			     strerror(errno));
		unlinkat(sp->newfd, name, 0);
		return -1;
	}
	if (name_r != NULL)
		memcpy(name_r, name, (size_t)n + 1);
	return 0;
fail_open:
	close(fd);
fail:
	unlinkat(sp->tmpfd, name, 0);
	return -1;
}

/* ph_spool_scan() over one subdirectory. */
static int
scan_sub(struct ph_spool *sp, const char *sub, ph_spool_visit_fn visit,
	 void *arg, struct ph_error *err)
{
	char shown[4096], *path, *data;
	struct dirent *de;
	struct ph_error ferr;
	struct stat st;
	size_t len;
	DIR *d;
	int fd, ret = 0;

	snprintf(shown, sizeof(shown), "%s/%s", sp->dir, sub);
	fd = ph_spool_open_dir(sp->dirfd, sub, shown, false, NULL, err);
	if (fd < 0)
		return fd;
	if ((d = fdopendir(fd)) == NULL) {
		ret = ph_error_set(err, "opendir(%s) failed: %s", shown,
				   strerror(errno));
		close(fd);
		return ret;
	}
	while (ret == 0 && (errno = 0, de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		/* Judged by the name: a symlink planted here is not read. */
		if (fstatat(fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		path = ph_xasprintf("%s/%s", shown, de->d_name);
		if (ph_read_file_stat(path, PH_SPOOL_SCAN_MAX, &data, &len,
				      &st, &ferr) == 0) {
			ret = visit(arg, sub, de->d_name, data, len, &st, err);
			free(data);
		} else if (fstatat(fd, de->d_name, &st,
				   AT_SYMLINK_NOFOLLOW) == 0) {
			/* Not merely taken by a consumer meanwhile. */
			ph_log_warn("spool scan: skipping %s: %s", path,
				    ferr.msg);
		}
		free(path);
	}
	if (ret == 0 && de == NULL && errno != 0)
		ret = ph_error_set(err, "readdir(%s) failed: %s", shown,
				   strerror(errno));
	closedir(d);
	return ret;
}

int
ph_spool_scan(struct ph_spool *sp, ph_spool_visit_fn visit, void *arg,
	      struct ph_error *err)
{
	int ret;

	if ((ret = spool_follow(sp, err)) < 0)
		return ret;
	if ((ret = scan_sub(sp, "new", visit, arg, err)) < 0)
		return ret;
	return scan_sub(sp, "cur", visit, arg, err);
}
