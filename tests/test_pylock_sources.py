"""``envstore lock ENV`` of packages built from source (#24): the sdist, VCS commit or
project directory an env's requirements name is written as PEP 751 names it, and the
env's editable projects as editable ``directory`` packages; ``--from`` the lock
builds the same set again."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import wheelmaker
from conftest import CLI, run
from packaging.pylock import Pylock

from envstore.model.manifest import Manifest

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


def test_packages_built_from_source_are_locked_as_their_source(
    cli: CLI, tmp_path: Path, store: Path
) -> None:
    from projectmaker import make_project

    wh = tmp_path / "wh"
    wheelmaker.build_wheel(wh, "dep", "1.0")
    make_project(tmp_path / "srcpkg", "srcpkg")
    (tmp_path / "dist").mkdir()
    made = run([sys.executable, "-c", "import sys; sys.path.insert(0, '_backend');"
                " import envstore_test_backend as b; b.build_sdist('../dist')"],
               cwd=tmp_path / "srcpkg")  # fmt: skip
    assert made.returncode == 0, made.stderr
    sdist = tmp_path / "dist" / "srcpkg-0.1.tar.gz"
    dirpkg = make_project(tmp_path / "dirpkg", "dirpkg", dependencies=["dep"])
    editpkg = make_project(tmp_path / "editpkg", "editpkg")
    repo = make_project(tmp_path / "vcsrepo", "vcspkg")
    git = ["git", "-C", repo, "-c", "user.name=t", "-c", "user.email=t@t"]
    for step in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "v"]):
        assert run([*git, *step]).returncode == 0
    commit = run([*git, "rev-parse", "HEAD"]).stdout.strip()
    env = tmp_path / "env"
    res = cli("--store", store, "create", env, sdist, dirpkg, f"vcspkg @ git+file://localhost{repo}@{commit}",
              "-e", editpkg, "--no-index", "-f", wh, "--without-pip")  # fmt: skip
    assert res.code == 0, res.err

    lock = tmp_path / "pylock.toml"
    res = cli("--store", store, "lock", env, "-o", lock)
    assert res.code == 0, res.err
    data = tomllib.loads(lock.read_text())
    Pylock.from_dict(data).validate()
    packages = {p["name"]: p for p in data["packages"]}
    assert packages["srcpkg"]["sdist"] == {
        "name": "srcpkg-0.1.tar.gz",
        "path": "dist/srcpkg-0.1.tar.gz",
        "hashes": {"sha256": hashlib.sha256(sdist.read_bytes()).hexdigest()},
    }
    assert packages["vcspkg"]["vcs"] == {
        "type": "git",
        "url": f"file://localhost{repo}",
        "commit-id": commit,
    }
    assert packages["dirpkg"]["directory"] == {"path": "dirpkg", "editable": False}
    assert packages["editpkg"]["directory"] == {"path": "editpkg", "editable": True}
    assert "wheels" in packages["dep"]

    again = tmp_path / "again"
    res = cli("--store", tmp_path / "fresh", "create", again, "--from", lock, "--no-index")
    assert res.code == 0, res.err
    want = {(p.name, p.version) for p in Manifest.load(env).packages}
    assert {(p.name, p.version) for p in Manifest.load(again).packages} == want
    assert [e.name for e in Manifest.load(again).editables] == ["editpkg"]
