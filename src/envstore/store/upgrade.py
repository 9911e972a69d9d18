"""Migrations of a store's layout (store-layout.md, "Layout 2"), run by ``Store.ensure``
under the exclusive gc lock, so no create registers a root meanwhile. Imported only
when a store needs one (never on the warm create path); works on paths.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from envstore.store.fs import temp_tag

STATE_DIRS = ("state", "state/refs", "state/gone", "state/damaged")


def from_1(root: Path, shared: bool, check_layout: Callable[[], None]) -> None:
    """Layout 1 to 2: ``state/``, and in a shared store host-keyed roots for envs on
    this host's disk (``hostroots.migrate_roots``) and no database of its own
    (``retire_store_db``). Call with the exclusive gc lock held."""
    marker = root / "store.json"
    if json.loads(marker.read_text()).get("layout") != 1:
        return  # another process migrated it meanwhile
    for d in STATE_DIRS:
        (root / d).mkdir(exist_ok=True)
    check_layout()
    if shared:
        from envstore.store.hostroots import migrate_roots

        migrate_roots(root)
        retire_store_db(root)
    tmp = root / f".store.json.{temp_tag()}"
    tmp.write_text(json.dumps({"layout": 2}) + "\n")
    os.replace(tmp, marker)


def retire_store_db(root: Path) -> None:
    """A shared store keeps no database of its own (each host has its own): a layout 1
    ``envstore.db`` is renamed ``envstore.db.layout1`` (its ``-wal``, ``-shm`` too),
    so an older envstore's gc, verify or remove, which never check the layout, stop
    at "database missing" instead of collecting another host's live entries."""
    for suffix in ("", "-wal", "-shm"):
        old = root / f"envstore.db{suffix}"
        if old.is_file() and not old.is_symlink():
            os.replace(old, root / f"envstore.db.layout1{suffix}")
