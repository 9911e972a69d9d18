"""The project-sync section (#21): a project with ~20 dependencies installed editable,
``envstore sync`` against ``uv sync``, warm store and warm uv cache (with its lock and
a cached editable build), paired in one run; the same sync through the library in a
warm process, interleaved with uv's; the env's inodes; a sync with nothing changed."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from _harness import (
    PY311,
    Result,
    Samples,
    Skipped,
    TimingResult,
    Trial,
    alternate,
    disk_usage,
    rmtree,
    run,
    timing_results,
)
from _project import make_project
from _sections import AGE_S, NO_TOOLS, UV, Ctx, chain, clean
from _workloads import Workload

NAME = "benchproj"

# A worker holding one Store (its database open) for the process, as tox or an IDE
# would: after one untimed sync (imports, opening the store) it answers each line on
# stdin with one sync into a removed .venv and one with nothing changed, timed in
# the process, so the harness can pair each with a run of uv's CLI. With "settle",
# os.sync() runs (untimed) after the rm and before each timed sync, as the harness
# does before each of uv's (``_settled``).
_LIBRARY = """\
import json, os, shutil, sys, time
import envstore
from envstore.env.project import sync_project
a = json.loads(sys.argv[1])
st = envstore.Store(a["store"])
kw = dict(store=st, sources=envstore.PackageSources(find_links=[a["wh"]], no_index=True),
          with_pip=a["pip"], python=a["py"])
settle = os.sync if a.get("settle") else (lambda: None)
shutil.rmtree(a["venv"], ignore_errors=True)
sync_project(a["project"], **kw)
print("ready", flush=True)
for line in sys.stdin:
    shutil.rmtree(a["venv"], ignore_errors=True)
    settle()
    t0 = time.perf_counter()
    sync_project(a["project"], **kw)
    t1 = time.perf_counter()
    settle()
    t2 = time.perf_counter()
    sync_project(a["project"], **kw)
    t3 = time.perf_counter()
    print(json.dumps([t1 - t0, t3 - t2]), flush=True)
"""


def _settled(action: Callable[[], None], settle: bool) -> Callable[[], None]:
    """``action``, then (with ``settle``) os.sync(): the untimed setup of a timed run.
    Each sync into a removed .venv leaves writeback behind (uv's: ~1,200 hard links
    made and as many deleted by the next rm); unsettled, the kernel flushes it during
    whichever command runs next, so one tool's writes are billed to the other's time
    (uv's sync measured 110-135 ms unsettled, 40 ms settled; the floor, 20 ms against
    1.1 ms). Both sides settle, so neither pays for the other."""
    if not settle:
        return action

    def act() -> None:
        action()
        os.sync()

    return act


class _Worker:
    """The library worker (``_LIBRARY``), asked one sync at a time."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.noop: list[float] = []
        self._answer("ready")

    def _answer(self, expected: str | None = None) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line or (expected is not None and line.strip() != expected):
            self.proc.kill()
            raise RuntimeError(f"the library worker stopped (exit {self.proc.wait()})")
        return line

    def sync(self) -> float:
        """One sync into a removed .venv (its in-process time: ``timeit`` takes it)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        fresh, noop = json.loads(self._answer())
        self.noop.append(noop)
        return float(fresh)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _workload(ctx: Ctx) -> Workload:
    return next((w for w in ctx.workloads if w.name == "web"), ctx.workloads[0])


def _editable_inodes(venv: Path) -> int:
    """What the project's editable install put into the env: its dist-info (directory
    and files), its .pth and its console script."""
    site = next(venv.glob("lib/python3*/site-packages"))
    info = next(site.glob(f"{NAME}-*.dist-info"))
    return 1 + len(os.listdir(info)) + len(list(site.glob(f"_{NAME}*.pth"))) + 1


def sec_project_sync(ctx: Ctx) -> list[Result]:
    """rm -rf .venv && envstore sync vs rm -rf .venv && uv sync; library; inodes; no-op."""
    wl = _workload(ctx)
    d = ctx.scratch / "project-sync"
    store, cache = ctx.store(d), ctx.cache(d)
    deps = wl.top if len(wl.top) < 10 else wl.top[:10]
    projects = {t: make_project(d / t / NAME, NAME, deps) for t in ("envstore", UV, "library")}
    venvs = {t: p / ".venv" for t, p in projects.items()}
    pip = [] if ctx.es.with_pip else ["--without-pip"]
    es_argv = ctx.es.cmd(store, "-q", "sync", "--no-index", "--find-links", wl.wheelhouse, *pip)
    # os.path.exists, not Path.exists: as a user who cannot enter /root (the
    # unprivileged CI pass) the latter raises PermissionError on 3.11.
    es_argv += ["-p", str(PY311)] if os.path.exists(PY311) else []  # as uv's -p

    def es_sync() -> None:
        run(es_argv, env=ctx.es.env(), cwd=projects["envstore"])

    def uv_sync() -> None:
        if not ctx.tc.available:
            raise Skipped(NO_TOOLS)
        argv: list[str | os.PathLike[str]] = [ctx.tc.uv, "sync", "-q", "-p", PY311, "--offline"]
        argv += ["--no-index", "--find-links", wl.wheelhouse]
        run(argv, env=ctx.tc.uv_env(cache), cwd=projects[UV])

    label = f"{NAME} ({wl.name}: {len(deps)} top-level) editable"
    out: list[Result] = []
    # The pairing: the rm is part of what is timed (envstore deletes ~30
    # inodes, uv its hard-linked tree); then the sync alone, the rm untimed.
    pairs = [
        ("envstore", Trial(chain(clean(venvs["envstore"]), es_sync))),
        (UV, Trial(chain(clean(venvs[UV]), uv_sync))),
    ]
    samples = alternate(pairs, ctx.reps, warmup=ctx.warmup)
    out += timing_results("project-sync", label, samples, "rm -rf .venv && sync (CLI)")
    out += _per_pair(label, "rm -rf .venv && sync (CLI)", samples["envstore"], samples[UV])
    pairs = [
        ("envstore", Trial(es_sync, setup=clean(venvs["envstore"]))),
        (UV, Trial(uv_sync, setup=clean(venvs[UV]))),
    ]
    alone = alternate(pairs, ctx.reps)
    out += timing_results("project-sync", label, alone, "sync into a removed .venv, rm untimed")
    out += _per_pair(label, "sync into a removed .venv", alone["envstore"], alone[UV])
    pairs = [("envstore", Trial(es_sync)), (UV, Trial(uv_sync))]
    noop = alternate(pairs, ctx.reps, warmup=1)
    out += timing_results("project-sync", label, noop, "sync with nothing changed (CLI)")
    if ctx.settle and not ctx.smoke:
        # The rows above deleted ~70,000 inodes (uv's envs) in a minute: ext4 makes
        # files several times slower until it reuses them (its recently_deleted()
        # skips inodes freed less than 60 s ago), which would bill the library rows
        # (34 inodes a sync) for the CLI rows' deletions. Age them first, as the
        # harness does between sections.
        subprocess.run(["sync"], check=False)
        time.sleep(AGE_S)
    out += _library(
        ctx, wl, store, projects["library"], venvs["library"], uv_sync, venvs[UV], label
    )
    out += _inodes(ctx, venvs, label)
    rmtree(d)
    return out


def _library(
    ctx: Ctx,
    wl: Workload,
    store: Path,
    project: Path,
    venv: Path,
    uv_sync: Callable[[], None],
    uv_venv: Path,
    label: str,
) -> list[Result]:
    """sync_project in one warm process holding a Store, as tox or an IDE calls it,
    interleaved with uv's CLI sync (each into a removed .venv) pair by pair: both rows
    see the same drift of the machine, and the speed-up is taken per pair. The disk is
    settled before each timed sync on both sides (``_settled``; off with run.py's
    ``--no-settle``, and when smoke testing)."""
    arg = {
        "store": str(store),
        "wh": str(wl.wheelhouse),
        "pip": ctx.es.with_pip,
        "py": str(PY311) if os.path.exists(PY311) else None,
        "project": str(project),
        "venv": str(venv),
        "settle": ctx.settle and not ctx.smoke,
    }
    tool = "envstore (library, warm process)"
    try:
        worker = _Worker([ctx.es.python, "-c", _LIBRARY, json.dumps(arg)], ctx.es.env(), project)
    except Exception as exc:  # a failing tool never aborts the run
        return [TimingResult("project-sync", label, tool, [], error=f"failed: {exc}")]
    try:
        reps = max(ctx.reps, 10) if not ctx.smoke else 1
        uv_setup = _settled(clean(uv_venv), bool(arg["settle"]))
        pairs = [(UV, Trial(uv_sync, setup=uv_setup)), (tool, Trial(worker.sync))]
        samples = alternate(pairs, reps, warmup=ctx.warmup)
    finally:
        worker.close()
    lib, uv = samples[tool], samples[UV]
    group = "sync into a removed .venv: library vs uv's CLI, interleaved"
    out = [
        TimingResult(
            "project-sync", label, tool, [t * 1000 for t in lib.times], group=group,
            error=lib.error, unit="ms",
        ),
        TimingResult(
            "project-sync", label, UV, [t * 1000 for t in uv.times], group=group,
            error=uv.error, unit="ms",
        ),
        TimingResult(
            "project-sync", label, tool, [t * 1000 for t in worker.noop[ctx.warmup :]],
            group="sync with nothing changed, library (ms)", unit="ms",
        ),
    ]  # fmt: skip
    return out + _per_pair(label, "library vs uv's CLI", lib, uv, library=True)


def _per_pair(
    label: str, what: str, envstore: Samples, uv: Samples, library: bool = False
) -> list[Result]:
    """The ratio of two interleaved rows taken pair by pair (the harness's alternate()
    runs them in turn): drift of a busy machine between pairs cancels out, unlike in a
    ratio of the two medians. CLI: envstore's time / uv's (the target: <= 1.5); the
    library: uv's / envstore's (the target: >= 10)."""
    if envstore.error is not None or uv.error is not None or not envstore.times:
        return []
    if library:
        tool, ratios = (
            "per pair: uv's time / the library's",
            zip(uv.times, envstore.times, strict=True),
        )
    else:
        tool, ratios = (
            "per pair: envstore's time / uv's",
            zip(envstore.times, uv.times, strict=True),
        )
    group = f"{what}: per pair"
    return [
        TimingResult("project-sync", label, tool, [a / b for a, b in ratios], group=group, unit="x")
    ]


def _inodes(ctx: Ctx, venvs: dict[str, Path], label: str) -> list[Result]:
    """The env's inodes (and how many of them the project's editable install put there)."""
    out: list[Result] = []
    for tool in ("envstore", UV):
        venv = venvs[tool]
        if not venv.is_dir():
            continue
        total = float(disk_usage([venv]).inodes)
        mine = float(_editable_inodes(venv))
        for who, n in ((tool, total), (f"{tool}: the project's editable install", mine)):
            out.append(
                TimingResult("project-sync", label, who, [n], group="env inodes", unit="inodes")
            )
    return out
