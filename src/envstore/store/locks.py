"""Advisory file locks with bounded waits.

Open-file-description locks (``F_OFD_SETLK``) on lock files opened read-write:

- they work on NFSv4 (the kernel turns them into NFS byte-range locks) where
  ``flock`` on a file opened read-only, or on a directory, fails with EBADF;
- they belong to the open file, not the process, so two threads (or two
  ``IsolatedEnv`` users) of one process exclude each other, as classic per-process
  ``fcntl`` locks would not;
- they die with their holder (its last descriptor closes), so a SIGKILLed process
  never blocks the next one.

Waits poll with a deadline so a stuck holder turns into an error that names the
lock instead of a hang. Only a platform without OFD locks (not Linux) falls back
to ``flock``.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from envstore.errors import EnvError, LockTimeoutError, StoreError

__all__ = ["DEFAULT_TIMEOUT", "ENV_LOCK_NAME", "env_lock", "file_lock", "lock_fd", "lock_timeout"]

DEFAULT_TIMEOUT = 120.0
ENV_LOCK_NAME = ".envstore-lock"  # an env's own lock file, at its top (see env_lock)

# Linux's numbers (Python has them from 3.9, on Linux only): F_OFD_GETLK, SETLK, SETLKW.
_OFD_SETLK = getattr(fcntl, "F_OFD_SETLK", 37 if sys.platform == "linux" else None)
_BUSY = (errno.EAGAIN, errno.EACCES)


def lock_timeout() -> float:
    """The lock wait bound in seconds: ``ENVSTORE_LOCK_TIMEOUT`` or the default."""
    value = os.environ.get("ENVSTORE_LOCK_TIMEOUT")
    if not value:
        return DEFAULT_TIMEOUT
    try:
        return max(0.0, float(value))
    except ValueError:
        return DEFAULT_TIMEOUT


def _open_lock_file(path: Path | str) -> int:
    """``path`` opened read-write, created if missing; never through a link planted
    there (O_CREAT would make its target), never a directory."""
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    except IsADirectoryError:
        raise StoreError(
            f"the lock file {path} is a directory; remove it (rmdir {path}) and retry"
        ) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise StoreError(
                f"the lock file {path} is a symbolic link; remove it and retry"
            ) from None
        raise


@contextmanager
def file_lock(path: Path, *, shared: bool = False, timeout: float | None = None) -> Iterator[None]:
    """Hold a shared or exclusive lock on the lock file ``path`` (created if missing)."""
    if timeout is None:
        timeout = lock_timeout()
    deadline = time.monotonic() + timeout
    fd = _open_lock_file(path)
    try:
        _wait(fd, path, shared, deadline, timeout)
        yield
    finally:
        os.close(fd)


@contextmanager
def env_lock(env: Path) -> Iterator[None]:
    """Hold an exclusive lock on the environment ``env`` (relink, the swap of
    ``create --clear`` and ``sync``, remove): the lock file ``<env>/.envstore-lock``,
    made on first use and removed with the env (its ``.gitignore`` hides it). Those
    commands replace or delete the directory, so a lock won on a file that is no
    longer the one at ``env`` is dropped and taken again on the one there now."""
    timeout = lock_timeout()
    deadline = time.monotonic() + timeout
    missing_since: float | None = None
    path = env / ENV_LOCK_NAME
    while True:
        try:
            fd = _open_lock_file(path)
        except FileNotFoundError:
            # Between the two renames of a swap without renameat2: look again, briefly.
            now = time.monotonic()
            missing_since = now if missing_since is None else missing_since
            if now - missing_since > 1.0:
                raise EnvError(f"{env} disappeared while waiting to lock it") from None
            time.sleep(0.01)
            continue
        except PermissionError:
            raise EnvError(
                f"cannot lock {env}: its lock file {path} cannot be created or opened"
                " for writing (the env is not writable by you)"
            ) from None
        missing_since = None
        try:
            _wait(fd, env, False, deadline, timeout)
            locked = os.fstat(fd)
            try:
                there = os.lstat(path)
                same = (locked.st_dev, locked.st_ino) == (there.st_dev, there.st_ino)
            except FileNotFoundError:
                same = False
            if same:
                yield
                return
        finally:
            os.close(fd)


def lock_fd(fd: int, *, shared: bool) -> bool:
    """Try once to lock the whole file open at ``fd``: True if locked, False if another
    open file holds a conflicting lock. ``fd`` must be a regular file opened read-write
    (NFS refuses a write lock on a read-only descriptor, and no lock on a directory)."""
    st = os.fstat(fd)
    mode = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
    if not stat.S_ISREG(st.st_mode) or mode != os.O_RDWR:
        raise StoreError(
            f"envstore bug: a lock on a descriptor that is not a read-write file ({fd})"
        )
    if _OFD_SETLK is None:  # no OFD locks on this platform
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
    # struct flock: l_type, l_whence (shorts), then l_start, l_len, l_pid all 0 (the
    # whole file; an OFD lock requires l_pid 0): 32 bytes on 64-bit Linux.
    kind = fcntl.F_RDLCK if shared else fcntl.F_WRLCK
    try:
        fcntl.fcntl(fd, _OFD_SETLK, kind.to_bytes(2, sys.byteorder) + bytes(30))
        return True
    except OSError as exc:
        if exc.errno in _BUSY:
            return False
        raise


def _wait(fd: int, path: Path, shared: bool, deadline: float, timeout: float) -> None:
    delay = 0.005
    while True:
        try:
            if lock_fd(fd, shared=shared):
                return
        except OSError as exc:
            if exc.errno == errno.ENOLCK:
                raise StoreError(
                    f"cannot lock {path}: its filesystem refuses locks (an NFS mount with"
                    " 'nolock' or without a lock manager); mount it with locking enabled"
                ) from None
            raise
        if time.monotonic() >= deadline:
            kind = "shared" if shared else "exclusive"
            raise LockTimeoutError(
                f"timed out after {timeout:g}s waiting for the {kind} lock {path}"
                " (another envstore process holds it; set ENVSTORE_LOCK_TIMEOUT"
                " to wait longer)"
            )
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
