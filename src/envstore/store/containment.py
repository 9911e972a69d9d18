"""Whether a path lies in a directory with no symlink on the way to it
(``Store.owns``): the store's containment rule, by real path, never lexical.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def owned(root: Path, path: Path) -> bool:
    """Whether the real path of ``path``'s parent is ``root``'s real path plus the same
    relative path (``root``: absolute and normalized, as ``Store`` makes it).

    For a normalized absolute path, one lstat per component below the root instead of
    two realpaths (~13 lstats and their Python): the real path of ``root/rel`` is the
    root's real path plus ``rel`` exactly when no component of ``rel`` is a symlink (a
    missing or unreadable one is taken as realpath takes it: not a link). A symlink
    looping to itself, which realpath leaves as it is, is refused."""
    parent, top = str(path.parent), str(root)
    if not (os.path.isabs(parent) and os.path.normpath(parent) == parent):
        rel = os.path.relpath(path.parent, root)
        if rel == ".." or rel.startswith("../"):
            return False
        real_root = os.path.realpath(root)
        return os.path.realpath(path.parent) == os.path.normpath(os.path.join(real_root, rel))
    if parent == top:
        return True
    here = top.rstrip("/")
    if not parent.startswith(f"{here}/"):
        return False
    for part in parent[len(here) + 1 :].split("/"):
        here = f"{here}/{part}"
        try:
            if stat.S_ISLNK(os.lstat(here).st_mode):
                return False
        except OSError:
            pass
    return True
