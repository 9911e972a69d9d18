"""Two library syncs paired in one run, each after a run of uv's CLI sync (#21).

    python benchmarks/project_sync_pair.py OLD_SRC NEW_SRC [--reps 20] [--no-uv] [--no-settle]
    python benchmarks/project_sync_pair.py floor NEW_SRC   # the floor against the library

OLD_SRC and NEW_SRC are envstore ``src/`` directories (``git archive`` snapshots); each
gets a warm worker (the project-sync section's, ``_sections_project._LIBRARY``) with its
own store and project, and the order within a round alternates. ``floor`` is a worker
that makes the same ``.venv`` tree (copied from the first sync's) with bare ``os`` calls
from bytes in memory, one SQLite transaction like the registration, and the rename into
place: what no implementation of this env layout can go below. It prints the median
times, uv's time over each library sync (the issue's ratio, target >= 10) and new/old
pair by pair. Offline: it needs benchmarks/prepare.py's ``web`` wheelhouse and tools.

The disk is settled before each timed command, on every side alike: os.sync() runs,
untimed, after the ``.venv`` is removed and before the sync (uv's, the library's, the
floor's). Unsettled, the kernel writes back one command's work during the next one,
which is billed for it: uv's sync hard-links and then deletes ~1,200 inodes, and the
floor measured 20 ms after it against 1.1 ms settled (uv itself 110-135 ms against 40
ms). ``--no-settle`` measures without it (what a user who runs one command after
another sees, noise included).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

from _harness import PY311, data_dir, hermetic_env
from _project import make_project
from _sections_project import _LIBRARY

_FLOOR = """\
import json, os, shutil, sqlite3, sys, time
a = json.loads(sys.argv[1])
items = []
for root, dirs, files in os.walk(a["template"]):
    rel = os.path.relpath(root, a["template"])
    for n in sorted(dirs + files):
        p, r = os.path.join(root, n), os.path.normpath(os.path.join(rel, n))
        if os.path.islink(p):
            items.append(("l", r, os.readlink(p), 0))
        elif os.path.isdir(p):
            items.append(("d", r, b"", 0))
        else:
            items.append(("f", r, open(p, "rb").read(), os.stat(p).st_mode & 0o777))
items.sort(key=lambda it: it[1].count("/"))
db = sqlite3.connect(a["db"], isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=NORMAL")
db.execute("CREATE TABLE IF NOT EXISTS envs (path TEXT PRIMARY KEY, created REAL)")
db.execute("CREATE TABLE IF NOT EXISTS refs (env TEXT, object TEXT, PRIMARY KEY (env, object))")
venv = a["venv"]
tmp = os.path.join(os.path.dirname(venv), ".floor-tmp")
def make():
    os.mkdir(tmp)
    for kind, rel, data, mode in items:
        p = os.path.join(tmp, rel)
        if kind == "d":
            os.mkdir(p)
        elif kind == "l":
            os.symlink(data, p)
        else:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
            os.write(fd, data)
            os.close(fd)
    now = time.time()
    db.execute("BEGIN IMMEDIATE")
    db.execute("UPDATE OR REPLACE refs SET env = ? WHERE env = ?", (f"{venv} {now}", venv))
    db.execute("INSERT OR REPLACE INTO envs VALUES (?, ?)", (venv, now))
    db.executemany("INSERT INTO refs VALUES (?, ?)", [(venv, f"o{i}") for i in range(23)])
    db.execute("COMMIT")
    os.rename(tmp, venv)
shutil.rmtree(venv, ignore_errors=True)
make()
print("ready", flush=True)
for line in sys.stdin:
    shutil.rmtree(venv, ignore_errors=True)
    if a.get("settle"):
        os.sync()
    t0 = time.perf_counter()
    make()
    print(json.dumps([time.perf_counter() - t0, 0.0]), flush=True)
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("old", help="envstore src/ directory, or 'floor'")
    p.add_argument("new", help="envstore src/ directory")
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--no-uv", action="store_true", help="no uv sync between the library's")
    p.add_argument(
        "--no-settle", action="store_true", help="no os.sync() before each timed command"
    )
    p.add_argument("--data", help="the benchmark data directory (as run.py)")
    args = p.parse_args()
    data = data_dir(args.data)
    wh, uv = data / "wheelhouses" / "web", data / "tools" / "bin" / "uv"
    top = [ln.strip() for ln in (wh / "top.txt").read_text().splitlines() if ln.strip()][:10]
    d = data / "scratch" / f"pair-{os.getpid()}"
    d.mkdir(parents=True)
    procs: dict[str, subprocess.Popen[str]] = {}
    try:
        uv_project = make_project(d / "uv" / "benchproj", "benchproj", top)
        uv_env = hermetic_env({"UV_CACHE_DIR": str(d / "uv-cache")})

        def uv_sync() -> float:
            if args.no_uv:
                return 0.0
            shutil.rmtree(uv_project / ".venv", ignore_errors=True)
            if not args.no_settle:
                os.sync()
            t0 = time.perf_counter()
            argv = [uv, "sync", "-q", "-p", PY311, "--offline", "--no-index", "--find-links", wh]
            subprocess.run(argv, env=uv_env, cwd=uv_project, check=True)
            return time.perf_counter() - t0

        if not args.no_uv:
            uv_sync()  # its cache warm: the lock and the editable build
        sides = {"old": args.old, "new": args.new}
        for side in ("new", "old"):  # new first: the floor copies its env
            src = sides[side]
            project = make_project(d / side / "benchproj", "benchproj", top)
            a = {"store": str(d / side / "store"), "wh": str(wh), "pip": False}
            a["settle"] = not args.no_settle
            a.update(py=str(PY311), project=str(project), venv=str(project / ".venv"))
            env = hermetic_env({"PYTHONPATH": os.path.abspath(src)})
            if src == "floor":
                template = d / "template"
                shutil.copytree(d / "new" / "benchproj" / ".venv", template, symlinks=True)
                a.update(template=str(template), db=str(d / side / "floor.db"))
                argv = [sys.executable, "-c", _FLOOR, json.dumps(a)]
            else:
                argv = [sys.executable, "-c", _LIBRARY, json.dumps(a)]
            procs[side] = subprocess.Popen(
                argv, env=env, cwd=project, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            assert procs[side].stdout is not None
            if procs[side].stdout.readline().strip() != "ready":
                raise SystemExit(f"the {side} worker stopped")

        def library(side: str) -> float:
            proc = procs[side]
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
            return float(json.loads(proc.stdout.readline())[0])

        times: dict[str, list[float]] = {"old": [], "new": []}
        uv_times: dict[str, list[float]] = {"old": [], "new": []}
        for i in range(args.reps + 2):  # two rounds of warm-up
            for side in ("old", "new") if i % 2 == 0 else ("new", "old"):
                u = uv_sync()
                t = library(side)
                if i >= 2:
                    times[side].append(t)
                    uv_times[side].append(u)
    finally:
        for proc in procs.values():
            if proc.stdin is not None:
                proc.stdin.close()
            proc.wait()
        shutil.rmtree(d, ignore_errors=True)
    med = statistics.median
    print("disk " + ("not settled" if args.no_settle else "settled (os.sync) before each command"))
    if not args.no_uv:
        print(f"uv sync (CLI): {med(uv_times['old'] + uv_times['new']) * 1000:.1f} ms")
    for side in ("old", "new"):
        ratio = [u / t for u, t in zip(uv_times[side], times[side], strict=True)]
        line = f"{side} ({sides[side]}): {med(times[side]) * 1000:.2f} ms"
        line += f" (min {min(times[side]) * 1000:.2f})"
        print(line + (f", uv/library per pair {med(ratio):.1f}" if not args.no_uv else ""))
    pairs = [n / o for n, o in zip(times["new"], times["old"], strict=True)]
    print(f"new/old per pair: {med(pairs):.3f} ({args.reps} pairs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
