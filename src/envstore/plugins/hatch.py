"""A Hatch environment type made by envstore: ``[tool.hatch.envs.NAME] type = "envstore"``.

It is Hatch's virtual environment (the same paths, interpreter discovery,
activation, shells and dependency checks), made, synced and removed through
envstore's library. Every install is one sync of the env to what Hatch asks it
to hold: the env's dependencies and, in dev mode (Hatch's default), the project
installed editable by envstore (its editable wheel built once and cached, into
the env's own site-packages). With ``dev-mode = false`` the project is
installed by the env's pip with ``--no-deps`` after each sync, also into the
env's own site-packages: the project never becomes a store entry. Registered
through ``hatch_register_environment``; nothing changes for environments of
another type.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from hatch.env.virtual import VirtualEnvironment
from hatchling.plugin import hookimpl

if TYPE_CHECKING:
    from collections.abc import Callable

    from envstore.model.sources import PackageSources

__all__ = ["EnvstoreEnvironment", "hatch_register_environment"]


class EnvstoreEnvironment(VirtualEnvironment):
    """``type = "envstore"``."""

    PLUGIN_NAME = "envstore"

    def _sources(self) -> PackageSources:
        from envstore.plugins.common import sources_from_env

        return sources_from_env({**os.environ, **self.env_vars})

    _synced: tuple[object, ...] | None = None

    def create(self) -> None:
        """The env with everything it will hold, in one call: Hatch's project install
        and dependency sync that follow find it done."""
        self.virtual_env_path.parent.mkdir(parents=True, exist_ok=True)
        self._sync(python=self.parent_python)

    def remove(self) -> None:
        from envstore.env.make import is_envstore_env
        from envstore.env.remove import remove_env

        if is_envstore_env(self.virtual_env_path):
            self._run(lambda: remove_env(self.virtual_env_path))
        super().remove()  # type: ignore[no-untyped-call]

    def install_project(self) -> None:
        self._sync()

    def install_project_dev_mode(self) -> None:
        self._sync()

    def sync_dependencies(self) -> None:
        self._sync()

    def _sync(self, python: str | None = None) -> None:
        """Bring the env to its dependencies and the project, in one resolution
        (nothing to do when this object just did the same)."""
        from envstore.env.lifecycle import create_env, sync_env

        requirements: list[str] = []
        editables: list[str] = []
        root = self.root.resolve()
        for dep in self.all_dependencies_complex:
            if dep.path is not None and dep.path.resolve() == root:
                continue  # the project itself: below, never into the store
            if dep.path is None:
                requirements.append(str(dep))
            elif dep.editable:
                editables.append(str(dep.path))
            else:
                requirements.append(str(dep.path))
        with_project = not self.skip_install
        if with_project and self.dev_mode:
            editables.append(self.apply_features(str(self.root)))
        elif with_project:
            requirements.extend(self._project_requirements())
        request = (tuple(requirements), tuple(editables), self.dev_mode)
        if request == self._synced and self.virtual_env_path.is_dir():
            return
        if requirements or editables:
            self._run(
                lambda: sync_env(
                    self.virtual_env_path,
                    requirements,
                    editables=editables,
                    python=python,
                    sources=self._sources(),
                    with_pip=True,
                )
            )
        else:
            self._run(
                lambda: create_env(
                    self.virtual_env_path,
                    python=python,
                    sources=self._sources(),
                    prompt=self.name,
                    clear=True,
                )
            )
        if with_project and not self.dev_mode:
            # pip builds and installs the project itself, into the env's site-packages.
            with self.safe_activation():
                self.platform.check_command(
                    self.construct_pip_install_command(["--no-deps", str(self.root)])
                )
        self._synced = request
        for attr in ("distributions", "missing_dependencies"):
            vars(self).pop(attr, None)  # Hatch's snapshot of what is installed is stale

    def _project_requirements(self) -> list[str]:
        """The project's dependencies and those of the features asked for."""
        dependencies, optional = self.app.project.get_dependencies()
        found = [str(d) for d in dependencies]
        for feature in self.features:
            found.extend(str(d) for d in optional.get(feature, ()))
        return found

    def _run(self, action: Callable[[], object]) -> None:
        """Run ``action``; an envstore error is Hatch's one-line abort, not a traceback."""
        from envstore.errors import EnvstoreError

        try:
            action()
        except EnvstoreError as exc:
            self.app.abort(f"envstore: {exc}")  # type: ignore[no-untyped-call]


@hookimpl
def hatch_register_environment() -> type[EnvstoreEnvironment]:
    """Hatch's hook: the ``envstore`` environment type."""
    return EnvstoreEnvironment
