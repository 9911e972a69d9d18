"""envstore: wheels unpacked once into a shared store; environments are thin venvs into it.

The public API is imported lazily so that ``envstore`` on the command line
only pays for what a command uses.
"""

from __future__ import annotations

from envstore.errors import (
    BadManifestError,
    BadWheelError,
    BuildError,
    EnvError,
    EnvstoreError,
    IncompatibleWheelError,
    InterpreterError,
    LockTimeoutError,
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
    "LockTimeoutError",
    "Manifest",
    "ResolutionError",
    "Store",
    "StoreError",
    "create_env",
    "export_env",
    "lock_env",
    "remove_env",
    "sync_env",
]
__version__ = "0.1.0"

_LAZY = {
    "IsolatedEnv": "envstore._isolated",
    "create_env": "envstore._envs",
    "remove_env": "envstore._envs",
    "sync_env": "envstore._envs",
    "export_env": "envstore._export",
    "lock_env": "envstore._lockfile",
    "Lock": "envstore._lockfile",
    "Manifest": "envstore.manifest",
    "Store": "envstore._store",
}


# typing costs ~5 ms to import; mypy treats any name TYPE_CHECKING as true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from envstore._envs import create_env, remove_env, sync_env
    from envstore._export import export_env
    from envstore._isolated import IsolatedEnv
    from envstore._lockfile import Lock, lock_env
    from envstore._store import Store
    from envstore.manifest import Manifest


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'envstore' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
