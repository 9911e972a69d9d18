"""A sync into an env that already is what it asks for leaves the env as it is
(envstore.env.unchanged), and rebuilds it when anything that check covers differs:
requirements, what pip put into site-packages, a lost console script, the store's
registration. Each case is a test that fails when its part of the check is gone."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
import wheelmaker
from conftest import CLI, run
from projectmaker import make_project


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Path]:
    wh = tmp_path / "wheels"
    wh.mkdir()
    wheelmaker.build_wheel(wh, "dep-one", "1.0", files={"dep_one/__init__.py": "V = 1\n"})
    wheelmaker.build_wheel(
        wh,
        "tool",
        "1.0",
        files={"tool/__init__.py": "def main():\n    print('tool')\n"},
        entry_points={"console_scripts": {"tool": "tool:main"}},
    )
    wheelmaker.build_wheel(wh, "stray", "1.0", files={"stray.py": ""})
    proj = make_project(
        tmp_path / "proj", dependencies=["dep-one", "tool"], scripts={"sample-cli": "sample:main"}
    )
    return proj, wh


def _sync(cli: CLI, proj: Path, wh: Path, store: Path, *more: str) -> None:
    cwd = os.getcwd()
    os.chdir(proj)
    try:
        r = cli("sync", "--no-index", "-f", wh, "--store", store, *more)
    finally:
        os.chdir(cwd)
    assert r.code == 0, r.err


def _identity(env: Path) -> tuple[int, int]:
    st = (env / "pyvenv.cfg").stat()
    return st.st_ino, (env / "envstore.json").stat().st_ino


def test_nothing_changed_leaves_the_env_a_changed_requirement_rebuilds_it(
    cli: CLI, project: tuple[Path, Path], store: Path
) -> None:
    proj, wh = project
    _sync(cli, proj, wh, store)
    env = proj / ".venv"
    before = _identity(env)
    _sync(cli, proj, wh, store)
    assert _identity(env) == before
    assert run([env / "bin" / "sample-cli"]).returncode == 0
    with open(proj / "pyproject.toml", "a") as f:  # the dev group is synced by default
        f.write('\n[dependency-groups]\ndev = ["stray"]\n')
    _sync(cli, proj, wh, store)
    assert _identity(env) != before
    assert run([env / "bin" / "python", "-c", "import stray"]).returncode == 0


def test_what_tools_changed_behind_envstore_is_rebuilt(
    cli: CLI, project: tuple[Path, Path], store: Path
) -> None:
    """What pip added to site-packages goes, lost scripts (a store package's, the
    editable's) come back, and an env the store no longer has registered as it is
    gets registered again."""
    proj, wh = project
    _sync(cli, proj, wh, store)
    env = proj / ".venv"
    site = next((env / "lib").glob("python*/site-packages"))
    (site / "stray.py").write_text("")
    (site / "stray-1.0.dist-info").mkdir()
    _sync(cli, proj, wh, store)
    assert not (site / "stray.py").exists()
    for name in ("tool", "sample-cli"):
        (env / "bin" / name).unlink()
        _sync(cli, proj, wh, store)
        assert run([env / "bin" / name]).returncode == 0, name
    with sqlite3.connect(store / "envstore.db") as conn:
        conn.execute("UPDATE envs SET manifest_digest = 'x' WHERE path = ?", (str(env),))
    conn.close()
    before = _identity(env)
    _sync(cli, proj, wh, store)
    assert _identity(env) != before
