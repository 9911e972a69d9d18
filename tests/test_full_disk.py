"""A full disk (ENOSPC) while unpacking a wheel, writing ``entry.json``, writing the env,
or opening the database: one ``envstore: error:`` line saying so and naming the path or
the wheel, nothing half-published, and the next create (space freed) works.

The unprivileged tests inject the fault in-process at the lowest level envstore writes
through: a matching file opened for writing either fails to be created
(``OSError(ENOSPC, ..., path)``, a directory with no room for another name) or is
created and then has ``/dev/full`` behind its descriptor, so every ``write(2)`` on it
fails with the kernel's own ENOSPC (no file name attached, as on a real full disk).
``rebuild-db`` on a full disk is covered by test_seals.py. The root-only test uses a
real size-limited tmpfs.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import wheelmaker
from conftest import CLI, Result, entries

from envstore.store import db as _db

NO_SPACE = "No space left on device"
HOW = ["create", "write"]  # fails to create the file / created, its writes fail

needs_dev_full = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")


@contextmanager
def full_disk(match: Callable[[str], bool], how: str) -> Iterator[list[str]]:
    """While active, files opened for writing whose path ``match``es hit ENOSPC (see the
    module docstring for ``how``). Yields the paths that were hit."""
    hits: list[str] = []
    real_os_open = os.open
    real_io_open = io.open

    def fill(fd: int) -> None:
        full = real_os_open("/dev/full", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.dup2(full, fd, inheritable=False)
        finally:
            os.close(full)

    def os_open(path: object, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        name = os.fsdecode(path) if isinstance(path, (str, bytes, os.PathLike)) else ""
        if dir_fd is None and flags & (os.O_WRONLY | os.O_RDWR) and name and match(name):
            hits.append(name)
            if how == "create":
                raise OSError(errno.ENOSPC, NO_SPACE, name)
            fd = real_os_open(path, flags, mode)  # type: ignore[arg-type]
            fill(fd)
            return fd
        return real_os_open(path, flags, mode, dir_fd=dir_fd)  # type: ignore[arg-type]

    def io_open(file: object, mode: str = "r", *args: object, **kwargs: object) -> object:
        writing = any(c in mode for c in "wax+")
        if writing and isinstance(file, (str, bytes, os.PathLike)):
            name = os.fsdecode(file)
            if match(name):
                hits.append(name)
                if how == "create":
                    raise OSError(errno.ENOSPC, NO_SPACE, name)
                f = real_io_open(file, mode, *args, **kwargs)  # type: ignore[call-overload]
                fill(f.fileno())
                return f
        return real_io_open(file, mode, *args, **kwargs)  # type: ignore[call-overload]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "open", os_open)
        mp.setattr(io, "open", io_open)  # pathlib's write_text/open go through io.open
        mp.setattr(builtins, "open", io_open)
        yield hits


def snapshot(store: Path) -> dict[str, list[str]]:
    return {
        "entries": entries(store),
        "views": sorted(os.listdir(store / "views")) if (store / "views").is_dir() else [],
        "roots": sorted(os.listdir(store / "roots")) if (store / "roots").is_dir() else [],
    }


def assert_reported(res: Result, *names: str) -> None:
    """Exit 1, one ``envstore: error:`` line saying the disk is full and naming one of
    ``names`` (a path or the wheel), no traceback."""
    assert res.code == 1, (res.code, res.err)
    assert "Traceback" not in res.err, res.err
    lines = res.err.strip().splitlines()
    assert len(lines) == 1, f"not one line: {res.err!r}"
    line = lines[0]
    assert line.startswith("envstore: error: "), line
    low = line.lower()
    assert "no space left" in low or "disk is full" in low, f"does not say the disk is full: {line}"
    assert any(n in line for n in names), f"names none of {names}: {line}"


def assert_nothing_half_done(store: Path, env: Path, before: dict[str, list[str]]) -> None:
    after = snapshot(store)
    assert after["entries"] == before["entries"], "an entry was published"
    assert after["views"] == before["views"], "a view was published"
    assert after["roots"] == before["roots"], "an env was registered"
    assert list((store / "tmp").iterdir()) == [], "tmp/ left behind"
    assert not os.path.lexists(env), "a half env at the target path"
    temps = list(env.parent.glob(f".{env.name}.envstore-tmp-*"))
    assert temps == [], f"temp env left behind: {temps}"


def assert_recovers(cli: CLI, store: Path, env: Path, *create: str | os.PathLike[str]) -> None:
    res = cli("--store", store, "create", env, *create)
    assert res.code == 0, res.err
    assert (env / "envstore.json").is_file()
    res = cli("--store", store, "verify", "--check-contents")
    assert res.code == 0 and "no problems found" in res.out, res.out + res.err


def wheel_name(wheelhouse: Path, dist: str) -> str:
    return max(p.name for p in wheelhouse.glob(f"{dist}-*.whl"))


@needs_dev_full
@pytest.mark.parametrize("how", HOW)
def test_full_disk_while_unpacking_a_wheel(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path, how: str
) -> None:
    # hello-app and dep-one unpack side by side; dep-one's module hits the full disk.
    env = tmp_path / "env"
    args = ["--without-pip", "--no-index", "-f", wheelhouse, "hello-app"]
    before = snapshot(store)

    def match(p: str) -> bool:
        return p.startswith(f"{store}/tmp/") and p.endswith("/dep_one/__init__.py")

    with full_disk(match, how) as hits:
        res = cli("--store", store, "create", env, *args)
    assert hits, "the fault was never hit: envstore writes members some other way now"
    assert_nothing_half_done(store, env, before)
    assert_recovers(cli, store, env, *args)
    assert_reported(res, "dep_one-1.", "dep_one/__init__.py")


@needs_dev_full
@pytest.mark.parametrize("how", HOW)
def test_full_disk_while_writing_entry_json(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path, how: str
) -> None:
    env = tmp_path / "env"
    args = ["--without-pip", "--no-index", "-f", wheelhouse, "hello-app"]
    before = snapshot(store)

    def match(p: str) -> bool:
        return p.startswith(f"{store}/tmp/") and p.endswith("/entry.json")

    with full_disk(match, how) as hits:
        res = cli("--store", store, "create", env, *args)
    assert hits, "the fault was never hit: envstore writes entry.json some other way now"
    wheels = [wheel_name(wheelhouse, d) for d in ("hello_app", "dep_one")]
    assert_nothing_half_done(store, env, before)
    assert_recovers(cli, store, env, *args)
    assert_reported(res, "entry.json", *wheels)


@needs_dev_full
@pytest.mark.parametrize("how", HOW)
@pytest.mark.parametrize("target", ["bin/activate", "envstore.json"])
def test_full_disk_while_writing_the_env(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path, how: str, target: str
) -> None:
    env = tmp_path / "env"
    args = ["--without-pip", "--no-index", "-f", wheelhouse, "solo"]
    before = snapshot(store)
    temp = f"{tmp_path}/.{env.name}.envstore-tmp-"

    def match(p: str) -> bool:
        return p.startswith(temp) and p.endswith(f"/{target}")

    with full_disk(match, how) as hits:
        res = cli("--store", store, "create", env, *args)
    assert hits, f"the fault was never hit: envstore writes {target} some other way now"
    # The entry and view it made are complete and may stay (a later create uses them);
    # only the env must not be there, half or whole.
    before["entries"] = entries(store)
    before["views"] = sorted(os.listdir(store / "views"))
    assert_nothing_half_done(store, env, before)
    assert_recovers(cli, store, env, *args)
    assert_reported(res, str(env), temp)


class _FullConnection:
    """A connection whose every statement fails as SQLite does on a full disk."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, *args: object) -> sqlite3.Cursor:
        raise sqlite3.OperationalError("database or disk is full")

    def __getattr__(self, name: str) -> object:
        return getattr(self._conn, name)


@pytest.mark.parametrize("where", ["connect", "first-statement"])
def test_full_disk_on_opening_the_database(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path, where: str
) -> None:
    env = tmp_path / "env"
    args = ["--without-pip", "--no-index", "-f", wheelhouse, "solo"]
    before = snapshot(store)
    real_connect = sqlite3.connect
    calls: list[object] = []

    def connect(*a: object, **k: object) -> object:
        calls.append(a)
        if where == "connect":
            raise sqlite3.OperationalError("database or disk is full")
        return _FullConnection(real_connect(*a, **k))  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_db.sqlite3, "connect", connect)
        res = cli("--store", store, "create", env, *args)
    assert calls, "the database was never opened"
    assert_nothing_half_done(store, env, before)
    assert_recovers(cli, store, env, *args)
    assert_reported(res, str(store / "envstore.db"))
    assert "rebuild-db" not in res.err and "unreadable" not in res.err, res.err


@pytest.mark.root_only
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="mount needs root")
def test_a_real_full_tmpfs(cli: CLI, wheelhouse: Path, tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.mkdir()
    # 4 MB that do not compress: the wheel fits on the big disk, its contents not on 3 MB.
    wheelmaker.build_wheel(big, "bigpkg", "1.0", files={"bigpkg/blob.bin": os.urandom(4 << 20)})
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m,mode=0755", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        store = mnt / "store"
        env = mnt / "env"
        first = cli("--store", store, "create", mnt / "warm", "--without-pip", "--no-index",
                    "-f", wheelhouse, "solo")  # fmt: skip
        assert first.code == 0, first.err
        before = snapshot(store)
        args = ["--without-pip", "--no-index", "-f", big, "-f", wheelhouse, "bigpkg"]
        res = cli("--store", store, "create", env, *args)
        assert_nothing_half_done(store, env, before)
        assert_recovers(cli, store, env, "--without-pip", "--no-index", "-f", wheelhouse,
                        "ns-alpha")  # fmt: skip
        assert_reported(res, "bigpkg", str(store), str(env))
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False, capture_output=True)
