"""Finding Python interpreters, asking them about themselves once, and caching it.

Which path an environment records (documented in store-layout.md):

1. A wrapper that is not the interpreter itself (a pyenv shim) is replaced by
   the ``sys.executable`` it reports.
2. A venv's python is replaced by the base interpreter behind it, however
   deeply venvs are nested: an env never points into another env.
3. A symlink to a file in the same directory (``python3 -> python3.11``) is
   followed, pinning the env to the minor version it was created with; a plain
   ``python3`` whose link leaves its directory (``/usr/bin/python3 ->
   /etc/alternatives/python3 -> /usr/bin/python3.12``) is recorded as the
   minor-versioned name beside it for the same file (``/usr/bin/python3.12``).
4. A Homebrew ``Cellar/python@X.Y/X.Y.Z/...`` path (given, or met while
   following the path's symlinks) is replaced by the ``opt/python@X.Y/...``
   link to the same file, which survives patch upgrades.
5. Anything else is kept as given (never fully resolved): pyenv's version
   directories are patch paths and are recorded as such.

Facts are cached in a ``FactsCache`` the caller hands in (the store keeps one in
its database), keyed by path and identity: the executable's device, inode, size
and mtime, where its symlinks lead, and the ``pyvenv.cfg`` that would make it a
venv. Wrappers are never cached (a pyenv shim's target changes without the shim
changing).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from envstore.errors import InterpreterError
from envstore.model.interpreter import Interpreter
from envstore.python.described import describe, too_old
from envstore.python.links import link_chain, venv_cfg
from envstore.python.query import FactsCache, interpreter_at, query_interpreter

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "FactsCache",
    "Interpreter",
    "candidates",
    "describe",
    "distinct",
    "find_interpreter",
    "find_same_abi",
    "installed",
    "interpreter_at",
    "link_chain",
    "newest_installed",
    "query_interpreter",
    "recorded_interpreter",
    "recorded_request",
    "same_interpreter",
    "too_old",
]


# Patterns, compiled by re (and cached there) on first use: a path given with -p, or
# none, needs neither, and compiling costs a warm create ~0.5 ms.
_VERSION_REQUEST = r"(?i)^(?:cpython|python|py)?-?(3(?:\.\d+){0,2})$"
_COMMAND_NAME = r"^python(3(\.\d+t?)?)?$"


# -- the file system, without starting anything -------------------------------


# -- asking an interpreter ----------------------------------------------------


def _found_by_envstore(path: str, cache: FactsCache | None) -> bool:
    """Whether envstore knows ``path`` as an interpreter by itself: it ran that path
    before, when a user named it or its search found it (the store's cache has a row for
    it, even if the file changed since: a patch upgrade, a re-pointed link), or its own
    search finds it now."""
    if not os.path.exists(path):
        return False
    if cache is not None and cache.known(path):
        return True
    for cand in candidates():
        try:
            if os.path.samefile(cand, path):
                return True
        except OSError:
            continue
    return False


def recorded_interpreter(
    path: str, requested: str = "", cache: FactsCache | None = None
) -> Interpreter:
    """``interpreter_at`` for a path read from an env's own files (its manifest), which
    may be crafted: a program envstore did not find by itself is never run. What runs
    is the resolved file: a link to a real interpreter beside a crafted pyvenv.cfg
    would have that interpreter read its standard library from elsewhere."""
    _check_found(path, cache)
    real = os.path.realpath(path)
    if venv_cfg(path) is not None or venv_cfg(real) is not None:
        raise InterpreterError(
            f"{path} is inside a virtual environment (a pyvenv.cfg beside it), which an"
            " env's base interpreter never is; it was not run"
        )
    return interpreter_at(real, requested, cache).replace(path=path)


def recorded_request(requested: str, cache: FactsCache | None = None) -> Interpreter:
    """``find_interpreter`` for the request an env's manifest records (``-p`` as given):
    a path in it is run only if envstore knows it by itself (``recorded_interpreter``)."""
    if "/" in requested:
        _check_found(os.path.abspath(os.path.expanduser(requested)), cache)
    elif requested and not (
        re.match(_VERSION_REQUEST, requested) or re.match(_COMMAND_NAME, requested)
    ):
        # A name looked up on PATH: only a Python's (python3.12, 3.12), not any program.
        raise InterpreterError(f"{requested!r} is not a Python version or command name")
    return find_interpreter(requested or None, cache)


def _check_found(path: str, cache: FactsCache | None) -> None:
    if not _found_by_envstore(path, cache):
        if not os.path.exists(path):
            raise InterpreterError(f"no interpreter at {path}")
        raise InterpreterError(
            f"{path} is not an interpreter envstore found on this machine, so it was not run"
            " (an env's files alone never make envstore run a program); name it with"
            " --python if you trust it"
        )


# -- where to look --------------------------------------------------------------


def _version_key(name: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", name)]


def _search_dirs() -> list[str]:
    """Directories that may hold interpreters, in preference order: PATH, pyenv,
    then the standard install locations (distro, Homebrew, uv, python.org, asdf)."""
    home = Path.home()
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    for root in (
        Path(os.environ.get("PYENV_ROOT", home / ".pyenv")) / "versions",
        Path(os.environ.get("ASDF_DATA_DIR", home / ".asdf")) / "installs" / "python",
    ):
        try:  # another user's pyenv (PYENV_ROOT inherited through sudo) cannot be read
            names = os.listdir(root)
        except OSError:
            names = []
        if names:
            versions = [root / n for n in names if re.match(r"^\d+\.\d+\.\d+t?$", n)]
            versions.sort(key=lambda p: _version_key(p.name), reverse=True)
            dirs += [str(v / "bin") for v in versions]
    dirs += ["/usr/local/bin", "/usr/bin", "/opt/homebrew/bin", "/home/linuxbrew/.linuxbrew/bin"]
    globs = [
        (Path("/opt/homebrew/opt"), "python@3.*/bin"),
        (Path("/usr/local/opt"), "python@3.*/bin"),
        (Path("/home/linuxbrew/.linuxbrew/opt"), "python@3.*/bin"),
        (Path("/Library/Frameworks/Python.framework/Versions"), "3.*/bin"),
        (
            Path(os.environ.get("UV_PYTHON_INSTALL_DIR", home / ".local/share/uv/python")),
            "cpython-3.*/bin",
        ),
    ]
    for base, pattern in globs:
        found = [str(p) for p in base.glob(pattern)] if os.path.isdir(base) else []
        dirs += sorted(found, key=lambda d: _version_key(d), reverse=True)
    return dirs


def candidates() -> list[str]:
    """Interpreter executables on this machine, in preference order, without running them."""
    found: list[str] = []
    seen: set[tuple[int, int]] = set()
    for d in _search_dirs():
        if os.path.basename(d.rstrip("/")) == "shims":  # pyenv shims: scripts
            continue
        try:
            st = os.stat(d)
        except OSError:
            continue
        # A directory once: with a merged /usr, /bin is /usr/bin, and each interpreter
        # would be listed (and suggested) twice.
        if (st.st_dev, st.st_ino) in seen:
            continue
        seen.add((st.st_dev, st.st_ino))
        for name in _python_names(d, st.st_mtime_ns):
            full = os.path.join(d, name)
            if full not in found and os.access(full, os.X_OK):
                found.append(full)
    return found


# Per process: a directory's python3* names, kept while its mtime is the same (a name
# added, removed or renamed changes it). /usr/bin alone lists ~1,500 names, and a
# library caller (an IDE, tox) finds interpreters on every project sync.
_NAMES: dict[str, tuple[int, list[str]]] = {}


def _python_names(directory: str, mtime_ns: int) -> list[str]:
    known = _NAMES.get(directory)
    if known is not None and known[0] == mtime_ns:
        return known[1]
    try:
        listed = os.listdir(directory)
    except OSError:
        return []
    pattern = re.compile(r"^python3(\.\d+t?)?$")  # not at import: the warm path lists none
    names = [n for n in listed if pattern.match(n)]
    names.sort(key=lambda n: (len(n), n), reverse=True)
    if len(_NAMES) < 256:
        _NAMES[directory] = (mtime_ns, names)
    return names


def _file_identity(path: str) -> tuple[int, int, str | None] | None:
    """What makes two paths the same interpreter: the file they run (followed through
    symlinks, hard links included) and the venv, if any, it runs as."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    cfg = venv_cfg(path)
    return (st.st_dev, st.st_ino, os.path.realpath(cfg) if cfg is not None else None)


def distinct(paths: list[str]) -> list[list[str]]:
    """``paths`` (``candidates()``, in preference order) grouped by the interpreter they
    run: ``python3`` and ``python3.12`` linked to one file, a link in one directory to
    the file in another. Each group lists its paths in order, first the one to show."""
    groups: dict[object, list[str]] = {}
    for path in paths:
        key = _file_identity(path)
        groups.setdefault(path if key is None else key, []).append(path)
    return list(groups.values())


def same_interpreter(a: str, b: str) -> bool:
    """Whether paths ``a`` and ``b`` run the same interpreter (as ``distinct`` groups)."""
    key = _file_identity(a)
    return key is not None and key == _file_identity(b)


def installed(cache: FactsCache | None = None) -> list[Interpreter]:
    """Every usable interpreter found (as an env would record it), one per recorded path."""
    result: dict[str, Interpreter] = {}
    for cand in candidates():
        try:
            interp = describe("", cand, cache)
        except InterpreterError:
            continue
        result.setdefault(interp.path, interp)
    return list(result.values())


def newest_installed(
    accept: Callable[[Interpreter], bool], cache: FactsCache | None = None
) -> Interpreter | None:
    """The newest (by version) of the installed interpreters ``accept`` takes, or None:
    what a project's or a script's ``requires-python`` picks when nothing else does."""
    # By the version each candidate's (cached) facts give, newest first, ties in
    # candidates() order; then described (the costly part: links followed, the path
    # pinned) one at a time until ``accept`` takes one, not every interpreter found.
    ranked = []
    for n, cand in enumerate(candidates()):
        try:
            version = str(query_interpreter(cand, cache)["version"])
        except (InterpreterError, KeyError):
            continue
        ranked.append(([int(x) for x in re.findall(r"\d+", version)[:3]], -n, cand))
    ranked.sort(reverse=True)
    for _key, _n, cand in ranked:
        try:
            interp = describe("", cand, cache)
        except InterpreterError:
            continue
        if accept(interp):
            return interp
    return None


def find_same_abi(soabi: str, cache: FactsCache | None = None) -> Interpreter | None:
    """An interpreter on this machine with the ABI ``soabi`` (same minor version and build
    flavour), in candidates() order; None when there is none."""
    for cand in candidates():
        try:
            if query_interpreter(cand, cache).get("soabi") != soabi:
                continue
            interp = describe("", cand, cache)
        except InterpreterError:
            continue
        if interp.soabi == soabi:
            return interp
    return None


def _default_path() -> str:
    base = getattr(sys, "_base_executable", None) or sys.executable
    return base if os.path.exists(base) else sys.executable


def _by_version(request: str, wanted: list[str], cache: FactsCache | None) -> Interpreter:
    for cand in candidates():
        try:
            facts = query_interpreter(cand, cache)
        except InterpreterError:
            continue
        if str(facts["version"]).split(".")[: len(wanted)] == wanted:
            return describe(request, cand, cache)
    raise InterpreterError(
        f"no Python {'.'.join(wanted)} found (searched PATH, pyenv and standard"
        " locations; see 'envstore python list')"
    )


def find_interpreter(request: str | None, cache: FactsCache | None = None) -> Interpreter:
    """Turn ``-p`` (a version, a command name, a path, or None) into an Interpreter."""
    if not request:
        return describe("", _default_path(), cache)
    if "/" in request:
        path = os.path.abspath(os.path.expanduser(request))
        if not os.path.exists(path):
            raise InterpreterError(f"no interpreter at {path}")
        return describe(path, path, cache)
    version = re.match(_VERSION_REQUEST, request)
    if version and not re.match(_COMMAND_NAME, request):
        return _by_version(request, version.group(1).split("."), cache)
    import shutil

    # A command name means what the shell would run; a version-like one
    # (python3.12) falls back to the version search when that fails.
    found = shutil.which(request)
    if found is not None:
        try:
            return describe(request, os.path.abspath(found), cache)
        except InterpreterError:
            if not version:
                raise
    if version:
        return _by_version(request, version.group(1).split("."), cache)
    raise InterpreterError(f"no interpreter named {request!r} on PATH")
