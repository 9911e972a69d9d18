"""Creating or syncing an env from a lock: which interpreter, which of its packages."""

from __future__ import annotations

from envstore.errors import InterpreterError, LockError
from envstore.model.interpreter import Interpreter
from envstore.model.lock import Lock, LockedDirectory, LockedPackage
from envstore.python.interpreters import find_interpreter
from envstore.store.layout import Store

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["check_lock_python", "interpreter_for_lock", "lock_editables", "selected"]


def selected(
    lock: Lock,
    interp: Interpreter,
    extras: Sequence[str] = (),
    all_extras: bool = False,
    groups: Sequence[str] = (),
) -> Lock:
    """``lock`` with the packages chosen for ``interp`` (a pylock.toml read from a file):
    with the ``extras`` it declares (every one with ``all_extras``) and the dependency
    ``groups`` named, else its ``default-groups``; its source trees chosen in
    ``directories``."""
    from dataclasses import replace

    from envstore.resolve.exact import select_locked

    if lock.pylock is None:
        if extras or all_extras or groups:
            raise LockError("extras and dependency groups are chosen from a pylock.toml file")
        return lock
    if all_extras:
        extras = [*(lock.pylock.extras or ()), *extras]
    trees: list[LockedDirectory] = []
    chosen = select_locked(
        lock, interp, extras=extras, groups=list(groups) or None, directories=trees
    )
    # A source tree not marked editable is built into a wheel by pip, as it is now.
    requested = lock.requested()
    chosen += [
        LockedPackage(
            d.name,
            "",
            "",
            "",
            requested is None or d.name in requested,
            path=d.path,
            kind="directory",
        )
        for d in trees
        if not d.editable
    ]
    return replace(lock, packages=chosen, directories=[d for d in trees if d.editable])


def lock_editables(lock: Lock) -> list[str]:
    """The source trees a lock chose (``selected``) to install editable: PEP 751
    ``directory`` packages marked ``editable`` (a project lock's project)."""
    return [d.path for d in lock.directories if d.editable]


def check_lock_python(lock: Lock, interp: Interpreter) -> None:
    """A lock envstore made names its interpreters; a pylock.toml from elsewhere is
    checked against ``interp`` when its packages are chosen (``select_locked``)."""
    wants = lock.pythons()
    if not wants or any(
        interp.implementation == w.implementation and interp.minor == w.minor for w in wants
    ):
        return
    made_for = ", ".join(f"{w.implementation} {w.minor} ({w.abi_tag}, {w.platform})" for w in wants)
    raise InterpreterError(
        f"the lock is for {made_for}, but {interp.path} is {interp.implementation}"
        f" {interp.version}; pass -p {' or -p '.join(w.minor for w in wants)}"
    )


def interpreter_for_lock(lock: Lock, python: str | None, store: Store) -> Interpreter:
    """``python`` if given, else the default Python if it is one the lock was made for,
    else a search for such a version (the lock's minors: envstore's own record of them,
    or a ``requires-python`` of one minor, ``==3.12.*``), the first found."""
    interp = find_interpreter(python, store.facts_cache())
    minors = _lock_minors(lock)
    if python is None and minors and interp.minor not in minors:
        for i, minor in enumerate(minors):
            try:
                interp = find_interpreter(minor, store.facts_cache())
                break
            except InterpreterError:
                if i == len(minors) - 1:
                    raise
    check_lock_python(lock, interp)
    return interp


def _lock_minors(lock: Lock) -> list[str]:
    import re

    if lock.pythons():  # checked when read: digits only (a search runs it)
        return [py.minor for py in lock.pythons() if re.fullmatch(r"\d+\.\d+", py.minor)]
    spec = str(lock.pylock.requires_python or "") if lock.pylock is not None else ""
    one = re.fullmatch(r"==\s*(3\.\d+)(?:\.\*)?", spec)
    return [one.group(1)] if one else []
