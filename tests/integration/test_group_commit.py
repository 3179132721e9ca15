# test_group_commit.py - dedup commits share their log flushes; the index
# is rebuilt from the spool after a crash (README, "How a delivery becomes
# durable").
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# A commit is written to the Berkeley DB log without a flush: the event
# file is durable in new/ before it, and one flush covers the commits of
# many requests. What is checked here:
#   - under concurrent load every 2xx's event file is in new/ when the
#     answer arrives, and SIGKILLing every worker right after the load,
#     before any flush came due, loses no record;
#   - losing the records (the state directory removed, the worst an
#     operating system crash can do to unflushed commits) is repaired by
#     the next open: the events still in new/ and cur/ are duplicates
#     under their first ids; only an event its consumer deleted is
#     accepted again (the window README describes); over FastCGI and CGI.

import glob
import os
import re
import shutil
import signal
import threading
import time

from harness import (accepted_id, body_of, check, eq, kill_left,
                     ngn_payload, pid_alive)

SENDERS = 8
PER_SENDER = 15


def _key(txn):
    return "ngn:ngn-gateway:payment.success:%s" % txn


def _in_new(spool, ulid):
    return glob.glob(os.path.join(spool.sub("new"), "*-%s.json" % ulid))


def test_group_commit_acknowledged_durable(ctx):
    """8 concurrent senders, 2 workers: each accepted event's file is in
    new/ when its 200 arrives; SIGKILL of both workers at once after the
    load keeps every record (written to the log, not held in memory)."""
    cfg, spool, _state = ctx.config()
    lt = ctx.lighttpd_fcgi(cfg, procs=2)
    results, missing, bad = {}, [], []
    lock = threading.Lock()

    def sender(s):
        for i in range(PER_SENDER):
            txn = "gc-%d-%d" % (s, i)
            r = lt.post(body_of(ngn_payload(txn=txn)))
            if r.status != 200:
                with lock:
                    bad.append((txn, r.status, r.body[:100]))
                continue
            ulid = r.json()["id"]
            found = _in_new(spool, ulid)
            with lock:
                results[txn] = ulid
                if len(found) != 1:
                    missing.append((txn, ulid))

    ts = [threading.Thread(target=sender, args=(s,), daemon=True)
          for s in range(SENDERS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    eq(bad, [], "answers that were not 200")
    eq(missing, [], "accepted events not in new/ when their 200 arrived")
    eq(len(results), SENDERS * PER_SENDER, "accepted events")
    workers = lt.children()
    eq(len(workers), 2, "payhook processes")
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    kill_left(workers, grace=5)
    check(not any(pid_alive(p) for p in workers), "workers still alive")
    # lighttpd starts new workers; they recover the environment.
    deadline = time.time() + 20
    while True:
        r = lt.post(body_of(ngn_payload(txn="gc-0-0")))
        if r.status == 200 or time.time() >= deadline:
            break
        time.sleep(0.3)
    eq(r.json(), {"status": "duplicate", "id": results["gc-0-0"]},
       "first event after the kill")
    for txn, ulid in sorted(results.items()):
        r = lt.post(body_of(ngn_payload(txn=txn)))
        eq((r.status, r.json()), (200, {"status": "duplicate", "id": ulid}),
           "redelivery of %s after the kill" % txn)
    eq(sorted(ev["id"] for _n, _d, ev in spool.events()),
       sorted(results.values()), "spooled events")
    eq(ctx.dedup_count(cfg), len(results), "dedup records")


def _consume(spool, first):
    """A consumer took events: txn b into cur/, txn c finished and
    deleted. Returns the name of b's file in cur/."""
    new = spool.sub("new")
    b = _in_new(spool, first["b"])[0]
    cur_b = os.path.join(spool.sub("cur"), os.path.basename(b))
    os.rename(b, cur_b)
    os.unlink(_in_new(spool, first["c"])[0])
    check(os.path.isdir(new), "new/ is there")
    return os.path.basename(cur_b)


def _check_rebuilt(ctx, cfg, spool, first, answers, logs):
    """answers: {txn: (status, json)} of the redeliveries."""
    for txn in ("a", "b", "d"):
        eq(answers[txn], (200, {"status": "duplicate", "id": first[txn]}),
           "redelivery of %s, whose file is in the spool" % txn)
    status, doc = answers["c"]
    eq((status, doc["status"]), (200, "accepted"),
       "redelivery of c, whose file its consumer deleted")
    check(doc["id"] != first["c"], "c spooled again under a new id")
    eq(sorted(ev["id"] for _n, _d, ev in spool.events()),
       sorted([first["a"], first["d"], doc["id"]]), "events in new/")
    eq(ctx.dedup_count(cfg), 4, "dedup records after the rebuild")
    check(re.search(r"dedup rebuild after a system start: 3 records from "
                    r"the spool's new/ and cur/, 0 files skipped, \d+ ms",
                    logs()), "the rebuild's log line: %s" % logs()[-1500:])


def test_group_commit_rebuild_fcgi(ctx):
    """The state directory is lost (as unflushed records may be in an
    operating system crash): the next worker rebuilds the index from the
    events in new/ and cur/ before it claims anything."""
    cfg, spool, state = ctx.config()
    lt = ctx.lighttpd_fcgi(cfg, procs=2)
    first = {t: accepted_id(lt.post(body_of(ngn_payload(txn=t))), t)
             for t in "abcd"}
    lt.stop()
    _consume(spool, first)
    shutil.rmtree(state)
    lt.start()
    answers = {}
    for t in "abcd":
        r = lt.post(body_of(ngn_payload(txn=t)))
        answers[t] = (r.status, r.json())
    _check_rebuilt(ctx, cfg, spool, first, answers, lt.logs)


def test_group_commit_rebuild_cgi(ctx):
    """The same for CGI: the first process after the loss rebuilds."""
    cfg, spool, state = ctx.config()
    first = {}
    for t in "abcd":
        r = ctx.cgi_post(cfg, body_of(ngn_payload(txn=t)))
        eq(r.status, 200, "CGI delivery of %s (%r)" % (t, r.stderr[-500:]))
        first[t] = r.json()["id"]
    _consume(spool, first)
    shutil.rmtree(state)
    answers, logs = {}, []
    for t in "abcd":
        r = ctx.cgi_post(cfg, body_of(ngn_payload(txn=t)))
        answers[t] = (r.status, r.json())
        logs.append(r.stderr)
    _check_rebuilt(ctx, cfg, spool, first, answers, lambda: "".join(logs))
