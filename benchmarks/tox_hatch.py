"""tox and Hatch env setup: envstore's plugins vs tox-uv / Hatch's uv installer vs
the tools' defaults (issue #25), paired, warm.

    .venv/bin/pip install tox-uv      # benchmark-only; tox and hatch are in [test]
    python3 benchmarks/tox_hatch.py [--venv .venv] [--reps 7] [--workload web]

``--venv``: a venv holding tox, tox-uv, hatch and envstore (installed, so its
entry points load the plugins): the dev venv of this repo, by default. The
project is benchmarks/_project.py's, depending on the workload's top-level
packages, all offline from the prepared wheelhouse (PIP_* and UV_* variables).
One project directory per tool, so nothing is shared but the caches.

tox: ``tox -r -e py --notest`` (recreate: the run env, the package build, the
project installed), and ``tox -e py --notest`` with nothing to recreate (tox's
own time); env setup = the first minus the second. Hatch: ``hatch env create``
after an untimed ``hatch env remove``, and ``hatch env create`` of an existing
env (Hatch's own time). One untimed round first (warm store, caches, builds),
then the tools interleaved round by round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import data_dir, hermetic_env, rmtree, run
from _project import make_project

TOX = {
    "envstore": "runner = envstore",
    "tox-uv": "runner = uv-venv-runner",
    "default": "runner = virtualenv",
}
HATCH = {
    "envstore": 'type = "envstore"',
    "uv": 'installer = "uv"',
    "default": 'installer = "pip"',
}


def _timed(argv: list[str | os.PathLike[str]], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    run(argv, env=env, cwd=cwd)
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--venv", default=str(Path(__file__).resolve().parent.parent / ".venv"))
    ap.add_argument("--data")
    ap.add_argument("--workload", default="web")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--only", choices=["tox", "hatch"])
    args = ap.parse_args()
    data = data_dir(args.data)
    wh = data / "wheelhouses" / args.workload
    top = (wh / "top.txt").read_text().split()
    bindir = Path(args.venv).resolve() / "bin"
    scratch = data / "scratch" / "tox-hatch"
    rmtree(scratch)
    scratch.mkdir(parents=True)
    env = hermetic_env(
        {
            "ENVSTORE_HOME": str(scratch / "store"),
            "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": str(wh),
            "PIP_CACHE_DIR": str(scratch / "pip-cache"),
            "UV_NO_INDEX": "1",
            "UV_FIND_LINKS": str(wh),
            "UV_CACHE_DIR": str(scratch / "uv-cache"),
            "VIRTUALENV_OVERRIDE_APP_DATA": str(scratch / "virtualenv"),
            "HATCH_DATA_DIR": str(scratch / "hatch-data"),
            "HATCH_CACHE_DIR": str(scratch / "hatch-cache"),
            "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    trials: list[
        tuple[str, list[str | os.PathLike[str]], list[str | os.PathLike[str]] | None, Path]
    ] = []
    if args.only in (None, "tox"):
        for tool, line in TOX.items():
            proj = make_project(scratch / f"tox-{tool}", "benchproj", top)
            (proj / "tox.ini").write_text(f"[testenv]\n{line}\npackage = wheel\n")
            tox = [bindir / "tox", "-e", "py", "--notest"]
            trials.append((f"tox -r ({tool})", [*tox, "-r"], None, proj))
            trials.append((f"tox, nothing to do ({tool})", tox, None, proj))
    if args.only in (None, "hatch"):
        for tool, line in HATCH.items():
            proj = make_project(scratch / f"hatch-{tool}", "benchproj", top)
            with (proj / "pyproject.toml").open("a") as f:
                f.write(f"\n[tool.hatch.envs.default]\n{line}\n")
            hatch = bindir / "hatch"
            remove = [hatch, "env", "remove", "default"]
            trials.append((f"hatch env create ({tool})", [hatch, "env", "create"], remove, proj))
            trials.append((f"hatch, env exists ({tool})", [hatch, "env", "create"], None, proj))
    times: dict[str, list[float]] = {name: [] for name, *_ in trials}
    for rnd in range(args.reps + 1):
        for name, argv, setup, cwd in trials:
            if setup is not None:
                run(setup, env=env, cwd=cwd)
            t = _timed(argv, env, cwd)
            if rnd:
                times[name].append(t)
    print(f"workload {args.workload} ({len(top)} top-level), {args.reps} reps, median (min-max), s")
    print("| what | median | min | max |\n|---|---:|---:|---:|")
    for name, ts in times.items():
        print(f"| {name} | {statistics.median(ts):.3f} | {min(ts):.3f} | {max(ts):.3f} |")
    print()
    for kind, own in (("tox -r", "tox, nothing to do"), ("hatch env create", "hatch, env exists")):
        tools = TOX if kind == "tox -r" else HATCH
        setup = {}
        for tool in tools:
            if times.get(f"{kind} ({tool})"):
                full = statistics.median(times[f"{kind} ({tool})"])
                setup[tool] = full - statistics.median(times[f"{own} ({tool})"])
        if setup:
            shown = ", ".join(f"{t} {v:.3f} s" for t, v in setup.items())
            print(f"{kind}: env setup (run minus the tool's own time): {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
