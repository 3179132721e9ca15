/* test-status.c - the delivery counters (stats.h), "payhook status" in its
 * three formats and the status page (status.h), the status route's
 * configuration (prov-status.c).
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "conf.h"
#include "ids.h"
#include "stats.h"
#include "status.h"

/* 2026-11-21T10:00:00Z */
#define T0 ((time_t)1795255200)

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	test_assert(f != NULL);
	if (f == NULL)
		return;
	fputs(text, f);
	fclose(f);
}

/* The file name an event received at t (ms) gets (spool.c). */
static void
event_name(int64_t ms, const char *id, char *out, size_t size)
{
	struct timeval tv = { .tv_sec = (time_t)(ms / 1000),
			      .tv_usec = (suseconds_t)(ms % 1000) * 1000 };
	char stamp[PH_STAMP_LEN + 1];

	ph_time_stamp(&tv, stamp);
	snprintf(out, size, "%s-%s.json", stamp, id);
}

static void
test_stats_windows(void)
{
	char state[512], path[600];
	uint64_t c[PH_STATS_N_OUTCOMES][PH_STATS_N_WINDOWS];
	struct ph_error err;
	struct ph_stats *st;
	struct stat sb;

	test_begin("stats: one-minute buckets, 1h and 24h windows");
	snprintf(state, sizeof(state), "%s/stats-windows", test_tmpdir());
	test_assert(mkdir(state, 0700) == 0);
	/* Nothing counted yet: zeros, no file needed. */
	test_assert(ph_stats_read_route(state, "ngn", T0, c, &err) == 0);
	test_assert(c[PH_STATS_ACCEPTED][PH_STATS_24H] == 0);
	st = ph_stats_new(state);
	/* In time order, as a server counts. 25 h ago lands in the bucket
	 * that 60 min ago reuses: it is gone from both windows. */
	ph_stats_count(st, "ngn", PH_STATS_ACCEPTED, T0 - 25 * 3600);
	ph_stats_count(st, "ngn", PH_STATS_ACCEPTED, T0 - 1439 * 60);
	ph_stats_count(st, "ngn", PH_STATS_REJECTED, T0 - 2 * 3600);
	ph_stats_count(st, "ngn", PH_STATS_DUPLICATE, T0 - 3600);
	ph_stats_count(st, "ngn", PH_STATS_DUPLICATE, T0 - 59 * 60);
	ph_stats_count(st, "ngn", PH_STATS_ACCEPTED, T0 - 30 * 60);
	ph_stats_count(st, "ngn", PH_STATS_ACCEPTED, T0);
	ph_stats_count(st, "ngn", PH_STATS_ACCEPTED, T0 + 59);
	ph_stats_count(st, "other", PH_STATS_REJECTED, T0);
	test_assert(ph_stats_read_route(state, "ngn", T0 + 30, c, &err) == 0);
	test_assert(c[PH_STATS_ACCEPTED][PH_STATS_1H] == 3);
	test_assert(c[PH_STATS_ACCEPTED][PH_STATS_24H] == 4);
	test_assert(c[PH_STATS_DUPLICATE][PH_STATS_1H] == 1);
	test_assert(c[PH_STATS_DUPLICATE][PH_STATS_24H] == 2);
	test_assert(c[PH_STATS_REJECTED][PH_STATS_1H] == 0);
	test_assert(c[PH_STATS_REJECTED][PH_STATS_24H] == 1);
	test_assert(ph_stats_read_route(state, "other", T0, c, &err) == 0);
	test_assert(c[PH_STATS_REJECTED][PH_STATS_1H] == 1);
	test_assert(c[PH_STATS_ACCEPTED][PH_STATS_24H] == 0);
	/* A day later, all of it has aged out. */
	test_assert(ph_stats_read_route(state, "ngn", T0 + 86400, c,
					&err) == 0);
	test_assert(c[PH_STATS_ACCEPTED][PH_STATS_24H] == 0 &&
		    c[PH_STATS_DUPLICATE][PH_STATS_24H] == 0);
	/* Fixed size, private modes. */
	snprintf(path, sizeof(path), "%s/stats/route-ngn", state);
	test_assert(stat(path, &sb) == 0);
	test_assert(sb.st_size == PH_STATS_MINUTES * 16);
	test_assert((sb.st_mode & 0777) == 0600);
	for (int i = 0; i < 5000; i++)
		ph_stats_count(st, "ngn", PH_STATS_ACCEPTED, T0 + i * 97);
	test_assert(stat(path, &sb) == 0);
	test_assert(sb.st_size == PH_STATS_MINUTES * 16);
	snprintf(path, sizeof(path), "%s/stats", state);
	test_assert(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0700);
	ph_stats_free(&st);
	test_assert(st == NULL);
	test_end();
}

static void
test_stats_processes(void)
{
	enum { PROCS = 4, EACH = 250 };
	uint64_t c[PH_STATS_N_OUTCOMES][PH_STATS_N_WINDOWS];
	struct ph_error err;
	char state[512];
	int status, ok = 0;

	test_begin("stats: several processes count at once, none lost");
	snprintf(state, sizeof(state), "%s/stats-procs", test_tmpdir());
	test_assert(mkdir(state, 0700) == 0);
	for (int p = 0; p < PROCS; p++) {
		pid_t pid = fork();

		if (pid == 0) {
			struct ph_stats *st = ph_stats_new(state);

			for (int i = 0; i < EACH; i++)
				ph_stats_count(st, "r", (enum ph_stats_outcome)
					       (i % 3), T0);
			ph_stats_free(&st);
			_exit(0);
		}
		test_assert(pid > 0);
	}
	for (int p = 0; p < PROCS; p++)
		if (wait(&status) > 0 && WIFEXITED(status) &&
		    WEXITSTATUS(status) == 0)
			ok++;
	test_assert(ok == PROCS);
	test_assert(ph_stats_read_route(state, "r", T0, c, &err) == 0);
	test_assert(c[0][PH_STATS_1H] == PROCS * 84);
	test_assert(c[1][PH_STATS_1H] == PROCS * 83);
	test_assert(c[2][PH_STATS_24H] == PROCS * 83);
	test_end();
}

static void
test_stats_faults(void)
{
	struct ph_stats_fault f;
	struct ph_error err;
	char state[512], path[600], big[700];
	struct ph_stats *st;
	struct stat sb;

	test_begin("stats: storage error record; write errors never fail");
	snprintf(state, sizeof(state), "%s/stats-fault", test_tmpdir());
	test_assert(mkdir(state, 0700) == 0);
	test_assert(ph_stats_read_fault(state, &f, &err) == 0);
	st = ph_stats_new(state);
	ph_stats_storage_error(st, (int64_t)T0 * 1000 + 5, "first");
	ph_stats_storage_error(st, (int64_t)T0 * 1000 + 7,
			       "spool write failed: no space");
	test_assert(ph_stats_read_fault(state, &f, &err) == 1);
	test_assert(f.at_ms == (int64_t)T0 * 1000 + 7);
	test_assert(strcmp(f.msg, "spool write failed: no space") == 0);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ph_stats_storage_error(st, 1, big);
	test_assert(ph_stats_read_fault(state, &f, &err) == 1);
	test_assert(f.len == PH_STATS_FAULT_MSG - 1 &&
		    strlen(f.msg) == PH_STATS_FAULT_MSG - 1);
	ph_stats_free(&st);
	/* A state "directory" that is a file: counting is silently skipped
	 * (logged), nothing created, and reading says so. */
	snprintf(path, sizeof(path), "%s/stats-fault/file", test_tmpdir());
	write_file(path, "x");
	st = ph_stats_new(path);
	ph_stats_count(st, "ngn", PH_STATS_ACCEPTED, T0);
	ph_stats_storage_error(st, 1, "x");
	ph_stats_free(&st);
	test_assert(stat(path, &sb) == 0 && S_ISREG(sb.st_mode) &&
		    sb.st_size == 1);
	test_end();
}

void
test_stats(void)
{
	test_stats_windows();
	test_stats_processes();
	test_stats_faults();
}

/* A known spool and counter state at T0 + 30 s. */
static struct ph_config *
known_setup(const char *base)
{
	static const char *const dirs[] = { "", "/spool", "/spool/new",
		"/spool/cur", "/spool/done", "/spool/failed", "/state" };
	struct ph_faults faults = { 0 };
	char path[700], name[128], text[2048];
	struct ph_config *cfg;
	struct ph_stats *st;
	int64_t t0 = (int64_t)T0 * 1000;

	for (size_t i = 0; i < PH_N_ELEMENTS(dirs); i++) {
		snprintf(path, sizeof(path), "%s%s", base, dirs[i]);
		test_assert_idx(mkdir(path, 0700) == 0, i);
	}
	snprintf(text, sizeof(text),
		 "{\"spool_dir\": \"%s/spool\", \"state_dir\": \"%s/state\", "
		 "\"routes\": [{\"name\": \"ngn\", \"path\": \"/ngn\", "
		 "\"provider\": \"ngn-gateway\", \"secrets\": \"s\", "
		 "\"amount_unit\": \"major\"}, "
		 "{\"name\": \"status\", \"path\": \"/status\", "
		 "\"provider\": \"status\", \"url_token\": \"tok\"}, "
		 "{\"name\": \"stripe-live\", \"path\": \"/stripe\", "
		 "\"provider\": \"stripe\", \"secrets\": \"whsec_x\"}]}",
		 base, base);
	cfg = ph_config_load_text("known.json", text, strlen(text), &faults);
	test_assert(cfg != NULL && faults.count == 0);
	ph_faults_clear(&faults);
	/* new/: two events, the oldest 5 min 12.5 s before T0 + 30 s; a
	 * hidden file and a temporary name that do not count. */
	event_name(t0 + 30000 - 312500, "01KAKYB6R0AAAAAAAAAAAAAAAA", name,
		   sizeof(name));
	snprintf(path, sizeof(path), "%s/spool/new/%s", base, name);
	write_file(path, "{\"id\":\"01KAKYB6R0AAAAAAAAAAAAAAAA\",\"route\":"
		   "\"ngn\",\"type\":\"payment.succeeded\",\"amount\":"
		   "{\"value\":\"12.50\",\"minor\":1250,\"currency\":\"NGN\","
		   "\"exponent\":2},\"raw\":{\"card\":\"4111111111111111\","
		   "\"email\":\"someone@example.com\"}}\n");
	event_name(t0 - 1000, "01KAKYB6R0BBBBBBBBBBBBBBBB", name,
		   sizeof(name));
	snprintf(path, sizeof(path), "%s/spool/new/%s", base, name);
	write_file(path, "{\"id\":\"01KAKYB6R0BBBBBBBBBBBBBBBB\",\"route\":"
		   "\"ngn\",\"type\":\"<script>alert(1)</script>\","
		   "\"amount\":null,\"raw\":{}}\n");
	snprintf(path, sizeof(path), "%s/spool/new/.hidden.json", base);
	write_file(path, "{}");
	snprintf(path, sizeof(path), "%s/spool/new/x.json.tmp", base);
	write_file(path, "{}");
	event_name(t0 - 7200000, "01KAKYB6R0CCCCCCCCCCCCCCCC", name,
		   sizeof(name));
	snprintf(path, sizeof(path), "%s/spool/cur/%s", base, name);
	write_file(path, "{\"id\":\"01KAKYB6R0CCCCCCCCCCCCCCCC\",\"route\":"
		   "\"ngn\",\"type\":\"refund.succeeded\",\"raw\":{}}\n");
	for (int i = 0; i < 3; i++) {
		char id[32];

		snprintf(id, sizeof(id), "01KAKYB6R0DDDDDDDDDDDDDDD%d", i);
		event_name(t0 - 86400000 - i * 1000, id, name, sizeof(name));
		snprintf(path, sizeof(path), "%s/spool/done/%s", base, name);
		write_file(path, "{\"id\":\"done\",\"raw\":{}}\n");
	}
	/* failed/: one dead letter and its sidecar (not counted). */
	event_name(t0 - 600000, "01KAKYB6R0EEEEEEEEEEEEEEEE", name,
		   sizeof(name));
	snprintf(path, sizeof(path), "%s/spool/failed/%s", base, name);
	write_file(path, "{\"id\":\"01KAKYB6R0EEEEEEEEEEEEEEEE\",\"route\":"
		   "\"ngn\",\"type\":\"payment.failed\",\"raw\":{}}\n");
	snprintf(path, sizeof(path), "%s/spool/failed/%s.err.json", base,
		 name);
	write_file(path, "{\"schema\":\"payhook.drain-error/1\",\"attempts\":"
		   "[{\"number\":1,\"exit_status\":1,\"signal\":null,"
		   "\"timed_out\":false},{\"number\":2,\"exit_status\":null,"
		   "\"signal\":\"SIGKILL\",\"timed_out\":false}],"
		   "\"stderr_tail\":\"starting\\nTraceback <a&b>\\n\\n\"}");
	/* Counters and the last storage error. */
	st = ph_stats_new(cfg->state_dir);
	ph_stats_count(st, "ngn", PH_STATS_ACCEPTED, T0 - 7200);
	ph_stats_count(st, "ngn", PH_STATS_ACCEPTED, T0);
	ph_stats_count(st, "ngn", PH_STATS_ACCEPTED, T0);
	ph_stats_count(st, "ngn", PH_STATS_DUPLICATE, T0);
	ph_stats_count(st, "ngn", PH_STATS_REJECTED, T0 - 3000);
	ph_stats_storage_error(st, t0 - 90000, "spool write failed: "
			       "write(tmp) failed: No space left on device");
	/* The status route is not a delivery route: never listed. */
	ph_stats_free(&st);
	return cfg;
}

/* What fn writes for r, in a new string. Not inlined: GCC would take the
 * returned buffer for the local pointer open_memstream() was given. */
static __attribute__((noinline)) char *
written(void (*fn)(const struct ph_status_report *, FILE *),
	const struct ph_status_report *r)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	fn(r, f);
	fclose(f);
	return buf;
}

/* Where needle first is in hay, or -1. */
static long
offset_of(const char *hay, const char *needle)
{
	const char *p = strstr(hay, needle);

	return p != NULL ? (long)(p - hay) : -1;
}

static const char expected_text[] =
	"spool %s/spool\n"
	"  new             2  oldest waiting 5m12s\n"
	"  cur             1\n"
	"  done            3\n"
	"  failed          1\n"
	"\n"
	"route          accepted 1h/24h   duplicate 1h/24h    rejected "
	"1h/24h\n"
	"ngn                        2/3                1/1                "
	"1/1\n"
	"stripe-live                0/0                0/0                "
	"0/0\n"
	"\n"
	"last storage error: 2026-11-21T09:58:30.000Z spool write failed: "
	"write(tmp) failed: No space left on device\n";

static const char expected_json[] =
	"{\"spool\":{\"new\":2,\"cur\":1,\"done\":3,\"failed\":1,"
	"\"oldest_new_age_seconds\":312},\"routes\":{\"ngn\":{\"accepted\":"
	"{\"1h\":2,\"24h\":3},\"duplicate\":{\"1h\":1,\"24h\":1},\"rejected\":"
	"{\"1h\":1,\"24h\":1}},\"stripe-live\":{\"accepted\":{\"1h\":0,"
	"\"24h\":0},\"duplicate\":{\"1h\":0,\"24h\":0},\"rejected\":{\"1h\":0,"
	"\"24h\":0}}},\"last_storage_error\":{\"at\":"
	"\"2026-11-21T09:58:30.000Z\",\"message\":\"spool write failed: "
	"write(tmp) failed: No space left on device\"}}\n";

static const char expected_prom[] =
	"# HELP payhook_spool_events Event files in each spool folder.\n"
	"# TYPE payhook_spool_events gauge\n"
	"payhook_spool_events{dir=\"new\"} 2\n"
	"payhook_spool_events{dir=\"cur\"} 1\n"
	"payhook_spool_events{dir=\"done\"} 3\n"
	"payhook_spool_events{dir=\"failed\"} 1\n"
	"# HELP payhook_spool_oldest_age_seconds Age of the oldest event "
	"waiting in the folder (absent when it is empty).\n"
	"# TYPE payhook_spool_oldest_age_seconds gauge\n"
	"payhook_spool_oldest_age_seconds{dir=\"new\"} 312\n"
	"# HELP payhook_deliveries Deliveries per route and outcome over the "
	"last hour (1h) and day (24h).\n"
	"# TYPE payhook_deliveries gauge\n"
	"payhook_deliveries{route=\"ngn\",outcome=\"accepted\",window=\"1h\"} 2\n"
	"payhook_deliveries{route=\"ngn\",outcome=\"accepted\",window=\"24h\"} 3\n"
	"payhook_deliveries{route=\"ngn\",outcome=\"duplicate\",window=\"1h\"} 1\n"
	"payhook_deliveries{route=\"ngn\",outcome=\"duplicate\",window=\"24h\"} 1\n"
	"payhook_deliveries{route=\"ngn\",outcome=\"rejected\",window=\"1h\"} 1\n"
	"payhook_deliveries{route=\"ngn\",outcome=\"rejected\",window=\"24h\"} 1\n"
	"payhook_deliveries{route=\"stripe-live\",outcome=\"accepted\","
	"window=\"1h\"} 0\n"
	"payhook_deliveries{route=\"stripe-live\",outcome=\"accepted\","
	"window=\"24h\"} 0\n"
	"payhook_deliveries{route=\"stripe-live\",outcome=\"duplicate\","
	"window=\"1h\"} 0\n"
	"payhook_deliveries{route=\"stripe-live\",outcome=\"duplicate\","
	"window=\"24h\"} 0\n"
	"payhook_deliveries{route=\"stripe-live\",outcome=\"rejected\","
	"window=\"1h\"} 0\n"
	"payhook_deliveries{route=\"stripe-live\",outcome=\"rejected\","
	"window=\"24h\"} 0\n"
	"# HELP payhook_last_storage_error_timestamp_seconds When the request "
	"path last failed to store (absent: never).\n"
	"# TYPE payhook_last_storage_error_timestamp_seconds gauge\n"
	"payhook_last_storage_error_timestamp_seconds 1795255110.000\n";

static void
test_status_formats(void)
{
	struct ph_status_report r;
	struct ph_config *cfg;
	struct ph_error err;
	char base[512], *out, *want;

	test_begin("status: text, JSON and Prometheus of a known spool");
	snprintf(base, sizeof(base), "%s/status-known", test_tmpdir());
	cfg = known_setup(base);
	if (cfg == NULL) {
		test_end();
		return;
	}
	test_assert(ph_status_collect(cfg, (int64_t)T0 * 1000 + 30000, &r,
				      &err) == 0);
	want = NULL;
	test_assert(asprintf(&want, expected_text, base) > 0);
	out = written(ph_status_write_text, &r);
	test_assert(strcmp(out, want) == 0);
	if (strcmp(out, want) != 0)
		fprintf(stderr, "# got:\n%s# want:\n%s", out, want);
	free(out);
	free(want);
	out = written(ph_status_write_json, &r);
	test_assert(strcmp(out, expected_json) == 0);
	if (strcmp(out, expected_json) != 0)
		fprintf(stderr, "# got:\n%s", out);
	free(out);
	out = written(ph_status_write_prometheus, &r);
	test_assert(strcmp(out, expected_prom) == 0);
	if (strcmp(out, expected_prom) != 0)
		fprintf(stderr, "# got:\n%s", out);
	free(out);
	ph_status_report_clear(&r);
	ph_config_free(&cfg);
	test_end();
}

static void
test_status_ship_and_page(void)
{
	struct ph_status_report r;
	struct ph_config *cfg;
	struct ph_error err;
	char base[512], path[700], *out;

	test_begin("status: ship section; the page escapes and hides raw");
	snprintf(base, sizeof(base), "%s/status-page", test_tmpdir());
	cfg = known_setup(base);
	if (cfg == NULL) {
		test_end();
		return;
	}
	snprintf(path, sizeof(path), "%s/state/ship-status.json", base);
	write_file(path, "{\"schema\":\"payhook.ship-status/1\",\"updated_at\":"
		   "\"2026-11-21T09:59:00.000Z\",\"sent_total\":41,"
		   "\"duplicate_total\":2,\"last_sent_at\":"
		   "\"2026-11-21T09:58:00.000Z\",\"last_error\":null,"
		   "\"last_error_at\":null}");
	test_assert(ph_status_collect(cfg, (int64_t)T0 * 1000 + 30000, &r,
				      &err) == 0);
	out = written(ph_status_write_json, &r);
	test_assert(strstr(out, ",\"ship\":{\"sent_total\":41,"
			   "\"duplicate_total\":2,\"updated_at\":"
			   "\"2026-11-21T09:59:00.000Z\",\"last_sent_at\":"
			   "\"2026-11-21T09:58:00.000Z\",\"last_error\":null,"
			   "\"last_error_at\":null}}\n") != NULL);
	free(out);
	out = written(ph_status_write_prometheus, &r);
	test_assert(strstr(out, "\n# TYPE payhook_ship_sent_total counter\n"
			   "payhook_ship_sent_total 41\n") != NULL);
	test_assert(strstr(out, "\npayhook_ship_duplicate_total 2\n") != NULL);
	free(out);
	out = written(ph_status_write_text, &r);
	test_assert(strstr(out, "\nship\n  sent_total      41\n"
			   "  duplicate_total 2\n") != NULL);
	test_assert(strstr(out, "  last_error      -\n") != NULL);
	free(out);
	out = written(ph_status_write_page, &r);
	test_assert(strncmp(out, "<!DOCTYPE html>", 15) == 0);
	test_assert(strstr(out, "name=\"viewport\"") != NULL);
	test_assert(strstr(out, "<script") == NULL);
	test_assert(strstr(out, "&lt;script&gt;alert(1)&lt;/script&gt;") !=
		    NULL);
	test_assert(strstr(out, "4111") == NULL);
	test_assert(strstr(out, "someone@") == NULL);
	test_assert(strstr(out, "<td class=\"id\">01KAKYB6R0AAAAAAAAAAAAAAAA</td><td>ngn"
			   "</td><td>payment.succeeded</td><td class=\"n\">"
			   "12.50 NGN</td><td>5m12s</td><td>new</td>") !=
		    NULL);
	test_assert(strstr(out, "<td class=\"id\">01KAKYB6R0CCCCCCCCCCCCCCCC</td>") !=
		    NULL);
	/* Newest first: B (1 s old) before A before C. */
	test_assert(offset_of(out, "BBBBBBBB") >= 0 &&
		    offset_of(out, "BBBBBBBB") < offset_of(out, "AAAAAAAA") &&
		    offset_of(out, "AAAAAAAA") < offset_of(out, "CCCCCCCC"));
	test_assert(strstr(out, "<td class=\"id\">01KAKYB6R0EEEEEEEEEEEEEEEE</td><td>ngn"
			   "</td><td>payment.failed</td><td class=\"n\">2</td>"
			   "<td>signal SIGKILL<br><code>Traceback &lt;a&amp;b"
			   "&gt;</code></td><td>10m30s</td>") != NULL);
	test_assert(strstr(out, "<th>sent_total</th><td>41</td>") != NULL);
	test_assert(strstr(out, "2026-11-21T09:58:30.000Z: spool write "
			   "failed") != NULL);
	free(out);
	ph_status_report_clear(&r);
	/* A ship file that is not one: said, not fatal. */
	write_file(path, "{\"schema\":\"other\"}");
	test_assert(ph_status_collect(cfg, (int64_t)T0 * 1000, &r, &err) ==
		    0);
	test_assert(r.ship == NULL && r.ship_error != NULL &&
		    strstr(r.ship_error, "not a payhook.ship-status/1") !=
		    NULL);
	ph_status_report_clear(&r);
	ph_config_free(&cfg);
	test_end();
}

static void
test_status_config(void)
{
	static const struct {
		const char *route;
		const char *fault;	/* NULL: valid */
	} rows[] = {
		{ "\"url_token\": \"t0k\"", NULL },
		{ "\"auth\": {\"type\": \"basic\", \"user\": \"ops\", "
		  "\"password\": \"pw\"}", NULL },
		{ "\"auth\": {\"type\": \"basic\", \"user\": \"ops\", "
		  "\"password\": \"pw\"}, \"url_token\": \"t\"", NULL },
		{ "\"allow_from\": [\"127.0.0.1\"]",
		  "route 'st' (#1): a status route needs \"auth\" (type "
		  "\"basic\") or \"url_token\": the page is never open to "
		  "anyone" },
		{ "\"auth\": {\"type\": \"bearer\", \"token\": \"x\"}",
		  "route 'st' (#1): key 'auth.type': must be \"basic\" for a "
		  "status route" },
		{ "\"auth\": {\"type\": \"basic\", \"user\": \"ops\"}",
		  "route 'st' (#1): key 'auth.password': missing (required)" },
		{ "\"auth\": {\"type\": \"basic\", \"user\": \"o\", "
		  "\"password\": \"p\", \"realm\": \"x\"}",
		  "route 'st' (#1): key 'auth.realm': unknown for type "
		  "\"basic\"" },
		{ "\"url_token\": \"\"",
		  "route 'st' (#1): key 'url_token': empty secret" },
		{ "\"url_token\": \"t\", \"secrets\": \"s\"",
		  "route 'st' (#1): key 'secrets': not used by a status "
		  "route" },
		{ "\"url_token\": \"env:PH_TEST_NO_SUCH_VAR\"",
		  "route 'st' (#1): key 'url_token': environment variable "
		  "PH_TEST_NO_SUCH_VAR is not set" },
	};

	test_begin("status route: auth or url_token, named faults");
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++) {
		struct ph_faults faults = { 0 };
		struct ph_config *cfg;
		char text[1024];

		snprintf(text, sizeof(text), "{\"spool_dir\": \"/s\", "
			 "\"state_dir\": \"/t\", \"routes\": [{\"name\": "
			 "\"st\", \"path\": \"/st\", \"provider\": \"status\", "
			 "%s}]}", rows[i].route);
		cfg = ph_config_load_text("s.json", text, strlen(text),
					  &faults);
		if (rows[i].fault == NULL) {
			test_assert_idx(cfg != NULL && faults.count == 0, i);
		} else {
			test_assert_idx(cfg == NULL && faults.count == 1, i);
			test_assert_idx(faults.count > 0 &&
					strcmp(faults.lines[0],
					       rows[i].fault) == 0, i);
			if (faults.count > 0 &&
			    strcmp(faults.lines[0], rows[i].fault) != 0)
				fprintf(stderr, "# %s\n", faults.lines[0]);
		}
		ph_faults_clear(&faults);
		ph_config_free(&cfg);
	}
	test_end();
}

void
test_status(void)
{
	test_status_formats();
	test_status_ship_and_page();
	test_status_config();
}
