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

from envstore.errors import LockTimeoutError

__all__ = ["DEFAULT_TIMEOUT", "file_lock", "lock_timeout"]

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
    if os.path.isdir(path):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    else:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
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
        yield
    finally:
        os.close(fd)
