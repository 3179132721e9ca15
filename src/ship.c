/* ship.c - "payhook ship": publish the spool's events to JetStream.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * The protocol is in ship.h. Claiming locks before it renames: the file is
 * opened in new/ and flock()ed, then renamed into cur/. A ship that finds
 * a file in cur/ without a lock knows its owner is gone (flock locks die
 * with the process), checks that the name still holds the file it locked
 * (the owner may have just moved it to done/), and renames it back into
 * new/, where the next pass publishes it again: a second publish of a key
 * is refused by the stream and counted as a duplicate, so taking back a
 * claim whose publish had in fact succeeded loses nothing and adds nothing.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "conf.h"
#include "ids.h"
#include "log.h"
#include "nats.h"
#include "privdrop.h"
#include "responder.h"
#include "ship.h"
#include "spool.h"

#define CONNECT_TIMEOUT_MS 2000
#define PUBLISH_TIMEOUT_MS 5000
#define POLL_US (500ull * 1000)		/* new/ looked at twice a second */
#define BACKOFF_MIN_US (500ull * 1000)
#define BACKOFF_MAX_US (30ull * 1000000)
#define EVENT_FILE_MAX ((size_t)256 * 1024 * 1024)
#define STATUS_EVERY 500		/* files between status writes */

struct ship {
	const struct ph_config *cfg;
	int newfd, curfd, donefd;
	struct ph_nats *nats;
	bool once, delete_done;
	uint64_t give_up_us;
	/* ship-status.json */
	uint64_t sent_total, duplicate_total;
	char last_sent_at[PH_RFC3339_LEN + 1];	/* "" until one is sent */
	char last_error[512];			/* "" when the last pass was fine */
	char last_error_at[PH_RFC3339_LEN + 1];
	size_t skipped;				/* unreadable event files */
	/* Their names, so that a long-running ship reports each once rather
	 * than at every pass; they stay in new/ for the operator. */
	char **bad;
	size_t n_bad;
};

static bool
is_bad(const struct ship *sh, const char *name)
{
	for (size_t i = 0; i < sh->n_bad; i++)
		if (strcmp(sh->bad[i], name) == 0)
			return true;
	return false;
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: payhook ship [--config PATH] [--once] "
		"[--delete-done] [--give-up DURATION]\n"
		"Publishes the events of the spool's new/ to the NATS "
		"JetStream stream of the\nconfiguration's \"nats\" object. "
		"--once: one pass, then exit (for cron);\n--give-up: how long "
		"--once retries an unreachable cluster (default %ds).\n",
		PH_SHIP_GIVE_UP_DEFAULT_S);
}

static void
now_rfc3339(char *out)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	ph_time_rfc3339(&tv, out);
}

/* Sleep us, or less when a stop signal arrives. */
static void
nap(uint64_t us)
{
	struct timespec ts = {
		.tv_sec = (time_t)(us / 1000000),
		.tv_nsec = (long)(us % 1000000) * 1000,
	};

	if (!ph_stop_requested())
		(void)nanosleep(&ts, NULL);
}

/* Status */

static struct json_object *
text_or_null(const char *s)
{
	return s[0] != '\0' ? json_object_new_string(s) : NULL;
}

/* Totals from an earlier run's file, so they count across --once runs. A
 * missing or unreadable file starts from zero. */
static void
status_load(struct ship *sh)
{
	char *path = ph_xasprintf("%s/%s", sh->cfg->state_dir,
				  PH_SHIP_STATUS_FILE);
	struct json_object *doc = json_object_from_file(path), *v;

	if (doc != NULL) {
		if (json_object_object_get_ex(doc, "sent_total", &v))
			sh->sent_total = (uint64_t)json_object_get_int64(v);
		if (json_object_object_get_ex(doc, "duplicate_total", &v))
			sh->duplicate_total =
			    (uint64_t)json_object_get_int64(v);
		if (json_object_object_get_ex(doc, "last_sent_at", &v) &&
		    json_object_get_string_len(v) == PH_RFC3339_LEN)
			memcpy(sh->last_sent_at, json_object_get_string(v),
			       PH_RFC3339_LEN + 1);
		json_object_put(doc);
	}
	free(path);
}

/* Write ship-status.json: temporary file, then rename; no fsync, the file
 * is for looking at (payhook status), not for recovery. */
static void
status_write(const struct ship *sh)
{
	struct json_object *o = json_object_new_object();
	char now[PH_RFC3339_LEN + 1];
	char *path, *tmp;
	const char *text;
	size_t len;
	int fd;

	now_rfc3339(now);
	json_object_object_add(o, "schema",
			       json_object_new_string(PH_SHIP_STATUS_SCHEMA));
	json_object_object_add(o, "updated_at", json_object_new_string(now));
	json_object_object_add(o, "sent_total",
			       json_object_new_int64((int64_t)sh->sent_total));
	json_object_object_add(o, "duplicate_total", json_object_new_int64(
			       (int64_t)sh->duplicate_total));
	json_object_object_add(o, "last_sent_at",
			       text_or_null(sh->last_sent_at));
	json_object_object_add(o, "last_error", text_or_null(sh->last_error));
	json_object_object_add(o, "last_error_at",
			       text_or_null(sh->last_error_at));
	text = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN |
						 JSON_C_TO_STRING_NOSLASHESCAPE,
						 &len);
	path = ph_xasprintf("%s/%s", sh->cfg->state_dir, PH_SHIP_STATUS_FILE);
	tmp = ph_xasprintf("%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0 || ph_write_all(fd, text, len) < 0 ||
	    ph_write_all(fd, "\n", 1) < 0 || close(fd) < 0 ||
	    rename(tmp, path) < 0) {
		ph_log_warn("ship: cannot write %s: %s", path, strerror(errno));
		if (fd >= 0)
			(void)unlink(tmp);
	}
	free(tmp);
	free(path);
	json_object_put(o);
}

static void
note_error(struct ship *sh, const char *msg)
{
	snprintf(sh->last_error, sizeof(sh->last_error), "%s", msg);
	now_rfc3339(sh->last_error_at);
	ph_log_error("ship: %s", msg);
}

/* Claims */

/* Does name under dirfd still name the file open as fd? */
static bool
same_file(int dirfd, const char *name, int fd)
{
	struct stat a, b;

	return fstat(fd, &a) == 0 &&
	    fstatat(dirfd, name, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
	    a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Take back every claim in cur/ whose owner is gone (no lock on it). */
static void
recover_claims(struct ship *sh)
{
	int fd = dup(sh->curfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	if (d == NULL) {
		if (fd >= 0)
			close(fd);
		return;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		int f;

		if (de->d_name[0] == '.')
			continue;
		f = openat(sh->curfd, de->d_name, O_RDONLY | O_NOFOLLOW |
			   O_NONBLOCK | O_CLOEXEC);
		if (f < 0)
			continue;
		if (flock(f, LOCK_EX | LOCK_NB) == 0 &&
		    same_file(sh->curfd, de->d_name, f) &&
		    renameat(sh->curfd, de->d_name, sh->newfd,
			     de->d_name) == 0)
			ph_log_info("ship: took back %s, left in cur/ by a "
				    "ship that stopped", de->d_name);
		close(f);
	}
	closedir(d);
}

/* Claim new/name: returns the locked descriptor of what is now
 * cur/name, or -1 when another consumer has it. */
static int
claim(struct ship *sh, const char *name)
{
	int fd = openat(sh->newfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
			O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (flock(fd, LOCK_EX | LOCK_NB) < 0 ||
	    !same_file(sh->newfd, name, fd) ||
	    renameat(sh->newfd, name, sh->curfd, name) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Give a claim back to new/ (a failed publish), then unlock. */
static void
unclaim(struct ship *sh, const char *name, int fd)
{
	if (renameat(sh->curfd, name, sh->newfd, name) < 0)
		ph_log_error("ship: cannot move cur/%s back to new/: %s (the "
			     "next ship takes it back)", name,
			     strerror(errno));
	close(fd);
}

/* The event's JSON into *data_r (caller frees), and its fields. */
static int
read_event(int fd, const struct ph_config *cfg, char **data_r, size_t *len_r,
	   struct json_object **doc_r, struct ph_error *err)
{
	struct json_tokener *tok;
	struct stat st;
	char *data;
	size_t got = 0;
	ssize_t n;

	if (fstat(fd, &st) < 0)
		return ph_error_set(err, "fstat: %s", strerror(errno));
	if (!S_ISREG(st.st_mode) || (size_t)st.st_size > EVENT_FILE_MAX)
		return ph_error_set(err, "not a regular file of at most "
				    "256 MiB");
	data = ph_xmalloc((size_t)st.st_size + 1);
	while (got < (size_t)st.st_size) {
		n = read(fd, data + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(data);
			return ph_error_set(err, "read: %s", n == 0 ?
					    "file shrank" : strerror(errno));
		}
		got += (size_t)n;
	}
	data[got] = '\0';
	tok = json_tokener_new_ex((int)cfg->max_json_depth + 8);
	*doc_r = tok == NULL ? NULL :
	    json_tokener_parse_ex(tok, data, (int)got);
	if (tok != NULL)
		json_tokener_free(tok);
	if (*doc_r == NULL) {
		free(data);
		return ph_error_set(err, "not a JSON event");
	}
	*data_r = data;
	*len_r = got;
	return 0;
}

static const char *
event_field(struct json_object *doc, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(doc, key, &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) == 0)
		return NULL;
	return json_object_get_string(v);
}

/* Publish the claimed cur/name (descriptor fd). Returns 0 when it is
 * delivered (moved on), 1 when it cannot be read as an event (put back,
 * counted and remembered, see struct ship), -1 when the publish failed
 * (put back, err filled). */
static int
ship_one(struct ship *sh, const char *name, int fd, struct ph_error *err)
{
	struct json_object *doc = NULL;
	const char *route = NULL, *type = NULL, *key = NULL, *id = NULL;
	char *data = NULL, *subject = NULL;
	size_t len = 0;
	int ret;

	if (read_event(fd, sh->cfg, &data, &len, &doc, err) < 0)
		goto bad;
	route = event_field(doc, "route");
	type = event_field(doc, "type");
	key = event_field(doc, "dedup_key");
	id = event_field(doc, "id");
	if (route == NULL || type == NULL || key == NULL || id == NULL) {
		ph_error_set(err, "no route, type, dedup_key or id");
		goto bad;
	}
	if ((subject = ph_nats_subject(sh->cfg->nats, route, type, key,
				       err)) == NULL)
		goto bad;
	free(subject);		/* checked: ph_nats_publish makes its own */
	ret = ph_nats_publish(sh->nats, route, type, key, id, data, len,
			      PUBLISH_TIMEOUT_MS, err);
	if (ret == PH_NATS_FAILED)
		goto put_back;
	if (ret == PH_NATS_DUPLICATE)
		sh->duplicate_total++;
	else
		sh->sent_total++;
	now_rfc3339(sh->last_sent_at);
	/* The event is in the stream: a crash before this leaves it in cur/
	 * (or new/), and its next publish counts as a duplicate. */
	if (sh->delete_done ? unlinkat(sh->curfd, name, 0) :
	    renameat(sh->curfd, name, sh->donefd, name))
		ph_log_error("ship: %s is published but stays in cur/: %s",
			     name, strerror(errno));
	close(fd);
	json_object_put(doc);
	free(data);
	return 0;
bad:
	ph_log_error("ship: leaving new/%s alone: %s", name, err->msg);
	sh->skipped++;
	sh->bad = ph_xrealloc(sh->bad, (sh->n_bad + 1) * sizeof(*sh->bad));
	sh->bad[sh->n_bad++] = ph_xstrdup(name);
	ret = 1;
put_back:
	unclaim(sh, name, fd);
	json_object_put(doc);
	free(data);
	return ret == 1 ? 1 : -1;
}

static int
name_filter(const struct dirent *de)
{
	return de->d_name[0] != '.';
}

/* One pass over new/, oldest first. Returns the number of events
 * delivered, or -1 (err filled) when the cluster did not acknowledge. */
static long
ship_pass(struct ship *sh, struct ph_error *err)
{
	struct dirent **names = NULL;
	long done = 0;
	int n;

	recover_claims(sh);
	if (sh->nats == NULL &&
	    ph_nats_open(sh->cfg->nats, CONNECT_TIMEOUT_MS, &sh->nats,
			 err) < 0)
		return -1;
	/* scandir needs a path; the spool is checked, new/ is its child. */
	n = scandirat(sh->newfd, ".", &names, name_filter, alphasort);
	if (n < 0)
		return ph_error_set(err, "cannot list new/: %s",
				    strerror(errno));
	sh->skipped = 0;
	for (int i = 0; i < n && done >= 0; i++) {
		int fd;

		if (ph_stop_requested())
			break;
		if (is_bad(sh, names[i]->d_name)) {
			sh->skipped++;
			continue;
		}
		if ((fd = claim(sh, names[i]->d_name)) < 0)
			continue;
		switch (ship_one(sh, names[i]->d_name, fd, err)) {
		case 0:
			if (++done % STATUS_EVERY == 0)
				status_write(sh);
			break;
		case 1:
			break;
		default:
			done = -1;
			break;
		}
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return done;
}

/* Open the spool's directories (ph_spool_open makes and checks them). */
static int
ship_open(struct ship *sh, struct ph_error *err)
{
	struct ph_spool *sp;
	int spfd, ret;

	if ((ret = ph_spool_open(sh->cfg->spool_dir, &sp, err)) < 0)
		return ret;
	ph_spool_close(&sp);
	spfd = ph_spool_open_dir(AT_FDCWD, sh->cfg->spool_dir,
				 sh->cfg->spool_dir, false, NULL, err);
	if (spfd < 0)
		return -1;
	sh->newfd = ph_spool_open_dir(spfd, "new", "new/", false, NULL, err);
	sh->curfd = ph_spool_open_dir(spfd, "cur", "cur/", false, NULL, err);
	sh->donefd = ph_spool_open_dir(spfd, "done", "done/", false, NULL,
				       err);
	close(spfd);
	return sh->newfd < 0 || sh->curfd < 0 || sh->donefd < 0 ? -1 : 0;
}

static void
ship_close(struct ship *sh)
{
	ph_nats_close(&sh->nats);
	for (size_t i = 0; i < sh->n_bad; i++)
		free(sh->bad[i]);
	ph_free(&sh->bad);
	if (sh->newfd >= 0)
		close(sh->newfd);
	if (sh->curfd >= 0)
		close(sh->curfd);
	if (sh->donefd >= 0)
		close(sh->donefd);
}

/* How long one more pass may take to fail: a connection tries every
 * server in turn, then the stream lookup and a publish each wait up to
 * PUBLISH_TIMEOUT_MS (the JetStream context's default wait is the same). */
static uint64_t
attempt_bound_us(const struct ship *sh)
{
	return ((uint64_t)sh->cfg->nats->n_servers * CONNECT_TIMEOUT_MS +
		2 * PUBLISH_TIMEOUT_MS) * 1000;
}

/* The loop: passes until stopped (or one good pass with --once), with
 * backoff between failures. --once gives up when one more pass could end
 * after the first failing pass's start plus --give-up: so it is over
 * within that time, whatever the network does. Returns the exit status. */
static int
ship_run(struct ship *sh)
{
	uint64_t backoff = BACKOFF_MIN_US, fail_since = 0, start, deadline;
	struct ph_error err;
	long n;

	for (;;) {
		start = ph_now_monotonic_us();
		n = ship_pass(sh, &err);
		if (n >= 0) {
			sh->last_error[0] = '\0';
			sh->last_error_at[0] = '\0';
		} else {
			note_error(sh, err.msg);
		}
		status_write(sh);
		if (ph_stop_requested())
			return n >= 0 ? 0 : 1;
		if (n >= 0) {
			fail_since = 0;
			backoff = BACKOFF_MIN_US;
			if (sh->once)
				return sh->skipped > 0 ? 1 : 0;
			if (n == 0)
				nap(POLL_US);
			continue;
		}
		if (fail_since == 0)
			fail_since = start;
		if (sh->once) {
			uint64_t now = ph_now_monotonic_us();

			deadline = fail_since + sh->give_up_us;
			if (now + attempt_bound_us(sh) + BACKOFF_MIN_US >
			    deadline) {
				ph_log_error("ship: giving up after %llu s "
					     "without the cluster; unsent events "
					     "stay in new/", (unsigned long long)
					     ((now - fail_since) / 1000000));
				return 1;
			}
			if (now + backoff + attempt_bound_us(sh) > deadline)
				backoff = deadline - attempt_bound_us(sh) -
				    now;
		}
		nap(backoff);
		backoff = backoff * 2 > BACKOFF_MAX_US ? BACKOFF_MAX_US :
		    backoff * 2;
	}
}

int
ph_ship_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "once", no_argument, NULL, '1' },
		{ "delete-done", no_argument, NULL, 'd' },
		{ "give-up", required_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ship sh = { .newfd = -1, .curfd = -1, .donefd = -1,
			   .give_up_us = PH_SHIP_GIVE_UP_DEFAULT_S * 1000000ull };
	const char *opt_config = NULL;
	struct ph_config *cfg;
	struct ph_error err;
	uint64_t secs;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': opt_config = optarg; break;
		case '1': sh.once = true; break;
		case 'd': sh.delete_done = true; break;
		case 'g':
			if (ph_parse_duration(optarg, 1, 3600, &secs) < 0) {
				fprintf(stderr, "payhook ship: --give-up: a "
					"duration from 1s to 1h, such as 60 "
					"or 2m\n");
				return 2;
			}
			sh.give_up_us = secs * 1000000;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (!ph_nats_available()) {
		fprintf(stderr, "payhook ship: %s\n", PH_NATS_MISSING);
		return 1;
	}
	if ((cfg = ph_config_load_command(opt_config)) == NULL)
		return 1;
	if (cfg->nats == NULL) {
		fprintf(stderr, "payhook ship: %s has no \"nats\" object "
			"(see payhook.json(5))\n",
			ph_config_locate(opt_config));
		ph_config_free(&cfg);
		return 1;
	}
	umask(077);
	ph_signals_install();
	sh.cfg = cfg;
	if (ph_privdrop_become_owner(cfg->spool_dir, true, &err) < 0 ||
	    ship_open(&sh, &err) < 0) {
		fprintf(stderr, "payhook ship: %s\n", err.msg);
		ship_close(&sh);
		ph_config_free(&cfg);
		return 1;
	}
	status_load(&sh);
	ret = ship_run(&sh);
	ship_close(&sh);
	ph_config_free(&cfg);
	return ret;
}
