/* test-nats.c - the subject an event gets in JetStream, and the "nats"
 * object's defaults.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 * The subject carries exactly-once across hosts: every payhook version on
 * every host must give one key the same subject, so it is pinned here.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "conf.h"
#include "nats.h"

static void
test_nats_subject(void)
{
	static const struct {
		const char *route, *type, *key, *subject;	/* NULL: refused */
	} rows[] = {
		/* sha256("ngn:ngn-gateway:payment.success:t1") begins
		 * 6c489e49038a573b86def9da75ec4084. */
		{ "ngn", "payment.succeeded",
		  "ngn:ngn-gateway:payment.success:t1",
		  "acme.ph.ngn.payment.succeeded."
		  "6c489e49038a573b86def9da75ec4084" },
		{ "eu.stripe-1", "unknown", "ngn:ngn-gateway:payment.success:t1",
		  "acme.ph.eu.stripe-1.unknown."
		  "6c489e49038a573b86def9da75ec4084" },
		{ "a b", "unknown", "k", NULL },
		{ "ngn", "pay*", "k", NULL },
		{ "ngn", "pay.>", "k", NULL },
		{ ".ngn", "unknown", "k", NULL },
		{ "ngn.", "unknown", "k", NULL },
		{ "n..g", "unknown", "k", NULL },
		{ "ngn", "", "k", NULL },
	};
	struct ph_nats_config nc = { .subject_prefix = "acme.ph" };

	test_begin("nats: subjects of events");
	for (size_t i = 0; i < PH_N_ELEMENTS(rows); i++) {
		struct ph_error err;
		char *s = ph_nats_subject(&nc, rows[i].route, rows[i].type,
					  rows[i].key, &err);

		if (rows[i].subject == NULL)
			test_assert_idx(s == NULL && strstr(err.msg,
				"not made of subject tokens") != NULL, i);
		else
			test_assert_idx(s != NULL &&
					strcmp(s, rows[i].subject) == 0, i);
		free(s);
	}
	test_end();
}

static void
test_nats_defaults(void)
{
	static const char text[] =
	    "{\"spool_dir\":\"/nonexistent/s\",\"state_dir\":\"/nonexistent/d\","
	    "\"routes\":[{\"name\":\"n\",\"path\":\"/n\",\"provider\":"
	    "\"ngn-gateway\",\"secrets\":[\"x\"],\"amount_unit\":\"minor\","
	    "\"sink\":\"nats\"}],"
	    "\"nats\":{\"servers\":[\"nats://127.0.0.1:4222\"]}}";
	struct ph_faults faults = { 0 };
	struct ph_config *cfg;

	test_begin("nats: defaults of the nats object, and a nats sink");
	cfg = ph_config_load_text("t", text, sizeof(text) - 1, &faults);
	/* Built without the client, a nats sink is the one fault. */
	test_assert(ph_nats_available() ? cfg != NULL :
		    cfg == NULL && faults.count == 1 &&
		    strstr(faults.lines[0], PH_NATS_MISSING) != NULL);
	if (cfg != NULL) {
		const struct ph_nats_config *nc = cfg->nats;

		test_assert(nc != NULL && nc->n_servers == 1);
		test_assert(nc != NULL && strcmp(nc->stream, "PAYHOOK") == 0);
		test_assert(nc != NULL &&
			    strcmp(nc->subject_prefix, "payhook") == 0);
		test_assert(nc != NULL && nc->replicas == 3 &&
			    nc->duplicate_window_s == 120);
		test_assert(nc != NULL && nc->user.data == NULL &&
			    nc->token.data == NULL && nc->creds_file == NULL &&
			    nc->ca_file == NULL);
		test_assert(cfg->routes[0].sink_nats);
	}
	ph_config_free(&cfg);
	ph_faults_clear(&faults);
	test_end();
}

void
test_nats(void)
{
	test_nats_subject();
	test_nats_defaults();
}
