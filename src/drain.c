/* drain.c - payhook drain: run a command for each event of the spool.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * See drain.h. Why this is safe without any daemon but drain itself:
 *
 * - An event is run only by the holder of an exclusive flock(2) on its
 *   file in cur/, taken with LOCK_NB and then checked to still be the
 *   file cur/X names (it may have moved on to done/ between our open and
 *   our lock). The job's standard input is that very open file
 *   description, so when drain is SIGKILLed the lock stays held by the
 *   command until it ends: no second drain can start the event meanwhile.
 * - A file in cur/ that nobody holds locked is free: its drain died. Any
 *   drain takes it back (at-least-once: the command may have run, all or
 *   part, without its outcome being recorded).
 * - The state of an event (its failed attempts, the time of its next
 *   try) is only written by the lock holder, as a whole new file renamed
 *   over the old one. A crash loses at most the outcome of the attempt
 *   that was running, which is then run again.
 * - Ordering: the pending events (new/ listed before cur/, so that an
 *   event moving from one to the other is seen in one of them) are walked
 *   in name order, which is arrival order; an event runs only when no
 *   earlier pending event has its ordering key. That earlier event stays
 *   in new/ or cur/ until its command has ended and it has moved on, so
 *   two drains cannot run two events of one payment at once either.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "drain.h"
#include "ids.h"
#include "job.h"
#include "log.h"
#include "retry.h"
#include "spool.h"

#define EVENT_MAX_BYTES (64u << 20)	/* a sanity bound on event files */
#define STATE_MAX_BYTES (1u << 20)
#define ENV_VARS 6

/* What drain knows of one event between attempts (the state file). */
struct state {
	struct ph_attempt *attempts;	/* the failed ones, in order */
	size_t n_attempts;
	int64_t next_try_ms;		/* wall clock; 0: due now */
	char *waiting_for;		/* file name of the event it waits for */
	bool on_disk;			/* a state file exists */
};

/* A command running for an event. */
struct slot {
	bool busy;
	char *name;			/* the event's file name */
	int fd;				/* cur/<name>, flock'ed */
	struct json_object *event;	/* parsed, or NULL if it is not JSON */
	struct state st;
	char *env[ENV_VARS + 1];
	struct ph_job job;
};

/* An event found in new/ or cur/ by a scan. */
struct pending {
	char *name;
	bool in_cur;
	bool has_state;			/* listed in .drain/ */
	bool state_loaded;
	struct state st;
};

struct drain {
	const struct ph_drain_options *opt;
	const char *dir;
	int dirfd, newfd, curfd, donefd, failedfd, statefd;
	int sig_fd, ino_fd;
	sigset_t job_mask;		/* the mask drain started with */
	struct slot *slots;
	unsigned n_running;
	bool stopping;
	bool need_scan;
	uint64_t next_scan_us;		/* monotonic */
	int64_t next_due_ms;		/* earliest next try seen; 0: none */
	struct json_object *keys;	/* file name -> ordering key */
	struct json_object *waits;	/* file name -> event it waits for */
	/* file name -> next try (ms), as this process decided it: holds
	 * even when the state file could not be written (a full disk),
	 * so that a failing event is not run again at once, in a loop. */
	struct json_object *not_before;
};

static int64_t
now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void
state_clear(struct state *st)
{
	free(st->attempts);
	free(st->waiting_for);
	memset(st, 0, sizeof(*st));
}

/* Files */

/* Read the whole open file (from offset 0, leaving the offset alone). */
static char *
read_fd(int fd, size_t max, size_t *len_r)
{
	struct stat st;
	size_t len = 0, cap;
	char *buf;
	ssize_t n;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size > max)
		return NULL;
	cap = (size_t)st.st_size + 1;
	buf = ph_xmalloc(cap + 1);
	for (;;) {
		n = pread(fd, buf + len, cap - len, (off_t)len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == cap) {
			if (cap > max) {
				free(buf);
				return NULL;
			}
			cap *= 2;
			buf = ph_xrealloc(buf, cap + 1);
		}
	}
	buf[len] = '\0';
	*len_r = len;
	return buf;
}

static struct json_object *
parse_json_fd(int fd, size_t max)
{
	struct json_tokener *tok;
	struct json_object *obj;
	size_t len;
	char *text = read_fd(fd, max, &len);

	if (text == NULL || len > INT_MAX) {
		free(text);
		return NULL;
	}
	tok = json_tokener_new();
	obj = json_tokener_parse_ex(tok, text, (int)len);
	if (obj != NULL && (json_tokener_get_error(tok) != json_tokener_success
			    || !json_object_is_type(obj, json_type_object))) {
		json_object_put(obj);
		obj = NULL;
	}
	json_tokener_free(tok);
	free(text);
	return obj;
}

/* Write obj as tmpdir/tmp (0600), fsync it, rename it to dstdir/name and
 * fsync dstdir: either the old file or the whole new one survives a crash.
 * Only the holder of the event's lock writes its files, so one fixed tmp
 * name per event is enough. */
static int
write_json_durably(int tmpdir, const char *tmp, int dstdir, const char *name,
		   struct json_object *obj, struct ph_error *err)
{
	size_t len;
	const char *text = json_object_to_json_string_length(obj,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	int fd;

	fd = openat(tmpdir, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW |
		    O_CLOEXEC, 0600);
	if (fd < 0)
		return ph_error_set(err, "open(%s) failed: %s", tmp,
				    strerror(errno));
	if (ph_write_all(fd, text, len) < 0 || ph_write_all(fd, "\n", 1) < 0 ||
	    fsync(fd) < 0) {
		ph_error_set(err, "write(%s) failed: %s", tmp, strerror(errno));
		close(fd);
		unlinkat(tmpdir, tmp, 0);
		return -1;
	}
	if (close(fd) < 0 || renameat(tmpdir, tmp, dstdir, name) < 0) {
		ph_error_set(err, "rename(%s, %s) failed: %s", tmp, name,
			     strerror(errno));
		unlinkat(tmpdir, tmp, 0);
		return -1;
	}
	if (fsync(dstdir) < 0)
		return ph_error_set(err, "fsync after rename to %s failed: %s",
				    name, strerror(errno));
	return 0;
}

/* State files: <spool>/.drain/<event file name> */

static void
state_load(struct drain *d, const char *name, struct state *st)
{
	struct json_object *obj, *list, *v;
	int fd;

	state_clear(st);
	fd = openat(d->statefd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			ph_log_error("drain: cannot read the state of %s: %s",
				     name, strerror(errno));
		return;
	}
	st->on_disk = true;
	obj = parse_json_fd(fd, STATE_MAX_BYTES);
	close(fd);
	if (obj == NULL ||
	    !json_object_object_get_ex(obj, "attempts", &list) ||
	    !json_object_is_type(list, json_type_array)) {
		ph_log_warn("drain: the state of %s is unreadable; counting "
			    "its attempts from 0", name);
		json_object_put(obj);
		return;
	}
	st->attempts = ph_xcalloc(json_object_array_length(list) + 1,
				  sizeof(*st->attempts));
	for (size_t i = 0; i < json_object_array_length(list); i++)
		if (ph_attempt_from_json(json_object_array_get_idx(list, i),
					 &st->attempts[st->n_attempts]) == 0)
			st->n_attempts++;
	if (json_object_object_get_ex(obj, "next_try_ms", &v) &&
	    json_object_is_type(v, json_type_int))
		st->next_try_ms = json_object_get_int64(v);
	if (ph_json_str(obj, "waiting_for") != NULL)
		st->waiting_for = ph_xstrdup(ph_json_str(obj, "waiting_for"));
	json_object_put(obj);
}

static int
state_save(struct drain *d, const char *name, struct state *st)
{
	struct json_object *obj = json_object_new_object();
	struct json_object *list = json_object_new_array();
	char when[PH_RFC3339_LEN + 1], *tmp;
	struct ph_error err;
	struct timeval tv;
	int ret;

	json_object_object_add(obj, "schema",
			       json_object_new_string(PH_DRAIN_STATE_SCHEMA));
	for (size_t i = 0; i < st->n_attempts; i++)
		json_object_array_add(list,
				      ph_attempt_to_json(&st->attempts[i]));
	json_object_object_add(obj, "attempts", list);
	tv.tv_sec = (time_t)(st->next_try_ms / 1000);
	tv.tv_usec = (suseconds_t)(st->next_try_ms % 1000) * 1000;
	ph_time_rfc3339(&tv, when);
	json_object_object_add(obj, "next_try_at",
			       json_object_new_string(when));
	json_object_object_add(obj, "next_try_ms",
			       json_object_new_int64(st->next_try_ms));
	json_object_object_add(obj, "waiting_for", st->waiting_for == NULL ?
			       NULL : json_object_new_string(st->waiting_for));
	tmp = ph_xasprintf(".%s.tmp", name);
	ret = write_json_durably(d->statefd, tmp, d->statefd, name, obj, &err);
	if (ret < 0)
		ph_log_error("drain: cannot save the state of %s: %s", name,
			     err.msg);
	else
		st->on_disk = true;
	free(tmp);
	json_object_put(obj);
	return ret;
}

static void
state_remove(struct drain *d, const char *name, struct state *st)
{
	if (!st->on_disk)
		return;
	/* No fsync: a state file that comes back after a crash belongs to
	 * an event in neither new/ nor cur/ and is collected by a scan. */
	if (unlinkat(d->statefd, name, 0) < 0 && errno != ENOENT)
		ph_log_error("drain: cannot remove the state of %s: %s", name,
			     strerror(errno));
	st->on_disk = false;
}

/* Whether an event named name is pending: in new/ or (checked second, as
 * it moves from new/ to cur/) in cur/. */
static bool
is_pending(struct drain *d, const char *name)
{
	struct stat st;

	return fstatat(d->newfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 ||
	    fstatat(d->curfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* Event names and claims */

static bool
is_event_name(const struct dirent *de)
{
	return de->d_name[0] != '.' && de->d_type != DT_DIR;
}

static int
cmp_pending(const void *a, const void *b)
{
	const struct pending *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	/* The same name in both listings: it moved while we looked. */
	return c != 0 ? c : (int)y->in_cur - (int)x->in_cur;
}

/* For bsearch() in a list made unique by name. */
static int
cmp_name(const void *a, const void *b)
{
	return strcmp(((const struct pending *)a)->name,
		      ((const struct pending *)b)->name);
}

static void
list_dir(int dirfd, bool in_cur, struct pending **list, size_t *n,
	 size_t *cap)
{
	int fd = dup(dirfd);
	struct dirent *de;
	DIR *dir;

	if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
		ph_log_error("drain: cannot list %s: %s", in_cur ? "cur/" :
			     "new/", strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	rewinddir(dir);
	while ((de = readdir(dir)) != NULL) {
		if (!is_event_name(de))
			continue;
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 64;
			*list = ph_xrealloc(*list, *cap * sizeof(**list));
		}
		memset(&(*list)[*n], 0, sizeof(**list));
		(*list)[*n].name = ph_xstrdup(de->d_name);
		(*list)[(*n)++].in_cur = in_cur;
	}
	closedir(dir);
}

/* The pending events in arrival order, each once (new/ is listed before
 * cur/: see the top of this file). */
static struct pending *
list_pending(struct drain *d, size_t *n_r)
{
	struct pending *list = NULL;
	size_t n = 0, cap = 0, out = 0;

	list_dir(d->newfd, false, &list, &n, &cap);
	list_dir(d->curfd, true, &list, &n, &cap);
	if (n > 0)
		qsort(list, n, sizeof(*list), cmp_pending);
	for (size_t i = 0; i < n; i++) {
		if (out > 0 && strcmp(list[out - 1].name, list[i].name) == 0) {
			free(list[i].name);
			continue;
		}
		list[out++] = list[i];
	}
	*n_r = out;
	return list;
}

static void
free_pending(struct pending *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(list[i].name);
		state_clear(&list[i].st);
	}
	free(list);
}

/* Mark which pending events have a state file, and remove state files
 * (and temporary files) of events that are no longer pending: left by a
 * crash between an event's move to done/ or failed/ and the removal. */
static void
scan_states(struct drain *d, struct pending *list, size_t n)
{
	int fd = dup(d->statefd);
	struct dirent *de;
	DIR *dir;

	if (fd < 0 || (dir = fdopendir(fd)) == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	rewinddir(dir);
	while ((de = readdir(dir)) != NULL) {
		struct pending key = { .name = de->d_name }, *p;
		char *event;
		size_t len;

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (de->d_name[0] != '.') {
			p = bsearch(&key, list, n, sizeof(*list), cmp_name);
			if (p != NULL) {
				p->has_state = true;
				continue;
			}
			event = ph_xstrdup(de->d_name);
		} else {
			/* ".<name>.tmp" or ".<name>.err.tmp" */
			len = strlen(de->d_name);
			if (len < 6 || strcmp(de->d_name + len - 4, ".tmp"))
				continue;
			event = ph_xstrndup(de->d_name + 1, len - 5);
			len = strlen(event);
			if (len > 4 && strcmp(event + len - 4, ".err") == 0)
				event[len - 4] = '\0';
		}
		if (!is_pending(d, event)) {
			if (unlinkat(d->statefd, de->d_name, 0) == 0)
				ph_log_info("drain: removed the stale state "
					    "file .drain/%s", de->d_name);
		}
		free(event);
	}
	closedir(dir);
}

/* Take the event: rename new/X to cur/X (unless it is there already),
 * open it, lock it. Returns the locked descriptor, or -1 when the event
 * is gone or another process holds it. */
static int
claim(struct drain *d, const char *name, bool in_cur)
{
	struct stat a, b;
	int fd;

	if (!in_cur && renameat(d->newfd, name, d->curfd, name) < 0 &&
	    errno != ENOENT)
		ph_log_error("drain: rename(new/%s, cur/) failed: %s", name,
			     strerror(errno));
	fd = openat(d->curfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
		    O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &a) < 0 || !S_ISREG(a.st_mode)) {
		close(fd);
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		return -1;
	}
	/* Locked, but is it still the file cur/X names? It may have been
	 * finished and moved on between our open and our lock. */
	if (fstatat(d->curfd, name, &b, AT_SYMLINK_NOFOLLOW) < 0 ||
	    a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The ordering key: the provider and payment id, else the dedup key,
 * else (an event that is not JSON) the file name itself. */
static char *
ordering_key(struct json_object *ev, const char *name)
{
	const char *provider = ph_json_str(ev, "provider");
	const char *payment = ph_json_str(ev, "payment_id");
	const char *dedup = ph_json_str(ev, "dedup_key");

	if (payment != NULL && payment[0] != '\0')
		return ph_xasprintf("payment:%s:%s",
				    provider != NULL ? provider : "",
				    payment);
	if (dedup != NULL)
		return ph_xasprintf("dedup:%s", dedup);
	return ph_xasprintf("file:%s", name);
}

/* The ordering key of a pending event, from the cache or the file (in
 * new/ or cur/, wherever it is now). NULL if it is gone. */
static const char *
event_key(struct drain *d, struct json_object *keys, const struct pending *p)
{
	struct json_object *v, *ev;
	char *key;
	int fd;

	if (json_object_object_get_ex(d->keys, p->name, &v)) {
		json_object_object_add(keys, p->name, json_object_get(v));
		return json_object_get_string(v);
	}
	fd = openat(p->in_cur ? d->curfd : d->newfd, p->name,
		    O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		fd = openat(d->curfd, p->name, O_RDONLY | O_NOFOLLOW |
			    O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	ev = parse_json_fd(fd, EVENT_MAX_BYTES);
	close(fd);
	key = ordering_key(ev, p->name);
	json_object_put(ev);
	v = json_object_new_string(key);
	free(key);
	json_object_object_add(keys, p->name, v);
	return json_object_get_string(v);
}

/* Running and finishing */

static struct slot *
slot_of(struct drain *d, const char *name)
{
	for (unsigned i = 0; i < d->opt->jobs; i++)
		if (d->slots[i].busy && strcmp(d->slots[i].name, name) == 0)
			return &d->slots[i];
	return NULL;
}

static struct slot *
free_slot(struct drain *d)
{
	for (unsigned i = 0; i < d->opt->jobs; i++)
		if (!d->slots[i].busy)
			return &d->slots[i];
	return NULL;
}

static void
slot_release(struct drain *d, struct slot *s)
{
	if (s->fd >= 0)
		close(s->fd);		/* releases the lock */
	free(s->name);
	json_object_put(s->event);
	state_clear(&s->st);
	for (size_t i = 0; i < ENV_VARS; i++)
		free(s->env[i]);
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	d->n_running--;
}

static char *
env_var(const char *name, const char *value)
{
	return value != NULL ? ph_xasprintf("%s=%s", name, value) :
	    ph_xstrdup(name);
}

/* Move the event's file from cur/ to failed/ with its report beside it. */
static void
dead_letter(struct drain *d, struct slot *s, const char *tail, size_t len)
{
	struct json_object *report;
	struct ph_error err;
	char *side, *tmp;

	report = ph_drain_error_json(s->name, s->event, s->st.attempts,
				     s->st.n_attempts, tail, len);
	side = ph_xasprintf("%s.err.json", s->name);
	tmp = ph_xasprintf(".%s.err.tmp", s->name);
	if (write_json_durably(d->statefd, tmp, d->failedfd, side, report,
			       &err) < 0) {
		ph_log_error("drain: %s: cannot write failed/%s: %s", s->name,
			     side, err.msg);
	} else if (renameat(d->curfd, s->name, d->failedfd, s->name) < 0 ||
		   fsync(d->failedfd) < 0) {
		ph_log_error("drain: %s: cannot move it to failed/: %s",
			     s->name, strerror(errno));
	} else {
		ph_log_warn("drain: %s: moved to failed/ after %zu attempt%s",
			    s->name, s->st.n_attempts,
			    s->st.n_attempts == 1 ? "" : "s");
		state_remove(d, s->name, &s->st);
	}
	free(tmp);
	free(side);
	json_object_put(report);
}

static void
succeeded(struct drain *d, struct slot *s, double secs)
{
	const struct ph_drain_options *o = d->opt;
	int ret;

	if (o->delete_done) {
		ret = unlinkat(d->curfd, s->name, 0);
		if (ret == 0)
			ret = fsync(d->curfd);
	} else {
		ret = renameat(d->curfd, s->name, d->donefd, s->name);
		if (ret == 0)
			ret = fsync(d->donefd);
	}
	if (ret < 0) {
		/* It stays in cur/ and is run again: at-least-once. */
		ph_log_error("drain: %s: succeeded, but cannot %s: %s",
			     s->name, o->delete_done ? "remove it" :
			     "move it to done/", strerror(errno));
		return;
	}
	ph_log_info("drain: %s: attempt %u succeeded in %.3f s, %s",
		    s->name, s->job.attempt.number, secs,
		    o->delete_done ? "removed" : "moved to done/");
	state_remove(d, s->name, &s->st);
}

static void
failed(struct drain *d, struct slot *s, double secs)
{
	const struct ph_drain_options *o = d->opt;
	char how[64], tail[PH_JOB_TAIL_MAX];
	size_t len;
	uint64_t delay;

	ph_attempt_describe(&s->job.attempt, how, sizeof(how));
	s->st.attempts = ph_xrealloc(s->st.attempts,
				     (s->st.n_attempts + 1) *
				     sizeof(*s->st.attempts));
	s->st.attempts[s->st.n_attempts++] = s->job.attempt;
	if (s->st.n_attempts >= o->max_attempts) {
		ph_log_warn("drain: %s: attempt %u failed (%s after %.3f s), "
			    "the last one", s->name, s->job.attempt.number,
			    how, secs);
		len = ph_job_tail(&s->job, tail);
		dead_letter(d, s, tail, len);
		return;
	}
	delay = ph_backoff_delay_ms((unsigned)s->st.n_attempts,
				    o->retry_min_ms, o->retry_max_ms,
				    ph_backoff_random());
	s->st.next_try_ms = now_ms() + (int64_t)delay;
	json_object_object_add(d->not_before, s->name,
			       json_object_new_int64(s->st.next_try_ms));
	ph_free(&s->st.waiting_for);
	ph_log_warn("drain: %s: attempt %u failed (%s after %.3f s); next "
		    "try in %.1f s", s->name, s->job.attempt.number, how,
		    secs, (double)delay / 1000.0);
	state_save(d, s->name, &s->st);
}

static void
finish(struct drain *d, struct slot *s)
{
	const struct ph_attempt *a = &s->job.attempt;
	double secs = (double)(a->finished.tv_sec - a->started.tv_sec) +
	    (double)(a->finished.tv_usec - a->started.tv_usec) / 1e6;

	if (ph_attempt_succeeded(a))
		succeeded(d, s, secs);
	else
		failed(d, s, secs);
	slot_release(d, s);
	d->need_scan = true;
}

/* Start the command for the claimed, locked event fd. Takes fd. */
static void
start(struct drain *d, const char *name, int fd, struct state *st)
{
	struct slot *s = free_slot(d);
	struct ph_job_spec spec = { 0 };
	struct ph_error err;
	unsigned number = (unsigned)st->n_attempts + 1;
	char nbuf[16];

	s->busy = true;
	s->fd = fd;
	s->name = ph_xstrdup(name);
	s->st = *st;
	memset(st, 0, sizeof(*st));
	d->n_running++;
	s->event = parse_json_fd(fd, EVENT_MAX_BYTES);
	if (s->st.n_attempts >= d->opt->max_attempts) {
		/* Attempts used up under an earlier --max-attempts. */
		dead_letter(d, s, "", 0);
		slot_release(d, s);
		return;
	}
	snprintf(nbuf, sizeof(nbuf), "%u", number);
	s->env[0] = env_var("PAYHOOK_EVENT_ID", ph_json_str(s->event, "id"));
	s->env[1] = env_var("PAYHOOK_EVENT_TYPE", ph_json_str(s->event, "type"));
	s->env[2] = env_var("PAYHOOK_DEDUP_KEY",
			    ph_json_str(s->event, "dedup_key"));
	s->env[3] = env_var("PAYHOOK_ROUTE", ph_json_str(s->event, "route"));
	s->env[4] = env_var("PAYHOOK_PROVIDER",
			    ph_json_str(s->event, "provider"));
	s->env[5] = env_var("PAYHOOK_ATTEMPT", nbuf);
	if (s->event == NULL)
		ph_log_warn("drain: %s is not a JSON object; running the "
			    "command for it all the same", name);
	spec.command = d->opt->command;
	spec.stdin_fd = fd;
	spec.env = (const char *const *)s->env;
	spec.timeout_ms = d->opt->timeout_ms;
	spec.mask = &d->job_mask;
	if (ph_job_start(&s->job, &spec, number, &err) < 0) {
		/* drain's trouble, not the event's: no attempt is counted;
		 * the event is unlocked and tried at the next scan. */
		ph_log_error("drain: %s: cannot start the command: %s", name,
			     err.msg);
		slot_release(d, s);
		return;
	}
	if (s->st.waiting_for != NULL) {
		ph_free(&s->st.waiting_for);
		/* The event no longer waits: say so in its state. */
		state_save(d, name, &s->st);
	}
}

/* The scan */

static struct state *
pending_state(struct drain *d, struct pending *p)
{
	if (!p->state_loaded) {
		p->state_loaded = true;
		if (p->has_state)
			state_load(d, p->name, &p->st);
	}
	return &p->st;
}

/* p waits for the earlier event blocker (same ordering key). When that
 * one is in retry, say so once in the log and in p's state. */
static void
note_waiting(struct drain *d, struct pending *p, struct pending *blocker,
	     int64_t now)
{
	struct state *bst = pending_state(d, blocker), st = { 0 };
	struct json_object *v;
	char when[PH_RFC3339_LEN + 1];
	struct timeval tv;
	int fd;

	if (bst->n_attempts == 0 || bst->next_try_ms <= now ||
	    slot_of(d, blocker->name) != NULL)
		return;
	if (json_object_object_get_ex(d->waits, p->name, &v) &&
	    strcmp(json_object_get_string(v), blocker->name) == 0)
		return;
	json_object_object_add(d->waits, p->name,
			       json_object_new_string(blocker->name));
	tv.tv_sec = (time_t)(bst->next_try_ms / 1000);
	tv.tv_usec = (suseconds_t)(bst->next_try_ms % 1000) * 1000;
	ph_time_rfc3339(&tv, when);
	ph_log_warn("drain: %s waits for %s, an earlier event of the same "
		    "payment, which is in retry (%zu failed attempt%s, next "
		    "try at %s)", p->name, blocker->name, bst->n_attempts,
		    bst->n_attempts == 1 ? "" : "s", when);
	if ((fd = claim(d, p->name, p->in_cur)) < 0)
		return;
	p->in_cur = true;
	state_load(d, p->name, &st);
	if (st.waiting_for == NULL || strcmp(st.waiting_for,
					     blocker->name) != 0) {
		free(st.waiting_for);
		st.waiting_for = ph_xstrdup(blocker->name);
		state_save(d, p->name, &st);
	}
	state_clear(&st);
	close(fd);
}

/* The next try of a pending event: its state's, or this process's own
 * decision if later. Keeps that decision for the next scan's map. */
static int64_t
next_try(struct drain *d, struct json_object *not_before,
	 struct pending *p)
{
	int64_t when = pending_state(d, p)->next_try_ms, mine;
	struct json_object *v;

	if (json_object_object_get_ex(d->not_before, p->name, &v)) {
		json_object_object_add(not_before, p->name,
				       json_object_get(v));
		if ((mine = json_object_get_int64(v)) > when)
			when = mine;
	}
	return when;
}

static void
track_due(struct drain *d, int64_t when)
{
	if (d->next_due_ms == 0 || when < d->next_due_ms)
		d->next_due_ms = when;
}

static void
scan(struct drain *d)
{
	struct json_object *keys = json_object_new_object();
	struct json_object *waits = json_object_new_object();
	struct json_object *blocked = json_object_new_object(), *v;
	struct json_object *not_before = json_object_new_object();
	struct pending *list;
	size_t n;
	int64_t now = now_ms();

	d->need_scan = false;
	d->next_due_ms = 0;
	d->next_scan_us = ph_now_monotonic_us() +
	    d->opt->scan_interval_ms * 1000;
	list = list_pending(d, &n);
	scan_states(d, list, n);
	for (size_t i = 0; i < n; i++) {
		struct pending *p = &list[i];
		const char *key;
		int64_t when;
		int fd;

		if (d->opt->ordered) {
			if ((key = event_key(d, keys, p)) == NULL)
				continue;	/* gone meanwhile */
			if (json_object_object_get_ex(blocked, key, &v)) {
				note_waiting(d, p, &list[json_object_get_int(v)],
					     now);
				if (json_object_object_get_ex(d->waits,
							      p->name, &v))
					json_object_object_add(waits, p->name,
					    json_object_get(v));
				continue;
			}
			json_object_object_add(blocked, key,
					       json_object_new_int((int)i));
		}
		if (slot_of(d, p->name) != NULL)
			continue;
		if ((when = next_try(d, not_before, p)) > now) {
			track_due(d, when);
			continue;
		}
		if (d->stopping || free_slot(d) == NULL)
			continue;
		if ((fd = claim(d, p->name, p->in_cur)) < 0)
			continue;	/* another drain has it */
		/* Read again under the lock: another drain may have run it
		 * since our listing. */
		state_load(d, p->name, &p->st);
		if (p->st.next_try_ms > now_ms()) {
			track_due(d, p->st.next_try_ms);
			close(fd);
			continue;
		}
		start(d, p->name, fd, &p->st);
	}
	json_object_put(d->keys);
	d->keys = keys;
	json_object_put(d->waits);
	d->waits = waits;
	json_object_put(d->not_before);
	d->not_before = not_before;
	json_object_put(blocked);
	free_pending(list, n);
}

/* The loop */

static void
handle_signals(struct drain *d)
{
	struct signalfd_siginfo si;

	while (read(d->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGCHLD)
			continue;	/* reaped below */
		if (!d->stopping)
			ph_log_info("drain: %s: no new claims; waiting for "
				    "%u running command%s", si.ssi_signo ==
				    SIGINT ? "SIGINT" : "SIGTERM",
				    d->n_running, d->n_running == 1 ? "" :
				    "s");
		d->stopping = true;
	}
}

static void
reap_all(struct drain *d)
{
	for (unsigned i = 0; i < d->opt->jobs; i++) {
		struct slot *s = &d->slots[i];

		if (s->busy && ph_job_reap(&s->job))
			finish(d, s);
	}
}

static void
handle_inotify(struct drain *d)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct
							   inotify_event))));

	while (read(d->ino_fd, buf, sizeof(buf)) > 0)
		d->need_scan = true;
}

/* The poll timeout: the nearest deadline, next try or periodic scan. */
static int
poll_timeout(struct drain *d)
{
	uint64_t now = ph_now_monotonic_us(), wait_us, left;
	int64_t wall = now_ms();

	if (d->need_scan && !d->stopping)
		return 0;
	wait_us = d->next_scan_us > now ? d->next_scan_us - now : 0;
	if (d->stopping)
		wait_us = 60ull * 1000000;
	if (d->next_due_ms > 0 && !d->stopping) {
		left = d->next_due_ms > wall ?
		    (uint64_t)(d->next_due_ms - wall) * 1000 : 0;
		if (left < wait_us)
			wait_us = left;
	}
	for (unsigned i = 0; i < d->opt->jobs; i++) {
		struct slot *s = &d->slots[i];

		if (s->busy && s->job.deadline_us > 0 &&
		    !s->job.attempt.timed_out) {
			left = s->job.deadline_us > now ?
			    s->job.deadline_us - now : 0;
			if (left < wait_us)
				wait_us = left;
		}
	}
	return (int)((wait_us + 999) / 1000);
}

static void
check_deadlines(struct drain *d)
{
	uint64_t now = ph_now_monotonic_us();

	for (unsigned i = 0; i < d->opt->jobs; i++) {
		struct slot *s = &d->slots[i];

		if (s->busy && s->job.deadline_us > 0 &&
		    !s->job.attempt.timed_out &&
		    ph_job_check_deadline(&s->job, now) == 0)
			ph_log_warn("drain: %s: attempt %u timed out; killed "
				    "its process group", s->name,
				    s->job.attempt.number);
	}
}

static void
loop(struct drain *d)
{
	struct pollfd *pfd = ph_xcalloc(d->opt->jobs + 2, sizeof(*pfd));
	struct slot **who = ph_xcalloc(d->opt->jobs + 2, sizeof(*who));

	d->need_scan = true;
	for (;;) {
		nfds_t n = 0;
		int ret;

		if (d->need_scan && !d->stopping)
			scan(d);
		if (d->n_running == 0 && (d->opt->once || d->stopping))
			break;
		pfd[n].fd = d->sig_fd;
		pfd[n++].events = POLLIN;
		if (d->ino_fd >= 0) {
			pfd[n].fd = d->ino_fd;
			pfd[n++].events = POLLIN;
		}
		for (unsigned i = 0; i < d->opt->jobs; i++) {
			struct slot *s = &d->slots[i];

			if (s->busy && ph_job_stderr_fd(&s->job) >= 0) {
				who[n] = s;
				pfd[n].fd = ph_job_stderr_fd(&s->job);
				pfd[n++].events = POLLIN;
			}
		}
		ret = poll(pfd, n, poll_timeout(d));
		if (ret < 0 && errno != EINTR) {
			ph_log_error("drain: poll failed: %s", strerror(errno));
			sleep(1);
			continue;
		}
		for (nfds_t i = 0; ret > 0 && i < n; i++) {
			if (pfd[i].revents == 0)
				continue;
			if (pfd[i].fd == d->sig_fd)
				handle_signals(d);
			else if (pfd[i].fd == d->ino_fd)
				handle_inotify(d);
			else
				ph_job_read_stderr(&who[i]->job);
		}
		check_deadlines(d);
		reap_all(d);
		if (ph_now_monotonic_us() >= d->next_scan_us ||
		    (d->next_due_ms > 0 && now_ms() >= d->next_due_ms))
			d->need_scan = true;
	}
	free(who);
	free(pfd);
}

/* Setup */

static const struct {
	const char *name;
	size_t off;
} spool_dirs[] = {
	{ "new", offsetof(struct drain, newfd) },
	{ "cur", offsetof(struct drain, curfd) },
	{ "done", offsetof(struct drain, donefd) },
	{ "failed", offsetof(struct drain, failedfd) },
	{ PH_DRAIN_STATE_DIR, offsetof(struct drain, statefd) },
};

static void
close_dirs(struct drain *d)
{
	int *fds[] = { &d->dirfd, &d->newfd, &d->curfd, &d->donefd,
		       &d->failedfd, &d->statefd };

	for (size_t i = 0; i < PH_N_ELEMENTS(fds); i++) {
		if (*fds[i] >= 0)
			close(*fds[i]);
		*fds[i] = -1;
	}
}

/* Open (creating) and check the spool's directories, as the responder
 * does (spool.h). */
static int
open_dirs(struct drain *d, const char *dir)
{
	char shown[PATH_MAX + 32];
	struct ph_error err;
	int fd;

	d->dirfd = d->newfd = d->curfd = d->donefd = d->failedfd =
	    d->statefd = -1;
	d->dir = dir;
	if ((fd = ph_spool_open_dir(AT_FDCWD, dir, dir, true, NULL,
				    &err)) < 0)
		goto fail;
	d->dirfd = fd;
	for (size_t i = 0; i < PH_N_ELEMENTS(spool_dirs); i++) {
		snprintf(shown, sizeof(shown), "%s/%s", dir,
			 spool_dirs[i].name);
		fd = ph_spool_open_dir(d->dirfd, spool_dirs[i].name, shown,
				       true, NULL, &err);
		if (fd < 0)
			goto fail;
		*(int *)((char *)d + spool_dirs[i].off) = fd;
	}
	return 0;
fail:
	ph_log_error("drain: %s", err.msg);
	close_dirs(d);
	return -1;
}

static int
open_events(struct drain *d)
{
	sigset_t set;
	char *path;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, &d->job_mask);
	d->sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (d->sig_fd < 0) {
		ph_log_error("drain: signalfd failed: %s", strerror(errno));
		return -1;
	}
	d->ino_fd = -1;
	if (d->opt->once)
		return 0;
	d->ino_fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (d->ino_fd < 0) {
		ph_log_warn("drain: inotify unavailable (%s); scanning every "
			    "%.1f s", strerror(errno),
			    (double)d->opt->scan_interval_ms / 1000.0);
		return 0;
	}
	/* New events; and events leaving cur/ (one finished: the next of
	 * its payment may run now). */
	path = ph_xasprintf("%s/new", d->dir);
	if (inotify_add_watch(d->ino_fd, path, IN_MOVED_TO | IN_CLOSE_WRITE |
			      IN_ONLYDIR | IN_DONT_FOLLOW) < 0)
		ph_log_warn("drain: cannot watch %s (%s); scanning every "
			    "%.1f s", path, strerror(errno),
			    (double)d->opt->scan_interval_ms / 1000.0);
	free(path);
	path = ph_xasprintf("%s/cur", d->dir);
	(void)inotify_add_watch(d->ino_fd, path, IN_MOVED_FROM | IN_DELETE |
				IN_ONLYDIR | IN_DONT_FOLLOW);
	free(path);
	return 0;
}

int
ph_drain_run(const struct ph_drain_options *opt)
{
	struct drain d = { .opt = opt };
	int ret = 1;

	if (open_dirs(&d, opt->spool_dir) < 0)
		return 1;
	d.slots = ph_xcalloc(opt->jobs, sizeof(*d.slots));
	for (unsigned i = 0; i < opt->jobs; i++)
		d.slots[i].fd = -1;
	d.keys = json_object_new_object();
	d.waits = json_object_new_object();
	d.not_before = json_object_new_object();
	if (open_events(&d) == 0) {
		ph_log_info("drain: draining %s with up to %u command%s at "
			    "once%s%s", opt->spool_dir, opt->jobs,
			    opt->jobs == 1 ? "" : "s",
			    opt->ordered ? ", ordered by payment" : "",
			    opt->once ? ", once" : "");
		loop(&d);
		ret = 0;
	}
	if (d.sig_fd >= 0)
		close(d.sig_fd);
	if (d.ino_fd >= 0)
		close(d.ino_fd);
	sigprocmask(SIG_SETMASK, &d.job_mask, NULL);
	json_object_put(d.keys);
	json_object_put(d.waits);
	json_object_put(d.not_before);
	free(d.slots);
	close_dirs(&d);
	return ret;
}

/* --retry-failed */

/* The event id in a spool file name "<stamp>-<id>.json", into id. */
static bool
name_has_id(const char *name, const char *id)
{
	const char *dash = strchr(name, '-');
	size_t len = strlen(id);

	return dash != NULL && strncmp(dash + 1, id, len) == 0 &&
	    strcmp(dash + 1 + len, ".json") == 0;
}

static bool
is_dead_letter(const char *name)
{
	size_t len = strlen(name);

	return name[0] != '.' && !(len > 9 &&
				   strcmp(name + len - 9, ".err.json") == 0);
}

static int
requeue(struct drain *d, const char *name, FILE *out)
{
	char *side = ph_xasprintf("%s.err.json", name);
	struct state st = { .on_disk = true };
	int ret = 0;

	/* The state first: an event back in new/ starts from attempt 1. */
	state_remove(d, name, &st);
	if (fsync(d->statefd) < 0 ||
	    renameat(d->failedfd, name, d->newfd, name) < 0 ||
	    fsync(d->newfd) < 0) {
		ph_log_error("drain: cannot move failed/%s to new/: %s", name,
			     strerror(errno));
		ret = -1;
	} else {
		if (unlinkat(d->failedfd, side, 0) < 0 && errno != ENOENT)
			ph_log_warn("drain: cannot remove failed/%s: %s", side,
				    strerror(errno));
		(void)fsync(d->failedfd);
		fprintf(out, "requeued %s\n", name);
	}
	free(side);
	return ret;
}

int
ph_drain_retry_failed(const char *spool_dir, char *const *ids, size_t n_ids,
		      FILE *out)
{
	struct drain d = { 0 };
	bool *found = ph_xcalloc(n_ids + 1, sizeof(*found));
	struct dirent *de;
	DIR *dir;
	int fd, ret = 0;

	if (open_dirs(&d, spool_dir) < 0) {
		free(found);
		return 1;
	}
	if ((fd = dup(d.failedfd)) < 0 || (dir = fdopendir(fd)) == NULL) {
		ph_log_error("drain: cannot list %s/failed: %s", spool_dir,
			     strerror(errno));
		if (fd >= 0)
			close(fd);
		close_dirs(&d);
		free(found);
		return 1;
	}
	while ((de = readdir(dir)) != NULL) {
		bool match = n_ids == 0;

		if (!is_dead_letter(de->d_name) || de->d_type == DT_DIR)
			continue;
		for (size_t i = 0; i < n_ids; i++)
			if (name_has_id(de->d_name, ids[i]))
				match = found[i] = true;
		if (match && requeue(&d, de->d_name, out) < 0)
			ret = 1;
	}
	closedir(dir);
	for (size_t i = 0; i < n_ids; i++) {
		if (!found[i]) {
			char shown[128];

			ph_log_error("drain: no dead letter with id %s in "
				     "%s/failed", ph_log_sanitize(ids[i], shown,
								  sizeof(shown)),
				     spool_dir);
			ret = 1;
		}
	}
	free(found);
	close_dirs(&d);
	return ret;
}
