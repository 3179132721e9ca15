/* responder.c - FastCGI accept loop and one-shot CGI over one handler.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#include "config.h"

#include <sys/epoll.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "log.h"
#include "responder.h"

extern char **environ;

static volatile sig_atomic_t stop_requested;

static void
on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
	/* Makes libfcgi's accept() give up instead of retrying on EINTR. */
	FCGX_ShutdownPending();
}

void
ph_signals_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a blocked accept() must return so the loop can see
	 * the flag; the request in hand still runs to completion. */
	sa.sa_handler = on_stop_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

bool
ph_stop_requested(void)
{
	return stop_requested != 0;
}

/*
 * After a database call overran or faulted (ph_dedup_wedged()), the
 * request in hand has had its 503. This process left Berkeley DB by a
 * siglongjmp(), its handles may hold mutexes or be half-way through an
 * update, so nothing more runs here, not even exit handlers: _exit(). The
 * supervisor (the web server, payhook --listen) starts a fresh worker,
 * and the next process to open the environment recovers it.
 */
static void PH_NORETURN
exit_wedged(unsigned long served)
{
	ph_log_error("exiting after %lu requests: the dedup database is "
		     "unusable in this process", served);
	fflush(NULL);
	_exit(1);
}

/*
 * Before it exits, a wedged FastCGI worker answers the connections that
 * are already queued on its socket: a web server that gives each worker
 * a socket of its own (lighttpd) would otherwise see them reset and
 * answer 500 for them. They get the handler's usual 503 with
 * Retry-After, since every dedup call now fails at once without entering
 * Berkeley DB. Bounded twice: no longer than WEDGED_DRAIN_US of queued
 * work, and SIGALRM after WEDGED_HARD_S seconds ends the process even if
 * a peer that stalls mid-request (or an accept() that lost a race for a
 * shared socket) holds it.
 */
#define WEDGED_DRAIN_US		(1000 * 1000)
#define WEDGED_HARD_S		5

static bool
connection_queued(int listen_fd)
{
	struct pollfd p = { .fd = listen_fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0;
}

/* Called after each answer of a worker that is wedged. Returns only when
 * the worker is to answer one more queued connection. */
static void
drain_or_exit_wedged(int listen_fd, unsigned long served)
{
	static uint64_t drain_end_us;
	struct sigaction sa;
	sigset_t alarm_set;

	if (drain_end_us == 0) {
		drain_end_us = ph_now_monotonic_us() + WEDGED_DRAIN_US;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = SIG_DFL;
		sigaction(SIGALRM, &sa, NULL);
		sigemptyset(&alarm_set);
		sigaddset(&alarm_set, SIGALRM);
		sigprocmask(SIG_UNBLOCK, &alarm_set, NULL);
		alarm(WEDGED_HARD_S);
	}
	if (ph_now_monotonic_us() >= drain_end_us ||
	    !connection_queued(listen_fd))
		exit_wedged(served);
}

/* Hold back the stop and reload signals while a request is in hand:
 * delivered in the middle of reading the body, they would interrupt the
 * read (libfcgi does not retry on EINTR) and cut an authentic webhook
 * short. They stay pending and are delivered when the mask is restored,
 * after the answer; the loop then sees stop_requested. */
static void
hold_stop_signals(sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, old);
}

static void
release_stop_signals(const sigset_t *old)
{
	sigprocmask(SIG_SETMASK, old, NULL);
}

/* FastCGI streams. */

static ssize_t
fcgi_read(void *ctx, uint8_t *buf, size_t len)
{
	FCGX_Request *r = ctx;
	int n = FCGX_GetStr((char *)buf, len > INT32_MAX ? INT32_MAX : (int)len,
			    r->in);

	return n < 0 ? -1 : n;
}

static int
fcgi_write(void *ctx, const void *buf, size_t len)
{
	FCGX_Request *r = ctx;

	if (len > INT32_MAX)
		return -1;
	return FCGX_PutStr(buf, (int)len, r->out) == (int)len ? 0 : -1;
}

/* An epoll instance watching the listening socket with EPOLLEXCLUSIVE:
 * a new connection wakes one waiting worker, not all of them (a poll()
 * would wake every idle worker for each request). -1 until made, or when
 * it cannot be. */
static int idle_epfd = -1;
static bool idle_epfd_tried;

static int
idle_wait_fd(int listen_fd)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLEXCLUSIVE };

	if (idle_epfd_tried)
		return idle_epfd;
	idle_epfd_tried = true;
	if ((idle_epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return -1;
	ev.data.fd = listen_fd;
	if (epoll_ctl(idle_epfd, EPOLL_CTL_ADD, listen_fd, &ev) < 0) {
		close(idle_epfd);
		idle_epfd = -1;
	}
	return idle_epfd;
}

/* Wait up to ms for the next request: on a connection the web server kept
 * open (FCGI_KEEP_CONN) if there is one, else on the listening socket.
 * Returns > 0 when one is there, 0 at the time out, -1 with errno. */
static int
wait_request(const FCGX_Request *r, int listen_fd, int ms)
{
	struct pollfd pfd = { .fd = r->ipcFd, .events = POLLIN };
	struct epoll_event ev;
	int epfd;

	if (r->ipcFd >= 0)
		return poll(&pfd, 1, ms);
	if ((epfd = idle_wait_fd(listen_fd)) >= 0)
		return epoll_wait(epfd, &ev, 1, ms);
	pfd.fd = listen_fd;
	return poll(&pfd, 1, ms);
}

/*
 * Between requests, with dedup commits not yet flushed (handler.h, group
 * commit): wait for the next request until the flush comes due, and flush
 * then. Under load the next request comes first, and a later one's
 * ph_context_maintain() flushes: one flush covers many commits. A stop
 * signal ends the wait; ph_context_clear() flushes on the way out.
 */
static void
flush_when_idle(struct ph_context *ctx, const FCGX_Request *r, int listen_fd)
{
	uint64_t due, now;
	int n;

	while ((due = ph_context_flush_due(ctx)) != 0 && !stop_requested) {
		now = ph_now_monotonic_us();
		if (now < due) {
			n = wait_request(r, listen_fd,
					 (int)((due - now + 999) / 1000));
			if (n > 0)
				return;
			if (n < 0 && errno == EINTR)
				continue;
		}
		ph_context_flush(ctx);
		return;
	}
}

int
ph_responder_fcgi(struct ph_context *ctx, int listen_fd,
		  unsigned long max_requests)
{
	FCGX_Request r;
	unsigned long served = 0;
	int ret = 0;

	if (FCGX_Init() != 0) {
		ph_log_error("FCGX_Init failed");
		return -1;
	}
	if (FCGX_InitRequest(&r, listen_fd, 0) != 0) {
		ph_log_error("FCGX_InitRequest failed");
		return -1;
	}
	while (!stop_requested &&
	       (max_requests == 0 || served < max_requests)) {
		struct ph_stream io = { fcgi_read, fcgi_write, &r };
		struct ph_request req;
		sigset_t old;

		flush_when_idle(ctx, &r, listen_fd);
		if (ph_dedup_wedged())	/* the flush overran */
			drain_or_exit_wedged(listen_fd, served);
		/* Signals stay deliverable while waiting here: that is how
		 * a stop ends the wait. One that lands while libfcgi reads
		 * the parameters (the short stretch after its accept())
		 * makes it close the connection unanswered: the web server
		 * answers 5xx, retryable, never a 4xx. */
		if (FCGX_Accept_r(&r) < 0) {
			if (!stop_requested) {
				ph_log_error("FastCGI accept failed: %s",
					     strerror(errno));
				ret = -1;
			}
			break;
		}
		hold_stop_signals(&old);
		ph_request_init(&req, r.envp, &io);
		ph_handle(ctx, &req);
		ph_request_clear(&req);
		FCGX_Finish_r(&r);
		served++;
		if (ph_dedup_wedged())
			drain_or_exit_wedged(listen_fd, served);
		else
			ph_context_maintain(ctx);
		release_stop_signals(&old);
	}
	if (ph_dedup_wedged())
		exit_wedged(served);
	FCGX_Free(&r, 1);
	if (idle_epfd >= 0)
		close(idle_epfd);
	idle_epfd = -1;
	idle_epfd_tried = false;
	return ret;
}

/* CGI streams: the body on stdin, the answer on stdout. EINTR is passed
 * up: the body reader retries unless its deadline has passed. */

static ssize_t
cgi_read(void *ctx, uint8_t *buf, size_t len)
{
	(void)ctx;
	return read(STDIN_FILENO, buf, len);
}

static int
cgi_write(void *ctx, const void *buf, size_t len)
{
	return ph_write_all(STDOUT_FILENO, buf, len);
}

int
ph_responder_cgi(struct ph_context *ctx)
{
	struct ph_stream io = { cgi_read, cgi_write, NULL };
	struct ph_request req;
	bool answered;
	sigset_t old;

	hold_stop_signals(&old);
	ph_request_init(&req, environ, &io);
	ph_handle(ctx, &req);
	answered = req.answered;
	ph_request_clear(&req);
	/* Let the web server finish the response before housekeeping. */
	close(STDOUT_FILENO);
	if (ph_dedup_wedged())
		exit_wedged(1);
	ph_context_maintain(ctx);
	release_stop_signals(&old);
	return answered ? 0 : -1;
}
