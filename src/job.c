/* job.c - run one command for one event (payhook drain's job runner).
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * See job.h. The child is forked from a process whose only thread is the
 * caller's, so it may call setenv() before execve().
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "job.h"

/* In the child: write a short message to the job's stderr and give up. */
static void PH_NORETURN
child_fail(const char *what)
{
	char msg[256];
	int n = snprintf(msg, sizeof(msg), "payhook drain: %s: %s\n", what,
			 strerror(errno));

	if (n > 0)
		(void)!write(2, msg, (size_t)n);
	_exit(127);
}

static void PH_NORETURN
child(const struct ph_job_spec *spec, int err_w)
{
	sigset_t empty;

	/* Its own process group, so a timeout kills its children too. The
	 * parent sets it as well: whichever runs first wins the race. */
	(void)setpgid(0, 0);
	if (dup2(err_w, 2) < 0)
		_exit(127);
	if (err_w != 2)
		close(err_w);
	if (dup2(spec->stdin_fd, 0) < 0)
		child_fail("cannot give the event as standard input");
	if (spec->stdin_fd != 0)
		close(spec->stdin_fd);
	if (lseek(0, 0, SEEK_SET) < 0 && errno != ESPIPE)
		child_fail("cannot rewind the event");
	for (const char *const *e = spec->env; e != NULL && *e != NULL; e++) {
		const char *eq = strchr(*e, '=');

		if (eq == NULL) {
			unsetenv(*e);
		} else {
			char *name = ph_xstrndup(*e, (size_t)(eq - *e));

			if (setenv(name, eq + 1, 1) < 0)
				child_fail("setenv");
			free(name);
		}
	}
	/* Dispositions a job expects: drain's are not its business. */
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)signal(sig, SIG_DFL);
	sigemptyset(&empty);
	sigprocmask(SIG_SETMASK, spec->mask != NULL ? spec->mask : &empty,
		    NULL);
	execl("/bin/sh", "sh", "-c", spec->command, (char *)NULL);
	child_fail("cannot run /bin/sh");
}

int
ph_job_start(struct ph_job *job, const struct ph_job_spec *spec,
	     unsigned number, struct ph_error *err)
{
	int fds[2];
	pid_t pid;

	memset(job, 0, sizeof(*job));
	job->err_fd = -1;
	if (pipe2(fds, O_CLOEXEC) < 0)
		return ph_error_set(err, "pipe failed: %s", strerror(errno));
	if (fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0) {
		ph_error_set(err, "fcntl(O_NONBLOCK) failed: %s",
			     strerror(errno));
		goto fail;
	}
	job->attempt.number = number;
	gettimeofday(&job->attempt.started, NULL);
	fflush(NULL);
	if ((pid = fork()) < 0) {
		ph_error_set(err, "fork failed: %s", strerror(errno));
		goto fail;
	}
	if (pid == 0)
		child(spec, fds[1]);
	(void)setpgid(pid, pid);	/* EACCES once it has exec'ed: fine */
	close(fds[1]);
	job->pid = pid;
	job->err_fd = fds[0];
	if (spec->timeout_ms > 0)
		job->deadline_us = ph_now_monotonic_us() +
		    spec->timeout_ms * 1000;
	return 0;
fail:
	close(fds[0]);
	close(fds[1]);
	return -1;
}

int
ph_job_stderr_fd(const struct ph_job *job)
{
	return job->err_fd;
}

/* Append to the ring buffer, keeping the last PH_JOB_TAIL_MAX bytes. */
static void
tail_add(struct ph_job *job, const char *p, size_t n)
{
	if (n >= PH_JOB_TAIL_MAX) {
		memcpy(job->tail, p + n - PH_JOB_TAIL_MAX, PH_JOB_TAIL_MAX);
		job->tail_start = 0;
		job->tail_len = PH_JOB_TAIL_MAX;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		size_t end = (job->tail_start + job->tail_len) %
		    PH_JOB_TAIL_MAX;

		job->tail[end] = p[i];
		if (job->tail_len < PH_JOB_TAIL_MAX)
			job->tail_len++;
		else
			job->tail_start = (job->tail_start + 1) %
			    PH_JOB_TAIL_MAX;
	}
}

void
ph_job_read_stderr(struct ph_job *job)
{
	char buf[8192];
	ssize_t n;

	while (job->err_fd >= 0) {
		n = read(job->err_fd, buf, sizeof(buf));
		if (n > 0) {
			tail_add(job, buf, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		close(job->err_fd);	/* end of file, or an error */
		job->err_fd = -1;
	}
}

uint64_t
ph_job_check_deadline(struct ph_job *job, uint64_t now_us)
{
	if (job->pid == 0 || job->deadline_us == 0)
		return 0;
	if (now_us < job->deadline_us)
		return job->deadline_us - now_us;
	if (!job->attempt.timed_out) {
		job->attempt.timed_out = true;
		(void)kill(-job->pid, SIGKILL);
	}
	return 0;
}

bool
ph_job_reap(struct ph_job *job)
{
	int status;
	pid_t r;

	if (job->pid == 0)
		return true;
	do
		r = waitpid(job->pid, &status, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return false;
	gettimeofday(&job->attempt.finished, NULL);
	if (r < 0) {			/* not our child: cannot happen */
		job->attempt.exit_status = -1;
		job->attempt.signal = SIGKILL;
	} else if (WIFSIGNALED(status)) {
		job->attempt.exit_status = -1;
		job->attempt.signal = WTERMSIG(status);
	} else {
		job->attempt.exit_status = WEXITSTATUS(status);
	}
	if (job->attempt.timed_out)	/* its group too, should it linger */
		(void)kill(-job->pid, SIGKILL);
	job->pid = 0;
	ph_job_read_stderr(job);
	if (job->err_fd >= 0) {
		close(job->err_fd);
		job->err_fd = -1;
	}
	return true;
}

size_t
ph_job_tail(const struct ph_job *job, char *out)
{
	size_t first = PH_JOB_TAIL_MAX - job->tail_start;

	if (first > job->tail_len)
		first = job->tail_len;
	memcpy(out, job->tail + job->tail_start, first);
	memcpy(out + first, job->tail, job->tail_len - first);
	return job->tail_len;
}
