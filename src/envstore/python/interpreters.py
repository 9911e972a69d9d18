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

Facts are cached in the store database keyed by path and identity: the
executable's device, inode, size and mtime, where its symlinks lead, and the
``pyvenv.cfg`` that would make it a venv. Wrappers are never cached (a pyenv
shim's target changes without the shim changing).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import sys
import time
from pathlib import Path

from envstore.errors import InterpreterError
from envstore.model.interpreter import Interpreter

__all__ = [
    "Interpreter",
    "candidates",
    "describe",
    "find_interpreter",
    "find_same_abi",
    "installed",
    "interpreter_at",
    "link_chain",
    "pinned",
    "query_interpreter",
    "recorded_interpreter",
    "recorded_request",
    "too_old",
]

# Runs inside the target interpreter (any CPython >= 3.9): stdlib only. It runs
# with -S, so ``sys.prefix`` never says whether this is a venv (site.py sets it):
# look for pyvenv.cfg the way site.py does.
_QUERY = r"""
import json, os, platform, sys, sysconfig
impl = sys.implementation
iv = impl.version
iver = "%d.%d.%d" % (iv.major, iv.minor, iv.micro)
if iv.releaselevel != "final":
    iver += iv.releaselevel[0] + str(iv.serial)
schemes = sysconfig.get_scheme_names()
scheme = "venv" if "venv" in schemes else "posix_prefix"
paths = sysconfig.get_paths(scheme, vars={"base": "/@", "platbase": "/@"})
exe_dir = os.path.dirname(os.path.abspath(sys.executable)) if sys.executable else ""
cfg = None
for d in (exe_dir, os.path.dirname(exe_dir)) if exe_dir else ():
    if os.path.isfile(os.path.join(d, "pyvenv.cfg")):
        cfg = os.path.join(d, "pyvenv.cfg")
        break
home = None
if cfg:
    with open(cfg, encoding="utf-8", errors="replace") as f:
        for line in f:
            key, eq, value = line.partition("=")
            if eq and key.strip().lower() == "home":
                home = value.strip()
print(json.dumps({
    "executable": sys.executable,
    "base_executable": getattr(sys, "_base_executable", sys.executable),
    "is_venv": cfg is not None,
    "venv_home": home,
    "version": platform.python_version(),
    "implementation": impl.name,
    "cache_tag": impl.cache_tag,
    "soabi": sysconfig.get_config_var("SOABI") or "",
    "gil_disabled": bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
    "debug": hasattr(sys, "gettotalrefcount"),
    "platform": sysconfig.get_platform(),
    "stdlib": sysconfig.get_path("stdlib"),
    "purelib": os.path.relpath(paths["purelib"], "/@"),
    "markers": {
        "implementation_name": impl.name,
        "implementation_version": iver,
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    },
}))
"""

_VERSION_REQUEST = re.compile(r"^(?:cpython|python|py)?-?(3(?:\.\d+){0,2})$", re.IGNORECASE)
_COMMAND_NAME = re.compile(r"^python(3(\.\d+t?)?)?$")
_CELLAR = re.compile(r"^(?P<prefix>.*)/Cellar/(?P<formula>python@\d+\.\d+t?)/[^/]+/(?P<rest>.+)$")
_MAX_LINKS = 40


# -- the file system, without starting anything -------------------------------


def _venv_cfg(path: str) -> str | None:
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


def _identity(path: str) -> str | None:
    """What the cached facts of ``path`` depend on; None when nothing runs there."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    cfg = _venv_cfg(path)
    venv = ""
    if cfg is not None:
        try:
            venv = f"{cfg}@{os.stat(cfg).st_mtime_ns}"
        except OSError:
            pass
    real = os.path.realpath(path)
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{real}:{venv}"


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


def _pin(path: str, abi_tag: str = "") -> str:
    """Apply rules 3 and 4 of the module docstring to an absolute path (``abi_tag``:
    the interpreter's, ``cp312``, for the minor-versioned name of rule 3)."""
    path = _same_dir_target(path)
    path = _versioned_sibling(path, abi_tag)
    for node in [*link_chain(path), os.path.realpath(path)]:
        cellar = _CELLAR.match(node)
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
    path = _pin(interp.path, interp.abi_tag)
    return interp if path == interp.path else interp.replace(path=path)


# -- asking an interpreter ----------------------------------------------------


def _run_query(path: str) -> dict[str, object]:
    import subprocess

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    try:
        proc = subprocess.run(
            [path, "-I", "-S", "-c", _QUERY],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InterpreterError(f"cannot run the interpreter {path}: {exc}") from exc
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
        raise InterpreterError(f"the interpreter {path} failed to describe itself: {tail[0]}")
    try:
        facts: dict[str, object] = json.loads(proc.stdout)
    except ValueError as exc:
        raise InterpreterError(f"the interpreter {path} gave an unreadable answer") from exc
    return facts


def _is_wrapper(path: str, facts: dict[str, object]) -> bool:
    real = str(facts.get("executable") or "")
    return os.path.isabs(real) and os.path.realpath(real) != os.path.realpath(path)


def query_interpreter(path: str, db: sqlite3.Connection | None = None) -> dict[str, object]:
    """The facts of the interpreter at ``path``, from the cache when its identity is unchanged."""
    ident = _identity(path)
    if ident is None:
        raise InterpreterError(f"no interpreter at {path}")
    if db is not None:
        row = db.execute(
            "SELECT identity, facts FROM interpreters WHERE path = ?", (path,)
        ).fetchone()
        if row is not None and row[0] == ident:
            cached: dict[str, object] = json.loads(row[1])
            return cached
    facts = _run_query(path)
    if db is not None and not _is_wrapper(path, facts):
        db.execute(
            "INSERT OR REPLACE INTO interpreters (path, identity, facts, queried)"
            " VALUES (?, ?, ?, ?)",
            (path, ident, json.dumps(facts), time.time()),
        )
    return facts


def _abi_tag(facts: dict[str, object]) -> str:
    major, minor = str(facts["version"]).split(".")[:2]
    suffix = ("t" if facts.get("gil_disabled") else "") + ("d" if facts.get("debug") else "")
    return f"cp{major}{minor}{suffix}"


def from_facts(requested: str, path: str, facts: dict[str, object]) -> Interpreter:
    return Interpreter(
        requested=requested,
        path=path,
        resolved=os.path.realpath(path),
        version=str(facts["version"]),
        implementation=str(facts["implementation"]),
        cache_tag=str(facts["cache_tag"]),
        soabi=str(facts["soabi"]),
        abi_tag=_abi_tag(facts),
        platform=str(facts["platform"]),
        stdlib=str(facts["stdlib"]),
        purelib=str(facts["purelib"]),
        markers=dict(facts["markers"]),  # type: ignore[call-overload]
    )


def _venv_base(path: str, facts: dict[str, object]) -> str:
    """The interpreter one level below the venv whose python is ``path``.

    Follow the symlinks out of the venv first: the first path outside it is what
    the venv was made from (and keeps a path like Homebrew's ``opt``). A venv
    made with copies has no such link; then ``sys._base_executable`` (3.11+), or
    the ``home`` of its pyvenv.cfg.
    """
    chain = link_chain(path)
    inside = [i for i, node in enumerate(chain) if _venv_cfg(node) is not None]
    last = inside[-1] if inside else 0
    if last + 1 < len(chain) and os.path.exists(chain[last + 1]):
        return chain[last + 1]
    base = str(facts.get("base_executable") or "")
    if os.path.isabs(base) and os.path.exists(base) and _venv_cfg(base) is None:
        return base
    home = str(facts.get("venv_home") or "")
    minor = ".".join(str(facts["version"]).split(".")[:2])
    for name in (os.path.basename(path), f"python{minor}", "python3"):
        cand = os.path.join(home, name)
        if home and os.path.isfile(cand):
            return cand
    raise InterpreterError(f"{path} is a virtual environment whose base interpreter is gone")


def interpreter_at(
    path: str, requested: str = "", db: sqlite3.Connection | None = None
) -> Interpreter:
    """The interpreter at exactly ``path``, none of the rules applied (an env's recorded one)."""
    facts = query_interpreter(path, db)
    if facts.get("implementation") != "cpython":
        raise InterpreterError(
            f"{path} is {facts.get('implementation')}; envstore supports CPython"
        )
    return from_facts(requested, path, facts)


def _found_by_envstore(path: str, db: sqlite3.Connection | None) -> bool:
    """Whether envstore knows ``path`` as an interpreter by itself: it ran that path
    before, when a user named it or its search found it (the store's cache has a row for
    it, even if the file changed since: a patch upgrade, a re-pointed link), or its own
    search finds it now."""
    if not os.path.exists(path):
        return False
    if db is not None:
        row = db.execute("SELECT 1 FROM interpreters WHERE path = ?", (path,)).fetchone()
        if row is not None:
            return True
    for cand in candidates():
        try:
            if os.path.samefile(cand, path):
                return True
        except OSError:
            continue
    return False


def recorded_interpreter(
    path: str, requested: str = "", db: sqlite3.Connection | None = None
) -> Interpreter:
    """``interpreter_at`` for a path read from an env's own files (its manifest), which
    may be crafted: a program envstore did not find by itself is never run. What runs
    is the resolved file: a link to a real interpreter beside a crafted pyvenv.cfg
    would have that interpreter read its standard library from elsewhere."""
    _check_found(path, db)
    real = os.path.realpath(path)
    if _venv_cfg(path) is not None or _venv_cfg(real) is not None:
        raise InterpreterError(
            f"{path} is inside a virtual environment (a pyvenv.cfg beside it), which an"
            " env's base interpreter never is; it was not run"
        )
    return interpreter_at(real, requested, db).replace(path=path)


def recorded_request(requested: str, db: sqlite3.Connection | None = None) -> Interpreter:
    """``find_interpreter`` for the request an env's manifest records (``-p`` as given):
    a path in it is run only if envstore knows it by itself (``recorded_interpreter``)."""
    if "/" in requested:
        _check_found(os.path.abspath(os.path.expanduser(requested)), db)
    elif requested and not (_VERSION_REQUEST.match(requested) or _COMMAND_NAME.match(requested)):
        # A name looked up on PATH: only a Python's (python3.12, 3.12), not any program.
        raise InterpreterError(f"{requested!r} is not a Python version or command name")
    return find_interpreter(requested or None, db)


def _check_found(path: str, db: sqlite3.Connection | None) -> None:
    if not _found_by_envstore(path, db):
        if not os.path.exists(path):
            raise InterpreterError(f"no interpreter at {path}")
        raise InterpreterError(
            f"{path} is not an interpreter envstore found on this machine, so it was not run"
            " (an env's files alone never make envstore run a program); name it with"
            " --python if you trust it"
        )


def too_old(version: str) -> bool:
    """Whether an interpreter of ``version`` (``3.8.18``) is older than envstore supports."""
    return tuple(int(x) for x in version.split(".")[:2]) < (3, 9)


def describe(requested: str, path: str, db: sqlite3.Connection | None = None) -> Interpreter:
    """The interpreter an env records for the executable ``path`` (module docstring rules)."""
    facts = query_interpreter(path, db)
    if _is_wrapper(path, facts):
        # ``path`` is a wrapper (a pyenv shim, a shell script), not the interpreter.
        path = str(facts["executable"])
        facts = query_interpreter(path, db)
    for _ in range(8):
        outside = _venv_cfg(path) is None and not any(_venv_cfg(n) for n in link_chain(path)[1:])
        if outside:
            break
        path = _venv_base(path, facts)
        facts = query_interpreter(path, db)
    else:
        raise InterpreterError(f"{path}: virtual environments nested too deeply")
    if facts["implementation"] != "cpython":
        raise InterpreterError(f"{path} is {facts['implementation']}; envstore supports CPython")
    if too_old(str(facts["version"])):
        raise InterpreterError(f"{path} is Python {facts['version']}; envstore needs >= 3.9")
    pin = _pin(path, _abi_tag(facts))
    if pin != path:
        facts = query_interpreter(pin, db)
    return from_facts(requested, pin, facts)


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
    names = re.compile(r"^python3(\.\d+t?)?$")
    seen: set[str] = set()
    for d in _search_dirs():
        # A directory once, by its real path: with a merged /usr, /bin is /usr/bin, and
        # each interpreter would be listed (and suggested) twice.
        real = os.path.realpath(d)
        if real in seen or os.path.basename(d.rstrip("/")) == "shims":  # pyenv shims: scripts
            continue
        seen.add(real)
        try:
            entries = sorted(os.listdir(d), key=lambda n: (len(n), n), reverse=True)
        except OSError:
            continue
        for name in entries:
            full = os.path.join(d, name)
            if names.match(name) and os.access(full, os.X_OK) and full not in found:
                found.append(full)
    return found


def installed(db: sqlite3.Connection | None = None) -> list[Interpreter]:
    """Every usable interpreter found (as an env would record it), one per recorded path."""
    result: dict[str, Interpreter] = {}
    for cand in candidates():
        try:
            interp = describe("", cand, db)
        except InterpreterError:
            continue
        result.setdefault(interp.path, interp)
    return list(result.values())


def find_same_abi(soabi: str, db: sqlite3.Connection | None = None) -> Interpreter | None:
    """An interpreter on this machine with the ABI ``soabi`` (same minor version and build
    flavour), in candidates() order; None when there is none."""
    for cand in candidates():
        try:
            if query_interpreter(cand, db).get("soabi") != soabi:
                continue
            interp = describe("", cand, db)
        except InterpreterError:
            continue
        if interp.soabi == soabi:
            return interp
    return None


def _default_path() -> str:
    base = getattr(sys, "_base_executable", None) or sys.executable
    return base if os.path.exists(base) else sys.executable


def _by_version(request: str, wanted: list[str], db: sqlite3.Connection | None) -> Interpreter:
    for cand in candidates():
        try:
            facts = query_interpreter(cand, db)
        except InterpreterError:
            continue
        if str(facts["version"]).split(".")[: len(wanted)] == wanted:
            return describe(request, cand, db)
    raise InterpreterError(
        f"no Python {'.'.join(wanted)} found (searched PATH, pyenv and standard"
        " locations; see 'envstore python list')"
    )


def find_interpreter(request: str | None, db: sqlite3.Connection | None = None) -> Interpreter:
    """Turn ``-p`` (a version, a command name, a path, or None) into an Interpreter."""
    if not request:
        return describe("", _default_path(), db)
    if "/" in request:
        path = os.path.abspath(os.path.expanduser(request))
        if not os.path.exists(path):
            raise InterpreterError(f"no interpreter at {path}")
        return describe(path, path, db)
    version = _VERSION_REQUEST.match(request)
    if version and not _COMMAND_NAME.match(request):
        return _by_version(request, version.group(1).split("."), db)
    import shutil

    # A command name means what the shell would run; a version-like one
    # (python3.12) falls back to the version search when that fails.
    found = shutil.which(request)
    if found is not None:
        try:
            return describe(request, os.path.abspath(found), db)
        except InterpreterError:
            if not version:
                raise
    if version:
        return _by_version(request, version.group(1).split("."), db)
    raise InterpreterError(f"no interpreter named {request!r} on PATH")
