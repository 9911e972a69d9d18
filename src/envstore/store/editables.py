"""The cache of editable wheels: ``<store>/editables/<project>/<stamp>/NAME.whl``.

An editable wheel (PEP 660) is tiny (a ``.pth`` or an import hook naming the
project's source, and its dist-info) but building it runs the project's backend,
which costs a second or more. It is never ingested as an entry: it is installed
into an env's own site-packages. The cache keeps one wheel per project directory
(``<project>`` hashes its absolute path) under the stamp of what it was built
from (see ``envstore.env.editable.stamp``); a wheel built from a newer stamp
replaces the old one.

gc keeps a project's directory while a live env, or one gone for less than the
grace period, lists the project as an editable (its ``refs`` rows name
``editable/<project>``, see ``ref``), and while a wheel in it is younger than the
grace period (a create between building it and registering its env).

Beside each wheel, ``wheel.json`` holds what installing it needs, read once from
the wheel (its files, name, version and Requires-Dist) and the Requires-Dist that
apply per interpreter and extras, so a sync that takes the wheel from the cache
reads neither the zip nor its METADATA (``envstore.env.editable``). It is data from
disk like the wheel: checked when read, and made again from the wheel when absent
or unreadable (a cache made before it existed has none).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from envstore.errors import StoreError
from envstore.store.fs import read_small, rmtree, temp_tag
from envstore.store.index import editable_ref as ref
from envstore.store.index import project_key
from envstore.store.layout import Store

__all__ = ["META_NAME", "PROJECT_NAME", "EditableCache", "project_key", "ref"]

META_NAME = "wheel.json"
PROJECT_NAME = "pyproject.json"


class EditableCache:
    """Editable wheels per project directory, in one store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.root = store._sub("editables")  # joined once per Store

    def _dir(self, project: Path) -> Path:
        key = (str(self.root), str(project))
        found = _DIRS.get(key)  # a sync asks ~3 times: a hash and a Path each
        if found is None:
            if len(_DIRS) >= 64:  # bounded: a process syncing many projects
                _DIRS.clear()
            found = _DIRS[key] = self.root / project_key(project)
        return found

    def lookup(self, project: Path, stamp: str) -> Path | None:
        """The wheel built for ``project`` at ``stamp``, if the cache has it."""
        directory = self._dir(project) / stamp
        if not self.store.owns(directory) or directory.is_symlink():
            return None
        try:
            names = [n for n in os.listdir(directory) if n.endswith(".whl")]
        except OSError:
            return None
        found = directory / names[0] if len(names) == 1 else None
        if found is None or found.is_symlink():
            return None
        try:  # used now: young again, so a gc before its env is registered keeps it
            os.utime(directory)
        except OSError:
            pass  # a read-only store: gc is not run on it either
        return found

    def publish(self, project: Path, stamp: str, built: Path) -> Path:
        """Keep the wheel ``built`` (alone in a directory of the store's ``tmp/``, which
        is renamed into the cache: whole or absent) for ``project`` at ``stamp``; the
        project's wheels of other stamps go. Returns the cached wheel."""
        directory = self._dir(project)
        final = directory / stamp
        try:
            self.root.mkdir(exist_ok=True)
            directory.mkdir(exist_ok=True)
            if not self.store.owns(final) or directory.is_symlink():
                raise StoreError(f"{directory} is not a directory of the store")
            try:
                os.rename(built.parent, final)
            except OSError:  # another process cached the same stamp first: use its wheel
                if not final.is_dir():
                    raise
            for name in os.listdir(directory):
                old = directory / name
                if name != stamp and not old.is_symlink() and old.is_dir():
                    rmtree(old)
        except OSError as exc:
            raise StoreError(f"cannot cache the editable wheel in {directory}: {exc}") from exc
        found = self.lookup(project, stamp)
        if found is None:
            raise StoreError(f"{final} does not hold one editable wheel")
        return found

    def read_project(self, project: Path) -> dict[str, object] | None:
        """The project's ``pyproject.json`` (what its pyproject.toml parsed to, under
        the digest of its bytes; see ``envstore.resolve.project``), or None."""
        return _read_json(self._dir(project) / PROJECT_NAME)

    def project_identity(self, project: Path) -> tuple[int, ...] | None:
        """The identity of the project's ``pyproject.json`` (device, inode, size, mtime,
        ctime), None when there is no such regular file: a process that read or wrote
        it can tell it is still that file."""
        try:
            st = os.lstat(self._dir(project) / PROJECT_NAME)
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def write_project(self, project: Path, data: dict[str, object]) -> None:
        """Replace the project's ``pyproject.json`` whole; a store this user cannot
        write keeps what it has (a cache)."""
        directory = self._dir(project)
        try:
            self.root.mkdir(exist_ok=True)
            directory.mkdir(exist_ok=True)
        except OSError:
            return
        _write_json(self.store, directory / PROJECT_NAME, data)

    def read_meta(self, wheel: Path) -> dict[str, object] | None:
        """The ``wheel.json`` beside ``wheel`` (a wheel ``lookup`` found), or None when
        there is none or it is not a JSON object (the caller checks its fields)."""
        return _read_json(wheel.parent / META_NAME)

    def write_meta(self, wheel: Path, data: dict[str, object]) -> None:
        """Replace the ``wheel.json`` beside ``wheel`` whole (a temporary file renamed
        over it). A store this user cannot write (a shared, read-only one) keeps its
        old one: the meta is a cache, worth nothing to fail a sync over."""
        _write_json(self.store, wheel.parent / META_NAME, data)


# Each project's directory in a cache, by the cache's root and the project's path (the
# directory is named by a hash of the path alone).
_DIRS: dict[tuple[str, str], Path] = {}

# A cache file larger than this is not read (an editable wheel's files are a few KB).
_MAX_JSON = 16 * 1024 * 1024


def _read_json(path: Path) -> dict[str, object] | None:
    """A regular file's JSON object (no link followed, no FIFO waited on, bounded)."""
    raw = read_small(path, _MAX_JSON)
    try:
        data = json.loads(raw) if raw is not None else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _write_json(store: Store, final: Path, data: dict[str, object]) -> None:
    """``final`` (a cache file in the store) replaced whole by a rename, never through
    a link; any failure leaves what was there."""
    tmp = final.parent / f".{final.name}.{temp_tag()}"  # a host's pid: not unique alone
    try:
        if not store.owns(final.parent) or final.parent.is_symlink():
            return
        text = json.dumps(data, sort_keys=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        with open(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.rename(tmp, final)
    except (OSError, TypeError, ValueError):  # TypeError, ValueError: not JSON (a TOML date)
        try:
            os.unlink(tmp)
        except OSError:
            pass
