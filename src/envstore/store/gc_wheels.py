"""What gc collects beside entries and views: the wheels kept in ``wheels/`` and the
editable wheels cached in ``editables/`` (``gc.plan_gc`` calls these with what it
found live).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from envstore.errors import StoreError
from envstore.store import index
from envstore.store.layout import Store, read_entry_record

__all__ = ["Item", "unneeded_wheels", "unused_editables"]


@dataclass
class Item:
    kind: str  # "entry", "view", "wheel", "editable", "temp", "stray"
    name: str
    path: Path
    size: int


def unneeded_wheels(
    store: Store,
    entries: dict[str, tuple[Path, float]],
    doomed: set[str],
    grace: float,
    now: float,
    size: Callable[[Path], int],
) -> list[Item]:
    """Wheels in ``wheels/`` that no entry left after this gc was made from (they
    are kept to repair, lock or rebuild an entry), and older than the grace period."""
    if not store.wheels_dir.is_dir():
        return []
    wheel_of = index.entry_wheels(store.db(create=False))
    needed: set[str] = set()
    for key, (path, _) in entries.items():
        if key in doomed:
            continue
        name = wheel_of.get(key)
        if not name:
            try:
                name = read_entry_record(path).wheel
            except StoreError:
                return []  # an entry whose wheel is unknown might need any of them
        needed.add(name)
    out = []
    for name in sorted(os.listdir(store.wheels_dir)):
        path = store.wheels_dir / name
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if name in needed or not stat.S_ISREG(st.st_mode) or not name.endswith(".whl"):
            continue
        if now - st.st_mtime >= grace:
            out.append(Item("wheel", name, path, size(path)))
    return out


def unused_editables(
    store: Store, live: set[str], grace: float, now: float, size: Callable[[Path], int]
) -> list[Item]:
    """Project directories in ``editables/`` that no live or recently gone env lists
    as an editable, and whose wheels are all older than the grace period (a create
    registers its env only after building or finding the wheel; finding one makes
    it young again). Anything there that is not a directory is a stray."""
    base = store.root / "editables"
    if base.is_symlink() or not base.is_dir():
        return []
    out = []
    for name in sorted(os.listdir(base)):
        path = base / name
        if path.is_symlink() or not path.is_dir():
            out.append(Item("stray", f"editables/{name}", path, 0))
            continue
        if f"editable/{name}" in live:
            continue
        try:  # the project directory's own time too: publish makes it, then renames into it
            stamps = [path / n for n in os.listdir(path)]
            newest = max(os.lstat(d).st_mtime for d in [path, *stamps])
            if now - newest < grace:
                continue
            wheels = sorted(
                w
                for d in stamps
                if not d.is_symlink() and d.is_dir()
                for w in os.listdir(d)
                if w.endswith(".whl")
            )
        except OSError:
            continue
        label = f"{name} ({', '.join(wheels)})" if wheels else name
        out.append(Item("editable", label, path, size(path)))
    return out
