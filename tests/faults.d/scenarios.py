# scenarios.py - the fault scenarios of tests/faults.
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# Each scenario is a function (ctx, fig, scale): ctx a harness.Ctx (its own
# directory, servers on free 127.0.0.1 ports, stopped by PID whatever
# happens), fig the Figures to fill, scale the factor applied to rounds and
# durations (1 in scripts/test, 10 with --long). An invariant that breaks
# is recorded with fig.expect(cond, message) and the scenario carries on,
# so that its figures are complete either way. The invariants are
# payhook's durability promise (README, "What happens to one webhook": a
# 2xx only once the event is in new/ and recorded; nothing authentic lost;
# one file per event but for the at-least-once case of a crash between
# spool and commit) and issue 7's fixes 2 (spool replaced), 3 (signals),
# 7 (stuck database calls) and 9 (full state disk).

import os
import random
import re
import shutil
import signal
import threading
import time

from harness import (check, fill_filesystem, mount_tmpfs, pid_alive,
                     read_text)
from load import (Load, SpoolIndex, deliver_each, event, fcgi_send,
                  http_send, kinds, tmp_count)
from test_servers import Standalone

# Seconds within which every request must be answered in stopped-worker.
# What payhook promises (README, "When the dedup database is in trouble"):
# a worker answers a request it has accepted within the 10 s watchdog (8 s
# for lock waits). A request sent while every free worker is itself inside
# such a wait stays in the socket's queue until one is free, so the bound
# seen from the client is two watchdog periods: 20 s. Runs showed 10.0 to
# 16.1 s. A worker is held stopped for longer than the bound (HOLD_EXTRA_S
# more), so that the others cannot pass by waiting for it. --answer-bound
# sets it.
ANSWER_BOUND = 20.0
HOLD_EXTRA_S = 1.0
REQUEST_TIMEOUT = 10.0          # elsewhere: no request may take longer
FASTCGI_OPTIONS = '\n    "disable-time" => 0,'


def sleep_while(load, seconds):
    """Sleep up to seconds, less if the load has ended."""
    end = time.time() + seconds
    while time.time() < end and load.alive():
        time.sleep(min(0.05, max(0.0, end - time.time())))


def not_acked(shots):
    return sorted({s.txn for s in shots} -
                  {s.txn for s in shots if s.acked})


def check_acked(fig, shots, index, what="acknowledged"):
    """Every acknowledged shot is in index under the id of its answer;
    returns how many are not."""
    missing = [s for s in shots if s.acked and not index.has(s.txn, s.ulid)]
    fig.expect(not missing, "%d %s events are not in new/ under the id "
               "of their answer, e.g. %r" % (len(missing), what,
                                             missing[:3]))
    return len(missing)


def redeliver(fig, send, txns, index_fn, threads=4):
    """Deliver txns again (a provider's retry): every one must now be
    accepted, or a duplicate of a file in new/. Returns how many were."""
    again = deliver_each(send, txns, threads)
    index = index_fn()
    bad = [s for s in again.values()
           if not s.acked or (s.kind == "duplicate" and
                              not index.has(s.txn, s.ulid))]
    fig.expect(not bad, "%d of %d redeliveries were not accepted (or a "
               "duplicate of a file in new/), e.g. %r"
               % (len(bad), len(txns), bad[:3]))
    return len(again) - len(bad)


def lighttpd(ctx, cfg, procs):
    return ctx.lighttpd_fcgi(cfg, procs=procs, gw_options=FASTCGI_OPTIONS)


# ---------------------------------------------------------------- 1

def kill_workers(ctx, fig, scale):
    """Repeated SIGKILL of FastCGI workers (lighttpd, 4 workers) under a
    stream of distinct events; then every event not acknowledged is
    delivered again, as its provider would."""
    cfg, spool, _state = ctx.config()
    lt = lighttpd(ctx, cfg, 4)
    send = http_send(lt.port, REQUEST_TIMEOUT)
    load = Load(send, "kill", senders=6, seconds=6 * scale).start()
    kills, restarts = [], 0
    rng = random.Random()
    last_seen = time.time()
    while load.alive():
        sleep_while(load, rng.uniform(0.15, 0.3))
        kids = lt.children()
        if kids:
            last_seen = time.time()
            victim = rng.choice(kids)
            try:
                os.kill(victim, signal.SIGKILL)
                kills.append(victim)
            except ProcessLookupError:
                pass
        elif time.time() - last_seen > 3:
            # lighttpd did not replace its workers: restart it.
            restarts += 1
            lt.stop()
            lt.start(port=lt.port)
            last_seen = time.time()
    shots = load.stop()
    end = time.time() + 10
    while len(lt.children()) < 4 and time.time() < end:
        time.sleep(0.1)
    if len(lt.children()) < 4:
        restarts += 1
        lt.stop()
        lt.start(port=lt.port)

    n = kinds(shots)
    acked = [s for s in shots if s.acked]
    index = SpoolIndex(spool.path)
    fig.add(rounds=len(kills), sent=len(shots), acked=len(acked))
    fig["missing"] = check_acked(fig, shots, index)
    retry = not_acked(shots)
    fig["redelivered"] = redeliver(fig, send, retry,
                                   lambda: SpoolIndex(spool.path))
    final = SpoolIndex(spool.path)
    lost = [s.txn for s in shots if not final.has(s.txn)]
    fig.add(lost=len(lost), twice=final.extra_copies(),
            tmp_left=tmp_count(spool.path), restarts=restarts)
    fig.expect(len(kills) >= 5, "only %d workers were killed: the crash "
               "path was not exercised" % len(kills))
    fig.expect(n["200-malformed"] == 0, "%d malformed 200 answers"
               % n["200-malformed"])
    fig.expect(not lost, "%d events are not in new/ after redelivery, "
               "e.g. %r" % (len(lost), lost[:3]))
    fig.expect(not final.unreadable, "files in new/ that are not whole "
               "events: %r" % final.unreadable[:3])
    # At-least-once: a kill between spool and commit may leave one copy
    # that a redelivery spools again; at most one per kill.
    fig.expect(final.extra_copies() <= len(kills), "%d extra copies for "
               "%d kills" % (final.extra_copies(), len(kills)))
    fig.expect(tmp_count(spool.path) <= len(kills), "%d tmp/ leftovers "
               "for %d kills" % (tmp_count(spool.path), len(kills)))


# ---------------------------------------------------------------- 2

def disk_full(ctx, fig, scale):
    """Storage faults under load (lighttpd, 2 workers): the spool's tmpfs
    filled, then the state directory's tmpfs filled (Berkeley DB's files),
    then the state directory unreadable to payhook for workers started
    during the fault; each repaired while the load goes on. payhook must
    answer 503 (its own, with Retry-After) during a fault, never crash or
    answer anything else, and accept again after the repair."""
    # Room for every event the paced load can send (4 KiB each on a
    # tmpfs, about 200 a second) until the test fills the disk itself.
    size = "%dm" % (64 * scale)
    spool_dir, state_dir = ctx.path("spool"), ctx.path("state")
    mount_tmpfs(ctx, spool_dir, size)
    mount_tmpfs(ctx, state_dir, size)
    cfg, spool, _state = ctx.config()
    lt = lighttpd(ctx, cfg, 2)
    send = http_send(lt.port, REQUEST_TIMEOUT)
    load = Load(send, "full", senders=3, seconds=60 * scale,
                backoff=0.05, pace=0.01).start()
    marks = {}

    def phase(name, seconds, action=None):
        """A phase starts just before its fault is set or repaired."""
        marks[name] = time.time()
        if action:
            action()
        sleep_while(load, seconds * scale)

    def fill(d):
        return lambda: fill_filesystem(os.path.join(d, "filler"))

    def free(d):
        return lambda: os.unlink(os.path.join(d, "filler"))

    def state_unwritable():
        # Workers that start while the state directory is out of reach.
        load.pause()
        os.chown(state_dir, 0, 0)
        lt.stop()
        lt.start(port=lt.port)
        load.resume()

    phase("normal", 1.0)
    phase("spool_full", 2.0, fill(spool_dir))
    phase("spool_repaired", 1.5, free(spool_dir))
    phase("state_full", 2.0, fill(state_dir))
    phase("state_repaired", 1.5, free(state_dir))
    phase("state_unwritable", 2.0, state_unwritable)
    phase("state_writable", 1.5,
          lambda: os.chown(state_dir, ctx.uid, ctx.gid))
    marks["end"] = time.time()
    shots = load.stop()

    order = ["normal", "spool_full", "spool_repaired", "state_full",
             "state_repaired", "state_unwritable", "state_writable", "end"]

    def during(name):
        a, b = marks[name], marks[order[order.index(name) + 1]]
        return [s for s in shots if a <= s.t0 < b]
    n = kinds(shots)
    fig.add(sent=len(shots), accepted=n["accepted"], **{
        "503s": n["503"]})
    for fault in ("spool_full", "state_full", "state_unwritable"):
        k = kinds(during(fault))
        fig["503_" + fault] = k["503"]
        fig.expect(k["503"] > 0, "no 503 while %s: the fault was not "
                   "exercised" % fault)
    for repaired in ("spool_repaired", "state_repaired", "state_writable"):
        late = [s for s in during(repaired) if s.t0 >= marks[repaired] + 0.5]
        bad = [s for s in late if not s.acked]
        fig.expect(late and not bad, "%s: %d of %d requests from 0.5 s "
                   "after the repair to the end of the phase were not "
                   "accepted, e.g. %r" % (repaired, len(bad), len(late),
                                          bad[:3]))
    other = [s for s in shots if not s.acked and s.kind != "503"]
    fig["other"] = len(other)
    # lighttpd logs "child signalled: N" for a worker killed by a signal
    # (7 is SIGBUS: a write into a sparse mmapped region on a full disk).
    crashes = re.findall(r"child signalled: (\d+)", read_text(lt.errorlog))
    fig["crashes"] = len(crashes)
    fig.expect(not crashes, "%d workers were killed by a signal (%s)"
               % (len(crashes), ", ".join(
                   signal.Signals(int(c)).name for c in crashes)))
    fig.expect(not other, "%d answers were neither 2xx nor payhook's 503 "
               "(a crash, a server error page or no answer): %s, e.g. %r"
               % (len(other), {k: v for k, v in kinds(other).items() if v},
                  other[:3]))
    index = SpoolIndex(spool.path)
    fig["missing"] = check_acked(fig, shots, index)
    retry = not_acked(shots)
    fig["redelivered"] = redeliver(fig, send, retry,
                                   lambda: SpoolIndex(spool.path))
    final = SpoolIndex(spool.path)
    lost = [s.txn for s in shots if not final.has(s.txn)]
    fig.add(lost=len(lost), twice=final.extra_copies())
    fig.expect(not lost, "%d events are not in new/ after redelivery, "
               "e.g. %r" % (len(lost), lost[:3]))
    fig.expect(not final.unreadable, "files in new/ that are not whole "
               "events: %r" % final.unreadable[:3])


# ---------------------------------------------------------------- 3

STORM_THREADS = 24
STORM_EVENTS = 4


def dup_storm(ctx, fig, scale):
    """Rounds of STORM_THREADS threads posting the same STORM_EVENTS
    events at once (lighttpd, 4 workers): exactly one file per event, one
    "accepted" per event and every other 2xx a duplicate of its id."""
    cfg, spool, _state = ctx.config()
    lt = lighttpd(ctx, cfg, 4)
    send = http_send(lt.port, REQUEST_TIMEOUT)
    rounds = int(20 * scale)
    shots, txns = [], []
    lock = threading.Lock()

    for r in range(rounds):
        batch = ["storm-r%04d-e%d" % (r, e) for e in range(STORM_EVENTS)]
        txns += batch
        barrier = threading.Barrier(STORM_THREADS)

        def storm(i):
            try:
                barrier.wait(30)
            except threading.BrokenBarrierError:
                return
            for j in range(STORM_EVENTS):
                txn = batch[(i + j) % STORM_EVENTS]
                body, sig = event(txn)
                s = send(txn, body, sig)
                with lock:
                    shots.append(s)
        ts = [threading.Thread(target=storm, args=(i,), daemon=True)
              for i in range(STORM_THREADS)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(REQUEST_TIMEOUT * STORM_EVENTS + 30)

    n = kinds(shots)
    index = SpoolIndex(spool.path)
    accepted = {}
    for s in shots:
        if s.kind == "accepted":
            accepted[s.txn] = accepted.get(s.txn, 0) + 1
    twice_acc = [t for t, c in accepted.items() if c > 1]
    mismatch = [s for s in shots if s.acked and not index.has(s.txn, s.ulid)]
    # A last delivery of each: a duplicate of its one file (or accepted
    # if every delivery in the storm was refused with a 503).
    again = deliver_each(send, txns)
    final = SpoolIndex(spool.path)
    not_one = [t for t in txns if len(final.by_txn.get(t, [])) != 1]
    bad_again = [s for s in again.values()
                 if not s.acked or not final.has(s.txn, s.ulid)]
    fig.add(rounds=rounds, events=len(txns), requests=len(shots),
            accepted=n["accepted"], duplicate=n["duplicate"],
            **{"503s": n["503"]})
    other = [s for s in shots if not s.acked and s.kind != "503"]
    fig.add(other=len(other), not_one_file=len(not_one),
            id_mismatch=len(mismatch))
    fig.expect(len(shots) == rounds * STORM_THREADS * STORM_EVENTS,
               "%d requests made of %d" % (len(shots), rounds *
                                          STORM_THREADS * STORM_EVENTS))
    fig.expect(not other, "%d answers were neither 2xx nor 503: %r"
               % (len(other), other[:3]))
    fig.expect(not not_one, "%d events do not have exactly one file in "
               "new/ (event, files): %r" % (len(not_one), [
                   (t, len(final.by_txn.get(t, []))) for t in not_one[:5]]))
    fig.expect(not twice_acc, "events answered \"accepted\" more than "
               "once: %r" % twice_acc[:3])
    fig.expect(not mismatch, "%d 2xx answers name an id that is not the "
               "event's file in new/: %r" % (len(mismatch), mismatch[:3]))
    fig.expect(not bad_again, "a last delivery was not a duplicate of the "
               "event's file: %r" % bad_again[:3])
    fig.expect(final.files == len(txns), "%d files in new/ for %d events"
               % (final.files, len(txns)))


# ---------------------------------------------------------------- 4

def sighup(ctx, fig, scale):
    """payhook --listen (3 workers) signalled with SIGHUP every 0.2-0.4 s
    while signed deliveries flow over FastCGI, each body sent in two parts
    with a pause between them so that signals land while a body is being
    read. No authentic event may get a 4xx (issue 7 fix 3); every 2xx
    must be in new/."""
    cfg, spool, _state = ctx.config()
    sock = ctx.path("payhook.sock")
    ph = Standalone(ctx, "payhook-listen", cfg, "unix:" + sock,
                    workers=3).start()
    rng = random.Random()
    send = fcgi_send(sock, REQUEST_TIMEOUT,
                     pause=lambda: rng.uniform(0.02, 0.15))
    load = Load(send, "hup", senders=6, seconds=6 * scale).start()
    hups = 0
    while load.alive():
        sleep_while(load, rng.uniform(0.2, 0.4))
        if load.alive():
            ph.proc.send_signal(signal.SIGHUP)
            hups += 1
    shots = load.stop()
    ph.wait_workers(3)
    n = kinds(shots)
    index = SpoolIndex(spool.path)
    fig.add(hups=hups, sent=len(shots), acked=n["accepted"] +
            n["duplicate"], **{"4xx": n["4xx"], "503s": n["503"]})
    fig.add(no_answer=n["none"] + n["hung"])
    fig["missing"] = check_acked(fig, shots, index)
    four = [s for s in shots if s.kind == "4xx"]
    fig.expect(not four, "%d authentic events were answered 4xx, e.g. %r"
               % (len(four), four[:3]))
    fig.expect(hups >= 5, "only %d SIGHUPs were sent" % hups)
    other = [s for s in shots if s.kind in ("200-malformed", "5xx",
                                            "503-server")]
    fig.expect(not other, "unexpected answers: %r" % other[:3])
    retry = not_acked(shots)
    fig["redelivered"] = redeliver(fig, fcgi_send(sock, REQUEST_TIMEOUT),
                                   retry, lambda: SpoolIndex(spool.path))
    final = SpoolIndex(spool.path)
    lost = [s.txn for s in shots if not final.has(s.txn)]
    fig.add(lost=len(lost))
    fig.expect(not lost, "%d events are not in new/ after redelivery"
               % len(lost))
    check(ph.proc.poll() is None, "the supervisor survived the SIGHUPs")


# ---------------------------------------------------------------- 5

def spool_replaced(ctx, fig, scale):
    """The spool directory moved away and recreated (an operator's mv, a
    restore) under load (lighttpd, 2 long-lived workers), then the old one
    deleted. Every event acknowledged after the replacement must be in the
    configured path's new/ (issue 7 fix 2), and after the old directory is
    gone payhook must not answer 503 forever."""
    cfg, spool, _state = ctx.config()
    lt = lighttpd(ctx, cfg, 2)
    send = http_send(lt.port, REQUEST_TIMEOUT)
    load = Load(send, "repl", senders=4, seconds=60 * scale,
                backoff=0.05).start()
    old = spool.path + ".old"
    sleep_while(load, 1.5 * scale)
    t_mv = time.time()
    os.rename(spool.path, old)
    # As a restore would; payhook may have recreated some of it already.
    for d in [spool.path] + [spool.sub(x) for x in ("tmp", "new", "cur",
                                                     "done")]:
        os.makedirs(d, 0o700, exist_ok=True)
        os.chmod(d, 0o700)
        ctx.own(d)
    t_new = time.time()
    sleep_while(load, 2.0 * scale)
    # Delete it as rm -rf would, while payhook may still write into it;
    # what it held is indexed first, every pass.
    old_index = SpoolIndex(old)
    end = time.time() + 60
    passes = 0
    while os.path.exists(old) and time.time() < end:
        passes += 1
        old_index.merge(SpoolIndex(old))
        shutil.rmtree(old, ignore_errors=True)
    left = []
    for root, dirs, files in os.walk(old):
        left += [os.path.join(root, n) for n in dirs + files]
    check(not os.path.exists(old), "could not delete %s in %d passes: %r"
          % (old, passes, left[:5]))
    t_rm = time.time()
    sleep_while(load, 2.0 * scale)
    shots = load.stop()
    new_index = SpoolIndex(spool.path)

    before = [s for s in shots if s.acked and s.t0 < t_mv]
    after = [s for s in shots if s.acked and t_new <= s.t0 < t_rm]
    gone = [s for s in shots if t_rm <= s.t0]
    late = [s for s in gone if s.t0 >= t_rm + 1.0]
    fig.add(acked_before=len(before),
            before_found=sum(1 for s in before
                             if new_index.has(s.txn, s.ulid) or
                             old_index.has(s.txn, s.ulid)))
    fig.add(acked_after=len(after),
            after_in_new=sum(1 for s in after
                             if new_index.has(s.txn, s.ulid)),
            after_in_old=sum(1 for s in after
                             if old_index.has(s.txn, s.ulid)))
    k = kinds(gone)
    fig.add(acked_after_rm=k["accepted"] + k["duplicate"],
            **{"503_after_rm": k["503"]})
    lost_rm = [s for s in gone if s.acked and
               not new_index.has(s.txn, s.ulid)]
    # Acknowledged, then in neither directory: removed with the old one.
    fig["lost"] = sum(1 for s in shots if s.acked and
                      not new_index.has(s.txn, s.ulid) and
                      not old_index.has(s.txn, s.ulid))
    fig.expect(before and after and late, "a phase had no traffic "
               "(before %d, after %d, late %d)" % (len(before), len(after),
                                                   len(late)))
    fig.expect(fig["before_found"] == len(before), "%d events "
               "acknowledged before the replacement are in neither spool"
               % (len(before) - fig["before_found"]))
    fig.expect(fig["after_in_new"] == len(after), "%d of %d events "
               "acknowledged after the replacement are not in the "
               "configured spool's new/ (%d went to the old directory)"
               % (len(after) - fig["after_in_new"], len(after),
                  fig["after_in_old"]))
    fig.expect(not lost_rm, "%d events acknowledged after the old spool "
               "was deleted are not in new/" % len(lost_rm))
    bad_late = [s for s in late if not s.acked]
    fig.expect(not bad_late, "%d of %d requests from 1 s after the old "
               "spool was deleted were not accepted (%s)"
               % (len(bad_late), len(late),
                  {k: v for k, v in kinds(bad_late).items() if v}))


# ---------------------------------------------------------------- 6

# System calls a worker is seen in, by x86-64 number (others by number).
SYSCALLS = {0: "read", 1: "write", 17: "pread64", 18: "pwrite64",
            74: "fsync", 75: "fdatasync", 202: "futex", 73: "flock"}
LOG_SYNC = ("fdatasync", "fsync", "write", "pwrite64")


def where(pid, dirs):
    """(what, detail): what a process is doing: "db" in a system call on
    a file of the state directory, "spool" on one of the spool, "socket"
    on a socket (waiting for a request, reading one), "running" or
    "other"; detail is "syscall:file" for a call on a file."""
    try:
        with open("/proc/%d/syscall" % pid) as f:
            fields = f.read().split()
    except OSError:
        return "gone", ""
    if not fields or fields[0] == "running":
        return "running", ""
    call = SYSCALLS.get(int(fields[0]), fields[0]) \
        if fields[0].isdigit() else fields[0]
    if len(fields) < 2:
        return "other", call
    try:
        fd = int(fields[1], 16)
        target = os.readlink("/proc/%d/fd/%d" % (pid, fd))
    except (ValueError, OSError):
        return "other", call
    if target.startswith("socket:"):
        return "socket", call
    for name, d in dirs.items():
        if target.startswith(d + "/"):
            return name, "%s:%s" % (call, os.path.basename(target))
    return "other", call


def find_victim(pids, dirs, seconds):
    """A worker inside a database call, best one writing or syncing the
    write-ahead log (it then holds the log's mutexes), else one at least
    mid-request; (pid, what, detail) or (None, None, None)."""
    end = time.time() + seconds
    db = fallback = None
    while time.time() < end:
        for pid in pids:
            w, detail = where(pid, dirs)
            if w == "db" and detail.startswith(LOG_SYNC) and \
                    ":log." in detail:
                return pid, w, detail
            if w == "db" and db is None:
                db = (pid, w, detail)
            if w in ("spool", "running") and fallback is None:
                fallback = (pid, w, detail)
        if db and time.time() > end - seconds / 2:
            return db
        time.sleep(0.001)
    return db or fallback or (None, None, None)


def stopped_worker(ctx, fig, scale):
    """payhook --listen (3 workers) under load over FastCGI; a worker is
    stopped (SIGSTOP) in the middle of a request, preferably inside a
    Berkeley DB call, so that it holds whatever it holds (locks, region
    mutexes, the lock file); ANSWER_BOUND + HOLD_EXTRA_S seconds later it
    is killed (SIGKILL). Every other request must get an answer (2xx or
    503) within ANSWER_BOUND seconds, and afterwards every delivery must
    be accepted (issue 7 fix 7). The request in the stopped worker's hands
    is the one exception: it is dropped when the worker is killed."""
    cfg, spool, state = ctx.config()
    sock = ctx.path("payhook.sock")
    ph = Standalone(ctx, "payhook-listen", cfg, "unix:" + sock,
                    workers=3).start()
    hold = ANSWER_BOUND + HOLD_EXTRA_S
    # The client waits past the kill, to tell "late" from "never".
    send = fcgi_send(sock, hold + 3)
    rounds = int(2 * scale)
    load = Load(send, "stop", senders=4,
                seconds=rounds * (hold + 10) + 30, backoff=0.05).start()
    dirs = {"db": os.path.realpath(state),
            "spool": os.path.realpath(spool.path)}
    in_db, victims, unreplaced, stopped_in = 0, [], 0, []
    for _r in range(rounds):
        sleep_while(load, 1.0)
        pid, w, detail = find_victim(ph.worker_pids(), dirs, 3.0)
        if pid is None:
            continue
        os.kill(pid, signal.SIGSTOP)
        victims.append(pid)
        in_db += w == "db"
        stopped_in.append(detail or w)
        sleep_while(load, hold)
        os.kill(pid, signal.SIGKILL)
        try:
            ph.wait_workers(3, exclude=[pid])
        except Exception:
            unreplaced += 1
        sleep_while(load, 1.0)
    shots = load.stop(grace=hold + 10)
    n = kinds(shots)
    answered = [s for s in shots if s.status is not None]
    late = [s for s in answered if s.latency > ANSWER_BOUND]
    fig.add(rounds=len(victims), in_db_call=in_db, sent=len(shots),
            answered=len(answered),
            max_latency=max([s.latency for s in answered] or [0.0]),
            **{"503s": n["503"]})
    fig.add(late=len(late), dropped=n["none"], hung=n["hung"])
    ctx.log("stopped-worker: workers stopped in %s; requests dropped: %s"
            % (", ".join(stopped_in),
               ", ".join(s.txn for s in shots if s.kind == "none")))
    fig.expect(len(victims) == rounds, "only %d of %d rounds found a "
               "worker mid-request" % (len(victims), rounds))
    fig.expect(not late, "%d requests were answered only after %.0f s "
               "(waiting for the stopped worker), e.g. %r"
               % (len(late), ANSWER_BOUND, late[:3]))
    fig.expect(n["hung"] == 0, "%d requests got no answer at all within "
               "%.0f s" % (n["hung"], hold + 3))
    # The request in the stopped worker's hands is dropped when it is
    # killed (the web server would answer 502): at most one per round.
    fig.expect(n["none"] <= len(victims), "%d requests dropped for %d "
               "stopped workers" % (n["none"], len(victims)))
    other = [s for s in shots if s.kind in ("200-malformed", "4xx", "5xx",
                                            "503-server")]
    fig.expect(not other, "answers other than 2xx or 503: %r" % other[:3])
    fig.expect(unreplaced == 0, "the supervisor did not replace %d killed "
               "workers within 10 s" % unreplaced)

    # Recovery: fresh deliveries, all at once (a wedged server costs one
    # ANSWER_BOUND, not one per request), are all accepted.
    fresh = ["stop-after-%02d" % i for i in range(8)]
    after = deliver_each(fcgi_send(sock, ANSWER_BOUND), fresh,
                         threads=len(fresh))
    ok = [s for s in after.values() if s.kind == "accepted"]
    fig["recovered"] = "%d/%d" % (len(ok), len(fresh))
    fig.expect(len(ok) == len(fresh), "after the faults, %d of %d fresh "
               "deliveries were accepted: %s" % (
                   len(ok), len(fresh),
                   {k: v for k, v in kinds(after.values()).items() if v}))
    index = SpoolIndex(spool.path)
    fig["missing"] = check_acked(fig, shots, index)
    if len(ok) == len(fresh):
        # The events refused during the fault, delivered again. One whose
        # half-made claim could not be dropped (the release waited for
        # the stopped worker too) may still get a 503 until that claim
        # lapses (README, "What happens to one webhook"); nothing else.
        retry = not_acked(shots)
        again = deliver_each(send, retry, 8)
        index = SpoolIndex(spool.path)
        good = [s for s in again.values() if s.acked and
                index.has(s.txn, s.ulid)]
        lapsing = [s for s in again.values() if s.kind == "503"]
        bad = [s for s in again.values()
               if s not in good and s not in lapsing]
        fig.add(redelivered="%d/%d" % (len(good), len(retry)),
                claim_pending=len(lapsing))
        fig.expect(not bad, "%d redeliveries were neither accepted (or a "
                   "duplicate of a file in new/) nor 503, e.g. %r"
                   % (len(bad), bad[:3]))
    else:
        # Wedged: stop the workers by PID now rather than wait for the
        # supervisor's 30 s grace at cleanup.
        for pid in ph.worker_pids():
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)


# name, function, time budget in seconds at scale 1, what it does
SCENARIOS = [
    ("kill-workers", kill_workers, 40,
     "SIGKILL of FastCGI workers under load"),
    ("disk-full", disk_full, 40,
     "full spool and state file systems, unreadable state_dir"),
    ("dup-storm", dup_storm, 40,
     "concurrent deliveries of the same events"),
    ("sighup", sighup, 40,
     "SIGHUP to payhook --listen while bodies are read"),
    ("spool-replaced", spool_replaced, 40,
     "spool directory moved away, recreated, old one deleted"),
    ("stopped-worker", stopped_worker, 60,
     "a worker stopped inside a database call, then killed"),
]
