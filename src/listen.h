/* listen.h - standalone mode: open a FastCGI socket, pre-fork workers.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * "payhook --listen ADDR" serves any FastCGI client (nginx, lighttpd,
 * Apache mod_proxy_fcgi) on a socket of its own: a supervisor opens the
 * socket, forks N workers that each accept on it, restarts a worker that
 * dies and stops them all on SIGTERM.
 */
#ifndef PH_LISTEN_H
#define PH_LISTEN_H

#include <stdbool.h>
#include <sys/types.h>

#include "util.h"

#define PH_LISTEN_DEFAULT_MODE 0660
#define PH_WORKERS_DEFAULT 4
#define PH_WORKERS_MAX 256

struct ph_listen_options {
	mode_t socket_mode;	/* unix socket: its mode after bind */
	bool chown_socket;	/* unix socket: chown to socket_uid/gid */
	uid_t socket_uid;
	gid_t socket_gid;
};

struct ph_listener {
	int fd;			/* blocking, close-on-exec; -1: closed */
	char *unix_path;	/* unix socket path, NULL for TCP */
	dev_t dev;		/* the socket file we created, so that */
	ino_t ino;		/* shutdown never removes someone else's */
	char *display;		/* the address for log lines */
};

/* Open a listening stream socket for addr:
 *   unix:PATH          a unix socket; a stale socket file at PATH (no
 *                      process accepting) is replaced, anything else at
 *                      PATH is an error. Bound under a umask that gives
 *                      socket_mode (only its owner bits if the owner is
 *                      to change), then ph_listen_secure_socket(), so no
 *                      other user can connect in between.
 *   HOST:PORT          TCP; HOST is a name, an IPv4 address, [IPv6] or *
 *                      (every address).
 * The socket is blocking (libfcgi's accept loop needs that) and
 * close-on-exec. Returns 0 or -1. */
int ph_listen_open(const char *addr, const struct ph_listen_options *opt,
		   struct ph_listener *l, struct ph_error *err)
	PH_NONNULL(1, 2, 3);

/* Give the socket file at path its final owner (if opt->chown_socket) and
 * mode, provided it is still the socket bound as (dev, ino). It is opened
 * with O_PATH | O_NOFOLLOW, checked, and changed through that descriptor
 * (fchownat AT_EMPTY_PATH; chmod of /proc/self/fd/N), never by name: a
 * symbolic link or another file planted at path after bind is refused,
 * never followed. Returns 0 or -1. */
int ph_listen_secure_socket(const char *path, dev_t dev, ino_t ino,
			    const struct ph_listen_options *opt,
			    struct ph_error *err) PH_NONNULL(1, 4);

/* Close the socket and remove the unix socket file if it is still the one
 * ph_listen_open created. Safe to call twice. */
void ph_listen_close(struct ph_listener *l);

/* What a worker runs: serve on fd until told to stop; the return value is
 * the worker's exit status. Called in the child with the stop signals'
 * handlers installed (ph_signals_install) and unblocked. */
typedef int ph_worker_fn(int fd, void *arg);

/* Supervise n workers (1..PH_WORKERS_MAX) running fn(l->fd, arg):
 * - a worker that exits or dies is logged and restarted, after a delay
 *   that grows from 100 ms to 5 s while workers keep dying young;
 * - SIGHUP replaces every worker (each finishes its request in hand, its
 *   successor re-reads the configuration);
 * - SIGTERM or SIGINT forwards SIGTERM to the workers, waits for them
 *   (SIGKILL after 30 s), closes the listener and returns 0.
 * Workers get SIGTERM if the supervisor dies (Linux PR_SET_PDEATHSIG).
 * Returns 0 after a clean stop, -1 if it could not run at all. */
int ph_prefork_run(struct ph_listener *l, unsigned n, ph_worker_fn *fn,
		   void *arg) PH_NONNULL(1, 3);

#endif
