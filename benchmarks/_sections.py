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
    SizeResult,
    Skipped,
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
NO_TOOLS = "skipped: tool venv absent (run prepare.py)"


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


def settled(*paths: Path) -> Callable[[], None]:
    """Remove ``paths``, then let the disk finish: ``sync`` and a short pause. Deleting
    a big tree leaves work (journal commits, discards on a ``discard`` mount) that
    would otherwise run during, and be charged to, the next tool's timed run."""

    def act() -> None:
        clean(*paths)()
        subprocess.run(["sync"], check=False)
        time.sleep(2)

    return act


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


def es_remove(ctx: Ctx, store: Path, env: Path) -> Callable[[], None]:
    return lambda: ctx.es.remove(store, env)


# ---------------------------------------------------------------- create


def sec_create_warm(ctx: Ctx) -> list[Result]:
    """create with a warm store / cache, alternating tools; deleting is untimed
    (the ``build-env`` section times the whole create-use-delete cycle)."""
    out: list[Result] = []
    for wl in ctx.workloads:
        print(f"  {wl.name} ({len(wl.order)} dists)", flush=True)
        d = ctx.scratch / f"create-warm-{wl.name}"
        store, cache, env = ctx.store(d), ctx.cache(d), d / "env"
        pairs = [
            (
                "envstore",
                Trial(
                    es_create(ctx, store, env, wl),
                    setup=clean(env),
                    teardown=es_remove(ctx, store, env),
                ),
            )
        ]
        for kind in (PIP, UV, UV_COPY):
            pairs.append(
                (
                    kind,
                    Trial(
                        tool_create(ctx, kind, wl, env, cache),
                        setup=clean(env),
                        teardown=clean(env),
                    ),
                )
            )
        # the untimed warmup round fills the envstore store and the uv cache
        samples = alternate(pairs, ctx.reps, warmup=ctx.warmup)
        out += timing_results("create-warm", wl.name, samples, "create")
        rmtree(d)
    return out


def sec_create_cold(ctx: Ctx) -> list[Result]:
    """Empty store / cache; and create + first import (cold and warm)."""
    out: list[Result] = []
    for wl in ctx.workloads:
        print(f"  {wl.name}", flush=True)
        d = ctx.scratch / f"create-cold-{wl.name}"
        store, cache, env = d / "store", d / "uv-cache", d / "env"
        first = use(env, wl.import_stmt, d)
        es_cold = settled(env, store)
        uv_cold = settled(env, cache)
        # 1. empty store / cache; everyone compiles bytecode (pip does by default)
        pairs = [
            ("envstore", Trial(es_create(ctx, store, env, wl), es_cold, es_cold)),
            (UV_COMPILE, Trial(tool_create(ctx, UV_COMPILE, wl, env, cache), uv_cold, uv_cold)),
            (PIP, Trial(tool_create(ctx, PIP, wl, env, cache), settled(env), settled(env))),
        ]
        if ctx.smoke:  # venv+pip is exercised in create-warm already
            pairs.pop()
        samples = alternate(pairs, ctx.reps)
        out += timing_results("create-cold", wl.name, samples, "create, empty store/cache")
        # 2. create + first import: uv does not precompile, so the import compiles
        stmt = f"create + first `{wl.import_stmt}`"
        pairs = [
            ("envstore", Trial(chain(es_create(ctx, store, env, wl), first), es_cold, es_cold)),
            (UV, Trial(chain(tool_create(ctx, UV, wl, env, cache), first), uv_cold, uv_cold)),
        ]
        if not ctx.smoke:  # the smoke run exercises these code paths in 1. and 3.
            samples = alternate(pairs, ctx.reps)
            out += timing_results("create-cold", wl.name, samples, f"{stmt}, empty store/cache")
        # 3. the same with a warm store / cache (warmed by the untimed first round)
        store, cache = ctx.store(d / "warm"), ctx.cache(d / "warm")
        es_act = chain(es_create(ctx, store, env, wl), first)
        uv_act = chain(tool_create(ctx, UV, wl, env, cache), first)
        pairs = [
            ("envstore", Trial(es_act, clean(env), es_remove(ctx, store, env))),
            (UV, Trial(uv_act, clean(env), clean(env))),
        ]
        samples = alternate(pairs, ctx.reps, warmup=ctx.warmup)
        out += timing_results("create-cold", wl.name, samples, f"{stmt}, warm store/cache")
        rmtree(d)
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
    for n in sorted({min(n, total) for n in ctx.scaling_sizes} | {total}):
        req = wl.subset_file(n, d / "reqs")
        pairs = [
            (
                "envstore",
                Trial(es_create(ctx, store, env, wl, req), clean(env), es_remove(ctx, store, env)),
            ),
            (UV, Trial(tool_create(ctx, UV, wl, env, cache, req), clean(env), clean(env))),
        ]
        samples = alternate(pairs, ctx.reps, warmup=ctx.warmup)
        out += timing_results("scaling", wl.name, samples, f"warm create, {n:3d} of {total} dists")
    rmtree(d)
    return out
