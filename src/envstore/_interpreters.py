"""Finding Python interpreters, asking them about themselves once, and caching it.

Which path an environment records (documented in store-layout.md):

1. A venv's python is replaced by the base interpreter behind it.
2. A symlink to a file in the same directory (``python3 -> python3.11``) is
   followed, pinning the env to the minor version it was created with.
3. A Homebrew ``Cellar/python@X.Y/X.Y.Z/...`` path is replaced by the
   ``opt/python@X.Y/...`` link to it, which survives patch upgrades.
4. Anything else is kept as given (never fully resolved): pyenv's version
   directories are patch paths and are recorded as such.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from envstore.errors import InterpreterError

__all__ = ["Interpreter", "candidates", "find_interpreter", "query_interpreter"]

# Runs inside the target interpreter (any CPython >= 3.9): stdlib only.
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
print(json.dumps({
    "executable": sys.executable,
    "base_executable": getattr(sys, "_base_executable", sys.executable),
    "is_venv": sys.prefix != sys.base_prefix,
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


@dataclass(frozen=True)
class Interpreter:
    """A base interpreter as an environment records it."""

    requested: str  # what the user asked for ("" for the default)
    path: str  # the path the env links to (see the module docstring)
    resolved: str  # fully resolved path, for explaining decisions later
    version: str  # "3.11.7"
    implementation: str  # "cpython"
    cache_tag: str  # "cpython-311"
    soabi: str  # "cpython-311-x86_64-linux-gnu": names the ABI subtree
    abi_tag: str  # "cp311", "cp313t"
    platform: str  # sysconfig.get_platform()
    stdlib: str
    purelib: str  # site-packages relative to an env root, e.g. lib/python3.11/site-packages
    markers: dict[str, str] = field(hash=False, compare=False)

    @property
    def minor(self) -> str:
        """``3.11``."""
        return ".".join(self.version.split(".")[:2])

    @property
    def python_tag(self) -> str:
        """``cp311``."""
        major, minor = self.version.split(".")[:2]
        return f"cp{major}{minor}"

    def to_json(self) -> dict[str, object]:
        return {
            "requested": self.requested,
            "path": self.path,
            "resolved": self.resolved,
            "version": self.version,
            "implementation": self.implementation,
            "cache_tag": self.cache_tag,
            "soabi": self.soabi,
            "abi_tag": self.abi_tag,
            "platform": self.platform,
            "stdlib": self.stdlib,
            "purelib": self.purelib,
            "markers": self.markers,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Interpreter:
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k != "markers"}
        markers = data.get("markers") or {}
        return cls(**fields, markers=dict(markers))  # type: ignore[arg-type,call-overload]


def _identity(path: str) -> str | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


def _run_query(path: str) -> dict[str, object]:
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
    if db is not None:
        db.execute(
            "INSERT OR REPLACE INTO interpreters (path, identity, facts, queried)"
            " VALUES (?, ?, ?, ?)",
            (path, ident, json.dumps(facts), time.time()),
        )
    return facts


def _pin(path: str) -> str:
    """Apply rules 2 and 3 of the module docstring to an absolute path."""
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
    cellar = re.match(
        r"^(?P<prefix>.*)/Cellar/(?P<formula>python@\d+\.\d+)/[^/]+/(?P<rest>.*)$",
        os.path.realpath(current),
    )
    if cellar:
        opt = f"{cellar['prefix']}/opt/{cellar['formula']}/{cellar['rest']}"
        if os.path.exists(opt) and os.path.samefile(opt, current):
            return opt
    return current


def _abi_tag(facts: dict[str, object]) -> str:
    major, minor = str(facts["version"]).split(".")[:2]
    suffix = ("t" if facts.get("gil_disabled") else "") + ("d" if facts.get("debug") else "")
    return f"cp{major}{minor}{suffix}"


def _from_facts(requested: str, path: str, facts: dict[str, object]) -> Interpreter:
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


def _describe(requested: str, path: str, db: sqlite3.Connection | None) -> Interpreter:
    facts = query_interpreter(path, db)
    real = str(facts["executable"])
    if os.path.isabs(real) and os.path.realpath(real) != os.path.realpath(path):
        # ``path`` is a wrapper (a pyenv shim, a shell script), not the interpreter.
        path = real
        facts = query_interpreter(path, db)
    if facts.get("is_venv"):
        base = str(facts["base_executable"])
        if not os.path.isabs(base) or not os.path.exists(base):
            raise InterpreterError(f"{path} is a virtual environment whose base {base} is gone")
        path = base
        facts = query_interpreter(path, db)
    if facts["implementation"] != "cpython":
        raise InterpreterError(f"{path} is {facts['implementation']}; envstore supports CPython")
    major, minor = (int(x) for x in str(facts["version"]).split(".")[:2])
    if (major, minor) < (3, 9):
        raise InterpreterError(f"{path} is Python {facts['version']}; envstore needs >= 3.9")
    pinned = _pin(path)
    if pinned != path:
        facts = query_interpreter(pinned, db)
    return _from_facts(requested, pinned, facts)


def candidates() -> list[str]:
    """Interpreter executables on this machine, in preference order, without running them."""
    found: list[str] = []
    names = re.compile(r"^python3(\.\d+)?$")
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if pyenv.is_dir():
        versions = sorted(
            (p for p in pyenv.iterdir() if re.match(r"^\d+\.\d+\.\d+$", p.name)),
            key=lambda p: [int(x) for x in p.name.split(".")],
            reverse=True,
        )
        dirs += [str(v / "bin") for v in versions]
    dirs += ["/usr/local/bin", "/usr/bin", "/opt/homebrew/bin"]
    dirs += sorted(str(p) for p in Path("/opt/homebrew/opt").glob("python@3.*/bin"))
    dirs += sorted(str(p) for p in Path.home().glob(".local/share/uv/python/cpython-3.*/bin"))
    seen: set[str] = set()
    for d in dirs:
        if d in seen or os.path.basename(d.rstrip("/")) == "shims":  # pyenv shims are scripts
            continue
        seen.add(d)
        try:
            entries = sorted(os.listdir(d), key=lambda n: (len(n), n), reverse=True)
        except OSError:
            continue
        for name in entries:
            full = os.path.join(d, name)
            if names.match(name) and os.access(full, os.X_OK) and full not in found:
                found.append(full)
    return found


def _default_path() -> str:
    base = getattr(sys, "_base_executable", None) or sys.executable
    return base if os.path.exists(base) else sys.executable


def find_interpreter(request: str | None, db: sqlite3.Connection | None = None) -> Interpreter:
    """Turn ``-p`` (a version, a command name, a path, or None) into an Interpreter."""
    if not request:
        return _describe("", _default_path(), db)
    if "/" in request:
        path = os.path.abspath(os.path.expanduser(request))
        if not os.path.exists(path):
            raise InterpreterError(f"no interpreter at {path}")
        return _describe(request, path, db)
    version = _VERSION_REQUEST.match(request)
    if version:
        wanted = version.group(1).split(".")
        for cand in candidates():
            try:
                facts = query_interpreter(cand, db)
            except InterpreterError:
                continue
            if str(facts["version"]).split(".")[: len(wanted)] == wanted:
                return _describe(request, cand, db)
        raise InterpreterError(
            f"no Python {version.group(1)} found (searched PATH, pyenv and standard"
            " locations; see 'envstore python list')"
        )
    import shutil

    found = shutil.which(request)
    if found is None:
        raise InterpreterError(f"no interpreter named {request!r} on PATH")
    return _describe(request, os.path.abspath(found), db)
