/* spool.h - the maildir-style event spool.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * <spool>/tmp/ files being written, <spool>/new/ complete events,
 * <spool>/cur/ claimed by a consumer, <spool>/done/ optional history.
 * Directories are 0700 and files 0600: events carry customer data.
 *
 * Every directory is checked, not trusted: the spool directory and each
 * subdirectory must be a real directory (a symlink in the last component is
 * refused, never followed), owned by the effective user and not writable by
 * group or others. A directory failing that is a configuration fault
 * (PH_SPOOL_UNSAFE, answered 500), unlike a storage error (-1, answered
 * 503 and retried).
 */
#ifndef PH_SPOOL_H
#define PH_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/time.h>
#include "util.h"

struct ph_spool;

/* Returned instead of -1 when a directory failed the checks above. */
#define PH_SPOOL_UNSAFE (-2)

/* Open directory name under atfd (AT_FDCWD: name is a path) without
 * following a symlink in its last component, creating it (mode 0700) when
 * missing and create is set; a directory created is made durable by an
 * fsync of its parent. Then check it as above. shown names it in messages.
 * Returns the descriptor (st_r, if non-NULL, receives its stat), or -1
 * (storage error) or PH_SPOOL_UNSAFE with err filled. */
int ph_spool_open_dir(int atfd, const char *name, const char *shown,
		      bool create, struct stat *st_r, struct ph_error *err)
	PH_NONNULL(2, 3);

/* Open the spool at dir, creating dir and its four subdirectories when
 * missing (each new entry fsynced in its parent), and checking all five.
 * Returns 0 (*sp_r set), -1 or PH_SPOOL_UNSAFE (err filled). */
int ph_spool_open(const char *dir, struct ph_spool **sp_r,
		  struct ph_error *err) PH_NONNULL(1, 2);

void ph_spool_close(struct ph_spool **sp);

/* Durably deliver one event file named "<stamp>-<id>.json":
 * open tmp/<name> with O_CREAT|O_EXCL|O_NOFOLLOW (mode 0600), write all,
 * fsync, close, rename to new/<name>, fsync new/. On any failure the tmp
 * file is removed and -1 returned (err says which step and errno); a file
 * is in new/ only when every step succeeded. name_r, if non-NULL, receives
 * the file name (PH_SPOOL_NAME_MAX bytes).
 *
 * First, the directories held open are compared (device and inode) with
 * what the configured path names now, and checked again: a spool moved
 * away and recreated, or deleted, is reopened (recreated) at the path, so
 * events always go where the configuration says. That costs three
 * lstat-like calls per delivery. Returns PH_SPOOL_UNSAFE when a directory
 * now fails the checks. */
#define PH_SPOOL_NAME_MAX 64
int ph_spool_deliver(struct ph_spool *sp, const struct timeval *received,
		     const char *id, const void *data, size_t len,
		     char *name_r, struct ph_error *err) PH_NONNULL(1, 2, 3, 4);

/* ph_spool_scan()'s visitor: one event file, name in sub ("new" or
 * "cur"), its bytes (NUL-terminated, len not counting the NUL) and stat.
 * Returns 0 to go on, -1 (err set) to stop the scan. */
typedef int (*ph_spool_visit_fn)(void *arg, const char *sub, const char *name,
				 const char *data, size_t len,
				 const struct stat *st, struct ph_error *err);

/* Read every event file still in new/, then in cur/, and pass it to visit:
 * regular files whose names do not start with a dot, up to
 * PH_SPOOL_SCAN_MAX bytes (a larger one is logged and skipped). A file
 * that a consumer moves or removes meanwhile is skipped; moved from new/
 * to cur/, it is seen there. Returns 0, -1 or PH_SPOOL_UNSAFE (err set),
 * or visit's -1. */
#define PH_SPOOL_SCAN_MAX (64u * 1024 * 1024)
int ph_spool_scan(struct ph_spool *sp, ph_spool_visit_fn visit, void *arg,
		  struct ph_error *err) PH_NONNULL(1, 2);

#endif
