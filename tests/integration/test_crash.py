# test_crash.py - payhook workers killed (SIGKILL) under load.
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# A stream of distinct signed events (8 s, 8 senders) goes to lighttpd with
# four payhook workers while another thread SIGKILLs a random worker every
# 100-200 ms. lighttpd 1.4.69 notices the death (SIGCHLD) and starts a new
# worker at once; in-flight requests get a 5xx from lighttpd or a reset.
# The durability promise is then checked:
#   - every event answered 2xx is in new/ under the id of its answer;
#   - extra copies of one dedup key (at-least-once) are at most one per
#     kill, and so are tmp/ leftovers;
#   - the database opens without manual repair and a new delivery works;
#   - every event not answered 2xx is accepted (or duplicate) when
#     delivered again, and every event answered 2xx is a duplicate with the
#     same id: nothing is lost, nothing is spooled twice on retry.

import os
import random
import re
import signal
import threading
import time

from harness import (accepted_id, body_of, check, eq, http_request,
                     ngn_headers, ngn_payload)

EVENTS = 20000          # upper bound of the stream
SEND_SECONDS = 8        # its duration; events not sent by then are dropped
BACKOFF = 0.02          # a sender's pause after an answer that is not 2xx
SENDERS = 8
PROCS = 4
ANSWER_RE = re.compile(rb'^\{"status":"(accepted|duplicate)","id":"'
                       rb'([0-9A-Z]{26})"\}$')


def _deliver_all(lt, items, threads, deadline=None, backoff=0):
    """POST each (txn, body, headers) from several threads; returns
    {txn: (status or None, body)}; stops taking new items at deadline and
    pauses backoff seconds after an answer that is not 2xx."""
    results = {}
    lock = threading.Lock()
    it = iter(items)

    def sender():
        while deadline is None or time.time() < deadline:
            with lock:
                item = next(it, None)
            if item is None:
                return
            txn, body, headers = item
            try:
                r = http_request(lt.port, "POST", "/ngn", body, headers,
                                 timeout=30)
                res = (r.status, r.body)
            except Exception as e:      # reset by a killed worker
                res = (None, repr(e).encode())
            with lock:
                results[txn] = res
            if backoff and not (res[0] and 200 <= res[0] < 300):
                time.sleep(backoff)

    ts = [threading.Thread(target=sender, daemon=True)
          for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return results


def _parse(res):
    status, data = res
    m = ANSWER_RE.match(data or b"") if status == 200 else None
    if m is None:
        return None
    return m.group(1).decode(), m.group(2).decode()


def test_crash_kill_workers(ctx):
    cfg, spool, _state = ctx.config()
    lt = ctx.lighttpd_fcgi(cfg, procs=PROCS,
                           gw_options='\n    "disable-time" => 0,')
    items = []
    for i in range(EVENTS):
        body = body_of(ngn_payload("crash-%05d" % i))
        items.append(("crash-%05d" % i, body, ngn_headers(body)))

    kills, restarts = [], []
    done = threading.Event()

    def killer():
        rng = random.Random()
        last_seen = time.time()
        while not done.wait(rng.uniform(0.1, 0.2)):
            kids = lt.children()
            if kids:
                last_seen = time.time()
                pid = rng.choice(kids)
                try:
                    os.kill(pid, signal.SIGKILL)
                    kills.append(pid)
                except ProcessLookupError:
                    pass
            elif time.time() - last_seen > 3:
                # lighttpd did not replace its workers: restart it.
                restarts.append(time.time())
                lt.stop()
                lt.start(port=lt.port)
                last_seen = time.time()

    t_start = time.time()
    kt = threading.Thread(target=killer)
    kt.start()
    try:
        results = _deliver_all(lt, items, SENDERS,
                               deadline=time.time() + SEND_SECONDS,
                               backoff=BACKOFF)
    finally:
        done.set()
        kt.join()
    t_storm = time.time() - t_start

    # lighttpd should be back to full strength by itself.
    deadline = time.time() + 10
    while len(lt.children()) < PROCS and time.time() < deadline:
        time.sleep(0.1)
    if len(lt.children()) < PROCS:
        restarts.append(time.time())
        ctx.log("lighttpd had %d workers after the storm; restarting it"
                % len(lt.children()))
        lt.stop()
        lt.start(port=lt.port)

    answered = {}
    hist = {}
    for txn, res in results.items():
        key = res[0] if res[0] is not None else "error"
        parsed = _parse(res)
        if parsed:
            answered[txn] = parsed
            key = "200 " + parsed[0]
        elif res[0] == 200:
            key = "200 malformed"
        elif res[1][:1] == b"{":
            key = "%s %s" % (key, res[1][:60].decode("utf-8", "replace"))
        elif res[0] is not None:
            key = "%s (lighttpd page)" % key
        hist[key] = hist.get(key, 0) + 1
    # The stream is what was sent before the deadline.
    items = [it for it in items if it[0] in results]
    ctx.log("storm: %.1f s, %d events sent, %d workers killed, "
            "%d lighttpd restarts; answers %s"
            % (t_storm, len(results), len(kills), len(restarts),
               ", ".join("%s: %d" % kv for kv in sorted(hist.items(),
                                                        key=str))))
    check(len(kills) >= 10, "only %d workers were killed; the test did not "
          "exercise crashes" % len(kills))
    check(hist.get("200 malformed", 0) == 0, "malformed 200 answers")
    check(len(answered) > 0, "no event was answered 2xx during the storm")

    # Every file in new/ is whole; index them by transaction id.
    by_txn = {}
    for name, data, ev in spool.events():
        check(ev is not None, "new/%s is not a whole JSON event: %r"
              % (name, data[:100]))
        check(ev["id"] in name, "new/%s does not carry its id" % name)
        txn = ev["raw"]["data"]["transaction_id"]
        eq(ev["dedup_key"], "ngn:ngn-gateway:payment.success:" + txn,
           "dedup_key of new/" + name)
        by_txn.setdefault(txn, []).append(ev["id"])
    for txn, (outcome, ulid) in sorted(answered.items()):
        check(txn in by_txn, "%s was answered 200 %s but is not in new/"
              % (txn, outcome))
        check(ulid in by_txn[txn], "%s was answered 200 %s id %s, but new/ "
              "has it only as %r" % (txn, outcome, ulid, by_txn[txn]))
    extra = sum(len(v) - 1 for v in by_txn.values())
    leftovers = spool.tmp()
    ctx.log("%d events in new/ (%d files), %d extra copies "
            "(at-least-once), %d tmp/ leftovers"
            % (len(by_txn), len(by_txn) + extra, extra, len(leftovers)))
    check(extra <= len(kills), "%d extra copies for %d kills"
          % (extra, len(kills)))
    check(len(leftovers) <= len(kills), "%d tmp/ leftovers for %d kills"
          % (len(leftovers), len(kills)))

    # The database opens without manual repair; a new delivery works.
    before = ctx.dedup_count(cfg)
    ctx.log("dedup count after the storm: %d" % before)
    body = body_of(ngn_payload("crash-after"))
    accepted_id(http_request(lt.port, "POST", "/ngn", body,
                             ngn_headers(body)), "new delivery after storm")

    # Deliver again everything that was not answered 2xx (or never sent).
    retry = [it for it in items if it[0] not in answered]
    again = _deliver_all(lt, retry, SENDERS, deadline=time.time() + 30)
    for txn, _b, _h in retry:
        res = again.get(txn)
        check(res is not None and _parse(res) is not None,
              "redelivery of %s: %r" % (txn, res))
        outcome, ulid = _parse(res)
        if outcome == "duplicate":
            # Recorded during the storm although its answer was lost: the
            # record is only committed after the file is durable.
            check(ulid in by_txn.get(txn, []), "redelivery of %s answered "
                  "duplicate of %s, which is not in new/" % (txn, ulid))
    # Deliver again what was answered 2xx: a duplicate under the same id.
    redo = [it for it in items if it[0] in answered]
    again2 = _deliver_all(lt, redo, SENDERS, deadline=time.time() + 30)
    wrong = []
    for txn, _b, _h in redo:
        parsed = _parse(again2.get(txn, (None, b"")))
        if parsed != ("duplicate", answered[txn][1]):
            wrong.append((txn, answered[txn], parsed))
    reaccepted = [w for w in wrong if w[2] and w[2][0] == "accepted"]
    check(not wrong, "%d of %d events answered 2xx during the storm were "
          "not a duplicate of the same id when delivered again (%d were "
          "accepted again: their dedup records were lost); e.g. %r"
          % (len(wrong), len(redo), len(reaccepted), wrong[:3]))

    # Now every event is in new/ and recorded once.
    txns = set()
    for _name, _data, ev in spool.events():
        txns.add(ev["raw"]["data"]["transaction_id"])
    missing = [t for t, _b, _h in items if t not in txns]
    check(not missing, "%d events missing from new/: %r"
          % (len(missing), missing[:5]))
    eq(ctx.dedup_count(cfg), len(items) + 1, "dedup count at the end")
    ctx.log("whole test: %.1f s" % (time.time() - t_start))
