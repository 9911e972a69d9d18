"""The editable install without pypa/installer (#21's speed work): a cached editable
wheel of plain files is installed from its ``wheel.json`` with ``os`` calls. It must
install exactly what installer installs, and a crafted ``wheel.json`` (data from
disk) must never write outside the env nor put code into a script."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import wheelmaker
from conftest import CLI, run
from projectmaker import builds, make_project

from envstore.env import editable_install


def _project(root: Path) -> Path:
    return make_project(
        root,
        dependencies=["dep-one"],
        optional_dependencies={"x": ["extra-dep"]},
        scripts={"sample-cli": "sample:main"},
    )


@pytest.fixture
def wheels(tmp_path: Path) -> Path:
    wh = tmp_path / "wheels"
    wh.mkdir()
    for name in ("dep-one", "extra-dep"):
        wheelmaker.build_wheel(wh, name, "1.0", files={f"{name.replace('-', '_')}/x.py": ""})
    return wh


def _tree(env: Path) -> dict[str, bytes | str]:
    """site-packages and bin/ of ``env``: path -> content (or link target)."""
    out: dict[str, bytes | str] = {}
    for top in ("lib", "bin"):
        for dirpath, _dirs, files in os.walk(env / top):
            for f in files:
                p = Path(dirpath) / f
                rel = str(p.relative_to(env))
                if "__pycache__" in rel:
                    continue
                out[rel] = os.readlink(p) if p.is_symlink() else p.read_bytes()
    return out


def _metas(store: Path) -> list[Path]:
    return list((store / "editables").glob("*/*/wheel.json"))


def test_same_files_as_pypa_installer(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = _project(tmp_path / "proj")
    env = tmp_path / "env"
    args = ("-e", f"{proj}[x]", "--no-index", "-f", wheels, "--store", store)
    assert cli("create", env, *args).code == 0
    assert len(_metas(store)) == 1  # the wheel's files, kept beside it
    fast = _tree(env)
    assert run([env / "bin" / "sample-cli"]).returncode == 0
    # The same env through pypa/installer: what the fast path must equal.
    monkeypatch.setattr(editable_install, "_install_files", None)
    for meta in _metas(store):
        data = json.loads(meta.read_text())
        data["files"] = None
        meta.write_text(json.dumps(data))
    assert cli("create", env, "--clear", *args).code == 0
    slow = _tree(env)
    assert fast.keys() == slow.keys()
    for name in fast:
        if name.endswith("RECORD"):  # the same rows, maybe in another order
            assert sorted(fast[name].splitlines()) == sorted(slow[name].splitlines())  # type: ignore[union-attr]
        else:
            assert fast[name] == slow[name], name
    assert builds(proj) == ["editable"]  # both from the cache


def test_pip_uninstalls_the_fast_editable(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path
) -> None:
    proj = _project(tmp_path / "proj")
    env = tmp_path / "env"
    assert cli("create", env, "-e", proj, "--no-index", "-f", wheels, "--store", store).code == 0
    r = run([env / "bin" / "python", "-m", "pip", "uninstall", "-y", "sample"])
    assert r.returncode == 0, r.stderr
    assert not (env / "bin" / "sample-cli").exists()
    assert run([env / "bin" / "python", "-c", "import sample"]).returncode != 0


@pytest.mark.parametrize(
    "crafted",
    [
        {"../../../../escaped.txt": "x"},
        {"/tmp/escaped.txt": "x"},
        {"sample-0.1.data/scripts/evil": "x"},
    ],
)
def test_crafted_meta_files_are_not_written(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path, crafted: dict[str, str]
) -> None:
    proj = _project(tmp_path / "proj")
    args = ("-e", proj, "--no-index", "-f", wheels, "--store", store)
    assert cli("create", tmp_path / "env", *args).code == 0
    (meta,) = _metas(store)
    data = json.loads(meta.read_text())
    data["files"].update(crafted)
    meta.write_text(json.dumps(data))
    env = tmp_path / "env2"
    r = cli("create", env, *args)
    assert r.code == 0, r.err  # the meta is read again from the wheel
    assert not list(tmp_path.rglob("escaped.txt")) and not Path("/tmp/escaped.txt").exists()
    assert not (env / "bin" / "evil").exists()
    assert run([env / "bin" / "sample-cli"]).returncode == 0


def test_crafted_entry_point_puts_no_code_in_a_script(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path
) -> None:
    proj = _project(tmp_path / "proj")
    args = ("-e", proj, "--no-index", "-f", wheels, "--store", store)
    assert cli("create", tmp_path / "env", *args).code == 0
    (meta,) = _metas(store)
    data = json.loads(meta.read_text())
    (ep,) = [k for k in data["files"] if k.endswith("entry_points.txt")]
    data["files"][ep] = "[console_scripts]\nsample-cli = os; open('/tmp/pwn','w'):main\n"
    meta.write_text(json.dumps(data))
    r = cli("create", tmp_path / "env2", *args)
    assert r.code != 0 and "not a valid console script" in r.err
    assert "Traceback" not in r.err
    assert not (tmp_path / "env2").exists()


def test_gc_at_grace_zero_waits_for_a_create_that_found_the_cached_wheel(
    tmp_path: Path, store: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gc --grace 0 between a create's editable cache hit and the registration of its
    env deleted the cached wheel no env listed yet: the next sync built it again."""
    import threading

    import envstore
    from envstore.env import editable
    from envstore.store.gc import collect
    from envstore.store.layout import Store

    proj = _project(tmp_path / "proj")
    kw = {
        "store": store,
        "sources": envstore.PackageSources(find_links=[str(wheels)], no_index=True),
    }
    envstore.create_env(tmp_path / "env", editables=[str(proj)], **kw)  # type: ignore[arg-type]
    envstore.remove_env(tmp_path / "env", store=store)  # no env lists the project now
    assert builds(proj) == ["editable"]
    real = editable.prepare_editables
    errors: list[BaseException] = []
    workers: list[threading.Thread] = []

    def gc_now() -> None:
        try:
            collect(Store(store), grace=0)
        except BaseException as exc:  # a gc that gave up waiting keeps everything
            errors.append(exc)

    def prepare_then_gc(*args: object, **kwargs: object) -> object:
        found = real(*args, **kwargs)  # type: ignore[arg-type]
        worker = threading.Thread(target=gc_now)
        workers.append(worker)
        worker.start()
        worker.join(2)  # gc runs now unless the create holds it off
        return found

    monkeypatch.setattr(editable, "prepare_editables", prepare_then_gc)
    envstore.create_env(tmp_path / "env2", editables=[str(proj)], **kw)  # type: ignore[arg-type]
    monkeypatch.setattr(editable, "prepare_editables", real)
    for worker in workers:
        worker.join()
    envstore.create_env(tmp_path / "env3", editables=[str(proj)], **kw)  # type: ignore[arg-type]
    assert builds(proj) == ["editable"]  # the cached wheel survived: not built again


def test_a_damaged_pyproject_cache_is_read_again_from_the_file(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path
) -> None:
    """editables/<project>/pyproject.json is a cache of the file under its digest:
    garbage, a record of other contents, or fields of the wrong type are ignored."""
    proj = _project(tmp_path / "proj")
    args = ("sync", "--no-index", "-f", wheels, "--store", store, "--project", proj)
    assert cli(*args).code == 0
    (cache,) = list((store / "editables").glob("*/pyproject.json"))
    good = json.loads(cache.read_text())
    assert good["toml"]["project"]["name"] == "sample"
    for bad in ("not json", json.dumps({**good, "toml": []}), json.dumps({**good, "digest": "x"})):
        cache.write_text(bad)
        r = cli(*args)
        assert r.code == 0, r.err
        assert run([proj / ".venv" / "bin" / "sample-cli"]).returncode == 0
        assert json.loads(cache.read_text()) == good  # written again from the file


def test_a_fifo_in_the_cache_is_not_waited_on(tmp_path: Path, store: Path, wheels: Path) -> None:
    """A FIFO planted as pyproject.json (or wheel.json) is skipped, never opened for a
    blocking read: sync goes on from the file."""
    import sys

    proj = _project(tmp_path / "proj")
    cmd = [sys.executable, "-m", "envstore", "--store", store, "sync", "--no-index", "-f"]
    cmd += [wheels, "--project", proj]
    assert run(cmd).returncode == 0
    for name in ("*/pyproject.json", "*/*/wheel.json"):
        (cache,) = list((store / "editables").glob(name))
        cache.unlink()
        os.mkfifo(cache)
        r = run([*cmd, "-U"])  # -U: the editable wheel is built anew too
        assert r.returncode == 0, r.stderr


def _registrations(store: Path) -> list[str]:
    import sqlite3

    with sqlite3.connect(store / "envstore.db") as conn:
        return sorted(row[0] for row in conn.execute("SELECT path FROM envs"))


def test_a_sync_into_a_removed_env_retires_and_registers_in_one_transaction(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    from envstore.store import index

    proj = _project(tmp_path / "proj")
    env = proj / ".venv"
    args = ("--no-index", "-f", wheels, "--store", store, "--without-pip")
    assert cli("sync", "--project", proj, *args).code == 0
    root = next(p for p in (store / "roots").iterdir() if os.readlink(p) == f"{env}/envstore.json")
    inode = os.lstat(root).st_ino
    shutil.rmtree(env)  # as `rm -rf .venv && envstore sync`

    def fails(*a: object, **k: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(index, "put_env", fails)
    assert cli("sync", "--project", proj, *args).code != 0
    # Nothing committed: the registration is still the old env's, not retired.
    assert _registrations(store) == [str(env)]
    monkeypatch.undo()
    assert cli("sync", "--project", proj, *args).code == 0
    new, old = _registrations(store)  # sorted: the path, then "path (earlier env, ...)"
    assert new == str(env) and old.startswith(f"{env} (earlier env, replaced ")
    # The env's gc root already named its manifest: kept, not made again.
    assert os.lstat(root).st_ino == inode and os.readlink(root) == f"{env}/envstore.json"


def test_in_a_shared_store_a_sync_makes_the_gc_root_anew(
    cli: CLI, tmp_path: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a shared store a root link's mtime is when its host last saw the env (other
    hosts drop a local root unseen for long): registering makes it anew, not kept."""
    import shutil

    monkeypatch.setenv("ENVSTORE_SHARED", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    store = tmp_path / "shared-store"
    proj = _project(tmp_path / "proj")
    env = proj / ".venv"
    args = ("--no-index", "-f", wheels, "--store", store, "--without-pip")
    assert cli("sync", "--project", proj, *args).code == 0
    (root,) = (p for p in (store / "roots").iterdir() if p.is_symlink())
    inode = os.lstat(root).st_ino
    shutil.rmtree(env)
    assert cli("sync", "--project", proj, *args).code == 0
    assert os.readlink(root) == f"{env}/envstore.json"
    assert os.lstat(root).st_ino != inode


def test_activation_scripts_of_each_env_in_one_process(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path
) -> None:
    """The rendered scripts are kept per process: each env still gets its own."""
    args = ("--no-index", "-f", wheels, "--store", store, "--without-pip", "dep-one")
    for env, prompt in ((tmp_path / "a", "one"), (tmp_path / "a", "two"), (tmp_path / "b", "two")):
        assert cli("create", env, "--clear", "--prompt", prompt, *args).code == 0
        for script in ("activate", "activate.fish", "activate.csh"):
            text = (env / "bin" / script).read_text()
            assert f"({prompt})" in text and str(env) in text, (env, prompt, script)
            assert str(tmp_path / ("b" if env.name == "a" else "a")) not in text


def test_a_view_is_read_again_when_its_file_changes(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path
) -> None:
    """make_env keeps the views it read (by file identity): another file is read anew."""
    from envstore.env import make

    env = tmp_path / "env"
    assert cli("create", env, "--no-index", "-f", wheels, "--store", store, "dep-one").code == 0
    vpath = store / "views" / json.loads((env / "envstore.json").read_text())["view"]
    first = make._read_view(vpath)
    assert make._read_view(vpath) is first  # kept
    data = json.loads((vpath / "view.json").read_text())
    data["wheels"] = {}
    vpath.chmod(0o755)
    (vpath / "view.json.new").write_text(json.dumps(data))
    os.replace(vpath / "view.json.new", vpath / "view.json")
    again = make._read_view(vpath)
    assert again is not first and again.wheels == {} and first.wheels


def test_a_wheel_json_is_read_again_when_it_changes(
    cli: CLI, tmp_path: Path, store: Path, wheels: Path
) -> None:
    """editable_meta keeps what it read (by wheel.json's identity): a new file is read."""
    from envstore.env.editable_meta import editable_meta
    from envstore.store.editables import EditableCache
    from envstore.store.layout import Store

    proj = _project(tmp_path / "proj")
    args = ("-e", proj, "--no-index", "-f", wheels, "--store", store)
    assert cli("create", tmp_path / "env", *args).code == 0
    (meta_path,) = _metas(store)
    wheel = next(meta_path.parent.glob("*.whl"))
    cache = EditableCache(Store(store))
    first = editable_meta(cache, wheel)
    assert editable_meta(cache, wheel) is first
    data = json.loads(meta_path.read_text())
    data["version"] = "9.9"
    meta_path.with_suffix(".new").write_text(json.dumps(data))
    os.replace(meta_path.with_suffix(".new"), meta_path)
    assert editable_meta(cache, wheel).version == "9.9" and first.version == "0.1"
