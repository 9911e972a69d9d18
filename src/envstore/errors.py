"""Exceptions raised by envstore: one root type, a few subclasses per concept."""

from __future__ import annotations

__all__ = [
    "BadManifestError",
    "BadWheelError",
    "BuildError",
    "EnvError",
    "EnvstoreError",
    "IncompatibleWheelError",
    "InterpreterError",
    "LockTimeoutError",
    "ResolutionError",
    "StoreError",
]


class EnvstoreError(Exception):
    """Root of every error envstore raises on purpose; the CLI prints it without a traceback."""


class BadWheelError(EnvstoreError):
    """A wheel failed validation; nothing from it was written to the store."""

    def __init__(self, wheel: str, problems: list[str]) -> None:
        self.wheel = wheel
        self.problems = problems
        listing = "\n  - ".join(problems)
        super().__init__(f"bad wheel {wheel}:\n  - {listing}")


class BuildError(EnvstoreError):
    """A project could not be built (bad project, failing backend, pypa/build missing)."""


class IncompatibleWheelError(EnvstoreError):
    """A wheel's tags do not fit the target interpreter."""


class InterpreterError(EnvstoreError):
    """No usable interpreter matches the request, or it cannot be queried."""


class ResolutionError(EnvstoreError):
    """Requirements could not be resolved or fetched."""


class BadManifestError(EnvstoreError):
    """An environment manifest is missing, unreadable, invalid or from the future."""


class EnvError(EnvstoreError):
    """An environment path cannot be used as asked (exists, not an envstore env, ...)."""


class StoreError(EnvstoreError):
    """The store or its database is damaged, unsafe or inconsistent."""


class LockTimeoutError(StoreError):
    """A store lock could not be taken within the configured timeout."""
