# test_storage.py - storage faults answer 503 + Retry-After and lose nothing.
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# payhook runs as an unprivileged user (see harness.py), so file modes are
# real. Every fault must answer 503 with Retry-After, leave no dedup record
# and no file behind, and the same delivery must be accepted once the fault
# is repaired, by the same long-running FastCGI process (payhook retries
# opening storage on each request).

import os
import subprocess

from harness import (EXAMPLE, IS_ROOT, Skip, accept, body_of, check,
                     check_error, eq, fill_filesystem)


def _spool_dirs(ctx, spool):
    if not os.path.isdir(spool.path):
        ctx.mkdir(spool.path)
    for sub in ("tmp", "new", "cur", "done"):
        if not os.path.isdir(spool.sub(sub)):
            ctx.mkdir(spool.sub(sub))


def test_storage_spool_unwritable(ctx):
    cfg, spool, _state = ctx.config()
    _spool_dirs(ctx, spool)
    os.chmod(spool.sub("new"), 0o500)
    lt = ctx.lighttpd_fcgi(cfg)
    pids = lt.children()
    body = body_of(EXAMPLE)
    for i in range(2):
        check_error(lt.post(body), 503, "new/ not writable, try %d" % i)
    eq(os.listdir(spool.sub("new")), [], "files in new/")
    ctx.assert_untouched(cfg, spool, what="after 503 (no dedup record)")
    os.chmod(spool.sub("new"), 0o700)
    accept(lt, EXAMPLE, spool, "after repair")
    eq(lt.children(), pids, "the same payhook process serves")
    ctx.assert_untouched(cfg, spool, count=1, new=1)


def test_storage_state_unwritable(ctx):
    cfg, spool, state = ctx.config()
    if IS_ROOT:
        os.mkdir(state, 0o755)          # root's: the test user cannot write
    else:
        os.mkdir(state, 0o500)
    lt = ctx.lighttpd_fcgi(cfg)
    pids = lt.children()
    body = body_of(EXAMPLE)
    for i in range(2):
        check_error(lt.post(body), 503, "state_dir not writable, try %d" % i)
    eq(spool.new(), [], "files in new/")
    eq(spool.tmp(), [], "files in tmp/")
    os.chmod(state, 0o700)
    ctx.own(state)
    accept(lt, EXAMPLE, spool, "after repair")
    eq(lt.children(), pids, "the same payhook process serves")
    ctx.assert_untouched(cfg, spool, count=1, new=1)


def test_storage_disk_full(ctx):
    if not IS_ROOT:
        raise Skip("mounting a small tmpfs needs root")
    cfg, spool, _state = ctx.config()
    os.mkdir(spool.path, 0o700)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o",
                        "size=256k,mode=0700,uid=%d,gid=%d"
                        % (ctx.uid, ctx.gid), "tmpfs", spool.path],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        raise Skip("mount -t tmpfs failed: %s"
                   % p.stdout.decode().strip())

    def unmount():
        if subprocess.run(["umount", spool.path]).returncode != 0:
            subprocess.run(["umount", "-l", spool.path])
    ctx.cleanups.append(unmount)
    _spool_dirs(ctx, spool)
    filler = os.path.join(spool.path, "filler")
    fill_filesystem(filler)
    st = os.statvfs(spool.path)
    eq(st.f_bavail, 0, "free blocks on the filled tmpfs")
    lt = ctx.lighttpd_fcgi(cfg)
    body = body_of(EXAMPLE)
    for i in range(2):
        check_error(lt.post(body), 503, "disk full, try %d" % i)
    ctx.assert_untouched(cfg, spool, what="after 503 on a full disk")
    os.unlink(filler)
    accept(lt, EXAMPLE, spool, "after freeing space")
    ctx.assert_untouched(cfg, spool, count=1, new=1)
    check(os.path.ismount(spool.path), "the spool is still the tmpfs")
