"""Project environments (#21): editable installs, pyproject dependencies and groups,
``envstore sync`` in a project. Projects come from tests/projectmaker.py (an in-tree
PEP 517/660 backend); no network."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import wheelmaker
from conftest import CLI, run
from projectmaker import builds, make_project

from envstore.model.manifest import MANIFEST_VERSION, Manifest


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    """Wheels the sample projects depend on."""
    wh = tmp_path / "wheels"
    wh.mkdir()
    for name in ("dep-one", "extra-dep", "test-dep", "lint-dep", "lib-dep"):
        module = name.replace("-", "_")
        wheelmaker.build_wheel(wh, name, "1.0", files={f"{module}/__init__.py": "V = 1\n"})
    return wh


def sample(root: Path, **kw: object) -> Path:
    args: dict[str, object] = {
        "dependencies": ["dep-one"],
        "optional_dependencies": {"x": ["extra-dep"]},
        "groups": {"test": ["test-dep"], "dev": [{"include-group": "test"}, "lint-dep"]},
        "scripts": {"sample-cli": "sample:main"},
    }
    args.update(kw)
    return make_project(root, **args)  # type: ignore[arg-type]


def offline(wheels: Path, store: Path) -> list[str | os.PathLike[str]]:
    return ["--no-index", "-f", wheels, "--store", store]


def py(env: Path, code: str) -> str:
    result = run([env / "bin" / "python", "-c", code])
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_create_editable_sees_edits_and_runs_scripts(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path
) -> None:
    proj = sample(tmp_path / "proj")
    env = tmp_path / "env"
    r = cli("create", env, "-e", proj, *offline(wheels, store))
    assert r.code == 0, r.err
    assert py(env, "import sample, dep_one; print(sample.VERSION)") == "0.1"
    assert py(env, "import sample; print(sample.__file__)") == str(
        proj / "src" / "sample" / "__init__.py"
    )
    (proj / "src" / "sample" / "__init__.py").write_text(
        "VERSION = 'edited'\n\ndef main():\n    print('edited main')\n"
    )
    assert py(env, "import sample; print(sample.VERSION)") == "edited"
    script = run([env / "bin" / "sample-cli"])
    assert script.returncode == 0 and script.stdout == "edited main\n", script.stderr
    # Not in the store: the project lives in the env's own site-packages only.
    assert not list((store / "entries").glob("*/sample"))
    manifest = Manifest.load(env)
    assert [(e.name, e.version, e.path) for e in manifest.editables] == [
        ("sample", "0.1", str(proj))
    ]
    assert "sample" not in {p.name for p in manifest.packages}


def test_pip_freeze_shows_the_editable(cli: CLI, tmp_path: Path, store: Path, wheels: Path) -> None:
    proj = sample(tmp_path / "proj")
    env = tmp_path / "env"
    assert cli("create", env, "-e", proj, *offline(wheels, store)).code == 0
    freeze = run([env / "bin" / "python", "-m", "pip", "freeze"])
    assert freeze.returncode == 0, freeze.stderr
    assert f"-e {proj}" in freeze.stdout.splitlines()
    assert "dep-one==1.0" in freeze.stdout.splitlines()
    site = env / Manifest.load(env).python.purelib
    (info,) = site.glob("sample-0.1.dist-info")
    direct = json.loads((info / "direct_url.json").read_text())
    assert direct == {"url": proj.as_uri(), "dir_info": {"editable": True}}


def test_editable_wheel_is_cached_until_the_project_changes(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path
) -> None:
    proj = sample(tmp_path / "proj")
    env = tmp_path / "env"
    assert cli("create", env, "-e", proj, *offline(wheels, store)).code == 0
    assert cli("create", env, "--clear", "-e", proj, *offline(wheels, store)).code == 0
    assert builds(proj) == ["editable"]  # the second create used the cached wheel
    other = tmp_path / "other-env"
    assert cli("create", other, "-e", proj, *offline(wheels, store)).code == 0
    assert builds(proj) == ["editable"]
    # A source edit is no reason to rebuild; a changed pyproject.toml is.
    (proj / "src" / "sample" / "extra.py").write_text("X = 1\n")
    assert cli("create", env, "--clear", "-e", proj, *offline(wheels, store)).code == 0
    assert builds(proj) == ["editable"]
    pyproject = proj / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n# changed\n")
    assert cli("create", env, "--clear", "-e", proj, *offline(wheels, store)).code == 0
    assert builds(proj) == ["editable", "editable"]
    # -U rebuilds whatever the stamp says.
    assert cli("create", env, "--clear", "-U", "-e", proj, *offline(wheels, store)).code == 0
    assert builds(proj) == ["editable"] * 3


def test_editable_extras_and_two_projects(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path
) -> None:
    lib1 = sample(tmp_path / "lib1")
    lib2 = make_project(tmp_path / "lib2", "lib-two", dependencies=["lib-dep"])
    env = tmp_path / "env"
    r = cli("create", env, "-e", f"{lib1}[x]", "-e", lib2, *offline(wheels, store))
    assert r.code == 0, r.err
    assert py(env, "import sample, lib_two, dep_one, extra_dep, lib_dep; print('ok')") == "ok"
    manifest = Manifest.load(env)
    assert {(e.name, e.extras) for e in manifest.editables} == {
        ("sample", ("x",)),
        ("lib-two", ()),
    }
    # Without the extra, its dependency is not there.
    plain = tmp_path / "plain"
    assert cli("create", plain, "-e", lib1, *offline(wheels, store)).code == 0
    assert "extra-dep" not in {p.name for p in Manifest.load(plain).packages}


def test_editable_relative_path_and_show(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = sample(tmp_path / "proj")
    monkeypatch.chdir(proj)
    r = cli("create", ".venv", "-e", ".", *offline(wheels, store))
    assert r.code == 0, r.err
    shown = cli("show", ".venv")
    assert f"sample==0.1  (editable: {proj})" in shown.out


def test_not_a_project_is_refused(cli: CLI, tmp_path: Path, store: Path, wheels: Path) -> None:
    (tmp_path / "empty").mkdir()
    r = cli("create", tmp_path / "env", "-e", tmp_path / "empty", *offline(wheels, store))
    assert r.code == 1 and "is not a project directory" in r.err
    assert not (tmp_path / "env").exists()


def test_remove_sync_and_relink_keep_working_with_editables(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path
) -> None:
    proj = sample(tmp_path / "proj")
    env = tmp_path / "env"
    assert cli("create", env, "-e", proj, *offline(wheels, store)).code == 0
    # relink (here: the env moved) keeps the editable in site-packages and the manifest
    moved = tmp_path / "moved"
    env.rename(moved)
    r = cli("relink", moved, "--store", store)
    assert r.code == 0, r.err
    assert [e.name for e in Manifest.load(moved).editables] == ["sample"]
    assert py(moved, "import sample; print(sample.VERSION)") == "0.1"
    # sync with the editable keeps it; sync to plain requirements drops it
    r = cli("sync", moved, "-e", proj, "dep-one", *offline(wheels, store))
    assert r.code == 0, r.err
    assert [e.name for e in Manifest.load(moved).editables] == ["sample"]
    r = cli("sync", moved, "dep-one", *offline(wheels, store))
    assert r.code == 0, r.err
    assert Manifest.load(moved).editables == []
    assert run([moved / "bin" / "python", "-c", "import sample"]).returncode != 0
    assert cli("remove", moved, "--store", store).code == 0
    assert not moved.exists()


def test_export_refuses_editables_and_lock_names_them_editable_directories(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path
) -> None:
    proj = sample(tmp_path / "proj")
    env = tmp_path / "env"
    assert cli("create", env, "-e", proj, *offline(wheels, store)).code == 0
    r = cli("lock", env, "--store", store, "-o", "-")
    assert r.code == 0 and f'path = "{proj}"\neditable = true' in r.out, r.err
    r = cli("export", env, tmp_path / "out", "--store", store)
    assert r.code == 1 and "editable projects (sample" in r.err


def test_manifest_of_the_previous_version_is_read(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path
) -> None:
    env = tmp_path / "env"
    assert cli("create", env, "dep-one", *offline(wheels, store)).code == 0
    data = json.loads((env / "envstore.json").read_text())
    assert data["version"] == MANIFEST_VERSION == 3
    del data["editables"]
    data["version"] = 2
    old = Manifest.from_json(data, "v2")
    assert old.editables == [] and [p.name for p in old.packages] == ["dep-one", "pip"]
    assert old.to_json()["version"] == 3  # written back as this version


def test_a_crafted_editable_path_is_refused(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path
) -> None:
    proj = sample(tmp_path / "proj")
    env = tmp_path / "env"
    assert cli("create", env, "-e", proj, *offline(wheels, store)).code == 0
    data = json.loads((env / "envstore.json").read_text())
    data["editables"][0]["path"] = "relative/../x"
    (env / "envstore.json").write_text(json.dumps(data))
    r = cli("show", env)
    assert r.code == 1 and "editable path must be an absolute path" in r.err


def _bundled_setuptools() -> tuple[str, Path, Path] | None:
    """(python, its bundled setuptools >= 64 wheel, a ``wheel`` wheel) on this machine:
    setuptools < 70.1 asks for ``wheel`` to build an editable wheel."""
    import glob

    from conftest import PYTHONS

    wheel_pkgs = []
    for python in filter(None, PYTHONS.values()):
        prefix = Path(python).resolve().parent.parent
        for pattern in ("ensurepip/_bundled", "test", "test/wheeldata"):
            wheel_pkgs += glob.glob(f"{prefix}/lib/python3*/{pattern}/wheel-*-py3-none-any.whl")
    for python in filter(None, PYTHONS.values()):
        prefix = Path(python).resolve().parent.parent
        for whl in prefix.glob("lib/python3*/ensurepip/_bundled/setuptools-*.whl"):
            major = int(whl.name.split("-")[1].split(".")[0])
            if major >= 64 and wheel_pkgs:
                return python, whl, Path(sorted(wheel_pkgs)[-1])
    return None


SETUPTOOLS = _bundled_setuptools()


@pytest.mark.skipif(SETUPTOOLS is None, reason="no bundled setuptools >= 64 (and wheel) here")
def test_editable_with_setuptools_offline(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path
) -> None:
    import shutil

    assert SETUPTOOLS is not None
    python, setuptools, wheel_pkg = SETUPTOOLS
    links = tmp_path / "links"
    links.mkdir()
    for whl in (setuptools, wheel_pkg):
        shutil.copy(whl, links)
    proj = tmp_path / "sprocket"
    (proj / "src" / "sprocket").mkdir(parents=True)
    (proj / "src" / "sprocket" / "__init__.py").write_text("def spin():\n    print('spun')\n")
    (proj / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=64"]\n'
        'build-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "sprocket"\nversion = "2.0"\ndependencies = ["dep-one"]\n\n'
        '[project.scripts]\nspin = "sprocket:spin"\n'
    )
    env = tmp_path / "env"
    r = cli("create", env, "-p", python, "-e", proj, "-f", links, *offline(wheels, store))
    assert r.code == 0, r.err
    (proj / "src" / "sprocket" / "__init__.py").write_text("def spin():\n    print('edited')\n")
    spin = run([env / "bin" / "spin"])
    assert spin.returncode == 0 and spin.stdout == "edited\n", spin.stderr
    assert py(env, "import dep_one; print(dep_one.V)") == "1"
    freeze = run([env / "bin" / "python", "-m", "pip", "freeze"])
    assert f"-e {proj.as_uri()}" in freeze.stdout or f"-e {proj}" in freeze.stdout, freeze.stdout


def _names(env: Path) -> set[str]:
    return {p.name for p in Manifest.load(env).packages} - {"pip"}


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        pytest.param([], {"dep-one"}, id="dependencies"),
        pytest.param(["--extra", "x"], {"dep-one", "extra-dep"}, id="extra"),
        pytest.param(["--all-extras"], {"dep-one", "extra-dep"}, id="all-extras"),
    ],
)
def test_requirements_from_pyproject(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path, options: list[str], expected: set[str]
) -> None:
    proj = sample(tmp_path / "proj")
    env = tmp_path / "env"
    r = cli("create", env, "-r", proj / "pyproject.toml", *options, *offline(wheels, store))
    assert r.code == 0, r.err
    assert _names(env) == expected
    assert builds(proj) == []  # the project itself is not installed
    assert "dep-one" in Manifest.load(env).requirements  # recorded as plain requirements


def test_dependency_groups_with_include_group(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = sample(tmp_path / "proj")
    env = tmp_path / "env"
    r = cli("create", env, "--group", f"{proj}:dev", *offline(wheels, store))
    assert r.code == 0, r.err
    assert _names(env) == {"test-dep", "lint-dep"}
    monkeypatch.chdir(proj)  # without PATH: the current directory's project
    r = cli("create", env, "--clear", "--group", "test", *offline(wheels, store))
    assert r.code == 0, r.err
    assert _names(env) == {"test-dep"}
    r = cli("create", env, "--clear", "--group", "nope", *offline(wheels, store))
    assert r.code == 1 and "has no dependency group nope (it has: dev, test)" in r.err


def test_extra_without_pyproject_and_unknown_extra(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path
) -> None:
    proj = sample(tmp_path / "proj")
    r = cli("create", tmp_path / "e1", "dep-one", "--extra", "x", *offline(wheels, store))
    assert r.code == 1 and "need -r pyproject.toml" in r.err
    r = cli(
        "create",
        tmp_path / "e2",
        "-r",
        proj / "pyproject.toml",
        "--extra",
        "y",
        *offline(wheels, store),
    )
    assert r.code == 1 and "has no extra y (it has: x)" in r.err


def _sync(cli: CLI, wheels: Path, store: Path, *args: str | os.PathLike[str]) -> str:
    r = cli("sync", *args, *offline(wheels, store))
    assert r.code == 0, r.err
    return r.out


def test_sync_in_a_project(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = sample(tmp_path / "proj")
    (proj / "src" / "sample" / "sub").mkdir()
    monkeypatch.chdir(proj / "src" / "sample" / "sub")  # the nearest pyproject.toml above
    out = _sync(cli, wheels, store)
    venv = proj / ".venv"
    assert _names(venv) == {"dep-one", "test-dep", "lint-dep"}  # deps + dev (incl. test)
    assert [e.name for e in Manifest.load(venv).editables] == ["sample"]
    assert "sample editable" in out
    assert py(venv, "import sample, dep_one, test_dep, lint_dep; print(sample.VERSION)") == "0.1"
    # --no-dev drops the dev group and names what it removed
    out = _sync(cli, wheels, store, "--no-dev", "--extra", "x")
    assert _names(venv) == {"dep-one", "extra-dep"}
    assert " - lint-dep 1.0" in out and " - test-dep 1.0" in out and " + extra-dep 1.0" in out
    # --no-install-project: only the dependencies
    _sync(cli, wheels, store, "--no-dev", "--group", "test", "--no-install-project")
    assert _names(venv) == {"dep-one", "test-dep"}
    assert Manifest.load(venv).editables == []
    assert builds(proj) == ["editable"]  # built once, cached since


def test_sync_names_what_pip_put_there(cli: CLI, tmp_path: Path, store: Path, wheels: Path) -> None:
    proj = sample(tmp_path / "proj")
    _sync(cli, wheels, store, "--project", proj, "--no-dev")
    venv = proj / ".venv"
    pip = run(
        [
            venv / "bin" / "python",
            "-m",
            "pip",
            "install",
            "-q",
            "--no-index",
            "-f",
            wheels,
            "lib-dep",
        ]
    )
    assert pip.returncode == 0, pip.stderr
    out = _sync(cli, wheels, store, "--project", proj, "--no-dev")
    assert " - lib-dep 1.0" in out
    assert run([venv / "bin" / "python", "-c", "import lib_dep"]).returncode != 0


def test_sync_all_groups_and_another_env(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path
) -> None:
    proj = sample(tmp_path / "proj", groups={"a": ["test-dep"], "b": ["lint-dep"]})
    env = tmp_path / "elsewhere"
    _sync(cli, wheels, store, env, "--project", proj, "--all-groups")
    assert _names(env) == {"dep-one", "test-dep", "lint-dep"}
    assert not (proj / ".venv").exists()


def test_sync_a_group_naming_the_project_itself(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path
) -> None:
    proj = sample(tmp_path / "proj", groups={"dev": ["sample[x]", "test-dep"]})
    _sync(cli, wheels, store, "--project", proj)
    assert _names(proj / ".venv") == {"dep-one", "extra-dep", "test-dep"}
    assert [e.extras for e in Manifest.load(proj / ".venv").editables] == [("x",)]


def test_sync_interpreter_from_python_version_file(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path
) -> None:
    from conftest import PYTHONS

    have = [m for m, p in PYTHONS.items() if p]
    if len(have) < 2:
        pytest.skip("needs two Python versions")
    proj = sample(tmp_path / "proj")
    (proj / ".python-version").write_text(f"# pinned\n{have[0]}\n")
    _sync(cli, wheels, store, "--project", proj, "--without-pip")
    assert Manifest.load(proj / ".venv").python.minor == have[0]
    # without the file: the newest Python requires-python allows
    proj2 = sample(tmp_path / "proj2", requires_python=f"<{have[-1]}")
    _sync(cli, wheels, store, "--project", proj2, "--without-pip")
    assert Manifest.load(proj2 / ".venv").python.minor == have[-2]


def test_sync_env_reqs_keeps_its_meaning(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path
) -> None:
    env = tmp_path / "env"
    _sync(cli, wheels, store, env, "dep-one")
    assert _names(env) == {"dep-one"}


def test_sync_no_editable_installs_the_project_into_the_store(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path
) -> None:
    proj = sample(tmp_path / "proj")
    _sync(cli, wheels, store, "--project", proj, "--no-dev", "--no-editable")
    venv = proj / ".venv"
    assert Manifest.load(venv).editables == []
    assert "sample" in _names(venv)
    assert list((store / "entries").glob("*/sample"))
    assert py(venv, "import sample; print(sample.__file__)").startswith(str(store))


def test_sync_outside_a_project(
    cli: CLI, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    r = cli("sync", "--store", store)
    assert r.code == 1 and f"no pyproject.toml in {tmp_path} or any directory above" in r.err


def test_sync_env_alone_is_still_a_mistake_inside_a_project(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = sample(tmp_path / "proj")
    env = tmp_path / "env"
    _sync(cli, wheels, store, env, "dep-one")
    monkeypatch.chdir(proj)
    r = cli("sync", env, *offline(wheels, store))  # ENV, no REQ, no --project
    assert r.code == 1 and "nothing to sync" in r.err
    assert _names(env) == {"dep-one"} and not (proj / ".venv").exists()


def test_requires_python_takes_a_development_build() -> None:
    """A development build's version (3.14.0a1+) is no PEP 440 version: project sync
    and PEP 723 scripts, which share the rule, take it as 3.14.0a1."""
    from envstore.python.requires_python import fits_requires_python

    assert fits_requires_python(">=3.13", "3.14.0a1+")
    assert not fits_requires_python("<3.14", "3.14.0a1+")
