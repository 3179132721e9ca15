/* natsdrain.c - "payhook drain --nats": run a command for each event of
 * the JetStream stream.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * Every drain, on every host, binds to one durable pull consumer
 * (PH_NATS_DRAIN_CONSUMER) of the stream, so each message goes to one of
 * them at a time. A drain fetches one message, runs the command for it
 * (job.h: the event on standard input, the same PAYHOOK_* variables and
 * timeout as the spool drain) and, while it runs, tells the server it is
 * still in progress, so the message is not handed to another drain; a
 * drain that dies stops doing so, and after the consumer's ack wait the
 * message goes to another drain (or to this one, restarted).
 *
 *   exit 0          ack (synchronously: the server has it when we go on)
 *   failure         a nak with the spool drain's backoff as its delay
 *                   (retry.h), the attempt number being the delivery count
 *   attempts spent  the dead-letter report (payhook.drain-error/1, with the
 *                   last attempt) published to
 *                   <prefix>.failed.<route>.<type>.<key token>, then the
 *                   message terminated
 *
 * Messages on <prefix>.failed.> (dead letters themselves) are acked
 * without running anything. The order of events is not kept: with naks
 * and several drains it cannot be (the spool drain's --ordered).
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <json-c/json.h>

#include "job.h"
#include "log.h"
#include "nats.h"
#include "responder.h"
#include "retry.h"

#ifndef HAVE_NATS

int
ph_nats_drain_run(const struct ph_nats_config *nc,
		  const struct ph_nats_drain_options *o)
{
	(void)nc;
	(void)o;
	fprintf(stderr, "payhook drain --nats: %s\n", PH_NATS_MISSING);
	return 1;
}

#else

#include <nats/nats.h>

#define CONNECT_TIMEOUT_MS 2000
#define FETCH_WAIT_MS 1000
#define POLL_MS 100

/* The consumer's ack wait: a drain that stopped telling the server its job
 * is in progress (every third of it) loses the message after this. */
#define ACK_WAIT_MS 6000
#define PROGRESS_EVERY_US ((uint64_t)ACK_WAIT_MS * 1000 / 3)

struct ndrain {
	const struct ph_nats_config *nc;
	const struct ph_nats_drain_options *o;
	struct ph_nats *nats;
	natsSubscription *sub;
	char *failed_prefix;		/* "<prefix>.failed." */
	unsigned long ran, acked, naked, dead;
};

/* The PAYHOOK_* variables of the spool drain, set in this process's own
 * environment before the job starts: the child then calls nothing that
 * allocates between fork and exec, which matters here because the NATS
 * client runs threads of its own. Only this thread touches the
 * environment. */
static void
set_job_env(struct json_object *ev, unsigned number)
{
	static const char *const vars[][2] = {
		{ "PAYHOOK_EVENT_ID", "id" },
		{ "PAYHOOK_EVENT_TYPE", "type" },
		{ "PAYHOOK_DEDUP_KEY", "dedup_key" },
		{ "PAYHOOK_ROUTE", "route" },
		{ "PAYHOOK_PROVIDER", "provider" },
	};
	char nbuf[16];

	for (size_t i = 0; i < PH_N_ELEMENTS(vars); i++) {
		const char *v = ph_json_str(ev, vars[i][1]);

		if (v != NULL)
			setenv(vars[i][0], v, 1);
		else
			unsetenv(vars[i][0]);
	}
	snprintf(nbuf, sizeof(nbuf), "%u", number);
	setenv("PAYHOOK_ATTEMPT", nbuf, 1);
}

/* The event's bytes as a descriptor the job reads from the start. */
static int
event_fd(const void *data, size_t len, struct ph_error *err)
{
	int fd = memfd_create("payhook-event", MFD_CLOEXEC);

	if (fd < 0)
		return ph_error_set(err, "memfd_create: %s", strerror(errno));
	if (ph_write_all(fd, data, len) < 0) {
		ph_error_set(err, "write: %s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Run the job to its end, telling the server meanwhile that the message
 * is in progress. */
static void
run_job(struct ndrain *d, natsMsg *msg, struct ph_job *job)
{
	uint64_t next = ph_now_monotonic_us() + PROGRESS_EVERY_US, now;

	while (!ph_job_reap(job)) {
		struct pollfd p = { .fd = ph_job_stderr_fd(job),
				    .events = POLLIN };

		if (p.fd >= 0)
			(void)poll(&p, 1, POLL_MS);
		else
			(void)poll(NULL, 0, POLL_MS);
		if (p.fd >= 0 && p.revents != 0)
			ph_job_read_stderr(job);
		now = ph_now_monotonic_us();
		(void)ph_job_check_deadline(job, now);
		if (now >= next) {
			(void)natsMsg_InProgress(msg, NULL);
			next = now + PROGRESS_EVERY_US;
		}
	}
}

/* Publish the dead-letter report of the event on subject, then terminate
 * the message. A report that cannot be published leaves the message to
 * be redelivered (nak), so no failure is lost. */
static void
dead_letter(struct ndrain *d, natsMsg *msg, struct json_object *ev,
	    const struct ph_job *job)
{
	char tail[PH_JOB_TAIL_MAX];
	size_t tail_len = ph_job_tail(job, tail);
	const char *subject = natsMsg_GetSubject(msg);
	struct json_object *report;
	const char *text, *key = ph_json_str(ev, "dedup_key");
	char *dl_subject, *id;
	jsPubAck *ack = NULL;
	jsPubOptions po;
	jsErrCode jerr = 0;
	natsStatus s;
	size_t len;

	report = ph_drain_error_json(subject, ev, &job->attempt, 1, tail,
				     tail_len);
	text = json_object_to_json_string_length(report,
		JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	dl_subject = ph_xasprintf("%s%s", d->failed_prefix,
				  subject + strlen(d->nc->subject_prefix) + 1);
	id = ph_xasprintf("failed:%s", key != NULL ? key : subject);
	jsPubOptions_Init(&po);
	po.MsgId = id;
	po.MaxWait = 5000;
	s = js_Publish(&ack, ph_nats_js(d->nats), dl_subject, text, (int)len,
		       &po, &jerr);
	if (s == NATS_OK || jerr == JSStreamStoreFailedErr) {
		/* Stored, or a report of this key already is. */
		(void)natsMsg_Term(msg, NULL);
		d->dead++;
		ph_log_error("drain: %s failed %u times, reported on %s",
			     subject, job->attempt.number, dl_subject);
	} else {
		ph_log_error("drain: %s: cannot publish its dead letter (%s); "
			     "it will be delivered again", subject,
			     natsStatus_GetText(s));
		(void)natsMsg_NakWithDelay(msg, 1000, NULL);
	}
	jsPubAck_Destroy(ack);
	free(id);
	free(dl_subject);
	json_object_put(report);
}

/* One message: run, then ack, nak or dead-letter it. */
static void
handle(struct ndrain *d, natsMsg *msg)
{
	const char *subject = natsMsg_GetSubject(msg);
	jsMsgMetaData *meta = NULL;
	struct ph_job_spec spec = { 0 };
	struct json_object *ev;
	struct ph_job job;
	struct ph_error err;
	unsigned number;
	char desc[128];
	int fd;

	if (strncmp(subject, d->failed_prefix, strlen(d->failed_prefix)) == 0) {
		(void)natsMsg_Ack(msg, NULL);	/* a dead letter: not ours */
		return;
	}
	if (natsMsg_GetMetaData(&meta, msg) != NATS_OK) {
		ph_log_error("drain: %s: no JetStream metadata", subject);
		(void)natsMsg_NakWithDelay(msg, 1000, NULL);
		return;
	}
	number = meta->NumDelivered > 1000 ? 1000 :
	    (unsigned)meta->NumDelivered;
	jsMsgMetaData_Destroy(meta);
	ev = json_tokener_parse(natsMsg_GetData(msg));
	if ((fd = event_fd(natsMsg_GetData(msg),
			   (size_t)natsMsg_GetDataLength(msg), &err)) < 0) {
		ph_log_error("drain: %s: %s", subject, err.msg);
		(void)natsMsg_NakWithDelay(msg, 1000, NULL);
		json_object_put(ev);
		return;
	}
	set_job_env(ev, number);
	spec.command = d->o->command;
	spec.stdin_fd = fd;
	spec.timeout_ms = d->o->timeout_ms;
	if (ph_job_start(&job, &spec, number, &err) < 0) {
		/* drain's trouble, not the event's. */
		ph_log_error("drain: %s: cannot start the command: %s",
			     subject, err.msg);
		(void)natsMsg_NakWithDelay(msg, 1000, NULL);
		close(fd);
		json_object_put(ev);
		return;
	}
	close(fd);
	d->ran++;
	run_job(d, msg, &job);
	ph_attempt_describe(&job.attempt, desc, sizeof(desc));
	if (ph_attempt_succeeded(&job.attempt)) {
		jsErrCode jerr = 0;

		if (natsMsg_AckSync(msg, NULL, &jerr) == NATS_OK)
			d->acked++;
		else
			ph_log_error("drain: %s succeeded but its ack was not "
				     "confirmed: it may run again", subject);
	} else if (number < d->o->max_attempts) {
		uint64_t delay = ph_backoff_delay_ms(number,
						     d->o->retry_min_ms,
						     d->o->retry_max_ms,
						     ph_backoff_random());

		ph_log_warn("drain: %s attempt %u: %s; again in %llu ms",
			    subject, number, desc,
			    (unsigned long long)delay);
		(void)natsMsg_NakWithDelay(msg, (int64_t)delay, NULL);
		d->naked++;
	} else {
		dead_letter(d, msg, ev, &job);
	}
	json_object_put(ev);
}

/* Connect, make sure of the stream, bind to the durable consumer. */
static int
ndrain_open(struct ndrain *d, struct ph_error *err)
{
	jsSubOptions so;
	jsErrCode jerr = 0;
	char *filter;
	natsStatus s;

	if (ph_nats_open(d->nc, CONNECT_TIMEOUT_MS, &d->nats, err) < 0)
		return -1;
	filter = ph_xasprintf("%s.>", d->nc->subject_prefix);
	jsSubOptions_Init(&so);
	so.Stream = d->nc->stream;
	so.Config.Durable = PH_NATS_DRAIN_CONSUMER;
	so.Config.AckPolicy = js_AckExplicit;
	so.Config.AckWait = (int64_t)ACK_WAIT_MS * 1000000;
	so.Config.MaxDeliver = -1;	/* the attempts are counted here */
	so.Config.DeliverPolicy = js_DeliverAll;
	s = js_PullSubscribe(&d->sub, ph_nats_js(d->nats), filter,
			     PH_NATS_DRAIN_CONSUMER, NULL, &so, &jerr);
	free(filter);
	if (s != NATS_OK) {
		ph_error_set(err, "cannot bind to consumer %s: %s%s",
			     PH_NATS_DRAIN_CONSUMER, nats_GetLastError(NULL),
			     jerr != 0 ? " (a consumer of that name with "
			     "another configuration?)" : "");
		ph_nats_close(&d->nats);
		return -1;
	}
	return 0;
}

static void
ndrain_close(struct ndrain *d)
{
	if (d->sub != NULL)
		natsSubscription_Destroy(d->sub);	/* the consumer stays */
	d->sub = NULL;
	ph_nats_close(&d->nats);
}

int
ph_nats_drain_run(const struct ph_nats_config *nc,
		  const struct ph_nats_drain_options *o)
{
	struct ndrain d = { .nc = nc, .o = o };
	struct ph_error err;
	uint64_t backoff_ms = 500;
	int ret = 0;

	ph_signals_install();
	d.failed_prefix = ph_xasprintf("%s.failed.", nc->subject_prefix);
	while (!ph_stop_requested()) {
		natsMsgList list = { 0 };
		natsStatus s;

		if (d.sub == NULL && ndrain_open(&d, &err) < 0) {
			ph_log_error("drain: %s", err.msg);
			if (o->once) {
				ret = 1;
				break;
			}
			(void)poll(NULL, 0, (int)backoff_ms);
			backoff_ms = backoff_ms * 2 > 30000 ? 30000 :
			    backoff_ms * 2;
			continue;
		}
		backoff_ms = 500;
		s = natsSubscription_Fetch(&list, d.sub, 1, FETCH_WAIT_MS,
					   NULL);
		if (s == NATS_TIMEOUT) {
			if (o->once)
				break;
			continue;
		}
		if (s != NATS_OK) {
			ph_log_error("drain: fetch: %s", natsStatus_GetText(s));
			(void)poll(NULL, 0, 500);
			continue;
		}
		for (int i = 0; i < list.Count; i++)
			handle(&d, list.Msgs[i]);
		natsMsgList_Destroy(&list);
	}
	ph_log_info("drain: ran %lu commands: %lu acknowledged, %lu to be "
		    "retried, %lu dead letters", d.ran, d.acked, d.naked,
		    d.dead);
	ndrain_close(&d);
	free(d.failed_prefix);
	return ret;
}

#endif /* HAVE_NATS */
