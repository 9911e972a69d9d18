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
    "ProjectError",
    "RemoteError",
    "ResolutionError",
    "StoreError",
    "describe_os_error",
    "user_name",
    "writing",
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


class ProjectError(EnvstoreError):
    """A project's pyproject.toml is missing or malformed, or lacks what was asked for
    (an extra, a dependency group)."""


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


class RemoteError(EnvstoreError):
    """A remote cache could not be used: unreachable, refused, read-only, or an object
    in it failed verification. Messages name the object, never a credential."""


class LockTimeoutError(StoreError):
    """A store lock could not be taken within the configured timeout."""


def user_name(uid: int) -> str:
    """The login name of ``uid`` (or "uid N")."""
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _store_of(path: str) -> str | None:
    """The store ``path`` lies in (the nearest directory above it with a store.json)."""
    import os

    d = os.path.dirname(path)
    while d and d != "/":
        if os.path.isfile(os.path.join(d, "store.json")):
            return d
        d = os.path.dirname(d)
    return None


def describe_os_error(exc: OSError) -> str:
    """One line for an OSError that reached the CLI: what failed, on which path, and for
    a refused permission whose the path is and what to do about it."""
    import errno
    import os
    import stat

    path = os.fsdecode(exc.filename) if exc.filename is not None else ""
    what = exc.strerror or str(exc)
    if not path:
        return what
    if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"{what}: {path}"
    # The file itself, or (to create it) the nearest directory above it that exists.
    here = path
    while here and not os.path.lexists(here):
        here = os.path.dirname(here)
    try:
        st = os.lstat(here or "/")
    except OSError:
        return f"{what}: {path}"
    me = os.geteuid()
    owner = user_name(st.st_uid)
    mode = stat.S_IMODE(st.st_mode)
    where = path if here == path else f"{path} (in {here})"
    if exc.errno == errno.EROFS:
        return f"{where} is on a read-only file system"
    store = _store_of(here)
    if store is not None and st.st_uid != me and os.stat(store).st_uid == me:
        return (
            f"permission denied: {where} belongs to {owner}, inside your store {store}"
            f" (an envstore command run as {owner}, with sudo?). Give it back: sudo chown -R"
            f" {user_name(me)} {store}"
        )
    if st.st_uid != me:
        fix = (
            "use a store of your own (--store DIR or ENVSTORE_HOME)"
            if store is not None
            else f"ask {owner}, or choose a place you can write"
        )
        return f"permission denied: {where} belongs to {owner} (mode {mode:o}); {fix}"
    return f"permission denied: {where} (yours, mode {mode:o}: not writable)"


class writing:
    """Name what was being written when an OSError that names no file (a full disk
    reported by write() or close()) ends it: ``with writing(f"the env {path}"): ...``."""

    def __init__(self, what: str) -> None:
        self.what = what

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, OSError) and exc.filename is None:
            raise EnvstoreError(
                f"cannot write {self.what}: {exc.strerror or exc}; nothing was published"
            ) from exc


class LockError(EnvstoreError):
    """A lock file is unreadable or invalid, or an env cannot be locked."""
