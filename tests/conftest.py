"""Shared fixtures: hermetic environment, real interpreters, real wheels built on the fly."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import wheelmaker

from envstore.cli.main import main

MINORS = ["3.9", "3.10", "3.11", "3.12", "3.13"]


def _find_python(minor: str) -> str | None:
    """A real CPython of this minor version: PATH first, then pyenv-style installs."""
    found = shutil.which(f"python{minor}")
    if found and "shims" not in found:
        return found
    roots = [os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv")), "/usr/local", "/usr"]
    for root in roots:
        for cand in sorted(glob.glob(f"{root}/versions/{minor}.*/bin/python{minor}"), reverse=True):
            if re.search(rf"/versions/{re.escape(minor)}\.\d+/", cand):
                return cand
    for cand in (f"/usr/bin/python{minor}", f"/usr/local/bin/python{minor}"):
        if os.path.exists(cand):
            return cand
    return None


PYTHONS = {m: _find_python(m) for m in MINORS}


def python_params() -> list[object]:
    return [
        pytest.param(
            PYTHONS[m],
            id=f"py{m}",
            marks=pytest.mark.skipif(PYTHONS[m] is None, reason=f"no Python {m} here"),
        )
        for m in MINORS
    ]


def hermetic_environ(extra: dict[str, str] | None = None) -> dict[str, str]:
    """os.environ without the machine's pip and bytecode settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PIP_", "UV_", "VIRTUAL_ENV", "PYTHON"))
    }
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    env.update(extra or {})
    return env


@pytest.fixture(autouse=True)
def _hermetic(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith(("PIP_", "UV_", "VIRTUAL_ENV")) or key in (
            "PYTHONDONTWRITEBYTECODE",
            "PYTHONPATH",
            "PYTHONHOME",
        ):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    monkeypatch.setenv("PIP_NO_INPUT", "1")
    monkeypatch.setenv("ENVSTORE_HOME", str(tmp_path / "default-store"))
    monkeypatch.setenv("ENVSTORE_LOCK_TIMEOUT", "30")
    monkeypatch.delenv("ENVSTORE_MAX_AGE", raising=False)  # the default window


@dataclass
class Result:
    code: int
    out: str
    err: str


CLI = Callable[..., Result]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Iterator[CLI]:
    """Run ``envstore`` in-process: ``cli("create", ...) -> Result``."""

    def run(*args: str | os.PathLike[str]) -> Result:
        code = main([os.fspath(a) for a in args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    yield run


def run(cmd: list[str | os.PathLike[str]], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """A real subprocess in the hermetic environment; never raises on failure."""
    env = hermetic_environ(kwargs.pop("extra_env", None))  # type: ignore[arg-type]
    kwargs.setdefault("timeout", 300)
    return subprocess.run(
        [os.fspath(c) for c in cmd],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        **kwargs,  # type: ignore[call-overload]
    )


def envstore_cmd() -> list[str]:
    return [sys.executable, "-m", "envstore"]


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Pure wheels covering the cases an env must handle."""
    wh = tmp_path_factory.mktemp("wheelhouse")
    wheelmaker.build_wheel(
        wh,
        "hello-app",
        "1.0",
        files={
            "hello_app/__init__.py": "import sys\n\ndef main():\n"
            "    print('hello from', sys.prefix)\n    return 3\n",
        },
        requires=["dep-one>=1.1"],
        entry_points={
            "console_scripts": {"hello": "hello_app:main"},
            "envstore.test": {"plugin": "hello_app:main"},
        },
        data={
            "scripts/hello-data": "#!python\nimport sys\nprint('data script', sys.prefix)\n",
            "data/share/hello-app/greeting.txt": "hi there\n",
            "headers/hello.h": "#define HELLO 1\n",
        },
    )
    for version in ("1.1", "1.2"):
        wheelmaker.build_wheel(
            wh,
            "dep-one",
            version,
            files={
                "dep_one/__init__.py": f"VERSION = {version!r}\n",
                "dep_one_hook.py": "import os\nos.environ['DEP_ONE_HOOK'] = 'ran'\n",
                "dep-one.pth": "import dep_one_hook\n",
            },
        )
    wheelmaker.build_wheel(wh, "ns-alpha", "1.0", files={"nsp/alpha/__init__.py": "A = 1\n"})
    wheelmaker.build_wheel(wh, "ns-beta", "2.0", files={"nsp/beta/__init__.py": "B = 2\n"})
    wheelmaker.build_wheel(wh, "solo", "0.5", files={"solo.py": "X = 5\n"})
    return wh


@pytest.fixture(scope="session")
def _template_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding only the default interpreter's bundled pip: ingesting pip
    (~800 files, compiled) is the slowest step of a cold create, paid once here."""
    from envstore.python.interpreters import find_interpreter
    from envstore.resolve.pip import bundled_pip_key
    from envstore.store.layout import Store

    root = tmp_path_factory.mktemp("template") / "store"
    st = Store(root)
    st.ensure()
    with st.gc_lock(shared=True):
        bundled_pip_key(st, find_interpreter(None, st.facts_cache()), None)
    st.close()
    return root


@pytest.fixture
def store(tmp_path: Path, _template_store: Path) -> Path:
    """A fresh store of this test's own, pre-seeded with pip (see _template_store)."""
    import sqlite3
    import time

    root = tmp_path / "store"
    # Entry files are read-only and never changed in place, so the copy links them
    # (a third of a second per test saved on a loaded machine); everything else is
    # copied, so a test may change its store's database, state and directories.
    entries = os.path.join(_template_store, "entries")

    def link_entry_files(src: str, dst: str) -> None:
        if os.path.commonpath([src, entries]) == entries:
            os.link(src, dst)
        else:
            shutil.copy2(src, dst)

    shutil.copytree(_template_store, root, symlinks=True, copy_function=link_entry_files)
    # Made new now, as if just ingested: a suite longer than gc's grace period would
    # otherwise hand late tests a pip entry old enough for a plain gc to take.
    with sqlite3.connect(root / "envstore.db") as conn:
        conn.execute("UPDATE entries SET added = ?", (time.time(),))
        conn.execute("UPDATE views SET added = ?", (time.time(),))
    conn.close()
    return root


def entries(store: Path) -> list[str]:
    """Every entry directory in a store, as ``abi/name/version-hash``."""
    base = store / "entries"
    return sorted(str(p.relative_to(base)) for p in base.glob("*/*/*") if p.is_dir())
