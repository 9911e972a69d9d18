"""Crafted files on disk (reliability promises 14 and 16): a manifest, a view or a store
directory that a cloned repo or a tampered store could hold must never make envstore
write, rename, chmod or delete outside the store and the env, nor run a program it did
not find itself. Each test plants a canary directory outside both and checks that it
survives byte for byte."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import pytest
import wheelmaker
from conftest import CLI, PYTHONS, Result, run

Snapshot = dict[str, tuple[int, int, bytes | None]]

CANARY_FILES = {
    "a.txt": "precious\n",
    "b.pth": "import os\n",
    "sub/c.py": "C = 1\n",
}


def make_canary(path: Path, files: dict[str, str] | None = None) -> Path:
    for rel, text in (files or CANARY_FILES).items():
        (path / rel).parent.mkdir(parents=True, exist_ok=True)
        (path / rel).write_text(text)
    return path


def snapshot(root: Path) -> Snapshot:
    """Every path under ``root`` (never following links) -> (mode, inode, content)."""
    if not os.path.lexists(root):
        return {}

    def one(path: str) -> tuple[int, int, bytes | None]:
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            return st.st_mode, st.st_ino, os.fsencode(os.readlink(path))
        if stat.S_ISREG(st.st_mode):
            return st.st_mode, st.st_ino, Path(path).read_bytes()
        return st.st_mode, st.st_ino, None

    found = {".": one(str(root))}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            found[os.path.relpath(path, root)] = one(path)
    return found


def call(cli: CLI, *args: str | os.PathLike[str]) -> Result:
    """``cli(...)``, with an exception escaping ``main`` turned into a traceback in ``err``
    (so the test goes on to check what it did to the canary)."""
    try:
        return cli(*args)
    except Exception:
        return Result(-1, "", traceback.format_exc())


def assert_clean(r: Result, *, refused: bool = False) -> None:
    """No traceback; a refusal is an ``envstore: error:`` line and a non-zero exit."""
    assert "Traceback" not in r.err, r.err
    if refused:
        assert r.code != 0, (r.out, r.err)
        assert "envstore: error:" in r.err, r.err


def make_env(cli: CLI, store: Path, wheelhouse: Path, env: Path, *reqs: str) -> Path:
    r = cli(
        "--store", store, "create", env, "--without-pip", "--no-index", "-f", wheelhouse,
        *(reqs or ("solo",)),
    )  # fmt: skip
    assert r.code == 0, r.err
    return env


def edit_manifest(env: Path, change: Callable[[dict[str, object]], None]) -> None:
    path = env / "envstore.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def set_python(field: str, value: str) -> Callable[[dict[str, object]], None]:
    def change(data: dict[str, object]) -> None:
        data["python"][field] = value  # type: ignore[index]

    return change


def set_field(field: str, value: str) -> Callable[[dict[str, object]], None]:
    def change(data: dict[str, object]) -> None:
        data[field] = value

    return change


def entry_dir(store: Path, name: str) -> Path:
    (found,) = (store / "entries" / "pure" / name).iterdir()
    return found


def force_rmtree(path: Path) -> None:
    """Delete a read-only store tree (0555 directories stop anyone but root)."""
    for dirpath, dirnames, _ in os.walk(path):
        os.chmod(dirpath, 0o755)
        for d in dirnames:
            if not os.path.islink(os.path.join(dirpath, d)):
                os.chmod(os.path.join(dirpath, d), 0o755)
    shutil.rmtree(path)


def rel_or_abs(kind: str, target: Path, start: Path) -> str:
    return str(target) if kind == "absolute" else os.path.relpath(target, start)


PATH_KINDS = [pytest.param("absolute", id="absolute"), pytest.param("dotdot", id="dotdot")]


# -- 4: python.purelib -------------------------------------------------------------


@pytest.mark.parametrize("kind", PATH_KINDS)
def test_relink_and_remove_with_crafted_purelib(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path, kind: str
) -> None:
    canary = make_canary(tmp_path / "canary")
    before = snapshot(canary)
    env = make_env(cli, store, wheelhouse, tmp_path / "env")
    edit_manifest(env, set_python("purelib", rel_or_abs(kind, canary, env)))
    shutil.rmtree(env / "lib")  # nothing where relink would move the "old" site-packages
    relinked = call(cli, "relink", env)
    removed = call(cli, "remove", env)
    assert snapshot(canary) == before
    assert_clean(relinked)
    assert_clean(removed)


@pytest.mark.parametrize("kind", PATH_KINDS)
def test_export_with_crafted_purelib(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path, kind: str
) -> None:
    canary = make_canary(tmp_path / "canary")
    before = snapshot(canary)
    env = make_env(cli, store, wheelhouse, tmp_path / "env")
    # Relative to the export's temp directory, a sibling of DEST (and of env).
    edit_manifest(env, set_python("purelib", rel_or_abs(kind, canary / "site", env)))
    r = call(cli, "export", env, tmp_path / "dest")
    assert snapshot(canary) == before
    assert_clean(r)


# -- 5: view -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", PATH_KINDS)
def test_relink_with_view_leading_out_of_the_store(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path, kind: str
) -> None:
    canary = make_canary(tmp_path / "canary")
    before = snapshot(canary)
    env = make_env(cli, store, wheelhouse, tmp_path / "env")
    manifest = json.loads((env / "envstore.json").read_text())
    fake = tmp_path / "canary-view"
    (fake / "site").mkdir(parents=True)
    view = json.loads((store / "views" / str(manifest["view"]) / "view.json").read_text())
    view["pth"] = [[str(canary / n), str(canary / n)] for n in CANARY_FILES]
    (fake / "view.json").write_text(json.dumps(view))
    edit_manifest(env, set_field("view", rel_or_abs(kind, fake, store / "views")))
    r = call(cli, "relink", env)
    assert snapshot(canary) == before
    assert_clean(r)


def test_relink_with_tampered_view_json_in_the_store(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    canary = make_canary(tmp_path / "canary")
    before = snapshot(canary)
    env = make_env(cli, store, wheelhouse, tmp_path / "env")
    manifest = json.loads((env / "envstore.json").read_text())
    site = env / str(manifest["python"]["purelib"])
    vdir = store / "views" / str(manifest["view"])
    vjson = vdir / "view.json"
    view = json.loads(vjson.read_text())
    view["pth"] = [[os.path.relpath(canary / n, site), str(canary / n)] for n in CANARY_FILES]
    os.chmod(vdir, 0o755)
    os.chmod(vjson, 0o644)
    vjson.write_text(json.dumps(view))
    os.chmod(vjson, 0o444)
    os.chmod(vdir, 0o555)
    (env / "bin" / "python").unlink()  # something for relink to repair
    r = call(cli, "relink", env)
    assert snapshot(canary) == before
    assert_clean(r)


# -- 6: directories that only look like envs -------------------------------------------

BARE_MANIFESTS = [pytest.param("empty", id="empty-object"), pytest.param("copied", id="copied")]


def bare_manifest(kind: str, cli: CLI, store: Path, wheelhouse: Path, where: Path) -> Path:
    """A directory with an ``envstore.json`` (and other files) but no ``pyvenv.cfg``,
    registered nowhere."""
    target = make_canary(where)
    if kind == "empty":
        (target / "envstore.json").write_text("{}")
    else:
        env = make_env(cli, store, wheelhouse, where.parent / "real-env")
        data = json.loads((env / "envstore.json").read_text())
        data["env"] = str(target)
        (target / "envstore.json").write_text(json.dumps(data))
    return target


@pytest.mark.parametrize("kind", BARE_MANIFESTS)
def test_remove_refuses_a_directory_that_is_not_an_env(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path, kind: str
) -> None:
    target = bare_manifest(kind, cli, store, wheelhouse, tmp_path / "project")
    before = snapshot(target)
    r = call(cli, "remove", target)
    assert snapshot(target) == before
    assert_clean(r, refused=True)


@pytest.mark.parametrize("kind", BARE_MANIFESTS)
def test_create_clear_refuses_a_directory_that_is_not_an_env(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path, kind: str
) -> None:
    target = bare_manifest(kind, cli, store, wheelhouse, tmp_path / "project")
    before = snapshot(target)
    r = call(
        cli, "--store", store, "create", target, "--clear", "--without-pip", "--no-index",
        "-f", wheelhouse, "solo",
    )  # fmt: skip
    assert snapshot(target) == before
    assert_clean(r, refused=True)


def test_create_clear_replaces_a_plain_venv(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    made = run([sys.executable, "-m", "venv", "--without-pip", venv])
    assert made.returncode == 0, made.stderr
    assert (venv / "pyvenv.cfg").exists()
    r = call(
        cli, "--store", store, "create", venv, "--clear", "--without-pip", "--no-index",
        "-f", wheelhouse, "solo",
    )  # fmt: skip
    assert_clean(r)
    assert r.code == 0, r.err
    assert json.loads((venv / "envstore.json").read_text())["env"] == str(venv)
    check = run([venv / "bin" / "python", "-c", "import solo; print(solo.X)"])
    assert check.stdout.strip() == "5", check.stderr


# -- 7: store directories replaced by symlinks ---------------------------------------


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in ("tmp", "views", "wheels")])
def test_gc_does_not_follow_a_symlinked_store_directory(
    cli: CLI, store: Path, tmp_path: Path, name: str
) -> None:
    canary = make_canary(
        tmp_path / "canary",
        {
            "999999-entry-x-abc/x.py": "X = 1\n",
            "999999-view-abc/view.json": "{}\n",
            "0123456789abcdef0123456789abcdef/view.json": "{}\n",
            "junk-1.0-py3-none-any.whl": "not a zip\n",
            "a.txt": "precious\n",
        },
    )
    old = time.time() - 3 * 86400
    for dirpath, dirnames, filenames in os.walk(canary, topdown=False):
        for n in [*filenames, *dirnames]:
            os.utime(os.path.join(dirpath, n), (old, old))
    before = snapshot(canary)
    if (store / name).exists():
        force_rmtree(store / name)
    (store / name).symlink_to(canary)
    r = call(cli, "--store", store, "gc", "--grace", "0")
    assert snapshot(canary) == before
    assert_clean(r)


# -- 8: an entry that is a symlink out of the store ----------------------------------


def test_adding_bytecode_does_not_follow_an_entry_symlink(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    other = next((p for m, p in PYTHONS.items() if p and m != here), None)
    if other is None:
        pytest.skip("needs a second Python minor version")
    make_env(cli, store, wheelhouse, tmp_path / "env")
    entry = entry_dir(store, "solo")
    canary = tmp_path / "canary"
    shutil.copytree(entry, canary, symlinks=True, ignore=shutil.ignore_patterns("compiled-*"))
    before = snapshot(canary)
    assert not any(n.startswith("compiled-") for n in os.listdir(canary))
    assert stat.S_IMODE(before["."][0]) == 0o555
    force_rmtree(entry)
    entry.symlink_to(canary)
    r = call(
        cli, "--store", store, "create", tmp_path / "other", "-p", other, "--without-pip",
        "--no-index", "-f", wheelhouse, "solo",
    )  # fmt: skip
    assert snapshot(canary) == before
    assert_clean(r)


# -- 9: a manifest's store naming an ordinary directory --------------------------------

STORE_COMMANDS = [
    pytest.param(("relink", "{env}"), id="relink"),
    pytest.param(("export", "{env}", "{dest}"), id="export"),
]


@pytest.mark.parametrize("command", STORE_COMMANDS)
def test_a_manifest_store_is_never_created(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path, command: tuple[str, ...]
) -> None:
    # An ordinary directory that happens to have a locks/ (no store.json, no entries/).
    canary = make_canary(tmp_path / "canary", {**CANARY_FILES, "locks/notes.txt": "mine\n"})
    before = snapshot(canary)
    env = make_env(cli, store, wheelhouse, tmp_path / "env")
    edit_manifest(env, set_field("store", str(canary)))
    names = {"env": env, "wh": wheelhouse, "dest": tmp_path / "dest"}
    r = call(cli, *(a.format(**names) for a in command))
    assert snapshot(canary) == before
    assert_clean(r)


# -- 10: an env whose lib/ is a symlink out of it --------------------------------------


def test_relink_does_not_write_through_a_symlinked_lib(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    env = make_env(cli, store, wheelhouse, tmp_path / "env", "solo", "dep-one")
    canary = tmp_path / "canary"
    shutil.move(env / "lib", canary)
    (env / "lib").symlink_to(canary)
    (next(canary.glob("python3.*/site-packages")) / "00-envstore.pth").unlink()
    before = snapshot(canary)
    r = call(cli, "relink", env)
    assert snapshot(canary) == before
    assert_clean(r)


# -- 11: a wheel's files cannot impersonate envstore's -------------------------------


def test_data_file_named_like_the_manifest(cli: CLI, store: Path, tmp_path: Path) -> None:
    wh = tmp_path / "wh"
    planted = '{"planted": true}\n'
    wheelmaker.build_wheel(wh, "trojan", "1.0", data={"data/envstore.json": planted})
    results = {}
    for name in ("env1", "env2"):
        results[name] = call(
            cli, "--store", store, "create", tmp_path / name, "--without-pip", "--no-index",
            "-f", wh, "trojan",
        )  # fmt: skip
    for name, r in results.items():
        assert_clean(r)
        if r.code != 0:  # refused at ingest: nothing of it in the store
            assert not (store / "entries" / "pure" / "trojan").exists() or not any(
                (store / "entries" / "pure" / "trojan").iterdir()
            )
            continue
        manifest = tmp_path / name / "envstore.json"
        assert not manifest.is_symlink()
        assert json.loads(manifest.read_text())["env"] == str(tmp_path / name)
    for entry in (store / "entries" / "pure" / "trojan").glob("*"):
        assert (entry / "data" / "data" / "envstore.json").read_text() == planted


def test_data_script_named_like_the_launcher(cli: CLI, store: Path, tmp_path: Path) -> None:
    wh = tmp_path / "wh"
    wheelmaker.build_wheel(
        wh,
        "imposter",
        "1.0",
        files={"imposter/__init__.py": "def main():\n    print('the real entry point')\n"},
        entry_points={"console_scripts": {"imp": "imposter:main"}},
        data={"scripts/.envstore-scripts": "#!python\nprint('IMPOSTOR')\n"},
    )
    env = tmp_path / "env"
    r = call(
        cli, "--store", store, "create", env, "--without-pip", "--no-index", "-f", wh, "imposter"
    )
    assert_clean(r)
    if r.code == 0:
        ran = run([env / "bin" / "imp"])
        assert ran.stdout.strip() == "the real entry point", (ran.stdout, ran.stderr)


# -- 12: a manifest's python.path is never run unless envstore found it -----------------

PYTHON_COMMANDS = [
    pytest.param(("doctor", "{env}"), id="doctor"),
    pytest.param(("relink", "{env}"), id="relink"),
    pytest.param(("sync", "{env}", "solo", "--no-index", "-f", "{wh}", "--without-pip"), id="sync"),
    pytest.param(("export", "{env}", "{dest}"), id="export"),
]


@pytest.mark.parametrize("command", PYTHON_COMMANDS)
def test_a_manifest_python_is_never_run(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path, command: tuple[str, ...]
) -> None:
    env = make_env(cli, store, wheelhouse, tmp_path / "env")
    real = json.loads((env / "envstore.json").read_text())["python"]["path"]
    marker = tmp_path / "MARKER"
    fake = tmp_path / "fakepython"
    fake.write_text(f'#!/bin/sh\ntouch "{marker}"\nexec "{real}" "$@"\n')
    fake.chmod(0o755)
    edit_manifest(env, set_python("path", str(fake)))
    edit_manifest(env, set_python("resolved", str(fake)))
    names = {"env": env, "wh": wheelhouse, "dest": tmp_path / "dest"}
    r = call(cli, *(a.format(**names) for a in command))
    assert not marker.exists(), f"envstore ran {fake}"
    assert_clean(r)


# -- found by review: the ways round the first fixes ---------------------------------


@pytest.mark.parametrize("command", PYTHON_COMMANDS)
def test_a_link_to_a_real_python_beside_a_crafted_pyvenv_cfg_is_never_run(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path, command: tuple[str, ...]
) -> None:
    # The link is the same file as a Python envstore finds, but started from there that
    # Python reads the pyvenv.cfg beside it, whose home names a crafted stdlib.
    env = make_env(cli, store, wheelhouse, tmp_path / "env")
    real = json.loads((env / "envstore.json").read_text())["python"]["path"]
    minor = json.loads((env / "envstore.json").read_text())["python"]["version"][:4].rstrip(".")
    marker = tmp_path / "MARKER"
    evil = tmp_path / "evil"
    stdlib = evil / "lib" / f"python{minor}"
    (stdlib / "encodings").mkdir(parents=True)
    (stdlib / "os.py").write_text("")
    # Early in start-up: no open() yet, but posix is there.
    (stdlib / "encodings" / "__init__.py").write_text(
        f"import posix\nposix.mkdir({str(marker)!r})\n"
    )
    (evil / "bin").mkdir()
    (env / "pyvenv.cfg").write_text(f"home = {evil / 'bin'}\nenvstore = 1\n")
    link = env / "bin" / "python-crafted"
    link.symlink_to(real)
    edit_manifest(env, set_python("path", str(link)))
    names = {"env": env, "wh": wheelhouse, "dest": tmp_path / "dest"}
    r = call(cli, *(a.format(**names) for a in command))
    assert not marker.exists(), "envstore ran the crafted standard library"
    assert_clean(r)


def test_a_package_name_is_never_an_option_to_pip(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    canary = make_canary(tmp_path / "canary")
    before = snapshot(canary)
    env = make_env(cli, store, wheelhouse, tmp_path / "env")
    data = json.loads((env / "envstore.json").read_text())
    data["packages"][0]["name"] = f"--log={canary / 'piplog'}"
    data["packages"][0]["key"] = "pure/zzz/1-" + "0" * 32  # missing: relink would fetch it
    (env / "envstore.json").write_text(json.dumps(data))
    r = call(cli, "--store", store, "relink", env, "-f", wheelhouse)
    assert snapshot(canary) == before
    assert_clean(r, refused=True)


def test_a_requested_name_from_a_manifest_is_only_ever_a_python(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "MARKER"
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "not-python").write_text(f'#!/bin/sh\ntouch "{marker}"\n')
    (bindir / "not-python").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    env = make_env(cli, store, wheelhouse, tmp_path / "env")
    edit_manifest(env, set_python("path", str(tmp_path / "gone" / "python3")))
    edit_manifest(env, set_python("requested", "not-python"))
    call(cli, "--store", store, "relink", env)
    call(cli, "--store", store, "doctor", env)
    assert not marker.exists()


def test_relink_never_writes_its_manifest_through_a_planted_link(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    canary = make_canary(tmp_path / "canary")
    before = snapshot(canary)
    env = make_env(cli, store, wheelhouse, tmp_path / "env")
    from envstore.store.fs import temp_tag

    # The relink runs in this process: its temporary manifest has this host and pid.
    (env / f".envstore.json.{temp_tag()}.tmp").symlink_to(canary / "a.txt")
    (env / "bin" / "python").unlink()  # something for relink to do
    r = call(cli, "--store", store, "relink", env)
    assert r.code == 0, r.err
    assert snapshot(canary) == before
    assert not (env / "envstore.json").is_symlink()


def test_relink_refuses_a_linked_include_directory(
    cli: CLI, store: Path, tmp_path: Path, wheelhouse: Path
) -> None:
    canary = make_canary(tmp_path / "canary")
    before = snapshot(canary)
    env = make_env(cli, store, wheelhouse, tmp_path / "env", "hello-app")
    (inc,) = (env / "include" / "site").iterdir()
    force_rmtree(inc)
    inc.symlink_to(canary)
    (env / "bin" / "python").unlink()
    r = call(cli, "--store", store, "relink", env)
    assert snapshot(canary) == before
    assert_clean(r, refused=True)


def test_a_view_that_is_a_link_is_never_linked_into_a_new_env(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    env = make_env(cli, store, wheelhouse, tmp_path / "env")
    view = store / "views" / json.loads((env / "envstore.json").read_text())["view"]
    fake = tmp_path / "fake-view"
    shutil.copytree(view, fake, symlinks=True)
    view.chmod(0o755)  # a directory moves to another parent only if it is writable
    view.rename(tmp_path / "moved-view")
    view.symlink_to(fake)
    verified = cli("--store", store, "verify")
    assert verified.code == 1 and "is not a directory" in verified.out
    r = call(cli, "--store", store, "create", tmp_path / "env2", "--without-pip",
             "--no-index", "-f", wheelhouse, "solo")  # fmt: skip
    assert_clean(r, refused=True)
    assert not (tmp_path / "env2").exists()


@pytest.mark.parametrize("planted", ["locks/gc.lock", "envstore.db"])
def test_links_planted_for_the_lock_or_database_are_not_followed(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path, planted: str
) -> None:
    canary = make_canary(tmp_path / "canary")
    before = snapshot(canary)
    make_env(cli, store, wheelhouse, tmp_path / "env")
    path = store / planted
    if planted == "envstore.db":  # a database of its own outside, which gc would write
        shutil.copy(path, canary / "outside.db")
    path.unlink()
    for side in ("-wal", "-shm"):
        Path(f"{path}{side}").unlink(missing_ok=True)
    target = "outside.db" if planted == "envstore.db" else "created-through-the-link"
    before = snapshot(canary)
    path.symlink_to(canary / target)
    r = call(cli, "--store", store, "gc")
    assert snapshot(canary) == before
    assert_clean(r, refused=True)


def test_a_data_directory_named_like_the_manifest_is_refused(
    cli: CLI, store: Path, tmp_path: Path
) -> None:
    wh = tmp_path / "wh"
    wheelmaker.build_wheel(wh, "sneaky", "1.0", files={"sneaky.py": ""},
                           data={"data/envstore.json/x": "x"})  # fmt: skip
    r = call(cli, "--store", store, "create", tmp_path / "env", "--without-pip", "--no-index",
             "-f", wh, "sneaky")  # fmt: skip
    assert_clean(r, refused=True)
    assert "envstore.json" in r.err and "sneaky" in r.err
    assert not (store / "entries" / "pure" / "sneaky").exists()  # refused at ingest


def test_a_fifo_or_device_as_the_manifest_is_refused_not_waited_on(tmp_path: Path) -> None:
    """A cloned repo's ``.venv/envstore.json`` that is a FIFO (or a device) is refused
    as unreadable at once, never opened for a blocking read."""
    from envstore.errors import BadManifestError
    from envstore.model.manifest import Manifest

    env = tmp_path / ".venv"
    env.mkdir()
    os.mkfifo(env / "envstore.json")
    with pytest.raises(BadManifestError, match="not a regular file"):
        Manifest.load(env)
    (env / "envstore.json").unlink()
    (env / "envstore.json").symlink_to("/dev/zero")
    with pytest.raises(BadManifestError, match="not a regular file"):
        Manifest.load(env)


def test_a_remembered_build_that_names_no_entry_is_no_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database is data from disk: a remembered build of a local project whose row
    holds no entry key is no build (it was parsed unguarded: a ValueError traceback)."""
    import sys

    from envstore.python.interpreters import find_interpreter
    from envstore.resolve import cache
    from envstore.resolve.forms import classify
    from envstore.store.layout import Store

    st = Store(tmp_path / "store")
    st.ensure()
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "pyproject.toml").write_text("[project]\nname = 'p'\nversion = '1'\n")
    interp = find_interpreter(sys.executable, st.facts_cache())
    for row in ({"key": "../../etc/passwd"}, {"nokey": 1}, "text"):
        monkeypatch.setattr(cache.caches, "resolution", lambda conn, key, row=row: [row])
        assert cache.built_entry(st, classify(str(proj)), interp) is None
