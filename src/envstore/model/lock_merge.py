"""One lock for several interpreters, from a lock made for each.

Each interpreter's lock was resolved on its own. The merged lock has one package per
name and version, holding every wheel of it the interpreters chose (one per ABI, or
the one ``py3-none-any`` file they share). A version chosen by every interpreter
keeps the marker it had (a project lock's extras and groups); one chosen by some
gets a marker selecting exactly those, as ``python_version`` ranges over the locked
minor versions (``python_version < '3.12'`` when 3.10 and 3.11 chose it of 3.10,
3.11, 3.12 and 3.13): each interpreter selects exactly one version of each of its
packages, and the lock's ``environments`` (one per interpreter) keep other Pythons
out, which the ranges alone would let in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from envstore.errors import LockError
from envstore.model.lock import Lock
from envstore.model.lock_records import LockedPackage, LockedPython

__all__ = ["merged", "python_marker"]


def merged(locks: Sequence[Lock]) -> Lock:
    """The lock of ``locks`` (each made by envstore for one interpreter, of one
    implementation and distinct minor versions) for all their interpreters; one lock is
    returned as it is. The first lock's requirements, extras, groups, source trees and
    ``tool`` are kept (each was made from the same inputs)."""
    from packaging.version import Version

    if len(locks) == 1:
        return locks[0]
    pythons: list[LockedPython] = []
    for lock in locks:
        if lock.python is None:
            raise LockError("only locks made for one interpreter each can be merged")
        pythons.append(lock.python)
    if len({py.implementation for py in pythons}) > 1:
        names = ", ".join(f"{py.implementation} {py.minor}" for py in pythons)
        raise LockError(f"a lock for several Pythons needs one implementation: not {names}")
    minors = [py.minor for py in pythons]
    twice = sorted({m for m in minors if minors.count(m) > 1})
    if twice:
        raise LockError(
            f"Python {', '.join(twice)} given twice: a lock for several Pythons holds one"
            " interpreter of each minor version"
        )
    order = sorted(range(len(locks)), key=lambda i: Version(minors[i]))
    ordered = [locks[i] for i in order]
    targets = [pythons[i] for i in order]
    # (name, version) -> the packages (one per interpreter that chose it), by index
    chosen: dict[tuple[str, str], dict[int, LockedPackage]] = {}
    for i, lock in enumerate(ordered):
        for p in lock.packages:
            chosen.setdefault((p.name, p.version), {})[i] = p
    packages: list[LockedPackage] = []
    for by_python in chosen.values():
        marker = _marker(targets, by_python)
        requested = any(p.requested for p in by_python.values())
        packages += [replace(p, marker=marker, requested=requested) for p in by_python.values()]
    first = ordered[0]
    return replace(
        first,
        python=None,
        targets=targets,
        packages=sorted(packages, key=lambda p: (p.name, Version(p.version))),
        requirements=list(first.requirements),
    )


def _marker(targets: Sequence[LockedPython], by_python: dict[int, LockedPackage]) -> str | None:
    """When a version is installed: for each marker it had (None: always), on the
    interpreters that chose it with that marker."""
    alike: dict[str | None, list[int]] = {}
    for i, p in by_python.items():
        alike.setdefault(p.marker, []).append(i)
    parts = []
    for own, which in alike.items():
        where = python_marker([py.minor for py in targets], which)
        if where is None and own is None:
            return None  # every interpreter, always
        both = [_grouped(m) for m in (where, own) if m is not None]
        parts.append(" and ".join(both))
    if len(parts) == 1:
        return parts[0]
    return " or ".join(f"({p})" for p in parts)


def _grouped(marker: str) -> str:
    return f"({marker})" if " or " in marker else marker


def python_marker(minors: Sequence[str], which: Sequence[int]) -> str | None:
    """The marker selecting exactly the Pythons ``which`` (indices) of ``minors``
    (ascending): a ``python_version`` range for each run of consecutive ones, or None
    for all of them."""
    runs: list[tuple[int, int]] = []
    for i in sorted(which):
        if runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    conds = []
    for lo, hi in runs:
        bounds = []
        if lo > 0:
            bounds.append(f"python_version >= '{minors[lo]}'")
        if hi < len(minors) - 1:
            bounds.append(f"python_version < '{minors[hi + 1]}'")
        if not bounds:
            return None
        conds.append(" and ".join(bounds))
    if len(conds) == 1:
        return conds[0]
    return " or ".join(f"({c})" if " and " in c else c for c in conds)
