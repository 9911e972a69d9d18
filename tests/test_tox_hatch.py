"""The tox runner (``runner = envstore``) and the Hatch environment type
(``type = "envstore"``), driven through the real tools, offline: wheels from
wheelmaker and a project from projectmaker, found through PIP_NO_INDEX and
PIP_FIND_LINKS as a tox or Hatch user would set them."""

from __future__ import annotations

import json
import os
import shutil
import sys
import zipfile
from importlib.metadata import Distribution, distribution
from pathlib import Path

import pexpect
import pytest
import wheelmaker
from conftest import PYTHONS, entries, hermetic_environ, run
from packaging.requirements import Requirement
from projectmaker import make_project
from wheelmaker import Member, record_for, write_raw_wheel

import envstore
from envstore.env.make import is_envstore_env
from envstore.store.layout import Store
from envstore.store.registry import registered_envs

BIN = Path(sys.executable).parent
CHECK = (
    "import sample, dep_one, solo, extra_thing, sys;"
    " print('OK', sample.__file__, sys.prefix, solo.X)"
)

TOX_INI = f"""[tox]
requires = envstore
env_list = a, b, c, d
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
[testenv:d]
package = sdist
[testenv:e]
package = skip
constraints =
dependency_groups = g
pip_pre = true
commands = python -c "import pre_thing, solo; print('E', solo.X, pre_thing.V)"
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
    wheelmaker.build_wheel(wh, "pre-thing", "0.9", files={"pre_thing.py": "V = 'final'\n"})
    wheelmaker.build_wheel(wh, "pre-thing", "1.0rc1", files={"pre_thing.py": "V = 'pre'\n"})
    root = make_project(
        tmp_path / "proj",
        "sample",
        dependencies=["dep-one"],
        optional_dependencies={"x": ["extra-thing"]},
        groups={"g": ["pre-thing"]},
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

    # The project's wheel, editable, tox's default (sdist, installed as a wheel built
    # from it: sdist-wheel) and an sdist the env's pip builds: all pass. `requires =
    # envstore` is met by the tox running (nothing to provision).
    r = run([*tox, "-e", "a,b,c,d,e"], cwd=project, extra_env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "provision" not in r.stdout + r.stderr
    out = r.stdout
    for name in ("a", "c", "d"):  # a wheel, in the env's site-packages
        assert f"OK {project / '.tox' / name / 'venv/lib'}" in out, name
    assert f"OK {project / 'src/sample/__init__.py'}" in out  # editable: the source
    oks = [line for line in out.splitlines() if line.startswith("OK ")]
    assert len(oks) == 4 and all(line.endswith(" 5") for line in oks), out  # constraints
    assert "E 6 pre" in out  # package = skip, a dependency group, pip_pre; no constraints
    for name in ("a", "b", "c", "d", ".pkg-envstore"):  # run and package envs: envstore's
        assert is_envstore_env(project / ".tox" / name / "venv"), name
    first = entries(store)
    assert not [e for e in first if "/sample/" in e]  # the project is never a store entry
    assert {e.split("/")[1] for e in first} >= {"dep-one", "solo", "extra-thing"}
    live = _live(store)
    assert len(live) == 6

    # A run with nothing changed leaves the env as it is (no sync); a changed source
    # is installed anew.
    venv_a = project / ".tox" / "a" / "venv"
    before = venv_a.stat().st_ino
    r = run([*tox, "-e", "a"], cwd=project, extra_env=env)
    assert r.returncode == 0 and "OK " in r.stdout, r.stdout + r.stderr
    assert venv_a.stat().st_ino == before
    with (project / "src" / "sample" / "__init__.py").open("a") as f:
        f.write("EDITED = 1\n")
    r = run([*tox, "-e", "a", "--notest"], cwd=project, extra_env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    installed = next(venv_a.glob("lib/*/site-packages/sample/__init__.py"))
    assert "EDITED = 1" in installed.read_text()

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

    # tox devenv DIR: the env is DIR itself, as with virtualenv.
    r = run([*tox, "devenv", "-e", "a", tmp_path / "dev"], cwd=project, extra_env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert is_envstore_env(tmp_path / "dev")
    r = run([tmp_path / "dev/bin/python", "-c", "import sample; print(sample.__file__)"])
    assert r.stdout.strip() == str(project / "src/sample/__init__.py"), r  # tox: editable

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

    # hatch shell: bash in a terminal, the env's activate script sourced.
    if shutil.which("bash"):
        shell_env = {**env, "SHELL": "bash", "HOME": str(tmp_path), "PS1": "$ "}
        term = pexpect.spawn(
            str(hatch), ["shell"], cwd=project, env=hermetic_environ(shell_env), timeout=120
        )
        try:
            term.expect(r"\(sample\)")  # the prompt, once activated
            term.sendline('python -c "import sys; print(sys.prefix)"; echo "[$VIRTUAL_ENV]"; exit')
            term.expect(pexpect.EOF)
        finally:
            term.close(force=True)
        assert term.exitstatus == 0, term.before
        assert f"{prefix}\r\n[{prefix}]".encode() in term.before, term.before

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


STORED = zipfile.ZIP_STORED  # quicker to write and to read than deflated


def _wheel_of_installed(dist: Distribution, out: Path) -> None:
    """A wheel of the installed ``dist``: the files its RECORD lists in site-packages
    (envstore, installed editable here, from its source tree) and its own metadata."""
    info = next(f.parts[0] for f in dist.files or [] if f.parts[0].endswith(".dist-info"))
    members: list[Member] = []
    files = dist.files or []
    if dist.metadata["Name"] == "envstore" and not any(f.parts[0] == "envstore" for f in files):
        src = Path(envstore.__file__).parent  # an editable install: its source tree
        for f in sorted(src.rglob("*.py")):
            members.append(
                Member(f"envstore/{f.relative_to(src)}", f.read_bytes(), compress=STORED)
            )
    for f in files:
        if f.parts[0] == ".." or "__pycache__" in f.parts or f.suffix == ".pth":
            continue
        if f.parts[0] == info and f.name in {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}:
            continue
        members.append(Member(str(f), Path(str(f.locate())).read_bytes(), compress=STORED))
    wheel_text = dist.read_text("WHEEL") or ""
    tags = [line[5:].split("-") for line in wheel_text.splitlines() if line.startswith("Tag: ")]
    tag = "-".join(".".join(dict.fromkeys(t[i] for t in tags)) for i in range(3))
    members.append(record_for(members, f"{info}/RECORD"))
    write_raw_wheel(out / f"{info.removesuffix('.dist-info')}-{tag}.whl", members)


def _wheels_of_installed(names: list[str], out: Path) -> None:
    """Wheels of ``names`` and everything they require, as installed here."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        dist = distribution(todo.pop())
        name = dist.metadata["Name"].lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        _wheel_of_installed(dist, out)
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)


def test_tox_provisioning(project: Path, store: Path, tmp_path: Path) -> None:
    """``[tox] requires`` naming what the running tox lacks: tox provisions a tox env
    (made by envstore here: ``[testenv:.tox] runner = envstore``) holding tox,
    envstore and the rest, and that tox runs the envstore envs."""
    ini = project / "tox.ini"
    ini.write_text(
        TOX_INI.replace("requires = envstore", "requires = envstore\n  toxprobe")
        + "[testenv:.tox]\nrunner = envstore\n"
    )
    env = _env(store, tmp_path)
    # Not to be had (no tox among the wheels): tox's one-line error, no traceback.
    r = run([BIN / "tox", "-c", ini, "-e", "e"], cwd=project, extra_env=env)
    assert r.returncode != 0
    assert "cannot provision tox environment .tox: envstore: " in r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr

    wheels = tmp_path / "wheels"
    _wheels_of_installed(["tox", "envstore"], wheels)
    wheelmaker.build_wheel(wheels, "toxprobe", "1.0", files={"toxprobe.py": ""})
    r = run([BIN / "tox", "-c", ini, "-e", "e"], cwd=project, extra_env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "will run in automatically provisioned tox" in r.stdout + r.stderr
    assert "E 6 pre" in r.stdout
    assert is_envstore_env(project / ".tox" / ".tox" / "venv")
    assert is_envstore_env(project / ".tox" / "e" / "venv")


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


def test_the_sdist_installs_index_options_are_checked_again() -> None:
    """The runner's state file is data on disk: an index option saved there reaches pip
    only as a checked option with its value as one argument, never as more options."""
    from tox.tox_env.errors import Fail

    from envstore.plugins.tox_installer import sdist_index_options

    got = sdist_index_options(["--index-url http://127.0.0.1:9/simple --target /elsewhere"])
    assert got == ["--index-url", "http://127.0.0.1:9/simple --target /elsewhere"]
    assert sdist_index_options(["-f /wheels", "--no-index"]) == [
        "--find-links",
        "/wheels",
        "--no-index",
    ]
    with pytest.raises(Fail, match="--report"):
        sdist_index_options(["--report /clobbered"])
