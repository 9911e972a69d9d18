"""The tools under comparison: envstore, venv + pip, uv."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from _harness import PY311, hermetic_env, run
from _workloads import Workload

REPO_SRC = Path(__file__).resolve().parents[1] / "src"


@dataclass
class Envstore:
    """How to call envstore: ``argv`` prefix, extra env vars, its Python."""

    argv: list[str]
    python: str
    env_extra: dict[str, str] = field(default_factory=dict)
    # uv venv and `venv --without-pip` envs have no pip either: compare like with like
    with_pip: bool = False

    def env(self, **extra: str) -> dict[str, str]:
        return hermetic_env({**self.env_extra, **extra})

    def cmd(self, store: Path, *args: str | os.PathLike[str]) -> list[str]:
        return [*self.argv, "--store", os.fspath(store), *(os.fspath(a) for a in args)]

    def create(self, store: Path, env: Path, wl: Workload, reqfile: Path | None = None) -> None:
        req = reqfile or wl.requirements
        args: list[str | os.PathLike[str]] = [
            "-q",
            "create",
            env,
            "--no-index",
            "--find-links",
            wl.wheelhouse,
            "-r",
            req,
        ]
        if not self.with_pip:
            args.append("--without-pip")
        run(self.cmd(store, *args), env=self.env())

    def remove(self, store: Path, env: Path) -> None:
        run(self.cmd(store, "remove", env), env=self.env())

    def gc(self, store: Path) -> None:
        # grace 0: the synthetic store is minutes old, the default grace would keep it all
        run(self.cmd(store, "gc", "--grace", "0"), env=self.env())

    def build(self, store: Path, project: Path, out: Path, wheelhouse: Path) -> None:
        run(
            self.cmd(store, "build", project, "-o", out, "--no-index", "--find-links", wheelhouse),
            env=self.env(),
        )

    def api_cycle(
        self, store: Path, env: Path, reqs: list[str], wheelhouse: Path, use: str
    ) -> float:
        """create_env + use + remove_env through the Python API, timed in-process."""
        script = (
            "import json, subprocess, sys, time\n"
            "a = json.loads(sys.argv[1])\n"
            "t0 = time.perf_counter()\n"
            "import envstore\n"
            "t1 = time.perf_counter()\n"
            "envstore.create_env(a['env'], a['reqs'], store=a['store'],"
            " find_links=[a['wh']], no_index=True, with_pip=a['pip'])\n"
            "subprocess.run([a['env'] + '/bin/python', '-c', a['use']], check=True)\n"
            "envstore.remove_env(a['env'], store=a['store'])\n"
            "print(json.dumps({'import': t1 - t0, 'cycle': time.perf_counter() - t1}))\n"
        )
        arg = json.dumps(
            {
                "env": str(env),
                "reqs": reqs,
                "store": str(store),
                "wh": str(wheelhouse),
                "use": use,
                "pip": self.with_pip,
            }
        )
        out = run([self.python, "-c", script, arg], env=self.env()).stdout
        return float(json.loads(out.strip().splitlines()[-1])["cycle"])

    def api_loop(
        self, store: Path, base: Path, reqs: list[str], wheelhouse: Path, n: int
    ) -> tuple[list[float], list[float], list[float]]:
        """``n`` create_env / remove_env pairs in one warm process (the first, which
        pays imports and opening the store, untimed): the cost a build frontend pays
        per throwaway env, holding one ``envstore.Store`` (its database stays open).
        Returns (create times, remove times, floor times).

        The floor is the file system's share: the same tree (directories, files with
        the same bytes, symlinks), one more symlink (the gc root) and the final
        rename, written with bare ``os`` calls right after each create.
        """
        script = (
            "import json, os, shutil, sys, time\n"
            "import envstore\n"
            "a = json.loads(sys.argv[1])\n"
            "st = envstore.Store(a['store'])  # one store, its database open, for the process\n"
            "kw = dict(store=st, find_links=[a['wh']], no_index=True, with_pip=a['pip'])\n"
            "def shape(top):\n"
            "    out = []\n"
            "    for d, dirs, files in os.walk(top):\n"
            "        rel = os.path.relpath(d, top)\n"
            "        for n in dirs + files:\n"
            "            p = os.path.join(d, n)\n"
            "            r = os.path.normpath(os.path.join(rel, n))\n"
            "            if os.path.islink(p):\n"
            "                out.append(('l', r, os.readlink(p)))\n"
            "            elif os.path.isdir(p):\n"
            "                out.append(('d', r, None))\n"
            "            else:\n"
            "                out.append(('f', r, open(p, 'rb').read()))\n"
            "    return out\n"
            "def replay(items, dst):\n"
            "    tmp = dst + '.tmp'\n"
            "    os.mkdir(tmp)\n"
            "    for kind, r, data in items:\n"
            "        p = os.path.join(tmp, r)\n"
            "        if kind == 'd':\n"
            "            os.mkdir(p)\n"
            "        elif kind == 'l':\n"
            "            os.symlink(data, p)\n"
            "        else:\n"
            "            with open(p, 'wb') as f:\n"
            "                f.write(data)\n"
            "    os.symlink(tmp, dst + '.root')\n"
            "    os.rename(tmp, dst)\n"
            "c, r, f = [], [], []\n"
            "for i in range(a['n'] + 1):\n"
            "    env = f\"{a['base']}/api-{i}\"\n"
            "    t0 = time.perf_counter()\n"
            "    envstore.create_env(env, a['reqs'], **kw)\n"
            "    t1 = time.perf_counter()\n"
            "    items = shape(env)\n"
            "    t2 = time.perf_counter()\n"
            "    replay(items, env + '-floor')\n"
            "    t3 = time.perf_counter()\n"
            "    shutil.rmtree(env + '-floor')\n"
            "    os.unlink(env + '-floor.root')\n"
            "    t4 = time.perf_counter()\n"
            "    envstore.remove_env(env, store=st)\n"
            "    t5 = time.perf_counter()\n"
            "    if i:\n"
            "        c.append(t1 - t0)\n"
            "        f.append(t3 - t2)\n"
            "        r.append(t5 - t4)\n"
            "print(json.dumps([c, r, f]))\n"
        )
        arg = json.dumps(
            {
                "base": str(base),
                "reqs": reqs,
                "store": str(store),
                "wh": str(wheelhouse),
                "pip": self.with_pip,
                "n": n,
            }
        )
        out = run([self.python, "-c", script, arg], env=self.env()).stdout
        create, remove, floor = json.loads(out.strip().splitlines()[-1])
        return [float(t) for t in create], [float(t) for t in remove], [float(t) for t in floor]

    def describe(self) -> str:
        pre = " ".join(f"{k}={v}" for k, v in self.env_extra.items())
        pip = "" if self.with_pip else " (create --without-pip)"
        return (pre + " " + shlex.join(self.argv)).strip() + pip


def _shebang_python(script: Path) -> str | None:
    """The interpreter named by a console script's ``#!`` line."""
    try:
        first = script.read_bytes().split(b"\n", 1)[0].decode()
    except (OSError, UnicodeDecodeError):
        return None
    parts = first[2:].split() if first.startswith("#!") else []
    if not parts:
        return None
    if Path(parts[0]).name == "env" and len(parts) > 1:
        return shutil.which(parts[1])
    return parts[0]


def resolve_envstore(
    cli: str | None, data: Path, with_pip: bool = False, src: str | None = None
) -> Envstore:
    """``--envstore CMD`` > ``--envstore-src DIR`` > <data>/envstore-venv/bin/envstore >
    PATH > python -m envstore."""
    if src and not cli:
        venv_python = data / "envstore-venv" / "bin" / "python"
        python = str(venv_python if venv_python.exists() else PY311)
        src_dir = str(Path(src).resolve())
        es = Envstore([python, "-m", "envstore"], python, {"PYTHONPATH": src_dir})
    else:
        es = _resolve_envstore(cli, data)
    es.with_pip = with_pip
    return es


def _resolve_envstore(cli: str | None, data: Path) -> Envstore:
    if cli:
        argv = shlex.split(cli)
        if len(argv) >= 3 and argv[1:3] == ["-m", "envstore"]:
            return Envstore(argv, argv[0])
        exe = shutil.which(argv[0]) or argv[0]
        return Envstore(argv, _shebang_python(Path(exe)) or sys.executable)
    venv_exe = data / "envstore-venv" / "bin" / "envstore"
    if venv_exe.exists():
        return Envstore([str(venv_exe)], str(venv_exe.parent / "python"))
    on_path = shutil.which("envstore")
    if on_path:
        return Envstore([on_path], _shebang_python(Path(on_path)) or sys.executable)
    return Envstore([str(PY311), "-m", "envstore"], str(PY311), {"PYTHONPATH": str(REPO_SRC)})


@dataclass
class Toolchain:
    """venv + pip and uv, run from the prepared tool venv (None if absent)."""

    tools: Path | None

    @classmethod
    def find(cls, data: Path) -> Toolchain:
        tools = data / "tools"
        ok = (tools / "bin" / "python").exists() and (tools / "bin" / "uv").exists()
        return cls(tools if ok else None)

    @property
    def available(self) -> bool:
        return self.tools is not None

    @property
    def python(self) -> Path:
        assert self.tools is not None
        return self.tools / "bin" / "python"

    @property
    def uv(self) -> Path:
        assert self.tools is not None
        return self.tools / "bin" / "uv"

    def version(self, what: str) -> str:
        if not self.tools:
            return "absent"
        argv: list[str | os.PathLike[str]] = (
            [self.uv, "--version"] if what == "uv" else [self.python, "-m", "pip", "--version"]
        )
        return " ".join(run(argv).stdout.split()[:2])

    def venv_pip(self, env: Path, wh: Path, reqfile: Path) -> None:
        """``python -m venv`` + the tool venv's (latest) pip targeting it.

        Like build's default isolated env: ``--without-pip`` and ``pip --python``
        (so pip's own install via ensurepip is not part of the measurement).
        pip compiles bytecode by default.
        """
        run([PY311, "-m", "venv", "--without-pip", env])
        run(
            [
                self.python,
                "-m",
                "pip",
                "--python",
                env / "bin" / "python",
                "install",
                "-q",
                "--no-cache-dir",
                "--no-index",
                "--find-links",
                wh,
                "-r",
                reqfile,
            ]
        )

    def uv_env(self, cache: Path) -> dict[str, str]:
        return hermetic_env({"UV_CACHE_DIR": str(cache)})

    def uv_venv(
        self,
        env: Path,
        wh: Path,
        reqfile: Path,
        cache: Path,
        link_mode: str | None = None,
        compile_bytecode: bool = False,
    ) -> None:
        e = self.uv_env(cache)
        run([self.uv, "venv", "-q", "-p", PY311, env], env=e)
        extra = [f"--link-mode={link_mode}"] if link_mode else []
        if compile_bytecode:
            extra.append("--compile-bytecode")
        run(
            [
                self.uv,
                "pip",
                "install",
                "-q",
                "--python",
                env / "bin" / "python",
                "--no-index",
                "--find-links",
                wh,
                "-r",
                reqfile,
                *extra,
            ],
            env=e,
        )
