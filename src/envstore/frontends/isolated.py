"""Throwaway environments for build frontends (pypa/build, tox, nox, hatch).

:class:`IsolatedEnv` satisfies pypa/build's ``build.env.IsolatedEnv`` protocol
(``python_executable`` and ``make_extra_environ()``), so it plugs into
``build.ProjectBuilder.from_isolated_env``. It is a thin envstore environment:
entering creates it (a few small files, no copies), ``install()`` re-creates it
with the union of everything asked for so far (one consistent resolution,
served from the store and fetched through the same path as ``envstore
create`` when missing), and leaving deletes it and releases its store
references. It has no pip: envstore is the installer.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from envstore.env.lifecycle import create_env
from envstore.env.remove import remove_env
from envstore.errors import EnvError, EnvstoreError
from envstore.model.manifest import MANIFEST_NAME, Manifest
from envstore.model.sources import PackageSources, sources_from
from envstore.store.fs import rmtree
from envstore.store.layout import Store

__all__ = ["IsolatedEnv"]

_E = TypeVar("_E", bound="IsolatedEnv")


class IsolatedEnv:
    """A thin environment that lives for one ``with`` block.

    >>> wheels = PackageSources(find_links=["wheels"], no_index=True)
    >>> with IsolatedEnv(sources=wheels) as env:  # doctest: +SKIP
    ...     env.install(["setuptools>=61"])
    ...     subprocess.run([env.python_executable, "-c", "import setuptools"])

    ``path`` is where the env goes (default: a fresh directory from
    :func:`tempfile.mkdtemp`); it must not exist or be empty. The other options
    mean what they mean for :func:`envstore.create_env` (relative ``--find-links``
    directories are taken from the current directory here, not at each install); so does
    ``max_age``: a frontend making many envs of the same requirements within it starts
    pip once, and ``float("inf")`` takes whatever the store has. Errors are
    :class:`envstore.EnvstoreError` subclasses; nothing is printed.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        requirements: Iterable[str] = (),
        python: str | None = None,
        store: Store | str | os.PathLike[str] | None = None,
        requirement_files: Sequence[str] = (),
        sources: PackageSources | None = None,
        find_links: Sequence[str] = (),
        index_url: str | None = None,
        no_index: bool = False,
        offline: bool = False,
        progress: Callable[[str], None] | None = None,
        max_age: float | None = None,
    ) -> None:
        self._requested_path = None if path is None else os.fspath(path)
        self._requirements: list[str] = []
        self._add(requirements)
        self._python = python
        self._owns_store = not isinstance(store, Store)
        self._store = store if isinstance(store, Store) else Store(store)
        self._requirement_files = tuple(os.path.abspath(f) for f in requirement_files)
        self._sources = sources_from(sources, find_links, index_url, no_index, offline)
        self._progress = progress
        self._max_age = max_age
        self._path: Path | None = None
        self._made_dir = False  # we made the directory: ours to delete whatever happens
        self._owned = False  # we created an env there: ours to remove
        self._manifest: Manifest | None = None

    # -- the build.env.IsolatedEnv protocol ------------------------------------
    @property
    def python_executable(self) -> str:
        """``<env>/bin/python``."""
        return str(self.path / "bin" / "python")

    def make_extra_environ(self) -> dict[str, str]:
        """Variables that activate the env for a subprocess (as pypa/build's own env does)."""
        path = os.environ.get("PATH")
        return {
            "PATH": os.pathsep.join([self.scripts_dir, path]) if path else self.scripts_dir,
            "VIRTUAL_ENV": str(self.path),
            # Empty means unset to CPython: keeps a host PYTHONPATH out of the build.
            "PYTHONPATH": "",
        }

    # -- more ------------------------------------------------------------------
    @property
    def path(self) -> Path:
        """The environment's directory (only inside the ``with`` block)."""
        if self._path is None:
            raise EnvError("the isolated environment is not active (use it in a 'with' block)")
        return self._path

    @property
    def scripts_dir(self) -> str:
        return str(self.path / "bin")

    @property
    def requirements(self) -> tuple[str, ...]:
        """Every requirement installed so far, in the order first asked for."""
        return tuple(self._requirements)

    @property
    def manifest(self) -> Manifest:
        """The manifest of the env as it is now."""
        if self._manifest is None:
            raise EnvError("the isolated environment is not active (use it in a 'with' block)")
        return self._manifest

    def install(self, requirements: Iterable[str]) -> None:
        """Add ``requirements``: the env is re-created holding everything asked for so far.

        On failure the env is left as it was (``clear=True`` builds the new env
        beside it and swaps only when complete) and the error is raised.
        """
        before = list(self._requirements)
        if not self._add(requirements):
            return
        try:
            self._create(clear=True)
        except EnvstoreError:
            self._requirements = before
            raise

    # -- lifecycle -------------------------------------------------------------
    def __enter__(self: _E) -> _E:
        if self._path is not None:
            raise EnvError(f"the isolated environment {self._path} is already active")
        if self._requested_path is None:
            self._path = Path(os.path.realpath(tempfile.mkdtemp(prefix="envstore-env-")))
            self._made_dir = True
        else:
            self._path = Path(os.path.realpath(self._requested_path))
            self._made_dir = not self._path.exists()
        try:
            self._create(clear=False)
            self._owned = True
        except BaseException:
            self._cleanup()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._cleanup()

    def _cleanup(self) -> None:
        path, self._path, self._manifest = self._path, None, None
        owned, self._owned = self._owned, False
        try:
            if path is not None:
                if owned and (path / MANIFEST_NAME).exists():
                    remove_env(path, store=self._store)
                elif owned or self._made_dir:
                    rmtree(path)
        finally:
            if self._owns_store:
                self._store.close()

    def _add(self, requirements: Iterable[str]) -> bool:
        """Append the requirements not asked for yet; True when there were any."""
        new = [r for r in sorted(set(requirements)) if r not in self._requirements]
        self._requirements += new
        return bool(new)

    def _create(self, *, clear: bool) -> None:
        self._manifest = create_env(
            self.path,
            self._requirements,
            python=self._python,
            store=self._store,
            requirement_files=self._requirement_files,
            sources=self._sources,
            with_pip=False,
            clear=clear,
            progress=self._progress,
            max_age=self._max_age,
        )
