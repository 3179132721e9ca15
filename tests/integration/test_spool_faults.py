# test_spool_faults.py - spool directories replaced, planted or opened up.
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# A long-lived FastCGI worker keeps descriptors of the spool, tmp/ and
# new/. When the spool directory is moved away and recreated (a restore,
# an operator's mv) or deleted, the next delivery must land in the
# configured path's new/, served by the same process, never in the old
# directory (2xx for an event nobody looks for) and never 503 forever.
#
# A spool directory that is a symlink, owned by another user or writable by
# group or others is refused: 500 (payhook misconfigured, product.md), one
# log line naming the directory, nothing written through it, no dedup
# record; fixed, the same delivery is accepted by the same process.
#
# Directories payhook creates are fsynced into their parents (strace -f -y
# shows the fsync of the parent after mkdir of the spool, and of the spool
# after mkdir of its subdirectories).

import os
import re
import shutil
import subprocess

from harness import (EXAMPLE, IS_ROOT, Skip, accept, as_test_user, body_of,
                     check, check_error, eq, ngn_headers, ngn_payload)


def _refused(ctx, lt, cfg, spool, bad_path, what, fix):
    """Deliveries answer 500 while bad_path is refused; after fix() the
    same delivery is accepted by the same process."""
    pids = lt.children()
    body = body_of(EXAMPLE)
    for i in range(2):
        check_error(lt.post(body), 500, "%s, try %d" % (what, i))
    entry = lt.wait_log(lambda e: e[1] == "error" and
                        ("refusing %s:" % bad_path) in e[3])
    check(entry is not None, "no log line names %s (%s): %s"
          % (bad_path, what, lt.stderr_text()[-2000:]))
    check(what_word(what) in entry[3], "log line %r does not say %r"
          % (entry[3], what_word(what)))
    line = lt.wait_log(lambda e: "outcome=misconfigured status=500" in
                       e[3])
    check(line is not None, "request line with outcome=misconfigured")
    eq(ctx.dedup_count(cfg), 0, "dedup records while refused (%s)" % what)
    fix()
    accept(lt, EXAMPLE, spool, "after repair (%s)" % what)
    eq(lt.children(), pids, "the same payhook process serves")
    ctx.assert_untouched(cfg, spool, count=1, new=1)


def what_word(what):
    return {"symlink": "symbolic link", "owner": "owned by uid",
            "mode": "writable by group or others"}[what.split()[0]]


def _fresh_spool(ctx, spool):
    ctx.mkdir(spool.path)
    for sub in ("tmp", "new", "cur", "done"):
        ctx.mkdir(spool.sub(sub))


def test_spool_moved_and_recreated_fcgi(ctx):
    cfg, spool, _state = ctx.config()
    lt = ctx.lighttpd_fcgi(cfg)
    pids = lt.children()
    first = accept(lt, ngn_payload("900001"), spool, "before the move")
    old = ctx.path("spool.old")
    os.rename(spool.path, old)
    ctx.mkdir(spool.path)                   # as an operator recreates it
    second = accept(lt, ngn_payload("900002"), spool, "after mv + mkdir")
    eq([n for n in spool.new() if second in n] != [], True,
       "event in the configured path's new/")
    eq(len(spool.new()), 1, "files in the configured path's new/")
    olds = sorted(os.listdir(os.path.join(old, "new")))
    eq(len(olds), 1, "files in the old directory's new/")
    check(first in olds[0], "the old directory keeps only the first event")
    for sub in ("tmp", "new", "cur", "done"):
        check(os.path.isdir(spool.sub(sub)), "%s/ recreated" % sub)

    # Deleted outright: payhook recreates it at the configured path.
    shutil.rmtree(spool.path)
    shutil.rmtree(old)
    third = accept(lt, ngn_payload("900003"), spool, "after rm -rf")
    eq(len(spool.new()), 1, "files in new/ after rm -rf")
    check(third in spool.new()[0], "the third event is in new/")
    eq(oct(os.stat(spool.path).st_mode & 0o777), oct(0o700),
       "recreated spool mode")

    # Only new/ replaced.
    os.rename(spool.sub("new"), ctx.path("new.old"))
    ctx.mkdir(spool.sub("new"))
    fourth = accept(lt, ngn_payload("900004"), spool, "after new/ replaced")
    eq(len(spool.new()), 1, "files in the replaced new/")
    check(fourth in spool.new()[0], "the fourth event is in new/")
    eq(lt.children(), pids, "one long-lived payhook process served all")
    eq(ctx.dedup_count(cfg), 4, "dedup records")


def test_spool_symlinked_new_refused(ctx):
    cfg, spool, _state = ctx.config()
    _fresh_spool(ctx, spool)
    elsewhere = ctx.mkdir(ctx.path("elsewhere"))
    os.rmdir(spool.sub("new"))
    os.symlink(elsewhere, spool.sub("new"))
    lt = ctx.lighttpd_fcgi(cfg)

    def fix():
        os.unlink(spool.sub("new"))
        ctx.mkdir(spool.sub("new"))
    _refused(ctx, lt, cfg, spool, spool.sub("new"), "symlink new/", fix)
    eq(os.listdir(elsewhere), [], "nothing written through the symlink")


def test_spool_symlinked_tmp_refused(ctx):
    cfg, spool, _state = ctx.config()
    _fresh_spool(ctx, spool)
    elsewhere = ctx.mkdir(ctx.path("elsewhere"))
    lt = ctx.lighttpd_fcgi(cfg)
    # Planted after the worker opened the spool: noticed per delivery.
    accept(lt, ngn_payload("900010"), spool, "before the plant")
    os.rmdir(spool.sub("tmp"))
    os.symlink(elsewhere, spool.sub("tmp"))
    body = body_of(ngn_payload("900011"))
    check_error(lt.post(body), 500, "tmp/ planted as a symlink")
    eq(os.listdir(elsewhere), [], "nothing written through the symlink")
    eq(len(spool.new()), 1, "files in new/")
    eq(ctx.dedup_count(cfg), 1, "dedup records (the claim was released)")


def test_spool_dir_symlink_refused(ctx):
    cfg, spool, _state = ctx.config()
    real = ctx.path("real-spool")
    ctx.mkdir(real)
    os.symlink(real, spool.path)
    lt = ctx.lighttpd_fcgi(cfg)

    def fix():
        os.unlink(spool.path)
        os.rename(real, spool.path)
    _refused(ctx, lt, cfg, spool, spool.path, "symlink spool", fix)


def test_spool_foreign_owner_refused(ctx):
    if not IS_ROOT:
        raise Skip("needs root to give new/ to another user")
    cfg, spool, _state = ctx.config()
    _fresh_spool(ctx, spool)
    os.chown(spool.sub("new"), 0, 0)
    os.chmod(spool.sub("new"), 0o755)   # root's: before, a 503
    lt = ctx.lighttpd_fcgi(cfg)

    def fix():
        os.chmod(spool.sub("new"), 0o700)
        ctx.own(spool.sub("new"))
    _refused(ctx, lt, cfg, spool, spool.sub("new"), "owner of new/", fix)


def test_spool_foreign_owner_cur_refused(ctx):
    if not IS_ROOT:
        raise Skip("needs root to give cur/ to another user")
    cfg, spool, _state = ctx.config()
    _fresh_spool(ctx, spool)
    os.chown(spool.sub("cur"), 65534, 65534)
    lt = ctx.lighttpd_fcgi(cfg)

    def fix():
        ctx.own(spool.sub("cur"))
    _refused(ctx, lt, cfg, spool, spool.sub("cur"), "owner of cur/", fix)


def test_spool_world_writable_refused(ctx):
    cfg, spool, _state = ctx.config()
    _fresh_spool(ctx, spool)
    os.chmod(spool.sub("tmp"), 0o777)
    lt = ctx.lighttpd_fcgi(cfg)

    def fix():
        os.chmod(spool.sub("tmp"), 0o700)
    _refused(ctx, lt, cfg, spool, spool.sub("tmp"), "mode of tmp/", fix)


def test_spool_world_writable_later_refused(ctx):
    cfg, spool, _state = ctx.config()
    lt = ctx.lighttpd_fcgi(cfg)
    accept(lt, ngn_payload("900020"), spool, "before chmod")
    os.chmod(spool.path, 0o777)
    check_error(lt.post(body_of(ngn_payload("900021"))), 500,
                "spool made 0777 after the worker opened it")
    eq(ctx.dedup_count(cfg), 1, "dedup records")
    os.chmod(spool.path, 0o700)
    accept(lt, ngn_payload("900021"), spool, "after chmod back")


def test_spool_mkdir_fsynced(ctx):
    strace = shutil.which("strace")
    if strace is None:
        raise Skip("strace is not installed")
    cfg, spool, _state = ctx.config()
    log = ctx.path("strace.log")
    body = body_of(EXAMPLE)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
           "GATEWAY_INTERFACE": "CGI/1.1", "REQUEST_METHOD": "POST",
           "CONTENT_LENGTH": str(len(body)), "PATH_INFO": "/ngn",
           "SCRIPT_NAME": "/cgi-bin/payhook", "REMOTE_ADDR": "127.0.0.1",
           "QUERY_STRING": "", "PAYHOOK_CONFIG": cfg,
           # LeakSanitizer cannot run under ptrace (a sanitizer build).
           "ASAN_OPTIONS": "detect_leaks=0"}
    for k, v in ngn_headers(body).items():
        key = k.upper().replace("-", "_")
        env[key if key == "CONTENT_TYPE" else "HTTP_" + key] = v
    p = subprocess.run([strace, "-f", "-y", "-o", log, "-e",
                        "trace=mkdir,mkdirat,fsync"] +
                       as_test_user([ctx.payhook]), input=body, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    ctx.stderr_texts.append(p.stderr.decode("utf-8", "replace"))
    check(p.stdout.startswith(b"Status: 200"), "CGI answer %r"
          % p.stdout[:200])
    with open(log) as f:
        calls = [re.sub(r"^\d+\s+", "", line.strip()) for line in f]
    calls = [c for c in calls if c.startswith(("mkdir", "fsync"))]

    def index(pred, what, after=-1):
        for i, c in enumerate(calls):
            if i > after and pred(c):
                return i
        raise AssertionError("%s not found after call %d in:\n%s"
                             % (what, after, "\n".join(calls)))
    i = index(lambda c: c.startswith(("mkdir(", "mkdirat(AT_FDCWD")) and
              ('"%s"' % spool.path) in c and c.endswith("= 0"),
              "mkdir of the spool")
    index(lambda c: c.startswith("fsync(") and
          c.split("<", 1)[1].startswith(ctx.dir + ">"),
          "fsync of the spool's parent", i)
    for sub in ("tmp", "new", "cur", "done"):
        j = index(lambda c: c.startswith("mkdirat(") and
                  ('"%s"' % sub) in c and c.endswith("= 0"),
                  "mkdirat of %s/" % sub)
        index(lambda c: c.startswith("fsync(") and
              c.split("<", 1)[1].startswith(spool.path + ">"),
              "fsync of the spool after mkdir %s/" % sub, j)
    eq(len(spool.new()), 1, "the event is in new/")
