"""What happens to an env's editable projects after it is made (#21): gc of the
editable-wheel cache, doctor on a project gone or changed, a moved env's scripts.
Projects come from tests/projectmaker.py; no network."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest
import wheelmaker
from conftest import CLI, run
from projectmaker import builds, make_project


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    wh = tmp_path / "wheels"
    wh.mkdir()
    wheelmaker.build_wheel(wh, "dep-one", "1.0", files={"dep_one/__init__.py": "V = 1\n"})
    return wh


def _project(root: Path) -> Path:
    return make_project(root, dependencies=["dep-one"], scripts={"sample-cli": "sample:main"})


def _create(cli: CLI, store: Path, env: Path, wheels: Path, *args: str | Path) -> None:
    r = cli("create", env, *args, "--no-index", "-f", wheels, "--store", store)
    assert r.code == 0, r.err


def _cached(store: Path) -> list[str]:
    base = store / "editables"
    return sorted(p.name for p in base.iterdir()) if base.is_dir() else []


def test_gc_collects_editable_wheels_no_env_lists(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path
) -> None:
    proj, other = _project(tmp_path / "proj"), _project(tmp_path / "other")
    env, env2 = tmp_path / "env", tmp_path / "env2"
    _create(cli, store, env, wheels, "-e", proj)
    _create(cli, store, env2, wheels, "-e", other)
    assert len(_cached(store)) == 2
    assert cli("--store", store, "gc", "--grace", "0").code == 0
    assert len(_cached(store)) == 2  # both listed by live envs
    # Gone (maybe moved): kept for the grace period, as its entries are.
    shutil.rmtree(env)
    assert cli("--store", store, "gc").code == 0
    assert len(_cached(store)) == 2
    dry = cli("--store", store, "gc", "--grace", "0", "--dry-run")
    assert dry.code == 0, dry.err
    assert "would remove editable" in dry.out and "sample-0.1" in dry.out, dry.out
    assert len(_cached(store)) == 2
    res = cli("--store", store, "gc", "--grace", "0")
    assert res.code == 0 and "removed editable" in res.out, res.out
    assert len(_cached(store)) == 1
    # The survivor is the one env2 lists: env2 still re-creates without a build.
    _create(cli, store, env2, wheels, "--clear", "-e", other)
    assert builds(other) == ["editable"]
    # An env removed at once leaves a young wheel: kept for the grace period, then gone.
    assert cli("remove", env2, "--store", store).code == 0
    assert cli("--store", store, "gc").code == 0
    assert len(_cached(store)) == 1
    assert cli("--store", store, "gc", "--grace", "0").code == 0
    assert _cached(store) == []


def test_gc_keeps_editable_wheels_when_a_manifest_is_unreadable(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path
) -> None:
    proj = _project(tmp_path / "proj")
    env, bad = tmp_path / "env", tmp_path / "bad"
    _create(cli, store, env, wheels, "-e", proj)
    _create(cli, store, bad, wheels, "dep-one")
    shutil.rmtree(env)
    (bad / "envstore.json").write_text('{"version": 3, "packages": [')  # truncated
    res = cli("--store", store, "gc", "--grace", "0")
    assert res.code == 1 and str(bad) in res.err
    assert len(_cached(store)) == 1  # the unreadable env might list the project


def test_gc_removes_a_stray_file_in_editables_and_keeps_links_out(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path
) -> None:
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "keep").write_text("x")
    (store / "editables").mkdir(exist_ok=True)
    (store / "editables" / "stray").write_text("x")
    (store / "editables" / "link").symlink_to(canary)
    assert cli("--store", store, "gc", "--grace", "0").code == 0
    assert _cached(store) == []
    assert (canary / "keep").read_text() == "x"


def test_doctor_on_a_project_gone_or_changed(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path
) -> None:
    proj, lib = _project(tmp_path / "proj"), make_project(tmp_path / "lib", "lib-two")
    env = tmp_path / "env"
    _create(cli, store, env, wheels, "-e", proj, "-e", lib)
    ok = cli("doctor", env, "--store", store, "--json")
    assert ok.code == 0 and json.loads(ok.out)[0]["problems"] == [], ok.out
    # Changed where the stamp looks: a note, and the command that rebuilds it.
    (proj / "pyproject.toml").write_text((proj / "pyproject.toml").read_text() + "# x\n")
    (lib / "src" / "lib_two" / "more.py").write_text("X = 1\n")  # a source edit: nothing
    r = cli("doctor", env, "--store", store, "--json")
    assert r.code == 0, r.out
    [changed] = json.loads(r.out)[0]["problems"]
    assert changed["code"] == "editable-changed" and changed["severity"] == "note"
    assert str(proj) in changed["message"] and "envstore sync" in changed["detail"]
    assert changed["fix"].startswith(f"envstore create {env} --clear")
    assert cli(*shlex.split(changed["fix"])[1:], "--store", store).code == 0
    assert builds(proj) == ["editable", "editable"]
    assert cli("doctor", env, "--store", store, "--json").out.count('"code"') == 0
    # Gone: broken, and a fix that re-creates the env without it.
    shutil.rmtree(lib)
    r = cli("doctor", env, "--store", store, "--json")
    assert r.code == 1
    [gone] = json.loads(r.out)[0]["problems"]
    assert gone["code"] == "editable-missing" and gone["severity"] == "broken"
    assert str(lib) in gone["message"] and str(lib) not in gone["fix"]
    assert f"-e {proj}" in gone["fix"] and "--clear" in gone["fix"]
    assert cli(*shlex.split(gone["fix"])[1:], "--store", store).code == 0
    assert cli("doctor", env, "--store", store).code == 0


def test_doctor_reads_no_fifo_of_a_project(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path
) -> None:
    """The project's key files are read only when regular: a FIFO planted as setup.cfg
    (the path comes from the manifest) counts as no file, not a read that never ends."""
    import os
    import subprocess

    from conftest import envstore_cmd

    proj = _project(tmp_path / "proj")
    env = tmp_path / "env"
    _create(cli, store, env, wheels, "-e", proj)
    os.mkfifo(proj / "setup.cfg")
    try:
        r = run([*envstore_cmd(), "doctor", env, "--store", store, "--json"], timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("doctor waited on a FIFO")
    assert r.returncode == 0 and json.loads(r.stdout)[0]["problems"] == [], r.stdout + r.stderr


def test_doctor_suggests_sync_for_a_projects_own_venv(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = _project(tmp_path / "proj")
    monkeypatch.chdir(proj)
    r = cli("sync", "--no-index", "-f", wheels, "--store", store)
    assert r.code == 0, r.err
    (proj / "pyproject.toml").write_text((proj / "pyproject.toml").read_text() + "# x\n")
    [changed] = json.loads(cli("doctor", ".venv", "--store", store, "--json").out)[0]["problems"]
    assert changed["fix"] == f"envstore sync --project {proj}"


def test_moved_env_keeps_working_editable_scripts(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path
) -> None:
    proj = _project(tmp_path / "proj")
    env = tmp_path / "env"
    _create(cli, store, env, wheels, "-e", proj)
    moved = tmp_path / "moved"
    env.rename(moved)
    r = cli("relink", moved, "--store", store)
    assert r.code == 0, r.err
    script = moved / "bin" / "sample-cli"
    assert script.read_text().splitlines()[0] == f"#!{moved}/bin/python"
    done = run([script])
    assert done.returncode == 0, done.stderr
