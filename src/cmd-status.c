/* cmd-status.c - "payhook status [--json | --prometheus] [--config PATH]":
 * the status report (status.h) on standard output.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * It only reads: the spool folders, <state_dir>/stats/ and
 * <state_dir>/ship-status.json. Run by root it needs no change of user,
 * since it creates nothing.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include "conf.h"
#include "status.h"

static void
status_usage(FILE *f)
{
	fprintf(f, "usage: payhook status [--json | --prometheus] "
		"[--config PATH]\n");
}

int
ph_status_main(int argc, char **argv)
{
	enum { TEXT, JSON, PROM } format = TEXT;
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "prometheus", no_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	struct ph_status_report r;
	const char *opt_config = NULL;
	struct ph_config *cfg;
	struct ph_error err;
	struct timeval tv;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': opt_config = optarg; break;
		case 'j': format = JSON; break;
		case 'p': format = PROM; break;
		default: status_usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		status_usage(stderr);
		return 2;
	}
	if ((cfg = ph_config_load_command(opt_config)) == NULL)
		return 1;
	gettimeofday(&tv, NULL);
	if (ph_status_collect(cfg, (int64_t)tv.tv_sec * 1000 +
			      tv.tv_usec / 1000, &r, &err) < 0) {
		fprintf(stderr, "payhook: %s\n", err.msg);
		ph_config_free(&cfg);
		return 1;
	}
	if (format == JSON)
		ph_status_write_json(&r, stdout);
	else if (format == PROM)
		ph_status_write_prometheus(&r, stdout);
	else
		ph_status_write_text(&r, stdout);
	ph_status_report_clear(&r);
	ph_config_free(&cfg);
	return fflush(stdout) != 0 ? 1 : 0;
}
