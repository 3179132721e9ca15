#!/usr/bin/env python3
# run.py - run payhook's integration tests.
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# Usage: run.py [--payhook PATH] [--only NAME]... [--list] [--keep]
#               [--keep-failed]
#
# Tests are the functions test_<name>(ctx) of the modules test_*.py next to
# this file, in file order. --only selects a module (e.g. "cgi" for
# test_cgi.py) or tests whose name starts with NAME; repeatable.
# Prints "ok - NAME", "not ok - NAME" or "ok - NAME # SKIP reason" per test
# and ends with "N passed, N failed" (", N skipped" if any); exits 1 if any
# test failed.

import argparse
import importlib
import inspect
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402

TEST_TIMEOUT = 180          # seconds, per test, unless the test function
                            # has its own "timeout" attribute


class Timeout(Exception):
    pass


def on_alarm(signum, frame):
    raise Timeout("test exceeded its time limit")


def discover():
    tests = []
    for fname in sorted(os.listdir(HERE)):
        if not (fname.startswith("test_") and fname.endswith(".py")):
            continue
        modname = fname[:-3]
        mod = importlib.import_module(modname)
        fns = [(inspect.getsourcelines(fn)[1], name, fn)
               for name, fn in vars(mod).items()
               if name.startswith("test_") and inspect.isfunction(fn)
               and fn.__module__ == modname]
        for _line, name, fn in sorted(fns):
            tests.append((modname[len("test_"):], name[len("test_"):], fn))
    return tests


def selected(module, name, only):
    if not only:
        return True
    return any(module == o or name.startswith(o) for o in only)


def main():
    repo = os.path.dirname(os.path.dirname(HERE))
    ap = argparse.ArgumentParser(description="payhook integration tests")
    ap.add_argument("--payhook",
                    default=os.path.join(repo, "build", "src", "payhook"),
                    help="the payhook binary to test")
    ap.add_argument("--only", action="append", default=[],
                    help="module or test-name prefix (repeatable)")
    ap.add_argument("--list", action="store_true", help="list tests")
    ap.add_argument("--keep", action="store_true",
                    help="keep each test's temporary directory")
    ap.add_argument("--keep-failed", action="store_true",
                    help="keep the temporary directory of failed tests")
    args = ap.parse_args()

    tests = [t for t in discover() if selected(t[0], t[1], args.only)]
    if args.list:
        for module, name, _fn in tests:
            print("%s (%s)" % (name, module))
        return 0
    if not tests:
        print("no test matches %s" % args.only, file=sys.stderr)
        print("0 passed, 1 failed")
        return 1

    payhook = os.path.abspath(args.payhook)
    if not os.access(payhook, os.X_OK):
        print("not ok - setup")
        print("# %s is not an executable; build it first" % payhook)
        print("0 passed, 1 failed")
        return 1
    harness.ensure_test_user()
    # The unit test binary of the same build has fault helpers some tests
    # run (test_dedup_faults.py); it travels with a copy of payhook.
    builddir = os.path.dirname(os.path.dirname(os.path.abspath(payhook)))
    harness.UNIT_BINARY = os.path.join(builddir, "tests", "unit", "unit")
    # So does the NATS stream reader of test_nats.py.
    harness.NATS_DUMP = os.path.join(builddir, "tests", "nats", "nats-dump")
    bindir = None
    if (harness.IS_ROOT and subprocess.run(harness.as_test_user(
            ["test", "-x", payhook])).returncode != 0) or \
            any(c.isspace() for c in payhook):
        # The unprivileged user cannot reach the binary (a checkout under
        # /root, say), or its path has a blank, at which lighttpd splits
        # "bin-path": test a copy in a directory it can traverse.
        bindir = tempfile.mkdtemp(prefix="ph-it-bin-")
        os.chmod(bindir, 0o755)
        shutil.copy2(payhook, os.path.join(bindir, "payhook"))
        payhook = os.path.join(bindir, "payhook")
        if os.access(harness.UNIT_BINARY, os.X_OK):
            shutil.copy2(harness.UNIT_BINARY, os.path.join(bindir, "unit"))
            harness.UNIT_BINARY = os.path.join(bindir, "unit")
        if os.access(harness.NATS_DUMP, os.X_OK):
            shutil.copy2(harness.NATS_DUMP, os.path.join(bindir,
                                                         "nats-dump"))
            harness.NATS_DUMP = os.path.join(bindir, "nats-dump")
        harness.note("testing a copy of the binary: %s" % payhook)

    sys.stdout.reconfigure(line_buffering=True)
    signal.signal(signal.SIGALRM, on_alarm)
    passed = failed = skipped = 0
    t_all = time.time()
    for module, name, fn in tests:
        ctx = harness.Ctx(payhook, name, keep=args.keep)
        t0 = time.time()
        outcome, detail = "ok", None
        signal.alarm(getattr(fn, "timeout", TEST_TIMEOUT))
        try:
            fn(ctx)
        except harness.Skip as e:
            outcome, detail = "skip", str(e)
        except harness.Failure as e:
            outcome, detail = "fail", str(e)
        except Exception:
            outcome, detail = "fail", traceback.format_exc()
        finally:
            signal.alarm(0)
        if args.keep_failed and outcome == "fail":
            ctx.keep = True
        problems = ctx.cleanup()
        if problems and outcome != "fail":
            outcome = "fail"
            detail = "\n".join(problems)
        elif problems:
            detail += "\n" + "\n".join(problems)
        secs = time.time() - t0
        if outcome == "ok":
            passed += 1
            print("ok - %s" % name)
        elif outcome == "skip":
            skipped += 1
            print("ok - %s # SKIP %s" % (name, detail))
        else:
            failed += 1
            print("not ok - %s" % name)
            ctx.log(detail)
        if secs > 5:
            ctx.log("%s took %.1f s" % (name, secs))
    harness.note("integration tests took %.1f s"
                    % (time.time() - t_all))
    if bindir:
        shutil.rmtree(bindir, ignore_errors=True)
    summary = "%d passed, %d failed" % (passed, failed)
    if skipped:
        summary += ", %d skipped" % skipped
    print(summary)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
