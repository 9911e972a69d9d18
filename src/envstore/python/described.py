"""``describe``: the interpreter an env records for an executable (the rules of
``envstore.python.interpreters``), remembered per process while its files are the same.
"""

from __future__ import annotations

import os
import re

from envstore.errors import InterpreterError
from envstore.model.interpreter import Interpreter
from envstore.python.links import identity, link_chain, pin_path, venv_cfg
from envstore.python.query import (
    FactsCache,
    abi_tag,
    from_facts,
    is_wrapper,
    query_interpreter,
    venv_base,
)

__all__ = ["describe", "too_old"]


def too_old(version: str) -> bool:
    """Whether an interpreter of ``version`` (``3.8.18``) is older than envstore supports."""
    return tuple(int(x) for x in version.split(".")[:2]) < (3, 9)


# Per process: what describe answered, by request, path and the facts cache's scope,
# with what the answer was read from: the interpreter's identity (links.identity: its
# file's inode, size and mtime, its real path, the pyvenv.cfg beside it) and each
# symlink hop to it. A warm process (tox, an IDE) describes the same interpreter on
# every sync, ~0.15 ms each (two facts lookups in the database, six realpaths); the
# check that the answer still holds, ~0.03 ms. Kept only for an answer those files
# decide alone (``_memo_inputs``); a changed one is described again.
_DESCRIBED: dict[tuple[str, str, object], tuple[tuple[str, ...], Interpreter]] = {}


def _memo_inputs(path: str) -> tuple[str, ...] | None:
    """What an answer of ``describe`` for ``path`` was read from: its identity and its
    link chain; None when nothing runs there, or a hop's directory (other than the
    path's own, which identity covers) holds a pyvenv.cfg."""
    ident = identity(path)
    if ident is None:
        return None
    chain = link_chain(path)
    here = os.path.dirname(path)
    if any(venv_cfg(n) for n in chain[1:] if os.path.dirname(n) != here):
        return None
    return (ident, *chain)


def _memoizable(path: str, interp: Interpreter, chain: tuple[str, ...]) -> bool:
    """Whether the answer ``interp`` for the (non-wrapper, non-venv) ``path`` follows
    from its identity and link chain alone: the recorded path is a hop of the chain
    (rule 3's same-directory links), not a Homebrew rewrite (rule 4) nor the
    minor-versioned sibling a plain ``python3`` may have (rule 3: a name not in the
    chain, which may come or go)."""
    if interp.path not in chain or any("/Cellar/" in n for n in (*chain, interp.resolved)):
        return False
    return re.match(r"^python3?$", os.path.basename(interp.path)) is None


def describe(requested: str, path: str, cache: FactsCache | None = None) -> Interpreter:
    """The interpreter an env records for the executable ``path`` (module docstring rules),
    remembered per process while the files it was read from are the same (``_DESCRIBED``)."""
    scope = cache.scope() if cache is not None else None
    if scope is None:
        return _describe(requested, path, cache)
    key = (requested, path, scope)
    known = _DESCRIBED.get(key)
    inputs = _memo_inputs(path)
    if known is not None and inputs is not None and known[0] == inputs:
        return known[1].replace()  # a copy: the caller's to keep
    interp = _describe(requested, path, cache, inputs[0] if inputs else None)
    if inputs is not None and _memoizable(path, interp, inputs[1:]):
        if len(_DESCRIBED) >= 64:  # a process describing every interpreter: bounded
            _DESCRIBED.clear()
        _DESCRIBED[key] = (inputs, interp.replace())
    return interp


def _describe(
    requested: str, path: str, cache: FactsCache | None = None, ident: str | None = None
) -> Interpreter:
    facts = query_interpreter(path, cache, ident)
    if is_wrapper(path, facts):
        # ``path`` is a wrapper (a pyenv shim, a shell script), not the interpreter.
        path = str(facts["executable"])
        facts = query_interpreter(path, cache)
    for _ in range(8):
        outside = venv_cfg(path) is None and not any(venv_cfg(n) for n in link_chain(path)[1:])
        if outside:
            break
        path = venv_base(path, facts)
        facts = query_interpreter(path, cache)
    else:
        raise InterpreterError(f"{path}: virtual environments nested too deeply")
    if facts["implementation"] != "cpython":
        raise InterpreterError(f"{path} is {facts['implementation']}; envstore supports CPython")
    if too_old(str(facts["version"])):
        raise InterpreterError(f"{path} is Python {facts['version']}; envstore needs >= 3.9")
    pinned_path = pin_path(path, abi_tag(facts))
    if pinned_path != path:
        facts = query_interpreter(pinned_path, cache)
    return from_facts(requested, pinned_path, facts)
