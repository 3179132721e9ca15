/* reindex.c - the dedup index rebuilt from the spool.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * Commits of dedup records are not flushed one by one (dedup.h), so an
 * operating system crash may lose the records of the last moments, whose
 * event files are durable in the spool. After such a crash (the first
 * open of the dedup database after each boot) the records of the events
 * still in the spool are put back from the files themselves: each names
 * its dedup_key and id (product.md, the event schema).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "log.h"
#include "reindex.h"
#include "spool.h"

/* The body's depth is at most 1000 (max_json_depth), and the event holds
 * it one level down. */
#define EVENT_DEPTH_MAX 1002

struct reindex {
	struct ph_dedup *dd;
	unsigned long restored, skipped;
};

/* The string member name of obj, or NULL. */
static const char *
member(struct json_object *obj, const char *name)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, name, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static int
visit(void *arg, const char *sub, const char *name, const char *data,
      size_t len, const struct stat *st, struct ph_error *err)
{
	struct reindex *ri = arg;
	struct json_tokener *tok = json_tokener_new_ex(EVENT_DEPTH_MAX);
	struct json_object *doc;
	const char *key, *id;
	int ret = 0;

	if (tok == NULL)
		return ph_error_set(err, "json_tokener_new failed");
	doc = len <= INT32_MAX ? json_tokener_parse_ex(tok, data, (int)len) :
	    NULL;
	json_tokener_free(tok);
	key = doc != NULL ? member(doc, "dedup_key") : NULL;
	id = doc != NULL ? member(doc, "id") : NULL;
	if (key == NULL || id == NULL) {
		ph_log_warn("dedup rebuild: %s/%s is not a payhook event "
			    "(no dedup_key and id): skipped", sub, name);
		ri->skipped++;
	} else if ((ret = ph_dedup_restore(ri->dd, key, id,
					   (int64_t)st->st_mtime, err)) == 0) {
		ri->restored++;
	}
	json_object_put(doc);
	return ret;
}

int
ph_reindex_spool(struct ph_dedup *dd, void *spool, struct ph_error *err)
{
	struct reindex ri = { .dd = dd };
	uint64_t t0 = ph_now_monotonic_us();
	int ret;

	ret = ph_spool_scan(spool, visit, &ri, err);
	if (ri.restored > 0 || ri.skipped > 0)
		ph_log_info("dedup rebuild after a system start: %lu records "
			    "from the spool's new/ and cur/, %lu files "
			    "skipped, %llu ms%s", ri.restored, ri.skipped,
			    (unsigned long long)((ph_now_monotonic_us() - t0) /
						 1000),
			    ret < 0 ? " (stopped by an error)" : "");
	return ret < 0 ? -1 : 0;
}
