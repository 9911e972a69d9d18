"""Sections that run inside or around environments: living, gc, build-env, build."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from _harness import (
    CommandFailed,
    Result,
    Skipped,
    TimingResult,
    Trial,
    alternate,
    disk_usage,
    hermetic_env,
    rmtree,
    run,
    tail,
    timeit,
    timing_results,
)
from _sections import (
    NO_TOOLS,
    PIP,
    UV,
    Ctx,
    api_loop_results,
    chain,
    clean,
    es_create,
    es_remove,
    failing,
    tool_create,
    use,
)
from _workloads import Workload, gc_env_specs, make_gc_wheelhouse

# ---------------------------------------------------------------- living

_IMPORTTIME = re.compile(r"^import time:\s+\d+\s*\|\s*(\d+)\s*\|( +)(\S+)\s*$")


def parse_importtime(stderr: str, packages: list[str]) -> tuple[float, float]:
    """(sum of top-level cumulative µs for ``packages``, sum over all top-level lines)."""
    pkgs = total = 0
    for line in stderr.splitlines():
        m = _IMPORTTIME.match(line)
        if m and len(m.group(2)) == 1:  # top level: a single space before the name
            total += int(m.group(1))
            if m.group(3) in packages:
                pkgs += int(m.group(1))
    return float(pkgs), float(total)


def _living_workload(ctx: Ctx, wl: Workload) -> list[Result]:
    d = ctx.scratch / f"living-{wl.name}"
    store = ctx.store(d)
    envs = {"envstore": d / "es-env", PIP: d / "pip-env"}
    prep: dict[str, BaseException | None] = {}
    for tool, env in envs.items():
        try:
            if tool == "envstore":
                ctx.es.create(store, env, wl)
            else:
                tool_create(ctx, PIP, wl, env, d / "unused")()
            prep[tool] = None
        except (CommandFailed, Skipped) as exc:
            prep[tool] = exc
    alltop: dict[str, list[float]] = {t: [] for t in envs}

    def trials(argv: list[str], importtime: bool = False) -> list[tuple[str, Trial]]:
        pairs = []
        for tool, env in envs.items():

            def act(tool: str = tool, env: Path = env) -> float | None:
                p = run([env / "bin" / "python", *argv], cwd=d)
                if not importtime:
                    return None
                pk, total = parse_importtime(p.stderr, wl.imports)
                alltop[tool].append(total / 1000)
                return pk / 1000

            err = prep[tool]
            pairs.append((tool, failing(err) if err else Trial(act)))
        return pairs

    n, stmt = ctx.living_reps, wl.import_stmt
    out: list[Result] = []
    samples = alternate(trials(["-c", "pass"]), n, warmup=ctx.warmup)
    out += timing_results("living", wl.name, samples, "python -c pass")
    samples = alternate(trials(["-c", stmt]), n, warmup=ctx.warmup)
    out += timing_results("living", wl.name, samples, f"fresh `{stmt}`")
    it_trials = trials(["-X", "importtime", "-c", stmt], importtime=True)
    samples = alternate(it_trials, n, warmup=ctx.warmup)
    group = "-X importtime: packages, cumulative"
    out += timing_results("living", wl.name, samples, group, unit="ms")
    for tool, s in samples.items():  # drop the warmup runs
        out.append(
            TimingResult(
                "living",
                wl.name,
                tool,
                alltop[tool][ctx.warmup :],
                unit="ms",
                error=s.error,
                group="-X importtime: all top-level incl. startup",
            )
        )
    if prep["envstore"] is None:
        try:
            ctx.es.remove(store, envs["envstore"])
        except CommandFailed:
            pass
    rmtree(d)
    return out


def sec_living(ctx: Ctx) -> list[Result]:
    """Interpreter start-up and import times inside existing envs."""
    out: list[Result] = []
    for wl in ctx.workloads:
        print(f"  {wl.name}", flush=True)
        out += _living_workload(ctx, wl)
    return out


# ---------------------------------------------------------------- gc

_POPULATE = """\
import json, os, sys
import envstore
a = json.load(open(sys.argv[1]))
kw = dict(store=a["store"], find_links=[a["wh"]], no_index=True, with_pip=False)
# Seed envs put every wheel into the store, so each env after them is served by
# the store (no pip), as envs over a warm store are in real use. In chunks of
# 200, each from a directory holding just its wheels: pip slows down with the
# number of pins times the number of files in --find-links.
wheels = sorted(os.listdir(a["wh"]))
for i in range(0, len(wheels), 200):
    chunk = os.path.join(a["store"] + "-seed", str(i))
    os.makedirs(chunk)
    for w in wheels[i : i + 200]:
        os.symlink(os.path.join(a["wh"], w), os.path.join(chunk, w))
    pins = ["==".join(w.split("-")[:2]) for w in wheels[i : i + 200]]
    envstore.create_env(a["seed"], pins, **{**kw, "find_links": [chunk]})
    envstore.remove_env(a["seed"], store=a["store"])
for i, (env, reqs) in enumerate(a["envs"]):
    envstore.create_env(env, reqs, **kw)
    if i % 100 == 99:
        print(f"    {i + 1} envs", file=sys.stderr, flush=True)
"""


def _store_objects(store: Path) -> set[str]:
    """Entries and views, as paths relative to the store."""
    found = {f"views/{v}" for v in os.listdir(store / "views")}
    for abi in os.listdir(store / "entries"):
        for name in os.listdir(store / "entries" / abi):
            for ver in os.listdir(store / "entries" / abi / name):
                found.add(f"entries/{abi}/{name}/{ver}")
    return found


def _populate_gc_store(ctx: Ctx, d: Path, envs: list[Path], specs: list[list[str]]) -> str:
    """Create the envs through the API (one process) or, failing that, the CLI."""
    store, wh = ctx.store(d), d / "wheels"
    spec_file = d / "spec.json"
    pairs = [[str(e), s] for e, s in zip(envs, specs, strict=True)]
    seed = str(d / "seed-env")
    spec = {"store": str(store), "wh": str(wh), "envs": pairs, "seed": seed}
    spec_file.write_text(json.dumps(spec))
    try:
        run([ctx.es.python, "-c", _POPULATE, spec_file], env=ctx.es.env(), timeout=None)
        return "API"
    except CommandFailed as exc:
        print(f"    API populate failed ({tail(exc.stderr, 1)}), trying the CLI", flush=True)
    rmtree(store)
    rmtree(d / "envs")
    wl = Workload("gc", wh, [], [], [])
    for env, spec in zip(envs, specs, strict=True):
        req = env.with_suffix(".txt")
        req.parent.mkdir(parents=True, exist_ok=True)
        req.write_text("\n".join(spec) + "\n")
        ctx.es.create(store, env, wl, req)
    return "CLI"


def sec_gc(ctx: Ctx) -> list[Result]:
    """`envstore gc` on a big synthetic store after rm -rf of half of its envs."""
    d = ctx.scratch / "gc"
    store = ctx.store(d)
    print(f"  building {ctx.gc_wheels} wheels, {ctx.gc_envs} envs", flush=True)
    specs = gc_env_specs(make_gc_wheelhouse(d / "wheels", ctx.gc_wheels), ctx.gc_envs)
    envs = [d / "envs" / f"e{i:04d}" for i in range(len(specs))]
    label = f"{ctx.gc_envs} envs, {ctx.gc_wheels} wheels"
    out: list[Result] = []
    try:
        t0 = time.perf_counter()
        how = _populate_gc_store(ctx, d, envs, specs)
        per_env = (time.perf_counter() - t0) / len(envs)
        out.append(
            TimingResult(
                "gc", label, f"envstore ({how})", [per_env], group="populate, per env (one process)"
            )
        )
        for env in envs[::2]:
            rmtree(env)
        # The baseline: a copy of the store, where `rm -rf` deletes what gc deleted.
        copy = d / "store-copy"
        subprocess.run(["cp", "-a", store, copy], check=True)
        # Both trees on disk before either is deleted: files freshly written (the copy)
        # may still be in delayed allocation, which makes deleting them cheaper.
        subprocess.run(["sync"], check=True)
        before, objects = disk_usage([store]), _store_objects(store)
        t = timeit(lambda: ctx.es.gc(store))
        after, gone = disk_usage([store]), objects - _store_objects(store)
        note = (
            f"{len(gone)} entries/views deleted; store inodes {before.inodes} -> "
            f"{after.inodes}, MB {before.blocks_bytes / 1e6:.1f} -> {after.blocks_bytes / 1e6:.1f}"
        )
        print(f"    {note}", flush=True)
        group = "gc after rm -rf of half the envs"
        out.append(TimingResult("gc", label, "envstore", [t], note=note, group=group))
        doomed = [copy / rel for rel in sorted(gone)]
        # entries are read-only (0555 directories): a user's rm -rf needs chmod first
        rm: list[str | os.PathLike[str]] = [
            "sh",
            "-c",
            'chmod -R u+w "$@" && rm -rf "$@"',
            "rm",
            *doomed,
        ]
        out.append(
            TimingResult(
                "gc", label, "chmod -R u+w + rm -rf of the same objects", [timeit(rm)], group=group
            )
        )
        rmtree(copy)
        again = alternate([("envstore", Trial(lambda: ctx.es.gc(store)))], ctx.reps)
        out += timing_results("gc", label, again, "gc again, nothing to collect")
    except CommandFailed as exc:
        out.append(
            TimingResult(
                "gc", label, "envstore", [], group="gc", error=f"failed: {tail(exc.stderr)}"
            )
        )
    rmtree(d)
    return out


# ---------------------------------------------------------------- build


def sec_build_env(ctx: Ctx) -> list[Result]:
    """A throwaway build env: create, `import setuptools`, delete."""
    wl = ctx.build_env_wl
    if wl is None:
        err = "skipped: build-env wheelhouse missing"
        return [TimingResult("build-env", "-", "envstore", [], error=err)]
    d = ctx.scratch / "build-env"
    store, cache, env = ctx.store(d), ctx.cache(d), d / "env"
    stmt = wl.import_stmt
    first = use(env, stmt, d)

    def api() -> float:
        return ctx.es.api_cycle(store, env, wl.top, wl.wheelhouse, stmt)

    pairs = [
        ("envstore (API, in-process)", Trial(api, setup=clean(env))),
        (
            "envstore (CLI)",
            Trial(
                chain(es_create(ctx, store, env, wl), first, es_remove(ctx, store, env)),
                setup=clean(env),
            ),
        ),
    ]
    for kind in (PIP, UV):
        act = chain(tool_create(ctx, kind, wl, env, cache), first, clean(env))
        pairs.append((kind, Trial(act, setup=clean(env))))
    samples = alternate(pairs, ctx.reps, warmup=ctx.warmup)
    out = [*timing_results("build-env", wl.name, samples, f"create + `{stmt}` + delete")]
    # What a frontend pays per env once its process is warm (store open, facts cached):
    # on the scratch disk, and with store and envs in memory (tmpfs), where the disk's
    # share is near zero and what is left is envstore's own work.
    places = [("", d / "api-loop")]
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) and not ctx.smoke:
        places.append((", store and env on tmpfs", Path(tempfile.mkdtemp(dir="/dev/shm"))))
    try:
        for where, loop in places:
            loop_store = store if not where else loop / "store"
            out += api_loop_results(ctx, "build-env", wl, loop_store, loop, where)
    finally:
        rmtree(d)
        for _, loop in places[1:]:
            rmtree(loop)
    return out


def sec_build(ctx: Ctx) -> list[Result]:
    """`envstore build` vs `python -m build` (pip and uv installers)."""
    out: list[Result] = []
    for label, project, wh in ctx.build_projects:
        print(f"  {label}", flush=True)
        d = ctx.scratch / f"build-{label}"
        src, dist, store, cache = d / "src", d / "dist", ctx.store(d), ctx.cache(d)

        def fresh(p: Path = project, s: Path = src, o: Path = dist) -> None:
            rmtree(s)  # building writes into the project dir: use a copy
            rmtree(o)
            shutil.copytree(p, s)

        def es_build(s: Path = store, p: Path = src, o: Path = dist, w: Path = wh) -> None:
            ctx.es.build(s, p, o, w)

        pairs = [("envstore", Trial(es_build, setup=fresh))]
        if ctx.tc.available:
            pip_env = hermetic_env({"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wh)})
            uv_env = {**ctx.tc.uv_env(cache), "UV_OFFLINE": "1", "UV_FIND_LINKS": str(wh)}
            argv: list[str | os.PathLike[str]] = [ctx.tc.python, "-m", "build", src, "-o", dist]
            for name, extra, env in (
                ("python -m build", [], pip_env),
                ("python -m build --installer uv", ["--installer", "uv"], uv_env),
            ):

                def build(
                    a: tuple[str | os.PathLike[str], ...] = (*argv, *extra), e: dict[str, str] = env
                ) -> None:
                    run(a, e)

                pairs.append((name, Trial(build, setup=fresh)))
        else:
            for name in ("python -m build", "python -m build --installer uv"):
                pairs.append((name, failing(Skipped(NO_TOOLS))))
        samples = alternate(pairs, ctx.reps, warmup=ctx.warmup)
        out += timing_results("build", label, samples, "build sdist + wheel")
        rmtree(d)
    return out
