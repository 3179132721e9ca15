/* job.c - run one command for one event (payhook drain's job runner).
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * See job.h.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "job.h"

extern char **environ;

/* The job's environment: ours, less the names spec->env sets or removes,
 * plus those it sets. The strings are borrowed; free the array only. */
static char **
job_environment(const char *const *set)
{
	size_t n_env = 0, n_set = 0, o = 0;
	char **envp;

	while (environ[n_env] != NULL)
		n_env++;
	while (set != NULL && set[n_set] != NULL)
		n_set++;
	envp = ph_xcalloc(n_env + n_set + 1, sizeof(*envp));
	for (size_t i = 0; i < n_env; i++) {
		size_t len = strcspn(environ[i], "=");
		bool replaced = false;

		for (size_t j = 0; j < n_set && !replaced; j++)
			replaced = strncmp(set[j], environ[i], len) == 0 &&
			    (set[j][len] == '=' || set[j][len] == '\0');
		if (!replaced)
			envp[o++] = environ[i];
	}
	for (size_t j = 0; j < n_set; j++)
		if (strchr(set[j], '=') != NULL)
			envp[o++] = (char *)set[j];
	return envp;
}

/* posix_spawn(3), not fork(): no copy of drain's page tables per job
 * (much cheaper, above all under a sanitizer's huge mappings). The job
 * gets its own process group, default signal dispositions, the given
 * mask, the event as fd 0 and the pipe as fd 2; every other descriptor
 * drain holds is close-on-exec. */
static int
spawn(const struct ph_job_spec *spec, int err_w, pid_t *pid_r,
      struct ph_error *err)
{
	char *argv[] = { "sh", "-c", (char *)spec->command, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t all, empty;
	char **envp;
	int ret;

	/* The offset is shared with the job: start it at the beginning
	 * (drain itself only ever reads the file with pread). */
	if (lseek(spec->stdin_fd, 0, SEEK_SET) < 0 && errno != ESPIPE)
		return ph_error_set(err, "lseek failed: %s", strerror(errno));
	sigfillset(&all);
	sigemptyset(&empty);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
				 POSIX_SPAWN_SETSIGMASK |
				 POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setsigmask(&attr, spec->mask != NULL ? spec->mask :
				   &empty);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, spec->stdin_fd, 0);
	posix_spawn_file_actions_adddup2(&fa, err_w, 2);
	envp = job_environment(spec->env);
	fflush(NULL);
	ret = posix_spawn(pid_r, "/bin/sh", &fa, &attr, argv, envp);
	free(envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (ret != 0)
		return ph_error_set(err, "cannot run /bin/sh: %s",
				    strerror(ret));
	return 0;
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
	if (spawn(spec, fds[1], &pid, err) < 0)
		goto fail;
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
