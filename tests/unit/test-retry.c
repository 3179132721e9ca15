/* test-retry.c - drain's backoff, attempt records, dead-letter report and
 * job runner (retry.c, job.c).
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>

#include <json-c/json.h>

#include "job.h"
#include "retry.h"
#include "test.h"

static void
test_retry_backoff(void)
{
	static const struct {
		unsigned failed;
		uint64_t min, max;
		uint32_t rnd;
		uint64_t want;
	} cases[] = {
		{ 1, 30000, 3600000, 0, 30000 },
		{ 1, 30000, 3600000, 0xffffffffu, 30000 },	/* >= min */
		{ 2, 30000, 3600000, 0, 60000 },
		{ 2, 30000, 3600000, 0x80000000u, 52500 },	/* - d/8 */
		{ 3, 30000, 3600000, 0, 120000 },
		{ 8, 30000, 3600000, 0, 3600000 },		/* capped */
		{ 8, 30000, 3600000, 0xffffffffu, 2700001 },	/* - ~d/4 */
		{ 1000, 30000, 3600000, 0, 3600000 },		/* no overflow */
		{ 64, UINT64_MAX / 2, UINT64_MAX, 0, UINT64_MAX },
		{ 5, 0, 3600000, 0, 0 },
		{ 3, 1000, 1000, 0xffffffffu, 1000 },
		{ 2, 5000, 1000, 0, 5000 },			/* max < min */
	};

	test_begin("retry: backoff doubles, is capped and jittered");
	for (size_t i = 0; i < PH_N_ELEMENTS(cases); i++) {
		uint64_t got = ph_backoff_delay_ms(cases[i].failed,
						   cases[i].min, cases[i].max,
						   cases[i].rnd);

		test_assert_idx(got == cases[i].want, i);
	}
	test_end();
}

static void
test_retry_attempt_json(void)
{
	struct ph_attempt a = {
		.number = 3, .started = { 1795000000, 123000 },
		.finished = { 1795000001, 456999 }, .exit_status = -1,
		.signal = SIGKILL, .timed_out = true,
	}, b;
	struct json_object *o;
	char buf[64];

	test_begin("retry: an attempt as JSON and back");
	o = ph_attempt_to_json(&a);
	test_assert(strcmp(json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN),
	    "{\"number\":3,\"started_at\":\"2026-11-18T11:06:40.123Z\","
	    "\"finished_at\":\"2026-11-18T11:06:41.456Z\",\"exit_status\":"
	    "null,\"signal\":\"SIGKILL\",\"timed_out\":true}") == 0);
	test_assert(ph_attempt_from_json(o, &b) == 0);
	test_assert(b.number == 3 && b.signal == SIGKILL && b.timed_out);
	test_assert(b.started.tv_sec == a.started.tv_sec &&
		    b.started.tv_usec == 123000);
	test_assert(b.finished.tv_usec == 456000);
	test_assert(!ph_attempt_succeeded(&b));
	ph_attempt_describe(&b, buf, sizeof(buf));
	test_assert(strcmp(buf, "timed out") == 0);
	json_object_put(o);

	a.signal = 0;
	a.timed_out = false;
	a.exit_status = 0;
	test_assert(ph_attempt_succeeded(&a));
	a.exit_status = 4;
	ph_attempt_describe(&a, buf, sizeof(buf));
	test_assert(strcmp(buf, "exit status 4") == 0);
	a.exit_status = -1;
	a.signal = 64;
	ph_attempt_describe(&a, buf, sizeof(buf));
	test_assert(strcmp(buf, "killed by SIG64") == 0);
	o = ph_attempt_to_json(&a);
	test_assert(ph_attempt_from_json(o, &b) == 0 && b.signal == 64 &&
		    b.exit_status == -1);
	json_object_put(o);

	o = json_tokener_parse("{\"number\":0,\"started_at\":"
			       "\"2026-11-18T11:06:40.123Z\",\"finished_at\":"
			       "\"2026-11-18T08:26:40.123Z\"}");
	test_assert(ph_attempt_from_json(o, &b) < 0);	/* numbered from 1 */
	json_object_put(o);
	o = json_tokener_parse("{\"number\":1,\"started_at\":"
			       "\"2026-11-18 08:26:40\",\"finished_at\":"
			       "\"2026-11-18T08:26:40.123Z\"}");
	test_assert(ph_attempt_from_json(o, &b) < 0);
	json_object_put(o);
	test_end();
}

static void
test_retry_error_report(void)
{
	struct ph_attempt a = { .number = 1, .exit_status = 2 };
	struct json_object *ev, *r;
	const char *tail = "ok \xff\xfe end\0x";

	test_begin("retry: the dead-letter report");
	ev = json_tokener_parse("{\"id\":\"01K\",\"dedup_key\":\"r:p:1\","
				"\"route\":\"r\",\"type\":7}");
	r = ph_drain_error_json("X.json", ev, &a, 1, tail, 11);
	test_assert(strcmp(json_object_to_json_string_ext(r,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
	    "{\"schema\":\"payhook.drain-error/1\",\"event_file\":\"X.json\","
	    "\"event_id\":\"01K\",\"dedup_key\":\"r:p:1\",\"route\":\"r\","
	    "\"type\":null,\"attempts\":[{\"number\":1,\"started_at\":"
	    "\"1970-01-01T00:00:00.000Z\",\"finished_at\":"
	    "\"1970-01-01T00:00:00.000Z\",\"exit_status\":2,\"signal\":null,"
	    "\"timed_out\":false}],\"stderr_tail\":"
	    "\"ok \xef\xbf\xbd\xef\xbf\xbd end\\u0000x\"}") == 0);
	json_object_put(r);
	r = ph_drain_error_json("Y.json", NULL, NULL, 0, NULL, 0);
	test_assert(strcmp(json_object_to_json_string_ext(r,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE),
	    "{\"schema\":\"payhook.drain-error/1\",\"event_file\":\"Y.json\","
	    "\"event_id\":null,\"dedup_key\":null,\"route\":null,"
	    "\"type\":null,\"attempts\":[],\"stderr_tail\":\"\"}") == 0);
	json_object_put(r);
	json_object_put(ev);
	test_end();
}

/* Run a job to its end, polling its stderr and deadline. */
static void
run_job(struct ph_job *job)
{
	while (!ph_job_reap(job)) {
		struct pollfd p = { .fd = ph_job_stderr_fd(job),
				    .events = POLLIN };

		ph_job_check_deadline(job, ph_now_monotonic_us());
		(void)poll(&p, p.fd >= 0 ? 1 : 0, 20);
		if (p.revents != 0)
			ph_job_read_stderr(job);
	}
}

/* Whether process pid is gone or a zombie, waiting up to a second. */
static bool
grandchild_gone(pid_t pid)
{
	char path[64], buf[512], *rp;

	for (int i = 0; i < 100; i++) {
		FILE *f;
		size_t n;

		snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
		if ((f = fopen(path, "r")) == NULL)
			return true;
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[n] = '\0';
		if ((rp = strrchr(buf, ')')) != NULL && rp[1] == ' ' &&
		    rp[2] == 'Z')
			return true;
		usleep(10000);
	}
	return false;
}

static void
test_retry_job(void)
{
	static const char *const env[] = { "PH_T_A=x y", "HOME", NULL };
	char path[4096], tail[PH_JOB_TAIL_MAX + 1];
	struct ph_job_spec spec = { 0 };
	struct ph_error err;
	struct ph_job job;
	size_t n;
	int fd;

	test_begin("job: stdin, environment, exit status, stderr tail");
	snprintf(path, sizeof(path), "%s/job-in", test_tmpdir());
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	test_assert(fd >= 0 && write(fd, "EVENT", 5) == 5);
	spec.stdin_fd = fd;
	spec.env = env;
	spec.command = "read l; [ \"$l\" = EVENT ] && [ \"$PH_T_A\" = 'x y' ]"
	    " && [ -z \"${HOME+set}\" ] && i=0 && while [ $i -lt 700 ]; do "
	    "echo 0123456789 >&2; i=$((i+1)); done; printf end >&2; exit 5";
	test_assert(ph_job_start(&job, &spec, 2, &err) == 0);
	run_job(&job);
	test_assert(job.attempt.number == 2);
	test_assert(job.attempt.exit_status == 5 && job.attempt.signal == 0);
	test_assert(!job.attempt.timed_out);
	n = ph_job_tail(&job, tail);
	test_assert(n == PH_JOB_TAIL_MAX);
	test_assert(memcmp(tail + n - 14, "0123456789\nend", 14) == 0);
	test_assert(ph_job_stderr_fd(&job) < 0);
	test_end();

	test_begin("job: a timeout kills the process group");
	spec.env = NULL;
	spec.timeout_ms = 300;
	spec.command = "sleep 30 & echo $! >&2; sleep 30; echo never";
	test_assert(ph_job_start(&job, &spec, 1, &err) == 0);
	run_job(&job);
	test_assert(job.attempt.timed_out);
	test_assert(job.attempt.signal == SIGKILL);
	test_assert(job.attempt.exit_status == -1);
	n = ph_job_tail(&job, tail);
	tail[n] = '\0';
	/* The background sleep was in the group: it is gone (or a zombie
	 * waiting for init) within a second. */
	test_assert(n > 1 && atol(tail) > 1);
	test_assert(grandchild_gone((pid_t)atol(tail)));
	test_end();
	close(fd);
	unlink(path);
}

void
test_retry(void)
{
	test_retry_backoff();
	test_retry_attempt_json();
	test_retry_error_report();
	test_retry_job();
}
