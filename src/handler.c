/* handler.c - one webhook, end to end (product.md "One request").
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * Order of checks: configuration (500), route (404), method (405), client
 * address (403), Content-Length (411/413, the body unread), Content-Type
 * (415), body (408 too slow, 503 cut short), credentials (401), JSON
 * (400), then claim -> spool -> commit, and only
 * then the provider's success answer. Storage failures answer 503 with
 * Retry-After and leave no dedup record, so the provider's retry delivers.
 *
 * A request that carries several events (provider.h, event_count) has each
 * one claimed, spooled and committed in order before the one answer. A
 * failure at event i answers 503 with events 0..i-1 committed: the
 * provider's retry finds those as duplicates and delivers the rest. The
 * answer is the provider's "accepted" one when at least one event was new,
 * its "duplicate" one when all were known.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "handler.h"
#include "log.h"
#include "provider.h"
#include "quarantine.h"
#include "reindex.h"

#define RETRY_AFTER_S 30
/* Direct mode ("sink": "nats"): each server gets this long to accept a
 * connection, and JetStream this long to acknowledge, inside the event's
 * budget below. */
#define NATS_CONNECT_MS 1000
#define NATS_PUBLISH_MS 5000
/* How long one event may wait on the dedup database in all (claim,
 * commit, release): behind a stopped or stuck process, the answer is a
 * 503 within this, inside the timeouts providers give a webhook (10 s and
 * more). Each event of a batch (Adyen) has a budget of its own. */
#define DEDUP_BUDGET_US (8ull * 1000000)

/* What happened to a request, for its one log line. */
struct outcome {
	const char *name;		/* accepted, duplicate, rejected, ... */
	const char *detail;		/* why, or NULL */
	int status;
	int secret_index;
	/* Several events per request: only logged for such adapters. */
	bool batch;
	size_t n_events, n_new, n_dup;
	/* A storage failure behind a 503 or 500, for "payhook status";
	 * msg empty when there was none. */
	struct ph_error fault;
};

void
ph_context_init(struct ph_context *ctx, const char *config_path)
{
	struct ph_faults faults = { 0 };

	memset(ctx, 0, sizeof(*ctx));
	ctx->config_path = config_path;
	ctx->cfg = ph_config_load(config_path, &faults);
	/* Once per load: at start, and again after a reload. */
	for (size_t i = 0; i < faults.n_warnings; i++)
		ph_log_warn("%s: %s", config_path, faults.warnings[i]);
	if (ctx->cfg == NULL) {
		ctx->config_fault = ph_xasprintf("%s: %s%s", config_path,
		    faults.count > 0 ? faults.lines[0] : "invalid",
		    faults.count > 1 ? " (and more: run payhook "
		    "--check-config)" : "");
		ph_log_error("misconfigured, answering 500 to every request: "
			     "%s", ctx->config_fault);
	} else {
		ctx->stats = ph_stats_new(ctx->cfg->state_dir);
	}
	ph_faults_clear(&faults);
}

void
ph_context_clear(struct ph_context *ctx)
{
	ph_context_flush(ctx);
	ph_dedup_close(&ctx->dedup);
	ph_spool_close(&ctx->spool);
	ph_nats_close(&ctx->nats);
	ph_config_free(&ctx->cfg);
	ph_free(&ctx->config_fault);
	ph_free(&ctx->unreleased);
	ph_stats_free(&ctx->stats);
}

/* Open whatever storage is not open yet. Called per request, so a fault
 * that clears (disk space freed, permissions fixed) heals by itself.
 * Returns 0, -1 or PH_SPOOL_UNSAFE (a spool directory refused). */
static int
storage_ready(struct ph_context *ctx, struct ph_error *err)
{
	int ret;

	if (ctx->spool == NULL &&
	    (ret = ph_spool_open(ctx->cfg->spool_dir, &ctx->spool, err)) < 0)
		return ret;
	if (ctx->dedup == NULL) {
		/* After a crash, records not yet flushed are put back from
		 * the spool (dedup.h, rebuild). */
		struct ph_dedup_options opt = {
			.retention_days = ctx->cfg->dedup_retention_days,
			.rebuild = ph_reindex_spool,
			.rebuild_arg = ctx->spool,
		};

		ctx->dedup = ph_dedup_open(ctx->cfg->state_dir, &opt, err);
		if (ctx->dedup == NULL)
			return -1;
	}
	return 0;
}

static void retry_release(struct ph_context *ctx);

#define MAINTAIN_EVERY_US (5ull * 60 * 1000000)

void
ph_context_maintain(struct ph_context *ctx)
{
	uint64_t now = ph_now_monotonic_us(), due;
	struct ph_error err;
	long n;

	if (ctx->dedup == NULL || ph_dedup_wedged())
		return;
	retry_release(ctx);
	due = ph_context_flush_due(ctx);
	if (due != 0 && due <= now)
		ph_context_flush(ctx);
	/* A purge under way goes on after every request, a slice at a time
	 * (ph_dedup_purge), until it ends. */
	if (!ph_dedup_purging(ctx->dedup) && ctx->last_maintain_us != 0 &&
	    now - ctx->last_maintain_us < MAINTAIN_EVERY_US)
		return;
	ctx->last_maintain_us = now;
	n = ph_dedup_purge(ctx->dedup, false, &err);
	if (n < 0)
		ph_log_error("dedup purge failed: %s", err.msg);
	else if (n > 0)
		ph_log_info("dedup purge removed %ld expired records", n);
}

void
ph_context_flush(struct ph_context *ctx)
{
	struct ph_error err;

	if (ctx->dedup == NULL || ph_dedup_unflushed_since(ctx->dedup) == 0 ||
	    ph_dedup_wedged())
		return;
	/* The events are durable in the spool: a failed flush only leaves
	 * their records to the writeback or to the rebuild after a crash. */
	if (ph_dedup_flush(ctx->dedup, &err) < 0)
		ph_log_error("dedup log flush failed: %s", err.msg);
}

uint64_t
ph_context_flush_due(const struct ph_context *ctx)
{
	uint64_t since;

	if (ctx->dedup == NULL ||
	    (since = ph_dedup_unflushed_since(ctx->dedup)) == 0)
		return 0;
	return since + PH_FLUSH_DELAY_US;
}

static void
respond_error(struct ph_request *req, int status)
{
	const char *reason, *extra = NULL;
	char body[96];
	int n;

	switch (status) {
	case 400: reason = "bad request"; break;
	case 401: reason = "unauthorized"; break;
	case 403: reason = "forbidden"; break;
	case 404: reason = "not found"; break;
	case 405: reason = "method not allowed"; extra = "Allow: POST\r\n"; break;
	case 408: reason = "request timeout"; break;
	case 411: reason = "length required"; break;
	case 413: reason = "payload too large"; break;
	case 415: reason = "unsupported media type"; break;
	case 503: reason = "service unavailable";
		extra = "Retry-After: " PH_STRINGIFY(RETRY_AFTER_S) "\r\n";
		break;
	default: status = 500; reason = "internal error"; break;
	}
	n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}", reason);
	ph_request_respond(req, status, extra, "application/json", body,
			   (size_t)n);
}

static void
respond_provider(struct ph_request *req, const struct ph_route *route,
		 enum ph_outcome outcome, const struct ph_event *ev,
		 struct outcome *out)
{
	struct ph_answer ans = { 0 };

	if (route->provider->answer != NULL)
		route->provider->answer(outcome, ev, &ans);
	else
		ph_answer_default(outcome, ev, &ans);
	out->status = ans.status;
	ph_request_respond(req, ans.status, NULL, ans.content_type, ans.body,
			   ans.body_len);
	free(ans.body);
}

static void
log_request(const struct ph_request *req, const struct ph_route *route,
	    const struct ph_event *ev, const struct outcome *out,
	    uint64_t start_us)
{
	uint64_t us = ph_now_monotonic_us() - start_us;
	char route_s[64], key_s[200], path_s[64], secret_s[16] = "-";

	if (out->secret_index >= 0)
		snprintf(secret_s, sizeof(secret_s), "%d", out->secret_index);
	if (route == NULL)
		ph_log_sanitize(req->path, path_s, sizeof(path_s));
	char batch_s[80] = "";

	/* A batch's line names its first event's key and id, and counts:
	 * events=N new=A dup=D; when A + D < N the event at 0-based index
	 * A + D is the one that failed, and the rest were not tried. */
	if (out->batch)
		snprintf(batch_s, sizeof(batch_s), " events=%zu new=%zu dup=%zu",
			 out->n_events, out->n_new, out->n_dup);
	ph_log_info("route=%s outcome=%s status=%d key=%s id=%s secret=%s "
		    "ms=%llu.%03llu%s%s%s%s%s",
		    route != NULL ?
		    ph_log_sanitize(route->name, route_s, sizeof(route_s)) : "-",
		    out->name, out->status,
		    ev->dedup_key != NULL ?
		    ph_log_sanitize(ev->dedup_key, key_s, sizeof(key_s)) : "-",
		    ev->id[0] != '\0' ? ev->id : "-", secret_s,
		    (unsigned long long)(us / 1000),
		    (unsigned long long)(us % 1000),
		    route == NULL ? " path=" : "", route == NULL ? path_s : "",
		    batch_s, out->detail != NULL ? " detail=" : "",
		    out->detail != NULL ? out->detail : "");
}

/* Drop our pending claim after a failure, so the provider's retry is
 * delivered. If even that fails, the key is kept for ph_context_maintain()
 * to try again after the answer; meanwhile the next claim of the key by
 * this process takes the record over, and other processes do once this
 * one has exited, or once the record is ten claim timeouts old (dedup.h).
 * One key is kept: an older one left behind is still covered by those. */
static void
release_claim(struct ph_context *ctx, const struct ph_event *ev)
{
	struct ph_error err;

	if (ph_dedup_release(ctx->dedup, ev->dedup_key, &err) == 0)
		return;
	ph_log_error("dedup release failed, will retry after the answer: %s",
		     err.msg);
	free(ctx->unreleased);
	ctx->unreleased = ph_xstrdup(ev->dedup_key);
}

static void
retry_release(struct ph_context *ctx)
{
	struct ph_error err;

	int ret;

	if (ctx->unreleased == NULL)
		return;
	/* Briefly: the next request may be waiting for this process. */
	ph_dedup_set_deadline(ctx->dedup, ph_now_monotonic_us());
	ret = ph_dedup_release(ctx->dedup, ctx->unreleased, &err);
	ph_dedup_set_deadline(ctx->dedup, 0);
	if (ret < 0) {
		ph_log_error("dedup release failed again: %s", err.msg);
		return;
	}
	ph_log_info("dedup claim released on retry");
	ph_free(&ctx->unreleased);
}

/* Keep a storage failure for record_outcome(). */
static void
note_fault(struct outcome *out, const char *what, const struct ph_error *err)
{
	(void)ph_error_set(&out->fault, "%s: %s", what, err->msg);
}

/* Log a storage failure (what failed, detail for the request's line);
 * returns ret for deliver(). */
static int
storage_fault(int ret, const struct ph_error *err, const char *what,
	      const char *detail, struct outcome *out)
{
	note_fault(out, ret == PH_SPOOL_UNSAFE ? "misconfigured spool" : what,
		   err);
	if (ret == PH_SPOOL_UNSAFE) {
		ph_log_error("misconfigured spool, answering 500: %s",
			     err->msg);
		out->detail = "spool-unsafe";
	} else {
		ph_log_error("%s: %s", what, err->msg);
		out->detail = detail;
	}
	return ret;
}

/* Where a claimed event goes: the spool, or, for a route with "sink":
 * "nats", the JetStream stream (nats.h), over this process's connection,
 * opened on first use and reconnecting by itself. Either way the event is
 * durable (fsynced, or acknowledged by the stream's replicas) when this
 * returns 0; *dup is set when the stream already held the key (another
 * host took the event first). Returns 0, -1 (a 503) or PH_SPOOL_UNSAFE. */
static int
sink_write(struct ph_context *ctx, const struct ph_route *route,
	   const struct ph_event *ev, const char *json, size_t len, bool *dup,
	   struct ph_error *err)
{
	int ret;

	*dup = false;
	if (!route->sink_nats)
		return ph_spool_deliver(ctx->spool, &ev->received_tv, ev->id,
					json, len, NULL, err);
	if (ctx->nats == NULL &&
	    ph_nats_open(ctx->cfg->nats, NATS_CONNECT_MS, &ctx->nats,
			 err) < 0)
		return -1;
	ret = ph_nats_publish(ctx->nats, ev->route, ev->type != NULL ?
			      ev->type : "unknown", ev->dedup_key, ev->id,
			      json, len, NATS_PUBLISH_MS, err);
	*dup = ret == PH_NATS_DUPLICATE;
	return ret == PH_NATS_FAILED ? -1 : 0;
}

/* Claim, spool, commit: the part that must be durable before a 2xx.
 * Returns the outcome for the answer, or -1 for a 503, or PH_SPOOL_UNSAFE
 * for a 500 (out->detail says why; the error itself is logged here). */
static int
deliver(struct ph_context *ctx, const struct ph_route *route,
	struct ph_event *ev, struct outcome *out)
{
	bool dup;
	struct ph_error err;
	char known_id[PH_ULID_LEN + 1] = "";
	char *json;
	size_t len;
	int ret;

	if ((ret = storage_ready(ctx, &err)) < 0)
		return storage_fault(ret, &err, "storage unavailable",
				     "storage", out);
	ph_dedup_set_deadline(ctx->dedup, ph_now_monotonic_us() +
			      DEDUP_BUDGET_US);
	switch (ph_dedup_claim(ctx->dedup, ev->dedup_key, known_id, &err)) {
	case PH_CLAIM_OWNED:
		break;
	case PH_CLAIM_DUPLICATE:
		/* Answer with the id the event was first spooled under. */
		if (known_id[0] != '\0')
			memcpy(ev->id, known_id, sizeof(ev->id));
		return PH_OUT_DUPLICATE;
	case PH_CLAIM_BUSY:
		out->detail = "claim-busy";
		return -1;
	case PH_CLAIM_ERROR:
	default:
		ph_log_error("dedup claim failed: %s", err.msg);
		note_fault(out, "dedup claim failed", &err);
		out->detail = "dedup";
		return -1;
	}

	json = ph_event_to_json(ev, &len);
	ret = sink_write(ctx, route, ev, json, len, &dup, &err);
	free(json);
	if (ret < 0) {
		release_claim(ctx, ev);
		return route->sink_nats ?
		    storage_fault(ret, &err, "nats publish failed", "nats",
				  out) :
		    storage_fault(ret, &err, "spool write failed", "spool",
				  out);
	}
	if (ph_dedup_commit(ctx->dedup, ev->dedup_key, ev->id, &err) < 0) {
		/* The event is in new/; a redelivery may spool it again,
		 * which is the at-least-once case product.md accepts. No
		 * record may stay behind to hold up that redelivery. */
		ph_log_error("dedup commit failed: %s", err.msg);
		note_fault(out, "dedup commit failed", &err);
		out->detail = "dedup-commit";
		release_claim(ctx, ev);
		return -1;
	}
	return dup ? PH_OUT_DUPLICATE : PH_OUT_ACCEPTED;
}

/* Make event i of the request: a new id, received_at from now, and what
 * the adapter reads from req->doc. Returns 0, or -1 when no id can be
 * made. */
static int
make_event(const struct ph_route *route, const struct ph_request *req,
	   const struct ph_auth *auth, const struct timeval *now, size_t i,
	   struct ph_event *ev)
{
	struct ph_error err;

	if (ph_event_stamp(ev, now, &err) < 0) {
		ph_log_error("cannot make an event id: %s", err.msg);
		return -1;
	}
	ev->route = route->name;
	ev->provider = route->provider->name;
	ev->verified_by = auth->verified_by;
	ev->raw = req->doc;
	if (route->provider->normalize_at != NULL)
		route->provider->normalize_at(route, req, i, ev);
	else
		route->provider->normalize(route, req, ev);
	return 0;
}

/* Make and deliver every event of the request, in order, stopping at the
 * first failure. first receives event 0 (for the answer and the log line);
 * the others live only while they are delivered. Returns PH_OUT_ACCEPTED
 * if any event was new, PH_OUT_DUPLICATE if all were known, or deliver()'s
 * -1 or PH_SPOOL_UNSAFE. */
static int
deliver_all(struct ph_context *ctx, const struct ph_route *route,
	    const struct ph_request *req, const struct ph_auth *auth,
	    const struct timeval *now, struct ph_event *first,
	    struct outcome *out)
{
	const struct ph_provider *p = route->provider;
	size_t n = p->event_count != NULL ? p->event_count(route, req) : 1;

	out->batch = p->event_count != NULL;
	out->n_events = n;
	for (size_t i = 0; i < n; i++) {
		struct ph_event other = { 0 };
		struct ph_event *ev = i == 0 ? first : &other;
		int ret;

		if (make_event(route, req, auth, now, i, ev) < 0) {
			ph_event_clear(&other);
			return -1;
		}
		ret = deliver(ctx, route, ev, out);
		ph_event_clear(&other);
		if (ret < 0)
			return ret;
		if (ret == PH_OUT_ACCEPTED)
			out->n_new++;
		else
			out->n_dup++;
	}
	return out->n_new > 0 ? PH_OUT_ACCEPTED : PH_OUT_DUPLICATE;
}

/* Is the route open to this client (netacl.h: REMOTE_ADDR, or
 * X-Forwarded-For behind a trusted proxy)? An unknown client is not. */
static bool
client_allowed(const struct ph_config *cfg, const struct ph_request *req,
	       const struct ph_route *route)
{
	uint8_t addr[16];

	if (!route->has_allow_from)
		return true;
	if (ph_client_addr(ph_request_param(req, "REMOTE_ADDR"),
			   ph_request_header(req, "X-Forwarded-For"),
			   &cfg->trusted_proxies, addr) < 0)
		return false;
	return ph_acl_match(&route->allow_from, addr);
}

/* The transport checks, and reading the body. Returns 0 or a status. */
static int
check_transport(const struct ph_context *ctx, struct ph_request *req,
		const struct ph_route *route)
{
	const char *ct;
	int status;

	if (strcmp(req->method, "POST") != 0)
		return 405;
	if (!client_allowed(ctx->cfg, req, route))
		return 403;
	status = ph_request_check_length(req, route->max_body_bytes);
	if (status != 200)
		return status;
	ct = ph_request_param(req, "CONTENT_TYPE");
	if (route->require_json_type && !ph_content_type_is_json(ct))
		return 415;
	req->read_timeout_s = ctx->cfg->read_timeout_s;
	status = ph_request_read_body(req, route->max_body_bytes);
	return status == 200 ? 0 : status;
}

/* Keep a request refused for its credentials or its body (reason) in the
 * quarantine, after the answer is out; nothing is done for the requests
 * that succeed. */
static void
quarantine(const struct ph_context *ctx, const struct ph_route *route,
	   const struct ph_request *req, const char *reason,
	   const struct outcome *out)
{
	ph_quarantine_keep(ctx->cfg, route, req, reason, out->status);
}

/* The one place deliveries are counted for "payhook status" (stats.h),
 * once the answer is out: accepted and duplicate (2xx), rejected (4xx);
 * a 5xx is not a verdict on the delivery, but a storage failure behind it
 * is recorded. Page routes (the status page) are not deliveries. Never
 * changes the answer, never fsyncs. */
static void
record_outcome(struct ph_context *ctx, const struct ph_route *route,
	       const struct outcome *out)
{
	struct timeval tv;

	if (ctx->stats == NULL)
		return;
	gettimeofday(&tv, NULL);
	if (out->fault.msg[0] != '\0')
		ph_stats_storage_error(ctx->stats, (int64_t)tv.tv_sec * 1000 +
				       tv.tv_usec / 1000, out->fault.msg);
	if (route == NULL || route->provider->serve != NULL)
		return;
	if (out->status >= 200 && out->status < 300)
		ph_stats_count(ctx->stats, route->name,
			       strcmp(out->name, "duplicate") == 0 ?
			       PH_STATS_DUPLICATE : PH_STATS_ACCEPTED,
			       tv.tv_sec);
	else if (out->status >= 400 && out->status < 500)
		ph_stats_count(ctx->stats, route->name, PH_STATS_REJECTED,
			       tv.tv_sec);
}

void
ph_handle(struct ph_context *ctx, struct ph_request *req)
{
	uint64_t start_us = ph_now_monotonic_us();
	const struct ph_route *route = NULL;
	struct ph_event ev = { 0 };
	struct outcome out = { .name = "rejected", .secret_index = -1 };
	struct ph_auth auth = { .verified_by = NULL, .secret_index = -1 };
	struct timeval now;
	int status, result;

	if (ctx->cfg == NULL) {
		out.name = "misconfigured";
		out.status = 500;
		respond_error(req, 500);
		goto done;
	}
	route = ph_config_route(ctx->cfg, req->path);
	if (route == NULL) {
		out.status = 404;
		respond_error(req, 404);
		goto done;
	}
	if (route->provider->serve != NULL) {
		/* A page (the status route): it answers GET itself, and
		 * nothing of the delivery path runs. */
		out.name = "page";
		if (!client_allowed(ctx->cfg, req, route)) {
			out.status = 403;
			respond_error(req, 403);
		} else {
			out.status = route->provider->serve(ctx->cfg, route,
							    req);
		}
		goto done;
	}
	status = check_transport(ctx, req, route);
	if (status != 0) {
		if (status == 503) {	/* retryable: not the sender's fault */
			out.name = "failed";
			out.detail = "body-cut-short";
		} else if (status == 408) {
			out.detail = "read-timeout";
		}
		out.status = status;
		respond_error(req, status);
		goto done;
	}

	switch (route->provider->authenticate(route, req, &auth)) {
	case PH_AUTH_OK:
		break;
	case PH_AUTH_BAD_REQUEST:
		out.detail = "unparseable";
		respond_provider(req, route, PH_OUT_BAD_REQUEST, &ev, &out);
		quarantine(ctx, route, req, out.detail, &out);
		goto done;
	case PH_AUTH_FAIL:
	default:
		out.name = "unauthorized";
		respond_provider(req, route, PH_OUT_UNAUTHORIZED, &ev, &out);
		quarantine(ctx, route, req, out.name, &out);
		goto done;
	}
	out.secret_index = auth.secret_index;
	if (ph_request_json(req, ctx->cfg->max_json_depth) != 200) {
		out.detail = "json";
		respond_provider(req, route, PH_OUT_BAD_REQUEST, &ev, &out);
		quarantine(ctx, route, req, out.detail, &out);
		goto done;
	}

	gettimeofday(&now, NULL);
	result = deliver_all(ctx, route, req, &auth, &now, &ev, &out);
	if (ctx->dedup != NULL)
		ph_dedup_set_deadline(ctx->dedup, 0);
	if (result < 0) {
		/* A refused spool directory is the operator's to fix: 500,
		 * as for any misconfiguration (product.md). */
		out.name = result == PH_SPOOL_UNSAFE ? "misconfigured" :
		    "failed";
		out.status = result == PH_SPOOL_UNSAFE ? 500 : 503;
		respond_error(req, out.status);
		goto done;
	}
	out.name = result == PH_OUT_ACCEPTED ? "accepted" : "duplicate";
	respond_provider(req, route, (enum ph_outcome)result, &ev, &out);
done:
	log_request(req, route, &ev, &out, start_us);
	record_outcome(ctx, route, &out);
	ph_event_clear(&ev);
}
