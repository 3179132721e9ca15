/* nats-dump.c - read a payhook JetStream stream back, for the tests; and
 * fill one with synthetic events, to measure what a million cost.
 *
 * Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
 *
 *   nats-dump URL STREAM
 *       "# msgs=N bytes=B subjects=S first=F last=L" then, for each stored
 *       message in order, "SEQ SUBJECT MSG-ID EVENT-ID DATA-BYTES".
 *   nats-dump --get SEQ URL STREAM
 *       the data of the message SEQ, as stored.
 *   nats-dump --fill N URL STREAM PREFIX
 *       publish N events of about 700 bytes, each on its own key subject
 *       PREFIX.fill.payment.succeeded.<32 hex> with both headers, waiting
 *       for every acknowledgement; then print the first line above.
 *
 * Exit 0, or 1 with the client's error on stderr.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nats/nats.h>

static int
fail(const char *what, natsStatus s)
{
	const char *t = nats_GetLastError(NULL);

	fprintf(stderr, "nats-dump: %s: %s\n", what,
		t != NULL && *t != '\0' ? t : natsStatus_GetText(s));
	return 1;
}

static int
summary(jsCtx *js, const char *stream, uint64_t *first, uint64_t *last)
{
	jsStreamInfo *si = NULL;
	natsStatus s = js_GetStreamInfo(&si, js, stream, NULL, NULL);

	if (s != NATS_OK)
		return fail("stream info", s);
	printf("# msgs=%" PRIu64 " bytes=%" PRIu64 " subjects=%" PRId64
	       " first=%" PRIu64 " last=%" PRIu64 "\n", si->State.Msgs,
	       si->State.Bytes, si->State.NumSubjects, si->State.FirstSeq,
	       si->State.LastSeq);
	*first = si->State.FirstSeq;
	*last = si->State.LastSeq;
	jsStreamInfo_Destroy(si);
	return 0;
}

static int
dump(jsCtx *js, const char *stream)
{
	uint64_t first, last;

	if (summary(js, stream, &first, &last) != 0)
		return 1;
	for (uint64_t seq = first; seq != 0 && seq <= last; seq++) {
		natsMsg *m = NULL;
		const char *id = "-", *ev = "-";
		jsErrCode jerr = 0;
		natsStatus s = js_GetMsg(&m, js, stream, seq, NULL, &jerr);

		if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr)
			continue;	/* deleted */
		if (s != NATS_OK)
			return fail("get", s);
		(void)natsMsgHeader_Get(m, "Nats-Msg-Id", &id);
		(void)natsMsgHeader_Get(m, "Payhook-Event-Id", &ev);
		printf("%" PRIu64 " %s %s %s %d\n", seq, natsMsg_GetSubject(m),
		       id, ev, natsMsg_GetDataLength(m));
		natsMsg_Destroy(m);
	}
	return 0;
}

static int
get(jsCtx *js, const char *stream, uint64_t seq)
{
	natsMsg *m = NULL;
	natsStatus s = js_GetMsg(&m, js, stream, seq, NULL, NULL);

	if (s != NATS_OK)
		return fail("get", s);
	fwrite(natsMsg_GetData(m), 1, (size_t)natsMsg_GetDataLength(m),
	       stdout);
	natsMsg_Destroy(m);
	return 0;
}

static int
fill(jsCtx *js, const char *stream, const char *prefix, long n)
{
	char subj[256], id[128], ev[32], body[700];
	jsPubOptions po;
	natsStatus s;
	uint64_t first, last;

	memset(body, 'x', sizeof(body));
	for (long i = 0; i < n; i++) {
		natsMsg *m = NULL;

		snprintf(subj, sizeof(subj), "%s.fill.payment.succeeded."
			 "%016lx%016lx", prefix, (unsigned long)i * 2654435761u,
			 (unsigned long)i);
		snprintf(id, sizeof(id), "fill:stripe:evt_%020ld", i);
		snprintf(ev, sizeof(ev), "01J%023ld", i);
		s = natsMsg_Create(&m, subj, NULL, body, (int)sizeof(body));
		if (s == NATS_OK)
			s = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
		if (s == NATS_OK)
			s = natsMsgHeader_Set(m, "Payhook-Event-Id", ev);
		jsPubOptions_Init(&po);
		if (s == NATS_OK)
			s = js_PublishMsgAsync(js, &m, &po);
		natsMsg_Destroy(m);
		if (s != NATS_OK)
			return fail("publish", s);
	}
	jsPubOptions_Init(&po);
	po.MaxWait = 120000;
	if ((s = js_PublishAsyncComplete(js, &po)) != NATS_OK)
		return fail("publish complete", s);
	return summary(js, stream, &first, &last);
}

int
main(int argc, char **argv)
{
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	jsOptions jo;
	natsStatus s;
	long n = 0, seq = 0;
	int ret;

	if (argc == 6 && strcmp(argv[1], "--fill") == 0) {
		n = strtol(argv[2], NULL, 10);
		argv += 2;
		argc -= 2;
	} else if (argc == 5 && strcmp(argv[1], "--get") == 0) {
		seq = strtol(argv[2], NULL, 10);
		argv += 2;
		argc -= 2;
	} else if (argc != 3) {
		fprintf(stderr, "usage: nats-dump URL STREAM\n"
			"       nats-dump --get SEQ URL STREAM\n"
			"       nats-dump --fill N URL STREAM PREFIX\n");
		return 2;
	}
	if ((s = natsConnection_ConnectTo(&nc, argv[1])) != NATS_OK)
		return fail("connect", s);
	jsOptions_Init(&jo);
	jo.Wait = 10000;
	jo.PublishAsync.MaxPending = 4096;
	jo.PublishAsync.StallWait = 30000;
	if ((s = natsConnection_JetStream(&js, nc, &jo)) != NATS_OK)
		return fail("jetstream", s);
	ret = n > 0 ? fill(js, argv[2], argv[3], n) :
	    seq > 0 ? get(js, argv[2], (uint64_t)seq) : dump(js, argv[2]);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	nats_Close();
	return ret;
}
