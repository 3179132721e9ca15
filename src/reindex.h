/* reindex.h - the dedup index rebuilt from the spool.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#ifndef PH_REINDEX_H
#define PH_REINDEX_H

#include "dedup.h"
#include "util.h"

/* A struct ph_dedup_options rebuild callback (dedup.h); arg is the
 * struct ph_spool. Records every event file still in new/ and cur/ as
 * done: its dedup_key with its id, created at the file's modification
 * time. A file that is not a payhook event (no dedup_key and id) is
 * logged and skipped. Returns 0 or -1 with err (the spool cannot be
 * read, or the database refused a record). */
int ph_reindex_spool(struct ph_dedup *dd, void *spool, struct ph_error *err)
	PH_NONNULL(1, 2);

#endif
