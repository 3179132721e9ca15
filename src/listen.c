/* listen.c - standalone mode: open a FastCGI socket, pre-fork workers.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_SYS_PRCTL_H
#include <sys/prctl.h>
#endif

#include "listen.h"
#include "log.h"
#include "responder.h"

#define RESTART_DELAY_MIN_MS 100
#define RESTART_DELAY_MAX_MS 5000
#define WORKER_YOUNG_US (10ull * 1000000)	/* died younger: back off */
#define STOP_GRACE_US (30ull * 1000000)	/* then SIGKILL */

/* Unix sockets. */

/* Remove path if it is a socket nobody accepts on (left by a process that
 * was killed); refuse to touch anything else. */
static int
clear_stale_socket(const char *path, const struct sockaddr_un *sun,
		   struct ph_error *err)
{
	struct stat st;
	int s, r, saved;

	if (lstat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		return ph_error_set(err, "lstat(%s) failed: %s", path,
				    strerror(errno));
	}
	if (!S_ISSOCK(st.st_mode))
		return ph_error_set(err, "%s exists and is not a socket", path);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return ph_error_set(err, "socket(AF_UNIX) failed: %s",
				    strerror(errno));
	r = connect(s, (const struct sockaddr *)sun, sizeof(*sun));
	saved = errno;
	close(s);
	if (r == 0)
		return ph_error_set(err, "%s: another process is accepting "
				    "on this socket", path);
	if (saved != ECONNREFUSED)
		return ph_error_set(err, "connect(%s) failed: %s", path,
				    strerror(saved));
	if (unlink(path) < 0 && errno != ENOENT)
		return ph_error_set(err, "unlink(%s) failed: %s", path,
				    strerror(errno));
	ph_log_info("removed stale socket %s", path);
	return 0;
}

/* chmod the file open as fd (an O_PATH descriptor). fchmod() refuses
 * O_PATH descriptors, so go through /proc/self/fd/N: the kernel resolves
 * that link to the very inode fd holds, whatever is at the path now
 * (glibc's fchmodat(AT_SYMLINK_NOFOLLOW) does the same). */
static int
chmod_fd(int fd, mode_t mode)
{
	char proc[64];

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	return chmod(proc, mode);
}

int
ph_listen_secure_socket(const char *path, dev_t dev, ino_t ino,
			const struct ph_listen_options *opt,
			struct ph_error *err)
{
	struct stat st;
	int fd;

	fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return ph_error_set(err, "open(%s, O_PATH) failed: %s", path,
				    strerror(errno));
	if (fstat(fd, &st) < 0) {
		ph_error_set(err, "fstat(%s) failed: %s", path,
			     strerror(errno));
		goto fail;
	}
	if (!S_ISSOCK(st.st_mode) || st.st_dev != dev || st.st_ino != ino) {
		ph_error_set(err, "%s was replaced after bind (now %s): not "
			     "changing its owner or mode", path,
			     S_ISLNK(st.st_mode) ? "a symbolic link" :
			     S_ISSOCK(st.st_mode) ? "another socket" :
			     "not a socket");
		goto fail;
	}
	if (opt->chown_socket &&
	    fchownat(fd, "", opt->socket_uid, opt->socket_gid,
		     AT_EMPTY_PATH) < 0) {
		ph_error_set(err, "chown(%s, %lu, %lu) failed: %s", path,
			     (unsigned long)opt->socket_uid,
			     (unsigned long)opt->socket_gid, strerror(errno));
		goto fail;
	}
	if ((st.st_mode & 07777) != opt->socket_mode &&
	    chmod_fd(fd, opt->socket_mode) < 0) {
		ph_error_set(err, "chmod(%s, %04o) failed: %s", path,
			     (unsigned)opt->socket_mode, strerror(errno));
		goto fail;
	}
	close(fd);
	return 0;
fail:
	close(fd);
	return -1;
}

static int
open_unix(const char *path, const struct ph_listen_options *opt,
	  struct ph_listener *l, struct ph_error *err)
{
	struct sockaddr_un sun;
	struct stat st;
	mode_t old_mask, bind_mode;
	int fd, r;

	if (path[0] != '/')
		return ph_error_set(err, "unix:%s: the socket path must be "
				    "absolute", path);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		return ph_error_set(err, "unix:%s: socket path too long (at "
				    "most %zu bytes)", path,
				    sizeof(sun.sun_path) - 1);
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if (clear_stale_socket(path, &sun, err) < 0)
		return -1;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return ph_error_set(err, "socket(AF_UNIX) failed: %s",
				    strerror(errno));
	/* Nobody but the intended users may connect, ever: with no owner
	 * to change, bind creates the file with its final mode; otherwise
	 * with the owner's bits only, until the owner is final. */
	bind_mode = opt->chown_socket ? (opt->socket_mode & 0700) :
	    opt->socket_mode;
	old_mask = umask(~bind_mode & 0777);
	r = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old_mask);
	if (r < 0) {
		ph_error_set(err, "bind(%s) failed: %s", path,
			     strerror(errno));
		close(fd);
		return -1;
	}
	if (lstat(path, &st) < 0) {
		ph_error_set(err, "lstat(%s) failed: %s", path,
			     strerror(errno));
		goto fail;
	}
	if (!S_ISSOCK(st.st_mode)) {
		ph_error_set(err, "%s was replaced after bind", path);
		goto fail;
	}
	l->dev = st.st_dev;
	l->ino = st.st_ino;
	l->unix_path = ph_xstrdup(path);
	if (ph_listen_secure_socket(path, l->dev, l->ino, opt, err) < 0)
		goto fail;
	if (listen(fd, SOMAXCONN) < 0) {
		ph_error_set(err, "listen(%s) failed: %s", path,
			     strerror(errno));
		goto fail;
	}
	l->fd = fd;
	l->display = ph_xasprintf("unix:%s", path);
	return 0;
fail:
	l->fd = fd;
	ph_listen_close(l);
	return -1;
}

/* TCP. */

/* Split "host:port", "[v6]:port" or "*:port" into host (NULL for "*")
 * and port, in buf. */
static int
split_host_port(const char *addr, char *buf, size_t size, char **host_r,
		char **port_r, struct ph_error *err)
{
	char *colon;

	if (strlen(addr) >= size)
		return ph_error_set(err, "%s: address too long", addr);
	memcpy(buf, addr, strlen(addr) + 1);
	if (buf[0] == '[') {
		char *end = strchr(buf, ']');

		if (end == NULL || end[1] != ':')
			return ph_error_set(err, "%s: expected [IPv6]:PORT",
					    addr);
		*end = '\0';
		*host_r = buf + 1;
		*port_r = end + 2;
	} else {
		colon = strrchr(buf, ':');
		if (colon == NULL || colon == buf)
			return ph_error_set(err, "%s: expected unix:PATH or "
					    "HOST:PORT", addr);
		if (memchr(buf, ':', (size_t)(colon - buf)) != NULL)
			return ph_error_set(err, "%s: write an IPv6 address "
					    "as [ADDRESS]:PORT", addr);
		*colon = '\0';
		*host_r = buf;
		*port_r = colon + 1;
	}
	if (strcmp(*host_r, "*") == 0)
		*host_r = NULL;
	return 0;
}

static int
open_tcp(const char *addr, struct ph_listener *l, struct ph_error *err)
{
	struct addrinfo hints, *res = NULL, *ai;
	char buf[300], *host = NULL, *port = NULL, name[NI_MAXHOST];
	char serv[NI_MAXSERV];
	uint64_t portnum;
	int fd = -1, r, one = 1, saved = 0;

	if (split_host_port(addr, buf, sizeof(buf), &host, &port, err) < 0)
		return -1;
	if (ph_parse_uint(port, 1, 65535, &portnum) < 0)
		return ph_error_set(err, "%s: the port must be a number from "
				    "1 to 65535", addr);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	r = getaddrinfo(host, port, &hints, &res);
	if (r != 0)
		return ph_error_set(err, "%s: %s", addr, gai_strerror(r));
	/* One socket: the first address that binds. */
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
			       sizeof(one)) == 0 &&
		    (ai->ai_family != AF_INET6 || host == NULL ||
		     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
				sizeof(one)) == 0) &&
		    bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, SOMAXCONN) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	if (fd < 0) {
		freeaddrinfo(res);
		return ph_error_set(err, "cannot listen on %s: %s", addr,
				    strerror(saved));
	}
	if (getnameinfo(ai->ai_addr, ai->ai_addrlen, name, sizeof(name),
			serv, sizeof(serv), NI_NUMERICHOST | NI_NUMERICSERV)
	    != 0)
		snprintf(name, sizeof(name), "%s", host ? host : "*");
	l->display = ai->ai_family == AF_INET6 ?
	    ph_xasprintf("[%s]:%s", name, port) :
	    ph_xasprintf("%s:%s", name, port);
	freeaddrinfo(res);
	l->fd = fd;
	return 0;
}

int
ph_listen_open(const char *addr, const struct ph_listen_options *opt,
	       struct ph_listener *l, struct ph_error *err)
{
	memset(l, 0, sizeof(*l));
	l->fd = -1;
	if (strncmp(addr, "unix:", 5) == 0)
		return open_unix(addr + 5, opt, l, err);
	return open_tcp(addr, l, err);
}

void
ph_listen_close(struct ph_listener *l)
{
	struct stat st;

	if (l->fd >= 0) {
		close(l->fd);
		l->fd = -1;
	}
	if (l->unix_path != NULL) {
		/* A newer instance may have replaced the file meanwhile. */
		if (lstat(l->unix_path, &st) == 0 && st.st_dev == l->dev &&
		    st.st_ino == l->ino && unlink(l->unix_path) < 0)
			ph_log_warn("unlink(%s) failed: %s", l->unix_path,
				    strerror(errno));
		ph_free(&l->unix_path);
	}
	ph_free(&l->display);
}

/* The supervisor. */

struct worker {
	pid_t pid;		/* 0: not running */
	bool replacing;		/* asked to stop by SIGHUP: restart at once */
	unsigned delay_ms;	/* the current restart delay */
	uint64_t started_us;
	uint64_t restart_at_us;
};

static void
on_sigchld(int sig)
{
	(void)sig;
}

static void
set_timeout(struct timespec *ts, uint64_t us)
{
	ts->tv_sec = (time_t)(us / 1000000);
	ts->tv_nsec = (long)(us % 1000000) * 1000;
}

static PH_NORETURN void
run_worker(struct ph_listener *l, ph_worker_fn *fn, void *arg,
	   const sigset_t *blocked, pid_t supervisor)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGCHLD, &sa, NULL);
#ifdef HAVE_SYS_PRCTL_H
	/* Never outlive the supervisor: a worker left behind would keep
	 * accepting on a socket nobody manages. Set after the privilege
	 * drop, which would clear it. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
	if (getppid() != supervisor)
		_exit(0);
	ph_signals_install();
	sigprocmask(SIG_UNBLOCK, blocked, NULL);
	exit(fn(l->fd, arg));
}

static void
spawn(struct worker *w, struct ph_listener *l, ph_worker_fn *fn, void *arg,
      const sigset_t *blocked)
{
	pid_t supervisor = getpid(), pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0)
		run_worker(l, fn, arg, blocked, supervisor);
	w->replacing = false;
	w->started_us = ph_now_monotonic_us();
	if (pid < 0) {
		ph_log_error("fork failed: %s; retrying in 1 s",
			     strerror(errno));
		w->restart_at_us = w->started_us + 1000000;
		return;
	}
	w->pid = pid;
}

static void
log_exit(pid_t pid, int status)
{
	if (WIFEXITED(status))
		ph_log_warn("worker %ld exited with status %d",
			    (long)pid, WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		ph_log_warn("worker %ld was killed by signal %d (%s)",
			    (long)pid, WTERMSIG(status),
			    strsignal(WTERMSIG(status)));
}

/* Collect every exited worker; returns how many are still running. */
static unsigned
reap(struct worker *w, unsigned n, bool stopping)
{
	uint64_t now = ph_now_monotonic_us();
	unsigned live = 0;
	pid_t pid;
	int status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct worker *x = NULL;

		for (unsigned i = 0; i < n; i++)
			if (w[i].pid == pid)
				x = &w[i];
		if (x == NULL)
			continue;
		x->pid = 0;
		if (stopping)
			continue;
		if (x->replacing) {
			x->delay_ms = 0;
		} else {
			log_exit(pid, status);
			if (now - x->started_us >= WORKER_YOUNG_US ||
			    x->delay_ms == 0)
				x->delay_ms = RESTART_DELAY_MIN_MS;
			else if (x->delay_ms < RESTART_DELAY_MAX_MS / 2)
				x->delay_ms *= 2;
			else
				x->delay_ms = RESTART_DELAY_MAX_MS;
		}
		x->restart_at_us = now + x->delay_ms * 1000ull;
	}
	for (unsigned i = 0; i < n; i++)
		if (w[i].pid != 0)
			live++;
	return live;
}

static void
signal_all(struct worker *w, unsigned n, int sig)
{
	for (unsigned i = 0; i < n; i++)
		if (w[i].pid != 0 && kill(w[i].pid, sig) < 0 && errno != ESRCH)
			ph_log_warn("kill(%ld, %d) failed: %s",
				    (long)w[i].pid, sig, strerror(errno));
}

/* Forward SIGTERM, wait for every worker, SIGKILL the ones that hang. */
static void
stop_workers(struct worker *w, unsigned n, const sigset_t *set)
{
	uint64_t deadline = ph_now_monotonic_us() + STOP_GRACE_US;
	bool killed = false;
	struct timespec ts;

	signal_all(w, n, SIGTERM);
	while (reap(w, n, true) > 0) {
		uint64_t now = ph_now_monotonic_us();

		if (now >= deadline) {
			if (killed)
				deadline = now + 1000000;
			else {
				ph_log_warn("workers still running after %llu "
					    "s: killing them",
					    STOP_GRACE_US / 1000000);
				signal_all(w, n, SIGKILL);
				killed = true;
				deadline = now + 5000000;
			}
			continue;
		}
		set_timeout(&ts, deadline - now);
		/* Further SIGTERMs just arrive here and are dropped. */
		sigtimedwait(set, NULL, &ts);
	}
}

int
ph_prefork_run(struct ph_listener *l, unsigned n, ph_worker_fn *fn,
	       void *arg)
{
	struct sigaction sa;
	sigset_t set;
	struct worker *w;
	struct timespec ts;
	bool stopping = false;

	if (n < 1 || n > PH_WORKERS_MAX || l->fd < 0) {
		ph_log_error("prefork: invalid arguments");
		return -1;
	}
	/* The supervisor handles its signals synchronously: they stay
	 * blocked and sigtimedwait() takes them one at a time. SIGCHLD gets
	 * a handler so that it is never discarded as ignored. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, NULL);
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_sigchld;
	sigaction(SIGCHLD, &sa, NULL);

	w = ph_xcalloc(n, sizeof(*w));
	ph_log_info("listening on %s with %u worker%s", l->display, n,
		    n == 1 ? "" : "s");
	while (!stopping) {
		uint64_t now = ph_now_monotonic_us(), next = UINT64_MAX;
		int sig;

		for (unsigned i = 0; i < n; i++) {
			if (w[i].pid != 0)
				continue;
			if (w[i].restart_at_us <= now)
				spawn(&w[i], l, fn, arg, &set);
			if (w[i].pid == 0 && w[i].restart_at_us < next)
				next = w[i].restart_at_us;
		}
		if (next != UINT64_MAX) {
			set_timeout(&ts, next > now ? next - now : 0);
			sig = sigtimedwait(&set, NULL, &ts);
		} else {
			sig = sigwaitinfo(&set, NULL);
		}
		switch (sig) {
		case SIGCHLD:
			reap(w, n, false);
			break;
		case SIGHUP:
			ph_log_info("SIGHUP: replacing the workers");
			for (unsigned i = 0; i < n; i++)
				if (w[i].pid != 0)
					w[i].replacing = true;
			signal_all(w, n, SIGTERM);
			break;
		case SIGTERM:
		case SIGINT:
			stopping = true;
			break;
		default:	/* timeout or EINTR */
			break;
		}
	}
	ph_log_info("stopping");
	stop_workers(w, n, &set);
	free(w);
	ph_listen_close(l);
	return 0;
}
