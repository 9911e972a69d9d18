"""Compiling an entry's modules for an interpreter, in worker processes of that
interpreter, as the files are unpacked.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
from pathlib import Path

from envstore.errors import (
    EnvstoreError,
)
from envstore.model.interpreter import Interpreter


class Worker:
    """One compiling process: its stdin takes paths, its stderr goes to a file (a
    pipe could fill with SyntaxWarnings and block it, then us)."""

    def __init__(self, interp: Interpreter) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        self.err = tempfile.TemporaryFile()  # noqa: SIM115 (closed in finish)
        self.proc = subprocess.Popen(
            [interp.path, "-I", "-c", _WORKER, str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,  # never holding the caller's pipe (envstore | tee)
            stderr=self.err,
            env=env,
            bufsize=0,  # each path reaches the worker at once, not in 8 KB batches
        )
        self.queued = 0  # source bytes sent

    def send(self, path: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(os.fsencode(path) + b"\n")
        self.queued += os.path.getsize(path)

    def finish(self, kill: bool = False) -> str | None:
        """Close its input and wait; what went wrong, or None."""
        if kill:
            self.proc.kill()
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
        except BrokenPipeError:
            pass
        code = self.proc.wait()
        with self.err:
            self.err.seek(0)
            tail = self.err.read()[-500:].decode(errors="replace").strip()
        return None if code == 0 or kill else (tail or f"exit code {code}")


class Compiler:
    """Workers of the target interpreter that precompile ``.py`` files while the rest
    is still being unpacked: one per core once there is enough to do, each fed the
    next file while it has the least source bytes queued.

    Unchecked-hash pycs: the store is immutable, so the source never needs
    re-checking, and imports skip a stat per module.
    """

    SPREAD = 16  # files before more workers start: one costs ~25 ms, a file ~1-5 ms

    def __init__(self, interp: Interpreter) -> None:
        self.interp = interp
        self.workers: list[Worker] = []
        self.files = 0
        self.lock = threading.Lock()

    def submit(self, top: Path) -> None:
        """Queue every ``.py`` file under ``top``."""
        for d, _, names in os.walk(top):
            for n in names:
                if n.endswith(".py"):
                    self.submit_file(os.path.join(d, n))

    def submit_file(self, path: str) -> None:
        """Queue one file (callable from several unpacking threads)."""
        with self.lock:
            self.files += 1
            want = 1 if self.files < self.SPREAD else (os.cpu_count() or 1)
            while len(self.workers) < want:
                self.workers.append(Worker(self.interp))
            worker = min(self.workers, key=lambda w: w.queued)
            try:
                worker.send(path)
                return
            except BrokenPipeError:  # it died: say why; the caller stops the others
                self.workers.remove(worker)
                problem = worker.finish() or "a worker exited"
        raise EnvstoreError(f"compiling bytecode with {self.interp.path} failed: {problem}")

    def wait(self) -> None:
        """Wait for every queued file; raise if a worker failed (a broken interpreter)."""
        problems = [p for p in (w.finish() for w in self.workers) if p]
        self.workers = []
        if problems:
            raise EnvstoreError(f"compiling bytecode with {self.interp.path} failed: {problems[0]}")

    def stop(self) -> None:
        """Kill what is still running (after an error elsewhere)."""
        for w in self.workers:
            w.finish(kill=True)
        self.workers = []


def compile_site(interp: Interpreter, site_dirs: list[Path]) -> None:
    """Precompile every .py under ``site_dirs`` with the target interpreter."""
    compiler = Compiler(interp)
    try:
        for d in site_dirs:
            compiler.submit(d)
        compiler.wait()
    finally:
        compiler.stop()


_WORKER = """
import os, py_compile, sys
mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
parent = int(sys.argv[1])
for line in sys.stdin.buffer:
    if os.getppid() != parent:
        sys.exit(1)  # envstore was killed: stop writing into its (now orphaned) tree
    try:
        pyc = py_compile.compile(os.fsdecode(line[:-1]), doraise=True, invalidation_mode=mode)
        os.chmod(pyc, 0o444)  # read-only like the entry, here rather than in the parent
    except Exception:
        pass  # py2-only leftovers in real wheels: pip and compileall skip them too
"""
