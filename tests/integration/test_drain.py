# test_drain.py - payhook drain: run a command for each spooled event.
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# Events are written into new/ as payhook writes them (schema
# payhook.event/2, "<stamp>-<id>.json", tmp file then rename), except in
# the first test, which spools a real one through payhook in CGI mode.
# Job scripts record what they saw in files of the test's directory; drain
# runs as the test user, as payhook does.

import json
import os
import random
import re
import shutil
import signal
import subprocess
import time

from harness import (EXAMPLE, RFC3339_MS_RE, Failure, Skip, as_test_user,
                     body_of, check, eq, kill_left, pid_alive, scan_sanitizer)

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(HERE)), "examples")
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
SUBDIRS = ("new", "cur", "done", "failed")


class Drain:
    """A payhook drain running in the background, stopped by PID."""

    def __init__(self, ctx, args, name="drain"):
        self.ctx = ctx
        self.errpath = ctx.path("%s-%d.stderr" % (name, time.time_ns()))
        self.errfile = open(self.errpath, "wb")
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if os.environ.get(k):
                env[k] = os.environ[k]
        # setpriv execs payhook: the PID is drain's own.
        self.proc = subprocess.Popen(
            as_test_user([ctx.payhook, "drain"] + list(args)),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=self.errfile, env=env)
        self.pid = self.proc.pid
        ctx.cleanups.append(self.cleanup)

    def stderr(self):
        with open(self.errpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc.poll() is None:
            os.kill(self.pid, sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Failure("drain %d did not exit within %d s after %s"
                          % (self.pid, timeout, sig.name))
        return rc

    def cleanup(self):
        if self.proc.poll() is None:
            kill_left([self.pid])
            self.proc.wait(5)
        self.errfile.close()
        self.ctx.stderr_texts.append(self.stderr())


def ulid(n):
    """A well-formed ULID whose random part is n (tests need no entropy)."""
    v = (int(time.time() * 1000) << 80) | n
    return "".join(CROCKFORD[(v >> (5 * i)) & 31] for i in range(25, -1, -1))


class Events:
    """Writes events into a spool's new/ in arrival order."""

    def __init__(self, ctx, spool):
        self.ctx = ctx
        self.spool = spool
        self.n = 0
        self.base = time.time()
        for d in [spool] + [os.path.join(spool, s) for s in SUBDIRS]:
            if not os.path.isdir(d):
                ctx.mkdir(d)

    def add(self, payment_id=None, type_="payment.succeeded", key=None,
            route="shop"):
        self.n += 1
        ms = int(self.base * 1000) + self.n     # names sort by arrival
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(ms // 1000)) \
            + ".%03dZ" % (ms % 1000)
        eid = ulid(self.n)
        key = key or "%s:ngn-gateway:%s:%d" % (route, type_, self.n)
        ev = {"schema": "payhook.event/2", "id": eid, "dedup_key": key,
              "route": route, "provider": "ngn-gateway", "type": type_,
              "provider_event": type_, "payment_id": payment_id,
              "order_id": None, "refund_id": None, "status": "success",
              "amount": {"value": "50.00", "minor": 5000,
                         "currency": "NGN", "exponent": 2},
              "occurred_at": None,
              "received_at": stamp[:4] + "-" + stamp[4:6] + "-" +
              stamp[6:8] + "T" + stamp[9:11] + ":" + stamp[11:13] + ":" +
              stamp[13:19] + "Z",
              "verified_by": "hmac-sha512", "raw": {"n": self.n}}
        name = "%s-%s.json" % (stamp, eid)
        tmp = os.path.join(self.spool, ".tmp-" + name)
        self.ctx.write(tmp, json.dumps(ev) + "\n")
        os.rename(tmp, os.path.join(self.spool, "new", name))
        return name, ev


def listing(spool):
    out = {}
    for s in SUBDIRS:
        try:
            out[s] = sorted(os.listdir(os.path.join(spool, s)))
        except FileNotFoundError:
            out[s] = []
    return out


def script(ctx, name, text):
    """A job script in the test directory, runnable by the test user."""
    return ctx.write(ctx.path(name), "#!/bin/sh\n" + text, mode=0o755)


def run_drain(ctx, args, timeout=30):
    p = ctx.run_payhook(["drain"] + list(args), timeout=timeout)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def lines(path):
    try:
        with open(path) as f:
            return [ln.rstrip("\n") for ln in f]
    except FileNotFoundError:
        return []


def wait_for(cond, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.05)
    raise Failure("timed out (%g s) waiting for %s" % (timeout, what))


def state_of(spool, name):
    with open(os.path.join(spool, ".drain", name)) as f:
        return json.load(f)


def check_attempt(a, number, exit_status, sig, timed_out, what):
    eq(sorted(a), ["exit_status", "finished_at", "number", "signal",
                   "started_at", "timed_out"], what + ": keys")
    eq(a["number"], number, what + ": number")
    eq(a["exit_status"], exit_status, what + ": exit_status")
    eq(a["signal"], sig, what + ": signal")
    eq(a["timed_out"], timed_out, what + ": timed_out")
    for k in ("started_at", "finished_at"):
        check(RFC3339_MS_RE.match(a[k]), "%s: %s %r" % (what, k, a[k]))
    check(a["started_at"] <= a["finished_at"], what + ": times in order")


# A job that records its environment and the bytes of its standard input.
ENV_JOB = """
d=%s
cat > "$d/stdin.$PAYHOOK_EVENT_ID"
printf '%%s|%%s|%%s|%%s|%%s|%%s\\n' "$PAYHOOK_EVENT_ID" "$PAYHOOK_EVENT_TYPE" \
  "$PAYHOOK_DEDUP_KEY" "$PAYHOOK_ROUTE" "$PAYHOOK_PROVIDER" \
  "$PAYHOOK_ATTEMPT" >> "$d/env.log"
"""


def test_drain_success_real_event(ctx):
    """A real event spooled through CGI runs once and moves to done/."""
    cfg, spool, _state = ctx.config()
    r = ctx.cgi_post(cfg, body_of(EXAMPLE))
    eq(r.status, 200, "delivery (stderr %r)" % r.stderr[-300:])
    name = spool.new()[0]
    data = spool.read(name)
    ev = json.loads(data)
    job = script(ctx, "job.sh", ENV_JOB % ctx.path())
    rc, out, err = run_drain(ctx, ["--config", cfg, "--once", "--exec", job])
    eq(rc, 0, "drain --once exit status (stderr %r)" % err)
    eq(out, "", "drain's stdout")
    eq(listing(spool.path), {"new": [], "cur": [], "done": [name],
                             "failed": []}, "spool after the run")
    with open(os.path.join(spool.path, "done", name), "rb") as f:
        eq(f.read(), data, "the event in done/, unchanged")
    with open(ctx.path("stdin." + ev["id"]), "rb") as f:
        eq(f.read(), data, "the job's standard input")
    eq(lines(ctx.path("env.log")),
       ["|".join([ev["id"], ev["type"], ev["dedup_key"], ev["route"],
                  ev["provider"], "1"])], "the job's environment")
    eq(os.listdir(os.path.join(spool.path, ".drain")), [],
       "no state left for a finished event")
    check(re.search(r"%s: attempt 1 succeeded in [0-9.]+ s, moved to "
                    r"done/" % re.escape(name), err), "log line: %r" % err)
    check("customer@example.com" not in err, "event body in the log")
    # --spool overrides the configuration.
    other = ctx.path("other-spool")
    ev2 = Events(ctx, other)
    n2, _ = ev2.add()
    rc, _out, err = run_drain(ctx, ["--config", cfg, "--spool", other,
                                    "--once", "--exec", "true"])
    eq(rc, 0, "drain --spool exit status (stderr %r)" % err)
    eq(listing(other)["done"], [n2], "--spool's event ran")
    eq(listing(spool.path)["done"], [name], "the configured spool untouched")


def test_drain_delete_done_and_usage(ctx):
    ev = Events(ctx, ctx.path("spool"))
    names = [ev.add()[0] for _ in range(3)]
    rc, _out, err = run_drain(ctx, ["--spool", ev.spool, "--once",
                                    "--delete-done", "--jobs", "3",
                                    "--exec", "cat >/dev/null"])
    eq(rc, 0, "exit status (stderr %r)" % err)
    eq(listing(ev.spool), {"new": [], "cur": [], "done": [], "failed": []},
       "--delete-done removes finished events")
    eq(err.count("succeeded in"), 3, "three successes logged: %r" % err)
    check(all(n in err for n in names), "each event named in the log")
    for args, msg in [
            ([], "give --exec CMD"),
            (["--exec", "true", "--timeout", "0"], "--timeout"),
            (["--exec", "true", "--timeout", "5x"], "--timeout"),
            (["--exec", "true", "--retry-min", "1h", "--retry-max", "1m"],
             "--retry-max is below"),
            (["--exec", "true", "--jobs", "0"], "--jobs"),
            (["--exec", "true", "--max-attempts", "x"], "--max-attempts"),
            (["--retry-failed", "--exec", "true"], "give --exec CMD"),
            (["--exec", "true", "stray"], "give --exec CMD")]:
        rc, _out, err = run_drain(ctx, ["--spool", ev.spool] + args)
        eq(rc, 2, "exit status for %r" % args)
        check(msg in err, "message for %r: %r" % (args, err))


def test_drain_as_root_acts_as_the_spool_owner(ctx):
    """Run by root, drain acts as the spool's owner, so that the folders
    it makes stay usable by payhook; a spool that does not exist yet is
    refused rather than created owned by root, which payhook, running
    as its own user, could never write to."""
    if os.geteuid() != 0:
        raise Skip("needs root")
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if os.environ.get(k):
            env[k] = os.environ[k]
    missing = ctx.path("no-spool-yet")
    p = subprocess.run([ctx.payhook, "drain", "--spool", missing, "--once",
                        "--exec", "true"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, timeout=30)
    eq(p.returncode, 1, "exit status (stderr %r)" % p.stderr)
    eq(p.stderr.decode(), "payhook: %s does not exist yet: run this as the "
       "user payhook runs as, or after its first delivery\n" % missing,
       "the refusal")
    check(not os.path.lexists(missing), "the missing spool was created")
    ev = Events(ctx, ctx.path("spool"))
    ev.add()
    owner = os.stat(ev.spool).st_uid
    check(owner != 0, "the test spool belongs to the test user")
    p = subprocess.run([ctx.payhook, "drain", "--spool", ev.spool, "--once",
                        "--exec", "cat >/dev/null"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, timeout=30)
    eq(p.returncode, 0, "exit status (stderr %r)" % p.stderr)
    eq(len(listing(ev.spool)["done"]), 1, "the event ran")
    for d in ("cur", "done", ".drain"):
        path = os.path.join(ev.spool, d)
        if os.path.lexists(path):
            eq(os.stat(path).st_uid, owner, "owner of %s" % d)


def test_drain_retry_then_success(ctx):
    ev = Events(ctx, ctx.path("spool"))
    name, e = ev.add(payment_id="P1")
    # Fails on attempt 1 with a message, succeeds on attempt 2.
    job = script(ctx, "job.sh", (ENV_JOB % ctx.path()) + """
[ "$PAYHOOK_ATTEMPT" = 2 ] || { echo "bank API down" >&2; exit 3; }
""")
    d = Drain(ctx, ["--spool", ev.spool, "--retry-min", "1",
                    "--retry-max", "1", "--exec", job])
    wait_for(lambda: listing(ev.spool)["done"] == [name], 15,
             "the event in done/")
    eq(d.stop(), 0, "drain's exit status after SIGTERM")
    tail = "|".join([e["id"], e["type"], e["dedup_key"], "shop",
                     "ngn-gateway"])
    eq(lines(ctx.path("env.log")), [tail + "|1", tail + "|2"],
       "PAYHOOK_ATTEMPT over the two attempts")
    err = d.stderr()
    check(re.search(r"%s: attempt 1 failed \(exit status 3 after [0-9.]+ "
                    r"s\); next try in 1.0 s" % re.escape(name), err),
          "log of the failed attempt: %r" % err)
    check("attempt 2 succeeded" in err, "log of the success: %r" % err)
    check("bank API down" not in err, "the job's stderr is not logged")
    eq(listing(ev.spool)["cur"], [], "cur/ empty")


def test_drain_timeout_kills_group(ctx):
    ev = Events(ctx, ctx.path("spool"))
    name, _e = ev.add()
    # The job leaves a grandchild in its process group, then hangs.
    job = script(ctx, "job.sh", """
sleep 60 &
echo $! > %s
echo started >&2
wait
""" % ctx.path("grandchild.pid"))
    t0 = time.time()
    rc, _out, err = run_drain(ctx, ["--spool", ev.spool, "--once",
                                    "--timeout", "1", "--max-attempts", "1",
                                    "--exec", job])
    took = time.time() - t0
    eq(rc, 0, "exit status (stderr %r)" % err)
    check(took < 8, "drain took %.1f s for a 1 s timeout" % took)
    with open(ctx.path("grandchild.pid")) as f:
        gc = int(f.read())
    wait_for(lambda: not pid_alive(gc), 3, "the grandchild to be gone")
    eq(listing(ev.spool)["failed"], [name, name + ".err.json"],
       "failed/ after a timeout")
    with open(os.path.join(ev.spool, "failed", name + ".err.json")) as f:
        rep = json.load(f)
    eq(len(rep["attempts"]), 1, "attempts")
    check_attempt(rep["attempts"][0], 1, None, "SIGKILL", True, "attempt 1")
    eq(rep["stderr_tail"], "started\n", "stderr_tail")
    check("attempt 1 timed out; killed its process group" in err,
          "timeout log line: %r" % err)


def test_drain_dead_letter_and_retry_failed(ctx):
    ev = Events(ctx, ctx.path("spool"))
    name, e = ev.add(payment_id="P9", type_="payment.failed")
    ok_name, _ = ev.add(payment_id="P10")
    # 5000 bytes of stderr, with invalid UTF-8, then exit 7 (P9 only).
    job = script(ctx, "job.sh", """
cat > /dev/null
[ "$PAYHOOK_EVENT_ID" = %s ] || exit 0
i=0
while [ $i -lt 100 ]; do
  printf 'line %%02d of the error output, 49 bytes long..\\n' $i >&2
  i=$((i+1))
done
printf 'bad \\377 byte\\n' >&2
exit 7
""" % e["id"])
    t0 = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 1))
    rc, _out, err = run_drain(ctx, ["--spool", ev.spool, "--once",
                                    "--retry-min", "0", "--max-attempts", "2",
                                    "--exec", job])
    eq(rc, 0, "exit status (stderr %r)" % err)
    eq(listing(ev.spool), {"new": [], "cur": [], "done": [ok_name],
                           "failed": [name, name + ".err.json"]},
       "spool after two failed attempts")
    side = os.path.join(ev.spool, "failed", name + ".err.json")
    eq(os.stat(side).st_mode & 0o777, 0o600, "sidecar mode")
    with open(side, "rb") as f:
        raw = f.read()
    rep = json.loads(raw)
    eq(list(rep), ["schema", "event_file", "event_id", "dedup_key", "route",
                   "type", "attempts", "stderr_tail"], "sidecar keys")
    eq(rep["schema"], "payhook.drain-error/1", "schema")
    eq(rep["event_file"], name, "event_file")
    eq(rep["event_id"], e["id"], "event_id")
    eq(rep["dedup_key"], e["dedup_key"], "dedup_key")
    eq(rep["route"], "shop", "route")
    eq(rep["type"], "payment.failed", "type")
    eq(len(rep["attempts"]), 2, "attempts")
    for i, a in enumerate(rep["attempts"]):
        check_attempt(a, i + 1, 7, None, False, "attempt %d" % (i + 1))
        check(a["started_at"] >= t0, "attempt %d started now" % (i + 1))
    full = b"".join(b"line %02d of the error output, 49 bytes long..\n" % i
                    for i in range(100)) + b"bad \xff byte\n"
    eq(rep["stderr_tail"],
       full[-4096:].decode("utf-8", "replace"), "stderr_tail")
    eq(len(full[-4096:]), 4096, "the tail is 4 KiB")
    check("moved to failed/ after 2 attempts" in err, "log: %r" % err)

    # --retry-failed with an id that is not there: an error, nothing moved.
    rc, out, err = run_drain(ctx, ["--spool", ev.spool, "--retry-failed",
                                   "01KAKQ7D8B0000000000000000"])
    eq(rc, 1, "exit status for an unknown id")
    check("no dead letter with id 01KAKQ7D8B0000000000000000" in err,
          "message: %r" % err)
    eq(listing(ev.spool)["failed"], [name, name + ".err.json"],
       "failed/ untouched")
    rc, out, err = run_drain(ctx, ["--spool", ev.spool, "--retry-failed",
                                   e["id"]])
    eq((rc, out), (0, "requeued %s\n" % name), "--retry-failed (%r)" % err)
    eq(listing(ev.spool), {"new": [name], "cur": [], "done": [ok_name],
                           "failed": []}, "spool after --retry-failed")
    # Attempts start again from 1.
    job2 = script(ctx, "job2.sh", ENV_JOB % ctx.path())
    rc, _out, err = run_drain(ctx, ["--spool", ev.spool, "--once",
                                    "--exec", job2])
    eq(rc, 0, "exit status (stderr %r)" % err)
    eq([ln.split("|")[-1] for ln in lines(ctx.path("env.log"))], ["1"],
       "PAYHOOK_ATTEMPT after --retry-failed")
    eq(listing(ev.spool)["done"], sorted([name, ok_name]), "done/")


def test_drain_restart_keeps_attempts(ctx):
    """--once leaves a not-yet-due event; a later drain goes on counting."""
    ev = Events(ctx, ctx.path("spool"))
    name, _e = ev.add()
    log = ctx.path("runs.log")
    job = script(ctx, "job.sh", 'echo "$PAYHOOK_ATTEMPT" >> %s\n'
                 '[ "$PAYHOOK_ATTEMPT" = 2 ]\n' % log)
    args = ["--spool", ev.spool, "--once", "--retry-min", "2",
            "--retry-max", "2", "--exec", job]
    before = time.time()
    rc, _out, err = run_drain(ctx, args)
    eq(rc, 0, "first run (stderr %r)" % err)
    eq(lines(log), ["1"], "attempts after the first run")
    eq(listing(ev.spool)["cur"], [name], "the event waits in cur/")
    st = state_of(ev.spool, name)
    eq(len(st["attempts"]), 1, "attempts in the state")
    eq(st["attempts"][0]["exit_status"], 1, "state: exit status")
    check(before + 2 <= st["next_try_ms"] / 1000 <= time.time() + 2.1,
          "next try about 2 s on: %r" % st)
    t0 = time.time()
    rc, _out, err = run_drain(ctx, args)
    eq(rc, 0, "second run (stderr %r)" % err)
    check(time.time() - t0 < 1.5, "--once did not wait for the next try")
    eq(lines(log), ["1"], "not due: not run again")
    eq(state_of(ev.spool, name), st, "state unchanged")
    wait_for(lambda: time.time() * 1000 >= st["next_try_ms"], 5, "due")
    rc, _out, err = run_drain(ctx, args)
    eq(rc, 0, "third run (stderr %r)" % err)
    eq(lines(log), ["1", "2"], "attempt 2 after the restart")
    eq(listing(ev.spool)["done"], [name], "done/")


def test_drain_state_unwritable(ctx):
    """A state that cannot be saved does not make a failing event loop."""
    ev = Events(ctx, ctx.path("spool"))
    name, _e = ev.add()
    ctx.mkdir(os.path.join(ev.spool, ".drain"), mode=0o500)
    log = ctx.path("runs.log")
    job = script(ctx, "job.sh", 'echo "$PAYHOOK_ATTEMPT" >> %s; exit 1\n'
                 % log)
    d = Drain(ctx, ["--spool", ev.spool, "--retry-min", "3", "--exec", job])
    wait_for(lambda: "cannot save the state" in d.stderr(), 10,
             "the error about the state")
    time.sleep(1)
    eq(d.stop(), 0, "exit status after SIGTERM")
    eq(lines(log), ["1"], "one run within the backoff")
    eq(listing(ev.spool)["cur"], [name], "the event stays in cur/")
    check("Permission denied" in d.stderr(), "the cause: %r" % d.stderr())


def test_drain_ordering(ctx):
    """A refund waits behind its failing payment; other payments flow."""
    ev = Events(ctx, ctx.path("spool"))
    log = ctx.path("order.log")
    pay, pe = ev.add(payment_id="A")
    refund, re_ = ev.add(payment_id="A", type_="refund.succeeded")
    others = [ev.add(payment_id=p)[0] for p in ("B", "C", "D")]
    # The payment of A fails once; each run is logged at start and end.
    job = script(ctx, "job.sh", """
echo "start $PAYHOOK_EVENT_ID $PAYHOOK_ATTEMPT" >> %s
sleep 0.2
echo "end $PAYHOOK_EVENT_ID $PAYHOOK_ATTEMPT" >> %s
[ "$PAYHOOK_EVENT_ID.$PAYHOOK_ATTEMPT" != %s.1 ]
""" % (log, log, pe["id"]))
    d = Drain(ctx, ["--spool", ev.spool, "--jobs", "4", "--retry-min", "3",
                    "--retry-max", "3", "--exec", job])
    wait_for(lambda: set(others) <= set(listing(ev.spool)["done"]), 10,
             "the other payments done")
    eq(listing(ev.spool)["done"], sorted(others),
       "done/ while the payment of A is in retry (not its refund)")
    # The payment is in retry, the refund waits, visibly.
    wait_for(lambda: "waits for" in d.stderr(), 5, "the waiting log line")
    check("%s waits for %s, an earlier event of the same payment, which "
          "is in retry" % (refund, pay) in d.stderr(), "waiting log line")
    eq(state_of(ev.spool, refund)["waiting_for"], pay, "refund's state")
    check(("start %s 1" % re_["id"]) not in lines(log),
          "the refund has not run yet")
    wait_for(lambda: len(listing(ev.spool)["done"]) == 5, 10, "all done")
    eq(d.stop(), 0, "exit status after SIGTERM")
    got = lines(log)
    pay_end = got.index("end %s 2" % pe["id"])
    ref_start = got.index("start %s 1" % re_["id"])
    check(pay_end < ref_start, "refund started after the payment: %r" % got)
    eq(sum(1 for ln in got if ln.startswith("start %s" % re_["id"])), 1,
       "the refund ran once")
    # The four independent events ran at once (--jobs 4).
    check(all(ln.startswith("start ") for ln in got[:4]),
          "four commands at once: %r" % got)
    # --no-ordered runs them regardless.
    ev2 = Events(ctx, ctx.path("spool2"))
    ev2.add(payment_id="X")
    ev2.add(payment_id="X", type_="refund.succeeded")
    log2 = ctx.path("unordered.log")
    job2 = script(ctx, "job2.sh", "echo s >> %s; sleep 0.5; echo e >> %s\n"
                  % (log2, log2))
    rc, _out, err = run_drain(ctx, ["--spool", ev2.spool, "--once",
                                    "--jobs", "2", "--no-ordered",
                                    "--exec", job2])
    eq(rc, 0, "--no-ordered (stderr %r)" % err)
    eq(lines(log2), ["s", "s", "e", "e"], "--no-ordered runs both at once")


def test_drain_sigterm_waits(ctx):
    ev = Events(ctx, ctx.path("spool"))
    name, _ = ev.add()
    log = ctx.path("term.log")
    job = script(ctx, "job.sh", "echo start >> %s; sleep 1.5; "
                 "echo end >> %s\n" % (log, log))
    d = Drain(ctx, ["--spool", ev.spool, "--exec", job])
    wait_for(lambda: lines(log) == ["start"], 10, "the job to start")
    os.kill(d.pid, signal.SIGTERM)
    time.sleep(0.2)
    late, _ = ev.add()                  # not claimed after SIGTERM
    rc = d.stop(timeout=10)
    eq(rc, 0, "exit status")
    eq(lines(log), ["start", "end"], "the job ran to its end")
    eq(listing(ev.spool), {"new": [late], "cur": [], "done": [name],
                           "failed": []}, "spool after SIGTERM")
    check("no new claims" in d.stderr(), "log: %r" % d.stderr())


# The crash suite's job: start and end lines with the event id, the pid and
# a time in ns, each one write of an O_APPEND file.
CRASH_JOB = """
printf 'start %%s %%s %%s\\n' "$PAYHOOK_EVENT_ID" $$ "$(date +%%s%%N)" >> %s
[ $(( $$ %% 4 )) = 0 ] && sleep 0.05
printf 'end %%s %%s %%s\\n' "$PAYHOOK_EVENT_ID" $$ "$(date +%%s%%N)" >> %s
"""


def test_drain_crash_suite(ctx):
    """Three drains, SIGKILLed at random and restarted, on one spool."""
    rnd = random.Random(int(os.environ.get("PH_CRASH_SEED", "0")) or None)
    seed = rnd.randrange(1 << 30)
    rnd.seed(seed)
    ev = Events(ctx, ctx.path("spool"))
    log = ctx.path("crash.log")
    job = script(ctx, "job.sh", CRASH_JOB % (log, log))
    args = ["--spool", ev.spool, "--jobs", "2", "--scan-interval", "1",
            "--timeout", "10", "--exec", job]
    total, kills, window = 300, 0, 9.0
    drains = [Drain(ctx, args, "d%d" % i) for i in range(3)]
    ids = {}
    t0 = time.time()
    # 20 kills at random moments of the window, while events keep coming.
    kill_at = sorted(t0 + rnd.uniform(0.2, window) for _ in range(20))
    while ev.n < total or kill_at:
        now = time.time()
        if ev.n < total and now - t0 > window * ev.n / total:
            for _ in range(rnd.randint(1, 6)):
                if ev.n < total:
                    name, e = ev.add(payment_id="P%d" % (ev.n % 97))
                    ids[e["id"]] = name
        while kill_at and kill_at[0] <= now:
            kill_at.pop(0)
            i = rnd.randrange(3)
            os.kill(drains[i].pid, signal.SIGKILL)
            drains[i].proc.wait(5)
            kills += 1
            drains[i] = Drain(ctx, args, "d%d" % i)
        time.sleep(rnd.uniform(0.005, 0.03))
    eq(ev.n, total, "events fed")
    t_fed = time.time()
    try:
        wait_for(lambda: not any(listing(ev.spool)[s]
                                 for s in ("new", "cur")),
                 60, "new/ and cur/ to empty")
        stuck = None
        t_drained = time.time()
    except Failure as f:
        stuck = f                       # the runs' overlaps say more
    for d in drains:
        eq(d.stop(), 0, "exit status of a drain after SIGTERM")
    runs, open_ = {}, {}
    for ln in lines(log):
        kind, eid, pid, t = ln.split()
        if kind == "start":
            open_[(eid, pid)] = int(t)
        else:
            runs.setdefault(eid, []).append((open_.pop((eid, pid)), int(t)))
    for eid, iv in runs.items():
        iv.sort()
        for a, b in zip(iv, iv[1:]):
            check(b[0] >= a[1], "event %s ran twice at once: %r" % (eid, iv))
    if stuck is not None:
        raise stuck
    # Orphaned jobs of killed drains have ended: the spool is empty.
    spool = listing(ev.spool)
    eq(spool["new"], [], "new/")
    eq(spool["cur"], [], "cur/ (nothing left claimed)")
    eq(spool["failed"], [], "failed/")
    eq(sorted(spool["done"]), sorted(ids.values()), "every event in done/")
    eq(open_, {}, "runs that started and never ended")
    eq(sorted(runs), sorted(ids), "every event ran to its end")
    reruns = sum(len(iv) - 1 for iv in runs.values())
    print("# crash suite: %d events fed in %.1f s, 3 drains --jobs 2, %d "
          "SIGKILLs, %d re-runs, all done %.1f s after the last event "
          "(seed %d)" % (total, t_fed - t0, kills, reruns,
                         t_drained - t_fed, seed))
    check(kills >= 15, "only %d kills" % kills)
    for d in drains:
        check(scan_sanitizer(d.stderr()) is None, "sanitizer report")


test_drain_crash_suite.timeout = 120


def test_drain_examples_python_php(ctx):
    """The example jobs, run by drain, keep one ledger line per key."""
    for interp, script_name in (("python3", "ledger.py"),
                                ("php", "ledger.php")):
        if shutil.which(interp) is None:
            raise Skip("%s is not installed (scripts/deps installs it)"
                       % interp)
        ev = Events(ctx, ctx.path("spool-" + interp))
        a, ea = ev.add(payment_id="A1")
        b, eb = ev.add(payment_id="B1", type_="refund.succeeded")
        # The same state change delivered again (a redelivery after the
        # dedup database was lost): same dedup_key, new id.
        c, ec = ev.add(payment_id="A1", key=ea["dedup_key"])
        copy = ctx.path(script_name)
        shutil.copy(os.path.join(EXAMPLES, script_name), copy)
        ctx.own(copy)
        ledger = ctx.path("ledger-%s.tsv" % interp)
        rc, _out, err = run_drain(ctx, ["--spool", ev.spool, "--once",
                                        "--exec", "%s %s %s" % (
                                            interp, copy, ledger)])
        eq(rc, 0, "%s: exit status (stderr %r)" % (interp, err))
        eq(listing(ev.spool)["done"], [a, b, c], interp + ": done/")
        eq(lines(ledger), [
            "\t".join([ea["dedup_key"], ea["id"], "payment.succeeded", "A1",
                       "50.00", "NGN"]),
            "\t".join([eb["dedup_key"], eb["id"], "refund.succeeded", "B1",
                       "50.00", "NGN"])], interp + ": ledger")
        eq(os.stat(ledger).st_mode & 0o777, 0o600, interp + ": ledger mode")
        # Not an event: the job fails, and says why in the report.
        bad = os.path.join(ev.spool, "new", "20000101T000000.000Z-"
                           "00000000000000000000000000.json")
        ctx.write(bad, "[]\n")
        rc, _out, err = run_drain(ctx, ["--spool", ev.spool, "--once",
                                        "--max-attempts", "1", "--exec",
                                        "%s %s %s" % (interp, copy, ledger)])
        eq(rc, 0, "%s: exit status (stderr %r)" % (interp, err))
        with open(os.path.join(ev.spool, "failed", os.path.basename(bad) +
                               ".err.json")) as f:
            rep = json.load(f)
        eq(rep["attempts"][0]["exit_status"], 1, interp + ": exit status")
        check(rep["stderr_tail"] != "", interp + ": stderr kept")
        eq(len(lines(ledger)), 2, interp + ": ledger unchanged")


def test_drain_examples_systemd_cron(ctx):
    unit = os.path.join(EXAMPLES, "payhook-drain.service")
    with open(unit) as f:
        text = f.read()
    execs = re.findall(r"^ExecStart=(.*)$", text, re.M)
    eq(len(execs), 1, "one ExecStart")
    check(execs[0].startswith("/usr/sbin/payhook drain "),
          "ExecStart runs payhook drain: %r" % execs[0])
    eq(re.findall(r"^KillMode=(.*)$", text, re.M), ["mixed"],
       "SIGTERM to drain alone (KillMode=mixed)")
    stop = int(re.search(r"^TimeoutStopSec=(\d+)s$", text, re.M).group(1))
    tmo = int(re.search(r"--timeout (\d+)s", execs[0]).group(1))
    check(stop > tmo, "TimeoutStopSec exceeds --timeout")
    if shutil.which("systemd-analyze"):
        local = ctx.write(ctx.path("payhook-drain.service"),
                          text.replace("/usr/sbin/payhook", ctx.payhook))
        p = subprocess.run(["systemd-analyze", "verify", "--man=no", local],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        eq((p.returncode, p.stdout.decode()), (0, ""),
           "systemd-analyze verify")
    else:
        for section in ("[Unit]", "[Service]", "[Install]"):
            check(section in text, "section " + section)

    # The crontab line, run as cron would: /bin/sh -c with HOME set.
    with open(os.path.join(EXAMPLES, "payhook-drain.crontab")) as f:
        entries = [ln for ln in f.read().splitlines()
                   if ln.strip() and not ln.startswith("#")]
    eq(len(entries), 1, "one crontab entry")
    fields = entries[0].split(None, 5)
    eq(fields[:5], ["*"] * 5, "every minute")
    if shutil.which("php") is None:
        raise Skip("php is not installed (scripts/deps installs it)")
    home = ctx.path("home")
    ctx.mkdir(home)
    ctx.mkdir(os.path.join(home, "payhook"))
    os.symlink(ctx.payhook, os.path.join(home, "payhook", "payhook"))
    shutil.copy(os.path.join(EXAMPLES, "ledger.php"),
                os.path.join(home, "payhook", "ledger.php"))
    ctx.own(os.path.join(home, "payhook", "ledger.php"))
    spool = os.path.join(home, "payhook", "spool")
    cfg = {"spool_dir": spool, "state_dir": os.path.join(home, "state"),
           "routes": [ctx.route()]}
    ctx.write(os.path.join(home, "payhook", "payhook.json"), json.dumps(cfg))
    ev = Events(ctx, spool)
    name, e = ev.add(payment_id="CRON1")
    env = {"PATH": "/usr/bin:/bin", "HOME": home, "SHELL": "/bin/sh"}
    for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
        if os.environ.get(k):
            env[k] = os.environ[k]
    p = subprocess.run(as_test_user(["/bin/sh", "-c", fields[5]]), env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    eq(p.returncode, 0, "the crontab command (stderr %r)" % p.stderr)
    eq(listing(spool)["done"], [name], "the event ran")
    eq(lines(os.path.join(home, "payhook", "ledger.tsv")),
       ["\t".join([e["dedup_key"], e["id"], "payment.succeeded", "CRON1",
                   "50.00", "NGN"])], "ledger")
    log = lines(os.path.join(home, "payhook", "drain.log"))
    check(any("attempt 1 succeeded" in ln for ln in log),
          "drain.log: %r" % log)
    ctx.stderr_texts.append("\n".join(log))


def test_drain_status_sees_dead_letters(ctx):
    """payhook status counts what drain left: done/, failed/ (not the
    sidecar) and nothing in cur/ or new/."""
    cfg, spool, _state = ctx.config()
    ev = Events(ctx, spool.path)
    ok, _ = ev.add()
    bad, _ = ev.add()
    job = script(ctx, "job.sh", '[ "$PAYHOOK_EVENT_ID" != %s ]\n'
                 % bad.split("-", 1)[1][:-5])
    rc, _out, err = run_drain(ctx, ["--config", cfg, "--once",
                                    "--max-attempts", "1", "--exec", job])
    eq(rc, 0, "drain (stderr %r)" % err)
    eq(listing(spool.path), {"new": [], "cur": [], "done": [ok],
                             "failed": [bad, bad + ".err.json"]}, "spool")
    p = ctx.run_payhook(["status", "--json", "--config", cfg])
    eq(p.returncode, 0, "status (stderr %r)" % p.stderr)
    got = json.loads(p.stdout)["spool"]
    eq({k: got[k] for k in SUBDIRS}, {"new": 0, "cur": 0, "done": 1,
                                      "failed": 1}, "status's counts")
