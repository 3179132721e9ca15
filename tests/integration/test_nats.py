# test_nats.py - payhook on several hosts: "payhook ship" and "sink": "nats"
# against a real three-node nats-server cluster with JetStream.
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# Every server listens on 127.0.0.1 (harness.free_port) and is stopped by
# the PID this module started. The stream is read back with
# tests/nats/nats-dump (built with payhook when configure found libnats):
# one line per stored message, "SEQ SUBJECT MSG-ID EVENT-ID BYTES".

import concurrent.futures
import json
import os
import signal
import socket
import subprocess
import threading
import time

import harness
from harness import (Failure, Skip, accepted_id, as_test_user, body_of, check,
                     check_duplicate, check_error, eq, free_port, kill_left, ngn_payload,
                     note, read_text, scan_sanitizer)

STREAM = "PAYHOOK"


def dump_tool(ctx):
    path = harness.NATS_DUMP
    if path is None or not os.access(path, os.X_OK):
        # Only a build without NATS may lack it: payhook ship says so
        # before it reads any configuration.
        p = subprocess.run([ctx.payhook, "ship", "--once"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        if b"built without NATS support" in p.stderr:
            raise Skip("payhook was built without NATS")
        raise Failure("payhook was built with NATS, but its stream reader "
                      "%s is missing (make tests/nats/nats-dump)" % path)
    if not os.path.exists("/usr/sbin/nats-server") and \
            subprocess.run(["sh", "-c", "command -v nats-server"],
                           stdout=subprocess.DEVNULL).returncode != 0:
        raise Skip("nats-server is not installed (scripts/deps)")
    return path


def key_of(txn):
    return "ngn:ngn-gateway:payment.success:%s" % txn


# ---------------------------------------------------------------- cluster

class NatsCluster:
    """size nats-server processes (three: one cluster), JetStream on
    each."""

    def __init__(self, ctx, name, size=3):
        self.ctx = ctx
        self.name = name
        self.procs = [None] * size
        self.client = [free_port() for _ in range(size)]
        self.route = [free_port() for _ in range(size)]
        self.monitor = [free_port() for _ in range(size)]
        self.dir = ctx.path(name)
        os.mkdir(self.dir, 0o700)
        for i in range(size):
            routes = ", ".join("nats-route://127.0.0.1:%d" % p
                               for j, p in enumerate(self.route) if j != i)
            conf = """server_name: %(name)s-n%(i)d
listen: 127.0.0.1:%(client)d
http: 127.0.0.1:%(monitor)d
jetstream {
  store_dir: "%(dir)s/n%(i)d"
  max_memory_store: 64MB
  max_file_store: 1GB
}
""" % {"name": name, "i": i, "client": self.client[i],
                "monitor": self.monitor[i], "dir": self.dir}
            if size > 1:
                conf += """cluster {
  name: %s
  listen: 127.0.0.1:%d
  routes: [ %s ]
}
""" % (name, self.route[i], routes)
            with open(self.conf(i), "w") as f:
                f.write(conf)
        ctx.cleanups.append(self.stop_all)

    def conf(self, i):
        return os.path.join(self.dir, "n%d.conf" % i)

    def servers(self):
        return ["nats://127.0.0.1:%d" % p for p in self.client]

    def start(self, i):
        log = open(os.path.join(self.dir, "n%d.log" % i), "ab")
        try:
            self.procs[i] = subprocess.Popen(
                ["nats-server", "-c", self.conf(i)], stdin=subprocess.DEVNULL,
                stdout=log, stderr=log)
        finally:
            log.close()

    def start_all(self):
        for i in range(len(self.procs)):
            self.start(i)
        self.wait_listening()

    def wait_listening(self, timeout=15):
        deadline = time.time() + timeout
        for i, p in enumerate(self.procs):
            if p is None:
                continue
            while True:
                check(p.poll() is None, "nats-server n%d exited: %s" % (
                    i, read_text(os.path.join(self.dir, "n%d.log" % i))
                    [-1500:]))
                try:
                    socket.create_connection(("127.0.0.1", self.client[i]),
                                             timeout=1).close()
                    break
                except OSError:
                    check(time.time() < deadline,
                          "nats-server n%d did not listen" % i)
                    time.sleep(0.05)

    def stop(self, i, sig=signal.SIGTERM):
        p = self.procs[i]
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs[i] = None

    def stop_all(self):
        for i in range(len(self.procs)):
            self.stop(i)

    def dump(self, ctx, stream=STREAM, timeout=30):
        """(summary line, [(seq, subject, msg_id, event_id)]), retried
        while the stream has no leader yet."""
        tool = dump_tool(ctx)
        deadline = time.time() + timeout
        while True:
            p = subprocess.run([tool, ",".join(self.servers()), stream],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=60)
            if p.returncode == 0:
                lines = p.stdout.decode().splitlines()
                rows = [tuple(l.split()[:4]) for l in lines[1:]]
                return lines[0], rows
            check(time.time() < deadline, "nats-dump failed: %s"
                  % p.stderr.decode()[-500:])
            time.sleep(0.5)

    def get(self, ctx, seq, stream=STREAM):
        """The data of message seq."""
        p = subprocess.run([dump_tool(ctx), "--get", str(seq),
                            ",".join(self.servers()), stream],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        check(p.returncode == 0, "nats-dump --get: %r" % p.stderr[-500:])
        return p.stdout


def nats_object(cluster, **kw):
    obj = {"servers": cluster.servers(), "stream": STREAM, "replicas": 3,
           "duplicate_window": "2m"}
    obj.update(kw)
    return obj


class Background:
    """A long-running payhook command (args after "payhook") as the test
    user, its output in a log that joins the test's stderr texts; stopped
    by SIGTERM, by PID, at the latest in the test's cleanup."""

    def __init__(self, ctx, args, log_name):
        self.ctx = ctx
        self.log = ctx.path(log_name)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if os.environ.get(k):
                env[k] = os.environ[k]
        f = open(self.log, "ab")
        try:
            self.proc = subprocess.Popen(
                as_test_user([ctx.payhook] + args),
                stdin=subprocess.DEVNULL, stdout=f, stderr=f, env=env)
        finally:
            f.close()
        ctx.cleanups.append(self.stop)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                kill_left([self.proc.pid])
                self.proc.wait()
        text = read_text(self.log)
        if text not in self.ctx.stderr_texts:
            self.ctx.stderr_texts.append(text)
        return self.proc.returncode


class Ship(Background):
    """A long-running "payhook ship" as the test user."""

    def __init__(self, ctx, config, name):
        super().__init__(ctx, ["ship", "--config", config],
                         name + "-ship.log")


def host(ctx, name, cluster, sink=None, procs=2):
    """One payhook "host": its own spool, state and lighttpd."""
    route = ctx.route(sink=sink)
    cfg, spool, state = ctx.config(
        routes=[route], name=name + ".json",
        spool_dir=ctx.path(name + "-spool"),
        state_dir=ctx.path(name + "-state"),
        nats=nats_object(cluster))
    lt = ctx.lighttpd_fcgi(cfg, procs=procs, name=name)
    return cfg, spool, state, lt


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while not pred():
        check(time.time() < deadline, "timed out waiting for " + what)
        time.sleep(0.2)


def status_of(state):
    with open(os.path.join(state, "ship-status.json")) as f:
        return json.load(f)


# ---------------------------------------------------------------- tests

def test_nats_config_faults(ctx):
    """--check-config names each fault of the "nats" object and of sink."""
    dump_tool(ctx)          # skips a payhook built without NATS
    cases = [
        ({"stream": "X"}, "key 'nats.servers': missing (required)"),
        ({"servers": []}, "key 'nats.servers': must be a list of 1 to 32 "
         "URLs nats://HOST:PORT"),
        ({"servers": ["http://127.0.0.1:4222"]},
         "key 'nats.servers'[0]: must be a URL nats://HOST:PORT (or "
         "tls://; credentials go in 'user', 'password', 'token' or "
         "'creds_file')"),
        ({"servers": ["nats://u:p@127.0.0.1:4222"]},
         "key 'nats.servers'[0]: must be a URL nats://HOST:PORT (or "
         "tls://; credentials go in 'user', 'password', 'token' or "
         "'creds_file')"),
        ({"stream": "A.B"}, "key 'nats.stream': must be a string of "
         "A-Z a-z 0-9 _ -, at most 200 long"),
        ({"subject_prefix": "a..b"}, "key 'nats.subject_prefix': must be "
         "a string of A-Z a-z 0-9 _ - and single dots between them, at "
         "most 200 long"),
        ({"subject_prefix": "a.>"}, "key 'nats.subject_prefix': must be "
         "a string of A-Z a-z 0-9 _ - and single dots between them, at "
         "most 200 long"),
        ({"replicas": 7}, "key 'nats.replicas': must be an integer from 1 "
         "to 5"),
        ({"duplicate_window": "2 m"}, "key 'nats.duplicate_window': must "
         "be a duration from 1s to 7d, such as \"2m\" or \"24h\""),
        ({"duplicate_window": 120}, "key 'nats.duplicate_window': must "
         "be a duration from 1s to 7d, such as \"2m\" or \"24h\""),
        ({"user": "svc"}, "key 'nats.user': needs 'nats.password' too"),
        ({"user": "svc", "password": "pw", "token": "tk"},
         "key 'nats': give one of 'user' and 'password', 'token' or "
         "'creds_file'"),
        ({"token": "env:PH_NO_SUCH_VARIABLE_X"},
         "key 'nats.token': environment variable PH_NO_SUCH_VARIABLE_X is "
         "not set"),
        ({"creds_file": "relative.creds"}, "key 'nats.creds_file': must be "
         "an absolute path"),
        ({"tls": {"ca": "/x"}}, "key 'nats.tls': must be an object "
         "{ \"ca_file\": PATH }"),
        ({"tls": {"ca_file": "/nonexistent/ca.pem"}},
         "key 'nats.tls.ca_file': cannot read /nonexistent/ca.pem"),
        ({"tsl": {}}, "key 'nats.tsl': unknown key"),
    ]
    base = {"servers": ["nats://127.0.0.1:4222"]}
    for i, (obj, fault) in enumerate(cases):
        n = dict(base)
        n.update(obj)
        if "servers" in obj or obj == {"stream": "X"}:
            n = dict(obj)
        cfg, spool, state = ctx.config(name="f%d.json" % i, nats=n)
        p = ctx.run_payhook(["--check-config", "--config", cfg])
        eq(p.returncode, 1, "exit status for %r" % obj)
        eq(p.stderr.decode(), "%s: %s\n" % (cfg, fault),
           "fault for %r" % obj)
    route_faults = [
        ({"sink": "disk"}, "route 'ngn' (#1): key 'sink': must be "
         "\"spool\" or \"nats\"", base),
        ({"sink": "nats"}, "route 'ngn' (#1): key 'sink': \"nats\" needs "
         "the top-level \"nats\" object", None),
        ({"name": "failed"}, "route 'failed' (#1): key 'name': 'failed' "
         "is reserved when there is a \"nats\" object (its dead "
         "letters), as a first dot-separated part too", base),
        # Its events would be published under <prefix>.failed.eu... and
        # acked unrun by drain --nats as dead letters.
        ({"name": "failed.eu"}, "route 'failed.eu' (#1): key 'name': "
         "'failed' is reserved when there is a \"nats\" object (its "
         "dead letters), as a first dot-separated part too", base),
    ]
    for i, (kw, fault, n) in enumerate(route_faults):
        top = {"nats": n} if n is not None else {}
        cfg, spool, state = ctx.config(routes=[ctx.route(**kw)],
                                       name="r%d.json" % i, **top)
        p = ctx.run_payhook(["--check-config", "--config", cfg])
        eq(p.returncode, 1, "exit status for %r" % kw)
        eq(p.stderr.decode(), "%s: %s\n" % (cfg, fault), "fault for %r" % kw)
    # A good one, with every key.
    ca = ctx.write(ctx.path("ca.pem"), "not read by --check-config\n")
    cfg, spool, state = ctx.config(
        name="good.json", routes=[ctx.route(sink="nats")],
        nats={"servers": ["nats://127.0.0.1:4222", "tls://10.0.0.2:4222"],
              "stream": "PAY_1", "subject_prefix": "acme.payhook",
              "replicas": 3, "duplicate_window": "24h",
              "user": "svc", "password": "env:PH_TEST_NATS_PW",
              "tls": {"ca_file": ca}})
    p = ctx.run_payhook(["--check-config", "--config", cfg],
                        env={"PH_TEST_NATS_PW": "pw-not-logged"})
    eq((p.returncode, p.stdout.decode(), p.stderr.decode()),
       (0, "%s: OK (1 route)\n" % cfg, ""), "a full nats object")
    # ship refuses a configuration without the object, untouched spool.
    cfg, spool, state = ctx.config(name="plain.json")
    p = ctx.run_payhook(["ship", "--once", "--config", cfg])
    eq((p.returncode, p.stderr.decode()),
       (1, "payhook ship: %s has no \"nats\" object (see "
        "payhook.json(5))\n" % cfg), "ship without a nats object")
    eq(os.path.exists(spool.path), False, "spool not created")


def test_nats_ship_unreachable(ctx):
    """ship --once with no server gives up in time, new/ intact."""
    dump_tool(ctx)
    dead = free_port()
    cfg, spool, state = ctx.config(
        nats={"servers": ["nats://127.0.0.1:%d" % dead]})
    for i in range(3):
        body = body_of(ngn_payload(txn="u%d" % i))
        r = ctx.cgi_post(cfg, body)
        eq(r.status, 200, "accepted into the spool")
    before = sorted(spool.new())
    eq(len(before), 3, "events in new/")
    t0 = time.time()
    # --give-up 15 with one server: one more try may take 2 + 5 + 5 s,
    # so it retries for about 3 s and then gives up.
    p = ctx.run_payhook(["ship", "--once", "--give-up", "15", "--config",
                         cfg], timeout=30)
    secs = time.time() - t0
    eq(p.returncode, 1, "ship --once exit status, cluster unreachable")
    check(2 <= secs < 15, "gave up after %.1f s (--give-up 15)" % secs)
    err = p.stderr.decode()
    check(err.count("ship: cannot connect to NATS: No server available "
                    "for connection") >= 3, "retried: %r" % err[-800:])
    check("giving up after 3 s without the cluster; unsent events stay in "
          "new/" in err, "the give-up line: %r" % err[-500:])
    eq(sorted(spool.new()), before, "new/ after giving up")
    eq(os.listdir(spool.sub("cur")), [], "cur/ after giving up")
    eq(os.listdir(spool.sub("done")), [], "done/ after giving up")
    st = status_of(state)
    eq(sorted(st), sorted(["schema", "updated_at", "sent_total",
                           "duplicate_total", "last_sent_at", "last_error",
                           "last_error_at"]), "ship-status.json keys")
    eq((st["schema"], st["sent_total"], st["duplicate_total"],
        st["last_sent_at"]), ("payhook.ship-status/1", 0, 0, None),
       "ship-status.json counts")
    check(st["last_error"].startswith("cannot connect to NATS"),
          "last_error %r" % st["last_error"])
    eq(oct(os.stat(os.path.join(state, "ship-status.json")).st_mode & 0o777),
       oct(0o600), "ship-status.json mode")
    # The default is bounded too (60 s), and said so.
    p = ctx.run_payhook(["ship", "--help"])
    check("(default 60s)" in p.stdout.decode(), "usage names the default")


def post_both(lts, txn, results, lock):
    """Deliver one event to every host at once; record the 2xx answers."""
    body = body_of(ngn_payload(txn=txn))

    def one(lt):
        try:
            return lt.post(body, timeout=30)
        except OSError as e:
            return e
    with concurrent.futures.ThreadPoolExecutor(len(lts)) as ex:
        answers = list(ex.map(one, lts))
    with lock:
        for i, r in enumerate(answers):
            status = getattr(r, "status", None)
            results.append((txn, i, status,
                            r.json().get("id") if status == 200 else None))


def test_nats_two_hosts(ctx):
    """Two hosts, each with lighttpd and ship, the same events to both;
    a node SIGKILLed and restarted during load, then the whole cluster
    stopped and restarted: one message per key, none missing."""
    dump_tool(ctx)
    cluster = NatsCluster(ctx, "phc")
    cluster.start_all()
    hosts = [host(ctx, "hostA", cluster), host(ctx, "hostB", cluster)]
    lts = [h[3] for h in hosts]
    ships = [Ship(ctx, hosts[0][0], "hostA"), Ship(ctx, hosts[1][0], "hostB")]
    results, lock = [], threading.Lock()
    per_phase = 40
    txn_no = [0]

    def phase(n):
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            futs = []
            for _ in range(n):
                txn_no[0] += 1
                futs.append(ex.submit(post_both, lts, "m%04d" % txn_no[0],
                                      results, lock))
            for f in futs:
                f.result()

    # Phase 1: load while one node is SIGKILLed, and restarted.
    t = threading.Thread(target=phase, args=(per_phase,))
    t.start()
    time.sleep(0.5)
    cluster.stop(1, signal.SIGKILL)
    t.join(60)
    phase(per_phase // 2)
    cluster.start(1)
    cluster.wait_listening()
    phase(per_phase // 2)
    # Phase 2: the whole cluster down; events pile up in new/.
    for i in range(3):
        cluster.stop(i)
    phase(per_phase)
    time.sleep(1.0)         # ship's retries meanwhile
    for h in hosts:
        spool = h[1]
        waiting = len(spool.new()) + len(os.listdir(spool.sub("cur")))
        check(waiting >= per_phase, "%s: %d events waiting while the "
              "cluster is down, expected at least %d"
              % (spool.path, waiting, per_phase))
    cluster.start_all()
    # Catch up: every spool's new/ and cur/ empty.
    wait_for(lambda: all(not h[1].new() and
                         not os.listdir(h[1].sub("cur")) for h in hosts),
             60, "both ships to catch up")
    rcs = [s.stop() for s in ships]
    eq(rcs, [0, 0], "ship exit status after SIGTERM")
    summary, rows = cluster.dump(ctx)
    total = txn_no[0]
    acked = {}
    for txn, i, status, ev_id in results:
        if status == 200:
            acked.setdefault(key_of(txn), set()).add(ev_id)
    eq(len(results), 2 * total, "answers")
    by_key = {}
    for seq, subject, msg_id, ev_id in rows:
        by_key.setdefault(msg_id, []).append((subject, ev_id))
    duplicates = sum(len(v) - 1 for v in by_key.values())
    missing = sorted(k for k in acked if k not in by_key)
    foreign = sorted(k for k in by_key if k not in acked)
    sent = [status_of(h[2])["sent_total"] for h in hosts]
    dups = [status_of(h[2])["duplicate_total"] for h in hosts]
    done = [len(os.listdir(h[1].sub("done"))) for h in hosts]
    note("nats two hosts: events=%d answers=%d acknowledged=%d "
         "stream=%d missing=%d duplicates=%d sent=%s duplicate_acks=%s "
         "done=%s (%s)" % (total, len(results), len(acked), len(rows),
                           len(missing), duplicates, sent, dups, done,
                           summary))
    eq(len(acked), total, "events acknowledged by a host")
    eq(missing, [], "acknowledged events missing from the stream")
    eq(duplicates, 0, "duplicate messages in the stream")
    eq(foreign, [], "messages not acknowledged by any host")
    eq(len(rows), total, "messages in the stream")
    for k, v in by_key.items():
        subject, ev_id = v[0]
        check(ev_id in acked[k], "%s: event id %s is one a host answered "
              "(%s)" % (k, ev_id, sorted(acked[k])))
        check(subject.startswith("payhook.ngn.payment.succeeded.") and
              len(subject.split(".")[-1]) == 32, "subject %s" % subject)
    # Each host spooled every event once, and shipped each (sent or found
    # already there).
    eq(done, [total, total], "files in done/")
    eq([s + d for s, d in zip(sent, dups)], [total, total],
       "sent + duplicate per host")
    check(sum(sent) <= total, "sent in all %d <= %d" % (sum(sent), total))
    for s in ships:
        check(scan_sanitizer(read_text(s.log)) is None, "sanitizer")


test_nats_two_hosts.timeout = 150


def test_nats_direct(ctx):
    """"sink": "nats": 2xx only after JetStream's ack, 503 while the
    cluster is down, and every 2xx in the stream."""
    dump_tool(ctx)
    cluster = NatsCluster(ctx, "phd")
    cluster.start_all()
    cfg, spool, state, lt = host(ctx, "direct", cluster, sink="nats",
                                 procs=1)
    ok = {}

    def post(txn, timeout=15):
        r = lt.post(body_of(ngn_payload(txn=txn)), timeout=timeout)
        if r.status == 200 and key_of(txn) not in ok:
            ok[key_of(txn)] = accepted_id(r, "direct delivery of " + txn)
        return r

    # Until the stream has its leader, a 503; then 200s.
    wait_for(lambda: post("d0000").status == 200, 30, "the first 200")
    for i in range(1, 16):
        eq(post("d%04d" % i).status, 200, "direct delivery %d" % i)
    check_duplicate(post("d0003"), ok[key_of("d0003")],
                    "a repeated event: the local claim answers it")
    eq(spool.new(), [], "nothing spooled in direct mode")
    for i in range(3):
        cluster.stop(i)
    down = []
    for i in range(5):
        t0 = time.time()
        r = post("x%04d" % i)
        down.append(time.time() - t0)
        check_error(r, 503, "cluster down, event %d" % i)
    check(max(down) < 8, "503 within the event's budget: %s" % down)
    eq(spool.new(), [], "nothing spooled while the cluster is down")
    eq(ctx.dedup_count(cfg), 16, "no claim kept for the 503s")
    cluster.start_all()
    for i in range(5):
        wait_for(lambda i=i: post("x%04d" % i).status == 200, 30,
                 "event x%04d after the restart" % i)
    summary, rows = cluster.dump(ctx)
    ids = {msg_id: ev_id for _seq, _subject, msg_id, ev_id in rows}
    note("nats direct: 2xx=%d stream=%d 503s while down=%d (%s)"
         % (len(ok), len(rows), len(down), summary))
    eq(len(rows), len(ok), "messages in the stream")
    eq(ids, ok, "every 2xx in the stream, with its event id")


def test_nats_ship_claims(ctx):
    """A claim left in cur/ by a dead ship is taken back and published; a
    claim whose owner lives (its flock held) is left alone; --delete-done
    removes what was published; the totals count across runs."""
    import fcntl
    dump_tool(ctx)
    cluster = NatsCluster(ctx, "phs", size=1)
    cluster.start_all()
    cfg, spool, state = ctx.config(nats=nats_object(cluster, replicas=1))
    for i in range(4):
        eq(ctx.cgi_post(cfg, body_of(ngn_payload(txn="c%d" % i))).status,
           200, "spooled")
    names = sorted(spool.new())
    # names[0]: claimed by a ship that died (in cur/, no lock);
    # names[1]: claimed by a live one (in cur/, locked by this test).
    for n in names[:2]:
        os.rename(os.path.join(spool.sub("new"), n),
                  os.path.join(spool.sub("cur"), n))
    held = open(os.path.join(spool.sub("cur"), names[1]), "rb")
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        p = ctx.run_payhook(["ship", "--once", "--delete-done", "--config",
                             cfg], timeout=60)
        eq(p.returncode, 0, "ship --once (stderr %r)" % p.stderr[-500:])
        check(("took back %s, left in cur/ by a ship that stopped"
               % names[0]) in p.stderr.decode(), "the take-back line")
        eq(os.listdir(spool.sub("cur")), [names[1]], "cur/: the live claim")
        eq(spool.new(), [], "new/ after ship")
        eq(os.listdir(spool.sub("done")), [], "done/ with --delete-done")
    finally:
        held.close()
    st = status_of(state)
    eq((st["sent_total"], st["duplicate_total"], st["last_error"]),
       (3, 0, None), "ship-status.json after the first run")
    # The live claim's owner "dies" (the lock is gone): the next run takes
    # it back; a copy of a shipped event is a duplicate, moved to done/.
    copy = "20990101T000000.000Z-01ARZ3NDEKTSV4RRFFQ69G5FAV.json"
    with open(os.path.join(spool.sub("cur"), names[1]), "rb") as f:
        data = f.read()
    ctx.write(os.path.join(spool.sub("new"), copy), data)
    p = ctx.run_payhook(["ship", "--once", "--config", cfg], timeout=60)
    eq(p.returncode, 0, "second ship --once")
    eq(sorted(os.listdir(spool.sub("done"))), sorted([names[1], copy]),
       "done/ after the second run")
    st = status_of(state)
    eq((st["sent_total"], st["duplicate_total"]), (4, 1),
       "ship-status.json counts across runs")
    summary, rows = cluster.dump(ctx)
    eq(sorted(r[2] for r in rows), sorted(key_of("c%d" % i)
                                          for i in range(4)),
       "one message per key")
    # Files that are no events stay in new/, named, and --once says so.
    ev = json.loads(data)
    ev["route"] = "bad route"
    bad = {"20990101T000000.001Z-01ARZ3NDEKTSV4RRFFQ69G5FAW.json":
           b"not json\n",
           "20990101T000000.002Z-01ARZ3NDEKTSV4RRFFQ69G5FAX.json":
           json.dumps(ev).encode()}
    for n, b in bad.items():
        ctx.write(os.path.join(spool.sub("new"), n), b)
    p = ctx.run_payhook(["ship", "--once", "--config", cfg], timeout=60)
    err = p.stderr.decode()
    eq(p.returncode, 1, "ship --once with files that are no events")
    eq(sorted(spool.new()), sorted(bad), "new/ keeps them")
    for n, why in zip(sorted(bad), ["not a JSON event",
                                    "route or type is not made of subject "
                                    "tokens (A-Z a-z 0-9 _ - and single "
                                    "dots)"]):
        check("ship: leaving new/%s alone: %s" % (n, why) in err,
              "the line for %s: %r" % (n, err[-800:]))
    eq(len(cluster.dump(ctx)[1]), 4, "messages after that run")


JOB = r"""#!/bin/sh
# One line per attempt: key attempt drain-pid job-pid; "fail" events fail,
# the first attempt of "slow" ones waits to be killed.
cat > /dev/null
case "$PAYHOOK_DEDUP_KEY" in
*:fail*) echo "$PAYHOOK_DEDUP_KEY $PAYHOOK_ATTEMPT $PPID $$ fail" >> "%(log)s"
    echo "no ledger for $PAYHOOK_EVENT_ID" >&2; exit 3 ;;
*:slow*) if [ "$PAYHOOK_ATTEMPT" = 1 ]; then
        echo "$PAYHOOK_DEDUP_KEY $PAYHOOK_ATTEMPT $PPID $$ start" >> "%(log)s"
        exec sleep 60
    fi ;;
esac
echo "$PAYHOOK_DEDUP_KEY $PAYHOOK_ATTEMPT $PPID $$ ok" >> "%(log)s"
"""


def parent_of(pid):
    """The parent of pid, or 0 when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return 0
    return int(stat[stat.rfind(")") + 2:].split()[1])


def job_lines(path):
    return [l.split() for l in read_text(path).splitlines()]


def test_nats_drain(ctx):
    """drain --nats: two drains on one consumer run each event once; a
    failing job is retried, then dead-lettered; a drain SIGKILLed mid-job
    has its message redelivered to the other."""
    dump_tool(ctx)
    cluster = NatsCluster(ctx, "phr")
    cluster.start_all()
    cfg, spool, state = ctx.config(nats=nats_object(cluster))
    log = ctx.path("jobs.log")
    ctx.write(log, "")
    job = ctx.write(ctx.path("job.sh"), JOB % {"log": log}, mode=0o755)
    txns = ["h%02d" % i for i in range(12)] + ["fail1"]
    for t in txns:
        eq(ctx.cgi_post(cfg, body_of(ngn_payload(txn=t))).status, 200,
           "spooled " + t)
    p = ctx.run_payhook(["ship", "--once", "--config", cfg], timeout=70)
    eq(p.returncode, 0, "ship --once (stderr %r)" % p.stderr[-500:])
    drains = [Drain(ctx, cfg, job, "d%d" % i) for i in range(2)]

    def settled():
        lines = job_lines(log)
        ok = sum(1 for l in lines if l[4] == "ok")
        fails = sum(1 for l in lines if l[4] == "fail")
        return ok >= 12 and fails >= 3
    wait_for(settled, 40, "every job to run")
    time.sleep(1.5)         # nothing more may run
    lines = job_lines(log)
    ok_keys = sorted(l[0] for l in lines if l[4] == "ok")
    eq(ok_keys, sorted(key_of(t) for t in txns[:12]),
       "each event ran to success exactly once")
    eq([(l[0], l[1]) for l in lines if l[4] == "fail"],
       [(key_of("fail1"), "1"), (key_of("fail1"), "2"),
        (key_of("fail1"), "3")], "the failing job's attempts")
    # The slow event: its drain is SIGKILLed mid-job, the other runs it.
    eq(ctx.cgi_post(cfg, body_of(ngn_payload(txn="slow1"))).status, 200,
       "spooled slow1")
    p = ctx.run_payhook(["ship", "--once", "--config", cfg], timeout=70)
    eq(p.returncode, 0, "ship --once, slow1")
    wait_for(lambda: any(l[4] == "start" for l in job_lines(log)), 20,
             "slow1's first attempt")
    start = [l for l in job_lines(log) if l[4] == "start"][0]
    # The job is the child of "sh -c", the child of its drain.
    drain_pid = parent_of(int(start[2]))
    victim = [d for d in drains if d.proc.pid == drain_pid]
    eq(len(victim), 1, "the drain running slow1 (%s) is one of ours (%s)"
       % (drain_pid, [d.proc.pid for d in drains]))
    t0 = time.time()
    victim[0].proc.send_signal(signal.SIGKILL)
    victim[0].proc.wait()
    kill_left([int(start[3]), int(start[2])])   # its job, started by us too
    wait_for(lambda: any(l[0] == key_of("slow1") and l[4] == "ok"
                         for l in job_lines(log)), 30,
             "slow1 redelivered")
    redelivery = time.time() - t0
    again = [l for l in job_lines(log) if l[0] == key_of("slow1") and
             l[4] == "ok"]
    eq([(l[1], parent_of(int(l[2])) == drain_pid) for l in again],
       [("2", False)],
       "slow1 ran again, attempt 2, on the other drain")
    rcs = [d.stop() for d in drains if d is not victim[0]]
    eq(rcs, [0], "the other drain's exit status after SIGTERM")
    summary, rows = cluster.dump(ctx)
    dead = [r for r in rows if r[1].startswith("payhook.failed.")]
    eq([(r[1].split(".")[2:5], r[2]) for r in dead],
       [(["ngn", "payment", "succeeded"], "failed:" + key_of("fail1"))],
       "the dead letter")
    report = json.loads(cluster.get(ctx, int(dead[0][0])))
    fail_id = [r[3] for r in rows if r[2] == key_of("fail1")][0]
    eq((report["schema"], report["event_file"], report["event_id"],
        report["dedup_key"], report["route"], report["type"]),
       ("payhook.drain-error/1", rows[[r[2] for r in rows].index(
           key_of("fail1"))][1], fail_id, key_of("fail1"), "ngn",
        "payment.succeeded"), "the dead-letter report")
    eq([(a["number"], a["exit_status"], a["timed_out"])
        for a in report["attempts"]], [(3, 3, False)],
       "its attempt (the last)")
    eq(report["stderr_tail"], "no ledger for %s\n" % fail_id,
       "its stderr tail")
    note("nats drain: events=%d ran-to-success=%d failed-attempts=3 "
         "dead-letters=%d redelivered after SIGKILL in %.1f s"
         % (len(txns) + 1, len(ok_keys) + 1, len(dead), redelivery))


test_nats_drain.timeout = 120


class Drain(Background):
    """A long-running "payhook drain --nats" as the test user."""

    def __init__(self, ctx, config, job, name):
        super().__init__(ctx, ["drain", "--nats", "--exec", job,
                              "--config", config, "--retry-min", "1",
                              "--retry-max", "1", "--max-attempts", "3",
                              "--timeout", "90"], name + "-drain.log")
