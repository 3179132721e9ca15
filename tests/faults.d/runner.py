# runner.py - run payhook's fault scenarios and print their figures.
#
# Copyright (c) 2026 the payhook authors. MIT licence, see COPYING.
#
# Each scenario is one test: a function (ctx, fig, scale) in scenarios.py
# that drives real servers, fills fig with its figures and records a broken
# invariant with fig.expect(). A scenario passes when every invariant held.
# Output: one line per scenario with its figures ("ok - NAME: k=v ..." or
# "not ok - ..." followed by "# " lines saying which invariants broke), a
# table of all figures, then "N passed, N failed[, N skipped]".

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

import harness
import scenarios

LONG_SCALE = 10


class Timeout(Exception):
    pass


class Figures:
    """Ordered figures of one scenario and the invariants that broke."""

    def __init__(self):
        self.values = {}
        self.problems = []

    def __setitem__(self, key, value):
        self.values[key] = value

    def __getitem__(self, key):
        return self.values[key]

    def add(self, **kw):
        self.values.update(kw)

    def expect(self, cond, msg):
        """Record a broken invariant (the scenario goes on, so that every
        figure is still measured)."""
        if not cond:
            self.problems.append(msg)
        return cond

    def text(self):
        out = []
        for k, v in self.values.items():
            out.append("%s=%s" % (k, ("%.2f" % v) if isinstance(v, float)
                                  else v))
        return " ".join(out)


def on_alarm(signum, frame):
    raise Timeout("scenario exceeded its time budget")


def prepare_binary(payhook):
    """The binary's path, or a copy the unprivileged user can execute
    (as tests/integration/run.py does); (path, directory to remove)."""
    if harness.IS_ROOT and subprocess.run(harness.as_test_user(
            ["test", "-x", payhook])).returncode != 0:
        bindir = tempfile.mkdtemp(prefix="ph-faults-bin-")
        os.chmod(bindir, 0o755)
        shutil.copy2(payhook, os.path.join(bindir, "payhook"))
        return os.path.join(bindir, "payhook"), bindir
    return payhook, None


def main():
    repo = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    ap = argparse.ArgumentParser(
        prog="tests/faults",
        description="payhook fault suite: real servers under load, with "
        "faults injected; prints figures per scenario")
    ap.add_argument("--payhook",
                    default=os.path.join(repo, "build", "src", "payhook"),
                    help="the payhook binary to test")
    ap.add_argument("--long", action="store_true",
                    help="%dx the rounds and durations" % LONG_SCALE)
    ap.add_argument("--scale", type=float, default=None,
                    help="multiply rounds and durations by this factor")
    ap.add_argument("--only", action="append", default=[],
                    help="run only scenarios whose name starts with this "
                    "(repeatable)")
    ap.add_argument("--answer-bound", type=float,
                    default=scenarios.ANSWER_BOUND,
                    help="seconds within which every request must be "
                    "answered in stopped-worker (default %(default)s)")
    ap.add_argument("--list", action="store_true", help="list scenarios")
    ap.add_argument("--keep-failed", action="store_true",
                    help="keep the directory of a failed scenario")
    args = ap.parse_args()
    scale = args.scale or (LONG_SCALE if args.long else 1)
    scenarios.ANSWER_BOUND = args.answer_bound

    todo = [s for s in scenarios.SCENARIOS
            if not args.only or any(s[0].startswith(o) for o in args.only)]
    if args.list:
        for name, _fn, budget, what in todo:
            print("%-16s %s (budget %d s x scale)" % (name, what, budget))
        return 0
    if not todo:
        print("no scenario matches %s" % args.only, file=sys.stderr)
        print("0 passed, 1 failed")
        return 1
    payhook = os.path.abspath(args.payhook)
    if not os.access(payhook, os.X_OK):
        print("not ok - setup")
        print("# %s is not an executable; build it first" % payhook)
        print("0 passed, 1 failed")
        return 1
    harness.ensure_test_user()
    payhook, bindir = prepare_binary(payhook)

    sys.stdout.reconfigure(line_buffering=True)
    signal.signal(signal.SIGALRM, on_alarm)
    harness.note("fault suite: %d scenario(s), scale %g, payhook %s"
                 % (len(todo), scale, payhook))
    rows = []
    passed = failed = skipped = 0
    t_all = time.time()
    for name, fn, budget, _what in todo:
        ctx = harness.Ctx(payhook, "f-" + name)
        fig = Figures()
        t0 = time.time()
        outcome, detail = "ok", []
        signal.alarm(int(budget * scale + 90))
        try:
            fn(ctx, fig, scale)
        except harness.Skip as e:
            outcome, detail = "skip", [str(e)]
        except harness.Failure as e:
            outcome, detail = "fail", [str(e)]
        except Exception:
            outcome, detail = "fail", [traceback.format_exc()]
        finally:
            signal.alarm(0)
        signal.alarm(120)
        try:
            if fig.problems and outcome != "skip":
                outcome = "fail"
            detail = fig.problems + detail
            if args.keep_failed and outcome == "fail":
                ctx.keep = True
            problems = ctx.cleanup()
        except Timeout:
            problems = ["cleanup exceeded 120 s"]
        finally:
            signal.alarm(0)
        if problems:
            outcome = "fail"
            detail += problems
        secs = time.time() - t0
        fig["s"] = "%.1f" % secs
        if outcome == "ok":
            passed += 1
            print("ok - %s: %s" % (name, fig.text()))
        elif outcome == "skip":
            skipped += 1
            print("ok - %s # SKIP %s" % (name, detail[0]))
        else:
            failed += 1
            print("not ok - %s: %s" % (name, fig.text()))
            for d in detail:
                harness.note("  " + d)
        rows.append((name, {"ok": "ok", "skip": "skip",
                            "fail": "FAIL"}[outcome], fig))
    print("# figures (scale %g, %.0f s)" % (scale, time.time() - t_all))
    width = max(len(r[0]) for r in rows)
    for name, result, fig in rows:
        print("# %-*s  %-4s  %s" % (width, name, result, fig.text()))
    if bindir:
        shutil.rmtree(bindir, ignore_errors=True)
    summary = "%d passed, %d failed" % (passed, failed)
    if skipped:
        summary += ", %d skipped" % skipped
    print(summary)
    return 1 if failed else 0
