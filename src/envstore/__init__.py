"""envstore: wheels unpacked once into a shared store; environments are thin venvs into it.

The public API is imported lazily so that ``envstore`` on the command line
only pays for what a command uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
    "LockTimeoutError",
    "Manifest",
    "ResolutionError",
    "Store",
    "StoreError",
    "create_env",
    "remove_env",
]
__version__ = "0.1.0"

_LAZY = {
    "IsolatedEnv": "envstore._isolated",
    "create_env": "envstore._envs",
    "remove_env": "envstore._envs",
    "Manifest": "envstore.manifest",
    "Store": "envstore._store",
}


if TYPE_CHECKING:
    from envstore._envs import create_env, remove_env
    from envstore._isolated import IsolatedEnv
    from envstore._store import Store
    from envstore.manifest import Manifest


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'envstore' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
