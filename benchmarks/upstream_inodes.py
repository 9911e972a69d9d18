"""Inodes of an env and of a user's store with a read-only upstream (issue #27).

Standalone, offline, stdlib only. Counts distinct inodes (a hard link is one) under
each directory:

- ``venv + pip``: ``python -m venv --without-pip`` then the tool venv's pip
  ``--python``-less install into it (``pip --prefix`` would differ), ``--no-compile``
  off: pip compiles bytecode, as it does by default;
- ``uv``: ``uv venv`` + ``uv pip install`` (hard links from its cache, no bytecode:
  uv's defaults), the env and the cache counted;
- ``envstore``: the env, and the user's store, without an upstream (every entry is the
  user's) and with the admin's store as ``ENVSTORE_UPSTREAM`` (only the view is).

Usage: ``python3 benchmarks/upstream_inodes.py [--data DIR] [--workload big] [--out FILE]``
(the data dir of ``benchmarks/prepare.py``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _harness import PY311, data_dir, hermetic_env  # noqa: E402


def inodes(*roots: Path) -> int:
    seen: set[tuple[int, int]] = set()
    for root in roots:
        for top, dirs, files in os.walk(root):
            for name in [".", *dirs, *files]:
                st = os.lstat(os.path.join(top, name))
                seen.add((st.st_dev, st.st_ino))
    return len(seen)


def run(cmd: list[str | Path], env: dict[str, str]) -> None:
    subprocess.run([str(c) for c in cmd], env=env, check=True, stdout=subprocess.DEVNULL)


def read_only(root: Path) -> None:
    for top, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            p = os.path.join(top, name)
            if not os.path.islink(p):
                os.chmod(p, stat.S_IMODE(os.lstat(p).st_mode) & ~0o222)


def writable(root: Path) -> None:
    for top, dirs, _ in os.walk(root):
        for name in [".", *dirs]:
            p = os.path.join(top, name)
            if not os.path.islink(p):
                os.chmod(p, stat.S_IMODE(os.lstat(p).st_mode) | 0o200)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data")
    ap.add_argument("--workload", default="big")
    ap.add_argument("--out")
    args = ap.parse_args()
    data = data_dir(args.data)
    wh = data / "wheelhouses" / args.workload
    req = wh / "requirements.txt"
    tools = data / "tools" / "bin"
    envstore = [sys.executable, "-m", "envstore"]  # run it with a Python that has envstore
    env = hermetic_env({})
    rows: list[tuple[str, int, int, int]] = []  # what, env, a further env, store/cache
    with tempfile.TemporaryDirectory(dir=data / "scratch") as tmp:
        t = Path(tmp)
        # venv + pip: every env holds everything
        run([PY311, "-m", "venv", "--without-pip", t / "pip-env"], env)
        run([tools / "python", "-m", "pip", "--python", t / "pip-env" / "bin" / "python",
             "install", "-q", "--no-index", "-f", wh, "-r", req], env)  # fmt: skip
        pip_env = inodes(t / "pip-env")
        rows.append(("venv + pip", pip_env, pip_env, 0))
        # uv: files hard-linked from its cache (one inode for the cache and every env)
        uv_env = {**env, "UV_CACHE_DIR": str(t / "uv-cache")}
        for name in ("uv-env", "uv-env2"):
            run([tools / "uv", "venv", "-q", "-p", PY311, t / name], uv_env)
            run([tools / "uv", "pip", "install", "-q", "--python", t / name / "bin" / "python",
                 "--no-index", "--find-links", wh, "-r", req], uv_env)  # fmt: skip
        one = inodes(t / "uv-cache", t / "uv-env")
        rows.append(
            (
                "uv (cache: what the env does not share with it)",
                inodes(t / "uv-env"),
                inodes(t / "uv-cache", t / "uv-env", t / "uv-env2") - one,
                one - inodes(t / "uv-env"),
            )
        )
        # envstore, no upstream: the admin's store is an ordinary one
        site = t / "site"
        for name in ("admin-env", "admin-env2"):
            run([*envstore, "--store", site, "create", t / name, "-p", PY311,
                 "--no-index", "-f", wh, "-r", req], env)  # fmt: skip
        rows.append(
            ("envstore, own store", inodes(t / "admin-env"), inodes(t / "admin-env2"), inodes(site))
        )
        # envstore with the admin's store as a read-only upstream
        read_only(site)
        try:
            up_env = {**env, "ENVSTORE_UPSTREAM": str(site)}
            mine = t / "mine"
            run([*envstore, "--store", mine, "create", t / "user-env", "-p", PY311,
                 "--no-index", "-f", wh, "-r", req], up_env)  # fmt: skip
            one = inodes(mine)
            run([*envstore, "--store", mine, "create", t / "user-env2", "-p", PY311,
                 "--no-index", "-f", wh, "-r", req], up_env)  # fmt: skip
            rows.append(
                (
                    "envstore over an upstream (store: the user's)",
                    inodes(t / "user-env"),
                    inodes(t / "user-env2") + inodes(mine) - one,
                    one,
                )
            )
            in_entries = sum(1 for _ in (mine / "entries").rglob("*"))
        finally:
            writable(site)
            shutil.rmtree(site)
    lines = [
        f"# Inodes with a read-only upstream: `{args.workload}` ({len(req.read_text().split())}"
        " distributions), CPython 3.11",
        "",
        "| tool | one env | each further env of the same set | store / cache |",
        "|---|---:|---:|---:|",
        *[f"| {what} | {a} | {b} | {c} |" for what, a, b, c in rows],
        "",
        f"Paths in the user's `entries/` after both creates: {in_entries}.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
