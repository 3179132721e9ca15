/* test-transport.c - reading a body against a deadline and through
 * failures, HEAD answers, and the --listen socket's owner and mode.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"
#include "listen.h"
#include "request.h"

/* A stream over a pipe: reads with read(2), EINTR passed up as in CGI. */
static ssize_t
pipe_read(void *ctx, uint8_t *buf, size_t len)
{
	return read(*(int *)ctx, buf, len);
}

static int
discard_write(void *ctx, const void *buf, size_t len)
{
	(void)ctx;
	(void)buf;
	(void)len;
	return 0;
}

/* A child that writes len bytes of 'x' to fd, one every gap_ms, after
 * first sending sig (if non-zero) to its parent. Returns its pid. */
static pid_t
writer(int fd, size_t len, unsigned gap_ms, int sig)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	if (sig != 0) {
		usleep(100 * 1000);
		kill(getppid(), sig);
		usleep(100 * 1000);
	}
	for (size_t i = 0; i < len; i++) {
		if (gap_ms > 0)
			usleep(gap_ms * 1000);
		if (write(fd, "x", 1) != 1)
			_exit(1);
	}
	_exit(0);
}

static void
reap(pid_t pid)
{
	int status;

	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

static void
on_usr1(int sig)
{
	(void)sig;
}

/* Read a body of content_length bytes from a pipe fed by a writer child;
 * returns the status and the elapsed milliseconds in *ms. */
static int
read_from_child(const char *content_length, size_t send, unsigned gap_ms,
		int sig, unsigned timeout_s, uint64_t *ms, size_t *len)
{
	char clvar[64];
	char *env[] = { "REQUEST_METHOD=POST", clvar, NULL };
	struct ph_request req;
	struct ph_stream io = { pipe_read, discard_write, NULL };
	uint64_t t0;
	int p[2], status;
	pid_t pid;

	snprintf(clvar, sizeof(clvar), "CONTENT_LENGTH=%s", content_length);
	if (pipe(p) < 0)
		abort();
	io.ctx = &p[0];
	pid = writer(p[1], send, gap_ms, sig);
	close(p[1]);
	ph_request_init(&req, env, &io);
	req.read_timeout_s = timeout_s;
	t0 = ph_now_monotonic_us();
	status = ph_request_read_body(&req, 1000);
	*ms = (ph_now_monotonic_us() - t0) / 1000;
	*len = req.body_len;
	test_assert(status == 200 || req.body == NULL);
	ph_request_clear(&req);
	close(p[0]);
	reap(pid);
	return status;
}

static void
test_read_deadline(void)
{
	struct sigaction sa, old;
	struct itimerval it;
	uint64_t ms;
	size_t len;
	int status;

	test_begin("transport: the body read's deadline and failures");
	/* Whole body in time. */
	status = read_from_child("5", 5, 10, 0, 2, &ms, &len);
	test_assert(status == 200 && len == 5);
	/* Ends early: retryable, not the client's framing. */
	status = read_from_child("10", 4, 0, 0, 2, &ms, &len);
	test_assert(status == 503);
	/* A trickle of one byte per 100 ms, each read quick: the bound is
	 * on the whole body, so it is cut off after 1 s. */
	status = read_from_child("100", 100, 100, 0, 1, &ms, &len);
	test_assert(status == 408);
	test_assert(ms >= 1000 && ms < 1600);
	/* Nothing sent at all. */
	status = read_from_child("100", 0, 0, 0, 1, &ms, &len);
	test_assert(status == 503);	/* EOF: the writer exited */
	/* A stray signal interrupting the read is not the end of it. */
	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, &old);
	status = read_from_child("3", 3, 0, SIGUSR1, 2, &ms, &len);
	test_assert(status == 200 && len == 3);
	sigaction(SIGUSR1, &old, NULL);
	/* The timer is disarmed and SIGALRM's action restored. */
	getitimer(ITIMER_REAL, &it);
	test_assert(it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0);
	sigaction(SIGALRM, NULL, &sa);
	test_assert(sa.sa_handler == SIG_DFL);
	test_end();
}

/* An in-memory writer for answers. */
struct out_buf {
	char data[1024];
	size_t len;
};

static int
buf_write(void *ctx, const void *buf, size_t len)
{
	struct out_buf *o = ctx;

	if (len > sizeof(o->data) - o->len)
		return -1;
	memcpy(o->data + o->len, buf, len);
	o->len += len;
	return 0;
}

static void
test_head_answer(void)
{
	static const char body[] = "{\"error\":\"method not allowed\"}";
	static const char expect_head[] =
		"Status: 405 Method Not Allowed\r\nAllow: POST\r\n"
		"Content-Type: application/json\r\nContent-Length: 30\r\n\r\n";
	char *env_head[] = { "REQUEST_METHOD=HEAD", NULL };
	char *env_get[] = { "REQUEST_METHOD=GET", NULL };
	struct out_buf o;
	struct ph_stream io = { pipe_read, buf_write, &o };
	struct ph_request req;

	test_begin("transport: a HEAD answer has no body");
	memset(&o, 0, sizeof(o));
	ph_request_init(&req, env_head, &io);
	test_assert(ph_request_respond(&req, 405, "Allow: POST\r\n",
				       "application/json", body,
				       strlen(body)) == 0);
	test_assert(o.len == strlen(expect_head) &&
		    memcmp(o.data, expect_head, o.len) == 0);
	ph_request_clear(&req);

	memset(&o, 0, sizeof(o));
	ph_request_init(&req, env_get, &io);
	test_assert(ph_request_respond(&req, 405, "Allow: POST\r\n",
				       "application/json", body,
				       strlen(body)) == 0);
	test_assert(o.len == strlen(expect_head) + strlen(body) &&
		    memcmp(o.data + strlen(expect_head), body,
			   strlen(body)) == 0);
	ph_request_clear(&req);
	test_end();
}

/* Bind a unix socket at path (mode 0600) and return its identity. */
static int
bind_socket(const char *path, struct stat *st)
{
	struct sockaddr_un sun;
	mode_t old = umask(0177);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0)
		abort();
	umask(old);
	if (lstat(path, st) < 0)
		abort();
	return fd;
}

static void
test_socket_owner_mode(void)
{
	struct ph_listen_options opt = {
		.socket_mode = 0660, .chown_socket = true,
	};
	char dir[256], sock[300], victim[300], other[320];
	struct ph_listener l;
	struct ph_error err;
	struct stat st, vst;
	FILE *fp;
	int fd, fd2;

	test_begin("transport: --listen socket owner and mode, no symlinks");
	opt.socket_uid = getuid();
	opt.socket_gid = getgid();
	snprintf(dir, sizeof(dir), "%s/sock", test_tmpdir());
	snprintf(sock, sizeof(sock), "%s/s", dir);
	snprintf(victim, sizeof(victim), "%s/victim", dir);
	snprintf(other, sizeof(other), "%s/other", dir);
	test_assert(mkdir(dir, 0700) == 0);
	fp = fopen(victim, "w");
	test_assert(fp != NULL && fclose(fp) == 0);
	test_assert(chmod(victim, 0600) == 0);

	/* The socket we bound is still there: owner and mode are set. */
	fd = bind_socket(sock, &st);
	test_assert(ph_listen_secure_socket(sock, st.st_dev, st.st_ino, &opt,
					    &err) == 0);
	test_assert(lstat(sock, &st) == 0 && S_ISSOCK(st.st_mode) &&
		    (st.st_mode & 07777) == 0660);

	/* Between bind and chown a symlink to another file is planted at
	 * the path: it is refused, and the file it points to keeps its
	 * mode. */
	test_assert(unlink(sock) == 0);
	test_assert(symlink(victim, sock) == 0);
	test_assert(ph_listen_secure_socket(sock, st.st_dev, st.st_ino, &opt,
					    &err) == -1);
	test_assert(strstr(err.msg, "replaced after bind (now a symbolic "
			   "link)") != NULL);
	test_assert(stat(victim, &vst) == 0 && (vst.st_mode & 07777) == 0600);
	test_assert(lstat(sock, &vst) == 0 && S_ISLNK(vst.st_mode));
	test_assert(unlink(sock) == 0);
	close(fd);

	/* Another socket moved in: refused, its mode untouched. */
	fd = bind_socket(sock, &st);
	fd2 = bind_socket(other, &vst);
	test_assert(rename(other, sock) == 0);
	test_assert(ph_listen_secure_socket(sock, st.st_dev, st.st_ino, &opt,
					    &err) == -1);
	test_assert(strstr(err.msg, "another socket") != NULL);
	test_assert(lstat(sock, &vst) == 0 && (vst.st_mode & 07777) == 0600);
	test_assert(unlink(sock) == 0);
	close(fd);
	close(fd2);

	/* ph_listen_open: with no owner to set, the mode comes from bind. */
	opt.chown_socket = false;
	opt.socket_mode = 0640;
	snprintf(other, sizeof(other), "unix:%s", sock);
	test_assert(ph_listen_open(other, &opt, &l, &err) == 0);
	test_assert(lstat(sock, &st) == 0 && (st.st_mode & 07777) == 0640);
	ph_listen_close(&l);
	test_assert(lstat(sock, &st) == -1 && errno == ENOENT);
	opt.chown_socket = true;
	opt.socket_mode = 0666;
	test_assert(ph_listen_open(other, &opt, &l, &err) == 0);
	test_assert(lstat(sock, &st) == 0 && (st.st_mode & 07777) == 0666 &&
		    st.st_uid == getuid() && st.st_gid == getgid());
	ph_listen_close(&l);
	test_end();
}

void
test_transport(void)
{
	test_read_deadline();
	test_head_answer();
	test_socket_owner_mode();
}
