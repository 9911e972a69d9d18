"""The tox runner (``runner = envstore``) and the Hatch environment type
(``type = "envstore"``), driven through the real tools, offline: wheels from
wheelmaker and a project from projectmaker, found through PIP_NO_INDEX and
PIP_FIND_LINKS as a tox or Hatch user would set them."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import wheelmaker
from conftest import PYTHONS, entries, run
from projectmaker import make_project

from envstore.env.make import is_envstore_env
from envstore.store.layout import Store
from envstore.store.registry import registered_envs

BIN = Path(sys.executable).parent
CHECK = (
    "import sample, dep_one, solo, extra_thing, sys;"
    " print('OK', sample.__file__, sys.prefix, solo.X)"
)

TOX_INI = f"""[tox]
env_list = a, b, c
[testenv]
runner = envstore
deps = solo
constraints = cons.txt
extras = x
commands = python -c "{CHECK}"
[testenv:a]
package = wheel
[testenv:b]
package = editable
[testenv:c]
[testenv:custom]
install_command = python -m pip install --user {{packages}}
"""

HATCH = f"""
[tool.hatch.envs.default]
type = "envstore"
dependencies = ["solo"]
features = ["x"]

[tool.hatch.envs.default.scripts]
test = {json.dumps(f'python -c "{CHECK}"')}

[tool.hatch.envs.nodev]
template = "default"
dev-mode = false
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    wh = tmp_path / "wheels"
    wh.mkdir()
    wheelmaker.build_wheel(wh, "dep-one", "1.1", files={"dep_one/__init__.py": "V = 1\n"})
    wheelmaker.build_wheel(wh, "solo", "0.5", files={"solo.py": "X = 5\n"})
    wheelmaker.build_wheel(wh, "solo", "0.6", files={"solo.py": "X = 6\n"})
    wheelmaker.build_wheel(wh, "extra-thing", "1.0", files={"extra_thing.py": "Y = 1\n"})
    root = make_project(
        tmp_path / "proj",
        "sample",
        dependencies=["dep-one"],
        optional_dependencies={"x": ["extra-thing"]},
    )
    (root / "tox.ini").write_text(TOX_INI)
    (root / "cons.txt").write_text("solo==0.5\n")
    with (root / "pyproject.toml").open("a") as f:
        f.write(HATCH)
    return root


def _env(store: Path, tmp_path: Path) -> dict[str, str]:
    return {
        "ENVSTORE_HOME": str(store),
        "PIP_NO_INDEX": "1",
        "PIP_FIND_LINKS": str(tmp_path / "wheels"),
        "HATCH_DATA_DIR": str(tmp_path / "hatch-data"),
        "HATCH_CACHE_DIR": str(tmp_path / "hatch-cache"),
    }


def _other_python() -> str | None:
    """An installed Python of another minor than this one, if this user can run it."""
    mine = f"{sys.version_info[0]}.{sys.version_info[1]}"
    for minor, path in sorted(PYTHONS.items(), reverse=True):
        if minor != mine and path and os.access(path, os.X_OK):
            return path
    return None


def _live(store: Path) -> list[str]:
    st = Store(store)
    try:
        return sorted(registered_envs(st))
    finally:
        st.close()


def test_tox_runner(project: Path, store: Path, tmp_path: Path) -> None:
    env = _env(store, tmp_path)
    tox = [BIN / "tox", "-c", project / "tox.ini"]

    # The project's wheel, editable, and tox's default (sdist, installed as a wheel
    # built from it: sdist-wheel): all pass.
    r = run([*tox, "-e", "a,b,c"], cwd=project, extra_env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    for name in ("a", "c"):  # a wheel, in the env's site-packages
        assert f"OK {project / '.tox' / name / 'venv/lib'}" in out, name
    assert f"OK {project / 'src/sample/__init__.py'}" in out  # editable: the source
    oks = [line for line in out.splitlines() if line.startswith("OK ")]
    assert len(oks) == 3 and all(line.endswith(" 5") for line in oks), out  # constraints
    for name in ("a", "b", "c", ".pkg-envstore"):  # run envs and the package env: envstore's
        assert is_envstore_env(project / ".tox" / name / "venv"), name
    first = entries(store)
    assert not [e for e in first if "/sample/" in e]  # the project is never a store entry
    assert {e.split("/")[1] for e in first} >= {"dep-one", "solo", "extra-thing"}
    live = _live(store)
    assert len(live) == 4

    # Recreate, in parallel (threads), twice: no new entry, old envs released.
    for _ in range(2):
        r = run([*tox, "-r", "-p", "-e", "a,b"], cwd=project, extra_env=env)
        assert r.returncode == 0, r.stdout + r.stderr
        assert entries(store) == first
        assert _live(store) == live

    # A custom install_command is refused, in one line, naming it.
    r = run([*tox, "-e", "custom", "--notest"], cwd=project, extra_env=env)
    assert r.returncode != 0
    assert "install_command = python -m pip install --user" in r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr

    # tox's default package = sdist becomes sdist-wheel: a wheel, built from the sdist.
    r = run([*tox, "config", "-e", "custom", "-k", "package"], cwd=project, extra_env=env)
    assert "package = sdist-wheel" in r.stdout, r.stdout + r.stderr

    # Opt-in only: with envstore installed, a config that does not name it is tox's own.
    plain = tmp_path / "plain.ini"
    plain.write_text("[testenv]\ndeps = solo\n")
    r = run([BIN / "tox", "-c", plain, "config", "-e", "py", "-k", "runner"], extra_env=env)
    assert r.returncode == 0, r.stderr
    assert "runner = " in r.stdout and "runner = envstore" not in r.stdout, r.stdout


def test_hatch_environment(project: Path, store: Path, tmp_path: Path) -> None:
    env = _env(store, tmp_path)
    hatch = BIN / "hatch"

    r = run([hatch, "run", "test"], cwd=project, extra_env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith("OK "))
    _, module, prefix, _ = line.split()
    assert module == str(project / "src" / "sample" / "__init__.py")  # dev mode: editable
    assert is_envstore_env(Path(prefix))
    assert _live(store) == [str(Path(prefix))]
    assert not [e for e in entries(store) if "/sample/" in e]

    # A second run reuses the env as it is.
    r = run([hatch, "run", "test"], cwd=project, extra_env=env)
    assert r.returncode == 0 and "Creating environment" not in r.stdout + r.stderr

    # dev-mode = false: the project's own wheel, in the env's site-packages.
    r = run([hatch, "run", "nodev:test"], cwd=project, extra_env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "/site-packages/sample/__init__.py" in r.stdout
    assert not [e for e in entries(store) if "/sample/" in e]
    r = run([hatch, "env", "remove", "nodev"], cwd=project, extra_env=env)
    assert r.returncode == 0, r.stdout + r.stderr

    # Removal goes through envstore: nothing of the env is live afterwards.
    r = run([hatch, "env", "remove", "default"], cwd=project, extra_env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not Path(prefix).exists()
    assert _live(store) == []

    # A matrix over two installed Pythons (found on PATH, never downloaded).
    other = _other_python()
    if other is not None:
        mine = f"{sys.version_info[0]}.{sys.version_info[1]}"
        minor = Path(other).name.removeprefix("python")
        with (project / "pyproject.toml").open("a") as f:
            f.write('[tool.hatch.envs.mx]\ntemplate = "default"\n[[tool.hatch.envs.mx.matrix]]\n')
            f.write(f'python = ["{mine}", "{minor}"]\n')
        path = f"{Path(other).parent}{os.pathsep}{os.environ['PATH']}"
        r = run([hatch, "run", "mx:test"], cwd=project, extra_env={**env, "PATH": path})
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.count("OK ") == 2, r.stdout
        for version in (mine, minor):
            assert f"mx.py{version}" in r.stdout + r.stderr
        assert not [e for e in entries(store) if "/sample/" in e]
        r = run([hatch, "env", "prune"], cwd=project, extra_env={**env, "PATH": path})
        assert r.returncode == 0, r.stdout + r.stderr
        assert _live(store) == []


NOXFILE = """
import nox

@nox.session(venv_backend="none")
def tests(session):
    session.run("envstore", "run", "--with", "solo==0.6", "--", "python", "-c",
                "import solo, sys; print('NOX', solo.X, sys.prefix)", external=True)
"""


def test_nox_recipe(project: Path, store: Path, tmp_path: Path) -> None:
    """nox's backends are fixed: the README's recipe, a session with no env of its own
    running ``envstore run``, works with the real nox and leaves no env behind."""
    (project / "noxfile.py").write_text(NOXFILE)
    env = {**_env(store, tmp_path), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    r = run([BIN / "nox", "-f", project / "noxfile.py"], cwd=project, extra_env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "NOX 6 " in r.stdout + r.stderr, r.stdout + r.stderr  # solo==0.6 from --with
    assert _live(store) == []  # the throwaway env was removed through envstore
