"""Advisory file locks with bounded waits.

flock locks die with their holder, so a SIGKILLed process never blocks the
next one. Waits poll with a deadline so a stuck holder turns into an error
that names the lock instead of a hang.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from envstore.errors import EnvError, LockTimeoutError

__all__ = ["DEFAULT_TIMEOUT", "env_lock", "file_lock", "lock_timeout"]

DEFAULT_TIMEOUT = 120.0


def lock_timeout() -> float:
    """The lock wait bound in seconds: ``ENVSTORE_LOCK_TIMEOUT`` or the default."""
    value = os.environ.get("ENVSTORE_LOCK_TIMEOUT")
    if not value:
        return DEFAULT_TIMEOUT
    try:
        return max(0.0, float(value))
    except ValueError:
        return DEFAULT_TIMEOUT


@contextmanager
def file_lock(path: Path, *, shared: bool = False, timeout: float | None = None) -> Iterator[None]:
    """Hold a shared or exclusive flock on ``path``: a file (created if missing) or
    an existing directory."""
    if timeout is None:
        timeout = lock_timeout()
    deadline = time.monotonic() + timeout
    if os.path.isdir(path):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    else:
        # Never through a link planted in locks/ (O_CREAT would make its target).
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o644)
    try:
        _flock(fd, path, shared, deadline, timeout)
        yield
    finally:
        os.close(fd)


@contextmanager
def env_lock(env: Path) -> Iterator[None]:
    """Hold an exclusive flock on the environment directory ``env`` (relink, and the
    swap of ``create --clear`` and ``sync``). Those replace the directory, so a lock
    won on a directory that is no longer the one at ``env`` is dropped and taken
    again on the one there now."""
    timeout = lock_timeout()
    deadline = time.monotonic() + timeout
    missing_since: float | None = None
    while True:
        try:
            fd = os.open(env, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except FileNotFoundError:
            # Between the two renames of a swap without renameat2: look again, briefly.
            now = time.monotonic()
            missing_since = now if missing_since is None else missing_since
            if now - missing_since > 1.0:
                raise EnvError(f"{env} disappeared while waiting to lock it") from None
            time.sleep(0.01)
            continue
        missing_since = None
        try:
            _flock(fd, env, False, deadline, timeout)
            locked = os.fstat(fd)
            try:
                there = os.stat(env)
                same = (locked.st_dev, locked.st_ino) == (there.st_dev, there.st_ino)
            except FileNotFoundError:
                same = False
            if same:
                yield
                return
        finally:
            os.close(fd)


def _flock(fd: int, path: Path, shared: bool, deadline: float, timeout: float) -> None:
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    delay = 0.005
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                kind = "shared" if shared else "exclusive"
                raise LockTimeoutError(
                    f"timed out after {timeout:g}s waiting for the {kind} lock {path}"
                    " (another envstore process holds it; set ENVSTORE_LOCK_TIMEOUT"
                    " to wait longer)"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
