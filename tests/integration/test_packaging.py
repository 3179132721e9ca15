# test_packaging.py - payhook as a user gets it: the Quick start from a
# clone in a private directory, the Debian package, the static binary.
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# These build payhook again (in a fresh clone, as a .deb, statically), so
# each takes tens of seconds, and over a minute on a busy machine: each has
# a time limit of its own (the function's "timeout", read by run.py). The package test installs and purges the
# package on this machine: it runs only as root, only where no payhook
# package, user or data directory exists yet, and leaves none behind.

import json
import os
import pwd
import re
import shutil
import signal
import stat
import subprocess
import time

from harness import (IS_ROOT, TEST_USER, Failure, Skip, Spool, accepted_id,
                     body_of, check, check_duplicate, check_event_file, eq,
                     expected_ngn_event, free_port, http_request, kill_left,
                     ngn_headers, ngn_payload, now_ms,
                     proc_children, read_text, CgiResult)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SPOOL_DIR = "/var/spool/payhook"
STATE_DIR = "/var/lib/payhook"
EXAMPLE_CONFIG = "/usr/share/doc/payhook/examples/payhook.json.example"
# The secrets the installed example reads from the environment.
EXAMPLE_ENV = {"NGN_WEBHOOK_SECRET": "deb-ngn-secret",
               "OMPAY_CLIENT_SECRET": "deb-ompay-secret",
               "OMNO_WEBHOOK_PASSWORD": "deb-omno-password",
               "PO_WEBHOOK_TOKEN": "deb-po-token",
               "STRIPE_WEBHOOK_SECRET": "whsec_deb_stripe",
               "SHOPIFY_CLIENT_SECRET": "deb-shopify-secret",
               "PAYSTACK_SECRET_KEY": "deb-paystack-key",
               "RAZORPAY_WEBHOOK_SECRET": "deb-razorpay-secret",
               "CKO_WEBHOOK_KEY": "deb-checkout-key",
               "FLW_SECRET_HASH": "deb-flutterwave-hash",
               "SQUARE_SIGNATURE_KEY": "deb-square-key"}


def run(argv, what, timeout, **kw):
    """Run argv; fail with its output's tail unless it exits 0."""
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout, **kw)
    out = p.stdout.decode("utf-8", "replace")
    check(p.returncode == 0, "%s failed (exit %d):\n%s"
          % (what, p.returncode, out[-3000:]))
    return out


def cgi_env(config, body, headers, extra=None):
    """The environment a web server gives payhook for POST /cgi-bin/payhook
    /ngn (the same variables as harness.Ctx.cgi)."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
           "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.1",
           "SERVER_SOFTWARE": "payhook-it", "REQUEST_METHOD": "POST",
           "CONTENT_LENGTH": str(len(body)), "REMOTE_ADDR": "127.0.0.1",
           "QUERY_STRING": "", "PAYHOOK_CONFIG": config,
           "SCRIPT_NAME": "/cgi-bin/payhook", "PATH_INFO": "/ngn",
           "REQUEST_URI": "/cgi-bin/payhook/ngn"}
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        env[key if key == "CONTENT_TYPE" else "HTTP_" + key] = value
    env.update(extra or {})
    return env


def copy_source(dest):
    """The source tree without builds, generated files or VCS data."""
    top_skip = re.compile(r"^(\.git|var|autom4te\.cache|build.*)$")
    deb_skip = re.compile(r"^(build|payhook|payhook-dbgsym|tmp|\.debhelper|"
                          r"files|debhelper-build-stamp|autoreconf\..*|"
                          r".*\.substvars|.*\.debhelper(\.log)?)$")

    def ignore(d, names):
        if os.path.samefile(d, REPO):
            return [n for n in names if top_skip.match(n)]
        if os.path.samefile(d, os.path.join(REPO, "debian")):
            return [n for n in names if deb_skip.match(n)]
        return [n for n in names if n == "__pycache__"]
    shutil.copytree(REPO, dest, symlinks=True, ignore=ignore)


# ---------------------------------------------------------------- Quick start

def test_serve_from_private_clone(ctx):
    """scripts/serve from a fresh clone in a directory of mode 0700 (as a
    home is) whose path has a blank answers a signed delivery; nothing of
    the user's is made more accessible."""
    if shutil.which("git") is None or \
            not os.path.isdir(os.path.join(REPO, ".git")):
        raise Skip("needs git and a git checkout")
    home = ctx.path("home")
    os.mkdir(home, 0o700)           # root's, or the user's: not TEST_USER's
    clone = os.path.join(home, "my payhook")
    run(["git", "clone", "-q", REPO, clone], "git clone", 60)
    # What the working tree has, uncommitted changes included.
    tracked = subprocess.run(["git", "-C", REPO, "ls-files", "-z"],
                             stdout=subprocess.PIPE, check=True).stdout
    for rel in tracked.decode().split("\0"):
        src = os.path.join(REPO, rel)
        if rel and os.path.isfile(src) and not os.path.islink(src):
            shutil.copy2(src, os.path.join(clone, rel))
    os.chmod(clone, 0o700)
    modes = {d: stat.S_IMODE(os.stat(d).st_mode) for d in (home, clone)}

    port = free_port()
    log = ctx.path("serve.log")
    env = dict(os.environ, PORT=str(port))
    with open(log, "wb") as out:
        proc = subprocess.Popen([os.path.join(clone, "scripts", "serve")],
                                stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=env,
                                cwd=home)
    kids = []
    rundir = None
    try:
        deadline = time.time() + 240    # it builds payhook first
        while "payhook is serving on" not in read_text(log):
            check(proc.poll() is None, "scripts/serve exited %s:\n%s"
                  % (proc.returncode, read_text(log)[-3000:]))
            check(time.time() < deadline, "scripts/serve did not start in "
                  "240 s:\n" + read_text(log)[-3000:])
            time.sleep(0.2)
        text = read_text(log)
        kids = proc_children(proc.pid)
        m = re.search(r"^The demo runs from (/var/tmp/payhook-serve\.\S+):",
                      text, re.M)
        if IS_ROOT:
            check(m is not None, "scripts/serve did not move the demo out of "
                  "a checkout %s cannot reach:\n%s" % (TEST_USER, text[-2000:]))
        else:
            check(m is not None, "scripts/serve kept a path with a blank as "
                  "lighttpd's bin-path:\n" + text[-2000:])
        rundir = m.group(1)
        ctx.cleanups.append(lambda: shutil.rmtree(rundir, ignore_errors=True))
        st = os.stat(rundir)
        eq(oct(stat.S_IMODE(st.st_mode)), oct(0o755), "mode of " + rundir)
        eq(st.st_uid, os.geteuid(), "owner of " + rundir)
        var = os.path.join(rundir, "var")
        st = os.stat(var)
        eq(oct(stat.S_IMODE(st.st_mode)), oct(0o700), "mode of " + var)
        eq(st.st_uid, ctx.uid, "owner of " + var)

        payload = ngn_payload("serve-private-1")
        body = body_of(payload)
        headers = ngn_headers(body, secret="demo-ngn-secret")
        t0 = now_ms()
        r = http_request(port, "POST", "/ngn", body, headers)
        t1 = now_ms()
        ulid = accepted_id(r, "delivery through scripts/serve")
        check_event_file(Spool(os.path.join(var, "spool")), ulid,
                         expected_ngn_event(payload, body), t0, t1)
        check_duplicate(http_request(port, "POST", "/ngn", body, headers),
                        ulid, "second delivery")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        left = kill_left(kids + [k for p in kids for k in proc_children(p)],
                         grace=5)
    check(left == [], "scripts/serve left processes %r running" % left)
    eq(proc.returncode, 0, "scripts/serve's exit status after SIGTERM")
    check("the demo's files stay in %s" % rundir in read_text(log),
          "scripts/serve did not say where the demo's files stay")
    eq(len(Spool(os.path.join(rundir, "var", "spool")).new()), 1,
       "events in the demo's spool after it stopped")
    for d, mode in modes.items():
        eq(oct(stat.S_IMODE(os.stat(d).st_mode)), oct(mode),
           "mode of %s after scripts/serve" % d)
    check(not os.path.exists(os.path.join(clone, "var")),
          "scripts/serve wrote var/ into the unreachable checkout")


test_serve_from_private_clone.timeout = 300


# ---------------------------------------------------------------- .deb

def deb_preconditions():
    if not IS_ROOT:
        raise Skip("installs a package: needs root")
    if shutil.which("dpkg-buildpackage") is None:
        raise Failure("dpkg-buildpackage is missing (scripts/deps installs "
                      "dpkg-dev, debhelper and lintian)")
    status = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status}",
                             "payhook"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL).stdout.decode()
    present = [p for p in (SPOOL_DIR, STATE_DIR, "/etc/payhook")
               if os.path.lexists(p)]
    try:
        pwd.getpwnam("payhook")
        present.append("user payhook")
    except KeyError:
        pass
    if status not in ("", "not-installed") or present:
        raise Skip("this machine already has payhook (package %r, %s): not "
                   "touching it" % (status, ", ".join(present) or "-"))


def build_deb(ctx):
    """Build the .deb from a copy of the source; returns its path."""
    src = ctx.path("src", "payhook")
    copy_source(src)
    env = dict(os.environ, DEB_BUILD_OPTIONS="nocheck noddebs parallel=2")
    # nocheck: scripts/test runs the unit tests itself.
    run(["dpkg-buildpackage", "-us", "-uc", "-b"], "dpkg-buildpackage", 300,
        cwd=src, env=env)
    version = run(["dpkg-parsechangelog", "-S", "Version"], "changelog", 30,
                  cwd=src).strip()
    arch = run(["dpkg", "--print-architecture"], "dpkg", 30).strip()
    deb = ctx.path("src", "payhook_%s_%s.deb" % (version, arch))
    check(os.path.isfile(deb), "no %s after dpkg-buildpackage: %r"
          % (os.path.basename(deb), os.listdir(ctx.path("src"))))
    return deb


def test_deb_package(ctx):
    """The .deb builds, lintian passes, it installs the user, directories
    and files, the installed binary spools a CGI delivery as payhook, and
    purge removes the user but keeps spool and state."""
    deb_preconditions()
    deb = build_deb(ctx)
    changes = deb[:-len(".deb")] + ".changes"
    lint = subprocess.run(["lintian", "--fail-on", "error,warning", changes],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=120)
    report = lint.stdout.decode("utf-8", "replace")
    tags = [ln for ln in report.splitlines() if re.match(r"^[EW]: ", ln)]
    check(lint.returncode == 0 and not tags,
          "lintian (exit %d):\n%s" % (lint.returncode, report))

    installed = False
    try:
        run(["dpkg", "-i", deb], "dpkg -i", 120,
            env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
        installed = True
        pw = pwd.getpwnam("payhook")
        check(pw.pw_uid != 0 and pw.pw_gid != 0, "payhook is not root")
        eq(pw.pw_shell, "/usr/sbin/nologin", "payhook's shell")
        for d in (SPOOL_DIR, STATE_DIR):
            st = os.lstat(d)
            check(stat.S_ISDIR(st.st_mode), d + " is a directory")
            eq((st.st_uid, st.st_gid), (pw.pw_uid, pw.pw_gid), d + " owner")
            eq(oct(stat.S_IMODE(st.st_mode)), oct(0o700), d + " mode")
        check(not os.path.exists("/etc/payhook"),
              "the package installed a live configuration in /etc/payhook")
        drain_ex = "/usr/share/doc/payhook/examples/drain"
        eq(sorted(os.listdir(drain_ex)), sorted(os.listdir(
            os.path.join(REPO, "examples"))), "drain examples")
        for name in os.listdir(drain_ex):
            eq(oct(stat.S_IMODE(os.stat(os.path.join(drain_ex, name))
                                .st_mode)), oct(0o644), name + " mode")

        # The unit: systemd accepts it, and without a configuration its
        # first ExecStartPre refuses in one line.
        unit = "/lib/systemd/system/payhook.service"
        text = read_text(unit)
        for want in ("NoNewPrivileges=yes", "ProtectSystem=strict",
                     "ReadWritePaths=/var/spool/payhook /var/lib/payhook",
                     "PrivateTmp=yes", "ProtectHome=yes",
                     "--socket-owner www-data", "--user payhook"):
            check(want in text, "%s lacks %r" % (unit, want))
        if shutil.which("systemd-analyze"):
            v = subprocess.run(["systemd-analyze", "verify", unit],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60)
            eq((v.returncode, v.stdout.decode()), (0, ""),
               "systemd-analyze verify " + unit)
        pre = re.search(r"^ExecStartPre=/bin/sh -c '(.*)'$", text, re.M)
        check(pre is not None, "the unit has no configuration check")
        p = subprocess.run(["/bin/sh", "-c", pre.group(1)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        eq(p.returncode, 1, "the unit's check without a configuration")
        eq(p.stderr.decode(), "payhook: /etc/payhook/payhook.json does not "
           "exist: copy %s there and edit it (see /usr/share/doc/payhook/"
           "README.Debian)\n" % EXAMPLE_CONFIG, "the unit's refusal")

        out = run(["/usr/sbin/payhook", "--check-config", "--config",
                   EXAMPLE_CONFIG], "payhook --check-config", 30,
                  env=dict(EXAMPLE_ENV, PATH="/usr/bin:/bin"))
        # The example is a documentation file, readable by all (0644): a
        # live configuration should not be, and --check-config says so.
        eq(out, "%s: warning: %s is readable by others (mode 0644); chmod "
           "o-r it\n%s: OK (11 routes)\n"
           % (EXAMPLE_CONFIG, EXAMPLE_CONFIG, EXAMPLE_CONFIG),
           "--check-config")

        # A CGI delivery through the installed binary, as payhook, with the
        # example configuration: the event lands in /var/spool/payhook.
        payload = ngn_payload("deb-cgi-1")
        body = body_of(payload)
        headers = ngn_headers(body, secret=EXAMPLE_ENV["NGN_WEBHOOK_SECRET"])
        argv = ["setpriv", "--reuid=payhook", "--regid=payhook",
                "--clear-groups", "/usr/sbin/payhook"]
        env = cgi_env(EXAMPLE_CONFIG, body, headers, EXAMPLE_ENV)
        t0 = now_ms()
        p = subprocess.run(argv, input=body, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=env, timeout=30)
        t1 = now_ms()
        res = CgiResult(p.returncode, p.stdout, p.stderr.decode())
        eq(res.status, 200, "CGI answer status (stderr %r)" % res.stderr)
        m = re.match(rb'^\{"status":"accepted","id":"([0-9A-Z]{26})"\}$',
                     res.body)
        check(m is not None, "CGI answer body %r" % res.body)
        ulid = m.group(1).decode()
        spool = Spool(SPOOL_DIR)
        check_event_file(spool, ulid, expected_ngn_event(payload, body),
                         t0, t1)
        name = [n for n in spool.new() if ulid in n][0]
        st = os.stat(os.path.join(SPOOL_DIR, "new", name))
        eq((st.st_uid, st.st_gid), (pw.pw_uid, pw.pw_gid),
           "owner of the spooled event")
        state_files = sorted(os.listdir(STATE_DIR))
        check(state_files != [], "no dedup database in " + STATE_DIR)

        run(["dpkg", "--purge", "payhook"], "dpkg --purge", 120)
        installed = False
        check(not os.path.exists("/usr/sbin/payhook"), "binary removed")
        try:
            pwd.getpwnam("payhook")
            raise Failure("purge left the user payhook")
        except KeyError:
            pass
        eq([n for n in spool.new() if ulid in n], [name],
           "the spooled event after purge")
        eq(sorted(os.listdir(STATE_DIR)), state_files,
           "the state directory after purge")
    finally:
        if installed:
            subprocess.run(["dpkg", "--purge", "payhook"],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=120)
        # Leave the machine as found: the test's events and records.
        for d in (SPOOL_DIR, STATE_DIR):
            shutil.rmtree(d, ignore_errors=True)


test_deb_package.timeout = 600


# ---------------------------------------------------------------- static

def test_static_binary(ctx):
    """scripts/build-static gives a statically linked binary that, alone in
    an otherwise empty chroot, answers a signed CGI delivery with 200 and
    spools the event."""
    if not IS_ROOT:
        raise Skip("chroot needs root")
    out = run([os.path.join(REPO, "scripts", "build-static")],
              "scripts/build-static", 240)
    binary = out.splitlines()[-1]
    check(os.path.isabs(binary) and os.path.isfile(binary),
          "scripts/build-static's last line is not the binary: %r" % binary)
    desc = run(["file", "-b", binary], "file", 30)
    check("statically linked" in desc, "file says: " + desc)
    ctx.log("static binary: %d bytes" % os.path.getsize(binary))

    # The jail: the binary, its configuration, a spool and a state
    # directory; no /lib, no /usr, no /etc/passwd, no /dev.
    jail = ctx.path("jail")
    os.mkdir(jail, 0o755)
    for d in ("cgi-bin", "etc"):
        os.mkdir(os.path.join(jail, d), 0o755)
    shutil.copy(binary, os.path.join(jail, "cgi-bin", "payhook"))
    os.chmod(os.path.join(jail, "cgi-bin", "payhook"), 0o755)
    ctx.mkdir(os.path.join(jail, "spool"))
    ctx.mkdir(os.path.join(jail, "state"))
    cfg = ctx.route()
    ctx.write(os.path.join(jail, "etc", "payhook.json"), json.dumps(
        {"spool_dir": "/spool", "state_dir": "/state",
         "routes": [cfg]}), mode=0o600)
    eq(sorted(os.listdir(jail)), ["cgi-bin", "etc", "spool", "state"],
       "the jail's top level")
    uid, gid = ctx.uid, ctx.gid

    def enter_jail():
        os.chroot(jail)
        os.chdir("/")
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)

    def deliver(body):
        env = cgi_env("/etc/payhook.json", body, ngn_headers(body))
        del env["PATH"]
        p = subprocess.run(["/cgi-bin/payhook"], input=body,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=env, preexec_fn=enter_jail, timeout=30)
        err = p.stderr.decode("utf-8", "replace")
        ctx.stderr_texts.append(err)
        return CgiResult(p.returncode, p.stdout, err)

    payload = ngn_payload("static-cgi-1")
    body = body_of(payload)
    t0 = now_ms()
    res = deliver(body)
    t1 = now_ms()
    eq((res.rc, res.status), (0, 200),
       "exit status and answer in the jail (stderr %r)" % res.stderr)
    m = re.match(rb'^\{"status":"accepted","id":"([0-9A-Z]{26})"\}$',
                 res.body)
    check(m is not None, "CGI answer body %r" % res.body)
    ulid = m.group(1).decode()
    check_event_file(Spool(os.path.join(jail, "spool")), ulid,
                     expected_ngn_event(payload, body), t0, t1)
    res = deliver(body)
    eq(res.status, 200, "second delivery (stderr %r)" % res.stderr)
    eq(res.body, ('{"status":"duplicate","id":"%s"}' % ulid).encode(),
       "second delivery's body")

    # --listen with numeric ids needs no user database: the jail has no
    # /etc/passwd, where a static glibc's getpwnam fails with ENOENT.
    port = free_port()
    errlog = ctx.path("listen.log")

    def enter_jail_as_root():
        os.chroot(jail)
        os.chdir("/")

    with open(errlog, "wb") as err:
        proc = subprocess.Popen(
            ["/cgi-bin/payhook", "--config", "/etc/payhook.json",
             "--listen", "127.0.0.1:%d" % port, "--workers", "1",
             "--user", str(uid), "--group", str(gid)],
            stdin=subprocess.DEVNULL, stdout=err, stderr=err, env={},
            preexec_fn=enter_jail_as_root)
    try:
        deadline = time.time() + 15
        while "listening on 127.0.0.1:%d" % port not in read_text(errlog):
            check(proc.poll() is None, "payhook --listen in the jail exited "
                  "%s: %s" % (proc.returncode, read_text(errlog)))
            check(time.time() < deadline, "payhook --listen in the jail did "
                  "not listen: " + read_text(errlog))
            time.sleep(0.05)
        workers = []
        while not workers and time.time() < deadline:
            workers = proc_children(proc.pid)
            time.sleep(0.05)
        eq(len(workers), 1, "workers of payhook --listen in the jail")
        with open("/proc/%d/status" % workers[0]) as f:
            ids = re.findall(r"^(Uid|Gid):\t(\d+)", f.read(), re.M)
        eq([int(v) for _k, v in ids], [uid, gid], "the worker's uid and gid")
    finally:
        kids = proc_children(proc.pid)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        ctx.stderr_texts.append(read_text(errlog))
        left = kill_left(kids, grace=5)
    eq(proc.returncode, 0, "payhook --listen's exit status after SIGTERM")
    eq(left, [], "workers left running")


test_static_binary.timeout = 300
