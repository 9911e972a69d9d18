"""A tox 4 run environment and package environments made by envstore.

Opt in per environment with ``runner = envstore`` (``[testenv]`` for all). The
run env ``envstore`` and the package envs ``envstore-pep-517`` (PEP 517 builds)
and ``envstore-cmd-builder`` (``package = external``) are registered, nothing is
made the default: with envstore installed, an env without ``runner = envstore``
is made by tox as before.

Where things are: tox keeps its own files (``.tox-info.json``, ``log/``,
``tmp/``) in the env's directory, ``.tox/NAME``; the envstore env is
``.tox/NAME/venv`` (an envstore env is replaced by a rename of its whole
directory, which must not take tox's files with it). Where tox's ``log/`` and
``tmp/`` are elsewhere (``tox devenv DIR``, a configured ``env_dir``), the env is
the env directory itself, as with virtualenv. The interpreter is found
as tox finds it (virtualenv's discovery, ``base_python``); the env is made,
synced and removed through the library (``envstore.env.lifecycle``,
``envstore.env.remove``), so a recreate (``-r``) releases the old env's
references in the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tox.plugin import impl
from tox.report import HandledError
from tox.tox_env.errors import Fail
from tox.tox_env.python.virtual_env.api import VirtualEnv
from tox.tox_env.python.virtual_env.package.cmd_builder import VirtualEnvCmdBuilder
from tox.tox_env.python.virtual_env.package.pyproject import Pep517VirtualEnvPackager
from tox.tox_env.python.virtual_env.runner import VirtualEnvRunner

from envstore._version import __version__
from envstore.plugins.tox_installer import EnvstoreInstaller, sync_into, venv_of

if TYPE_CHECKING:
    from collections.abc import Callable

    from tox.tox_env.register import ToxEnvRegister
    from tox.util.json_types import JsonValue


__all__ = [
    "EnvstoreCmdBuilder",
    "EnvstorePep517Packager",
    "EnvstoreRunner",
    "EnvstoreVenv",
    "tox_register_tox_env",
]


class EnvstoreVenv(VirtualEnv):
    """What every envstore-made tox env does differently from a virtualenv one: the
    env is made, replaced and removed by envstore, and packages are installed by
    :class:`~envstore.plugins.tox_installer.EnvstoreInstaller`."""

    _envstore_installer: EnvstoreInstaller | None = None

    @property
    def venv_dir(self) -> Path:
        return venv_of(self)

    @property
    def installer(self) -> EnvstoreInstaller:
        if self._envstore_installer is None:
            self._envstore_installer = EnvstoreInstaller(self)
        return self._envstore_installer

    def python_cache(self) -> dict[str, JsonValue]:
        base = super().python_cache()
        base.pop("virtualenv version", None)  # virtualenv makes no env here
        base["envstore"] = __version__.split("+")[0]
        return base

    def create_python_env(self) -> None:
        """An env with pip only (tox's ``list_dependencies_command`` and users' commands
        call ``python -m pip``); deps come with the installs that follow."""
        sync_into(self, [], [], pre=False)

    def _clean(self, transitive: bool = False) -> None:
        if not self._run_state["clean"]:
            release(self.venv_dir)
        super()._clean(transitive)

    def _exported_set_env(self) -> dict[str, Callable[[], str]]:
        return {**super()._exported_set_env(), "VIRTUAL_ENV": lambda: str(self.venv_dir)}

    def prepend_env_var_path(self) -> list[Path]:
        return [self.env_bin_dir()]

    def env_bin_dir(self) -> Path:
        return self.venv_dir / "bin"

    def env_python(self) -> Path:
        return self.env_bin_dir() / "python"

    def env_site_package_dir(self) -> Path:
        info = self.base_python
        impl_ = "pypy" if info.impl_lower == "pypy" else "python"
        return self.venv_dir / "lib" / f"{impl_}{info.version_dot}" / "site-packages"

    def env_site_package_dir_plat(self) -> Path:
        return self.env_site_package_dir()


def release(venv: Path) -> None:
    """Remove the envstore env at ``venv`` through envstore, so the store lets go of
    what it used (a directory that is not an envstore env is left to tox)."""
    from envstore.env.make import is_envstore_env
    from envstore.env.remove import remove_env
    from envstore.errors import EnvstoreError

    if is_envstore_env(venv):
        try:
            remove_env(venv)
        except EnvstoreError as exc:
            raise Fail(f"envstore: {exc}") from None


class EnvstoreRunner(EnvstoreVenv, VirtualEnvRunner):
    """``runner = envstore``: a run environment made by envstore."""

    @staticmethod
    def id() -> str:
        return "envstore"

    def setup(self) -> None:
        """tox reports a failed run env and goes on, but lets a failure of its
        provisioning env (``[tox] requires``, ``[testenv:.tox] runner = envstore``)
        escape as a traceback: that one is tox's one-line error instead."""
        try:
            super().setup()
        except Fail as exc:
            if "provision_tox_env" in self.core and self.name == self.core["provision_tox_env"]:
                raise HandledError(f"cannot provision tox environment {self.name}: {exc}") from None
            raise

    @property
    def _package_tox_env_type(self) -> str:
        return EnvstorePep517Packager.id()

    def get_package_env_types(self) -> tuple[str, str] | None:
        """tox's default package env names (``.pkg``, ``.pkg_external``) become
        ``.pkg-envstore`` and ``.pkg_external-envstore``: one package env cannot be of
        two types, so envstore and virtualenv run envs in one config each get theirs."""
        found = super().get_package_env_types()
        if found is None or found[0] not in {".pkg", ".pkg_external"}:
            return found
        return f"{found[0]}-envstore", found[1]

    @property
    def _external_pkg_tox_env_type(self) -> str:
        return EnvstoreCmdBuilder.id()

    @property
    def default_pkg_type(self) -> str:
        """tox's default, ``sdist``, becomes ``sdist-wheel``: tox builds the sdist,
        then a wheel from it (what pip does with an sdist), and that wheel goes into
        the env's site-packages."""
        found = super().default_pkg_type
        return "sdist-wheel" if found == "sdist" else found


class EnvstorePep517Packager(EnvstoreVenv, Pep517VirtualEnvPackager):
    """The package env of an envstore run env: the PEP 517 backend runs in an
    envstore env holding the build requirements."""

    @staticmethod
    def id() -> str:
        return "envstore-pep-517"


class EnvstoreCmdBuilder(EnvstoreVenv, VirtualEnvCmdBuilder):
    """``package = external``, built in an envstore env."""

    @staticmethod
    def id() -> str:
        return "envstore-cmd-builder"


@impl
def tox_register_tox_env(register: ToxEnvRegister) -> None:
    """Register the envstore run and package envs; the default stays tox's."""
    register.add_run_env(EnvstoreRunner)
    register.add_package_env(EnvstorePep517Packager)
    register.add_package_env(EnvstoreCmdBuilder)
