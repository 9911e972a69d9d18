"""One store on a shared filesystem, used by several hosts at once (issue #27).

Real NFS cannot be mounted here (no kernel NFS client): hosts are simulated by
processes with their own host name (``ENVSTORE_TEST_HOST``) and their own local
database directory (``XDG_CACHE_HOME``), on one store directory forced into the
shared mode (``ENVSTORE_SHARED=1``).
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

import pytest
from conftest import CLI

from envstore.errors import StoreError
from envstore.store import locks
from envstore.store.fs import store_temp_abandoned, temp_abandoned


def test_lock_code_locks_only_regular_files_opened_read_write(tmp_path: Path) -> None:
    lock = tmp_path / "a.lock"
    lock.write_text("")
    ro = os.open(lock, os.O_RDONLY)
    directory = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for fd in (ro, directory):
            with pytest.raises(StoreError, match="not a read-write file"):
                locks.lock_fd(fd, shared=True)
    finally:
        os.close(ro)
        os.close(directory)
    with pytest.raises(StoreError, match="is a directory"):
        with locks.file_lock(tmp_path):
            pass


def test_every_lock_a_command_takes_is_on_a_read_write_file(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, int]] = []
    real = locks.lock_fd

    def spy(fd: int, *, shared: bool) -> bool:
        seen.append((os.fstat(fd).st_mode, fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE))
        return real(fd, shared=shared)

    monkeypatch.setattr(locks, "lock_fd", spy)
    env = tmp_path / "env"
    opts = ("--store", store)
    assert cli(*opts, "create", env, "--no-index", "-f", wheelhouse, "solo").code == 0
    assert cli(*opts, "create", "--clear", env, "--no-index", "-f", wheelhouse, "solo").code == 0
    assert cli("relink", env).code == 0
    assert cli(*opts, "gc").code == 0
    assert cli(*opts, "remove", env).code == 0
    assert len(seen) >= 5
    import stat

    assert all(stat.S_ISREG(mode) and acc == os.O_RDWR for mode, acc in seen), seen


def test_two_threads_of_one_process_exclude_each_other(tmp_path: Path) -> None:
    lock = tmp_path / "gc.lock"
    inside = 0
    most = 0
    guard = threading.Lock()

    def worker() -> None:
        nonlocal inside, most
        for _ in range(20):
            with locks.file_lock(lock):
                with guard:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.001)
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert most == 1
    # And a shared holder in one thread keeps out an exclusive one in another.
    with locks.file_lock(lock, shared=True):
        with locks.file_lock(lock, shared=True, timeout=0):
            pass  # shared with shared: fine
        with pytest.raises(locks.LockTimeoutError, match="exclusive lock"):
            with locks.file_lock(lock, timeout=0.05):
                pass


def test_temporaries_of_another_host_are_kept_until_old(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVSTORE_TEST_HOST", "alpha")
    dead = 2**22 + 12345  # beyond any pid_max default: no such process here
    assert not os.path.exists(f"/proc/{dead}")
    assert temp_abandoned(f"alpha@{dead}", 5.0)  # ours, its process gone
    assert not temp_abandoned(f"alpha@{os.getpid()}", 5.0)  # ours, running
    assert not temp_abandoned(f"beta@{dead}", 5.0)  # another host's: its pid means nothing
    assert temp_abandoned(f"beta@{dead}", 2 * 86400)  # ... until it is old
    assert temp_abandoned(str(dead), 5.0)  # a name from before host names: ours
    assert store_temp_abandoned(f"alpha@{dead}-entry-x-abc", 5.0)
    assert not store_temp_abandoned(f"be-ta.example@{dead}-entry-x-abc", 5.0)
    assert store_temp_abandoned(f"{dead}-entry-x-abc", 5.0)


def test_gc_keeps_another_hosts_fresh_temporaries(
    cli: CLI, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVSTORE_TEST_HOST", "alpha")
    dead = 2**22 + 12345
    tmp = store / "tmp"
    ours, theirs, old = (tmp / f"{h}@{dead}-entry-x-abc" for h in ("alpha", "beta", "gamma"))
    for d in (ours, theirs, old):
        d.mkdir()
    os.utime(old, (time.time() - 3 * 86400,) * 2)
    assert cli("--store", store, "gc").code == 0
    assert theirs.is_dir()
    assert not ours.exists() and not old.exists()
