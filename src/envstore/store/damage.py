"""What ``create`` refuses to link: what ``verify`` found damaged, until it is repaired.

Outside shared mode that is the database's flags. In shared mode it is the marks every
host sees (``state/damaged/``), and this host's own flags unless the mark is gone and
this host's seal shows the object is no longer the one found damaged: an entry
directory other than the one it sealed (a repair on some host re-published it), a view
that matches its seal again. A flag with no seal of this host behind it (copied from a
mark when its database was built) goes with its mark. So a repair on one host frees
the entry for every host, while a mark deleted by someone who can write only the
store's files does not free what this host's database found damaged.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path

from envstore.store import index

__all__ = ["dir_identity", "refused_entries", "republished"]


def refused_entries(
    root: Path, conn: sqlite3.Connection, shared: bool, keys: Iterable[str]
) -> list[str]:
    """Which of ``keys`` (entries of the store at ``root``; ``conn`` its database, for
    this host) are damaged: one SELECT, and one listdir in shared mode."""
    wanted = set(keys)
    bad = index.damaged_entries(conn) & wanted
    if shared:
        import json

        from envstore.store.hostroots import marks

        shown = set(marks(root, "damaged")) & wanted
        for key in bad - shown:  # this host's flag, the mark gone: whose seal says it holds?
            seal = index.seal_of(conn, key)
            if seal is None or republished(root / "entries" / key, json.loads(seal)):
                bad.discard(key)
        bad |= shown
    return sorted(bad)


def dir_identity(root: Path) -> int:
    """Which directory the entry at ``root`` is: its inode number. A publish or a repair
    renames a new directory into place; an edit of its files leaves it the same. Not
    its device: a network filesystem's device number changes from one mount to the next."""
    return os.lstat(root).st_ino


def republished(root: Path, seal: Mapping[str, object]) -> bool:
    """Whether the entry at ``root`` is another directory than the one ``seal`` was taken
    of (a repair or a new copy published since, by any host); False for a seal from
    before seals named their directory."""
    if "dir" not in seal:
        return False
    try:
        return dir_identity(root) != seal["dir"]
    except OSError:
        return False  # gone or unreadable: what the comparison then says
