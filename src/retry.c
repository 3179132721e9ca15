/* retry.c - retry policy and dead-letter records of payhook drain.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "ids.h"
#include "retry.h"

uint64_t
ph_backoff_delay_ms(unsigned failed, uint64_t min_ms, uint64_t max_ms,
		    uint32_t rnd)
{
	uint64_t d = min_ms;

	if (max_ms < min_ms)
		max_ms = min_ms;
	/* Double without overflow: stop as soon as the cap is reached. */
	for (unsigned i = 1; i < failed && d < max_ms; i++)
		d = d > max_ms / 2 ? max_ms : d * 2;
	if (d > max_ms)
		d = max_ms;
	/* Jitter: take away a random part of up to a quarter of d. */
	d -= (uint64_t)(((unsigned __int128)(d / 4) * rnd) >> 32);
	return d < min_ms ? min_ms : d;
}

uint32_t
ph_backoff_random(void)
{
	uint32_t r;
	struct timeval tv;

	if (RAND_bytes((unsigned char *)&r, sizeof(r)) == 1)
		return r;
	gettimeofday(&tv, NULL);
	return (uint32_t)tv.tv_usec * 2654435761u ^ (uint32_t)getpid();
}

static const struct {
	int sig;
	const char *name;
} signal_names[] = {
	{ SIGHUP, "SIGHUP" }, { SIGINT, "SIGINT" }, { SIGQUIT, "SIGQUIT" },
	{ SIGILL, "SIGILL" }, { SIGTRAP, "SIGTRAP" }, { SIGABRT, "SIGABRT" },
	{ SIGBUS, "SIGBUS" }, { SIGFPE, "SIGFPE" }, { SIGKILL, "SIGKILL" },
	{ SIGUSR1, "SIGUSR1" }, { SIGSEGV, "SIGSEGV" }, { SIGUSR2, "SIGUSR2" },
	{ SIGPIPE, "SIGPIPE" }, { SIGALRM, "SIGALRM" }, { SIGTERM, "SIGTERM" },
	{ SIGCHLD, "SIGCHLD" }, { SIGCONT, "SIGCONT" }, { SIGSTOP, "SIGSTOP" },
	{ SIGTSTP, "SIGTSTP" }, { SIGTTIN, "SIGTTIN" }, { SIGTTOU, "SIGTTOU" },
	{ SIGURG, "SIGURG" }, { SIGXCPU, "SIGXCPU" }, { SIGXFSZ, "SIGXFSZ" },
	{ SIGVTALRM, "SIGVTALRM" }, { SIGPROF, "SIGPROF" },
	{ SIGWINCH, "SIGWINCH" }, { SIGIO, "SIGIO" }, { SIGSYS, "SIGSYS" },
};

const char *
ph_signal_name(int sig, char *buf, size_t size)
{
	for (size_t i = 0; i < PH_N_ELEMENTS(signal_names); i++)
		if (signal_names[i].sig == sig)
			return signal_names[i].name;
	snprintf(buf, size, "SIG%d", sig);
	return buf;
}

static int
signal_number(const char *name)
{
	for (size_t i = 0; i < PH_N_ELEMENTS(signal_names); i++)
		if (strcmp(signal_names[i].name, name) == 0)
			return signal_names[i].sig;
	if (strncmp(name, "SIG", 3) == 0 && name[3] >= '0' && name[3] <= '9')
		return atoi(name + 3);
	return 0;
}

void
ph_attempt_describe(const struct ph_attempt *a, char *buf, size_t size)
{
	char sb[16];

	if (a->timed_out)
		snprintf(buf, size, "timed out");
	else if (a->signal != 0)
		snprintf(buf, size, "killed by %s",
			 ph_signal_name(a->signal, sb, sizeof(sb)));
	else
		snprintf(buf, size, "exit status %d", a->exit_status);
}

bool
ph_attempt_succeeded(const struct ph_attempt *a)
{
	return !a->timed_out && a->signal == 0 && a->exit_status == 0;
}

static struct json_object *
time_json(const struct timeval *tv)
{
	char text[PH_RFC3339_LEN + 1];

	ph_time_rfc3339(tv, text);
	return json_object_new_string(text);
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ", as ph_time_rfc3339() writes it. */
static int
time_from_json(struct json_object *obj, struct timeval *tv_r)
{
	struct tm tm = { 0 };
	int ms, n = 0;
	const char *s;
	time_t t;

	if (!json_object_is_type(obj, json_type_string))
		return -1;
	s = json_object_get_string(obj);
	if (strlen(s) != PH_RFC3339_LEN ||
	    sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &tm.tm_year,
		   &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
		   &tm.tm_sec, &ms, &n) != 7 || n != PH_RFC3339_LEN)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	tv_r->tv_sec = t;
	tv_r->tv_usec = ms * 1000;
	return 0;
}

struct json_object *
ph_attempt_to_json(const struct ph_attempt *a)
{
	struct json_object *o = json_object_new_object();
	char sb[16];

	json_object_object_add(o, "number",
			       json_object_new_int64(a->number));
	json_object_object_add(o, "started_at", time_json(&a->started));
	json_object_object_add(o, "finished_at", time_json(&a->finished));
	json_object_object_add(o, "exit_status", a->signal != 0 ? NULL :
			       json_object_new_int(a->exit_status));
	json_object_object_add(o, "signal", a->signal == 0 ? NULL :
			       json_object_new_string(
				   ph_signal_name(a->signal, sb, sizeof(sb))));
	json_object_object_add(o, "timed_out",
			       json_object_new_boolean(a->timed_out));
	return o;
}

int
ph_attempt_from_json(struct json_object *obj, struct ph_attempt *a)
{
	struct json_object *v;
	int64_t n;

	memset(a, 0, sizeof(*a));
	if (!json_object_is_type(obj, json_type_object) ||
	    !json_object_object_get_ex(obj, "number", &v) ||
	    !json_object_is_type(v, json_type_int) ||
	    (n = json_object_get_int64(v)) < 1 || n > 1000000)
		return -1;
	a->number = (unsigned)n;
	if (!json_object_object_get_ex(obj, "started_at", &v) ||
	    time_from_json(v, &a->started) < 0 ||
	    !json_object_object_get_ex(obj, "finished_at", &v) ||
	    time_from_json(v, &a->finished) < 0)
		return -1;
	a->exit_status = -1;
	if (json_object_object_get_ex(obj, "exit_status", &v) &&
	    json_object_is_type(v, json_type_int))
		a->exit_status = json_object_get_int(v);
	if (json_object_object_get_ex(obj, "signal", &v) &&
	    json_object_is_type(v, json_type_string))
		a->signal = signal_number(json_object_get_string(v));
	a->timed_out = json_object_object_get_ex(obj, "timed_out", &v) &&
	    json_object_get_boolean(v);
	return 0;
}

/* The event's string field key, or null. */
static struct json_object *
event_field(struct json_object *event, const char *key)
{
	struct json_object *v;

	if (event == NULL || !json_object_object_get_ex(event, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_new_string(json_object_get_string(v));
}

struct json_object *
ph_drain_error_json(const char *event_file, struct json_object *event,
		    const struct ph_attempt *attempts, size_t n_attempts,
		    const void *tail, size_t tail_len)
{
	struct json_object *o = json_object_new_object();
	struct json_object *list = json_object_new_array();
	size_t len;
	char *text;

	json_object_object_add(o, "schema",
			       json_object_new_string(PH_DRAIN_ERROR_SCHEMA));
	json_object_object_add(o, "event_file",
			       json_object_new_string(event_file));
	json_object_object_add(o, "event_id", event_field(event, "id"));
	json_object_object_add(o, "dedup_key",
			       event_field(event, "dedup_key"));
	json_object_object_add(o, "route", event_field(event, "route"));
	json_object_object_add(o, "type", event_field(event, "type"));
	for (size_t i = 0; i < n_attempts; i++)
		json_object_array_add(list, ph_attempt_to_json(&attempts[i]));
	json_object_object_add(o, "attempts", list);
	text = ph_utf8_lossy(tail != NULL ? tail : "", tail_len, &len);
	json_object_object_add(o, "stderr_tail",
			       json_object_new_string_len(text, (int)len));
	free(text);
	return o;
}

const char *
ph_json_str(struct json_object *obj, const char *key)
{
	struct json_object *v;

	if (obj == NULL || !json_object_object_get_ex(obj, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}
