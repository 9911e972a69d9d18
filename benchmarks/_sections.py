"""Shared section plumbing (Ctx, actions) and the create, footprint and scaling sections.

Each section takes a Ctx and returns a list of results."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _harness import (
    CommandFailed,
    Result,
    Samples,
    SizeResult,
    Skipped,
    TimingResult,
    Trial,
    alternate,
    disk_usage,
    rmtree,
    run,
    tail,
    timing_results,
)
from _tools import Envstore, Toolchain
from _workloads import Workload

UV, UV_COPY, UV_COMPILE, PIP = "uv", "uv --link-mode=copy", "uv --compile-bytecode", "venv+pip"
CLI_FLOOR = "python -c 'import json, sqlite3' (CLI floor)"
NO_TOOLS = "skipped: tool venv absent (run prepare.py)"
AGE_S = 61  # ext4's recently_deleted() skips inodes freed less than 60 s ago


@dataclass
class Ctx:
    """Everything a section needs."""

    scratch: Path
    reps: int
    living_reps: int
    es: Envstore
    tc: Toolchain
    workloads: list[Workload]
    build_env_wl: Workload | None
    build_projects: list[tuple[str, Path, Path]]  # (label, project, wheelhouse)
    scaling_sizes: list[int]
    gc_envs: int
    gc_wheels: int
    warmup: int = 1  # untimed rounds before the measured ones
    shared: Path | None = None  # smoke: one store/cache for all sections (cold ones excepted)
    smoke: bool = False  # skip measurements that only repeat code paths already exercised
    settle: bool = True  # os.sync() before timed runs that leave writeback behind

    @property
    def pause(self) -> float:
        """Seconds to let the disk settle before each timed run (none when smoke testing)."""
        return 0 if self.smoke else 2

    def store(self, d: Path) -> Path:
        """The (warm) envstore store for a section working in ``d``."""
        return self.shared / "store" if self.shared else d / "store"

    def cache(self, d: Path) -> Path:
        """The (warm) uv cache for a section working in ``d``."""
        return self.shared / "uv-cache" if self.shared else d / "uv-cache"


def clean(*paths: Path) -> Callable[[], None]:
    """An action removing ``paths``."""

    def act() -> None:
        for p in paths:
            rmtree(p)

    return act


class Fresh:
    """A new directory for each trial (cold, warm, scaling), all deleted at the end of the
    section (``delete_and_age``).

    Deleting a big tree right before another tool's timed run makes that run pay for
    it: ext4 skips inodes freed in the last minute when it allocates new ones, in
    ``recently_deleted()``. Measured here: envstore's cold ``big`` create took 9-11 s
    after its own tree was deleted, 17 s after uv's and 24 s after pip's (system time
    3 s -> 22 s), and uv's took 22 s after pip's. Nothing is deleted between timed
    runs, so no run follows a mass deletion.
    """

    def __init__(self, base: Path, pause: float) -> None:
        self.base = base
        self.pause = pause
        self.n = 0

    def __call__(self, name: str) -> Path:
        return self.base / f"trial-{self.n}" / name

    def next(self) -> None:
        """Setup of a trial: new paths, and the previous trial's writes on disk (so
        their writeback is not charged to this one)."""
        self.n += 1
        if self.pause:
            subprocess.run(["sync"], check=False)
            time.sleep(self.pause)


def delete_and_age(ctx: Ctx, *paths: Path) -> None:
    """Delete a section's trees, then wait until ext4 reuses their inodes (see Fresh),
    so the next section's first run does not pay for this deletion (not when smoke
    testing the harness)."""
    for p in paths:
        rmtree(p)
    if not ctx.smoke:
        subprocess.run(["sync"], check=False)
        time.sleep(AGE_S)


def es_in(
    ctx: Ctx, wl: Workload, f: Fresh, store: Path | None = None, req: Path | None = None
) -> Callable[[], None]:
    """envstore create of ``wl`` into the trial's env (and store, unless ``store``)."""
    return lambda: ctx.es.create(store or f("store"), f("env"), wl, req)


def tool_in(
    ctx: Ctx,
    kind: str,
    wl: Workload,
    f: Fresh,
    cache: Path | None = None,
    req: Path | None = None,
) -> Callable[[], None]:
    """``kind`` (venv+pip, uv...) creating the trial's env (and cache, unless ``cache``)."""
    return lambda: tool_create(ctx, kind, wl, f("env"), cache or f("cache"), req)()


def first_in(wl: Workload, f: Fresh, cwd: Path) -> Callable[[], None]:
    """The first import of ``wl``'s packages in the trial's env."""
    return lambda: use(f("env"), wl.import_stmt, cwd)()


def chain(*actions: Callable[[], object] | None) -> Callable[[], None]:
    """One action doing ``actions`` in order (None entries are skipped)."""

    def act() -> None:
        for a in actions:
            if a is not None:
                a()

    return act


def failing(exc: BaseException) -> Trial:
    def act() -> None:
        raise exc

    return Trial(act)


def use(env: Path, stmt: str, cwd: Path) -> Callable[[], None]:
    """An action running ``stmt`` in a fresh interpreter of ``env``."""

    def act() -> None:
        run([env / "bin" / "python", "-c", stmt], cwd=cwd)

    return act


def tool_create(
    ctx: Ctx, kind: str, wl: Workload, env: Path, cache: Path, reqfile: Path | None = None
) -> Callable[[], None]:
    """An action creating ``env`` with venv+pip or uv (``kind``); raises Skipped without tools."""
    req = reqfile or wl.requirements

    def act() -> None:
        if not ctx.tc.available:
            raise Skipped(NO_TOOLS)
        if kind == PIP:
            ctx.tc.venv_pip(env, wl.wheelhouse, req)
        else:
            link = "copy" if kind == UV_COPY else None
            ctx.tc.uv_venv(env, wl.wheelhouse, req, cache, link, kind == UV_COMPILE)

    return act


def es_create(
    ctx: Ctx, store: Path, env: Path, wl: Workload, req: Path | None = None
) -> Callable[[], None]:
    return lambda: ctx.es.create(store, env, wl, req)


def cli_floor(ctx: Ctx) -> Callable[[], None]:
    """Start envstore's Python, as envstore's CLI is started, and import json and sqlite3."""
    return lambda: run([ctx.es.python, "-c", "import json, sqlite3"], env=ctx.es.env())


def es_remove(ctx: Ctx, store: Path, env: Path) -> Callable[[], None]:
    return lambda: ctx.es.remove(store, env)


def api_loop_results(
    ctx: Ctx, section: str, wl: Workload, store: Path, loop: Path, where: str = ""
) -> list[Result]:
    """create_env / remove_env in one warm process (``Envstore.api_loop``), with the
    file-system floor for the same tree, as ms rows: what a frontend holding one Store
    pays per env."""
    (loop / "envs").mkdir(parents=True, exist_ok=True)
    try:
        create, remove, floor = ctx.es.api_loop(
            store, loop / "envs", wl.top, wl.wheelhouse, ctx.living_reps
        )
    except Exception as exc:  # a failing tool never aborts the run
        return [TimingResult(section, wl.name, "envstore", [], error=f"failed: {exc}")]
    return [
        TimingResult(
            section,
            wl.name,
            tool,
            [t * 1000 for t in times],
            group=f"{what} in a warm process{where} (ms)",
            unit="ms",
        )
        for what, tool, times in (
            ("create_env", "envstore (API, in-process)", create),
            ("create_env", "file-system floor (same tree, bare os calls)", floor),
            ("remove_env", "envstore (API, in-process)", remove),
        )
    ]


# ---------------------------------------------------------------- create


def sec_create_warm(ctx: Ctx) -> list[Result]:
    """create with a warm store / cache, alternating tools, each run into a new env;
    then each env deleted, timed, one tool after the other once all are created (see
    Fresh): envstore with ``envstore remove``, the others with ``rm -rf``. "create +
    delete" pairs each run's two times, the measure of the issue's orientation figures.
    """
    out: list[Result] = []
    done: list[Path] = []
    for wl in ctx.workloads:
        print(f"  {wl.name} ({len(wl.order)} dists)", flush=True)
        d = ctx.scratch / f"create-warm-{wl.name}"
        store, cache = ctx.store(d), ctx.cache(d)
        kinds = ["envstore", PIP, UV, UV_COPY]
        fresh = {k: Fresh(d / "envs" / k.replace(" ", "_"), ctx.pause) for k in kinds}
        es = fresh["envstore"]
        pairs = [("envstore", Trial(es_in(ctx, wl, es, store), es.next))]
        for k in kinds[1:]:
            pairs.append((k, Trial(tool_in(ctx, k, wl, fresh[k], cache), fresh[k].next)))
        # What any Python CLI writing a JSON manifest and a SQLite row pays before it
        # does anything: the least envstore's CLI create can take on this machine.
        pairs.append((CLI_FLOOR, Trial(cli_floor(ctx))))
        # the untimed warmup round fills the envstore store and the uv cache
        samples = alternate(pairs, ctx.reps, warmup=ctx.warmup)
        # The same creates through the library, as a frontend holding a Store makes
        # them; before the deletions (see Fresh).
        api = api_loop_results(ctx, "create-warm", wl, store, d / "api-loop")
        deletes = {k: _delete_each(ctx, k, fresh[k], store, samples[k]) for k in kinds}
        both = {
            k: Samples([c + r for c, r in zip(s.times, deletes[k].times, strict=False)], s.error)
            for k, s in samples.items()
            if k in deletes
        }
        out += timing_results("create-warm", wl.name, samples, "create")
        out += timing_results("create-warm", wl.name, deletes, "delete, after all creates")
        out += timing_results("create-warm", wl.name, both, "create + delete")
        out += api
        done.append(d)
    delete_and_age(ctx, *done)
    return out


def _delete_each(ctx: Ctx, kind: str, f: Fresh, store: Path, made: Samples) -> Samples:
    """Delete every env ``f`` made, timing those of measured runs (not after a failure)."""
    out = Samples(error=made.error)
    for n in range(1, f.n + 1):
        env = f.base / f"trial-{n}" / "env"
        start = time.perf_counter()
        try:
            if kind == "envstore" and made.error is None:
                ctx.es.remove(store, env)
            else:
                rmtree(env)
        except CommandFailed as exc:
            out.error = f"failed: {tail(exc.stderr) or exc}"
        if n > ctx.warmup and out.error is None:
            out.times.append(time.perf_counter() - start)
    return out


def sec_create_cold(ctx: Ctx) -> list[Result]:
    """Empty store / cache; and create + first import (cold and warm)."""
    out: list[Result] = []
    done: list[Path] = []
    for wl in ctx.workloads:
        print(f"  {wl.name}", flush=True)
        d = ctx.scratch / f"create-cold-{wl.name}"
        fresh = Fresh(d / "cold", ctx.pause)
        es, first = es_in(ctx, wl, fresh), first_in(wl, fresh, d)
        # 1. empty store / cache; everyone compiles bytecode (pip does by default)
        pairs = [
            ("envstore", Trial(es, fresh.next)),
            (UV_COMPILE, Trial(tool_in(ctx, UV_COMPILE, wl, fresh), fresh.next)),
            (PIP, Trial(tool_in(ctx, PIP, wl, fresh), fresh.next)),
        ]
        if ctx.smoke:  # venv+pip is exercised in create-warm already
            pairs.pop()
        samples = alternate(pairs, ctx.reps)
        out += timing_results("create-cold", wl.name, samples, "create, empty store/cache")
        # 2. create + first import: uv does not precompile, so the import compiles
        stmt = f"create + first `{wl.import_stmt}`"
        pairs = [
            ("envstore", Trial(chain(es, first), fresh.next)),
            (UV, Trial(chain(tool_in(ctx, UV, wl, fresh), first), fresh.next)),
        ]
        if not ctx.smoke:  # the smoke run exercises these code paths in 1. and 3.
            samples = alternate(pairs, ctx.reps)
            out += timing_results("create-cold", wl.name, samples, f"{stmt}, empty store/cache")
        # 3. the same with a warm store / cache (warmed by the untimed first round)
        store, cache = ctx.store(d / "warm"), ctx.cache(d / "warm")
        fresh = Fresh(d / "envs", ctx.pause)
        first = first_in(wl, fresh, d)
        pairs = [
            ("envstore", Trial(chain(es_in(ctx, wl, fresh, store), first), fresh.next)),
            (UV, Trial(chain(tool_in(ctx, UV, wl, fresh, cache), first), fresh.next)),
        ]
        samples = alternate(pairs, ctx.reps, warmup=ctx.warmup)
        out += timing_results("create-cold", wl.name, samples, f"{stmt}, warm store/cache")
        done.append(d)
    delete_and_age(ctx, *done)
    return out


# ---------------------------------------------------------------- footprint


def _footprint(
    wl: Workload, tool: str, create: Callable[[Path], object], d: Path, store: Path | None
) -> SizeResult:
    """Create env1 (warms store/cache), then measure what env2 adds."""
    env1, env2 = d / "env1", d / "env2"
    stores = [store] if store else []
    try:
        create(env1)
        before = disk_usage(stores)
        create(env2)
        env_u = disk_usage([env2])
        growth = disk_usage(stores) - before
        added = disk_usage([env2, *stores]) - before
        return SizeResult("footprint", wl.name, tool, env_u, growth, added)
    except Skipped as exc:
        return SizeResult("footprint", wl.name, tool, error=str(exc))
    except CommandFailed as exc:
        return SizeResult("footprint", wl.name, tool, error=f"failed: {tail(exc.stderr)}")
    finally:
        rmtree(d)


def sec_footprint(ctx: Ctx) -> list[Result]:
    """Bytes and inodes that one more env costs (env dir + store/cache growth)."""
    out: list[Result] = []
    for wl in ctx.workloads:
        print(f"  {wl.name}", flush=True)
        base = ctx.scratch / f"footprint-{wl.name}"
        d = base / "envstore"
        store = ctx.store(d)

        def es_make(e: Path, s: Path = store, w: Workload = wl) -> None:
            ctx.es.create(s, e, w)

        out.append(_footprint(wl, "envstore", es_make, d, store))
        for kind in (UV, UV_COPY) if ctx.smoke else (PIP, UV, UV_COPY):
            d = base / kind.replace(" ", "_")
            cache = d / "cache"

            def create(e: Path, k: str = kind, c: Path = cache, w: Workload = wl) -> None:
                tool_create(ctx, k, w, e, c)()

            out.append(_footprint(wl, kind, create, d, None if kind == PIP else cache))
    return out


# ---------------------------------------------------------------- scaling


def sec_scaling(ctx: Ctx) -> list[Result]:
    """Warm create time for dependency-closed prefixes of the largest workload."""
    if not ctx.workloads:
        return []
    wl = max(ctx.workloads, key=lambda w: len(w.order))
    d = ctx.scratch / "scaling"
    store, cache, env = ctx.store(d), ctx.cache(d), d / "env"
    print(f"  {wl.name}: warming store and cache with all {len(wl.order)} dists", flush=True)
    try:
        ctx.es.create(store, env, wl)
        ctx.es.remove(store, env)
    except CommandFailed:
        pass  # the trials below fail the same way and record it
    rmtree(env)
    if ctx.tc.available:
        tool_create(ctx, UV, wl, env, cache)()
        rmtree(env)
    out: list[Result] = []
    total = len(wl.order)
    fresh = Fresh(d / "envs", ctx.pause)
    for n in sorted({min(n, total) for n in ctx.scaling_sizes} | {total}):
        req = wl.subset_file(n, d / "reqs")
        pairs = [
            ("envstore", Trial(es_in(ctx, wl, fresh, store, req), fresh.next)),
            (UV, Trial(tool_in(ctx, UV, wl, fresh, cache, req), fresh.next)),
        ]
        samples = alternate(pairs, ctx.reps, warmup=ctx.warmup)
        out += timing_results("scaling", wl.name, samples, f"warm create, {n:3d} of {total} dists")
    delete_and_age(ctx, d)
    return out
