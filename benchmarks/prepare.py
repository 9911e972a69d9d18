"""Download everything the envstore benchmarks need (the only step that uses the network).

Creates, under the data dir (``--data`` / $ENVSTORE_BENCH_DATA / ~/.cache/envstore-bench):

- ``tools/``: a Python 3.11 venv with the latest pip, uv and build from PyPI;
- ``wheelhouses/<workload>/``: wheels for CPython 3.11 on linux x86_64, plus
  ``top.txt`` (top-level requirements), ``requirements.txt`` (every
  distribution in the wheelhouse, pinned, sorted by name) and
  ``install-order.txt`` (the same pins in dependency order: every prefix of
  it is dependency-closed, which the ``scaling`` section relies on);
- ``projects/tiny-setuptools`` and ``projects/tiny-hatchling``: small
  projects for the build benchmarks;
- ``envstore-venv/``: a Python 3.11 venv with envstore's dependencies (from
  the repo's pyproject.toml) and a ``.pth`` file pointing at the repo's
  ``src/``, plus ``bin/envstore``: it runs the live source without installing
  (or writing) anything in the repo.  Its dependencies are reinstalled when
  pyproject.toml's dependency list changes.

Idempotent: a workload whose wheelhouse and requirements.txt exist is
skipped unless ``--force``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import textwrap
from pathlib import Path

import tomllib
from _harness import PY311, CommandFailed, data_dir, hermetic_env, rmtree, run

WORKLOADS: dict[str, list[str]] = {
    "build-env": ["setuptools"],
    "web": ["requests", "httpx", "rich", "pydantic", "jinja2", "click"],
    "big": ["jupyterlab"],
    "binary": ["numpy", "pandas", "scipy"],
    "build-hatchling": ["hatchling"],
}

# Run by the tool venv's Python (it has `packaging`, a dependency of `build`):
# topologically sort pip's install report so that dependencies come first.
_TOPO_SCRIPT = r"""
import json, sys
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

report = json.load(open(sys.argv[1]))
env = report["environment"]
items = {canonicalize_name(i["metadata"]["name"]): i for i in report["install"]}
reqs = {n: [Requirement(r) for r in i["metadata"].get("requires_dist") or []]
        for n, i in items.items()}

def active(req, extras):
    if req.marker is None:
        return True
    return any(req.marker.evaluate(dict(env, extra=e)) for e in extras)

# extras requested of each dist (fixpoint), starting from none
wanted = {n: {""} for n in items}
changed = True
while changed:
    changed = False
    for n in items:
        for r in reqs[n]:
            d = canonicalize_name(r.name)
            if d in items and active(r, wanted[n]):
                new = set(r.extras) - wanted[d]
                if new:
                    wanted[d] |= new
                    changed = True

deps = {n: sorted({canonicalize_name(r.name) for r in reqs[n]
                   if canonicalize_name(r.name) in items and active(r, wanted[n])})
        for n in items}
order, state = [], {}
def visit(n):
    if state.get(n) == 2:
        return
    if state.get(n) == 1:  # cycle: break it
        return
    state[n] = 1
    for d in deps[n]:
        visit(d)
    state[n] = 2
    order.append(n)
for n in sorted(items):
    visit(n)
for n in order:
    print(f"{n}=={items[n]['metadata']['version']}")
"""


def tool_python(data: Path) -> Path:
    return data / "tools" / "bin" / "python"


def make_tools(data: Path, force: bool) -> None:
    py = tool_python(data)
    if py.exists() and (data / "tools" / "bin" / "uv").exists() and not force:
        print(f"tools: {data / 'tools'} exists, skipping")
        return
    rmtree(data / "tools")
    print("tools: creating venv with latest pip, uv, build ...", flush=True)
    run([PY311, "-m", "venv", data / "tools"])
    run([py, "-m", "pip", "install", "-q", "-U", "pip", "uv", "build"], env=net_env())
    out = run([py, "-m", "pip", "list", "--format=freeze"]).stdout
    wanted = {"pip", "uv", "build"}
    print("tools:", " ".join(ln for ln in out.split() if ln.split("==")[0] in wanted))


def net_env() -> dict[str, str]:
    """Hermetic env for the prepare step: default index (PyPI), no machine config.

    The system CA bundle is kept so that a TLS-intercepting proxy still works.
    """
    env = hermetic_env()
    if Path("/etc/ssl/certs/ca-certificates.crt").exists():
        env["PIP_CERT"] = "/etc/ssl/certs/ca-certificates.crt"
    return env


def make_wheelhouse(data: Path, name: str, top: list[str], force: bool) -> int:
    wh = data / "wheelhouses" / name
    req = wh / "requirements.txt"
    if req.exists() and any(wh.glob("*.whl")) and not force:
        n = len(req.read_text().split())
        print(f"{name}: exists ({n} dists), skipping")
        return n
    rmtree(wh)
    wh.mkdir(parents=True)
    py = tool_python(data)
    print(f"{name}: downloading {' '.join(top)} ...", flush=True)
    run(
        [py, "-m", "pip", "download", "-q", "--only-binary=:all:", "-d", wh, *top],
        env=net_env(),
    )
    (wh / "top.txt").write_text("\n".join(top) + "\n")
    # Resolve again offline against the wheelhouse: proves it is complete and
    # gives the exact set (with metadata for the dependency order).
    report = wh / ".report.json"
    run(
        [
            py,
            "-m",
            "pip",
            "install",
            "-q",
            "--dry-run",
            "--ignore-installed",
            "--no-index",
            "--find-links",
            wh,
            "--only-binary=:all:",
            "--report",
            report,
            "-r",
            wh / "top.txt",
        ],
    )
    items = json.loads(report.read_text())["install"]
    used = {Path(i["download_info"]["url"].removeprefix("file://")).name for i in items}
    for whl in wh.glob("*.whl"):
        if whl.name not in used:
            print(f"{name}: removing unused {whl.name}")
            whl.unlink()
    order = run([py, "-c", _TOPO_SCRIPT, report]).stdout.split()
    report.unlink()
    (wh / "install-order.txt").write_text("\n".join(order) + "\n")
    req.write_text("\n".join(sorted(order)) + "\n")
    print(f"{name}: {len(order)} dists", flush=True)
    return len(order)


REPO = Path(__file__).resolve().parents[1]


def make_envstore_venv(data: Path, force: bool) -> None:
    """A venv running envstore from the repo's src/ (deps + [build] extra; repo untouched)."""
    venv = data / "envstore-venv"
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = project.get("optional-dependencies", {})
    deps = project.get("dependencies", []) + extras.get("build", [])
    stamp = venv / ".deps-sha256"
    digest = hashlib.sha256(json.dumps(sorted(deps)).encode()).hexdigest()
    py = venv / "bin" / "python"
    if py.exists() and stamp.exists() and stamp.read_text() == digest and not force:
        print(f"envstore-venv: {venv} up to date, skipping")
        return
    rmtree(venv)
    run([PY311, "-m", "venv", venv])
    if deps:
        print(f"envstore-venv: installing {' '.join(deps)}", flush=True)
        run([tool_python(data), "-m", "pip", "--python", py, "install", "-q", *deps], env=net_env())
    purelib = run([py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout
    (Path(purelib.strip()) / "envstore-repo-src.pth").write_text(f"{REPO / 'src'}\n")
    script = venv / "bin" / "envstore"
    script.write_text(
        f"#!{py}\nimport sys\nfrom envstore.cli.main import entrypoint\nsys.exit(entrypoint())\n"
    )
    script.chmod(0o755)
    stamp.write_text(digest)
    print(f"envstore-venv: {script} (runs {REPO / 'src'})")


def make_projects(data: Path) -> None:
    root = data / "projects"
    setup = root / "tiny-setuptools"
    (setup / "tinysetup").mkdir(parents=True, exist_ok=True)
    (setup / "pyproject.toml").write_text(
        textwrap.dedent("""\
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "tinysetup"
        version = "0.1.0"
        description = "tiny setuptools project for envstore build benchmarks"

        [tool.setuptools]
        packages = ["tinysetup"]
        """)
    )
    (setup / "tinysetup" / "__init__.py").write_text('"""tiny."""\n\nVALUE = 42\n')
    hatch = root / "tiny-hatchling"
    (hatch / "tinyhatch").mkdir(parents=True, exist_ok=True)
    (hatch / "pyproject.toml").write_text(
        textwrap.dedent("""\
        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"

        [project]
        name = "tinyhatch"
        version = "0.1.0"
        description = "tiny hatchling project for envstore build benchmarks"
        """)
    )
    (hatch / "tinyhatch" / "__init__.py").write_text('"""tiny."""\n\nVALUE = 42\n')
    print(f"projects: {setup}, {hatch}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", help="default: $ENVSTORE_BENCH_DATA or ~/.cache/envstore-bench")
    ap.add_argument("--force", action="store_true", help="redo existing wheelhouses and venvs")
    ap.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help="comma-separated subset of " + ",".join(WORKLOADS),
    )
    args = ap.parse_args(argv)
    data = data_dir(args.data)
    data.mkdir(parents=True, exist_ok=True)
    print(f"data dir: {data}")
    try:
        make_tools(data, args.force)
        counts = {
            w: make_wheelhouse(data, w, WORKLOADS[w], args.force)
            for w in args.workloads.split(",")
            if w
        }
    except CommandFailed as exc:
        print(f"prepare failed: {exc}", file=sys.stderr)
        return 1
    make_projects(data)
    try:
        make_envstore_venv(data, args.force)
    except (CommandFailed, OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        print(f"envstore-venv: not created ({exc}); run.py falls back to python -m envstore")
    print("done:", ", ".join(f"{k}={v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
