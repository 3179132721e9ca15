/* main.c - payhook: command line and transport selection.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "conf.h"
#include "dedup.h"
#include "drain.h"
#include "handler.h"
#include "listen.h"
#include "log.h"
#include "privdrop.h"
#include "quarantine.h"
#include "reindex.h"
#include "responder.h"
#include "ship.h"
#include "sign.h"
#include "status.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: payhook [--config PATH] [--allow-root]\n"
	    "           serve: FastCGI when fd 0 is a listening socket,\n"
	    "           else one CGI request\n"
	    "       payhook --listen unix:PATH|HOST:PORT [--workers N]\n"
	    "           [--user USER [--group GROUP]] [--socket-owner "
	    "USER[:GROUP]]\n"
	    "           [--socket-mode MODE] [--allow-root] [--config PATH]\n"
	    "       payhook --check-config [--config PATH]\n"
	    "       payhook --dedup-count [--config PATH]\n"
	    "       payhook --purge [--config PATH]\n"
	    "       payhook sign [--config PATH] ROUTE FILE [--url BASE]\n"
	    "       payhook quarantine list|show ID|purge [--config PATH]\n"
	    "       payhook status [--json | --prometheus] [--config PATH]\n"
	    "       payhook ship [--config PATH] [--once] [--delete-done] "
	    "[--give-up DURATION]\n"
	    "       payhook drain --exec CMD [--config PATH] [--spool DIR]\n"
	    "           [--jobs N] [--timeout D] [--retry-min D] "
	    "[--retry-max D]\n"
	    "           [--max-attempts N] [--no-ordered] [--once] "
	    "[--delete-done]\n"
	    "       payhook drain --retry-failed [ID...] [--config PATH] "
	    "[--spool DIR]\n"
	    "       payhook drain --nats --exec CMD [--config PATH] "
	    "[--timeout D]\n"
	    "           [--retry-min D] [--retry-max D] [--max-attempts N] "
	    "[--once]\n"
	    "       payhook --version\n"
	    "The configuration is --config, else $PAYHOOK_CONFIG, else %s.\n",
	    ph_config_locate(NULL));
}

/* Descriptors 0-2 must exist before we open anything, or a spool file
 * could become someone's stderr. */
static void
ensure_std_fds(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
			int n = open("/dev/null", O_RDWR);

			if (n < 0)
				abort();
			if (n != fd)
				close(n);
		}
	}
}

static int
check_config(const char *path)
{
	struct ph_faults faults = { 0 };
	struct ph_config *cfg = ph_config_load(path, &faults);

	/* Warnings do not change the exit status. */
	for (size_t i = 0; i < faults.n_warnings; i++)
		fprintf(stderr, "%s: warning: %s\n", path, faults.warnings[i]);
	if (cfg == NULL) {
		for (size_t i = 0; i < faults.count; i++)
			fprintf(stderr, "%s: %s\n", path, faults.lines[i]);
		ph_faults_clear(&faults);
		return 1;
	}
	ph_faults_clear(&faults);
	printf("%s: OK (%zu route%s)\n", path, cfg->n_routes,
	       cfg->n_routes == 1 ? "" : "s");
	ph_config_free(&cfg);
	return 0;
}

/* Run by root, act as the owner of dir (ph_privdrop_become_owner). */
static int
become_state_owner(const char *dir, bool must_exist)
{
	struct ph_error err;

	if (ph_privdrop_become_owner(dir, must_exist, &err) < 0) {
		fprintf(stderr, "payhook: %s\n", err.msg);
		return -1;
	}
	return 0;
}

/* The rebuild of the dedup records after a system start (dedup.h), when
 * an administrative command opens the database first: from the spool at
 * arg if it can be read, else left to the next request (1). */
static int
admin_rebuild(struct ph_dedup *dd, void *arg, struct ph_error *err)
{
	struct ph_spool *spool;
	struct ph_error serr;
	int ret;

	if (ph_spool_open(arg, &spool, &serr) < 0) {
		fprintf(stderr, "payhook: the dedup records are rebuilt from "
			"the spool at the next request, not now: %s\n",
			serr.msg);
		return 1;
	}
	ret = ph_reindex_spool(dd, spool, err);
	ph_spool_close(&spool);
	return ret;
}

static int
dedup_command(const char *path, bool purge)
{
	struct ph_config *cfg = ph_config_load_command(path);
	struct ph_dedup_options opt = { 0 };
	struct ph_dedup *dd;
	struct ph_error err;
	long n;

	if (cfg == NULL)
		return 1;
	if (become_state_owner(cfg->state_dir, false) < 0) {
		ph_config_free(&cfg);
		return 1;
	}
	opt.retention_days = cfg->dedup_retention_days;
	opt.rebuild = admin_rebuild;
	opt.rebuild_arg = cfg->spool_dir;
	dd = ph_dedup_open(cfg->state_dir, &opt, &err);
	if (dd == NULL) {
		fprintf(stderr, "payhook: %s\n", err.msg);
		ph_config_free(&cfg);
		return 1;
	}
	n = purge ? ph_dedup_purge(dd, true, &err) : ph_dedup_count(dd, &err);
	if (n < 0)
		fprintf(stderr, "payhook: %s\n", err.msg);
	else if (purge)
		printf("purged %ld expired records\n", n);
	else
		printf("%ld\n", n);
	ph_dedup_close(&dd);
	ph_config_free(&cfg);
	return n < 0 ? 1 : 0;
}

/* "payhook quarantine list|show ID|purge [--config PATH]": the requests
 * that reached a route but failed (quarantine.h). Run by root, it acts as
 * the owner of the spool, whose checks it shares. */
static int
quarantine_command(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ NULL, 0, NULL, 0 },
	};
	const char *opt_config = NULL, *action;
	struct ph_config *cfg;
	struct ph_error err;
	long n = 0;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
		if (c != 'c') {
			usage(stderr);
			return 2;
		}
		opt_config = optarg;
	}
	action = optind < argc ? argv[optind] : "";
	if (!((strcmp(action, "list") == 0 || strcmp(action, "purge") == 0) &&
	      argc - optind == 1) &&
	    !(strcmp(action, "show") == 0 && argc - optind == 2)) {
		usage(stderr);
		return 2;
	}
	if ((cfg = ph_config_load_command(opt_config)) == NULL)
		return 1;
	if (become_state_owner(cfg->spool_dir, false) < 0) {
		ph_config_free(&cfg);
		return 1;
	}
	if (strcmp(action, "list") == 0) {
		ret = ph_quarantine_list(cfg->spool_dir, stdout, &err);
	} else if (strcmp(action, "show") == 0) {
		ret = ph_quarantine_show(cfg->spool_dir, argv[optind + 1],
					 stdout, &err);
	} else {
		ret = ph_quarantine_purge(cfg->spool_dir, &n, &err);
		if (ret == 0)
			printf("purged %ld quarantine entr%s\n", n,
			       n == 1 ? "y" : "ies");
	}
	if (ret < 0)
		fprintf(stderr, "payhook: %s\n", err.msg);
	ph_config_free(&cfg);
	return ret < 0 || fflush(stdout) != 0 ? 1 : 0;
}

/* A duration option of drain: seconds, or a number with a unit. */
static int
drain_duration(const char *opt, const char *s, uint64_t min, uint64_t max,
	       uint64_t *ms_r)
{
	uint64_t secs;

	if (ph_parse_duration(s, min, max, &secs) < 0) {
		fprintf(stderr, "payhook: drain: --%s: a duration from %llu "
			"to %llu seconds, such as 30, 30s, 5m or 1h\n", opt,
			(unsigned long long)min, (unsigned long long)max);
		return -1;
	}
	*ms_r = secs * 1000;
	return 0;
}

/* "payhook drain --nats --exec CMD [options]": the same job, timeout,
 * backoff and attempts, for the messages of the configuration's JetStream
 * stream (nats.h). */
static int
drain_nats_command(const char *opt_config, const struct ph_drain_options *o)
{
	struct ph_nats_drain_options no = {
		.command = o->command, .timeout_ms = o->timeout_ms,
		.retry_min_ms = o->retry_min_ms,
		.retry_max_ms = o->retry_max_ms,
		.max_attempts = o->max_attempts, .once = o->once,
	};
	struct ph_config *cfg = ph_config_load_command(opt_config);
	int ret;

	if (cfg == NULL)
		return 1;
	if (cfg->nats == NULL) {
		fprintf(stderr, "payhook: drain --nats: %s has no \"nats\" "
			"object (see payhook.json(5))\n",
			ph_config_locate(opt_config));
		ph_config_free(&cfg);
		return 1;
	}
	ret = ph_nats_drain_run(cfg->nats, &no);
	ph_config_free(&cfg);
	return ret;
}

/* "payhook drain --exec CMD [options]" and "payhook drain --retry-failed
 * [ID...]" (drain.h). The spool is --spool, else the configuration's
 * spool_dir. Run by root, drain acts as the owner of the spool. */
static int
drain_command(int argc, char **argv)
{
	enum { O_EXEC = 1000, O_SPOOL, O_JOBS, O_TIMEOUT, O_RMIN, O_RMAX,
	       O_MAXATT, O_ORDERED, O_NOORDER, O_ONCE, O_DELETE, O_RETRY,
	       O_SCAN, O_NATS };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "exec", required_argument, NULL, O_EXEC },
		{ "spool", required_argument, NULL, O_SPOOL },
		{ "jobs", required_argument, NULL, O_JOBS },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "retry-min", required_argument, NULL, O_RMIN },
		{ "retry-max", required_argument, NULL, O_RMAX },
		{ "max-attempts", required_argument, NULL, O_MAXATT },
		{ "ordered", no_argument, NULL, O_ORDERED },
		{ "no-ordered", no_argument, NULL, O_NOORDER },
		{ "once", no_argument, NULL, O_ONCE },
		{ "delete-done", no_argument, NULL, O_DELETE },
		{ "retry-failed", no_argument, NULL, O_RETRY },
		{ "scan-interval", required_argument, NULL, O_SCAN },
		{ "nats", no_argument, NULL, O_NATS },
		{ NULL, 0, NULL, 0 },
	};
	struct ph_drain_options o = {
		.jobs = 1, .ordered = true, .timeout_ms = 60000,
		.retry_min_ms = 30000, .retry_max_ms = 3600000,
		.max_attempts = 10, .scan_interval_ms = 5000,
	};
	const char *opt_config = NULL, *spool = NULL;
	struct ph_config *cfg = NULL;
	bool retry_failed = false, nats = false, spool_only = false;
	uint64_t v;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': opt_config = optarg; break;
		case O_EXEC: o.command = optarg; break;
		case O_SPOOL: spool = optarg; break;
		case O_ORDERED: o.ordered = true; break;
		case O_NOORDER: o.ordered = false; break;
		case O_ONCE: o.once = true; break;
		case O_DELETE: o.delete_done = true; break;
		case O_RETRY: retry_failed = true; break;
		case O_NATS: nats = true; break;
		case O_JOBS:
		case O_MAXATT:
			if (ph_parse_uint(optarg, 1, c == O_JOBS ?
					  PH_DRAIN_JOBS_MAX : 1000, &v) < 0) {
				fprintf(stderr, "payhook: drain: --%s: a "
					"number from 1 to %d\n", c == O_JOBS ?
					"jobs" : "max-attempts", c == O_JOBS ?
					PH_DRAIN_JOBS_MAX : 1000);
				return 2;
			}
			if (c == O_JOBS)
				o.jobs = (unsigned)v;
			else
				o.max_attempts = (unsigned)v;
			break;
		case O_TIMEOUT:
			if (drain_duration("timeout", optarg, 1, 86400,
					   &o.timeout_ms) < 0)
				return 2;
			break;
		case O_RMIN:
			if (drain_duration("retry-min", optarg, 0, 30 * 86400,
					   &o.retry_min_ms) < 0)
				return 2;
			break;
		case O_RMAX:
			if (drain_duration("retry-max", optarg, 0, 30 * 86400,
					   &o.retry_max_ms) < 0)
				return 2;
			break;
		case O_SCAN:
			if (drain_duration("scan-interval", optarg, 1, 3600,
					   &o.scan_interval_ms) < 0)
				return 2;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (retry_failed ? o.command != NULL :
	    (o.command == NULL || optind != argc)) {
		fprintf(stderr, "payhook: drain: give --exec CMD, or "
			"--retry-failed [ID...]\n");
		return 2;
	}
	if (o.retry_max_ms < o.retry_min_ms) {
		fprintf(stderr, "payhook: drain: --retry-max is below "
			"--retry-min\n");
		return 2;
	}
	spool_only = spool != NULL || o.jobs != 1 || o.delete_done ||
	    retry_failed;
	if (nats)
		return spool_only ? (fprintf(stderr, "payhook: drain: --spool, "
		    "--jobs, --delete-done and --retry-failed do not go with "
		    "--nats (run several drains instead of --jobs)\n"), 2) :
		    drain_nats_command(opt_config, &o);
	if (spool == NULL) {
		if ((cfg = ph_config_load_command(opt_config)) == NULL)
			return 1;
		spool = cfg->spool_dir;
	}
	o.spool_dir = spool;
	if (become_state_owner(spool, true) < 0) {
		ph_config_free(&cfg);
		return 1;
	}
	if (retry_failed)
		ret = ph_drain_retry_failed(spool, argv + optind,
					    (size_t)(argc - optind), stdout);
	else
		ret = ph_drain_run(&o);
	ph_config_free(&cfg);
	return ret != 0 || fflush(stdout) != 0 ? 1 : 0;
}

/* A responder that must not serve (root, set-user-ID) still answers:
 * 500 to every request, after one log line, so the web server does not
 * restart it in a loop. */
static void
serve_init(struct ph_context *ctx, const char *path, const char *refusal)
{
	if (refusal == NULL) {
		ph_context_init(ctx, path);
		return;
	}
	memset(ctx, 0, sizeof(*ctx));
	ctx->config_path = path;
	ctx->config_fault = ph_xasprintf("refusing to serve: %s", refusal);
	ph_log_error("refusing to serve, answering 500 to every request: %s",
		     refusal);
}

static int
serve(const char *path, bool allow_root)
{
	struct ph_context ctx;
	const char *refusal;
	int ret;

	ph_signals_install();
	/* umask first: every file and directory we create gives other users
	 * nothing, whatever the web server's umask was. */
	umask(077);
	refusal = ph_privdrop_refusal(allow_root);
	if (!FCGX_IsCGI()) {
		serve_init(&ctx, path, refusal);
		ret = ph_responder_fcgi(&ctx, 0, 0);
	} else if (getenv("GATEWAY_INTERFACE") != NULL) {
		serve_init(&ctx, path, refusal);
		ret = ph_responder_cgi(&ctx);
	} else {
		fprintf(stderr, "payhook: not started by a web server (no "
			"FastCGI socket on fd 0, no GATEWAY_INTERFACE)\n");
		usage(stderr);
		return 2;
	}
	ph_context_clear(&ctx);
	return ret == 0 ? 0 : 1;
}

struct listen_args {
	const char *addr;
	unsigned workers;
	const char *user, *group, *socket_owner;
	mode_t socket_mode;
	bool allow_root;
};

static int
listen_worker(int fd, void *arg)
{
	struct ph_context ctx;
	int ret;

	ph_context_init(&ctx, arg);
	ret = ph_responder_fcgi(&ctx, fd, 0);
	ph_context_clear(&ctx);
	return ret == 0 ? 0 : 1;
}

/* "USER" or "USER:GROUP" for the socket file. */
static int
resolve_owner(const char *spec, uid_t *uid, gid_t *gid, struct ph_error *err)
{
	char *user = ph_xstrdup(spec), *group = strchr(user, ':');
	int ret;

	if (group != NULL)
		*group++ = '\0';
	ret = ph_privdrop_resolve(user, group, uid, gid, err);
	free(user);
	return ret;
}

/* Standalone: open the socket (as root if need be), become --user, then
 * supervise the workers. */
static int
listen_command(const char *path, const struct listen_args *la)
{
	struct ph_listen_options opt = { .socket_mode = la->socket_mode };
	struct ph_listener l;
	struct ph_error err;
	const char *refusal;
	uid_t uid = 0;
	gid_t gid = 0;

	umask(077);
	/* allow_root only waives the uid 0 check here: whether root may
	 * serve is decided below, with --user in mind. */
	refusal = ph_privdrop_refusal(true);
	if (refusal != NULL) {
		ph_log_error("refusing to start: %s", refusal);
		return 1;
	}
	if (la->user != NULL) {
		if (ph_privdrop_resolve(la->user, la->group, &uid, &gid,
					&err) < 0) {
			ph_log_error("--user: %s", err.msg);
			return 1;
		}
	} else if (geteuid() == 0 && !la->allow_root) {
		ph_log_error("refusing to run as root: give --user USER "
			     "(payhook switches to it after opening the "
			     "socket), or --allow-root");
		return 1;
	}
	if (la->socket_owner != NULL) {
		if (resolve_owner(la->socket_owner, &opt.socket_uid,
				  &opt.socket_gid, &err) < 0) {
			ph_log_error("--socket-owner: %s", err.msg);
			return 1;
		}
		opt.chown_socket = true;
	} else if (la->user != NULL) {
		opt.chown_socket = true;
		opt.socket_uid = uid;
		opt.socket_gid = gid;
	}
	if (ph_listen_open(la->addr, &opt, &l, &err) < 0) {
		ph_log_error("%s", err.msg);
		return 1;
	}
	if (la->user != NULL && ph_privdrop_switch(uid, gid, &err) < 0) {
		ph_log_error("cannot switch to user %s: %s", la->user,
			     err.msg);
		ph_listen_close(&l);
		return 1;
	}
	return ph_prefork_run(&l, la->workers, listen_worker,
			      (void *)path) == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	enum { CMD_SERVE, CMD_CHECK, CMD_COUNT, CMD_PURGE } cmd = CMD_SERVE;
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "dedup-count", no_argument, NULL, 'N' },
		{ "purge", no_argument, NULL, 'P' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ "listen", required_argument, NULL, 'L' },
		{ "workers", required_argument, NULL, 'W' },
		{ "user", required_argument, NULL, 'U' },
		{ "group", required_argument, NULL, 'G' },
		{ "socket-owner", required_argument, NULL, 'O' },
		{ "socket-mode", required_argument, NULL, 'M' },
		{ "allow-root", no_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	struct listen_args la = {
		.workers = PH_WORKERS_DEFAULT,
		.socket_mode = PH_LISTEN_DEFAULT_MODE,
	};
	const char *opt_config = NULL, *path;
	bool listen_only = false;
	uint64_t v;
	int c;

	ensure_std_fds();
	/* A subcommand with its own options (sign.c). */
	if (argc > 1 && strcmp(argv[1], "sign") == 0)
		return ph_sign_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "quarantine") == 0)
		return quarantine_command(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "status") == 0)
		return ph_status_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "ship") == 0)
		return ph_ship_main(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "drain") == 0)
		return drain_command(argc - 1, argv + 1);
	while ((c = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': opt_config = optarg; break;
		case 'C': cmd = CMD_CHECK; break;
		case 'N': cmd = CMD_COUNT; break;
		case 'P': cmd = CMD_PURGE; break;
		case 'V': printf("%s\n", PACKAGE_STRING); return 0;
		case 'h': usage(stdout); return 0;
		case 'L': la.addr = optarg; break;
		case 'U': la.user = optarg; listen_only = true; break;
		case 'G': la.group = optarg; listen_only = true; break;
		case 'O': la.socket_owner = optarg; listen_only = true; break;
		case 'R': la.allow_root = true; break;
		case 'W':
			if (ph_parse_uint(optarg, 1, PH_WORKERS_MAX, &v) < 0) {
				fprintf(stderr, "payhook: --workers: a number "
					"from 1 to %d\n", PH_WORKERS_MAX);
				return 2;
			}
			la.workers = (unsigned)v;
			listen_only = true;
			break;
		case 'M': {
			char *end;
			unsigned long m;

			errno = 0;
			m = strtoul(optarg, &end, 8);
			if (errno != 0 || end == optarg || *end != '\0' ||
			    m > 0777) {
				fprintf(stderr, "payhook: --socket-mode: an "
					"octal mode such as 0660\n");
				return 2;
			}
			la.socket_mode = (mode_t)m;
			listen_only = true;
			break;
		}
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (listen_only && la.addr == NULL) {
		fprintf(stderr, "payhook: --workers, --user, --group, "
			"--socket-owner and --socket-mode go with --listen\n");
		return 2;
	}
	if (la.group != NULL && la.user == NULL) {
		fprintf(stderr, "payhook: --group goes with --user\n");
		return 2;
	}
	if (la.addr != NULL && cmd != CMD_SERVE) {
		usage(stderr);
		return 2;
	}
	la.allow_root = la.allow_root || ph_privdrop_env_allows_root();
	path = ph_config_locate(opt_config);
	switch (cmd) {
	case CMD_CHECK:
		return check_config(path);
	case CMD_COUNT:
		return dedup_command(path, false);
	case CMD_PURGE:
		return dedup_command(path, true);
	case CMD_SERVE:
	default:
		if (la.addr != NULL)
			return listen_command(path, &la);
		return serve(path, la.allow_root);
	}
}
