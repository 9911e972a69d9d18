"""``envstore install`` and ``uninstall`` (#22): adding, upgrading and removing
packages of an existing env, with and without an editable project. Wheels from
tests/wheelmaker.py, projects from tests/projectmaker.py; no network."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import wheelmaker
from conftest import CLI, entries, run
from projectmaker import builds, make_project

import envstore


def _wheel(wh: Path, name: str, version: str, requires: list[str] | None = None) -> None:
    module = name.replace("-", "_")
    wheelmaker.build_wheel(
        wh,
        name,
        version,
        files={f"{module}/__init__.py": f"VERSION = {version!r}\n"},
        requires=requires or [],
        entry_points={"console_scripts": {f"{name}-cli": f"{module}:VERSION"}},
    )


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    wh = tmp_path / "wheels"
    wh.mkdir()
    _wheel(wh, "alpha", "1.0")
    _wheel(wh, "beta", "1.0", ["alpha"])
    return wh


def _manifest(env: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((env / "envstore.json").read_text())
    return data


def _versions(env: Path) -> dict[str, str]:
    return {p["name"]: p["version"] for p in _manifest(env)["packages"]}  # type: ignore[attr-defined]


def _requested(env: Path) -> set[str]:
    return {p["name"] for p in _manifest(env)["packages"] if p["requested"]}  # type: ignore[attr-defined]


def _imports(env: Path, code: str) -> str:
    done = run([env / "bin" / "python", "-c", code])
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_install_keeps_what_is_there_unless_it_must_change(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path
) -> None:
    env = tmp_path / "env"
    r = cli("create", env, "beta", "--no-index", "-f", wheels, "--store", store)
    assert r.code == 0, r.err
    _wheel(wheels, "alpha", "2.0")  # newer, but alpha 1.0 is installed and enough
    _wheel(wheels, "delta", "1.0")
    # No source options: where the env's wheels came from (its recorded -f, --no-index).
    r = cli("install", env, "delta")
    assert r.code == 0, r.err
    assert " + delta 1.0" in r.out, r.out
    assert _versions(env) == {
        "alpha": "1.0",
        "beta": "1.0",
        "delta": "1.0",
        "pip": _versions(env)["pip"],
    }
    assert _manifest(env)["requirements"] == ["beta", "delta"]
    assert _requested(env) == {"beta", "delta"}
    assert (env / "bin" / "delta-cli").exists()
    assert _imports(env, "import alpha, delta; print(alpha.VERSION)") == "1.0"
    # A new requirement that needs a newer alpha: only alpha changes.
    _wheel(wheels, "gamma", "1.0", ["alpha>=2"])
    r = cli("install", env, "gamma")
    assert r.code == 0, r.err
    assert " - alpha 1.0" in r.out and " + alpha 2.0" in r.out, r.out
    assert _versions(env)["alpha"] == "2.0" and _versions(env)["delta"] == "1.0"
    assert _requested(env) == {"beta", "delta", "gamma"}
    # Named but satisfied: kept (pip's "Requirement already satisfied"); -U upgrades.
    _wheel(wheels, "alpha", "3.0")
    assert cli("install", env, "alpha").code == 0
    assert _versions(env)["alpha"] == "2.0"
    assert "alpha" in _requested(env)
    r = cli("install", env, "-U", "alpha")
    assert r.code == 0, r.err
    assert _versions(env)["alpha"] == "3.0"
    # A requirement naming a project the env asks for replaces it.
    assert cli("install", env, "delta==1.0").code == 0
    assert _manifest(env)["requirements"] == ["beta", "gamma", "alpha", "delta==1.0"]
    # What cannot be had leaves the env as it was.
    before = (env / "envstore.json").read_text()
    r = cli("install", env, "alpha<2")
    assert r.code == 1 and r.err.startswith("envstore: error:"), r.err
    assert "Traceback" not in r.err
    assert (env / "envstore.json").read_text() == before


def test_uninstall_removes_packages_and_releases_their_entries(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path
) -> None:
    _wheel(wheels, "delta", "1.0")
    env = tmp_path / "env"
    r = cli("create", env, "beta", "delta", "--no-index", "-f", wheels, "--store", store)
    assert r.code == 0, r.err
    r = cli("uninstall", env, "Delta", "nothere")
    assert r.code == 1 and r.err.count("\n") == 1 and "nothere" in r.err, r.err
    assert "delta" in _versions(env)  # nothing was changed
    r = cli("uninstall", env, "Delta")
    assert r.code == 0, r.err
    assert " - delta 1.0" in r.out, r.out
    assert "delta" not in _versions(env)
    assert _manifest(env)["requirements"] == ["beta"]
    assert not (env / "bin" / "delta-cli").exists()
    # Like pip: a dependency goes when named, its dependents stay, with a warning.
    r = cli("uninstall", env, "alpha")
    assert r.code == 0, r.err
    assert "warning: beta 1.0 requires alpha" in r.err, r.err
    assert set(_versions(env)) == {"beta", "pip"}
    assert _requested(env) == {"beta"}
    assert _imports(env, "import beta; print(beta.VERSION)") == "1.0"
    # The store lets go of what no env uses any more.
    assert cli("--store", store, "gc", "--grace", "0").code == 0
    left = entries(store)
    assert not any("/alpha/" in e or "/delta/" in e for e in left), left
    assert any("/beta/" in e for e in left), left
    # pip removed: the env then has none.
    assert cli("uninstall", env, "pip").code == 0
    assert not (env / "bin" / "pip").exists()
    assert set(_versions(env)) == {"beta"}


def test_install_and_uninstall_keep_the_editable_project(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path
) -> None:
    _wheel(wheels, "delta", "1.0")
    proj = make_project(
        tmp_path / "proj", dependencies=["alpha"], scripts={"sample-cli": "sample:main"}
    )
    env = tmp_path / "env"
    r = cli("create", env, "-e", proj, "--no-index", "-f", wheels, "--store", store)
    assert r.code == 0, r.err
    assert builds(proj) == ["editable"]
    r = cli("install", env, "delta", "beta")
    assert r.code == 0, r.err
    assert "sample editable" in r.out, r.out
    assert builds(proj) == ["editable"]  # the cached editable wheel, not a new build
    editables = _manifest(env)["editables"]
    assert [e["name"] for e in editables] == ["sample"], editables  # type: ignore[index]
    assert (env / "bin" / "sample-cli").exists()
    (proj / "src" / "sample" / "__init__.py").write_text("VERSION = 'edited'\n")
    assert _imports(env, "import sample, delta; print(sample.VERSION)") == "edited"
    r = cli("uninstall", env, "delta")
    assert r.code == 0, r.err
    assert _imports(env, "import sample; print(sample.VERSION)") == "edited"
    # The editable project itself: its dependency stays, as pip would leave it.
    r = cli("uninstall", env, "sample")
    assert r.code == 0, r.err
    assert _manifest(env)["editables"] == []
    assert not (env / "bin" / "sample-cli").exists()
    assert {"alpha", "beta"} <= set(_versions(env))
    # And back, by install -e.
    r = cli("install", env, "-e", proj)
    assert r.code == 0, r.err
    assert _imports(env, "import sample; print(sample.VERSION)") == "edited"


def test_library_api_and_refusals(tmp_path: Path, store: Path, wheels: Path) -> None:
    env = tmp_path / "env"
    envstore.create_env(env, ["alpha"], store=store, no_index=True, find_links=[str(wheels)])
    done = envstore.install_packages(env, ["beta"])
    assert done.added == ["beta 1.0"] and done.removed == []
    assert {p.name for p in done.manifest.packages} >= {"alpha", "beta"}
    done = envstore.uninstall_packages(env, ["beta"])
    assert done.removed == ["beta 1.0"] and done.warnings == []
    with pytest.raises(envstore.EnvError, match="nothing to install"):
        envstore.install_packages(env, [])
    with pytest.raises(envstore.EnvError, match="not an envstore environment"):
        envstore.install_packages(tmp_path / "nothing", ["beta"])
    # A manifest changed since envstore wrote it names nothing envstore fetches or builds.
    path = env / "envstore.json"
    path.write_text(path.read_text() + "\n")
    with pytest.raises(envstore.EnvError, match="not the one envstore registered"):
        envstore.install_packages(env, ["beta"])
    with pytest.raises(envstore.EnvError, match="not the one envstore registered"):
        envstore.uninstall_packages(env, ["alpha"])


def test_the_manifest_checked_is_the_manifest_used(
    tmp_path: Path, store: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A manifest swapped between two reads (crafted while parsed, the registered text
    back when its digest is checked) is refused: the digest is of the text parsed."""
    from envstore.model.manifest import Manifest

    env = tmp_path / "env"
    envstore.create_env(env, ["alpha"], store=store, no_index=True, find_links=[str(wheels)])
    registered = (env / "envstore.json").read_text()
    data = json.loads(registered)
    data["sources"] = {"find_links": [str(tmp_path / "crafted")], "no_index": True}
    crafted = json.dumps(data)
    load = Manifest.load

    def swapped(path: Path) -> Manifest:
        manifest = Manifest.from_json(json.loads(crafted), str(path))
        manifest.text = crafted
        assert (env / "envstore.json").read_text() == registered  # disk says "registered"
        return manifest if Path(path) in (env, env / "envstore.json") else load(path)

    monkeypatch.setattr(Manifest, "load", staticmethod(swapped))
    with pytest.raises(envstore.EnvError, match="not the one envstore registered"):
        envstore.install_packages(env, ["beta"])


def test_a_project_given_by_relative_path_is_resolved_again_from_anywhere(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = make_project(tmp_path / "proj", dependencies=["alpha"])
    monkeypatch.chdir(tmp_path)
    r = cli("create", "env", "./proj", "--no-index", "-f", wheels, "--store", store)
    assert r.code == 0, r.err
    env = tmp_path / "env"
    assert _manifest(env)["requirements"] == [str(proj)]  # recorded absolute
    built = builds(proj)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    r = cli("install", env, "beta")
    assert r.code == 0, r.err
    assert builds(proj) == built  # the entry built before, not a new build
    assert {"sample", "alpha", "beta"} <= set(_versions(env))


def test_changes_of_one_env_take_turns(
    tmp_path: Path, store: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    from envstore.store.locks import file_lock

    env = tmp_path / "env"
    envstore.create_env(env, ["alpha"], store=store, no_index=True, find_links=[str(wheels)])
    turn = hashlib.sha256(str(env).encode()).hexdigest()[:32]
    monkeypatch.setenv("ENVSTORE_LOCK_TIMEOUT", "0")
    with file_lock(store / "locks" / f"change-{turn}.lock"):
        with pytest.raises(envstore.LockTimeoutError):
            envstore.install_packages(env, ["beta"])
