"""PEP 751 ``pylock.toml``: what ``envstore lock`` writes, what ``--from`` reads (#24)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import os
import shutil
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w
import wheelmaker
from conftest import CLI, entries, run
from packaging.pylock import Pylock

from envstore.model.manifest import Manifest

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


def _set(env: Path) -> set[tuple[str, str]]:
    data = json.loads((env / "envstore.json").read_text())
    return {(p["name"], p["version"]) for p in data["packages"]}


@pytest.fixture
def locked(cli: CLI, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An env of two wheels from a local directory, locked into ./pylock.toml."""
    wh = tmp_path / "wh"
    wheelmaker.build_wheel(wh, "alpha", "1.0", requires=["beta>=2"])
    wheelmaker.build_wheel(wh, "beta", "2.1")
    env = tmp_path / "env"
    made = cli("--store", store, "create", env, "alpha", "--without-pip", "--no-index", "-f", wh)
    assert made.code == 0, made.err
    monkeypatch.chdir(tmp_path)
    res = cli("--store", store, "lock", env)  # default: pylock.toml, as PEP 751 names it
    assert res.code == 0, res.err
    return tmp_path / "pylock.toml"


def test_lock_is_valid_pylock_and_rebuilds_the_same_set(
    cli: CLI, tmp_path: Path, store: Path, locked: Path
) -> None:
    data = tomllib.loads(locked.read_text())
    lock = Pylock.from_dict(data)
    assert lock.created_by == "envstore" and str(lock.requires_python).startswith("==3.")
    (environment,) = data["environments"]
    assert "sys_platform" in environment and "platform_machine" in environment
    wheels = {p["name"]: p["wheels"] for p in data["packages"]}
    name = "alpha-1.0-py3-none-any.whl"
    assert wheels["alpha"] == [
        {
            "name": name,
            "path": "wh/alpha-1.0-py3-none-any.whl",  # relative to the lock
            "hashes": {"sha256": hashlib.sha256((tmp_path / "wh" / name).read_bytes()).hexdigest()},
        }
    ]
    assert data["tool"]["envstore"]["requested"] == ["alpha"]

    fresh, again = tmp_path / "fresh-store", tmp_path / "again"
    res = cli("--store", fresh, "create", again, "--from", locked, "--offline")
    assert res.code == 0, res.err
    assert _set(again) == _set(tmp_path / "env") == {("alpha", "1.0"), ("beta", "2.1")}

    # Installers know a lock by its name: -o says so before anything is written.
    bad = cli("--store", store, "lock", tmp_path / "env", "-o", tmp_path / "env.lock")
    assert bad.code == 1 and "pylock.NAME.toml" in bad.err and not (tmp_path / "env.lock").exists()


def test_a_wheel_whose_file_is_unknown_is_named_with_the_fix(
    cli: CLI, tmp_path: Path, store: Path, locked: Path
) -> None:
    (tmp_path / "wh").rename(tmp_path / "moved")
    res = cli("--store", store, "lock", tmp_path / "env", "-o", "-")
    assert res.code == 1
    assert "alpha-1.0-py3-none-any.whl, beta-2.1-py3-none-any.whl" in res.err
    assert "-f DIR" in res.err and len(res.err.strip().splitlines()) == 1
    res = cli("--store", store, "lock", tmp_path / "env", "-o", "-", "-f", tmp_path / "moved")
    assert res.code == 0 and str(tmp_path / "moved" / "beta-2.1-py3-none-any.whl") in res.out


def _edited(lock: Path, change: Any) -> Path:
    data = tomllib.loads(lock.read_text())
    change(data)
    out = lock.parent / "pylock.edited.toml"
    out.write_text(tomli_w.dumps(data))
    return out


def _tamper(data: dict[str, Any]) -> None:
    data["packages"][1]["wheels"][0]["hashes"]["sha256"] = "0" * 64


def _elsewhere(data: dict[str, Any]) -> None:
    data["environments"] = ["sys_platform == 'win32' and platform_machine == 'ARM64'"]


def _version_2(data: dict[str, Any]) -> None:
    data["lock-version"] = "2.0"


@pytest.mark.parametrize(
    "option",
    [["--project", "."], ["-p", sys.executable], ["-i", "https://x.invalid/simple"],
     ["--offline"], ["--no-index"], ["--remote", "file:///nowhere"], ["--push"],
     ["-r", "requirements.txt"]],
)  # fmt: skip
def test_lock_env_refuses_the_options_of_a_project_lock(
    cli: CLI, tmp_path: Path, store: Path, locked: Path, option: list[str]
) -> None:
    """``lock ENV`` reads the manifest and the store: what it would ignore is refused."""
    res = cli("--store", store, "lock", tmp_path / "env", "-o", "-", *option)
    assert res.code == 1 and "only apply to a project's lock" in res.err and not res.out
    assert {"-p": "--python", "-i": "--index-url", "-r": "--requirement"}.get(
        option[0], option[0]
    ) in res.err
    assert len(res.err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (_tamper, "beta 2.1 (beta-2.1-py3-none-any.whl): hash mismatch"),
        (_elsewhere, "not for this Python"),
        (_version_2, "lock-version '2.0' is not supported"),
    ],
)
def test_a_bad_lock_fails_clearly_and_writes_nothing(
    cli: CLI, tmp_path: Path, locked: Path, change: Any, says: str
) -> None:
    fresh, env = tmp_path / "fresh-store", tmp_path / "new"
    res = cli("--store", fresh, "sync", env, "--from", _edited(locked, change), "--offline")
    assert res.code == 1 and says in res.err and "Traceback" not in res.err
    assert not env.exists() and entries(fresh) == []


def test_a_lock_is_never_written_through_a_planted_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cloned project may hold links where the lock's temporary file would go: saving
    makes the file new (O_EXCL, O_NOFOLLOW) under an unguessable name, or fails."""
    from envstore.model.lock import Lock

    victim = tmp_path / "victim.txt"
    victim.write_text("user data\n")
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / f".pylock.toml.{os.getpid()}.tmp").symlink_to(victim)  # the name it had
    Lock(python=None, packages=[]).save(proj / "pylock.toml")
    assert victim.read_text() == "user data\n"
    assert (
        not (proj / "pylock.toml").is_symlink()
        and "lock-version" in (proj / "pylock.toml").read_text()
    )

    monkeypatch.setattr(os, "urandom", lambda n: b"\0" * n)  # a name guessed after all
    (proj / f".pylock.toml.{os.getpid()}.{'00' * 8}.tmp").symlink_to(victim)
    with pytest.raises(FileExistsError):
        Lock(python=None, packages=[]).save(proj / "pylock.toml")
    assert victim.read_text() == "user data\n"


def test_an_old_json_lock_is_refused_with_how_to_relock(cli: CLI, tmp_path: Path) -> None:
    old = tmp_path / "env.lock"
    old.write_text(json.dumps({"lock-version": 1, "created-by": "envstore 0.1.0"}))
    res = cli("create", tmp_path / "env", "--from", old)
    assert res.code == 1 and not (tmp_path / "env").exists()
    assert "JSON lock, which envstore no longer reads" in res.err and "envstore lock ENV" in res.err


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def _served(directory: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``directory`` over http on 127.0.0.1 (its listings serve as a PEP 503 index)."""
    for var in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    handler = functools.partial(_Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_wheels_at_an_http_url_are_downloaded_with_their_hashes(
    cli: CLI, tmp_path: Path, locked: Path, _template_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = tmp_path / "served"
    (tmp_path / "wh").rename(served)
    fresh = tmp_path / "fresh-store"  # has pip (to download with), none of the packages
    shutil.copytree(_template_store, fresh, symlinks=True)
    with _served(served, monkeypatch) as base:

        def to_urls(data: dict[str, Any]) -> None:
            for p in data["packages"]:
                p["index"] = "https://attacker.invalid/simple"
                wheel = p["wheels"][0]
                wheel["url"] = base + wheel.pop("path").rsplit("/", 1)[1]

        res = cli("--store", fresh, "create", tmp_path / "new", "--from",
                  _edited(locked, to_urls), "--no-index")  # fmt: skip
    assert res.code == 0, res.err
    assert _set(tmp_path / "new") == {("alpha", "1.0"), ("beta", "2.1")}
    # The lock is untrusted: what it says of an index is not recorded in the shared
    # store (entry.json), whence every later lock of these wheels would name it.
    recorded = [json.loads(e.read_text()) for e in (fresh / "entries").glob("*/*/*/entry.json")]
    assert len(recorded) >= 2 and not any("attacker" in str(e.get("index")) for e in recorded)


def test_a_wheel_not_at_its_path_is_fetched_from_its_index(
    cli: CLI, tmp_path: Path, locked: Path, _template_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PEP 751 ``index`` with no ``url`` (and a ``path`` not here: a lock made on
    another machine): pip looks there (its hash checked)."""
    served = tmp_path / "served"
    (served / "simple").mkdir(parents=True)
    for name in ("alpha", "beta"):
        (served / "simple" / name).mkdir()
        for wheel in (tmp_path / "wh").glob(f"{name}-*.whl"):
            shutil.copy(wheel, served / "simple" / name)
    shutil.rmtree(tmp_path / "wh")
    fresh = tmp_path / "fresh-store"
    shutil.copytree(_template_store, fresh, symlinks=True)
    with _served(served, monkeypatch) as base:

        def to_index(data: dict[str, Any]) -> None:
            for p in data["packages"]:
                p["index"] = base + "simple/"

        res = cli("--store", fresh, "create", tmp_path / "new", "--from",
                  _edited(locked, to_index))  # fmt: skip
    assert res.code == 0, res.err
    assert _set(tmp_path / "new") == {("alpha", "1.0"), ("beta", "2.1")}


def test_a_wheel_from_another_index_than_pypi_records_no_url(
    cli: CLI, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only PyPI's URLs are recorded at ingest (entry.json layout 2) and written into
    locks: another index's may hold a token in their path (Gemfury's
    ``https://pypi.fury.io/TOKEN/acct/``); the lock then says how to name a directory."""
    served = tmp_path / "served"
    wheelmaker.build_wheel(served / "TOKEN" / "simple" / "alpha", "alpha", "1.0")
    env = tmp_path / "env"
    with _served(served, monkeypatch) as base:
        made = cli("--store", store, "create", env, "alpha", "--without-pip",
                   "--index-url", base + "TOKEN/simple/")  # fmt: skip
        assert made.code == 0, made.err
    (entry,) = (store / "entries").glob("pure/alpha/*/entry.json")
    assert "TOKEN" not in entry.read_text()
    res = cli("--store", store, "lock", env, "-o", "-")
    assert res.code == 1 and "TOKEN" not in res.out + res.err and "-f DIR" in res.err


_HOSTED = "https://files.pythonhosted.org/p/a-1.0-py3-none-any.whl"


@pytest.mark.parametrize(
    ("url", "index", "recorded"),
    [
        ("https://files.pythonhosted.org/packages/ab/cd/a-1.0-py3-none-any.whl", None, True),
        (_HOSTED, "https://pypi.org/simple/", True),
        (_HOSTED, "https://pypi.fury.io/T/a/", False),
        ("https://pypi.fury.io/TOKEN/acct/-/ver_1/a-1.0-py3-none-any.whl", None, False),
        ("https://files.pythonhosted.org/p/b-1.0-py3-none-any.whl", None, False),  # another file
        ("http://files.pythonhosted.org/p/a-1.0-py3-none-any.whl", None, False),
    ],
)  # fmt: skip
def test_only_pypi_download_urls_are_recorded(url: str, index: str | None, recorded: bool) -> None:
    from envstore.model.sources import PackageSources
    from envstore.resolve.pip import wheel_url

    got = wheel_url(url, "a-1.0-py3-none-any.whl", PackageSources(index_url=index))
    assert got == ((url, "https://pypi.org/simple") if recorded else None)


def test_entries_stored_before_urls_were_recorded_are_named_with_the_fix(
    cli: CLI, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store made by the previous version (entry.json layout 1: no url, no index):
    its entries still read and verify; a lock names the wheels it cannot place, with
    the way to fix it, and ``-f DIR`` fixes it."""
    from envstore.model.records import EntryRecord

    new = EntryRecord.to_json

    def layout_1(self: EntryRecord) -> dict[str, object]:
        data = {k: v for k, v in new(self).items() if k not in ("url", "index")}
        return {**data, "layout": 1}

    wh = tmp_path / "wh"
    wheelmaker.build_wheel(wh, "alpha", "1.0")
    env = tmp_path / "env"
    with monkeypatch.context() as m:
        m.setattr(EntryRecord, "to_json", layout_1)
        made = cli(
            "--store", store, "create", env, "alpha", "--without-pip", "--no-index", "-f", wh
        )
    assert made.code == 0, made.err
    (entry,) = (store / "entries").glob("pure/alpha/*/entry.json")
    assert json.loads(entry.read_text())["layout"] == 1
    assert cli("--store", store, "verify", "--check-contents").code == 0
    (tmp_path / "wh").rename(tmp_path / "moved")
    res = cli("--store", store, "lock", env, "-o", "-")
    assert res.code == 1 and "alpha-1.0-py3-none-any.whl" in res.err
    assert "pip download --no-deps --only-binary=:all: -d DIR alpha==1.0" in res.err
    res = cli("--store", store, "lock", env, "-o", "-", "-f", tmp_path / "moved")
    assert res.code == 0, res.err


def test_round_trips_with_uv(cli: CLI, tmp_path: Path, store: Path, locked: Path) -> None:
    """uv installs envstore's lock; envstore creates from uv's (file: URLs), offline."""
    uv = [sys.executable, "-m", "uv"]
    env = {"UV_CACHE_DIR": str(tmp_path / "uv-cache"), "UV_OFFLINE": "1"}
    plain = tmp_path / "plain"
    assert run([sys.executable, "-m", "venv", "--without-pip", plain]).returncode == 0
    made = run([*uv, "pip", "install", "--python", plain / "bin" / "python", "-r", locked],
               extra_env=env)  # fmt: skip
    assert made.returncode == 0, made.stderr
    freeze = run([*uv, "pip", "freeze", "--python", plain / "bin" / "python"], extra_env=env)
    assert set(freeze.stdout.split()) == {"alpha==1.0", "beta==2.1"}

    (tmp_path / "req.in").write_text("alpha\n")
    theirs = tmp_path / "pylock.uv.toml"
    compiled = run([*uv, "pip", "compile", tmp_path / "req.in", "--format", "pylock.toml",
                    "-o", theirs, "--no-index", "--find-links", tmp_path / "wh",
                    "--python", sys.executable], extra_env=env)  # fmt: skip
    assert compiled.returncode == 0, compiled.stderr
    res = cli("--store", store, "create", tmp_path / "from-uv", "--from", theirs, "--offline")
    assert res.code == 0, res.err
    assert _set(tmp_path / "from-uv") == {("alpha", "1.0"), ("beta", "2.1")}


def test_round_trips_with_pip(cli: CLI, tmp_path: Path, store: Path, locked: Path) -> None:
    """pip's reader (-r pylock.toml) installs envstore's lock into a plain venv; envstore
    creates from ``pip lock``'s (file: URLs); offline, from the same wheel directory."""
    pip = [sys.executable, "-m", "pip"]
    plain = tmp_path / "plain"
    assert run([sys.executable, "-m", "venv", "--without-pip", plain]).returncode == 0
    target = ["--python", plain / "bin" / "python"]
    made = run([*pip, *target, "install", "--no-index", "-r", locked])
    assert made.returncode == 0, made.stderr
    listed = run([*pip, *target, "list", "--format", "json"])
    assert {(p["name"], p["version"]) for p in json.loads(listed.stdout)} == _set(tmp_path / "env")

    theirs = tmp_path / "pylock.pip.toml"
    made = run([*pip, "lock", "alpha", "--no-index", "-f", tmp_path / "wh", "-o", theirs])
    assert made.returncode == 0, made.stderr
    res = cli("--store", store, "create", tmp_path / "from-pip", "--from", theirs, "--offline")
    assert res.code == 0, res.err
    assert _set(tmp_path / "from-pip") == {("alpha", "1.0"), ("beta", "2.1")}


def test_a_crafted_lock_runs_no_program_and_hands_pip_no_options(
    cli: CLI, tmp_path: Path, store: Path, locked: Path
) -> None:
    """A lock is data: its Python version is never a program to run, and a wheel's
    url never becomes more than one line of pip's requirements file."""
    evil = tmp_path / "evil"
    evil.write_text(f"#!/bin/sh\ntouch {tmp_path / 'ran'}\n")
    evil.chmod(0o755)
    data = tomllib.loads(locked.read_text())
    data["tool"]["envstore"]["python"]["version"] = "./evil"
    crafted = tmp_path / "crafted" / "pylock.toml"
    crafted.parent.mkdir()
    crafted.write_text(tomli_w.dumps(data))
    res = cli("--store", tmp_path / "s2", "create", tmp_path / "e2", "--from", crafted, "--offline")
    assert not (tmp_path / "ran").exists()
    assert "Traceback" not in res.err

    data = tomllib.loads(locked.read_text())
    wheel = data["packages"][0]["wheels"][0]
    del wheel["path"]
    wheel["url"] = "https://x.invalid/a.whl\n--extra-index-url https://evil.invalid/simple"
    crafted.write_text(tomli_w.dumps(data))
    res = cli("--store", tmp_path / "s3", "create", tmp_path / "e3", "--from", crafted)
    assert res.code != 0 and "not a plain URL" in res.err, res.err
    assert not (tmp_path / "e3").exists()

    # pip expands ${NAME} in a requirements file, before it checks any hash: the lock's
    # server would be sent the user's secrets.
    for where in ("url", "path"):
        wheel.pop("url", None)
        wheel[where] = "https://x.invalid/${HOME}/a.whl" if where == "url" else "${HOME}/a.whl"
        crafted.write_text(tomli_w.dumps(data))
        res = cli("--store", tmp_path / "s3", "create", tmp_path / "e3", "--from", crafted)
        assert res.code != 0 and "not a plain URL" in res.err, res.err


def test_no_dollar_reaches_a_requirement_line_pip_reads() -> None:
    """The last checks, behind the lock reader's: entry.json's URLs, and every line
    envstore hands pip (pip expands ${NAME} there from the environment)."""
    from envstore.errors import LockError
    from envstore.model.lock import LockedPackage
    from envstore.model.records import web_url
    from envstore.resolve.locked_sources import source_line

    url = "https://x.invalid/${TOKEN}/a-1.0-py3-none-any.whl"
    assert web_url(url.replace("${TOKEN}/", "")) and not web_url(url)
    p = LockedPackage("a", "1.0", "a-1.0-py3-none-any.whl", "0" * 64, True, url=url)
    with pytest.raises(LockError, match="expands"):
        p.pip_line()
    problems: list[str] = []
    vcs = LockedPackage("a", "1.0", "", "", True, url=f"git+{url}@{'0' * 40}", kind="vcs")
    assert source_line(vcs, [], problems) is None and "expands" in problems[0]


def test_extras_and_dependency_groups_are_chosen_from_the_lock(
    cli: CLI, tmp_path: Path, store: Path
) -> None:
    """PEP 751 ``extras``, ``dependency-groups`` and ``default-groups``: the markers
    select with the extras asked for and the groups named, else the default groups."""
    wh = tmp_path / "wh"
    marks = {
        "alpha": None,
        "beta": "'fast' in extras",
        "gamma": "'dev' in dependency_groups",
        "delta": "'docs' in dependency_groups",
    }
    packages = []
    for name, marker in marks.items():
        wheel = wheelmaker.build_wheel(wh, name, "1.0")
        entry: dict[str, Any] = {"name": name, "version": "1.0"}
        if marker:
            entry["marker"] = marker
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        entry["wheels"] = [{"name": wheel.name, "path": f"wh/{wheel.name}",
                            "hashes": {"sha256": digest}}]  # fmt: skip
        packages.append(entry)
    lock = tmp_path / "pylock.toml"
    lock.write_text(tomli_w.dumps({
        "lock-version": "1.0", "created-by": "hand", "extras": ["fast"],
        "dependency-groups": ["docs"], "default-groups": ["dev"], "packages": packages,
    }))  # fmt: skip
    env = tmp_path / "env"

    def names(*args: str) -> set[str]:
        res = cli("--store", store, "sync", env, "--from", lock, "--offline", *args)
        assert res.code == 0, res.err
        return {n for n, _ in _set(env)}

    assert names() == {"alpha", "gamma"}
    assert names("--extra", "fast", "--group", "docs") == {"alpha", "beta", "delta"}
    assert names("--all-extras") == {"alpha", "beta", "gamma"}
    bad = cli("--store", store, "sync", env, "--from", lock, "--offline", "--extra", "gpu")
    assert bad.code == 1 and "Undeclared extras: gpu" in bad.err
    assert "extras: fast; dependency groups: docs, dev" in bad.err


def test_a_project_lock_with_extras_and_groups_and_its_staleness(
    cli: CLI, tmp_path: Path, store: Path
) -> None:
    """``envstore lock`` in a project: every extra and group, resolved once and marked;
    ``sync`` in the project uses it, with the groups and extras asked for; a changed
    pyproject.toml makes it stale: warned about, or refused with ``--locked``."""
    from projectmaker import make_project

    wh = tmp_path / "wh"
    wheelmaker.build_wheel(wh, "dep-one", "1.0", requires=["lib-dep"])
    for name in ("lib-dep", "extra-dep", "test-dep", "lint-dep"):
        wheelmaker.build_wheel(wh, name, "1.0")
    proj = tmp_path / "proj"
    settings: dict[str, Any] = {
        "dependencies": ["dep-one"],
        "optional_dependencies": {"x": ["extra-dep"]},
        "groups": {"test": ["test-dep"], "dev": [{"include-group": "test"}, "lint-dep"]},
    }
    make_project(proj, **settings)
    where = ["--store", store, "--no-index", "-f", wh]
    res = cli("lock", "--project", proj, *where)
    assert res.code == 0, res.err
    data = tomllib.loads((proj / "pylock.toml").read_text())
    Pylock.from_dict(data)
    assert (data["extras"], data["dependency-groups"], data["default-groups"]) == (
        ["x"], ["test", "dev"], ["dev"]
    )  # fmt: skip
    marks = {p["name"]: p.get("marker") for p in data["packages"]}
    assert marks == {
        "dep-one": None,
        "lib-dep": None,
        "extra-dep": '"x" in extras',
        "test-dep": '"test" in dependency_groups or "dev" in dependency_groups',
        "lint-dep": '"dev" in dependency_groups',
        "sample": None,
    }
    (sample,) = [p for p in data["packages"] if p["name"] == "sample"]
    assert sample["directory"] == {"path": ".", "editable": True}
    assert data["tool"]["envstore"]["inputs"].startswith("sha256:")

    def synced(*args: str) -> set[str]:
        res = cli("sync", "--project", proj, "--store", store, "--offline", "--locked", *args)
        assert res.code == 0, res.err
        manifest = json.loads((proj / ".venv" / "envstore.json").read_text())
        assert [e["name"] for e in manifest["editables"]] == ["sample"]
        return {p["name"] for p in manifest["packages"]}

    assert synced() == {"dep-one", "lib-dep", "test-dep", "lint-dep"}
    # uv installs the same lock (the project built from its directory) into a plain venv.
    uv = [sys.executable, "-m", "uv"]
    uv_env = {"UV_CACHE_DIR": str(tmp_path / "uv-cache"), "UV_OFFLINE": "1"}
    plain, python = tmp_path / "plain", Manifest.load(proj / ".venv").python.path
    assert run([python, "-m", "venv", "--without-pip", plain]).returncode == 0
    made = run([*uv, "pip", "install", "--python", plain / "bin" / "python", "-r",
                proj / "pylock.toml", "--extra", "x"], extra_env=uv_env)  # fmt: skip
    assert made.returncode == 0, made.stderr
    freeze = run([*uv, "pip", "list", "--python", plain / "bin" / "python", "--format", "json"],
                 extra_env=uv_env)  # fmt: skip
    got = {d["name"] for d in json.loads(freeze.stdout)}
    assert got == {"dep-one", "lib-dep", "test-dep", "lint-dep", "extra-dep", "sample"}
    assert synced("--no-dev", "--extra", "x") == {"dep-one", "lib-dep", "extra-dep"}
    # Any env from the lock: its directory package is the project, installed editable.
    res = cli("--store", store, "create", tmp_path / "e", "--from", proj / "pylock.toml",
              "--offline")  # fmt: skip
    assert res.code == 0, res.err
    assert [e.name for e in Manifest.load(tmp_path / "e").editables] == ["sample"]

    make_project(proj, **{**settings, "dependencies": ["dep-one", "extra-dep"]})
    res = cli("sync", "--project", proj, "--store", store, "--offline", "--locked")
    assert res.code == 1 and "pylock.toml is stale" in res.err and "envstore lock" in res.err
    res = cli("sync", "--project", proj, *where)
    assert res.code == 0 and "warning:" in res.err and "is stale" in res.err

    # Another tool's lock (pip lock: no inputs digest) may lack groups and new
    # dependencies: not used by a sync, refused by --locked.
    del data["tool"]
    (proj / "pylock.toml").write_text(tomli_w.dumps(data))
    res = cli("sync", "--project", proj, "--store", store, "--offline", "--locked")
    assert res.code == 1 and "not written by 'envstore lock'" in res.err and "--from" in res.err
    res = cli("sync", "--project", proj, *where)
    assert res.code == 0 and "not written by 'envstore lock'" in res.err and "not used" in res.err
    assert "extra-dep" in {p.name for p in Manifest.load(proj / ".venv").packages}


@pytest.mark.parametrize(
    ("vcs", "says"),
    [
        ({"type": "git", "commit-id": "main"}, "full commit hash"),  # a branch moves
        ({"type": "git", "commit-id": "-q"}, "full commit hash"),  # an option
        ({"type": "git", "commit-id": "a" * 39}, "full commit hash"),
        ({"type": "hg", "commit-id": "a" * 64}, "full commit hash"),
        ({"type": "svn", "commit-id": "1234"}, "full commit hash"),
        ({"type": "git", "commit-id": "a" * 40, "subdirectory": "../up"}, "subdirectory"),
        ({"type": "git", "commit-id": "a" * 40, "subdirectory": "/abs"}, "subdirectory"),
        ({"type": "git", "commit-id": "a" * 40, "subdirectory": "a&egg=x"}, "subdirectory"),
    ],
)
def test_a_vcs_package_needs_a_full_commit_and_a_plain_subdirectory(
    tmp_path: Path, vcs: dict[str, str], says: str
) -> None:
    from envstore.errors import LockError
    from envstore.model.lock import Lock
    from envstore.python.interpreters import find_interpreter
    from envstore.resolve.exact import select_locked

    data: dict[str, Any] = {"lock-version": "1.0", "created-by": "test"}
    data["packages"] = [{"name": "foo", "vcs": {"url": "https://x.invalid/foo.git", **vcs}}]
    (tmp_path / "pylock.toml").write_text(tomli_w.dumps(data))
    with pytest.raises(LockError, match=says):
        select_locked(Lock.load(tmp_path / "pylock.toml"), find_interpreter(sys.executable))
    if vcs["type"] == "svn":
        return
    ok = {**data["packages"][0]["vcs"], "commit-id": "a" * 40, "subdirectory": "pkgs/foo"}
    data["packages"][0]["vcs"] = ok
    (tmp_path / "pylock.toml").write_text(tomli_w.dumps(data))
    (got,) = select_locked(Lock.load(tmp_path / "pylock.toml"), find_interpreter(sys.executable))
    assert got.url == f"{ok['type']}+https://x.invalid/foo.git@{'a' * 40}#subdirectory=pkgs/foo"


def _sources(tmp_path: Path, log: Path | None = None) -> tuple[Path, Path, str]:
    """``dist/srcpkg-0.1.tar.gz`` (its backend logging each build to ``log``: pip builds
    it unpacked elsewhere) and the git repository ``vcsrepo`` of ``vcspkg``, with its
    commit."""
    from projectmaker import make_project

    make_project(tmp_path / "srcpkg", "srcpkg")
    if log is not None:
        backend = tmp_path / "srcpkg" / "_backend" / "envstore_test_backend.py"
        backend.write_text(backend.read_text().replace('os.path.join(_HERE, "builds.log")',
                                                       repr(str(log))))  # fmt: skip
    (tmp_path / "dist").mkdir()
    made = run([sys.executable, "-c", "import sys; sys.path.insert(0, '_backend');"
                " import envstore_test_backend as b; b.build_sdist('../dist')"],
               cwd=tmp_path / "srcpkg")  # fmt: skip
    assert made.returncode == 0, made.stderr
    repo = make_project(tmp_path / "vcsrepo", "vcspkg")
    git = ["git", "-C", repo, "-c", "user.name=t", "-c", "user.email=t@t"]
    for step in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "v"]):
        assert run([*git, *step]).returncode == 0
    commit = run([*git, "rev-parse", "HEAD"]).stdout.strip()
    return tmp_path / "dist" / "srcpkg-0.1.tar.gz", repo, commit


def test_sdist_and_vcs_packages_are_built_by_pip_after_every_hash_is_checked(
    cli: CLI, tmp_path: Path, store: Path
) -> None:
    """A locked sdist (its sha256 checked first) and a git commit are built into wheels
    by pip (offline: the projects' backend needs nothing), then stored; the next env
    from the lock takes what they were built into, building nothing (no pip: offline)."""
    log = tmp_path / "builds.log"
    sdist, _, commit = _sources(tmp_path, log)
    data: dict[str, Any] = {
        "lock-version": "1.0",
        "created-by": "hand",
        "packages": [
            {"name": "srcpkg", "version": "0.1", "sdist": {
                "name": sdist.name, "path": "dist/srcpkg-0.1.tar.gz",
                "hashes": {"sha256": hashlib.sha256(sdist.read_bytes()).hexdigest()}}},
            {"name": "vcspkg", "vcs": {"type": "git", "path": "vcsrepo", "commit-id": commit}},
        ],
    }  # fmt: skip
    lock = tmp_path / "pylock.toml"
    lock.write_text(tomli_w.dumps(data))
    res = cli("--store", store, "create", tmp_path / "env", "--from", lock, "--no-index")
    assert res.code == 0, res.err
    assert _set(tmp_path / "env") == {("srcpkg", "0.1"), ("vcspkg", "0.1")}
    assert log.read_text().split() == ["sdist", "wheel"]
    res = cli("--store", store, "create", tmp_path / "again", "--from", lock, "--offline")
    assert res.code == 0, res.err
    assert _set(tmp_path / "again") == _set(tmp_path / "env")
    assert log.read_text().split() == ["sdist", "wheel"]  # not built again

    data["packages"][0]["sdist"]["hashes"]["sha256"] = "0" * 64
    lock.write_text(tomli_w.dumps(data))
    res = cli("--store", store, "create", tmp_path / "bad", "--from", lock, "--no-index")
    assert res.code == 1 and "srcpkg 0.1 (srcpkg-0.1.tar.gz): hash mismatch" in res.err
    assert not (tmp_path / "bad").exists()


def _mono(tmp_path: Path) -> Path:
    """``mono.tar.gz``: the projects ``alpha`` and ``beta`` under ``mono/pkgs/``."""
    import tarfile

    from projectmaker import make_project

    for name in ("alpha", "beta"):
        make_project(tmp_path / "mono" / "pkgs" / name, name)
    archive = tmp_path / "mono.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "mono", arcname="mono")
    return archive


def test_lock_env_keeps_the_subdirectory_of_an_archive(
    cli: CLI, tmp_path: Path, store: Path
) -> None:
    """An env made from ``name @ file:///x.tar.gz#subdirectory=SUB`` is locked as that
    archive with its ``subdirectory`` (not the archive's top, which holds no project)."""
    archive = _mono(tmp_path)
    env = tmp_path / "env"
    req = f"alpha @ {archive.as_uri()}#subdirectory=pkgs/alpha"
    res = cli("--store", store, "create", env, req, "--no-index", "--without-pip")
    assert res.code == 0, res.err
    lock = tmp_path / "pylock.toml"
    assert cli("--store", store, "lock", env, "-o", lock).code == 0
    (alpha,) = [p for p in tomllib.loads(lock.read_text())["packages"] if p["name"] == "alpha"]
    assert alpha["archive"]["subdirectory"] == "pkgs/alpha"
    again = tmp_path / "again"
    res = cli("--store", tmp_path / "fresh", "create", again, "--from", lock, "--no-index")
    assert res.code == 0, res.err
    assert _set(again) == {("alpha", "0.1")}


def test_projects_in_subdirectories_of_one_archive_are_each_built(
    cli: CLI, tmp_path: Path, store: Path
) -> None:
    """PEP 751 ``archive.subdirectory``: two projects of one source archive, each built
    from its own directory (pip's ``#subdirectory=``) and remembered apart, so the next
    env from the lock builds nothing (offline); a subdirectory leading out is refused."""
    archive = _mono(tmp_path)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()

    def package(name: str, subdirectory: str) -> dict[str, Any]:
        return {"name": name, "archive": {"path": "mono.tar.gz", "hashes": {"sha256": digest},
                                          "subdirectory": subdirectory}}  # fmt: skip

    lock = tmp_path / "pylock.toml"
    data = {"lock-version": "1.0", "created-by": "hand",
            "packages": [package("alpha", "pkgs/alpha"), package("beta", "pkgs/beta")]}  # fmt: skip
    lock.write_text(tomli_w.dumps(data))
    res = cli("--store", store, "create", tmp_path / "env", "--from", lock, "--no-index")
    assert res.code == 0, res.err
    assert _set(tmp_path / "env") == {("alpha", "0.1"), ("beta", "0.1")}
    res = cli("--store", store, "create", tmp_path / "again", "--from", lock, "--offline")
    assert res.code == 0, res.err
    assert _set(tmp_path / "again") == _set(tmp_path / "env")

    data["packages"] = [package("alpha", "../mono/pkgs/alpha")]
    lock.write_text(tomli_w.dumps(data))
    res = cli("--store", store, "create", tmp_path / "bad", "--from", lock, "--no-index")
    assert res.code == 1 and "subdirectory is not plain" in res.err, res.err


def test_packages_built_from_source_are_locked_as_their_source(
    cli: CLI, tmp_path: Path, store: Path
) -> None:
    """``lock ENV``: the sdist, git commit and project directory the env's requirements
    name are written as PEP 751 names them, its editable project as an editable
    ``directory``; ``--from`` the lock builds the same set again."""
    from projectmaker import make_project

    wh = tmp_path / "wh"
    wheelmaker.build_wheel(wh, "dep", "1.0")
    sdist, repo, commit = _sources(tmp_path)
    dirpkg = make_project(tmp_path / "dirpkg", "dirpkg", dependencies=["dep"])
    editpkg = make_project(tmp_path / "editpkg", "editpkg")
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
    assert packages["vcspkg"]["vcs"] == {"type": "git", "url": f"file://localhost{repo}",
                                         "commit-id": commit}  # fmt: skip
    assert packages["dirpkg"]["directory"] == {"path": "dirpkg", "editable": False}
    assert packages["editpkg"]["directory"] == {"path": "editpkg", "editable": True}
    assert "wheels" in packages["dep"]

    again = tmp_path / "again"
    res = cli("--store", tmp_path / "fresh", "create", again, "--from", lock, "--no-index")
    assert res.code == 0, res.err
    want = {(p.name, p.version) for p in Manifest.load(env).packages}
    assert {(p.name, p.version) for p in Manifest.load(again).packages} == want
    assert [e.name for e in Manifest.load(again).editables] == ["editpkg"]


def test_a_vcs_url_fragment_other_than_subdirectory_is_no_subdirectory() -> None:
    """pip's ``#egg=NAME`` on a VCS URL is not written as the lock's subdirectory (the
    lock would then be refused on reading)."""
    from envstore.model.lock_pylock import _sources
    from envstore.model.lock_records import LockedPackage

    commit = "a" * 40
    for fragment, want in (("egg=foo", None), ("egg=foo&subdirectory=pkgs/foo", "pkgs/foo")):
        url = f"git+https://h.invalid/r.git@{commit}#{fragment}"
        p = LockedPackage("foo", "1.0", "", "", True, url=url, kind="vcs")
        assert _sources([p], None)["vcs"].subdirectory == want


def test_a_requirements_file_refuses_what_it_cannot_hold_with_a_hash() -> None:
    """``--format requirements`` of a lock with a VCS commit, a source directory or an
    archive's subdirectory: one error pointing to pylock.toml, not a line pip refuses
    (``foo==1.0 --hash=sha256:``) or a package silently left out."""
    from envstore.errors import LockError
    from envstore.model.lock import Lock
    from envstore.model.lock_records import LockedDirectory, LockedPackage

    wheel = LockedPackage("solo", "0.5", "solo-0.5-py3-none-any.whl", "a" * 64, True)
    assert "solo==0.5 --hash=sha256:" in Lock(None, [wheel]).pip_requirements()
    vcs = LockedPackage("foo", "1.0", "", "", True, url="git+file:///r@" + "b" * 40, kind="vcs")
    sub = LockedPackage(
        "bar", "2.0", "bar-2.0.tar.gz", "c" * 64, True, kind="archive", subdirectory="pkg"
    )
    tree = LockedDirectory("proj", "/src/proj", editable=True)
    for lock in (
        Lock(None, [wheel, vcs]),
        Lock(None, [wheel, sub]),
        Lock(None, [wheel], directories=[tree]),
    ):
        with pytest.raises(LockError, match=r"write pylock\.toml"):
            lock.pip_requirements()


def test_an_archive_read_from_a_lock_is_written_as_an_archive(tmp_path: Path) -> None:
    """Read from a pylock.toml, an archive with a subdirectory stays an archive: written
    again (a lock of the locked packages) it keeps its subdirectory; an sdist stays one."""
    from envstore.model.lock import Lock
    from envstore.python.interpreters import find_interpreter
    from envstore.resolve.exact import select_locked

    data: dict[str, Any] = {"lock-version": "1.0", "created-by": "test"}
    digest = {"sha256": "d" * 64}
    data["packages"] = [
        {"name": "bar", "version": "2.0", "archive": {
            "url": "https://x.invalid/mono-2.0.tar.gz", "hashes": digest, "subdirectory": "bar"}},
        {"name": "baz", "version": "1.0", "sdist": {
            "url": "https://x.invalid/baz-1.0.tar.gz", "hashes": digest}},
    ]  # fmt: skip
    (tmp_path / "pylock.toml").write_text(tomli_w.dumps(data))
    got = select_locked(Lock.load(tmp_path / "pylock.toml"), find_interpreter(sys.executable))
    assert {p.name: (p.kind, p.subdirectory) for p in got} == {
        "bar": ("archive", "bar"),
        "baz": ("sdist", None),
    }
    again = tomllib.loads(Lock(None, got).dumps(tmp_path))["packages"]
    assert {p["name"]: ("archive" in p, "sdist" in p) for p in again} == {
        "bar": (True, False),
        "baz": (False, True),
    }
    assert next(p for p in again if p["name"] == "bar")["archive"]["subdirectory"] == "bar"


def test_packages_are_chosen_from_the_whole_lock_or_one_at_a_time_alike(tmp_path: Path) -> None:
    """A lock packaging accepts whole is chosen in one pass (one ranking of the tags);
    one it refuses is chosen a package at a time, each problem named by its index."""
    from envstore.errors import LockError
    from envstore.model.lock import Lock
    from envstore.python.interpreters import find_interpreter
    from envstore.resolve.exact import select_locked

    def wheel(name: str, tag: str, sha: str = "a" * 64) -> dict[str, Any]:
        return {"name": f"{name}-1.0-{tag}.whl", "url": f"https://x.invalid/{name}.whl",
                "hashes": {"sha256": sha}}  # fmt: skip

    def package(name: str, *wheels: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "version": "1.0", "wheels": list(wheels)}

    interp = find_interpreter(sys.executable)
    data: dict[str, Any] = {"lock-version": "1.0", "created-by": "test"}
    data["packages"] = [package("one", wheel("one", "py3-none-any")),
                        package("two", wheel("two", "py3-none-any"))]  # fmt: skip
    (tmp_path / "pylock.toml").write_text(tomli_w.dumps(data))
    got = select_locked(Lock.load(tmp_path / "pylock.toml"), interp)
    assert [p.name for p in got] == ["one", "two"]
    # No wheel fits "elsewhere" (packaging refuses the whole lock): one at a time, and
    # a problem of ours (no sha256) is named by its own index either way.
    data["packages"].insert(1, package("elsewhere", wheel("elsewhere", "cp311-cp311-win_amd64")))
    data["packages"][2]["wheels"][0]["hashes"] = {"md5": "0" * 32}
    (tmp_path / "pylock.toml").write_text(tomli_w.dumps(data))
    with pytest.raises(LockError) as err:
        select_locked(Lock.load(tmp_path / "pylock.toml"), interp)
    assert "two 1.0 (packages[2]): two-1.0-py3-none-any.whl has no sha256" in str(err.value)
    del data["packages"][1]
    (tmp_path / "pylock.toml").write_text(tomli_w.dumps(data))
    with pytest.raises(LockError) as err:
        select_locked(Lock.load(tmp_path / "pylock.toml"), interp)
    assert "two 1.0 (packages[1]): two-1.0-py3-none-any.whl has no sha256" in str(err.value)
