/* dedup.c - exactly-once claims on event keys, in a Berkeley DB environment.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * Layout of state_dir: the environment's region files (__db.*), its
 * registry (__db.register), write-ahead logs (log.*), the btree dedup.db
 * and dedup.lock (see open_lock_file(), boot_check()). Every file is 0600,
 * the directory 0700.
 *
 * Each public operation runs under watched() (the watchdog: every stretch
 * of Berkeley DB calls is bounded in time) and is one or more short
 * transactions run by run_txn(), which retries lock conflicts and
 * timeouts a bounded number of times and, once per operation, reopens the
 * environment when it has been recovered or panicked under us
 * (DB_RUNRECOVERY).
 */
#include "config.h"

#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <db.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dedup.h"
#include "ids.h"
#include "log.h"

#define DB_FILE			"dedup.db"
#define LOCK_FILE		"dedup.lock"
#define REGISTRY_FILE		"__db.register"
#define BOOT_ID_PATH		"/proc/sys/kernel/random/boot_id"
#define BOOT_ID_LEN		36

/* Dedup keys start with a provider name; this one cannot collide. */
#define META_KEY		"\001payhook:last-purge"
#define META_KEY_LEN		(sizeof(META_KEY) - 1)

#define KEY_MAX			1024
#define ID_SIZE			(PH_ULID_LEN + 1)

#define DEFAULT_WAIT_MS		10000
#define DEFAULT_TIMEOUT_S	120
#define DEFAULT_RETENTION_D	30

/*
 * DB_REGISTER|DB_RECOVER: an opener that finds the registry slot of a dead
 * process panics the environment and recovers it; live processes then see
 * DB_RUNRECOVERY and reopen (run_txn). Not DB_FAILCHK, which would try
 * failchk first: in 5.3.28 its attach spins forever on a region mutex the
 * dead process held, where recovery takes no mutex at all. failchk is run
 * instead by live processes, on lock conflicts (see LOCK_WAIT_US).
 */
#define ENV_FLAGS	(DB_CREATE | DB_INIT_LOCK | DB_INIT_LOG | \
			 DB_INIT_MPOOL | DB_INIT_TXN | DB_REGISTER | \
			 DB_RECOVER)
#define LG_MAX			(1024 * 1024)
/* Approximate number of processes in the environment at once; slots of
 * dead processes are reclaimed (failchk needs the table). */
#define THREAD_COUNT		256
/*
 * Lock waits. Berkeley DB enforces lock timeouts only when some process
 * runs the deadlock detector, so a lone waiter behind a dead holder would
 * sleep forever. Our transactions therefore never wait (DB_TXN_NOWAIT):
 * a conflict aborts, backs off and retries, running failchk (which frees
 * locks and aborts transactions of dead processes) every FAILCHK_US of
 * conflict, and gives up after LOCK_WAIT_US. The environment's own timeouts
 * and detector still guard waits we do not control (DB->open).
 */
#define LOCK_WAIT_US		5000000
/* However little is left of the caller's deadline (ph_dedup_set_deadline),
 * an operation retries conflicts this long: a release after a commit that
 * ran out of time still gets its chance. */
#define LOCK_WAIT_MIN_US	500000
#define FAILCHK_US		500000
#define LOCK_TIMEOUT_US		1000000
#define TXN_TIMEOUT_US		5000000
/* How long recovery waits for the processes it panicked to notice. */
#define REG_TIMEOUT_US		100000
#define OPEN_ATTEMPTS		10	/* deadlocks in DB->open, recoveries */
/* How long to wait for dedup.lock: an opener waits for transactions to
 * end, a transaction for an open or recovery to end. */
#define LOCK_FILE_WAIT_MS	5000
#define LOCK_WAIT_TICK_MS	100
#define LOCK_FILE_PAUSE_MAX_US	20000
/*
 * The watchdog's default bound on one stretch of Berkeley DB calls (a
 * transaction, an open, a checkpoint, a close). Debian's libdb uses
 * process-shared mutexes that are not robust: a process killed while
 * holding one leaves every process that wants it asleep for ever, and the
 * exclusive dedup.lock that recovery needs with them. See watched().
 */
#define WATCHDOG_MS		10000
#define CKP_MIN			5

#define CLAIM_PAUSE_MIN_US	2000
#define CLAIM_PAUSE_MAX_US	50000

#define PURGE_INTERVAL_S	3600
#define PURGE_BATCH		100
#define PURGE_SCAN		1000
#define PURGE_SLICE_MS		100	/* default purge_slice_ms */

/* Record value, big-endian. Version 1, 51 bytes:
 *   0 version, 1 state, 2-3 zero, 4-7 owner pid, 8-15 time (s since the
 *   epoch, signed), 16-23 owner token, 24-50 event id (NUL padded).
 * Version 2, 59 bytes: version 1's fields, then 51-58 the owner's start
 * time (/proc/PID/stat field 22, clock ticks since boot; 0 unknown).
 * Pending records are written as version 2, done and meta records as
 * version 1, which the owner's start time does not concern and which
 * payhook 0.1.0 still reads during a rolling upgrade. Both decode. */
#define REC_V1			1
#define REC_V1_SIZE		51
#define REC_V2			2
#define REC_V2_SIZE		59
#define REC_MAX_SIZE		REC_V2_SIZE

/*
 * A pending claim whose owner is alive (same pid and start time) is taken
 * over only once it is LIVE_TAKEOVER_FACTOR times the claim timeout old
 * (20 minutes with the default 120 s): a stalled fsync or a clock step
 * must not let two processes spool one event, but a hung owner must not
 * hold its key for ever either.
 */
#define LIVE_TAKEOVER_FACTOR	10

enum rec_state {
	REC_PENDING = 1,
	REC_DONE = 2,
	REC_META = 3,		/* META_KEY only: time is the last purge */
};

struct rec {
	enum rec_state state;
	uint32_t pid;
	int64_t created;
	uint64_t token;
	uint64_t start;		/* owner's start time, 0 unknown */
	char id[ID_SIZE];
};

struct purge_ctx;
static void purge_end(struct ph_dedup *dd);

struct ph_dedup {
	char *dir;
	char *db_path;			/* for messages */
	struct ph_dedup_options opt;	/* defaults applied */
	DB_ENV *env;			/* NULL after a failed reopen */
	DB *db;
	DB_ENV *opening;		/* env_open_once()'s, while it runs */
	pid_t pid;			/* the opener: not fork-safe */
	uint64_t deadline_us;		/* ph_dedup_set_deadline(), 0: none */
	bool region_unmappable;		/* an open failed mapping a region */
	/* Random per handle: tells this handle's pending records from those
	 * of an earlier process that had the same pid. */
	uint64_t token;
	uint64_t start;			/* the opener's start time, 0 unknown */
	u_int32_t ckp_kbyte;
	/* dedup.lock, held shared for the length of each transaction and
	 * checkpoint. An opener holds it exclusive while DB_REGISTER may
	 * panic and recover the environment, so recovery never runs while
	 * another process is between txn_begin and the end of its commit:
	 * a commit that returned 0 is in the log recovery replays. */
	int opfd;
	/* The first commit since this handle's last flush, 0: none. */
	uint64_t unflushed_us;
	/* The newest log file whose name this handle has made durable. */
	unsigned long log_synced;
	/* A rebuild after a fresh start (dedup.h, rebuild): wanted by
	 * ph_dedup_open(); while it runs, dedup.lock held exclusive on
	 * rebuild_fd (so transactions take no share), and the boot id to
	 * record in it once the rebuild succeeded. */
	bool rebuild_wanted;
	int rebuild_fd;
	struct purge_ctx *purge;	/* a purge under way, owned; or NULL */
	char rebuild_boot_id[BOOT_ID_LEN + 1];
};

typedef int (*txn_fn)(struct ph_dedup *dd, DB_TXN *txn, void *arg,
		      const char **what_r);

static void
put_be(uint8_t *p, uint64_t v, unsigned n)
{
	while (n-- > 0) {
		p[n] = (uint8_t)(v & 0xff);
		v >>= 8;
	}
}

static uint64_t
get_be(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* Encode r into out (REC_MAX_SIZE bytes); returns the length used. */
static size_t
rec_encode(const struct rec *r, uint8_t *out)
{
	bool v2 = r->state == REC_PENDING;

	memset(out, 0, REC_MAX_SIZE);
	out[0] = v2 ? REC_V2 : REC_V1;
	out[1] = (uint8_t)r->state;
	put_be(out + 4, r->pid, 4);
	put_be(out + 8, (uint64_t)r->created, 8);
	put_be(out + 16, r->token, 8);
	memcpy(out + 24, r->id, ID_SIZE - 1);
	if (!v2)
		return REC_V1_SIZE;
	put_be(out + 51, r->start, 8);
	return REC_V2_SIZE;
}

/* Decode a record of any known version; false if it is none (corrupt, or
 * written by a later version of payhook). */
static bool
rec_decode(const DBT *d, struct rec *r)
{
	const uint8_t *p = d->data;

	if (d->size == REC_V1_SIZE && p[0] == REC_V1)
		r->start = 0;
	else if (d->size == REC_V2_SIZE && p[0] == REC_V2)
		r->start = get_be(p + 51, 8);
	else
		return false;
	if (p[1] != REC_PENDING && p[1] != REC_DONE && p[1] != REC_META)
		return false;
	r->state = p[1];
	r->pid = (uint32_t)get_be(p + 4, 4);
	r->created = (int64_t)get_be(p + 8, 8);
	r->token = get_be(p + 16, 8);
	memcpy(r->id, p + 24, ID_SIZE);
	return r->id[ID_SIZE - 1] == '\0';
}

static void
dbt_set(DBT *dbt, const void *data, size_t len)
{
	memset(dbt, 0, sizeof(*dbt));
	dbt->data = (void *)data;
	dbt->size = (u_int32_t)len;
}

/* Put a record of this handle (our pid and token) in the given state,
 * created at `created`, under key k. Returns the DB->put result. */
static int
put_own(struct ph_dedup *dd, DB_TXN *txn, DBT *k, enum rec_state state,
	int64_t created, const char **what_r)
{
	uint8_t buf[REC_MAX_SIZE];
	struct rec r;
	DBT d;

	memset(&r, 0, sizeof(r));
	r.state = state;
	r.pid = (uint32_t)dd->pid;
	r.created = created;
	r.token = dd->token;
	r.start = dd->start;
	dbt_set(&d, buf, rec_encode(&r, buf));
	*what_r = "DB->put";
	return dd->db->put(dd->db, txn, k, &d, 0);
}

static int64_t
now_s(void)
{
	return (int64_t)time(NULL);
}

static void
sleep_us(uint64_t us)
{
	struct timespec ts = {
		.tv_sec = (time_t)(us / 1000000),
		.tv_nsec = (long)(us % 1000000) * 1000,
	};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Pause before retrying a lock conflict: 250 us doubling to 8 ms, plus a
 * per-process term so two retrying processes do not collide in lockstep. */
static void
backoff(unsigned attempt)
{
	uint64_t us = 250u << (attempt < 5 ? attempt : 5);

	sleep_us(us + (uint64_t)(getpid() % 250));
}

static bool
pid_alive(pid_t pid)
{
	if (pid <= 0)
		return false;
	return kill(pid, 0) == 0 || errno == EPERM;
}

/*
 * Start time of process pid: field 22 of /proc/PID/stat, in clock ticks
 * since boot. With the pid it names one process for the life of the
 * system, where a pid alone may have been reused. Returns 0 when it
 * cannot be read (no /proc, hidepid, the process is gone).
 */
static uint64_t
proc_start_time(pid_t pid)
{
	char path[32], buf[1024];
	unsigned long long v;
	const char *p;
	ssize_t n;
	int fd, field;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	(void)close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* Field 2, the command name, is in parentheses and may hold spaces
	 * and parentheses itself: count from the last ')', which ends it. */
	if ((p = strrchr(buf, ')')) == NULL)
		return 0;
	for (field = 2; field < 22 && *p != '\0'; p++)
		if (*p == ' ')
			field++;
	if (field != 22 || sscanf(p, "%llu", &v) != 1)
		return 0;
	return (uint64_t)v;
}

/* Whether the process that wrote r still runs: its pid exists and, when
 * both are known, has the start time recorded (else the pid was reused). */
static bool
owner_alive(const struct rec *r)
{
	uint64_t start;

	if (!pid_alive((pid_t)r->pid))
		return false;
	if (r->start == 0 || (start = proc_start_time((pid_t)r->pid)) == 0)
		return true;
	return start == r->start;
}

/* This process's pid for bdb_thread_id(), which Berkeley DB calls about
 * twenty times per request: getpid() was a third of the system call time
 * of a duplicate delivery (strace -c). 0 until first asked, and again in
 * a forked child (pthread_atfork), which then asks anew. */
static pid_t thread_id_pid;

static void
thread_id_forget_pid(void)
{
	thread_id_pid = 0;
}

/* Once per process: forget the cached pid in forked children. */
static int
thread_id_watch_forks(void)
{
	static bool watching;

	if (!watching) {
		if (pthread_atfork(NULL, NULL, thread_id_forget_pid) != 0)
			return EAGAIN;
		watching = true;
	}
	return 0;
}

/* failchk: identify threads of control. The process is single-threaded. */
static void
bdb_thread_id(DB_ENV *env, pid_t *pid_r, db_threadid_t *tid_r)
{
	(void)env;
	if (pid_r != NULL) {
		if (thread_id_pid == 0)
			thread_id_pid = getpid();
		*pid_r = thread_id_pid;
	}
	if (tid_r != NULL)
		*tid_r = pthread_self();
}

static int
bdb_is_alive(DB_ENV *env, pid_t pid, db_threadid_t tid, u_int32_t flags)
{
	(void)env;
	(void)tid;
	(void)flags;
	return pid_alive(pid);
}

static void
bdb_errcall(const DB_ENV *env, const char *pfx, const char *msg)
{
	struct ph_dedup *dd = env->app_private;

	(void)pfx;
	ph_log_warn("Berkeley DB (%s): %s", dd != NULL ? dd->dir : "?", msg);
	/* The one sign that a region file cannot be mapped at all (see
	 * regions_rebuild()); an EINVAL alone could be something else. */
	if (dd != NULL && strncmp(msg, "BDB0126 mmap:", 13) == 0)
		dd->region_unmappable = true;
}

static void
bdb_msgcall(const DB_ENV *env, const char *msg)
{
	const struct ph_dedup *dd = env->app_private;

	ph_log_info("Berkeley DB (%s): %s", dd != NULL ? dd->dir : "?", msg);
}

/*
 * The watchdog. A process that waits for a mutex held by a dead process
 * waits for ever: the web server's request times out, the provider sees
 * no answer, and the worker is lost, while its share of dedup.lock keeps
 * every other process from opening the environment and recovering it.
 * So every stretch of Berkeley DB calls runs under a one-shot timer
 * (watchdog_ms, default WATCHDOG_MS). If it fires, or the stretch faults
 * with SIGBUS (a region page without a disk block behind it), the signal
 * handler siglongjmp()s out of Berkeley DB to watched(), which fails the
 * operation; the process is wedged from then on: its environment handle
 * may hold mutexes or be half-way through an update, so it never calls
 * into Berkeley DB again (not even to close), answers 503 for the request
 * in hand, and exits (responder.c). Its registration then looks dead, the
 * next process to open the environment recovers it (DB_REGISTER), and the
 * supervisor (the web server, payhook --listen) starts a fresh worker.
 *
 * The timer is a POSIX timer of its own on CLOCK_MONOTONIC, signalling
 * WATCHDOG_SIGNAL, so that alarm() and SIGALRM stay free for others. The
 * state is per process (a forked child starts without the timer), and the
 * process is single-threaded.
 */
#define WATCHDOG_SIGNAL		SIGRTMIN

static struct {
	pid_t pid;			/* the process the timer belongs to */
	timer_t timer;
	sigjmp_buf jump;		/* set by watched() */
	bool in_watched;		/* jump is valid */
	volatile sig_atomic_t armed;	/* a stretch is running */
	volatile sig_atomic_t fired;	/* the signal that ended it */
	volatile sig_atomic_t lock_wait; /* ticks for flock_wait() */
	sigset_t saved_mask;		/* restored by watch_disarm() */
	bool wedged;			/* see above; never cleared */
} wd;

static void
watch_signal(int sig)
{
	struct sigaction sa;

	if (sig == WATCHDOG_SIGNAL && wd.lock_wait)
		return;		/* flock_wait(): interrupt its flock() */
	if (!wd.armed) {
		if (sig == SIGBUS) {
			/* Not ours: the default action, on return the
			 * faulting access repeats and the kernel kills. */
			memset(&sa, 0, sizeof(sa));
			sa.sa_handler = SIG_DFL;
			(void)sigaction(SIGBUS, &sa, NULL);
		}
		return;
	}
	wd.armed = 0;
	wd.fired = sig;
	siglongjmp(wd.jump, 1);
}

/* Install the handlers and create the timer, once per process. */
static int
watch_init(struct ph_error *err)
{
	struct sigevent sev;
	struct sigaction sa;

	if (wd.pid == getpid())
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = watch_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(WATCHDOG_SIGNAL, &sa, NULL) != 0 ||
	    sigaction(SIGBUS, &sa, NULL) != 0)
		return ph_error_set(err, "sigaction failed: %s",
				    strerror(errno));
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = WATCHDOG_SIGNAL;
	if (timer_create(CLOCK_MONOTONIC, &sev, &wd.timer) != 0)
		return ph_error_set(err, "timer_create failed: %s",
				    strerror(errno));
	wd.pid = getpid();
	return 0;
}

/* Start a stretch of Berkeley DB calls. Returns whether it armed the
 * timer (false inside another stretch, whose bound then holds). The two
 * signals are unblocked for the stretch: a caller that blocked them must
 * not turn the watchdog off. */
static bool
watch_arm(const struct ph_dedup *dd)
{
	struct itimerspec its;
	sigset_t set;

	if (wd.armed || !wd.in_watched || wd.pid != getpid())
		return false;
	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = (time_t)(dd->opt.watchdog_ms / 1000);
	its.it_value.tv_nsec = (long)(dd->opt.watchdog_ms % 1000) * 1000000;
	sigemptyset(&set);
	sigaddset(&set, WATCHDOG_SIGNAL);
	sigaddset(&set, SIGBUS);
	(void)sigprocmask(SIG_UNBLOCK, &set, &wd.saved_mask);
	wd.armed = 1;
	if (timer_settime(wd.timer, 0, &its, NULL) != 0) {
		ph_log_warn("timer_settime failed: %s", strerror(errno));
		wd.armed = 0;
		(void)sigprocmask(SIG_SETMASK, &wd.saved_mask, NULL);
		return false;
	}
	return true;
}

static void
watch_disarm(bool armed)
{
	struct itimerspec its;

	if (!armed)
		return;
	wd.armed = 0;
	memset(&its, 0, sizeof(its));
	(void)timer_settime(wd.timer, 0, &its, NULL);
	(void)sigprocmask(SIG_SETMASK, &wd.saved_mask, NULL);
}

typedef int (*watched_fn)(struct ph_dedup *dd, void *arg,
			  struct ph_error *err);

/*
 * Run fn(dd, arg, err), whose stretches of Berkeley DB calls are bounded
 * by watch_arm(). Returns what fn returned, or -1 with err set when the
 * process is wedged, now or before. Not reentrant: public functions use
 * it, and they do not call each other.
 */
static int
watched(struct ph_dedup *dd, watched_fn fn, void *arg, struct ph_error *err)
{
	int ret;

	if (wd.wedged)
		return ph_error_set(err, "the database is not used in this "
				    "process any more: an earlier call "
				    "overran or faulted");
	if (watch_init(err) != 0)
		return -1;
	if (sigsetjmp(wd.jump, 1) != 0) {
		struct itimerspec its;

		memset(&its, 0, sizeof(its));
		(void)timer_settime(wd.timer, 0, &its, NULL);
		wd.in_watched = false;
		wd.wedged = true;
		if (wd.fired == SIGBUS)
			ph_error_set(err, "a Berkeley DB call in %s faulted "
				     "(SIGBUS: a region file could not get "
				     "a disk block; is the file system "
				     "full?)", dd->dir);
		else
			ph_error_set(err, "a Berkeley DB call in %s overran "
				     "%u ms (a mutex held by a dead process, "
				     "or a stalled disk)", dd->dir,
				     dd->opt.watchdog_ms);
		ph_log_error("%s: this process stops using the database "
			     "and exits after its answer", err->msg);
		return -1;
	}
	wd.in_watched = true;
	ret = fn(dd, arg, err);
	wd.in_watched = false;
	return ret;
}

bool
ph_dedup_wedged(void)
{
	return wd.wedged;
}

static int
dir_prepare(const char *dir, struct ph_error *err)
{
	struct stat st;

	if (mkdir(dir, 0700) == 0)
		return 0;
	if (errno != EEXIST)
		return ph_error_set(err, "mkdir(%s) failed: %s", dir,
				    strerror(errno));
	if (stat(dir, &st) != 0)
		return ph_error_set(err, "stat(%s) failed: %s", dir,
				    strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return ph_error_set(err, "%s is not a directory", dir);
	return 0;
}

static bool
boot_id_read(char *out)
{
	char buf[BOOT_ID_LEN + 2];
	ssize_t n;
	int fd;

	if ((fd = open(BOOT_ID_PATH, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	n = read(fd, buf, sizeof(buf));
	(void)close(fd);
	if (n != BOOT_ID_LEN + 1 || buf[BOOT_ID_LEN] != '\n')
		return false;
	memcpy(out, buf, BOOT_ID_LEN + 1);
	return true;
}

static bool
boot_id_recorded(int fd, const char *boot_id)
{
	char buf[BOOT_ID_LEN + 2];

	return pread(fd, buf, sizeof(buf), 0) == BOOT_ID_LEN + 1 &&
	       memcmp(buf, boot_id, BOOT_ID_LEN + 1) == 0;
}

/*
 * The lock file, flock()ed: exclusively around DB_ENV->open, shared around
 * DB_ENV->close and around every transaction (op_lock()). DB_REGISTER has
 * a race of its own: an opener reads the registry slot of a process that
 * is closing, the closer empties the slot and drops its lock, the opener
 * then finds the slot unlocked, takes the closer for dead and recovers the
 * environment under everybody's feet. Opens are serialised by Berkeley DB
 * anyway; closes and transactions may overlap each other.
 *
 * open_lock_file() returns a new descriptor of it, unlocked;
 * lock_file_take() one locked with op (LOCK_EX or LOCK_SH). Both return -1
 * with err set on failure.
 */
static int
open_lock_file(struct ph_dedup *dd, struct ph_error *err)
{
	char *path = ph_xasprintf("%s/%s", dd->dir, LOCK_FILE);
	int fd;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		ph_error_set(err, "open(%s) failed: %s", path,
			     strerror(errno));
	free(path);
	return fd;
}

/*
 * flock(fd, op) waiting at most LOCK_FILE_WAIT_MS. flock(2) has no
 * timeout, and a blocked call would wait for ever behind a process that
 * is itself stuck. Polling with LOCK_NB would not do: an exclusive waiter
 * would rarely find a moment when no transaction holds a share. So the
 * call blocks, and the watchdog's timer interrupts it every
 * LOCK_WAIT_TICK_MS (watch_signal() only returns in this mode, and the
 * handler has no SA_RESTART) to look at the clock. Without the timer (no
 * watched() call running) it polls. Returns 0 or an errno value
 * (EWOULDBLOCK when the time ran out).
 */
static int
flock_wait(int fd, int op)
{
	uint64_t deadline = ph_now_monotonic_us() +
			    LOCK_FILE_WAIT_MS * 1000ull;
	uint64_t pause = 1000, now;
	struct itimerspec its;
	sigset_t set, saved;
	bool ticking;
	int r;

	if (flock(fd, op | LOCK_NB) == 0)
		return 0;
	if (errno != EWOULDBLOCK && errno != EINTR)
		return errno;
	sigemptyset(&saved);
	ticking = wd.in_watched && !wd.armed && wd.pid == getpid();
	if (ticking) {
		memset(&its, 0, sizeof(its));
		its.it_value.tv_nsec = LOCK_WAIT_TICK_MS * 1000000L;
		its.it_interval = its.it_value;
		sigemptyset(&set);
		sigaddset(&set, WATCHDOG_SIGNAL);
		(void)sigprocmask(SIG_UNBLOCK, &set, &saved);
		wd.lock_wait = 1;
		ticking = timer_settime(wd.timer, 0, &its, NULL) == 0;
	}
	for (;;) {
		if (ticking)
			r = flock(fd, op) == 0 ? 0 : errno;
		else
			r = flock(fd, op | LOCK_NB) == 0 ? 0 : errno;
		if (r != 0 && r != EINTR && r != EWOULDBLOCK)
			break;
		if (r == 0)
			break;
		now = ph_now_monotonic_us();
		if (now >= deadline) {
			r = EWOULDBLOCK;
			break;
		}
		if (!ticking) {
			sleep_us(pause < deadline - now ? pause :
				 deadline - now);
			pause = pause * 2 < LOCK_FILE_PAUSE_MAX_US ?
				pause * 2 : LOCK_FILE_PAUSE_MAX_US;
		}
	}
	if (wd.lock_wait) {
		memset(&its, 0, sizeof(its));
		(void)timer_settime(wd.timer, 0, &its, NULL);
		wd.lock_wait = 0;
		(void)sigprocmask(SIG_SETMASK, &saved, NULL);
	}
	return r;
}

static int
lock_file_take(struct ph_dedup *dd, int op, struct ph_error *err)
{
	int fd, r;

	if ((fd = open_lock_file(dd, err)) < 0)
		return -1;
	if ((r = flock_wait(fd, op)) != 0) {
		if (r == EWOULDBLOCK)
			ph_error_set(err, "%s/%s still locked by another "
				     "process after %u ms", dd->dir, LOCK_FILE,
				     LOCK_FILE_WAIT_MS);
		else
			ph_error_set(err, "flock(%s/%s) failed: %s", dd->dir,
				     LOCK_FILE, strerror(r));
		(void)close(fd);
		fd = -1;
	}
	return fd;
}

/*
 * DB_REGISTER runs recovery only when a registered process died. Region
 * files are ordinary files and survive a reboot; after a power cut their
 * contents (cached pages, mutexes) may be torn although no process was
 * registered, and pages of durable commits may never have reached
 * dedup.db. So the first open after each boot removes the registry, which
 * makes DB_ENV->open run recovery from the logs, and records the boot id
 * in the lock file once the open succeeded. Called with the lock held.
 */
static int
boot_check(struct ph_dedup *dd, int lockfd, char *boot_id, bool *fresh_r,
	   struct ph_error *err)
{
	char *reg;

	*fresh_r = false;
	if (!boot_id_read(boot_id) || boot_id_recorded(lockfd, boot_id))
		return 0;	/* no boot id: rely on DB_REGISTER alone */
	reg = ph_xasprintf("%s/%s", dd->dir, REGISTRY_FILE);
	if (unlink(reg) != 0 && errno != ENOENT) {
		ph_error_set(err, "unlink(%s) failed: %s", reg,
			     strerror(errno));
		free(reg);
		return -1;
	}
	free(reg);
	*fresh_r = true;
	return 0;
}

static void
boot_mark(struct ph_dedup *dd, int lockfd, const char *boot_id)
{
	/* Not synced: if the mark is lost, the next open recovers again. */
	if (pwrite(lockfd, boot_id, BOOT_ID_LEN + 1, 0) != BOOT_ID_LEN + 1 ||
	    ftruncate(lockfd, BOOT_ID_LEN + 1) != 0)
		ph_log_warn("write(%s/%s) failed: %s", dd->dir, LOCK_FILE,
			    strerror(errno));
}

/*
 * The region files (__db.001 ...) are mmapped. Where a page of one has no
 * disk block behind it (a sparse file), the first write to that page needs
 * a block, and on a full file system the kernel answers with SIGBUS, not
 * an error: the process dies without a word. DB_REGION_INIT (see
 * env_configure()) makes Berkeley DB write every byte of a region it
 * creates; this allocates the blocks of regions that exist already (left
 * sparse by an earlier payhook, or grown since). Called with the
 * environment open, before any transaction. A file system that cannot
 * fallocate (EOPNOTSUPP) is left to DB_REGION_INIT; ENOSPC is an error,
 * so that the caller answers 503 instead of risking the fault.
 */
static int
regions_allocate(struct ph_dedup *dd, struct ph_error *err)
{
	struct dirent *de;
	struct stat st;
	unsigned n;
	char c;
	DIR *dir;
	int fd, r, rc = 0;

	if ((dir = opendir(dd->dir)) == NULL)
		return ph_error_set(err, "opendir(%s) failed: %s", dd->dir,
				    strerror(errno));
	while (rc == 0 && (de = readdir(dir)) != NULL) {
		if (sscanf(de->d_name, "__db.%3u%c", &n, &c) != 1 ||
		    strlen(de->d_name) != 8)
			continue;
		fd = openat(dirfd(dir), de->d_name,
			    O_RDWR | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			continue;	/* removed by a recovery meanwhile */
		/* Blocks for every byte already (the usual case, and every
		 * CGI request opens): nothing to do, and no inode update. */
		r = fstat(fd, &st) != 0 ? errno :
		    S_ISREG(st.st_mode) && st.st_size > 0 &&
		    (uint64_t)st.st_blocks * 512 < (uint64_t)st.st_size ?
		    posix_fallocate(fd, 0, st.st_size) : 0;
		(void)close(fd);
		if (r != 0 && r != EOPNOTSUPP && r != EINVAL)
			rc = ph_error_set(err, "allocating %s/%s failed: %s",
					  dd->dir, de->d_name, strerror(r));
	}
	(void)closedir(dir);
	return rc;
}

static int
env_configure(struct ph_dedup *dd, DB_ENV *env, struct ph_error *err)
{
	const char *what;
	int ret;

	env->app_private = dd;
	env->set_errcall(env, bdb_errcall);
	env->set_msgcall(env, bdb_msgcall);
	if ((ret = env->set_thread_count(env, THREAD_COUNT)) != 0)
		what = "set_thread_count";
	else if ((ret = thread_id_watch_forks()) != 0)
		what = "pthread_atfork";
	else if ((ret = env->set_thread_id(env, bdb_thread_id)) != 0)
		what = "set_thread_id";
	else if ((ret = env->set_isalive(env, bdb_is_alive)) != 0)
		what = "set_isalive";
	else if ((ret = env->set_lk_detect(env, DB_LOCK_DEFAULT)) != 0)
		what = "set_lk_detect";
	else if ((ret = env->set_timeout(env, LOCK_TIMEOUT_US,
					 DB_SET_LOCK_TIMEOUT)) != 0)
		what = "set_timeout(lock)";
	else if ((ret = env->set_timeout(env, TXN_TIMEOUT_US,
					 DB_SET_TXN_TIMEOUT)) != 0)
		what = "set_timeout(txn)";
	else if ((ret = env->set_timeout(env, REG_TIMEOUT_US,
					 DB_SET_REG_TIMEOUT)) != 0)
		what = "set_timeout(register)";
	/* Conflicts under DB_TXN_NOWAIT and timeouts answer
	 * DB_LOCK_NOTGRANTED rather than DB_LOCK_DEADLOCK. */
	else if ((ret = env->set_flags(env, DB_TIME_NOTGRANTED, 1)) != 0)
		what = "set_flags(DB_TIME_NOTGRANTED)";
	/* Regions fully written when created: see regions_allocate(). */
	else if ((ret = env->set_flags(env, DB_REGION_INIT, 1)) != 0)
		what = "set_flags(DB_REGION_INIT)";
	else if ((ret = env->set_lg_max(env, LG_MAX)) != 0)
		what = "set_lg_max";
	else if ((ret = env->log_set_config(env, DB_LOG_AUTO_REMOVE, 1)) != 0)
		what = "log_set_config(DB_LOG_AUTO_REMOVE)";
	else
		return 0;
	return ph_error_set(err, "DB_ENV->%s(%s) failed: %s", what, dd->dir,
			    db_strerror(ret));
}

static bool
retryable(int ret)
{
	return ret == DB_LOCK_DEADLOCK || ret == DB_LOCK_NOTGRANTED;
}

/* Returns 0, or a Berkeley DB error code with err set. */
static int
db_open(struct ph_dedup *dd, DB_ENV *env, DB **db_r, struct ph_error *err)
{
	DB *db;
	int ret;

	for (unsigned attempt = 1;; attempt++) {
		if ((ret = db_create(&db, env, 0)) != 0) {
			ph_error_set(err, "db_create(%s) failed: %s",
				     dd->db_path, db_strerror(ret));
			return ret;
		}
		ret = db->open(db, NULL, DB_FILE, NULL, DB_BTREE,
			       DB_CREATE | DB_AUTO_COMMIT, 0600);
		if (ret == 0) {
			*db_r = db;
			return 0;
		}
		(void)db->close(db, 0);
		if (!retryable(ret) || attempt >= OPEN_ATTEMPTS) {
			ph_error_set(err, "DB->open(%s) failed: %s",
				     dd->db_path, db_strerror(ret));
			return ret;
		}
		backoff(attempt);
	}
}

/* Panicked environment handles, which Berkeley DB cannot free. */
static DB_ENV *retired[64];
static size_t n_retired;

static void
env_close(struct ph_dedup *dd)
{
	struct ph_error err;
	bool armed;
	int lockfd;

	/* Durability comes from the log; dirty pages stay in the shared
	 * cache for the next checkpoint, so closing need not sync. */
	if (dd->db != NULL) {
		armed = watch_arm(dd);
		(void)dd->db->close(dd->db, DB_NOSYNC);
		watch_disarm(armed);
	}
	dd->db = NULL;
	if (dd->env == NULL)
		return;
	/* Without the lock the close is still right, only racier. */
	lockfd = lock_file_take(dd, LOCK_SH, &err);
	armed = watch_arm(dd);
	/* XXX A panicked environment cannot be freed: DB_ENV->close only
	 * closes its files and returns DB_RUNRECOVERY, leaving ~10 KiB and
	 * the old region mappings behind. Panics are rare (a process died
	 * inside the environment), so keep such handles on a list instead of
	 * dropping them: the memory stays accounted for, not leaked. */
	if (dd->env->close(dd->env, 0) == DB_RUNRECOVERY &&
	    n_retired < PH_N_ELEMENTS(retired))
		retired[n_retired++] = dd->env;
	watch_disarm(armed);
	dd->env = NULL;
	if (lockfd >= 0)
		(void)close(lockfd);
}

/*
 * A region file a process was killed while creating (with DB_REGION_INIT
 * it writes the whole region before the header that gives its size) reads
 * as a region of size 0: every later DB_ENV->open fails mapping it, with
 * EINVAL, recovery included, and the key space would answer 503 for ever.
 * No live process can have such a region open (it could not have joined
 * it; the sign is BDB0126, an mmap that failed, not any EINVAL, which a
 * live environment opened with other settings could give), and the caller
 * holds dedup.lock exclusively, so the region files
 * (not __db.register, the logs or the database) are removed and the
 * environment is recovered from the log, without DB_REGISTER so that
 * recovery runs whatever the registry says. Returns 0 or -1 with err.
 */
static int
regions_rebuild(struct ph_dedup *dd, struct ph_error *err)
{
	struct dirent *de;
	DB_ENV *env = NULL;
	unsigned n;
	char c;
	DIR *dir;
	int ret;

	ph_log_error("the Berkeley DB regions in %s cannot be mapped (left "
		     "half-made by a killed process): removing them and "
		     "recovering from the log", dd->dir);
	if ((dir = opendir(dd->dir)) == NULL)
		return ph_error_set(err, "opendir(%s) failed: %s", dd->dir,
				    strerror(errno));
	while ((de = readdir(dir)) != NULL) {
		if (sscanf(de->d_name, "__db.%3u%c", &n, &c) == 1 &&
		    strlen(de->d_name) == 8)
			(void)unlinkat(dirfd(dir), de->d_name, 0);
	}
	(void)closedir(dir);
	if ((ret = db_env_create(&env, 0)) != 0)
		return ph_error_set(err, "db_env_create(%s) failed: %s",
				    dd->dir, db_strerror(ret));
	if (env_configure(dd, env, err) != 0) {
		(void)env->close(env, 0);
		return -1;
	}
	ret = env->open(env, dd->dir, ENV_FLAGS & ~DB_REGISTER, 0600);
	(void)env->close(env, 0);
	if (ret != 0)
		return ph_error_set(err, "recovering %s failed: %s", dd->dir,
				    db_strerror(ret));
	return 0;
}

/* Returns 0, DB_RUNRECOVERY if the environment was recovered under us
 * while we opened it, or its regions were rebuilt (worth another try),
 * or -1; err set unless 0. */
static int
env_open_once(struct ph_dedup *dd, struct ph_error *err)
{
	char boot_id[BOOT_ID_LEN + 1];
	DB_ENV *env = NULL;
	DB *db = NULL;
	u_int32_t lg_max;
	bool fresh, armed;
	int ret, rc = -1, lockfd;

	if ((lockfd = lock_file_take(dd, LOCK_EX, err)) < 0)
		return -1;
	armed = watch_arm(dd);
	if (boot_check(dd, lockfd, boot_id, &fresh, err) != 0)
		goto out;
	if ((ret = db_env_create(&env, 0)) != 0) {
		ph_error_set(err, "db_env_create(%s) failed: %s", dd->dir,
			     db_strerror(ret));
		goto out;
	}
	if (env_configure(dd, env, err) != 0)
		goto out;
	dd->opening = env;		/* for ph_dedup_close() if wedged */
	dd->region_unmappable = false;
	if ((ret = env->open(env, dd->dir, ENV_FLAGS, 0600)) != 0) {
		ph_error_set(err, "DB_ENV->open(%s) failed: %s", dd->dir,
			     db_strerror(ret));
		if (ret == DB_RUNRECOVERY)
			rc = ret;
		if (ret == EINVAL && dd->region_unmappable) {
			(void)env->close(env, 0);
			env = NULL;
			if (regions_rebuild(dd, err) == 0)
				rc = DB_RUNRECOVERY;
		}
		goto out;
	}
	if (regions_allocate(dd, err) != 0)
		goto out;
	/* A fresh start that ph_dedup_open() will rebuild keeps the lock
	 * until the rebuild is done, and records the boot only then. */
	if (fresh && !dd->rebuild_wanted)
		boot_mark(dd, lockfd, boot_id);
	fresh = fresh && dd->rebuild_wanted;
	if (!fresh) {
		(void)close(lockfd);
		lockfd = -1;
	}
	if ((ret = db_open(dd, env, &db, err)) != 0) {
		if (ret == DB_RUNRECOVERY)
			rc = ret;
		goto out;
	}
	if (fresh) {
		dd->rebuild_fd = lockfd;
		memcpy(dd->rebuild_boot_id, boot_id, sizeof(boot_id));
		lockfd = -1;
	}
	if (env->get_lg_max(env, &lg_max) != 0)
		lg_max = LG_MAX;
	/* Checkpoint about twice per log file, so DB_LOG_AUTO_REMOVE can
	 * drop all but the last file or two. */
	dd->ckp_kbyte = lg_max / 2048 > 0 ? lg_max / 2048 : 1;
	dd->env = env;
	dd->db = db;
	env = NULL;
	rc = 0;
out:
	if (lockfd >= 0)
		(void)close(lockfd);	/* releases the flock */
	if (env != NULL)
		(void)env->close(env, 0);
	dd->opening = NULL;
	watch_disarm(armed);
	return rc;
}

static int
env_open(struct ph_dedup *dd, struct ph_error *err)
{
	mode_t omask;
	int ret;

	/* The mode argument covers most files, but __db.register is always
	 * created 0660 & ~umask, and the directory 0700 & ~umask. */
	omask = umask(077);
	if ((ret = dir_prepare(dd->dir, err)) == 0)
		for (unsigned attempt = 1;; attempt++) {
			ret = env_open_once(dd, err);
			if (ret != DB_RUNRECOVERY || attempt >= OPEN_ATTEMPTS)
				break;
		}
	umask(omask);
	return ret == 0 ? 0 : -1;
}

/* Take (LOCK_SH) or drop (LOCK_UN) this handle's share of dedup.lock.
 * Returns 0, or -1 with err set when the share could not be had within
 * LOCK_FILE_WAIT_MS (an open or recovery holds the lock that long: the
 * caller answers 503). Other failures only widen the race the lock
 * closes, so they are logged, not fatal. */
static int
op_lock(struct ph_dedup *dd, int op, struct ph_error *err)
{
	int r;

	/* During a rebuild this process holds the lock exclusive. */
	if (dd->opfd < 0 || dd->rebuild_fd >= 0)
		return 0;
	if (op == LOCK_UN) {
		while ((r = flock(dd->opfd, op)) != 0 && errno == EINTR)
			;
		r = r != 0 ? errno : 0;
	} else if ((r = flock_wait(dd->opfd, op)) == EWOULDBLOCK) {
		return ph_error_set(err, "%s/%s held exclusively by another "
				    "process for %u ms", dd->dir, LOCK_FILE,
				    LOCK_FILE_WAIT_MS);
	}
	if (r != 0)
		ph_log_warn("flock(%s/%s) failed: %s", dd->dir, LOCK_FILE,
			    strerror(r));
	return 0;
}

static void
checkpoint(struct ph_dedup *dd)
{
	int ret;

	struct ph_error err;
	bool armed;

	if (dd->env == NULL)
		return;
	if (op_lock(dd, LOCK_SH, &err) != 0) {
		ph_log_warn("checkpoint skipped: %s", err.msg);
		return;
	}
	armed = watch_arm(dd);
	ret = dd->env->txn_checkpoint(dd->env, dd->ckp_kbyte, CKP_MIN, 0);
	watch_disarm(armed);
	op_lock(dd, LOCK_UN, &err);
	if (ret != 0)
		ph_log_warn("DB_ENV->txn_checkpoint(%s) failed: %s", dd->dir,
			    db_strerror(ret));
}

/*
 * Run fn in a transaction and commit it with commit_flags. fn returns 0 or
 * an error code and names the call that failed in *what_r. Lock conflicts
 * are retried as described at LOCK_WAIT_US. DB_RUNRECOVERY (the
 * environment was recovered by another process, or panicked) closes and
 * reopens the environment, then retries, once per call. fn must therefore
 * be repeatable: it resets whatever it reports through arg.
 */
/* When a run of conflicts that began at first gives up: LOCK_WAIT_US
 * later, or at the caller's deadline if that is sooner, but never before
 * LOCK_WAIT_MIN_US. */
static uint64_t
conflict_limit(const struct ph_dedup *dd, uint64_t first)
{
	uint64_t limit = first + LOCK_WAIT_US;

	if (dd->deadline_us != 0 && dd->deadline_us < limit)
		limit = dd->deadline_us > first + LOCK_WAIT_MIN_US ?
			dd->deadline_us : first + LOCK_WAIT_MIN_US;
	return limit;
}

static int
run_txn(struct ph_dedup *dd, txn_fn fn, void *arg, u_int32_t commit_flags,
	struct ph_error *err)
{
	uint64_t first = 0, last_check = 0, now;
	bool reopened = false, armed;
	unsigned attempt = 0;
	const char *what;
	DB_TXN *txn;
	int ret;

	if (dd->env == NULL) {
		/* An earlier reopen failed: try again now. */
		if (env_open(dd, err) != 0)
			return -1;
		reopened = true;
	}
	for (;;) {
		what = "DB_ENV->txn_begin";
		if (op_lock(dd, LOCK_SH, err) != 0)
			return -1;
		armed = watch_arm(dd);
		ret = dd->env->txn_begin(dd->env, NULL, &txn, DB_TXN_NOWAIT);
		if (ret == 0) {
			ret = fn(dd, txn, arg, &what);
			if (ret == 0) {
				what = "DB_TXN->commit";
				ret = txn->commit(txn, commit_flags);
			} else
				(void)txn->abort(txn);
		}
		watch_disarm(armed);
		/* Unlocked from here: failchk and a reopen (which takes the
		 * lock exclusive) must not wait on our own share. */
		(void)op_lock(dd, LOCK_UN, err);
		if (ret == 0)
			return 0;
		if (retryable(ret)) {
			now = ph_now_monotonic_us();
			if (first == 0)
				first = last_check = now;
			if (now >= conflict_limit(dd, first))
				return ph_error_set(err, "%s(%s) failed: %s "
						    "for %llu ms", what,
						    dd->db_path,
						    db_strerror(ret),
						    (unsigned long long)
						    ((now - first) / 1000));
			ret = 0;
			if (now - last_check >= FAILCHK_US) {
				last_check = now;
				what = "DB_ENV->failchk";
				armed = watch_arm(dd);
				ret = dd->env->failchk(dd->env, 0);
				watch_disarm(armed);
			}
			if (ret == 0) {
				backoff(attempt++);
				continue;
			}
		}
		if (ret == DB_RUNRECOVERY && !reopened) {
			reopened = true;
			first = 0;
			env_close(dd);
			if (env_open(dd, err) != 0)
				return -1;
			continue;
		}
		return ph_error_set(err, "%s(%s) failed: %s", what,
				    dd->db_path, db_strerror(ret));
	}
}

static int
handle_check(const struct ph_dedup *dd, struct ph_error *err)
{
	if (getpid() != dd->pid)
		return ph_error_set(err, "dedup handle of process %ld used "
				    "in process %ld: open one per process",
				    (long)dd->pid, (long)getpid());
	return 0;
}

static int
key_check(const char *key, size_t *len_r, struct ph_error *err)
{
	size_t len = strlen(key);

	if (len == 0 || len > KEY_MAX)
		return ph_error_set(err, "dedup key of %zu bytes: must be "
				    "1 to %u", len, KEY_MAX);
	if (key[0] == META_KEY[0])
		return ph_error_set(err, "dedup key starts with a reserved "
				    "byte");
	*len_r = len;
	return 0;
}

static bool
is_meta_key(const DBT *k)
{
	return k->size == META_KEY_LEN &&
	       memcmp(k->data, META_KEY, META_KEY_LEN) == 0;
}

static int
open_body(struct ph_dedup *dd, void *arg, struct ph_error *err)
{
	(void)arg;
	return env_open(dd, err);
}

static int
close_body(struct ph_dedup *dd, void *arg, struct ph_error *err)
{
	(void)arg;
	(void)err;
	env_close(dd);
	return 0;
}

/*
 * After a fresh start (env_open_once() left dd->rebuild_fd locked): put
 * back what the spool holds (dedup.h, rebuild), flush, record the boot in
 * the lock file and let the other processes in. On failure nothing is
 * recorded, so the next opener recovers and rebuilds again. Returns 0 or
 * -1 with err.
 */
static int
rebuild(struct ph_dedup *dd, struct ph_error *err)
{
	int ret;

	if (dd->rebuild_fd < 0)
		return 0;
	/* The callback logs what it put back (nothing for an empty spool:
	 * a new installation's first request keeps its one log line). */
	ret = dd->opt.rebuild(dd, dd->opt.rebuild_arg, err);
	if (ret == 0)
		ret = ph_dedup_flush(dd, err);
	if (ret == 0)
		boot_mark(dd, dd->rebuild_fd, dd->rebuild_boot_id);
	(void)close(dd->rebuild_fd);
	dd->rebuild_fd = -1;
	return ret >= 0 ? 0 : -1;
}

struct ph_dedup *
ph_dedup_open(const char *state_dir, const struct ph_dedup_options *opt,
	      struct ph_error *err)
{
	struct ph_dedup *dd;

	dd = ph_xcalloc(1, sizeof(*dd));
	dd->dir = ph_xstrdup(state_dir);
	dd->db_path = ph_xasprintf("%s/%s", state_dir, DB_FILE);
	dd->opt = *opt;
	if (dd->opt.claim_wait_ms == 0)
		dd->opt.claim_wait_ms = DEFAULT_WAIT_MS;
	if (dd->opt.claim_timeout_s == 0)
		dd->opt.claim_timeout_s = DEFAULT_TIMEOUT_S;
	if (dd->opt.retention_days == 0)
		dd->opt.retention_days = DEFAULT_RETENTION_D;
	if (dd->opt.watchdog_ms == 0)
		dd->opt.watchdog_ms = WATCHDOG_MS;
	if (dd->opt.purge_slice_ms == 0)
		dd->opt.purge_slice_ms = PURGE_SLICE_MS;
	dd->pid = getpid();
	dd->start = proc_start_time(dd->pid);
	dd->opfd = -1;
	dd->rebuild_fd = -1;
	dd->rebuild_wanted = opt->rebuild != NULL;
	if (ph_random(&dd->token, sizeof(dd->token)) != 0) {
		ph_error_set(err, "getrandom failed: %s", strerror(errno));
		ph_dedup_close(&dd);
		return NULL;
	}
	if (watched(dd, open_body, NULL, err) != 0) {
		ph_dedup_close(&dd);
		return NULL;
	}
	/* Reopens after a recovery by another process rebuild nothing: only
	 * the first open after a boot can have lost records. */
	dd->rebuild_wanted = false;
	/* Its own open file description: flock(2) locks belong to one, so
	 * this share is independent of the exclusive lock env_open takes. */
	dd->opfd = open_lock_file(dd, err);
	if (dd->opfd < 0 || rebuild(dd, err) != 0) {
		ph_dedup_close(&dd);
		return NULL;
	}
	return dd;
}

void
ph_dedup_close(struct ph_dedup **ddp)
{
	struct ph_dedup *dd = *ddp;
	struct ph_error err;

	if (dd == NULL)
		return;
	/* First, or the close would wait for a share of our own lock. */
	if (dd->rebuild_fd >= 0) {
		(void)close(dd->rebuild_fd);
		dd->rebuild_fd = -1;
	}
	/* In a forked child the environment is the parent's registration:
	 * closing it here would unregister the parent. A wedged process
	 * (see watched()) leaves it to the exit. */
	if (getpid() == dd->pid && !wd.wedged)
		(void)watched(dd, close_body, NULL, &err);
	/* A wedged process must not touch its handles, not even to free
	 * them: keep them reachable, like panicked ones, until the exit. */
	if (dd->env != NULL && n_retired < PH_N_ELEMENTS(retired))
		retired[n_retired++] = dd->env;
	if (dd->opening != NULL && n_retired < PH_N_ELEMENTS(retired))
		retired[n_retired++] = dd->opening;
	if (dd->opfd >= 0)
		(void)close(dd->opfd);
	purge_end(dd);
	free(dd->dir);
	free(dd->db_path);
	free(dd);
	*ddp = NULL;
}

enum claim_outcome {
	CLAIM_OWNED,
	CLAIM_DUPLICATE,
	CLAIM_WAIT,		/* pending under another live process */
};

struct claim_ctx {
	const char *key;
	size_t key_len;
	int64_t now;
	unsigned timeout_s;
	enum claim_outcome outcome;
	uint32_t owner;
	char id[ID_SIZE];
};

static void
log_key_takeover_unreadable(const struct ph_dedup *dd, const char *key,
			    const DBT *d)
{
	char key_s[200];

	ph_log_error("dedup record of key %s in %s is unreadable (%u bytes, "
		     "version %u): corrupt, or written by a later payhook; "
		     "taking it over", ph_log_sanitize(key, key_s,
		     sizeof(key_s)), dd->db_path, (unsigned)d->size,
		     d->size > 0 ? ((const uint8_t *)d->data)[0] : 0u);
}

/*
 * Whether the pending record r of another process may be taken over. A
 * dead owner's may, at once. A live owner's (a stalled disk, a clock step)
 * only when its age, either way, reaches LIVE_TAKEOVER_FACTOR times the
 * claim timeout: then the owner is hung, and we say so loudly, because if
 * it wakes up the event may be spooled twice.
 */
static bool
pending_takeover(const struct claim_ctx *c, const struct rec *r)
{
	int64_t age = c->now - r->created;
	int64_t bound = (int64_t)c->timeout_s * LIVE_TAKEOVER_FACTOR;
	char key_s[200];

	if (!owner_alive(r))
		return true;
	if (age < bound && age > -bound)
		return false;
	ph_log_error("dedup key %s: taking over the claim of process %lu, "
		     "which is alive but has held it for %lld s (the bound is "
		     "%lld s): the event may be spooled twice",
		     ph_log_sanitize(c->key, key_s, sizeof(key_s)),
		     (unsigned long)r->pid, (long long)age, (long long)bound);
	return true;
}

static int
claim_txn(struct ph_dedup *dd, DB_TXN *txn, void *arg, const char **what_r)
{
	struct claim_ctx *c = arg;
	struct rec r;
	DBT k, d;
	int ret;

	dbt_set(&k, c->key, c->key_len);
	dbt_set(&d, NULL, 0);
	*what_r = "DB->get";
	/* DB_RMW: two claimers of one key serialise here instead of both
	 * reading "absent" and deadlocking on the upgrade. */
	ret = dd->db->get(dd->db, txn, &k, &d, DB_RMW);
	if (ret != 0 && ret != DB_NOTFOUND)
		return ret;
	if (ret == 0 && (!rec_decode(&d, &r) || r.state == REC_META)) {
		/* Answering 503 instead would hold the key for ever: every
		 * retry of the provider would find the same bytes. */
		log_key_takeover_unreadable(dd, c->key, &d);
	} else if (ret == 0) {
		if (r.state == REC_DONE) {
			c->outcome = CLAIM_DUPLICATE;
			memcpy(c->id, r.id, ID_SIZE);
			return 0;
		}
		c->owner = r.pid;
		/* A pending record of our own pid is never live: with our
		 * token it is a claim of an earlier request of this
		 * single-threaded process whose commit and release both
		 * failed; with another token it was left by a dead process
		 * of the same pid. Either way nobody will resolve it, and
		 * waiting would only turn every retry into a 503. */
		if (r.pid != (uint32_t)dd->pid &&
		    !pending_takeover(c, &r)) {
			c->outcome = CLAIM_WAIT;
			return 0;
		}
	}
	c->outcome = CLAIM_OWNED;
	return put_own(dd, txn, &k, REC_PENDING, c->now, what_r);
}

struct claim_call {
	const char *key;
	char *id_r;
};

static int
claim_body(struct ph_dedup *dd, void *arg, struct ph_error *err)
{
	const char *key = ((struct claim_call *)arg)->key;
	char *id_r = ((struct claim_call *)arg)->id_r;
	struct claim_ctx c;
	uint64_t deadline, now, pause = CLAIM_PAUSE_MIN_US;

	memset(&c, 0, sizeof(c));
	if (handle_check(dd, err) != 0 || key_check(key, &c.key_len, err) != 0)
		return PH_CLAIM_ERROR;
	c.key = key;
	c.timeout_s = dd->opt.claim_timeout_s;
	deadline = ph_now_monotonic_us() + (uint64_t)dd->opt.claim_wait_ms *
		   1000;
	if (dd->deadline_us != 0 && dd->deadline_us < deadline)
		deadline = dd->deadline_us;
	for (;;) {
		c.now = now_s();
		/* A lost pending record (power cut) is harmless: no sync. */
		if (run_txn(dd, claim_txn, &c, DB_TXN_WRITE_NOSYNC, err) != 0)
			return PH_CLAIM_ERROR;
		switch (c.outcome) {
		case CLAIM_OWNED:
			checkpoint(dd);
			return PH_CLAIM_OWNED;
		case CLAIM_DUPLICATE:
			if (id_r != NULL)
				memcpy(id_r, c.id, ID_SIZE);
			return PH_CLAIM_DUPLICATE;
		case CLAIM_WAIT:
			break;
		}
		now = ph_now_monotonic_us();
		if (now >= deadline) {
			ph_error_set(err, "dedup key still pending in process "
				     "%lu: gave up waiting", (unsigned long)c.owner);
			return PH_CLAIM_BUSY;
		}
		sleep_us(pause < deadline - now ? pause : deadline - now);
		pause = pause * 2 < CLAIM_PAUSE_MAX_US ? pause * 2 :
			CLAIM_PAUSE_MAX_US;
	}
}

void
ph_dedup_set_deadline(struct ph_dedup *dd, uint64_t until_us)
{
	dd->deadline_us = until_us;
}

enum ph_claim
ph_dedup_claim(struct ph_dedup *dd, const char *key, char *id_r,
	       struct ph_error *err)
{
	struct claim_call cc = { key, id_r };

	if (id_r != NULL)
		id_r[0] = '\0';
	/* claim_body() returns an enum ph_claim; PH_CLAIM_ERROR is -1,
	 * which is also what watched() returns for a wedged process. */
	return (enum ph_claim)watched(dd, claim_body, &cc, err);
}

struct write_ctx {
	const char *key;
	size_t key_len;
	struct rec rec;		/* what to store */
	bool only_if_not_done;	/* commit: keep an existing done record */
};

static int
commit_txn(struct ph_dedup *dd, DB_TXN *txn, void *arg, const char **what_r)
{
	struct write_ctx *w = arg;
	uint8_t buf[REC_MAX_SIZE];
	struct rec r;
	DBT k, d;
	int ret;

	dbt_set(&k, w->key, w->key_len);
	if (w->only_if_not_done) {
		dbt_set(&d, NULL, 0);
		*what_r = "DB->get";
		ret = dd->db->get(dd->db, txn, &k, &d, DB_RMW);
		if (ret != 0 && ret != DB_NOTFOUND)
			return ret;
		/* Recorded already (another process took over a claim we
		 * held too long, and committed): the event is recorded. */
		if (ret == 0 && rec_decode(&d, &r) && r.state == REC_DONE)
			return 0;
	}
	dbt_set(&d, buf, rec_encode(&w->rec, buf));
	*what_r = "DB->put";
	return dd->db->put(dd->db, txn, &k, &d, 0);
}

struct commit_call {
	const char *key, *id;
};

static int
commit_body(struct ph_dedup *dd, void *arg, struct ph_error *err)
{
	const char *key = ((struct commit_call *)arg)->key;
	const char *id = ((struct commit_call *)arg)->id;
	struct write_ctx w;
	size_t id_len = strlen(id);

	memset(&w, 0, sizeof(w));
	if (handle_check(dd, err) != 0 || key_check(key, &w.key_len, err) != 0)
		return -1;
	if (id_len >= ID_SIZE)
		return ph_error_set(err, "event id of %zu bytes: at most %d",
				    id_len, ID_SIZE - 1);
	w.key = key;
	w.only_if_not_done = true;
	w.rec.state = REC_DONE;
	w.rec.pid = (uint32_t)dd->pid;
	w.rec.created = now_s();
	w.rec.token = dd->token;
	memcpy(w.rec.id, id, id_len);
	/* Written, not flushed (dedup.h): the event file is durable, and
	 * the flush is shared with the commits that follow. */
	if (run_txn(dd, commit_txn, &w, DB_TXN_WRITE_NOSYNC, err) != 0)
		return -1;
	if (dd->unflushed_us == 0)
		dd->unflushed_us = ph_now_monotonic_us();
	checkpoint(dd);
	return 0;
}

int
ph_dedup_commit(struct ph_dedup *dd, const char *key, const char *id,
		struct ph_error *err)
{
	struct commit_call cc = { key, id };

	return watched(dd, commit_body, &cc, err);
}

/* Whether name is one of the environment's log files, "log." and ten
 * digits; its number in *n_r. */
static bool
log_file_name(const char *name, unsigned long *n_r)
{
	if (strncmp(name, "log.", 4) != 0 || strlen(name) != 14 ||
	    strspn(name + 4, "0123456789") != 10)
		return false;
	*n_r = strtoul(name + 4, NULL, 10);
	return true;
}

/*
 * The flush: fdatasync(2) of every log file in the directory, and of the
 * directory itself when a log file newer than this handle has seen is
 * there (its name must be durable too). Not DB_ENV->log_flush(): that
 * takes the log's flush mutex, which a process stopped or killed inside a
 * flush of its own holds (for ever: the mutexes are not robust), so every
 * worker would stop at its next flush, after its answer, and the requests
 * queued behind it would wait for the watchdog. A written commit is in
 * the log file's pages already (DB_TXN_WRITE_NOSYNC writes it out of
 * Berkeley DB's buffer at the commit); syncing the files makes it durable
 * without any of Berkeley DB's locks. With DB_LOG_AUTO_REMOVE there are
 * one to three files. Runs under the watchdog: a stalled disk is bounded
 * as ever.
 */
static int
log_files_sync(struct ph_dedup *dd, struct ph_error *err)
{
	unsigned long n, newest = 0;
	struct dirent *de;
	DIR *dir;
	bool armed;
	int fd, ret = 0;

	if ((dir = opendir(dd->dir)) == NULL)
		return ph_error_set(err, "opendir(%s) failed: %s", dd->dir,
				    strerror(errno));
	armed = watch_arm(dd);
	while (ret == 0 && (de = readdir(dir)) != NULL) {
		if (!log_file_name(de->d_name, &n))
			continue;
		fd = openat(dirfd(dir), de->d_name,
			    O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			if (errno != ENOENT)	/* removed: nothing to sync */
				ret = ph_error_set(err, "open(%s/%s) failed: "
						   "%s", dd->dir, de->d_name,
						   strerror(errno));
			continue;
		}
		if (fdatasync(fd) != 0)
			ret = ph_error_set(err, "fdatasync(%s/%s) failed: %s",
					   dd->dir, de->d_name,
					   strerror(errno));
		(void)close(fd);
		if (n > newest)
			newest = n;
	}
	if (ret == 0 && newest > dd->log_synced) {
		if (fsync(dirfd(dir)) != 0)
			ret = ph_error_set(err, "fsync(%s) failed: %s",
					   dd->dir, strerror(errno));
		else
			dd->log_synced = newest;
	}
	watch_disarm(armed);
	(void)closedir(dir);
	return ret;
}

static int
flush_body(struct ph_dedup *dd, void *arg, struct ph_error *err)
{
	(void)arg;
	if (handle_check(dd, err) != 0)
		return -1;
	if (log_files_sync(dd, err) != 0)
		return -1;
	dd->unflushed_us = 0;
	return 0;
}

int
ph_dedup_flush(struct ph_dedup *dd, struct ph_error *err)
{
	return watched(dd, flush_body, NULL, err);
}

uint64_t
ph_dedup_unflushed_since(const struct ph_dedup *dd)
{
	return dd->unflushed_us;
}

struct restore_call {
	const char *key, *id;
	int64_t created;
};

static int
restore_body(struct ph_dedup *dd, void *arg, struct ph_error *err)
{
	const struct restore_call *rc = arg;
	size_t id_len = strlen(rc->id);
	struct write_ctx w;

	memset(&w, 0, sizeof(w));
	if (handle_check(dd, err) != 0 ||
	    key_check(rc->key, &w.key_len, err) != 0)
		return -1;
	if (id_len >= ID_SIZE)
		return ph_error_set(err, "event id of %zu bytes: at most %d",
				    id_len, ID_SIZE - 1);
	w.key = rc->key;
	w.only_if_not_done = true;
	w.rec.state = REC_DONE;
	w.rec.pid = (uint32_t)dd->pid;
	w.rec.created = rc->created;
	w.rec.token = dd->token;
	memcpy(w.rec.id, rc->id, id_len);
	return run_txn(dd, commit_txn, &w, DB_TXN_WRITE_NOSYNC, err);
}

int
ph_dedup_restore(struct ph_dedup *dd, const char *key, const char *id,
		 int64_t created, struct ph_error *err)
{
	struct restore_call rc = { key, id, created };

	return watched(dd, restore_body, &rc, err);
}

struct put_raw_call {
	const char *key, *id;
	bool done;
	long pid;
	int64_t created;
};

static int
put_raw_body(struct ph_dedup *dd, void *arg, struct ph_error *err)
{
	const struct put_raw_call *pr = arg;
	const char *key = pr->key, *id = pr->id;
	struct write_ctx w;
	size_t id_len = strlen(id);

	memset(&w, 0, sizeof(w));
	if (handle_check(dd, err) != 0 || key_check(key, &w.key_len, err) != 0)
		return -1;
	if (id_len >= ID_SIZE)
		return ph_error_set(err, "event id too long");
	w.key = key;
	w.rec.state = pr->done ? REC_DONE : REC_PENDING;
	w.rec.pid = (uint32_t)pr->pid;
	w.rec.start = pr->done ? 0 : proc_start_time((pid_t)pr->pid);
	w.rec.created = pr->created;
	memcpy(w.rec.id, id, id_len);
	return run_txn(dd, commit_txn, &w, DB_TXN_WRITE_NOSYNC, err);
}

int
ph_dedup_put_raw(struct ph_dedup *dd, const char *key, bool done, long pid,
		 int64_t created, const char *id, struct ph_error *err)
{
	struct put_raw_call pr = { key, id, done, pid, created };

	return watched(dd, put_raw_body, &pr, err);
}

struct release_ctx {
	const char *key;
	size_t key_len;
};

static int
release_txn(struct ph_dedup *dd, DB_TXN *txn, void *arg, const char **what_r)
{
	struct release_ctx *rc = arg;
	struct rec r;
	DBT k, d;
	int ret;

	dbt_set(&k, rc->key, rc->key_len);
	dbt_set(&d, NULL, 0);
	*what_r = "DB->get";
	ret = dd->db->get(dd->db, txn, &k, &d, DB_RMW);
	if (ret == DB_NOTFOUND)
		return 0;
	if (ret != 0)
		return ret;
	/* Only our own pending claim: it may have been taken over. */
	if (!rec_decode(&d, &r) || r.state != REC_PENDING ||
	    r.pid != (uint32_t)dd->pid || r.token != dd->token)
		return 0;
	*what_r = "DB->del";
	return dd->db->del(dd->db, txn, &k, 0);
}

static int
release_body(struct ph_dedup *dd, void *arg, struct ph_error *err)
{
	const char *key = arg;
	struct release_ctx rc;

	if (handle_check(dd, err) != 0 || key_check(key, &rc.key_len, err) != 0)
		return -1;
	rc.key = key;
	return run_txn(dd, release_txn, &rc, DB_TXN_WRITE_NOSYNC, err);
}

int
ph_dedup_release(struct ph_dedup *dd, const char *key, struct ph_error *err)
{
	return watched(dd, release_body, (void *)key, err);
}

/*
 * A walk over the whole database in batches of short transactions (purge,
 * count), so that no transaction holds its locks for long and a conflict
 * repeats one batch, not the walk. Each batch resumes after pos, the last
 * key the previous batch saw; records written meanwhile behind pos are
 * not seen, which is fine for both users.
 */
struct scan {
	uint8_t *pos, *next;
	size_t pos_len, next_len, pos_cap, next_cap;
	bool at_end;		/* the last batch reached the end */
};

/* Position cur on the first record of this batch. */
static int
scan_first(struct scan *sc, DBC *cur, DBT *k, DBT *d, u_int32_t flags)
{
	int ret;

	sc->next_len = 0;
	sc->at_end = false;
	dbt_set(d, NULL, 0);
	if (sc->pos_len == 0) {
		dbt_set(k, NULL, 0);
		return cur->get(cur, k, d, DB_FIRST | flags);
	}
	dbt_set(k, sc->pos, sc->pos_len);
	ret = cur->get(cur, k, d, DB_SET_RANGE | flags);
	if (ret == 0 && k->size == sc->pos_len &&
	    memcmp(k->data, sc->pos, sc->pos_len) == 0)
		ret = cur->get(cur, k, d, DB_NEXT | flags);
	return ret;
}

/* Remember k as the batch's last key seen. */
static void
scan_note(struct scan *sc, const DBT *k)
{
	if (k->size > sc->next_cap) {
		sc->next = ph_xrealloc(sc->next, k->size);
		sc->next_cap = k->size;
	}
	memcpy(sc->next, k->data, k->size);
	sc->next_len = k->size;
}

/* After a committed batch: whether another one is needed. */
static bool
scan_advance(struct scan *sc)
{
	uint8_t *tmp = sc->pos;
	size_t tmp_cap = sc->pos_cap;

	sc->pos = sc->next;
	sc->pos_cap = sc->next_cap;
	sc->pos_len = sc->next_len;
	sc->next = tmp;
	sc->next_cap = tmp_cap;
	return !sc->at_end && sc->pos_len > 0;
}

static void
scan_free(struct scan *sc)
{
	free(sc->pos);
	free(sc->next);
}

struct purge_ctx {
	bool force;
	bool skip;		/* purged less than an hour ago */
	bool meta_written;	/* by an attempt of this call */
	int64_t now;
	int64_t done_cutoff;	/* delete done records created before */
	int64_t pending_cutoff;	/* pending ones of dead owners before */
	int64_t live_cutoff;	/* and pending ones of live owners before */
	struct scan scan;
	long batch_deleted;
	long total;		/* deleted so far by this purge */
};

static int
purge_meta_txn(struct ph_dedup *dd, DB_TXN *txn, void *arg,
	       const char **what_r)
{
	struct purge_ctx *pc = arg;
	struct rec r;
	DBT k, d;
	int ret;

	pc->skip = false;
	dbt_set(&k, META_KEY, META_KEY_LEN);
	dbt_set(&d, NULL, 0);
	*what_r = "DB->get";
	ret = dd->db->get(dd->db, txn, &k, &d, DB_RMW);
	if (ret != 0 && ret != DB_NOTFOUND)
		return ret;
	if (ret == 0 && !pc->force && !pc->meta_written &&
	    rec_decode(&d, &r) && r.state == REC_META &&
	    pc->now - r.created >= 0 &&
	    pc->now - r.created < PURGE_INTERVAL_S) {
		pc->skip = true;
		return 0;
	}
	pc->meta_written = true;
	return put_own(dd, txn, &k, REC_META, pc->now, what_r);
}

static bool
purge_wanted(const struct purge_ctx *pc, const DBT *k, const DBT *d)
{
	struct rec r;

	/* Leave alone what we cannot read: it is not ours to judge. */
	if (is_meta_key(k) || !rec_decode(d, &r))
		return false;
	if (r.state == REC_DONE)
		return r.created < pc->done_cutoff;
	/* The rule of pending_takeover(), and never a claim younger than
	 * the claim timeout: its owner may still be spooling. */
	if (r.state == REC_PENDING)
		return r.created < pc->live_cutoff ||
		       (r.created < pc->pending_cutoff && !owner_alive(&r));
	return false;
}

static int
purge_batch_txn(struct ph_dedup *dd, DB_TXN *txn, void *arg,
		const char **what_r)
{
	struct purge_ctx *pc = arg;
	unsigned scanned = 0;
	DBC *cur;
	DBT k, d;
	int ret, t_ret;

	pc->batch_deleted = 0;
	*what_r = "DB->cursor";
	if ((ret = dd->db->cursor(dd->db, txn, &cur, 0)) != 0)
		return ret;
	*what_r = "DBC->get";
	ret = scan_first(&pc->scan, cur, &k, &d, DB_RMW);
	while (ret == 0) {
		scanned++;
		scan_note(&pc->scan, &k);
		if (purge_wanted(pc, &k, &d)) {
			*what_r = "DBC->del";
			if ((ret = cur->del(cur, 0)) != 0)
				break;
			pc->batch_deleted++;
		}
		if (pc->batch_deleted >= PURGE_BATCH || scanned >= PURGE_SCAN)
			break;
		*what_r = "DBC->get";
		ret = cur->get(cur, &k, &d, DB_NEXT | DB_RMW);
	}
	if (ret == DB_NOTFOUND) {
		pc->scan.at_end = true;
		ret = 0;
	}
	if ((t_ret = cur->close(cur)) != 0 && ret == 0) {
		*what_r = "DBC->close";
		ret = t_ret;
	}
	return ret;
}

struct purge_call {
	bool force;
	long total;
};

static void
purge_end(struct ph_dedup *dd)
{
	if (dd->purge == NULL)
		return;
	scan_free(&dd->purge->scan);
	free(dd->purge);
	dd->purge = NULL;
}

static int
purge_body(struct ph_dedup *dd, void *arg, struct ph_error *err)
{
	struct purge_call *call = arg;
	uint64_t end_us = ph_now_monotonic_us() +
			  (uint64_t)dd->opt.purge_slice_ms * 1000;
	struct purge_ctx *pc;

	if (handle_check(dd, err) != 0)
		return -1;
	if (call->force)
		purge_end(dd);	/* starts over, and runs to the end */
	if (dd->purge == NULL) {
		pc = dd->purge = ph_xcalloc(1, sizeof(*pc));
		pc->force = call->force;
		pc->now = now_s();
		pc->done_cutoff = pc->now -
				  (int64_t)dd->opt.retention_days * 86400;
		pc->pending_cutoff = pc->now -
				     (int64_t)dd->opt.claim_timeout_s + 1;
		pc->live_cutoff = pc->now - (int64_t)dd->opt.claim_timeout_s *
				  LIVE_TAKEOVER_FACTOR + 1;
		/* Check and stamp in one transaction: one purger per hour. */
		if (run_txn(dd, purge_meta_txn, pc, DB_TXN_WRITE_NOSYNC,
			    err) != 0) {
			purge_end(dd);
			return -1;
		}
		if (pc->skip) {
			purge_end(dd);
			return 0;
		}
	}
	pc = dd->purge;
	/* Small transactions keep locks short; a lost delete is redone by
	 * the next purge, so none of them syncs. */
	do {
		if (run_txn(dd, purge_batch_txn, pc, DB_TXN_WRITE_NOSYNC,
			    err) != 0) {
			purge_end(dd);
			return -1;
		}
		pc->total += pc->batch_deleted;
		if (!scan_advance(&pc->scan)) {
			if (pc->total > 0)
				checkpoint(dd);
			call->total = pc->total;
			purge_end(dd);
			return 0;
		}
	} while (call->force || ph_now_monotonic_us() < end_us);
	return 0;
}

long
ph_dedup_purge(struct ph_dedup *dd, bool force, struct ph_error *err)
{
	struct purge_call call = { force, 0 };

	return watched(dd, purge_body, &call, err) != 0 ? -1 : call.total;
}

bool
ph_dedup_purging(const struct ph_dedup *dd)
{
	return dd->purge != NULL;
}

struct count_ctx {
	struct scan scan;
	long batch;		/* records this batch counted */
};

static int
count_batch_txn(struct ph_dedup *dd, DB_TXN *txn, void *arg,
		const char **what_r)
{
	struct count_ctx *cc = arg;
	unsigned scanned = 0;
	DBC *cur;
	DBT k, d;
	int ret, t_ret;

	cc->batch = 0;
	*what_r = "DB->cursor";
	/* Read committed: do not hold a read lock on every page. */
	if ((ret = dd->db->cursor(dd->db, txn, &cur, DB_READ_COMMITTED)) != 0)
		return ret;
	*what_r = "DBC->get";
	ret = scan_first(&cc->scan, cur, &k, &d, 0);
	while (ret == 0) {
		scan_note(&cc->scan, &k);
		if (!is_meta_key(&k))
			cc->batch++;
		if (++scanned >= PURGE_SCAN)
			break;
		ret = cur->get(cur, &k, &d, DB_NEXT);
	}
	if (ret == DB_NOTFOUND) {
		cc->scan.at_end = true;
		ret = 0;
	}
	if ((t_ret = cur->close(cur)) != 0 && ret == 0) {
		*what_r = "DBC->close";
		ret = t_ret;
	}
	return ret;
}

static int
count_body(struct ph_dedup *dd, void *arg, struct ph_error *err)
{
	long *n_r = arg;
	struct count_ctx cc;
	long n = 0;

	if (handle_check(dd, err) != 0)
		return -1;
	memset(&cc, 0, sizeof(cc));
	/* In batches, like the purge: one transaction over every record
	 * conflicted with the workers' writes and started over until it
	 * gave up, under load. */
	do {
		if (run_txn(dd, count_batch_txn, &cc, 0, err) != 0) {
			n = -1;
			break;
		}
		n += cc.batch;
	} while (scan_advance(&cc.scan));
	scan_free(&cc.scan);
	*n_r = n;
	return n < 0 ? -1 : 0;
}

long
ph_dedup_count(struct ph_dedup *dd, struct ph_error *err)
{
	long n = 0;

	return watched(dd, count_body, &n, err) != 0 ? -1 : n;
}
