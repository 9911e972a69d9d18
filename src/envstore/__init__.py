"""envstore: wheels unpacked once into a shared store; environments are thin venvs into it.

The public API is imported lazily so that ``envstore`` on the command line
only pays for what a command uses. Public import paths: ``envstore`` (this
module), ``envstore.errors`` (every exception) and ``envstore.manifest``.
"""

from __future__ import annotations

from envstore._version import __version__ as __version__
from envstore.errors import (
    BadManifestError,
    BadWheelError,
    BuildError,
    EnvError,
    EnvstoreError,
    IncompatibleWheelError,
    InterpreterError,
    LockError,
    LockTimeoutError,
    ProjectError,
    RemoteError,
    ResolutionError,
    StoreError,
)

__all__ = [
    "BadManifestError",
    "BadWheelError",
    "BuildError",
    "EnvError",
    "EnvstoreError",
    "IncompatibleWheelError",
    "InterpreterError",
    "IsolatedEnv",
    "Lock",
    "LockError",
    "LockTimeoutError",
    "Manifest",
    "PackageSources",
    "ProjectError",
    "RemoteError",
    "ResolutionError",
    "Store",
    "StoreError",
    "create_env",
    "export_env",
    "install_packages",
    "lock_env",
    "remove_env",
    "sync_env",
    "uninstall_packages",
]

_LAZY = {
    "IsolatedEnv": "envstore.frontends.isolated",
    "create_env": "envstore.env.lifecycle",
    "remove_env": "envstore.env.remove",
    "sync_env": "envstore.env.lifecycle",
    "export_env": "envstore.env.export",
    "install_packages": "envstore.env.install",
    "uninstall_packages": "envstore.env.uninstall",
    "lock_env": "envstore.env.lock",
    "Lock": "envstore.model.lock",
    "Manifest": "envstore.model.manifest",
    "PackageSources": "envstore.model.sources",
    "Store": "envstore.store.layout",
}


# typing costs ~5 ms to import; mypy treats any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from envstore.env.export import export_env
    from envstore.env.install import install_packages
    from envstore.env.lifecycle import create_env, sync_env
    from envstore.env.lock import lock_env
    from envstore.env.remove import remove_env
    from envstore.env.uninstall import uninstall_packages
    from envstore.frontends.isolated import IsolatedEnv
    from envstore.model.lock import Lock
    from envstore.model.manifest import Manifest
    from envstore.model.sources import PackageSources
    from envstore.store.layout import Store


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'envstore' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
