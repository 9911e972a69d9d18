"""Fetching entries in worker processes, each with its own threads.

Unpacking an entry is thousands of small file creations, each a system call that
releases and takes back the interpreter lock; with every fetch in threads of one
process, the lock passes back and forth on each (a pull of ``big``, 15,500 files,
made ~440,000 futex calls) and the Python between the calls runs on one core. A few
forked processes split that: measured on 2 cores, a ``file://`` create of ``big``
went from 1.81 s to 1.25 s (median, paired).

Forked, not spawned: a child inherits the imported modules and the arguments and
starts in milliseconds (spawned workers re-import everything: +0.4 s of CPU). Only
from a process with no other thread (forking one with threads can copy a held lock),
on Linux; otherwise, or with one usable core or few entries, the threads of this
process do it all. A child stops taking work once its parent is gone, runs no cyclic
garbage collection (no finalizer of an object it inherited, such as a database
connection, runs in it), and what it leaves in ``tmp/`` is removed by the parent
once it is reaped. The work is handed out through a pipe the parent filled before
forking, four bytes per index (reads of a pipe are atomic, so each index goes to one
thread of one child); each result comes back pickled over the child's own pipe, as
soon as it is ready, so the parent publishes while the children unpack. A child
touches no database and no shared state: it writes only its new directories in
``tmp/``, and leaves by ``os._exit``. A result that never arrives (a child killed)
is a miss: the wheel is used instead.
"""

from __future__ import annotations

import gc
import os
import pickle
import sys
import threading
from collections.abc import Callable, Generator, Sequence
from typing import TypeVar

__all__ = ["in_processes", "in_threads", "processes_for"]

T = TypeVar("T")
_MIN_PER_PROCESS = 4  # fewer entries than this per process: not worth a fork
_MAX_PROCESSES = 4


def processes_for(count: int) -> int:
    """How many worker processes to fetch ``count`` entries with; 0: none (threads).
    ``ENVSTORE_PULL_PROCESSES``: that many instead of one per usable core (at most 4;
    0: none)."""
    if not sys.platform.startswith("linux") or count > 16_000 or not _one_thread():
        return 0
    try:
        cores = int(os.environ.get("ENVSTORE_PULL_PROCESSES", "") or len(os.sched_getaffinity(0)))
    except ValueError:
        cores = len(os.sched_getaffinity(0))
    n = min(cores, _MAX_PROCESSES, count // _MIN_PER_PROCESS)
    return n if n >= 2 else 0


def _one_thread() -> bool:
    """Whether this process runs one thread, C libraries' and ``_thread``'s counted
    (``threading`` knows only its own): forking one with others may copy a held lock."""
    try:
        return threading.active_count() == 1 and len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def in_threads(
    items: Sequence[T],
    work: Callable[[T], object],
    threads: int,
    discard: Callable[[object], None],
) -> Generator[tuple[int, object], None, None]:
    """``(index, work(item))`` as each is done, from ``threads`` threads of this process;
    if the caller stops early, what was done and not taken goes to ``discard``."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    with ThreadPoolExecutor(max_workers=max(1, min(threads, len(items)))) as pool:
        futures = {pool.submit(work, item): i for i, item in enumerate(items)}
        taken = set()
        try:
            for future in as_completed(futures):
                taken.add(future)
                yield futures[future], future.result()
        finally:
            for future in futures:
                future.cancel()
            for future in futures:
                if future not in taken and not future.cancelled() and not future.exception():
                    discard(future.result())


def in_processes(
    items: Sequence[T],
    work: Callable[[T], object],
    processes: int,
    threads: int,
    child_setup: Callable[[], None],
    cleanup: Callable[[int], None],
) -> Generator[tuple[int, object], None, None]:
    """``(index, work(item))`` as each is done, from ``processes`` forked children of
    ``threads`` threads each (``child_setup`` runs first in each child). Once a child
    is reaped, ``cleanup(pid)`` removes what it left (its temporaries: the caller has
    taken what it sent). OSError before a child is started: the caller uses threads."""
    import selectors

    jobs = b"".join(i.to_bytes(4, "big") for i in range(len(items)))
    jobs_r, jobs_w = os.pipe()
    try:  # every index in the pipe before anyone reads: never wait on a small pipe
        os.set_blocking(jobs_w, False)
        if os.write(jobs_w, jobs) != len(jobs):
            raise BlockingIOError(11, "the pipe is too small for the work")
    except OSError:
        os.close(jobs_r)
        raise
    finally:
        os.close(jobs_w)
    sys.stdout.flush()  # nothing buffered is written twice
    sys.stderr.flush()
    parent = os.getpid()
    children: dict[int, int] = {}  # read end -> pid
    try:
        for _ in range(processes):
            out_r, out_w = os.pipe()
            try:
                pid = os.fork()
            except OSError:  # no more processes (a limit, memory): those forked do it all
                os.close(out_r)
                os.close(out_w)
                if not children:
                    raise
                break
            if pid == 0:  # pragma: no cover (a child: coverage is not collected there)
                status = 1
                try:
                    os.close(out_r)
                    for fd in children:
                        os.close(fd)
                    gc.disable()  # no finalizer of the parent's objects runs here
                    child_setup()
                    _child(items, work, jobs_r, out_w, threads, parent)
                    status = 0
                finally:
                    os._exit(status)
            os.close(out_w)
            children[out_r] = pid
        os.close(jobs_r)
        jobs_r = -1
        with selectors.DefaultSelector() as sel:
            buffers = {}
            for fd in children:
                sel.register(fd, selectors.EVENT_READ)
                buffers[fd] = bytearray()
            while buffers:
                for key, _ in sel.select():
                    fd = int(key.fd)
                    chunk = os.read(fd, 1 << 16)
                    if not chunk:
                        sel.unregister(fd)
                        del buffers[fd]
                        continue
                    buf = buffers[fd]
                    buf += chunk
                    while len(buf) >= 8 and len(buf) >= 8 + int.from_bytes(buf[:8], "big"):
                        size = int.from_bytes(buf[:8], "big")
                        index, result = pickle.loads(bytes(buf[8 : 8 + size]))
                        del buf[: 8 + size]
                        yield index, result
    finally:
        if jobs_r >= 0:
            os.close(jobs_r)
        for fd, pid in children.items():
            os.close(fd)
            try:  # done already, unless the parent stopped early (an error, Ctrl-C)
                os.kill(pid, 15)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass  # reaped already (a caller that ignores SIGCHLD)
            cleanup(pid)


def _child(
    items: Sequence[T], work: Callable[[T], object], jobs: int, out: int, threads: int, parent: int
) -> None:  # pragma: no cover (runs in a forked child)
    lock = threading.Lock()

    def loop() -> None:  # until the work is out, or the parent is gone (killed)
        while os.getppid() == parent and len(raw := os.read(jobs, 4)) == 4:
            index = int.from_bytes(raw, "big")
            try:
                data = pickle.dumps((index, work(items[index])))
            except Exception:  # no traceback from a worker: its item is a miss (said once)
                continue
            message = memoryview(len(data).to_bytes(8, "big") + data)
            with lock:  # one message at a time: longer writes to a pipe interleave
                while message:
                    message = message[os.write(out, message) :]

    running = [threading.Thread(target=loop, daemon=True) for _ in range(max(1, threads))]
    for t in running:
        t.start()
    for t in running:
        t.join()
