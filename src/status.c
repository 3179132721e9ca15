/* status.c - the status report and its formats (status.h).
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "provider.h"
#include "request.h"
#include "status.h"

static const char *const dir_names[PH_SPOOL_N_DIRS] = {
	"new", "cur", "done", "failed",
};
static const char *const outcome_names[PH_STATS_N_OUTCOMES] = {
	"accepted", "duplicate", "rejected",
};
static const char *const window_names[PH_STATS_N_WINDOWS] = { "1h", "24h" };

#define SHIP_FILE "ship-status.json"
#define SHIP_SCHEMA "payhook.ship-status/1"
#define SHIP_FILE_MAX (64 * 1024)
/* An event or sidecar larger than this is not read for the page. */
#define PAGE_FILE_MAX (4 * 1024 * 1024)
#define STDERR_LINE_MAX 200

/* An event file: "*.json", not hidden, not a "*.err.json" sidecar. */
static bool
is_event_name(const char *name)
{
	size_t len = strlen(name);

	return name[0] != '.' && len > 5 &&
	       strcmp(name + len - 5, ".json") == 0 &&
	       !(len > 9 && strcmp(name + len - 9, ".err.json") == 0);
}

/* The time in the name's "YYYYMMDDTHHMMSS.mmmZ" prefix (ph_time_stamp) as
 * Unix ms: 0 and *ms_r set, or -1 when the name does not start so. */
static int
name_time_ms(const char *name, int64_t *ms_r)
{
	struct tm tm = { 0 };
	int v[7];
	static const int width[7] = { 4, 2, 2, 2, 2, 2, 3 };
	static const char sep[7] = { 0, 0, 'T', 0, 0, '.', 'Z' };
	const char *p = name;
	time_t t;

	for (int i = 0; i < 7; i++) {
		v[i] = 0;
		for (int k = 0; k < width[i]; k++, p++) {
			if (*p < '0' || *p > '9')
				return -1;
			v[i] = v[i] * 10 + (*p - '0');
		}
		if (sep[i] != 0 && *p++ != sep[i])
			return -1;
	}
	tm.tm_year = v[0] - 1900;
	tm.tm_mon = v[1] - 1;
	tm.tm_mday = v[2];
	tm.tm_hour = v[3];
	tm.tm_min = v[4];
	tm.tm_sec = v[5];
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	*ms_r = (int64_t)t * 1000 + v[6];
	return 0;
}

/* Visit the event files of <spool>/<dir>; a missing folder has none.
 * Returns 0 or -1 (err set). */
static int
each_event(const char *spool, const char *dir,
	   void (*fn)(const char *name, void *arg), void *arg,
	   struct ph_error *err)
{
	char *path = ph_xasprintf("%s/%s", spool, dir);
	struct dirent *e;
	DIR *d;

	if ((d = opendir(path)) == NULL) {
		int ret = errno == ENOENT ? 0 :
		    ph_error_set(err, "opendir(%s) failed: %s", path,
				 strerror(errno));

		free(path);
		return ret;
	}
	errno = 0;
	while ((e = readdir(d)) != NULL) {
		if (is_event_name(e->d_name))
			fn(e->d_name, arg);
		errno = 0;
	}
	if (errno != 0) {
		ph_error_set(err, "readdir(%s) failed: %s", path,
			     strerror(errno));
		closedir(d);
		free(path);
		return -1;
	}
	closedir(d);
	free(path);
	return 0;
}

struct count_arg {
	uint64_t n;
	char oldest[256];		/* the least name, "" if none */
};

static void
count_one(const char *name, void *arg)
{
	struct count_arg *c = arg;

	c->n++;
	if (strlen(name) < sizeof(c->oldest) &&
	    (c->oldest[0] == '\0' || strcmp(name, c->oldest) < 0))
		snprintf(c->oldest, sizeof(c->oldest), "%s", name);
}

static void
read_ship(const char *state_dir, struct ph_status_report *r)
{
	char *path = ph_xasprintf("%s/" SHIP_FILE, state_dir), *text;
	struct json_object *doc, *schema;
	struct ph_error err;
	size_t len;

	if (ph_read_file(path, SHIP_FILE_MAX, &text, &len, &err) < 0) {
		if (errno != ENOENT)
			r->ship_error = ph_xstrdup(err.msg);
		free(path);
		return;
	}
	doc = ph_json_parse_object((const uint8_t *)text, len, 8);
	free(text);
	if (doc == NULL || !json_object_object_get_ex(doc, "schema", &schema) ||
	    ph_json_cstring(schema) == NULL ||
	    strcmp(json_object_get_string(schema), SHIP_SCHEMA) != 0) {
		r->ship_error = ph_xasprintf("%s: not a " SHIP_SCHEMA
					     " object", path);
		json_object_put(doc);
	} else {
		r->ship = doc;
	}
	free(path);
}

int
ph_status_collect(const struct ph_config *cfg, int64_t now_ms,
		  struct ph_status_report *r, struct ph_error *err)
{
	struct count_arg c;
	int64_t t;

	memset(r, 0, sizeof(*r));
	r->now_ms = now_ms;
	r->spool_dir = cfg->spool_dir;
	for (size_t i = 0; i < PH_SPOOL_N_DIRS; i++) {
		memset(&c, 0, sizeof(c));
		if (each_event(cfg->spool_dir, dir_names[i], count_one, &c,
			       err) < 0)
			goto fail;
		r->events[i] = c.n;
		if (i == PH_SPOOL_NEW && c.oldest[0] != '\0' &&
		    name_time_ms(c.oldest, &t) == 0) {
			r->has_oldest = true;
			r->oldest_new_age_s = t < now_ms ?
			    (now_ms - t) / 1000 : 0;
		}
	}
	r->routes = ph_xcalloc(cfg->n_routes, sizeof(*r->routes));
	for (size_t i = 0; i < cfg->n_routes; i++) {
		const struct ph_route *route = &cfg->routes[i];
		struct ph_status_route *sr = &r->routes[r->n_routes];

		if (route->provider->serve != NULL)
			continue;	/* a page, not a delivery route */
		sr->name = route->name;
		if (ph_stats_read_route(cfg->state_dir, route->name,
					(time_t)(now_ms / 1000), sr->counts,
					err) < 0)
			goto fail;
		r->n_routes++;
	}
	switch (ph_stats_read_fault(cfg->state_dir, &r->fault, err)) {
	case -1:
		goto fail;
	case 1:
		r->has_fault = true;
		break;
	default:
		break;
	}
	read_ship(cfg->state_dir, r);
	return 0;
fail:
	ph_status_report_clear(r);
	return -1;
}

void
ph_status_report_clear(struct ph_status_report *r)
{
	ph_free(&r->routes);
	r->n_routes = 0;
	json_object_put(r->ship);
	r->ship = NULL;
	ph_free(&r->ship_error);
}

/* Unix ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" into out (64 bytes). */
static const char *
iso_time(int64_t ms, char out[64])
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL) {
		snprintf(out, 64, "?");
		return out;
	}
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	return out;
}

/* An age for people: "42s", "5m12s", "3h05m", "2d04h". */
static const char *
human_age(int64_t s, char out[64])
{
	if (s < 60)
		snprintf(out, 64, "%llds", (long long)s);
	else if (s < 3600)
		snprintf(out, 64, "%lldm%02llds", (long long)(s / 60),
			 (long long)(s % 60));
	else if (s < 86400)
		snprintf(out, 64, "%lldh%02lldm", (long long)(s / 3600),
			 (long long)(s / 60 % 60));
	else
		snprintf(out, 64, "%lldd%02lldh", (long long)(s / 86400),
			 (long long)(s / 3600 % 24));
	return out;
}

/* The ship file's member key: an integer, or -1 when absent or not one. */
static long long
ship_int(const struct ph_status_report *r, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(r->ship, key, &v) ||
	    !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) < 0)
		return -1;
	return (long long)json_object_get_int64(v);
}

/* The ship file's member key: a string without NUL, or NULL. */
static const char *
ship_text(const struct ph_status_report *r, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(r->ship, key, &v))
		return NULL;
	return ph_json_cstring(v);
}

static const char *const ship_ints[] = { "sent_total", "duplicate_total" };
static const char *const ship_texts[] = {
	"updated_at", "last_sent_at", "last_error", "last_error_at",
};

/* s for a terminal: control characters as '?'. */
static void
text_out(FILE *out, const char *s)
{
	for (; *s != '\0'; s++)
		fputc((unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s, out);
}

void
ph_status_write_text(const struct ph_status_report *r, FILE *out)
{
	static const char *const heads[PH_STATS_N_OUTCOMES] = {
		"accepted 1h/24h", "duplicate 1h/24h", "rejected 1h/24h",
	};
	char a[64];
	int w = 5;

	fprintf(out, "spool %s\n", r->spool_dir);
	for (size_t i = 0; i < PH_SPOOL_N_DIRS; i++) {
		fprintf(out, "  %-8s %8llu", dir_names[i],
			(unsigned long long)r->events[i]);
		if (i == PH_SPOOL_NEW && r->has_oldest)
			fprintf(out, "  oldest waiting %s",
				human_age(r->oldest_new_age_s, a));
		fputc('\n', out);
	}
	for (size_t i = 0; i < r->n_routes; i++)
		if ((int)strlen(r->routes[i].name) > w)
			w = (int)strlen(r->routes[i].name);
	fprintf(out, "\n%-*s", w, "route");
	for (size_t o = 0; o < PH_STATS_N_OUTCOMES; o++)
		fprintf(out, "  %17s", heads[o]);
	fputc('\n', out);
	for (size_t i = 0; i < r->n_routes; i++) {
		fprintf(out, "%-*s", w, r->routes[i].name);
		for (size_t o = 0; o < PH_STATS_N_OUTCOMES; o++) {
			char cell[48];

			snprintf(cell, sizeof(cell), "%llu/%llu",
				 (unsigned long long)r->routes[i].counts[o][0],
				 (unsigned long long)r->routes[i].counts[o][1]);
			fprintf(out, "  %17s", cell);
		}
		fputc('\n', out);
	}
	if (r->has_fault) {
		fprintf(out, "\nlast storage error: %s ",
			iso_time(r->fault.at_ms, a));
		text_out(out, r->fault.msg);
		fputc('\n', out);
	} else {
		fprintf(out, "\nlast storage error: none\n");
	}
	if (r->ship_error != NULL) {
		fprintf(out, "\nship: ");
		text_out(out, r->ship_error);
		fputc('\n', out);
	} else if (r->ship != NULL) {
		fprintf(out, "\nship\n");
		for (size_t i = 0; i < PH_N_ELEMENTS(ship_ints); i++)
			fprintf(out, "  %-15s %lld\n", ship_ints[i],
				ship_int(r, ship_ints[i]));
		for (size_t i = 0; i < PH_N_ELEMENTS(ship_texts); i++) {
			const char *s = ship_text(r, ship_texts[i]);

			fprintf(out, "  %-15s ", ship_texts[i]);
			text_out(out, s != NULL ? s : "-");
			fputc('\n', out);
		}
	}
}

/* json-c returns NULL only when out of memory. */
static struct json_object *
checked(struct json_object *o)
{
	if (o == NULL) {
		ph_log_error("json-c: out of memory");
		abort();
	}
	return o;
}

static void
add(struct json_object *obj, const char *key, struct json_object *val)
{
	if (json_object_object_add(obj, key, val) != 0) {
		ph_log_error("json-c: out of memory");
		abort();
	}
}

static struct json_object *
json_u64(uint64_t v)
{
	return checked(json_object_new_int64(v > INT64_MAX ? INT64_MAX :
					     (int64_t)v));
}

void
ph_status_write_json(const struct ph_status_report *r, FILE *out)
{
	struct json_object *root = checked(json_object_new_object());
	struct json_object *spool = checked(json_object_new_object());
	struct json_object *routes = checked(json_object_new_object());
	char a[64];

	for (size_t i = 0; i < PH_SPOOL_N_DIRS; i++)
		add(spool, dir_names[i], json_u64(r->events[i]));
	add(spool, "oldest_new_age_seconds", r->has_oldest ?
	    checked(json_object_new_int64(r->oldest_new_age_s)) : NULL);
	add(root, "spool", spool);
	for (size_t i = 0; i < r->n_routes; i++) {
		struct json_object *ro = checked(json_object_new_object());

		for (size_t o = 0; o < PH_STATS_N_OUTCOMES; o++) {
			struct json_object *w = checked(json_object_new_object());

			for (size_t k = 0; k < PH_STATS_N_WINDOWS; k++)
				add(w, window_names[k],
				    json_u64(r->routes[i].counts[o][k]));
			add(ro, outcome_names[o], w);
		}
		add(routes, r->routes[i].name, ro);
	}
	add(root, "routes", routes);
	if (r->has_fault) {
		struct json_object *f = checked(json_object_new_object());

		add(f, "at", checked(json_object_new_string(
		    iso_time(r->fault.at_ms, a))));
		add(f, "message", checked(json_object_new_string_len(
		    r->fault.msg, (int)r->fault.len)));
		add(root, "last_storage_error", f);
	} else {
		add(root, "last_storage_error", NULL);
	}
	if (r->ship_error != NULL) {
		struct json_object *s = checked(json_object_new_object());

		add(s, "error", checked(json_object_new_string(
		    r->ship_error)));
		add(root, "ship", s);
	} else if (r->ship != NULL) {
		struct json_object *s = checked(json_object_new_object());

		for (size_t i = 0; i < PH_N_ELEMENTS(ship_ints); i++) {
			long long v = ship_int(r, ship_ints[i]);

			add(s, ship_ints[i], v < 0 ? NULL :
			    checked(json_object_new_int64(v)));
		}
		for (size_t i = 0; i < PH_N_ELEMENTS(ship_texts); i++) {
			const char *t = ship_text(r, ship_texts[i]);

			add(s, ship_texts[i], t == NULL ? NULL :
			    checked(json_object_new_string(t)));
		}
		add(root, "ship", s);
	}
	fprintf(out, "%s\n", json_object_to_json_string_ext(root,
		JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
}

void
ph_status_write_prometheus(const struct ph_status_report *r, FILE *out)
{
	fprintf(out, "# HELP payhook_spool_events Event files in each spool "
		"folder.\n# TYPE payhook_spool_events gauge\n");
	for (size_t i = 0; i < PH_SPOOL_N_DIRS; i++)
		fprintf(out, "payhook_spool_events{dir=\"%s\"} %llu\n",
			dir_names[i], (unsigned long long)r->events[i]);
	fprintf(out, "# HELP payhook_spool_oldest_age_seconds Age of the "
		"oldest event waiting in the folder (absent when it is "
		"empty).\n# TYPE payhook_spool_oldest_age_seconds gauge\n");
	if (r->has_oldest)
		fprintf(out, "payhook_spool_oldest_age_seconds{dir=\"new\"} "
			"%lld\n", (long long)r->oldest_new_age_s);
	fprintf(out, "# HELP payhook_deliveries Deliveries per route and "
		"outcome over the last hour (1h) and day (24h).\n"
		"# TYPE payhook_deliveries gauge\n");
	for (size_t i = 0; i < r->n_routes; i++)
		for (size_t o = 0; o < PH_STATS_N_OUTCOMES; o++)
			for (size_t k = 0; k < PH_STATS_N_WINDOWS; k++)
				fprintf(out, "payhook_deliveries{route=\"%s\","
					"outcome=\"%s\",window=\"%s\"} %llu\n",
					r->routes[i].name, outcome_names[o],
					window_names[k], (unsigned long long)
					r->routes[i].counts[o][k]);
	fprintf(out, "# HELP payhook_last_storage_error_timestamp_seconds "
		"When the request path last failed to store (absent: "
		"never).\n# TYPE payhook_last_storage_error_timestamp_seconds "
		"gauge\n");
	if (r->has_fault)
		fprintf(out, "payhook_last_storage_error_timestamp_seconds "
			"%lld.%03lld\n", (long long)(r->fault.at_ms / 1000),
			(long long)(r->fault.at_ms % 1000));
	if (r->ship == NULL)
		return;
	for (size_t i = 0; i < PH_N_ELEMENTS(ship_ints); i++) {
		long long v = ship_int(r, ship_ints[i]);

		fprintf(out, "# HELP payhook_ship_%s From %s.\n"
			"# TYPE payhook_ship_%s counter\n", ship_ints[i],
			SHIP_FILE, ship_ints[i]);
		if (v >= 0)
			fprintf(out, "payhook_ship_%s %lld\n", ship_ints[i],
				v);
	}
}

/* The page */

/* Write len bytes of s as HTML text: markup characters as references,
 * control characters and bytes that are not UTF-8 as U+FFFD. */
static void
html_n(FILE *out, const char *s, size_t len)
{
	const uint8_t *p = (const uint8_t *)s;

	for (size_t i = 0; i < len;) {
		size_t n = ph_utf8_char_len(p + i, len - i);

		if (n == 0 || (n == 1 && p[i] < 0x20 && p[i] != '\t') ||
		    p[i] == 0x7f) {
			fputs("\xef\xbf\xbd", out);
			i += n == 0 ? 1 : n;
			continue;
		}
		switch (p[i]) {
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '&': fputs("&amp;", out); break;
		case '"': fputs("&quot;", out); break;
		case '\'': fputs("&#39;", out); break;
		default: fwrite(p + i, 1, n, out); break;
		}
		i += n;
	}
}

static void
html(FILE *out, const char *s)
{
	if (s == NULL)
		fputs("-", out);
	else
		html_n(out, s, strlen(s));
}

/* The newest names of some folders: a bounded list kept sorted, newest
 * first. */
struct newest {
	struct {
		char name[256];
		const char *dir;
	} e[PH_STATUS_PAGE_EVENTS];
	size_t n;
	const char *dir;		/* the folder being read */
};

static void
newest_add(const char *name, void *arg)
{
	struct newest *nw = arg;
	size_t i;

	if (strlen(name) >= sizeof(nw->e[0].name))
		return;
	for (i = nw->n; i > 0 && strcmp(name, nw->e[i - 1].name) > 0; i--)
		;
	if (i >= PH_STATUS_PAGE_EVENTS)
		return;
	if (nw->n == PH_STATUS_PAGE_EVENTS)
		nw->n--;
	memmove(&nw->e[i + 1], &nw->e[i], (nw->n - i) * sizeof(nw->e[0]));
	snprintf(nw->e[i].name, sizeof(nw->e[i].name), "%s", name);
	nw->e[i].dir = nw->dir;
	nw->n++;
}

/* Read <spool>/<dir>/<name> as a JSON object; NULL when it cannot be. */
static struct json_object *
read_json(const char *spool, const char *dir, const char *name)
{
	char *path = ph_xasprintf("%s/%s/%s", spool, dir, name), *text;
	struct json_object *doc = NULL;
	struct ph_error err;
	size_t len;

	if (ph_read_file(path, PAGE_FILE_MAX, &text, &len, &err) == 0) {
		doc = ph_json_parse_object((const uint8_t *)text, len,
					   PH_DEFAULT_JSON_DEPTH);
		free(text);
	}
	free(path);
	return doc;
}

/* A cell with doc's key (a string), "-" when it has none; cls, if not
 * NULL, its class. */
static void
cell_key(FILE *out, struct json_object *doc, const char *key,
	 const char *cls)
{
	struct json_object *v;

	if (cls != NULL)
		fprintf(out, "<td class=\"%s\">", cls);
	else
		fputs("<td>", out);
	html(out, doc != NULL && json_object_object_get_ex(doc, key, &v) ?
	     ph_json_cstring(v) : NULL);
	fputs("</td>", out);
}

static void
cell_age(FILE *out, const struct ph_status_report *r, const char *name)
{
	char a[64];
	int64_t t;

	if (name_time_ms(name, &t) == 0)
		fprintf(out, "<td>%s</td>", human_age(t < r->now_ms ?
			(r->now_ms - t) / 1000 : 0, a));
	else
		fputs("<td>-</td>", out);
}

static void
page_events(const struct ph_status_report *r, FILE *out)
{
	struct newest nw = { .n = 0 };
	struct ph_error err;

	for (size_t i = PH_SPOOL_NEW; i <= PH_SPOOL_DONE; i++) {
		nw.dir = dir_names[i];
		(void)each_event(r->spool_dir, dir_names[i], newest_add, &nw,
				 &err);
	}
	fprintf(out, "<h2>Newest events</h2>\n");
	if (nw.n == 0) {
		fputs("<p>None.</p>\n", out);
		return;
	}
	fputs("<div class=\"t\"><table>\n<tr><th>id</th><th>route</th>"
	      "<th>type</th><th>amount</th><th>age</th><th>folder</th></tr>\n",
	      out);
	for (size_t i = 0; i < nw.n; i++) {
		struct json_object *doc = read_json(r->spool_dir, nw.e[i].dir,
						     nw.e[i].name), *amt, *v;

		fputs("<tr>", out);
		cell_key(out, doc, "id", "id");
		cell_key(out, doc, "route", NULL);
		cell_key(out, doc, "type", NULL);
		fputs("<td class=\"n\">", out);
		if (doc != NULL && json_object_object_get_ex(doc, "amount",
							     &amt) &&
		    json_object_is_type(amt, json_type_object)) {
			html(out, json_object_object_get_ex(amt, "value", &v) ?
			     ph_json_cstring(v) : NULL);
			fputc(' ', out);
			html(out, json_object_object_get_ex(amt, "currency",
			     &v) ? ph_json_cstring(v) : NULL);
		} else {
			fputs("-", out);
		}
		fputs("</td>", out);
		cell_age(out, r, nw.e[i].name);
		fprintf(out, "<td>%s</td></tr>\n", nw.e[i].dir);
		json_object_put(doc);
	}
	fputs("</table></div>\n", out);
}

/* The last non-empty line of text, at most STDERR_LINE_MAX bytes of it
 * (cut on a character boundary), as HTML. */
static void
html_last_line(FILE *out, const char *text)
{
	const char *end = text + strlen(text), *start;
	size_t len, cut = 0;

	while (end > text && (end[-1] == '\n' || end[-1] == '\r' ||
			      end[-1] == ' ' || end[-1] == '\t'))
		end--;
	for (start = end; start > text && start[-1] != '\n'; start--)
		;
	len = (size_t)(end - start);
	while (cut < len && cut < STDERR_LINE_MAX) {
		size_t n = ph_utf8_char_len((const uint8_t *)start + cut,
					    len - cut);

		if (cut + (n == 0 ? 1 : n) > STDERR_LINE_MAX)
			break;
		cut += n == 0 ? 1 : n;
	}
	html_n(out, start, cut);
	if (cut < len)
		fputs("\xe2\x80\xa6", out);	/* an ellipsis */
}

/* The last attempt's end: "exit 3", "signal SIGKILL", "timed out". */
static void
html_last_attempt(FILE *out, struct json_object *side)
{
	struct json_object *atts, *last, *v;
	size_t n;

	if (side == NULL || !json_object_object_get_ex(side, "attempts",
						       &atts) ||
	    !json_object_is_type(atts, json_type_array) ||
	    (n = json_object_array_length(atts)) == 0) {
		fputs("-", out);
		return;
	}
	last = json_object_array_get_idx(atts, n - 1);
	if (json_object_object_get_ex(last, "timed_out", &v) &&
	    json_object_get_boolean(v))
		fputs("timed out", out);
	else if (json_object_object_get_ex(last, "signal", &v) &&
		 ph_json_cstring(v) != NULL) {
		fputs("signal ", out);
		html(out, ph_json_cstring(v));
	} else if (json_object_object_get_ex(last, "exit_status", &v) &&
		   json_object_is_type(v, json_type_int))
		fprintf(out, "exit %lld", (long long)json_object_get_int64(v));
	else
		fputs("-", out);
}

static void
page_dead_letters(const struct ph_status_report *r, FILE *out)
{
	struct newest nw = { .n = 0, .dir = "failed" };
	struct ph_error err;

	(void)each_event(r->spool_dir, "failed", newest_add, &nw, &err);
	fprintf(out, "<h2>Dead letters</h2>\n");
	if (nw.n == 0) {
		fputs("<p>None.</p>\n", out);
		return;
	}
	fputs("<div class=\"t\"><table>\n<tr><th>id</th><th>route</th>"
	      "<th>type</th><th>attempts</th><th>last error</th><th>age</th>"
	      "</tr>\n", out);
	for (size_t i = 0; i < nw.n; i++) {
		struct json_object *doc = read_json(r->spool_dir, "failed",
						    nw.e[i].name), *atts, *v;
		char *side_name = ph_xasprintf("%s.err.json", nw.e[i].name);
		struct json_object *side = read_json(r->spool_dir, "failed",
						     side_name);

		fputs("<tr>", out);
		cell_key(out, doc, "id", "id");
		cell_key(out, doc, "route", NULL);
		cell_key(out, doc, "type", NULL);
		if (side != NULL && json_object_object_get_ex(side, "attempts",
							      &atts) &&
		    json_object_is_type(atts, json_type_array))
			fprintf(out, "<td class=\"n\">%zu</td>",
				json_object_array_length(atts));
		else
			fputs("<td class=\"n\">-</td>", out);
		fputs("<td>", out);
		html_last_attempt(out, side);
		if (side != NULL && json_object_object_get_ex(side,
		    "stderr_tail", &v) && ph_json_cstring(v) != NULL) {
			fputs("<br><code>", out);
			html_last_line(out, ph_json_cstring(v));
			fputs("</code>", out);
		}
		fputs("</td>", out);
		cell_age(out, r, nw.e[i].name);
		fputs("</tr>\n", out);
		json_object_put(doc);
		json_object_put(side);
		free(side_name);
	}
	fputs("</table></div>\n", out);
}

static const char page_head[] =
	"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	"<meta name=\"viewport\" content=\"width=device-width, "
	"initial-scale=1\">\n<meta name=\"robots\" content=\"noindex\">\n"
	"<title>payhook status</title>\n<style>\n"
	"body{font:16px/1.4 system-ui,sans-serif;margin:0 auto;padding:1em;"
	"max-width:60em;color:#222;background:#fff}\n"
	"h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.5em}\n"
	".t{overflow-x:auto}table{border-collapse:collapse}\n"
	"th,td{padding:.25em .6em;border-bottom:1px solid #ddd;"
	"text-align:left;vertical-align:top}\n"
	"td.n{text-align:right}code{font-size:.85em;word-break:break-all}\n"
	"td.id{font:.8em ui-monospace,monospace;word-break:break-all;"
	"min-width:9em}\n"
	".bad{color:#a00}.ok{color:#070}\n"
	"</style></head>\n<body>\n<h1>payhook status</h1>\n";

void
ph_status_write_page(const struct ph_status_report *r, FILE *out)
{
	char a[64];

	fputs(page_head, out);
	fprintf(out, "<p>As of %s.</p>\n", iso_time(r->now_ms, a));
	fputs("<h2>Spool</h2>\n<div class=\"t\"><table>\n<tr><th>folder</th>"
	      "<th>events</th></tr>\n", out);
	for (size_t i = 0; i < PH_SPOOL_N_DIRS; i++)
		fprintf(out, "<tr><td>%s</td><td class=\"n\">%llu</td></tr>\n",
			dir_names[i], (unsigned long long)r->events[i]);
	fputs("</table></div>\n", out);
	if (r->has_oldest)
		fprintf(out, "<p>Oldest waiting event: %s.</p>\n",
			human_age(r->oldest_new_age_s, a));
	else
		fputs("<p>Nothing waiting in new/.</p>\n", out);
	fputs("<h2>Deliveries</h2>\n<div class=\"t\"><table>\n<tr>"
	      "<th>route</th><th>accepted 1h / 24h</th>"
	      "<th>duplicate 1h / 24h</th><th>rejected 1h / 24h</th></tr>\n",
	      out);
	for (size_t i = 0; i < r->n_routes; i++) {
		fputs("<tr><td>", out);
		html(out, r->routes[i].name);
		fputs("</td>", out);
		for (size_t o = 0; o < PH_STATS_N_OUTCOMES; o++)
			fprintf(out, "<td class=\"n\">%llu / %llu</td>",
				(unsigned long long)r->routes[i].counts[o][0],
				(unsigned long long)r->routes[i].counts[o][1]);
		fputs("</tr>\n", out);
	}
	fputs("</table></div>\n<h2>Last storage error</h2>\n", out);
	if (r->has_fault) {
		fprintf(out, "<p class=\"bad\">%s: ", iso_time(r->fault.at_ms,
								 a));
		html_n(out, r->fault.msg, r->fault.len);
		fputs("</p>\n", out);
	} else {
		fputs("<p class=\"ok\">None.</p>\n", out);
	}
	if (r->ship_error != NULL) {
		fputs("<h2>Ship</h2>\n<p class=\"bad\">", out);
		html(out, r->ship_error);
		fputs("</p>\n", out);
	} else if (r->ship != NULL) {
		fputs("<h2>Ship</h2>\n<div class=\"t\"><table>\n", out);
		for (size_t i = 0; i < PH_N_ELEMENTS(ship_ints); i++)
			fprintf(out, "<tr><th>%s</th><td>%lld</td></tr>\n",
				ship_ints[i], ship_int(r, ship_ints[i]));
		for (size_t i = 0; i < PH_N_ELEMENTS(ship_texts); i++) {
			fprintf(out, "<tr><th>%s</th><td>", ship_texts[i]);
			html(out, ship_text(r, ship_texts[i]));
			fputs("</td></tr>\n", out);
		}
		fputs("</table></div>\n", out);
	}
	page_events(r, out);
	page_dead_letters(r, out);
	fputs("</body></html>\n", out);
}
