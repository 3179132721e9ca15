# test_concurrency.py - concurrent deliveries of one event.
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# Providers deliver the same event twice at once; the dedup claim must be
# atomic across processes: exactly one file, one "accepted", the rest
# "duplicate" with the same id.

import http.client
import re
import threading

from harness import (EXAMPLE, body_of, check, check_event_file, eq,
                     expected_ngn_event, ngn_headers, now_ms, parse_log)

THREADS = 32
PROCS = 4


def test_concurrent_same_event(ctx):
    cfg, spool, _state = ctx.config()
    lt = ctx.lighttpd_fcgi(cfg, procs=PROCS)
    workers = lt.children()
    check(len(workers) >= PROCS, "expected at least %d payhook processes "
          "under lighttpd, found %r" % (PROCS, workers))
    body = body_of(EXAMPLE)
    headers = ngn_headers(body)
    barrier = threading.Barrier(THREADS)
    answers = [None] * THREADS

    def deliver(i):
        conn = http.client.HTTPConnection("127.0.0.1", lt.port, timeout=60)
        try:
            conn.connect()
            barrier.wait(30)
            conn.request("POST", "/ngn", body, headers)
            r = conn.getresponse()
            answers[i] = (r.status, r.read())
        except Exception as e:          # recorded, judged below
            answers[i] = (None, repr(e).encode())
        finally:
            conn.close()

    t0 = now_ms()
    threads = [threading.Thread(target=deliver, args=(i,))
               for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    t1 = now_ms()
    check(all(a is not None for a in answers), "a sender did not finish")
    pat = re.compile(rb'^\{"status":"(accepted|duplicate)","id":"'
                     rb'([0-9A-Z]{26})"\}$')
    outcomes, ids, bad = [], set(), []
    for status, data in answers:
        m = pat.match(data or b"")
        if status != 200 or not m:
            bad.append((status, data[:200]))
            continue
        outcomes.append(m.group(1).decode())
        ids.add(m.group(2).decode())
    check(not bad, "%d answers were not 200 accepted/duplicate: %r"
          % (len(bad), bad[:5]))
    eq(outcomes.count("accepted"), 1, "accepted answers")
    eq(outcomes.count("duplicate"), THREADS - 1, "duplicate answers")
    eq(len(ids), 1, "distinct ids in the answers %r" % sorted(ids))
    eq(len(spool.new()), 1, "files in new/")
    eq(spool.tmp(), [], "files in tmp/")
    check_event_file(spool, ids.pop(), expected_ngn_event(EXAMPLE, body),
                     t0, t1)
    eq(ctx.dedup_count(cfg), 1, "dedup count")
    served = {e[0] for e in parse_log(lt.stderr_text()) if "outcome" in e[2]}
    ctx.log("%d requests were served by %d payhook processes"
            % (THREADS, len(served & set(workers))))
