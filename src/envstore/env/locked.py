"""Creating or syncing an env from a lock: which interpreter, which of its packages."""

from __future__ import annotations

from envstore.errors import InterpreterError, LockError
from envstore.model.interpreter import Interpreter
from envstore.model.lock import Lock, LockedDirectory
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
    return replace(lock, packages=chosen, directories=trees)


def lock_editables(lock: Lock) -> list[str]:
    """The source trees a lock chose (``selected``), as editable projects to install:
    PEP 751 ``directory`` packages marked ``editable`` (a project lock's project)."""
    plain = [d for d in lock.directories if not d.editable]
    if plain:
        raise LockError(
            f"{lock.source}: source trees to install non-editable are not supported yet: "
            + ", ".join(f"{d.name} ({d.path})" for d in plain)
            + "; lock them as wheels, or mark them editable"
        )
    return [d.path for d in lock.directories]


def check_lock_python(lock: Lock, interp: Interpreter) -> None:
    """A lock envstore made names its interpreter; a pylock.toml from elsewhere is
    checked against ``interp`` when its packages are chosen (``select_locked``)."""
    want = lock.python
    if want is None:
        return
    if interp.implementation != want.implementation or interp.minor != want.minor:
        raise InterpreterError(
            f"the lock is for {want.implementation} {want.minor} ({want.abi_tag},"
            f" {want.platform}), but {interp.path} is {interp.implementation} {interp.version};"
            f" pass -p {want.minor}"
        )


def interpreter_for_lock(lock: Lock, python: str | None, store: Store) -> Interpreter:
    """``python`` if given, else the default Python if it is the lock's minor version,
    else a search for that version (the lock's minor: envstore's own record of it, or
    a ``requires-python`` of one minor, ``==3.12.*``)."""
    interp = find_interpreter(python, store.facts_cache())
    minor = _lock_minor(lock)
    if python is None and minor is not None and interp.minor != minor:
        interp = find_interpreter(minor, store.facts_cache())
    check_lock_python(lock, interp)
    return interp


def _lock_minor(lock: Lock) -> str | None:
    import re

    if lock.python is not None:  # checked when read: digits only (a search runs it)
        return lock.python.minor if re.fullmatch(r"\d+\.\d+", lock.python.minor) else None
    spec = str(lock.pylock.requires_python or "") if lock.pylock is not None else ""
    one = re.fullmatch(r"==\s*(3\.\d+)(?:\.\*)?", spec)
    return one.group(1) if one else None
