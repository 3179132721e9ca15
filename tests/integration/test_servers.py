# test_servers.py - payhook behind real Apache, lighttpd and nginx, using
# the example configurations shipped in apache/, lighttpd/ and nginx/.
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# Each test starts its own server instance on 127.0.0.1 with a free high
# port and a configuration generated in the test's directory (never the
# system service), runs the same end-to-end checks through it (accepted
# with the spooled file checked, duplicate, wrong credentials, 413 for a
# body over payhook's default 1 MiB limit) and stops exactly the processes
# it started, by PID. As root, the servers run payhook as TEST_USER.
#
# The examples are used as shipped: Apache's mod_fcgid snippet is Included
# unchanged (its paths are Defines); in the others only the installation
# paths (binary, configuration, socket) are replaced, and the test fails if
# a path it expects to replace is not in the example.

import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import time

from harness import (CUSTOMER_EMAIL, IS_ROOT, SECRET, TEST_USER, accept,
                     body_of, CgiResult, check, check_duplicate, check_error,
                     eq, Failure, fcgi_params, fcgi_request, free_port,
                     http_request, kill_left, Lighttpd, ngn_headers,
                     ngn_payload, padded_body, pid_alive, proc_children,
                     read_text, Skip)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
APACHE_MODULES = "/usr/lib/apache2/modules"
DEFAULT_LIMIT = 1048576         # payhook's default max_body_bytes


# ---------------------------------------------------------------- helpers

def example(relpath, replace=()):
    """The text of a shipped example with (old, new) replacements, each of
    which must occur in it."""
    with open(os.path.join(REPO, relpath)) as f:
        text = f.read()
    for old, new in replace:
        check(old in text, "%s no longer contains %r" % (relpath, old))
        text = text.replace(old, new)
    return text


def need(program):
    path = shutil.which(program, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        raise Skip("%s is not installed" % program)
    return path


def descendants(pid):
    """Every live process below pid."""
    out = []
    todo = [pid]
    while todo:
        for child in proc_children(todo.pop()):
            out.append(child)
            todo.append(child)
    return out


def proc_ids(pid):
    """(real/effective/saved/fs uids, same for gids, supplementary groups)
    of a process, from /proc."""
    uids = gids = groups = None
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key == "Uid":
                uids = [int(x) for x in value.split()]
            elif key == "Gid":
                gids = [int(x) for x in value.split()]
            elif key == "Groups":
                groups = [int(x) for x in value.split()]
    return uids, gids, groups


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise Failure("timed out after %.0f s waiting for %s" % (timeout, what))


class Server:
    """A server process tree we started: Popen in the foreground, logs in
    files. Registered in ctx.started so that the harness stops it before
    scanning logs, whatever the test's outcome."""

    def __init__(self, ctx, name):
        self.ctx = ctx
        self.name = name
        self.proc = None
        self.port = None
        self.log_files = []
        self.stopped_rc = None

    def spawn(self, argv, env=None):
        out = open(self.ctx.path(self.name + "-stdout.log"), "ab")
        self.log_files.append(out.name)
        try:
            # A session of its own: Apache's prefork stops its children
            # by signalling its whole process group, which would otherwise
            # include the test runner.
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=out, env=env,
                                         start_new_session=True)
        finally:
            out.close()
        self.ctx.started.append(self)

    def check_running(self):
        if self.proc.poll() is not None:
            raise Failure("%s exited with %s: %s" % (
                self.name, self.proc.returncode, self.logs()[-3000:]))

    def wait_port(self, timeout=15):
        def ready():
            self.check_running()
            try:
                socket.create_connection(("127.0.0.1", self.port),
                                         timeout=1).close()
                return True
            except OSError:
                return False
        wait_for(ready, timeout, "%s to listen on %d" % (self.name,
                                                         self.port))

    def logs(self):
        return "".join(read_text(p) for p in self.log_files)

    def stop(self, timeout=20):
        """SIGTERM the parent, wait, then make sure every process it had
        started is gone (SIGKILL by PID for any left)."""
        if self.proc is None:
            return
        kids = descendants(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stopped_rc = self.proc.returncode
        left = kill_left(kids, grace=5)
        if self in self.ctx.started:
            self.ctx.started.remove(self)
            self.ctx.stderr_texts.append(self.logs())
        check(not left, "%s left processes running after SIGTERM: %s"
              % (self.name, left))

    def request(self, method, path, body=None, headers=None, timeout=30):
        return http_request(self.port, method, path, body, headers, timeout)

    def post(self, body, path, secret=SECRET, algo="sha512", headers=None,
             timeout=30):
        h = ngn_headers(body, secret, algo)
        if headers:
            h.update(headers)
        h = {k: v for k, v in h.items() if v is not None}
        return self.request("POST", path, body, h, timeout)


# ---------------------------------------------------------------- servers

class Apache(Server):
    """A private Apache 2.4 (prefork) in the foreground; as root its
    children, CGI programs and mod_fcgid processes run as TEST_USER."""

    MODULES = ["mpm_prefork", "authz_core", "alias", "env", "setenvif",
               "cgi", "fcgid"]

    def __init__(self, ctx, name, site):
        Server.__init__(self, ctx, name)
        self.site = site
        self.conf = ctx.path(name + ".conf")
        self.errorlog = ctx.path(name + "-error.log")
        self.log_files.append(self.errorlog)

    def start(self):
        binary = need("apache2")
        run = self.ctx.path(self.name + "-run")
        os.makedirs(run, exist_ok=True)
        self.ctx.own(run)
        fcgid = self.ctx.mkdir(self.ctx.path(self.name + "-fcgid"))
        htdocs = self.ctx.path("htdocs")
        os.makedirs(htdocs, exist_ok=True)
        self.ctx.own(htdocs)
        self.port = free_port()
        lines = ["ServerRoot %s" % run,
                 "ServerName 127.0.0.1",
                 "Listen 127.0.0.1:%d" % self.port,
                 "PidFile %s/httpd.pid" % run,
                 "DefaultRuntimeDir %s" % run,
                 "Mutex file:%s default" % run,
                 "ErrorLog %s" % self.errorlog,
                 "LogLevel warn",
                 "StartServers 1",
                 "MinSpareServers 1",
                 "MaxSpareServers 2",
                 "MaxRequestWorkers 8"]
        lines += ["LoadModule %s_module %s/mod_%s.so"
                  % (m, APACHE_MODULES, m) for m in self.MODULES]
        if IS_ROOT:
            lines += ["User %s" % TEST_USER, "Group %s" % TEST_USER]
        lines += ["FcgidIPCDir %s" % fcgid,
                  "FcgidProcessTableFile %s/fcgid-shm" % run,
                  "DocumentRoot %s" % htdocs,
                  "<Directory />",
                  "    AllowOverride None",
                  "    Require all denied",
                  "</Directory>",
                  # As on a real site; Apache also maps PATH_INFO onto it
                  # for PATH_TRANSLATED.
                  "<Directory %s>" % htdocs,
                  "    Require all granted",
                  "</Directory>",
                  self.site]
        self.ctx.write(self.conf, "\n".join(lines) + "\n", 0o644)
        # Debian's apache2 wants nothing from /etc/apache2/envvars when the
        # configuration names no ${APACHE_*} variable.
        self.spawn([binary, "-f", self.conf, "-DFOREGROUND"],
                   env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                        "LANG": "C"})
        self.wait_port()
        return self


class Nginx(Server):
    """A private nginx (master + one worker) in the foreground."""

    def __init__(self, ctx, name, server_body):
        Server.__init__(self, ctx, name)
        self.server_body = server_body
        self.dir = ctx.path(name)
        self.errorlog = os.path.join(self.dir, "error.log")
        self.log_files.append(self.errorlog)

    def start(self):
        binary = need("nginx")
        os.makedirs(os.path.join(self.dir, "tmp"), exist_ok=True)
        self.ctx.own(self.dir, recursive=True)
        shutil.copy("/etc/nginx/fastcgi_params", self.dir)
        self.ctx.write(os.path.join(self.dir, "payhook.conf"),
                       self.server_body, 0o644)
        self.port = free_port()
        tmp = os.path.join(self.dir, "tmp")
        conf = ["worker_processes 1;",
                "pid %s/nginx.pid;" % self.dir,
                "error_log %s notice;" % self.errorlog]
        if IS_ROOT:
            conf.append("user %s %s;" % (TEST_USER, TEST_USER))
        conf += ["events { worker_connections 64; }",
                 "http {",
                 "    access_log off;"]
        conf += ["    %s_temp_path %s/%s;" % (t, tmp, t)
                 for t in ("client_body", "fastcgi", "proxy", "scgi",
                           "uwsgi")]
        conf += ["    server {",
                 "        listen 127.0.0.1:%d;" % self.port,
                 "        server_name localhost;",
                 "        include payhook.conf;",
                 "    }",
                 "}"]
        path = os.path.join(self.dir, "nginx.conf")
        self.ctx.write(path, "\n".join(conf) + "\n", 0o644)
        self.spawn([binary, "-p", self.dir + "/", "-c", path,
                    "-g", "daemon off;"],
                   env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        self.wait_port()
        return self


class Standalone(Server):
    """payhook --listen, started by the test (as root: with --user, so the
    socket is opened as root and the workers run as TEST_USER)."""

    def __init__(self, ctx, name, config, addr, workers=2, extra=()):
        Server.__init__(self, ctx, name)
        self.config = config
        self.addr = addr
        self.workers = workers
        self.extra = list(extra)

    def argv(self):
        argv = [self.ctx.payhook, "--listen", self.addr,
                "--workers", str(self.workers), "--config", self.config]
        if IS_ROOT:
            argv += ["--user", TEST_USER]
        return argv + self.extra

    def start(self):
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"):
            if os.environ.get(k):
                env[k] = os.environ[k]
        self.spawn(self.argv(), env=env)
        if self.addr.startswith("unix:"):
            path = self.addr[5:]

            def ready():
                self.check_running()
                return os.path.exists(path)
            wait_for(ready, 10, "socket %s" % path)
        else:
            self.port = int(self.addr.rsplit(":", 1)[1])
            self.wait_port()
        self.wait_workers(self.workers)
        return self

    def worker_pids(self):
        if self.proc is None or self.proc.poll() is not None:
            return []
        return proc_children(self.proc.pid, "payhook")

    def wait_workers(self, n, exclude=()):
        def ready():
            self.check_running()
            pids = [p for p in self.worker_pids() if p not in exclude]
            return pids if len(pids) == n else None
        return wait_for(ready, 10, "%d workers of %s" % (n, self.name))


# ---------------------------------------------------------------- checks

def e2e(ctx, srv, config, spool, prefix, tag, payhook_logs=None):
    """The checks every server must pass; prefix is where the server puts
    payhook ("/payhook" gives the route /ngn at /payhook/ngn).
    payhook_logs returns the text of payhook's log: the server's error log
    unless payhook runs on its own (--listen)."""
    logs = payhook_logs or srv.logs
    url = prefix + "/ngn"
    payload = ngn_payload(tag + "-1")
    ulid = accept(srv, payload, spool, tag + ": accepted", path=url)
    name = [n for n in spool.new() if ulid in n][0]
    st = os.stat(os.path.join(spool.sub("new"), name))
    eq((st.st_uid, st.st_gid), (ctx.uid, ctx.gid),
       tag + ": owner of the spooled file (the user payhook ran as)")
    check_duplicate(srv.post(body_of(payload), path=url), ulid,
                    tag + ": duplicate")
    other = body_of(ngn_payload(tag + "-2"))
    check_error(srv.post(other, path=url, secret="whsk_wrong"), 401,
                tag + ": wrong secret")
    check_error(srv.post(other, path=url, headers={"X-Signature": None}),
                401, tag + ": no signature")
    check_error(srv.post(other, path=prefix + "/nope"), 404,
                tag + ": unrouted path")
    big = padded_body(DEFAULT_LIMIT + 1, tag + "-3")
    check_error(srv.post(big, path=url), 413,
                tag + ": 1 MiB + 1 byte (payhook's default limit)")
    eq(len(spool.new()), 1, tag + ": files in new/")
    readme_check(ctx, srv, config, prefix, tag)
    eq(len(spool.new()), 2, tag + ": files in new/")
    eq(spool.tmp(), [], tag + ": files in tmp/")
    eq(ctx.dedup_count(config), 2, tag + ": dedup records")
    # payhook's request log reaches the server's error log.
    wait_for(lambda: re.search(r"payhook\[\d+\]: info: route=ngn "
                               r"outcome=accepted status=200 key=\S+ id=%s "
                               % ulid, logs()), 5,
             "%s: payhook's log line for %s" % (tag, ulid))
    return ulid


def readme_check(ctx, srv, config, prefix, tag):
    """The README's way to check a deployment: payhook sign prints a curl
    command that delivers a signed event; run it."""
    event = ctx.write(ctx.path(tag + "-event.json"),
                      body_of(ngn_payload(tag + "-readme")), 0o644)
    p = ctx.run_payhook(["sign", "--config", config, "ngn", event, "--url",
                         "http://127.0.0.1:%d%s" % (srv.port, prefix)])
    eq(p.returncode, 0, "%s: payhook sign exit status (%r)"
       % (tag, p.stderr))
    c = subprocess.run(["sh"], input=p.stdout, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    eq(c.returncode, 0, "%s: the curl command's exit status (%r)"
       % (tag, c.stderr))
    status_line = c.stdout.split(b"\r\n", 1)[0]
    check(re.match(rb"^HTTP/1\.[01] 200 ", status_line),
          "%s: curl's status line %r" % (tag, status_line))
    check(re.search(rb'\r\n\r\n\{"status":"accepted","id":"[0-9A-Z]{26}"\}$',
                    c.stdout), "%s: curl's answer %r" % (tag, c.stdout))


def check_workers_unprivileged(ctx, pids, what):
    if not IS_ROOT:
        return
    for pid in pids:
        uids, gids, groups = proc_ids(pid)
        eq(uids, [ctx.uid] * 4, "%s %d uids" % (what, pid))
        eq(gids, [ctx.gid] * 4, "%s %d gids" % (what, pid))
        eq(groups, [ctx.gid], "%s %d supplementary groups" % (what, pid))


# ---------------------------------------------------------------- Apache

def test_apache_fcgid(ctx):
    need("apache2")
    check(os.path.exists(os.path.join(APACHE_MODULES, "mod_fcgid.so")),
          "mod_fcgid is not installed (libapache2-mod-fcgid)")
    cfg, spool, _state = ctx.config()
    snippet = os.path.join(REPO, "apache", "payhook-fcgid.conf")
    site = "\n".join(["Define PAYHOOK_BIN %s" % ctx.payhook,
                      "Define PAYHOOK_CONFIG %s" % cfg,
                      "Include \"%s\"" % snippet])
    srv = Apache(ctx, "apache-fcgid", site).start()
    e2e(ctx, srv, cfg, spool, "/payhook", "apache-fcgid")
    kids = [p for p in descendants(srv.proc.pid)
            if open("/proc/%d/comm" % p).read().strip() == "payhook"]
    check(kids, "no payhook process under Apache")
    check_workers_unprivileged(ctx, kids, "mod_fcgid payhook process")
    srv.stop()


def test_apache_cgi(ctx):
    """Shared-hosting style: payhook copied into a cgi-bin, configured by
    the shipped .htaccess."""
    need("apache2")
    cfg, spool, _state = ctx.config()
    cgibin = ctx.mkdir(ctx.path("cgi-bin"), 0o755)
    shutil.copy(ctx.payhook, os.path.join(cgibin, "payhook"))
    os.chmod(os.path.join(cgibin, "payhook"), 0o755)
    ctx.own(os.path.join(cgibin, "payhook"))
    ctx.write(os.path.join(cgibin, ".htaccess"), example(
        "apache/cgi-bin.htaccess",
        [("/home/USER/payhook/payhook.json", cfg)]), 0o644)
    site = "\n".join([
        "ScriptAlias /cgi-bin/ %s/" % cgibin,
        "<Directory %s>" % cgibin,
        "    AllowOverride FileInfo",
        "    Options +ExecCGI",
        "    Require all granted",
        "</Directory>"])
    srv = Apache(ctx, "apache-cgi", site).start()
    e2e(ctx, srv, cfg, spool, "/cgi-bin/payhook", "apache-cgi")
    srv.stop()


# ---------------------------------------------------------------- lighttpd

def lighttpd(ctx, name, body, procs=0):
    need("lighttpd")
    lt = Lighttpd(ctx, name, body, procs)
    ctx.lighttpds.append(lt)
    return lt.start()


def test_lighttpd_fastcgi_spawned(ctx):
    cfg, spool, _state = ctx.config()
    body = example("lighttpd/payhook-fastcgi.conf", [
        ('"/usr/local/sbin/payhook"', '"%s"' % ctx.payhook),
        ('"/usr/local/etc/payhook.json"', '"%s"' % cfg),
        ('"/run/lighttpd/payhook.sock"', '"%s"' % ctx.path("lt.sock"))])
    lt = lighttpd(ctx, "lighttpd-spawn", body, procs=4)
    pids = lt.children()
    eq(len(pids), 4, "payhook processes lighttpd started (max-procs)")
    check_workers_unprivileged(ctx, pids, "lighttpd's payhook process")
    e2e(ctx, lt, cfg, spool, "/payhook", "lighttpd-spawn")


def test_lighttpd_fastcgi_socket(ctx):
    cfg, spool, _state = ctx.config()
    sock = ctx.path("payhook.sock")
    ph = Standalone(ctx, "payhook-listen", cfg, "unix:" + sock).start()
    body = example("lighttpd/payhook-fastcgi-socket.conf",
                   [('"/run/payhook/payhook.sock"', '"%s"' % sock)])
    lt = lighttpd(ctx, "lighttpd-socket", body)
    e2e(ctx, lt, cfg, spool, "/payhook", "lighttpd-socket", ph.logs)
    lt.stop()
    ph.stop()
    eq(ph.stopped_rc, 0, "payhook --listen exit status after SIGTERM")


def test_lighttpd_cgi(ctx):
    cfg, spool, _state = ctx.config()
    body = example("lighttpd/payhook-cgi.conf", [
        ('"/usr/lib/cgi-bin/payhook"', '"%s"' % ctx.payhook),
        ('"/usr/local/etc/payhook.json"', '"%s"' % cfg)])
    lt = lighttpd(ctx, "lighttpd-cgi", body)
    e2e(ctx, lt, cfg, spool, "/cgi-bin/payhook", "lighttpd-cgi")


# ---------------------------------------------------------------- nginx

def test_nginx_unix_socket(ctx):
    need("nginx")
    cfg, spool, _state = ctx.config()
    sock = ctx.path("payhook.sock")
    ph = Standalone(ctx, "payhook-listen", cfg, "unix:" + sock,
                    workers=3).start()
    st = os.stat(sock)
    check(stat.S_ISSOCK(st.st_mode), "%s is a socket" % sock)
    eq(oct(stat.S_IMODE(st.st_mode)), oct(0o660), "socket mode")
    eq((st.st_uid, st.st_gid), (ctx.uid, ctx.gid), "socket owner")
    workers = ph.worker_pids()
    check_workers_unprivileged(ctx, [ph.proc.pid] + workers,
                               "payhook --listen process")
    ng = Nginx(ctx, "nginx", example(
        "nginx/payhook.conf",
        [("unix:/run/payhook/payhook.sock", "unix:" + sock)])).start()
    e2e(ctx, ng, cfg, spool, "/payhook", "nginx-unix", ph.logs)
    ng.stop()
    ph.stop()
    eq(ph.stopped_rc, 0, "payhook --listen exit status after SIGTERM")
    check(not os.path.exists(sock), "the socket is removed on SIGTERM")
    for pid in workers:
        check(not pid_alive(pid), "worker %d stopped with the supervisor"
              % pid)


def test_nginx_tcp(ctx):
    need("nginx")
    cfg, spool, _state = ctx.config()
    port = free_port()
    ph = Standalone(ctx, "payhook-listen", cfg,
                    "127.0.0.1:%d" % port).start()
    ng = Nginx(ctx, "nginx", example(
        "nginx/payhook.conf",
        [("unix:/run/payhook/payhook.sock", "127.0.0.1:%d" % port)]))
    ng.start()
    e2e(ctx, ng, cfg, spool, "/payhook", "nginx-tcp", ph.logs)
    ng.stop()
    ph.stop()
    eq(ph.stopped_rc, 0, "payhook --listen exit status after SIGTERM")


# ---------------------------------------------------------------- --listen

def test_listen_restarts_dead_workers(ctx):
    cfg, spool, _state = ctx.config()
    sock = ctx.path("payhook.sock")
    ph = Standalone(ctx, "payhook-listen", cfg, "unix:" + sock,
                    workers=2).start()
    first = ph.worker_pids()
    os.kill(first[0], signal.SIGKILL)
    after = ph.wait_workers(2, exclude=[first[0]])
    check(first[1] in after, "the surviving worker was left alone")
    wait_for(lambda: "worker %d was killed by signal 9" % first[0]
             in ph.logs(), 5, "the supervisor's log line for the kill")
    # Several kills in a row: restarts back off but still happen.
    for _ in range(3):
        victim = ph.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        ph.wait_workers(2, exclude=[victim])
    for i in range(4):          # every worker serves
        body = body_of(ngn_payload("restart-%d" % i))
        r = fcgi_request(sock, fcgi_params(
            body, signature=ngn_headers(body)["X-Signature"]), body)
        eq(r.status, 200, "request %d after restarts (%r)" % (i, r.body))
    eq(len(spool.new()), 4, "files in new/")
    survivors = ph.worker_pids()
    ph.stop()
    eq(ph.stopped_rc, 0, "exit status after SIGTERM")
    check(not os.path.exists(sock), "the socket is removed on SIGTERM")
    check(not any(pid_alive(p) for p in survivors), "workers stopped")
    check("stopping" in ph.logs(), "a log line for the stop")


def test_listen_sighup_replaces_workers(ctx):
    cfg, spool, _state = ctx.config()
    sock = ctx.path("payhook.sock")
    ph = Standalone(ctx, "payhook-listen", cfg, "unix:" + sock,
                    workers=2).start()
    before = ph.worker_pids()
    ph.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: (len(ph.worker_pids()) == 2 and
                      not set(ph.worker_pids()) & set(before)), 10,
             "two new workers after SIGHUP")
    body = body_of(ngn_payload("hup-1"))
    r = fcgi_request(sock, fcgi_params(
        body, signature=ngn_headers(body)["X-Signature"]), body)
    eq(r.status, 200, "answer after SIGHUP (%r)" % r.body)
    check(ph.proc.poll() is None, "the supervisor survives SIGHUP")
    ph.stop()
    eq(ph.stopped_rc, 0, "exit status after SIGTERM")


def test_listen_stale_socket_and_busy_socket(ctx):
    cfg, _spool, _state = ctx.config()
    sock = ctx.path("payhook.sock")
    # A socket file left by a killed process is replaced.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(sock)
    stale.close()
    ph = Standalone(ctx, "payhook-listen", cfg, "unix:" + sock,
                    workers=1).start()
    check("removed stale socket" in ph.logs(), "stale socket log line")
    # A second instance on the same live socket refuses to start and
    # leaves the first one's socket alone.
    p = subprocess.run(Standalone(ctx, "second", cfg, "unix:" + sock,
                                  workers=1).argv(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=20)
    eq(p.returncode, 1, "second instance's exit status")
    check(b"another process is accepting" in p.stderr,
          "second instance's message: %r" % p.stderr)
    check(os.path.exists(sock), "the first instance's socket is intact")
    # A regular file is never removed.
    plain = ctx.write(ctx.path("not-a-socket"), "x")
    p = subprocess.run(Standalone(ctx, "third", cfg, "unix:" + plain,
                                  workers=1).argv(),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=20)
    eq(p.returncode, 1, "exit status for a non-socket path")
    check(b"exists and is not a socket" in p.stderr, repr(p.stderr))
    check(os.path.exists(plain), "the regular file is still there")
    ph.stop()
    eq(ph.stopped_rc, 0, "exit status after SIGTERM")


def test_listen_socket_owner_and_mode(ctx):
    if not IS_ROOT:
        raise Skip("chown needs root")
    cfg, _spool, _state = ctx.config()
    sock = ctx.path("payhook.sock")
    www = pwd.getpwnam("www-data") if "www-data" in [
        p.pw_name for p in pwd.getpwall()] else pwd.getpwnam("nobody")
    ph = Standalone(ctx, "payhook-listen", cfg, "unix:" + sock, workers=1,
                    extra=["--socket-owner", www.pw_name,
                           "--socket-mode", "0600"]).start()
    st = os.stat(sock)
    eq((st.st_uid, st.st_gid), (www.pw_uid, www.pw_gid), "socket owner")
    eq(oct(stat.S_IMODE(st.st_mode)), oct(0o600), "socket mode")
    ph.stop()


def test_listen_privileges(ctx):
    if not IS_ROOT:
        raise Skip("privilege checks need root")
    cfg, _spool, _state = ctx.config()
    sock = ctx.path("payhook.sock")
    base = [ctx.payhook, "--listen", "unix:" + sock, "--config", cfg]
    cases = [
        ("as root without --user", [],
         b"refusing to run as root: give --user USER"),
        ("--user root", ["--user", "root"],
         b"will not switch to user root: it is uid 0"),
        ("--user 0", ["--user", "0"], b"it is uid 0"),
        ("--group root", ["--user", TEST_USER, "--group", "root"],
         b"will not switch to group root: it is gid 0"),
        ("unknown user", ["--user", "no-such-user-ph"],
         b"no such user: no-such-user-ph"),
    ]
    for what, args, message in cases:
        p = subprocess.run(base + args, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=20)
        eq(p.returncode, 1, what + ": exit status")
        check(message in p.stderr, "%s: stderr %r" % (what, p.stderr))
        check(not os.path.exists(sock), what + ": no socket left")
    usage = [
        (["--workers", "0"], b"--workers: a number from 1 to 256"),
        (["--workers", "257"], b"--workers: a number from 1 to 256"),
        (["--socket-mode", "0999"], b"--socket-mode: an octal mode"),
        (["--socket-mode", "1777"], b"--socket-mode: an octal mode"),
    ]
    for args, message in usage:
        p = subprocess.run(base + ["--user", TEST_USER] + args,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=20)
        eq(p.returncode, 2, "%s: exit status" % args)
        check(message in p.stderr, "%s: stderr %r" % (args, p.stderr))
    for args in (["--user", TEST_USER], ["--workers", "2"]):
        p = subprocess.run([ctx.payhook, "--config", cfg] + args,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=20)
        eq(p.returncode, 2, "%s without --listen: exit status" % args)
        check(b"go with --listen" in p.stderr, repr(p.stderr))
    # --allow-root keeps root, as asked.
    ph = Standalone(ctx, "payhook-root", cfg, "unix:" + sock, workers=1)
    ph.argv = lambda: base + ["--allow-root", "--workers", "1"]
    ph.start()
    uids, _gids, _groups = proc_ids(ph.worker_pids()[0])
    eq(uids, [0, 0, 0, 0], "--allow-root worker uids")
    ph.stop()
    eq(ph.stopped_rc, 0, "--allow-root: exit status after SIGTERM")


# ---------------------------------------------------------------- root

def test_root_refusal_cgi(ctx):
    """CGI as root: one log line, 500 to the request; PAYHOOK_ALLOW_ROOT=1
    lets it serve."""
    if not IS_ROOT:
        raise Skip("needs root")
    cfg, spool, _state = ctx.config()
    body = body_of(ngn_payload("root-1"))
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
           "GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": "POST",
           "PATH_INFO": "/ngn", "CONTENT_TYPE": "application/json",
           "CONTENT_LENGTH": str(len(body)),
           "HTTP_X_SIGNATURE": ngn_headers(body)["X-Signature"],
           "PAYHOOK_CONFIG": cfg}
    p = subprocess.run([ctx.payhook], input=body, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    r = CgiResult(p.returncode, p.stdout, p.stderr.decode())
    ctx.stderr_texts.append(r.stderr)
    eq(r.status, 500, "status as root (%r)" % p.stdout)
    eq(r.body, b'{"error":"internal error"}', "body as root")
    refusals = [line for line in r.stderr.splitlines()
                if "refusing to serve" in line]
    eq(len(refusals), 1, "refusal log lines: %r" % r.stderr)
    check("running as root" in refusals[0], refusals[0])
    eq(spool.new(), [], "nothing spooled as root")
    for allow in ({"PAYHOOK_ALLOW_ROOT": "1"}, None):
        e = dict(env, **(allow or {}))
        argv = [ctx.payhook] + ([] if allow else ["--allow-root"])
        p = subprocess.run(argv, input=body, env=e, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        r = CgiResult(p.returncode, p.stdout, p.stderr.decode())
        ctx.stderr_texts.append(r.stderr)
        eq(r.status, 200, "status with %s (%r)" % (allow or "--allow-root",
                                                    p.stdout))
    eq(len(spool.new()), 1, "spooled once with root allowed")


def test_root_refusal_fastcgi(ctx):
    """FastCGI (fd 0 a listening socket) as root: answers 500 to every
    request and keeps running (no crash loop)."""
    if not IS_ROOT:
        raise Skip("needs root")
    cfg, spool, _state = ctx.config()
    sock = ctx.path("fcgi.sock")
    lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lsock.bind(sock)
    lsock.listen(8)
    err = open(ctx.path("fcgi-root.log"), "wb")
    proc = subprocess.Popen([ctx.payhook], stdin=lsock.fileno(),
                            stdout=subprocess.DEVNULL, stderr=err,
                            env={"PAYHOOK_CONFIG": cfg, "PATH": "/usr/bin"})
    err.close()
    lsock.close()

    class Proc:
        name = "payhook-fcgi-root"

        def stop(self):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            ctx.started.remove(self)
            ctx.stderr_texts.append(read_text(ctx.path("fcgi-root.log")))
    holder = Proc()
    ctx.started.append(holder)
    for i in range(3):
        body = body_of(ngn_payload("fcgi-root-%d" % i))
        r = fcgi_request(sock, fcgi_params(
            body, signature=ngn_headers(body)["X-Signature"]), body)
        eq(r.status, 500, "answer %d as root" % i)
        eq(r.body, b'{"error":"internal error"}', "body %d as root" % i)
    check(proc.poll() is None, "the responder keeps running")
    holder.stop()
    eq(proc.returncode, 0, "exit status after SIGTERM")
    log = read_text(ctx.path("fcgi-root.log"))
    eq(len([ln for ln in log.splitlines() if "refusing to serve" in ln]), 1,
       "one refusal line for the process: %r" % log)
    eq(spool.new(), [], "nothing spooled")
    check(CUSTOMER_EMAIL not in log, "no body content in the log")


# ---------------------------------------------------------------- install

def test_example_configuration(ctx):
    """doc/payhook.json.example, installed as payhook.json.example, is
    valid once its secrets are in the environment; without them,
    --check-config names each missing one."""
    example_path = ctx.write(ctx.path("payhook.json.example"),
                             example("doc/payhook.json.example"), 0o644)
    secrets = {"NGN_WEBHOOK_SECRET": "whsk_a", "OMPAY_CLIENT_SECRET": "b",
               "OMNO_WEBHOOK_PASSWORD": "c", "PO_WEBHOOK_TOKEN": "d",
               "STRIPE_WEBHOOK_SECRET": "whsec_e",
               "SHOPIFY_CLIENT_SECRET": "f", "PAYSTACK_SECRET_KEY": "g",
               "RAZORPAY_WEBHOOK_SECRET": "h", "CKO_WEBHOOK_KEY": "i",
               "FLW_SECRET_HASH": "j", "SQUARE_SIGNATURE_KEY": "k"}
    p = ctx.run_payhook(["--check-config", "--config", example_path],
                        env=secrets)
    eq((p.returncode, p.stdout.decode()),
       (0, "%s: OK (11 routes)\n" % example_path), "check-config output")
    p = ctx.run_payhook(["--check-config", "--config", example_path])
    eq(p.returncode, 1, "exit status without the secrets")
    for name in secrets:
        check(("environment variable %s is not set" % name).encode()
              in p.stderr, "fault for %s in %r" % (name, p.stderr))
