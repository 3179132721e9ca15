/* quarantine.h - copies of requests that reached a route but failed.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * A request that matched a route and was answered 401 (credentials) or 400
 * (a body the adapter or the JSON step could not parse) is kept as one JSON
 * file in <spool>/quarantine/, so that an operator can see why a provider's
 * deliveries fail: its headers with every credential redacted, its remote
 * address, method, path, query (tokens redacted), the reason, and its body
 * up to PH_QUARANTINE_BODY_MAX bytes. Files are named
 * "<stamp>-<ULID>.json" like spooled events, so names sort by time.
 *
 * The directory gets the spool's modes and checks (spool.h). Entries are
 * written without fsync: they are diagnostics, and writing them must not
 * cost the requests that succeed anything (it happens for failed requests
 * only). The caps quarantine_max_files and quarantine_max_bytes are kept
 * by dropping the oldest entries after each write, so a flood of bad
 * requests cannot fill the disk; max_files 0 keeps nothing.
 */
#ifndef PH_QUARANTINE_H
#define PH_QUARANTINE_H

#include <stdint.h>
#include <stdio.h>
#include <sys/time.h>

#include "conf.h"
#include "request.h"
#include "util.h"

#define PH_QUARANTINE_SCHEMA "payhook.quarantine/1"
#define PH_QUARANTINE_BODY_MAX (64 * 1024)
#define PH_QUARANTINE_REDACTED "[redacted]"

/* The entry for req, which route answered with status for reason (a short
 * word: "unauthorized", "unparseable", "json"), as pretty-printed JSON
 * ending in a newline; *len_r receives its length. id is the entry's ULID,
 * now its time. Caller frees. */
char *ph_quarantine_entry(const struct ph_route *route,
			  const struct ph_request *req, const char *reason,
			  int status, const struct timeval *now,
			  const char *id, size_t *len_r)
	PH_NONNULL(1, 2, 3, 5, 6, 7);

/* Store data (len bytes) as name in <spool_dir>/quarantine/, creating the
 * directory if need be, then drop the oldest entries until at most
 * max_files entries of at most max_bytes bytes in total remain (the new
 * one included: one larger than max_bytes is not kept). Returns 0, -1, or
 * PH_SPOOL_UNSAFE when a directory fails the spool's checks. */
int ph_quarantine_store(const char *spool_dir, size_t max_files,
			uint64_t max_bytes, const char *name,
			const void *data, size_t len, struct ph_error *err)
	PH_NONNULL(1, 4, 5);

/* Keep req in cfg's quarantine (unless quarantine_max_files is 0). Never
 * fails: a problem is logged and changes nothing else. */
void ph_quarantine_keep(const struct ph_config *cfg,
			const struct ph_route *route,
			const struct ph_request *req, const char *reason,
			int status) PH_NONNULL(1, 2, 3, 4);

/* "payhook quarantine" commands. Each returns 0 or -1 with err. */

/* One line per entry, oldest first: "TIME ROUTE REMOTE_ADDR REASON ID". */
int ph_quarantine_list(const char *spool_dir, FILE *out,
		       struct ph_error *err) PH_NONNULL(1, 2);

/* The entry whose id is id, as stored. */
int ph_quarantine_show(const char *spool_dir, const char *id, FILE *out,
		       struct ph_error *err) PH_NONNULL(1, 2, 3);

/* Remove every entry; *n_r receives how many. */
int ph_quarantine_purge(const char *spool_dir, long *n_r,
			struct ph_error *err) PH_NONNULL(1, 2);

#endif
