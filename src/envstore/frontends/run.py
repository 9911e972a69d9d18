"""``envstore run``: a command in a throwaway environment served from the store.

Each run gets a fresh ephemeral env (an :class:`~envstore.frontends.isolated.IsolatedEnv`)
that is removed when the command ends. Envs are not cached between runs: from
a warm store, creating one costs a few small files and milliseconds, while a
cache would need its own gc roots, locking between concurrent runs and a
policy for stale entries.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from types import FrameType

from envstore.errors import EnvError
from envstore.frontends.isolated import IsolatedEnv
from envstore.model.sources import PackageSources, sources_from
from envstore.store.layout import Store

__all__ = ["activated_environ", "run_in_env"]


def activated_environ(env: IsolatedEnv, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default ``os.environ``) as ``bin/activate`` would leave it for ``env``."""
    environ = dict(os.environ if base is None else base)
    old = environ.get("PATH")
    environ["PATH"] = os.pathsep.join([env.scripts_dir, old]) if old else env.scripts_dir
    environ["VIRTUAL_ENV"] = str(env.path)
    environ.pop("PYTHONHOME", None)
    environ.pop("__PYVENV_LAUNCHER__", None)  # macOS framework builds: would pick the base
    return environ


def _wait(proc: subprocess.Popen[bytes]) -> int:
    """Wait for ``proc``, passing SIGTERM/SIGHUP on to it, and return a shell-style code.

    SIGINT from a terminal reaches the whole foreground process group, so the
    child already has it: we keep waiting (its exit code says what happened)
    instead of dying before the env is cleaned up.
    """
    previous: dict[signal.Signals, signal._HANDLER] = {}

    def forward(signum: int, frame: FrameType | None) -> None:
        proc.send_signal(signum)

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP):
            previous[sig] = signal.signal(sig, forward)
    try:
        while True:
            try:
                code = proc.wait()
                break
            except KeyboardInterrupt:
                continue
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code


def run_in_env(
    command: Sequence[str],
    requirements: Sequence[str] = (),
    *,
    python: str | None = None,
    store: Store | str | os.PathLike[str] | None = None,
    requirement_files: Sequence[str] = (),
    sources: PackageSources | None = None,
    find_links: Sequence[str] = (),
    index_url: str | None = None,
    no_index: bool = False,
    offline: bool = False,
    progress: Callable[[str], None] | None = None,
    max_age: float | None = None,
) -> int:
    """Run ``command`` in a throwaway env holding ``requirements``; return its exit code.

    The env is activated for the command (``PATH``, ``VIRTUAL_ENV``; a command
    without a slash is looked up in the env's ``bin`` first) and removed
    afterwards, whatever happened. A command killed by signal N gives 128 + N.
    ``sources`` (or its four keywords, not both) and ``max_age`` as for
    :func:`envstore.create_env`.
    """
    if not command:
        raise EnvError("no command to run")
    with IsolatedEnv(
        requirements=requirements,
        python=python,
        store=store,
        requirement_files=requirement_files,
        sources=sources_from(sources, find_links, index_url, no_index, offline),
        progress=progress,
        max_age=max_age,
    ) as env:
        environ = activated_environ(env)
        exe = shutil.which(command[0], path=environ["PATH"])
        if exe is None:
            raise EnvError(f"command not found: {command[0]} (not in {env.scripts_dir} nor PATH)")
        if progress:
            progress(f"running {command[0]} in {env.path}")
        try:
            proc = subprocess.Popen(list(command), executable=exe, env=environ)
        except OSError as exc:
            raise EnvError(f"cannot run {command[0]}: {exc}") from exc
        return _wait(proc)
