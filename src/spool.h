/* spool.h - the maildir-style event spool.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * <spool>/tmp/ files being written, <spool>/new/ complete events,
 * <spool>/cur/ claimed by a consumer, <spool>/done/ optional history.
 * Directories are 0700 and files 0600: events carry customer data.
 */
#ifndef PH_SPOOL_H
#define PH_SPOOL_H

#include <stddef.h>
#include <sys/time.h>
#include "util.h"

struct ph_spool;

/* Open the spool at dir, creating dir and its four subdirectories (mode
 * 0700) when missing. Keeps a descriptor of new/ for directory fsyncs.
 * Returns NULL with err filled on failure. */
struct ph_spool *ph_spool_open(const char *dir, struct ph_error *err)
	PH_NONNULL(1);

void ph_spool_close(struct ph_spool **sp);

/* Durably deliver one event file named "<stamp>-<id>.json":
 * open tmp/<name> with O_CREAT|O_EXCL|O_NOFOLLOW (mode 0600), write all,
 * fsync, close, rename to new/<name>, fsync new/. On any failure the tmp
 * file is removed and -1 returned (err says which step and errno); a file
 * is in new/ only when every step succeeded. name_r, if non-NULL, receives
 * the file name (PH_SPOOL_NAME_MAX bytes). */
#define PH_SPOOL_NAME_MAX 64
int ph_spool_deliver(struct ph_spool *sp, const struct timeval *received,
		     const char *id, const void *data, size_t len,
		     char *name_r, struct ph_error *err) PH_NONNULL(1, 2, 3, 4);

#endif
