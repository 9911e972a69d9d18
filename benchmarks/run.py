"""Run the envstore benchmarks against venv + pip and uv (offline, hermetic).

    python benchmarks/run.py [--data DIR] [--reps N] [--workloads build-env,web,big,binary]
                             [--only SECTION,...] [--out benchmarks/results] [--envstore CMD]
    python benchmarks/run.py --smoke --out /tmp/x   # tiny synthetic run, < 30 s

Run benchmarks/prepare.py first (the only step that needs the network).
See benchmarks/README.md for what each section measures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from _harness import (
    PY311,
    CommandFailed,
    Result,
    TimingResult,
    data_dir,
    rmtree,
    run,
    write_results,
)
from _sections import Ctx, sec_create_cold, sec_create_warm, sec_footprint, sec_scaling
from _sections_fresh import sec_freshness
from _sections_more import sec_build, sec_build_env, sec_gc, sec_living
from _sections_project import sec_project_sync
from _sections_remote import sec_remote
from _tools import Envstore, Toolchain, resolve_envstore
from _workloads import (
    ALL_WORKLOADS,
    Workload,
    load_workload,
    make_smoke_project,
    make_smoke_workload,
)

SECTION_FUNCS: dict[str, Callable[[Ctx], list[Result]]] = {
    "create-warm": sec_create_warm,
    "create-cold": sec_create_cold,
    "footprint": sec_footprint,
    "living": sec_living,
    "scaling": sec_scaling,
    "gc": sec_gc,
    "build-env": sec_build_env,
    "build": sec_build,
    "remote": sec_remote,
    "project-sync": sec_project_sync,
    "freshness": sec_freshness,
}
SECTIONS = list(SECTION_FUNCS)
__all__ = ["SECTIONS", "Ctx", "main"]


def machine_meta(ctx: Ctx, argv: list[str], smoke: bool) -> dict[str, object]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        py = run([PY311, "--version"]).stdout.strip()
    except CommandFailed:
        py = "?"
    nproc = len(os.sched_getaffinity(0))
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": f"nproc {nproc}, {cpu}, {platform.platform()}",
        "python": f"{py} ({PY311}); harness {platform.python_version()}",
        "uv": ctx.tc.version("uv"),
        "pip": ctx.tc.version("pip"),
        "envstore": ctx.es.describe(),
        "command": shlex.join([sys.executable, *argv]),
        "reps": f"{ctx.reps} (living: {ctx.living_reps})",
        "smoke": smoke,
    }


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--data", help="default: $ENVSTORE_BENCH_DATA or ~/.cache/envstore-bench")
    ap.add_argument("--reps", type=int, default=5, help="repetitions per measurement")
    ap.add_argument("--living-reps", type=int, default=20, help="repetitions in `living`")
    ap.add_argument("--workloads", default=",".join(ALL_WORKLOADS))
    ap.add_argument("--only", default=",".join(SECTIONS), help="sections: " + ",".join(SECTIONS))
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--envstore", help="envstore command, e.g. 'python3 -m envstore'")
    ap.add_argument(
        "--envstore-src",
        metavar="DIR",
        help="run envstore from this source tree (e.g. a `git archive` snapshot of src/, so"
        " the repo can change during a long run), with the envstore venv's Python",
    )
    ap.add_argument(
        "--envstore-with-pip",
        action="store_true",
        help="let envstore put pip into its envs (default: --without-pip, like the others)",
    )
    ap.add_argument("--gc-envs", type=int, default=1000, help="envs in the gc store")
    ap.add_argument("--gc-wheels", type=int, default=3000, help="synthetic wheels in the gc store")
    ap.add_argument("--smoke", action="store_true", help="tiny offline run of every section")
    ap.add_argument(
        "--no-settle",
        action="store_true",
        help="no os.sync() before the timed runs that settle the disk (project-sync's library"
        " rows): one command's writeback is then billed to the next",
    )
    return ap


def _real_ctx(args: argparse.Namespace, data: Path, es: Envstore, tc: Toolchain) -> Ctx:
    wls = [load_workload(data, w) for w in args.workloads.split(",") if w]
    try:
        bwl: Workload | None = load_workload(data, "build-env")
    except FileNotFoundError:
        bwl = None
    projects = []
    for label, wh in (("setuptools", "build-env"), ("hatchling", "build-hatchling")):
        proj, whdir = data / "projects" / f"tiny-{label}", data / "wheelhouses" / wh
        if proj.exists() and whdir.exists():
            projects.append((label, proj, whdir))
    # scratch on the data dir's file system, so that hard links work as in real use
    scratch = data / "scratch" / f"run-{os.getpid()}"
    return Ctx(
        scratch,
        args.reps,
        args.living_reps,
        es,
        tc,
        wls,
        bwl,
        projects,
        [10, 30, 60],
        args.gc_envs,
        args.gc_wheels,
        settle=not args.no_settle,
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    ap = _parser()
    args = ap.parse_args(argv[1:])
    only = [s for s in args.only.split(",") if s]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown sections: {', '.join(sorted(unknown))}")

    data = data_dir(args.data)
    es = resolve_envstore(args.envstore, data, args.envstore_with_pip, args.envstore_src)
    tc = Toolchain.find(data)
    tmp = tempfile.TemporaryDirectory(prefix="envstore-bench-")
    if args.smoke:
        root = Path(tmp.name)
        smoke = make_smoke_workload(root)
        project = make_smoke_project(root)
        ctx = Ctx(
            root / "scratch",
            1,
            1,
            es,
            tc,
            [smoke],
            smoke,
            [("smokeproj", project, smoke.wheelhouse)],
            [1, 2],
            gc_envs=2,
            gc_wheels=4,
            warmup=0,
            smoke=True,
            shared=root / "scratch" / "shared",
        )
    else:
        try:
            ctx = _real_ctx(args, data, es, tc)
        except FileNotFoundError as exc:
            print(exc, file=sys.stderr)
            return 2
    ctx.scratch.mkdir(parents=True, exist_ok=True)
    meta = machine_meta(ctx, argv, args.smoke)
    print(f"envstore: {es.describe()}\nuv: {meta['uv']}; pip: {meta['pip']}", flush=True)
    results: dict[str, list[Result]] = {}
    out_dir = Path(args.out)
    try:
        for name in only:
            print(f"[{name}]", flush=True)
            t0 = time.perf_counter()
            try:
                results[name] = SECTION_FUNCS[name](ctx)
            except Exception as exc:  # a broken section must not lose the others
                traceback.print_exc()
                err = f"failed: {type(exc).__name__}: {exc}"
                results[name] = [TimingResult(name, "-", "harness", [], error=err)]
            print(f"[{name}] done in {time.perf_counter() - t0:.1f}s", flush=True)
            write_results(out_dir, meta, results)  # partial results survive a crash
    finally:
        rmtree(ctx.scratch)
        tmp.cleanup()
    json_path, md_path = write_results(out_dir, meta, results)
    print(md_path.read_text())
    print(f"results: {json_path} {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
