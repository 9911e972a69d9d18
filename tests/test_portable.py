"""Portable and reproducible environments: lock, sync, export, move (issue #7)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from conftest import CLI, entries, run

from envstore.store.fs import rmtree

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

PURE = ["hello-app", "ns-alpha", "ns-beta", "solo"]
CHECK = (
    "import os, sys, hello_app, dep_one, nsp.alpha, nsp.beta, solo; "
    "print(dep_one.VERSION, os.environ.get('DEP_ONE_HOOK'), nsp.alpha.A + nsp.beta.B, sys.prefix)"
)


def _create(cli: CLI, store: Path, env: Path, wh: Path, *args: str) -> None:
    res = cli("--store", store, "create", env, "--no-index", "-f", wh, *args)
    assert res.code == 0, res.err


def _manifest(env: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((env / "envstore.json").read_text())
    return data


def _comparable(env: Path) -> dict[str, object]:
    """The manifest without what differs between two builds of one set (paths, times)."""
    m = _manifest(env)
    return {k: v for k, v in m.items() if k not in ("env", "store", "created", "sources")}


def _works(env: Path) -> None:
    out = run([env / "bin" / "python", "-c", CHECK])
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1.2", "ran", "3", str(env)]
    hello = run([env / "bin" / "hello"])
    assert hello.returncode == 3 and f"hello from {env}" in hello.stdout, hello.stderr


def _toml(lock: Path) -> dict[str, Any]:
    return tomllib.loads(lock.read_text())


def _wheels(lock: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each package's one wheel table, by package name."""
    return {p["name"]: p["wheels"][0] for p in lock["packages"]}


def _registered(store: Path) -> set[str]:
    roots = {os.path.dirname(os.readlink(p)) for p in (store / "roots").iterdir()}
    with sqlite3.connect(store / "envstore.db") as conn:
        rows = {r[0] for r in conn.execute("SELECT path FROM envs")}
        refs = {r[0] for r in conn.execute("SELECT DISTINCT env FROM refs")}
    assert roots == rows == refs
    return roots


@pytest.fixture
def locked_env(cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path) -> tuple[Path, Path]:
    """An env of on-the-fly wheels (no pip) and its lock file."""
    env = tmp_path / "env"
    _create(cli, store, env, wheelhouse, "--without-pip", *PURE)
    lock = tmp_path / "pylock.toml"
    res = cli("--store", store, "lock", env, "-o", lock)
    assert res.code == 0, res.err
    return env, lock


def test_lock_records_exact_wheels_and_rebuilds_identically(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path, locked_env: tuple[Path, Path]
) -> None:
    env, lock_file = locked_env
    lock = _toml(lock_file)
    assert lock["lock-version"] == "1.0" and lock["created-by"] == "envstore"
    py = _manifest(env)["python"]
    ours = lock["tool"]["envstore"]
    assert ours["python"]["soabi"] == py["soabi"] and ours["python"]["version"] == py["version"]  # type: ignore[index]
    wheels = _wheels(lock)
    assert set(wheels) == {"hello-app", "dep-one", "ns-alpha", "ns-beta", "solo"}
    for w in wheels.values():
        wheel = wheelhouse / w["name"]
        assert (lock_file.parent / w["path"]).resolve() == wheel.resolve()
        assert w["hashes"] == {"sha256": hashlib.sha256(wheel.read_bytes()).hexdigest()}
    versions = {p["name"]: p["version"] for p in lock["packages"]}
    assert versions["dep-one"] == "1.2" and "dep-one" not in ours["requested"]
    pip_form = cli("--store", store, "lock", env, "--format", "requirements")
    solo_hash = wheels["solo"]["hashes"]["sha256"]
    assert f"solo==0.5 --hash=sha256:{solo_hash}" in pip_form.out.splitlines()
    before = _comparable(env)

    # Another machine: no store, no env; only the lock and a directory of wheels.
    rmtree(env)
    rmtree(store)
    fresh = tmp_path / "fresh-store"
    res = cli("--store", fresh, "create", env, "--from", lock_file, "--no-index", "-f", wheelhouse)
    assert res.code == 0, res.err
    assert _comparable(env) == before
    _works(env)
    assert _registered(fresh) == {str(env)}


def test_tampered_or_missing_wheels_fail_before_anything_is_written(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path, locked_env: tuple[Path, Path]
) -> None:
    env, lock_file = locked_env
    rmtree(env)
    wh = tmp_path / "wh"
    shutil.copytree(wheelhouse, wh)
    solo = next(wh.glob("solo-*.whl"))
    data = bytearray(solo.read_bytes())
    data[-30] ^= 0xFF  # one flipped byte in the zip's central directory
    solo.write_bytes(bytes(data))
    fresh = tmp_path / "fresh-store"
    lock = _toml(lock_file)
    for p in lock["packages"]:  # the lock names the copies
        p["wheels"][0]["path"] = str(wh / p["wheels"][0]["name"])
    lock_file.write_text(tomli_w.dumps(lock))
    res = cli("--store", fresh, "sync", env, "--from", lock_file, "--no-index", "-f", wh)
    assert res.code == 1
    assert "hash mismatch" in res.err and str(solo) in res.err and "Traceback" not in res.err
    assert not env.exists()
    assert entries(fresh) == [] and not any((fresh / "views").iterdir())
    assert not any((fresh / "wheels").iterdir())

    # Every problem at once: a wheel that is missing, one for another platform.
    for p in lock["packages"]:
        if p["name"] == "ns-alpha":
            p["wheels"][0]["name"] = "ns_alpha-1.0-cp27-cp27mu-manylinux1_x86_64.whl"
    lock_file.write_text(tomli_w.dumps(lock))
    next(wh.glob("ns_beta-*.whl")).unlink()
    res = cli("--store", fresh, "sync", env, "--from", lock_file, "--no-index", "-f", wh)
    assert res.code == 1
    assert "solo 0.5" in res.err and "hash mismatch" in res.err
    assert "ns-alpha 1.0" in res.err and "no wheel for this platform" in res.err
    assert "ns-beta 2.0" in res.err and "no wheel ns_beta-2.0-py3-none-any.whl" in res.err
    assert not env.exists() and entries(fresh) == []


def test_sync_adds_removes_upgrades_and_releases_old_references(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path
) -> None:
    env = tmp_path / "env"
    _create(cli, store, env, wheelhouse, "--without-pip", "--prompt", "mine", "solo",
            "dep-one==1.1")  # fmt: skip
    old_keys = {p["key"] for p in _manifest(env)["packages"]}  # type: ignore[attr-defined]
    res = cli("--store", store, "sync", env, *PURE, "--no-index", "-f", wheelhouse)
    assert res.code == 0, res.err
    _works(env)
    m = _manifest(env)
    names = {p["name"]: p["version"] for p in m["packages"]}  # type: ignore[attr-defined]
    assert names == {"hello-app": "1.0", "dep-one": "1.2", "ns-alpha": "1.0", "ns-beta": "2.0",
                     "solo": "0.5"}  # fmt: skip
    assert "pip" not in names  # it had none, so it still has none
    assert "prompt = 'mine'" in (env / "pyvenv.cfg").read_text()
    new_keys = {p["key"] for p in m["packages"]}  # type: ignore[attr-defined]
    with sqlite3.connect(store / "envstore.db") as conn:
        refs = {r[0] for r in conn.execute("SELECT object FROM refs WHERE env = ?", (str(env),))}
    assert refs == new_keys | {f"view/{m['view']}"}
    assert not list(tmp_path.glob(".env.envstore-tmp-*"))

    # Nothing to sync to is a mistake, not a request to empty the env.
    res = cli("--store", store, "sync", env)
    assert res.code == 1 and "nothing to sync" in res.err
    assert _manifest(env)["packages"] == m["packages"]

    # Remove: sync to a smaller set; the dropped package no longer imports.
    res = cli("--store", store, "sync", env, "ns-alpha", "--offline")
    assert res.code == 0, res.err
    assert run([env / "bin" / "python", "-c", "import nsp.alpha"]).returncode == 0
    assert run([env / "bin" / "python", "-c", "import solo"]).returncode != 0
    assert not (env / "bin" / "hello").exists()
    gone = old_keys - {p["key"] for p in _manifest(env)["packages"]}  # type: ignore[attr-defined]
    assert cli("--store", store, "gc", "--grace", "0").code == 0
    assert not gone & set(entries(store))  # released, so collected
    assert run([env / "bin" / "python", "-c", "import nsp.alpha"]).returncode == 0


def test_failed_replace_leaves_the_old_env_working(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path
) -> None:
    env = tmp_path / "env"
    _create(cli, store, env, wheelhouse, "--without-pip", *PURE)
    before = _manifest(env)
    for cmd in (
        ("create", env, "--clear", "--offline", "nothere==1.0"),
        ("sync", env, "nothere==1.0", "--offline"),
    ):
        res = cli("--store", store, *cmd)
        assert res.code == 1 and "nothere==1.0" in res.err
        assert _manifest(env) == before
        _works(env)
    assert _registered(store) == {str(env)}
    assert cli("--store", store, "gc", "--grace", "0").code == 0
    _works(env)


def test_sync_from_lock_changes_an_existing_env_to_the_locked_set(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path, locked_env: tuple[Path, Path]
) -> None:
    env, lock_file = locked_env
    other = tmp_path / "other"
    _create(cli, store, other, wheelhouse, "--without-pip", "solo")
    # The store has every locked wheel: nothing to find, nothing to ingest.
    res = cli("--store", store, "sync", other, "--from", lock_file, "--offline")
    assert res.code == 0, res.err
    assert _comparable(other) == _comparable(env)
    _works(other)
    both = cli("--store", store, "sync", other, "solo", "--from", lock_file)
    assert both.code == 1 and "not both" in both.err


def test_show_and_lock_work_without_the_interpreter(
    cli: CLI, tmp_path: Path, locked_env: tuple[Path, Path], store: Path, wheelhouse: Path
) -> None:
    env, lock_file = locked_env
    manifest = _manifest(env)
    manifest["python"]["path"] = str(tmp_path / "gone" / "python3")  # type: ignore[index]
    (env / "envstore.json").write_text(json.dumps(manifest))
    shown = cli("show", env, "--json")
    assert shown.code == 0 and json.loads(shown.out)["python"]["path"].endswith("gone/python3")
    again = cli("lock", env, "-o", "-")
    assert again.code == 0, again.err
    assert tomllib.loads(again.out)["packages"] == [
        {**p, "wheels": [{**p["wheels"][0], "path": str(wheelhouse / p["wheels"][0]["name"])}]}
        for p in _toml(lock_file)["packages"]
    ]

    # An entry from before entry.json had sha256: hashed from its wheel instead.
    key = next(p["key"] for p in manifest["packages"] if p["name"] == "solo")  # type: ignore[attr-defined]
    entry = store / "entries" / key
    os.chmod(entry, 0o755)
    meta_path = entry / "entry.json"
    meta = json.loads(meta_path.read_text())
    del meta["sha256"]
    os.chmod(meta_path, 0o644)
    meta_path.write_text(json.dumps(meta))
    os.chmod(meta_path, 0o444)
    os.chmod(entry, 0o555)
    assert cli("lock", env, "-o", "-").out == again.out
    Path(meta["origin"]).rename(tmp_path / "elsewhere.whl")
    try:
        res = cli("lock", env, "-o", "-")
    finally:
        (tmp_path / "elsewhere.whl").rename(meta["origin"])
    assert res.code == 1 and "solo 0.5" in res.err and "sha256" in res.err


def _tree_mentions(root: Path, needle: bytes) -> list[str]:
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if path.is_symlink():
                if needle in os.readlink(path).encode():
                    found.append(str(path))
            elif needle in path.read_bytes():
                found.append(str(path))
    return found


def test_export_is_self_contained(cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path) -> None:
    env = tmp_path / "env"
    _create(cli, store, env, wheelhouse, *PURE)  # with pip, for pip list / uninstall
    plain, reloc = tmp_path / "plain", tmp_path / "reloc"
    for dest, extra in ((plain, ()), (reloc, ("--relocatable",))):
        res = cli("--store", store, "export", env, dest, *extra)
        assert res.code == 0, res.err
    refused = cli("--store", store, "export", env, plain)
    assert refused.code == 1 and "not an empty directory" in refused.err
    rmtree(store)  # nothing may point into it any more
    rmtree(env)
    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    os.rename(reloc, moved)
    for dest in (plain, moved):
        assert not (dest / "envstore.json").exists()
        assert "envstore" not in (dest / "pyvenv.cfg").read_text()
        assert _tree_mentions(dest, str(store).encode()) == []
        _works(dest)
        assert not (dest / "bin" / "hello").is_symlink()  # a venv's own script, no launcher
        data = run([dest / "bin" / "hello-data"])
        assert data.returncode == 0 and f"data script {dest}" in data.stdout
        assert (dest / "share" / "hello-app" / "greeting.txt").read_text() == "hi there\n"
        minor = _manifest_minor(dest)
        assert (dest / "include" / "site" / f"python{minor}" / "hello-app" / "hello.h").exists()
        listed = run([dest / "bin" / "python", "-m", "pip", "list", "--format", "json"])
        assert listed.returncode == 0, listed.stderr
        assert {"hello-app", "dep-one", "solo", "pip"} <= {
            d["name"] for d in json.loads(listed.stdout)
        }
    # Bytecode came from the store, names the copied source and follows edits to it.
    out = run([plain / "bin" / "python", "-c", "import solo; print(solo.__cached__)"])
    cached = Path(out.stdout.strip())
    assert cached.is_file() and plain in cached.parents
    src = next(plain.glob("lib/python*/site-packages/solo.py"))
    src.write_text("X = 6\n")
    assert run([plain / "bin" / "python", "-c", "import solo; print(solo.X)"]).stdout == "6\n"
    # pip owns the files: uninstall removes them, scripts and data included.
    gone = run([plain / "bin" / "python", "-m", "pip", "uninstall", "-y", "hello-app"])
    assert gone.returncode == 0, gone.stderr
    assert not (plain / "bin" / "hello").exists() and not (plain / "bin" / "hello-data").exists()
    assert not (plain / "share" / "hello-app" / "greeting.txt").exists()
    assert not list(plain.glob("lib/python*/site-packages/hello_app"))
    # Relocatable activation finds the env where it is now.
    for shell in ("bash", "zsh"):
        if shutil.which(shell):
            act = run([shell, "-c", f". {moved}/bin/activate && echo $VIRTUAL_ENV && which hello"])
            assert act.returncode == 0, act.stderr
            assert act.stdout.split() == [str(moved), f"{moved}/bin/hello"]
    if shutil.which("fish"):
        act = run(["fish", "-c", f"source {moved}/bin/activate.fish; and echo $VIRTUAL_ENV"])
        assert act.returncode == 0 and act.stdout.strip() == str(moved), act.stderr


def _manifest_minor(venv: Path) -> str:
    cfg = (venv / "pyvenv.cfg").read_text()
    version = next(ln.split("=")[1].strip() for ln in cfg.splitlines() if ln.startswith("version"))
    return ".".join(version.split(".")[:2])


def test_moved_env_relinks_and_gc_keeps_what_it_uses(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path
) -> None:
    env = tmp_path / "env"
    _create(cli, store, env, wheelhouse, "--without-pip", *PURE)
    used = {p["key"] for p in _manifest(env)["packages"]}  # type: ignore[attr-defined]
    moved = tmp_path / "sub" / "moved"
    moved.parent.mkdir()
    os.rename(env, moved)
    res = cli("relink", moved)
    assert res.code == 0, res.err
    assert _manifest(moved)["env"] == str(moved)
    assert _registered(store) == {str(moved)}  # the database followed the move
    assert cli("--store", store, "gc", "--grace", "0").code == 0
    assert used <= set(entries(store))
    _works(moved)
    activate = run(["bash", "-c", f". {moved}/bin/activate && echo $VIRTUAL_ENV"])
    assert activate.stdout.strip() == str(moved)
    doctor = cli("doctor", moved)
    assert doctor.code == 0, doctor.out


def test_locked_wheels_not_at_hand_are_downloaded_with_their_hashes(
    cli: CLI,
    wheelhouse: Path,
    tmp_path: Path,
    locked_env: tuple[Path, Path],
    _template_store: Path,
) -> None:
    env, lock_file = locked_env
    before = _comparable(env)
    rmtree(env)
    lock = _toml(lock_file)
    for p in lock["packages"]:  # where the lock says the wheels are, they are not
        p["wheels"][0]["path"] = str(tmp_path / "gone" / p["wheels"][0]["name"])
    lock_file.write_text(tomli_w.dumps(lock))
    fresh = tmp_path / "fresh-store"  # has pip (to download with), none of the packages
    shutil.copytree(_template_store, fresh, symlinks=True)
    index = f"file://{wheelhouse}"  # a URL: pip's business, not a local directory
    res = cli("--store", fresh, "sync", env, "--from", lock_file, "--no-index", "-f", index)
    assert res.code == 0, res.err
    assert _comparable(env) == before
    _works(env)
    kept = {p.name for p in (fresh / "wheels").iterdir()}
    assert set(w["name"] for w in _wheels(lock).values()) <= kept


def test_relink_rebuilds_what_a_gc_took_before_a_moved_env_was_relinked(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path
) -> None:
    """Until relinked, a moved env is unknown to the store (its old root dangles), so a
    gc may collect its entries; relink then rebuilds them from wheels."""
    env = tmp_path / "env"
    _create(cli, store, env, wheelhouse, "--without-pip", *PURE)
    moved = tmp_path / "moved"
    os.rename(env, moved)
    assert cli("--store", store, "gc", "--grace", "0").code == 0
    assert [e for e in entries(store) if not e.startswith("pure/pip/")] == []
    res = cli("relink", moved, "--no-index", "-f", wheelhouse)
    assert res.code == 0, res.err
    _works(moved)
    assert _registered(store) == {str(moved)}
