"""Asking an interpreter about itself (one subprocess, cached by file identity)."""

from __future__ import annotations

import json
import os

from envstore.errors import InterpreterError
from envstore.model.interpreter import Interpreter
from envstore.python.links import identity, link_chain, venv_cfg

__all__ = [
    "FactsCache",
    "abi_tag",
    "from_facts",
    "interpreter_at",
    "is_wrapper",
    "query_interpreter",
    "venv_base",
]


class FactsCache:
    """Where interpreters' facts are remembered between runs, handed in by the caller
    (the store keeps one: ``envstore.store.caches.InterpreterFacts``); this package knows
    no store. This one remembers nothing: every ask starts the interpreter.

    ``identity`` is ``links.identity(path)``: facts are valid while it holds.
    """

    def get(self, path: str, identity: str) -> dict[str, object] | None:
        """The facts remembered for ``path`` when it had ``identity``; None if none."""
        return None

    def put(self, path: str, identity: str, facts: dict[str, object]) -> None:
        """Remember ``facts`` for ``path`` while it has ``identity``."""

    def known(self, path: str) -> bool:
        """Whether facts were ever remembered for ``path``, whatever its identity now."""
        return False

    def scope(self) -> object:
        """What names where this cache keeps its facts, while it is the same place (a
        database file's path, inode, size and mtime); None: nowhere. ``describe`` remembers its
        answers per process for each scope (not across them: each cache must have
        been asked, so that ``known`` answers in each)."""
        return None


NO_CACHE = FactsCache()

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


def is_wrapper(path: str, facts: dict[str, object]) -> bool:
    real = str(facts.get("executable") or "")
    return os.path.isabs(real) and os.path.realpath(real) != os.path.realpath(path)


def query_interpreter(
    path: str, cache: FactsCache | None = None, ident: str | None = None
) -> dict[str, object]:
    """The facts of the interpreter at ``path``, from ``cache`` when its identity is
    unchanged (then nothing is started). A wrapper's are never cached. ``ident``:
    ``identity(path)``, when the caller took it just now."""
    ident = ident or identity(path)
    if ident is None:
        raise InterpreterError(f"no interpreter at {path}")
    cache = cache or NO_CACHE
    cached = cache.get(path, ident)
    if cached is not None:
        return cached
    facts = _run_query(path)
    if not is_wrapper(path, facts):
        cache.put(path, ident, facts)
    return facts


def abi_tag(facts: dict[str, object]) -> str:
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
        abi_tag=abi_tag(facts),
        platform=str(facts["platform"]),
        stdlib=str(facts["stdlib"]),
        purelib=str(facts["purelib"]),
        markers=dict(facts["markers"]),  # type: ignore[call-overload]
    )


def venv_base(path: str, facts: dict[str, object]) -> str:
    """The interpreter one level below the venv whose python is ``path``.

    Follow the symlinks out of the venv first: the first path outside it is what
    the venv was made from (and keeps a path like Homebrew's ``opt``). A venv
    made with copies has no such link; then ``sys._base_executable`` (3.11+), or
    the ``home`` of its pyvenv.cfg.
    """
    chain = link_chain(path)
    inside = [i for i, node in enumerate(chain) if venv_cfg(node) is not None]
    last = inside[-1] if inside else 0
    if last + 1 < len(chain) and os.path.exists(chain[last + 1]):
        return chain[last + 1]
    base = str(facts.get("base_executable") or "")
    if os.path.isabs(base) and os.path.exists(base) and venv_cfg(base) is None:
        return base
    home = str(facts.get("venv_home") or "")
    minor = ".".join(str(facts["version"]).split(".")[:2])
    for name in (os.path.basename(path), f"python{minor}", "python3"):
        cand = os.path.join(home, name)
        if home and os.path.isfile(cand):
            return cand
    raise InterpreterError(f"{path} is a virtual environment whose base interpreter is gone")


def interpreter_at(path: str, requested: str = "", cache: FactsCache | None = None) -> Interpreter:
    """The interpreter at exactly ``path``, none of the rules applied (an env's recorded one)."""
    facts = query_interpreter(path, cache)
    if facts.get("implementation") != "cpython":
        raise InterpreterError(
            f"{path} is {facts.get('implementation')}; envstore supports CPython"
        )
    return from_facts(requested, path, facts)
