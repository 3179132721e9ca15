/* job.h - run one command for one event (payhook drain's job runner).
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * A job is "/bin/sh -c COMMAND" in a process group of its own, with the
 * event on standard input, some variables added to the environment, its
 * standard error read through a pipe (the last PH_JOB_TAIL_MAX bytes are
 * kept), and a deadline after which the whole group is killed (SIGKILL),
 * so that a grandchild cannot outlive a timed-out job. Standard output
 * is drain's own.
 *
 * The runner does not wait: the caller polls ph_job_stderr_fd(), calls
 * ph_job_read_stderr() when it is readable, ph_job_check_deadline() when
 * time passes and ph_job_reap() on SIGCHLD. It knows nothing of spools:
 * the caller gives the descriptor to read the event from.
 */
#ifndef PH_JOB_H
#define PH_JOB_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "retry.h"
#include "util.h"

#define PH_JOB_TAIL_MAX 4096

struct ph_job_spec {
	const char *command;		/* run by /bin/sh -c */
	/* Becomes the job's standard input, rewound to offset 0. The job
	 * shares its open file description (and so any flock(2) on it). */
	int stdin_fd;
	/* "NAME=value" strings added to (or replacing in) the environment;
	 * "NAME" alone removes NAME. NULL-terminated; may be NULL. */
	const char *const *env;
	uint64_t timeout_ms;		/* 0: none */
	/* The signal mask the job starts with (drain blocks the signals it
	 * reads from a signalfd); NULL: empty. */
	const sigset_t *mask;
};

struct ph_job {
	pid_t pid;			/* and process group; 0 once reaped */
	int err_fd;			/* stderr pipe, read end; -1: closed */
	uint64_t deadline_us;		/* monotonic; 0: none */
	struct ph_attempt attempt;	/* filled as the job runs and ends */
	char tail[PH_JOB_TAIL_MAX];	/* ring buffer of stderr */
	size_t tail_start, tail_len;
};

/* Start the job; number is the attempt's number (counted from 1).
 * Returns 0, or -1 with err filled (nothing runs then). */
int ph_job_start(struct ph_job *job, const struct ph_job_spec *spec,
		 unsigned number, struct ph_error *err) PH_NONNULL(1, 2);

/* The descriptor to poll for stderr output, or -1 when closed. */
int ph_job_stderr_fd(const struct ph_job *job) PH_NONNULL(1);

/* Read what the pipe holds now (non-blocking) into the tail; closes the
 * pipe at end of file. */
void ph_job_read_stderr(struct ph_job *job) PH_NONNULL(1);

/* If the deadline has passed (now_us, monotonic), kill the job's process
 * group and mark the attempt timed out. Returns the microseconds left, or
 * 0 when it has passed or there is none (see deadline_us). */
uint64_t ph_job_check_deadline(struct ph_job *job, uint64_t now_us)
	PH_NONNULL(1);

/* Reap the job if it has ended (waitpid WNOHANG): fills job->attempt's
 * finish time and outcome, reads the rest of its stderr that is already
 * there and closes the pipe (a grandchild keeping it open does not keep
 * the job alive). Returns true once ended. */
bool ph_job_reap(struct ph_job *job) PH_NONNULL(1);

/* The tail of stderr, in order, copied into out (PH_JOB_TAIL_MAX bytes).
 * Returns its length. */
size_t ph_job_tail(const struct ph_job *job, char *out) PH_NONNULL(1, 2);

#endif
