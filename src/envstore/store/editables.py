"""The cache of editable wheels: ``<store>/editables/<project>/<stamp>.whl``.

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
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from envstore.errors import StoreError
from envstore.store.fs import rmtree
from envstore.store.layout import Store

__all__ = ["EditableCache", "project_key", "ref"]


def project_key(project: str | os.PathLike[str]) -> str:
    """The cache directory name of a project directory: a hash of its absolute path."""
    return hashlib.sha256(os.fsencode(os.path.abspath(project))).hexdigest()[:32]


def ref(project: str | os.PathLike[str]) -> str:
    """How an env's ``refs`` rows name the cached editable wheels of ``project``."""
    return f"editable/{project_key(project)}"


class EditableCache:
    """Editable wheels per project directory, in one store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.root = store.root / "editables"

    def _dir(self, project: Path) -> Path:
        return self.root / project_key(project)

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
