"""Which path an env records for an interpreter: the symlink and pinning rules
(see ``envstore.python.interpreters``).
"""

from __future__ import annotations

import os
import re

from envstore.model.interpreter import Interpreter

# Compiled by re on first use: only a Homebrew path needs it.
_CELLAR = r"^(?P<prefix>.*)/Cellar/(?P<formula>python@\d+\.\d+t?)/[^/]+/(?P<rest>.+)$"


_MAX_LINKS = 40


def venv_cfg(path: str) -> str | None:
    """The pyvenv.cfg that makes ``path`` a venv's python (as CPython looks for it)."""
    exe_dir = os.path.dirname(os.path.abspath(path))
    for d in (exe_dir, os.path.dirname(exe_dir)):
        cfg = os.path.join(d, "pyvenv.cfg")
        if os.path.isfile(cfg):
            return cfg
    return None


def link_chain(path: str) -> list[str]:
    """``path`` and every symlink hop after it, one readlink at a time."""
    chain = [path]
    current = path
    for _ in range(_MAX_LINKS):
        try:
            target = os.readlink(current)
        except OSError:
            break
        base = os.path.dirname(current)
        if ".." in target.split("/"):
            # "dir/.." is only lexical when dir is not itself a symlink.
            base = os.path.realpath(base)
        current = os.path.normpath(os.path.join(base, target))
        chain.append(current)
    return chain


def identity(path: str) -> str | None:
    """What the cached facts of ``path`` depend on; None when nothing runs there."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    cfg = venv_cfg(path)
    venv = ""
    if cfg is not None:
        try:
            venv = f"{cfg}@{os.stat(cfg).st_mtime_ns}"
        except OSError:
            pass
    real = real_path(path)
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{real}:{venv}"


def real_path(path: str) -> str:
    """``os.path.realpath(path)`` of an existing ``path``, asked of the kernel where it
    can tell (Linux's ``/proc/self/fd``: three calls, not a Python lstat and readlink per
    component, ~15 us of a warm sync's interpreter check); else realpath's own answer."""
    if _O_PATH is None:
        return os.path.realpath(path)
    try:
        fd = os.open(path, _O_PATH | os.O_CLOEXEC)  # opens nothing: no FIFO waited on
    except (OSError, ValueError):
        return os.path.realpath(path)
    try:
        real = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        real = ""
    finally:
        os.close(fd)
    if not real.startswith("/") or real.endswith(" (deleted)"):  # no /proc, or renamed
        return os.path.realpath(path)
    return real


_O_PATH: int | None = getattr(os, "O_PATH", None)


def _same_dir_target(path: str) -> str:
    """Rule 3: follow symlinks while they stay in the same directory."""
    current = path
    for _ in range(8):
        if not os.path.islink(current):
            break
        target = os.readlink(current)
        if os.path.dirname(target) not in ("", "."):
            target_abs = os.path.normpath(os.path.join(os.path.dirname(current), target))
            if os.path.dirname(target_abs) != os.path.dirname(current):
                break
        current = os.path.join(os.path.dirname(current), os.path.basename(target))
    return current


def pin_path(path: str, abi_tag: str = "") -> str:
    """Apply rules 3 and 4 of the module docstring to an absolute path (``abi_tag``:
    the interpreter's, ``cp312``, for the minor-versioned name of rule 3)."""
    path = _same_dir_target(path)
    path = _versioned_sibling(path, abi_tag)
    for node in [*link_chain(path), os.path.realpath(path)]:
        cellar = re.match(_CELLAR, node) if "/Cellar/" in node else None
        if cellar is None:
            continue
        opt = f"{cellar['prefix']}/opt/{cellar['formula']}/{cellar['rest']}"
        try:
            if os.path.samefile(opt, path):
                return _same_dir_target(opt)
        except OSError:
            continue
    return path


def _versioned_sibling(path: str, abi_tag: str) -> str:
    """Rule 3 for a link that leaves its directory (``/usr/bin/python3 ->
    /etc/alternatives/python3 -> /usr/bin/python3.12``): the minor-versioned name for
    the same file beside it, ``/usr/bin/python3.12``, which an alternatives switch or a
    new minor does not re-point. Else ``path`` as it is."""
    if not abi_tag or not re.match(r"^python3?$", os.path.basename(path)):
        return path
    digits = abi_tag[2:].rstrip("td")
    minor = f"{digits[0]}.{digits[1:]}"
    flag = "t" if "t" in abi_tag[2:] else ""
    sibling = os.path.join(os.path.dirname(path), f"python{minor}{flag}")
    try:
        return sibling if os.path.samefile(sibling, path) else path
    except OSError:
        return path


def pinned(interp: Interpreter) -> Interpreter:
    """``interp`` recorded by rules 3 and 4 (an env made before rule 3 pinned a link
    that leaves its directory records plain ``python3``)."""
    path = pin_path(interp.path, interp.abi_tag)
    return interp if path == interp.path else interp.replace(path=path)
