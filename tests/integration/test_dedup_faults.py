# test_dedup_faults.py - the dedup database under faults: a full state
# disk, a process killed inside Berkeley DB, --dedup-count under load.
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# Each fault must turn into answers of 503 with Retry-After (never a
# dropped connection, never a hang), and deliveries must be accepted again
# once the fault is gone.

import os
import subprocess
import threading
import time

import harness
from harness import (EXAMPLE, Failure, Skip, accepted_id, as_test_user,
                     body_of, check, check_error, eq, fcgi_params,
                     fcgi_request, fill_filesystem, mount_tmpfs, ngn_headers,
                     ngn_payload, pid_alive)
from test_servers import Standalone


def _post_txn(lt, txn, timeout=30):
    return lt.post(body_of(ngn_payload(txn=txn)), timeout=timeout)


def test_dedup_state_disk_full(ctx):
    """State on a full tmpfs: every delivery answers 503, none crashes the
    worker (Berkeley DB's sparse, mmapped region files used to SIGBUS),
    and once space is freed the same deliveries are accepted."""
    cfg, spool, state = ctx.config()
    mount_tmpfs(ctx, state, "8m")
    lt = ctx.lighttpd_fcgi(cfg)
    pids = lt.children()
    accepted_id(lt.post(body_of(EXAMPLE)), "before the disk fills")
    filler = os.path.join(state, "filler")
    fill_filesystem(filler)
    eq(os.statvfs(state).f_bavail, 0, "free blocks on the filled tmpfs")
    # Pages the database and its log already hold take a few more
    # records; past them every delivery must answer 503.
    n = 40
    statuses = []
    for i in range(n):
        try:
            r = _post_txn(lt, "full-%03d" % i)
        except OSError as e:
            raise Failure("delivery %d on a full state disk: connection "
                          "dropped (%r) after %r; log: %s"
                          % (i, e, statuses, lt.logs()[-2000:]))
        statuses.append(r.status)
        if r.status == 200:
            accepted_id(r, "delivery %d on a full state disk" % i)
        else:
            check_error(r, 503, "delivery %d on a full state disk" % i)
    ctx.log("answers on the full disk: %r" % statuses)
    check("SIGBUS" not in lt.logs() and "signal 7" not in lt.logs(),
          "a payhook process died of SIGBUS: %s" % lt.logs()[-2000:])
    check(503 in statuses, "no 503 on the full disk: %r" % statuses)
    os.unlink(filler)
    for i in range(n):
        r = _post_txn(lt, "full-%03d" % i)
        if statuses[i] == 200:
            eq(r.status, 200, "redelivery %d after freeing space" % i)
            eq(r.json()["status"], "duplicate",
               "redelivery %d after freeing space" % i)
        else:
            accepted_id(r, "delivery %d after freeing space" % i)
    check(lt.children() != [], "a payhook process serves after the repair")
    ctx.log("payhook processes before %r, after %r" % (pids, lt.children()))


def test_dedup_state_disk_full_cgi(ctx):
    """The same in CGI mode, where every delivery is a new process that
    joins the environment on the full disk."""
    cfg, spool, state = ctx.config()
    mount_tmpfs(ctx, state, "8m")
    r = ctx.cgi_post(cfg, body_of(EXAMPLE))
    eq(r.status, 200, "before the disk fills: %s" % r.stderr[-1000:])
    filler = os.path.join(state, "filler")
    fill_filesystem(filler)
    eq(os.statvfs(state).f_bavail, 0, "free blocks on the filled tmpfs")
    n = 30
    statuses = []
    for i in range(n):
        r = ctx.cgi_post(cfg, body_of(ngn_payload(txn="full-%03d" % i)))
        check(r.rc == 0 and r.status in (200, 503),
              "CGI delivery %d on a full state disk: exit %d, status %r "
              "after %r; stderr: %s" % (i, r.rc, r.status, statuses,
                                        r.stderr[-1500:]))
        statuses.append(r.status)
    ctx.log("CGI answers on the full disk: %r" % statuses)
    check(503 in statuses, "no 503 on the full disk: %r" % statuses)
    os.unlink(filler)
    for i in range(n):
        r = ctx.cgi_post(cfg, body_of(ngn_payload(txn="full-%03d" % i)))
        eq(r.status, 200, "CGI delivery %d after freeing space: %s"
           % (i, r.stderr[-1000:]))


def test_dedup_count_under_load(ctx):
    """payhook --dedup-count answers while workers commit deliveries."""
    cfg, spool, _state = ctx.config()
    lt = ctx.lighttpd_fcgi(cfg, procs=4)
    stop = threading.Event()
    results = []            # (thread, i, status)
    errors = []

    def load(t):
        i = 0
        while not stop.is_set() and i < 2000:
            try:
                r = _post_txn(lt, "load-%d-%04d" % (t, i), timeout=20)
                results.append((t, i, r.status))
            except OSError as e:
                errors.append(repr(e))
                return
            i += 1

    threads = [threading.Thread(target=load, args=(t,)) for t in range(6)]
    for th in threads:
        th.start()
    counts = []
    try:
        time.sleep(0.5)
        for _ in range(8):
            t0 = time.time()
            p = ctx.run_payhook(["--dedup-count", "--config", cfg],
                                timeout=30)
            took = time.time() - t0
            out = p.stdout.decode().strip()
            check(p.returncode == 0 and out.isdigit(),
                  "--dedup-count under load: rc %d, stdout %r, stderr %r"
                  % (p.returncode, out, p.stderr.decode()[-1000:]))
            check(took < 10, "--dedup-count under load took %.1f s" % took)
            counts.append((int(out), took))
    finally:
        stop.set()
        for th in threads:
            th.join(60)
    check(not errors, "connections failed under load: %r" % errors[:3])
    statuses = sorted(set(s for _t, _i, s in results))
    eq(statuses, [200], "statuses under load")
    ctx.log("%d deliveries; --dedup-count (value, seconds): %s"
            % (len(results), ", ".join("%d/%.2f" % c for c in counts)))
    check(all(a[0] <= b[0] for a, b in zip(counts, counts[1:])),
          "counts never decrease: %r" % counts)
    eq(ctx.dedup_count(cfg), len(results), "dedup count after the load")
    eq(len(spool.new()), len(results), "files in new/ after the load")


def _die_in_log_write(ctx, state):
    """Run the unit test binary's fault helper: it joins the environment,
    adds records and is SIGKILLed inside the log write of a commit,
    leaving the log's region mutex held for ever (Debian's libdb mutexes
    are not robust)."""
    unit = harness.UNIT_BINARY
    if unit is None or not os.access(unit, os.X_OK):
        raise Skip("no unit test binary of this build (build "
                   "tests/unit/unit): %s" % unit)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if os.environ.get(k):
            env[k] = os.environ[k]
    p = subprocess.run(as_test_user([unit, "--die-in-log-write", state]),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env, timeout=120)
    eq(p.returncode, -9, "the fault helper's end (stderr %r)"
       % p.stderr.decode()[-1000:])


def test_dedup_wedged_worker(ctx):
    """A process dies inside Berkeley DB holding a mutex; the FastCGI
    worker that next needs it answers 503 within the watchdog's 10 s
    instead of hanging, exits, and its replacement recovers the
    environment and accepts the delivery."""
    cfg, spool, state = ctx.config()
    lt = ctx.lighttpd_fcgi(cfg)
    first = accepted_id(lt.post(body_of(EXAMPLE)), "before the fault")
    worker = lt.children()
    eq(len(worker), 1, "payhook processes")
    _die_in_log_write(ctx, state)
    body = body_of(ngn_payload(txn="wedge-1"))
    t0 = time.time()
    try:
        r = lt.post(body, timeout=40)
    except OSError as e:
        raise Failure("no answer in 40 s after a process died inside "
                      "Berkeley DB (%r): the worker hangs; log: %s"
                      % (e, lt.logs()[-1500:]))
    took = time.time() - t0
    check_error(r, 503, "delivery behind the dead mutex")
    ctx.log("503 after %.1f s" % took)
    check(9 <= took < 20, "the 503 came after %.1f s, not ~10 s" % took)
    deadline = time.time() + 10
    while pid_alive(worker[0]) and time.time() < deadline:
        time.sleep(0.1)
    check(not pid_alive(worker[0]), "the wedged worker %d still runs"
          % worker[0])
    logs = lt.logs()
    check("overran 10000 ms" in logs and "exiting after 2 requests" in logs,
          "the worker's log lines: %s" % logs[-1500:])
    # lighttpd starts a new worker; until it does, lighttpd itself may
    # answer 503. The new worker recovers the environment (DB_REGISTER).
    deadline = time.time() + 20
    while True:
        r = lt.post(body)
        if r.status == 200 or time.time() >= deadline:
            break
        eq(r.status, 503, "answer while the worker is replaced")
        time.sleep(0.5)
    ulid = accepted_id(r, "the delivery after the worker was replaced")
    check(lt.children() and lt.children() != worker,
          "a new payhook process serves: %r" % lt.children())
    r = lt.post(body_of(EXAMPLE))
    eq(r.json(), {"status": "duplicate", "id": first},
       "the first delivery is still recorded")
    # The wedged worker's claim hung (every transaction writes the log,
    # whose mutex the dead process holds): it spooled nothing, and the
    # redelivery spools wedge-1 once.
    events = sorted((ev["dedup_key"], ev["id"])
                    for _n, _d, ev in spool.events())
    eq(events, [("ngn:ngn-gateway:payment.success:123456789", first),
                ("ngn:ngn-gateway:payment.success:wedge-1", ulid)],
       "spooled events")


def test_dedup_wedged_worker_answers_its_queue(ctx):
    """Deliveries already queued on a wedged worker's socket get its 503
    too. lighttpd gives each worker a socket of its own: had the worker
    exited at once, they would have been reset, which lighttpd answers
    with a 500 page of its own."""
    cfg, spool, _state = ctx.config()
    lt = ctx.lighttpd_fcgi(cfg)
    accepted_id(lt.post(body_of(EXAMPLE)), "before the fault")
    worker = lt.children()
    eq(len(worker), 1, "payhook processes")
    _die_in_log_write(ctx, _state)
    answers = {}

    def deliver(txn):
        try:
            answers[txn] = lt.post(body_of(ngn_payload(txn=txn)),
                                   timeout=40)
        except OSError as e:
            answers[txn] = e
    threads = []
    for i in range(3):
        t = threading.Thread(target=deliver, args=("queued-%d" % i,))
        t.start()
        threads.append(t)
        time.sleep(0.5)     # queued-0 is the one the worker takes first
    for t in threads:
        t.join(60)
    for txn in sorted(answers):
        r = answers[txn]
        check(not isinstance(r, OSError), "%s: no answer (%r)" % (txn, r))
        check_error(r, 503, txn)
    eq(len(answers), 3, "answers")
    deadline = time.time() + 10
    while pid_alive(worker[0]) and time.time() < deadline:
        time.sleep(0.1)
    check(not pid_alive(worker[0]), "the wedged worker %d still runs"
          % worker[0])
    check("exiting after 4 requests" in lt.logs(),
          "the worker's log lines: %s" % lt.logs()[-1500:])
    # queued-0's claim hung (as in test_dedup_wedged_worker) and the
    # queued ones were refused before any claim: none reached the spool.
    eq(sorted(ev["dedup_key"] for _n, _d, ev in spool.events()),
       ["ngn:ngn-gateway:payment.success:123456789"], "spooled events")


def test_dedup_wedged_listen_worker(ctx):
    """The same under payhook --listen: the wedged worker answers 503 and
    exits, the supervisor starts another, which recovers and accepts."""
    cfg, spool, state = ctx.config()
    sock = ctx.path("payhook.sock")
    ph = Standalone(ctx, "payhook-listen", cfg, "unix:" + sock,
                    workers=1).start()

    def deliver(txn, timeout=20):
        body = body_of(ngn_payload(txn=txn))
        return fcgi_request(sock, fcgi_params(
            body, signature=ngn_headers(body)["X-Signature"]), body,
            timeout=timeout)

    eq(deliver("before").status, 200, "delivery before the fault")
    worker = ph.worker_pids()
    _die_in_log_write(ctx, state)
    t0 = time.time()
    try:
        r = deliver("wedge-1", timeout=40)
    except OSError as e:
        raise Failure("no answer in 40 s after a process died inside "
                      "Berkeley DB (%r): the worker hangs" % (e,))
    took = time.time() - t0
    check_error(r, 503, "delivery behind the dead mutex")
    check(9 <= took < 20, "the 503 came after %.1f s, not ~10 s" % took)
    ph.wait_workers(1, exclude=worker)
    r = deliver("wedge-1")
    eq(r.status, 200, "the delivery after the worker was replaced (%r)"
       % r.body)
    # Not spooled by the wedged worker, whose claim hung: once, by its
    # successor, as in test_dedup_wedged_worker.
    eq(sorted(ev["dedup_key"] for _n, _d, ev in spool.events()),
       ["ngn:ngn-gateway:payment.success:before",
        "ngn:ngn-gateway:payment.success:wedge-1"], "spooled events")
    check("worker %d exited with status 1" % worker[0] in ph.logs(),
          "the supervisor's log line for the exit: %s" % ph.logs()[-1500:])
