"""Migrations of a store's layout (store-layout.md, "Layout 3"), run by ``Store.ensure``
under the exclusive gc lock, so no create registers a root meanwhile. Imported only
when a store needs one (never on the warm create path); works on paths.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from envstore.store.fs import temp_tag

STATE_DIRS = ("state", "state/refs", "state/gone", "state/damaged")


def upgrade(root: Path, version: int, shared: bool, check_layout: Callable[[], None]) -> bool:
    """Layout 1 or 2 to ``version`` (3), or a store of ``version`` that this host finds
    ``shared`` but whose ``store.json`` does not say so yet. Returns whether it says so
    now. Call with the exclusive gc lock held.

    2: ``state/``; 3: ``"shared": true`` in ``store.json`` once any host uses it in
    shared mode (then every host does, ``Store.shared``). Becoming shared, its roots
    without a host are sorted out (``placeholders.migrate_roots``: until now hosts that saw
    it local made roots of their local envs without one) and its own database is set
    aside (``retire_store_db``)."""
    marker = root / "store.json"
    data = json.loads(marker.read_text())
    recorded = data.get("shared") is True
    if data.get("layout") == version and (recorded or not shared):
        return recorded  # another process did meanwhile
    for d in STATE_DIRS:
        (root / d).mkdir(exist_ok=True)
    check_layout()
    claims = []
    if shared and not recorded:
        from envstore.store.placeholders import migrate_roots

        claims = migrate_roots(root, store_db_refs(root))
        retire_store_db(root)
    write_marker(root, version, recorded or shared)
    if claims:  # this host's database (named by the new store.json) records them untrusted
        from envstore.store.hostdb import record_claims

        record_claims(root, claims)
    return recorded or shared


def write_marker(root: Path, version: int, shared: bool) -> None:
    """``store.json``, replaced whole by a rename: ``{"layout": N}``, and ``"shared":
    true`` for a store several hosts use."""
    tmp = root / f".store.json.{temp_tag()}"
    tmp.write_text(json.dumps({"layout": version, **({"shared": True} if shared else {})}) + "\n")
    os.replace(tmp, root / "store.json")


def store_db_refs(root: Path) -> dict[str, list[str]]:
    """What the store's own database (local mode's, about to be set aside) says each
    env uses; nothing if it is missing or unreadable (read-only, once)."""
    from envstore.errors import StoreError
    from envstore.store import db, index

    path = root / "envstore.db"
    if path.is_symlink() or not path.is_file():
        return {}
    conn = db.open_readonly(path)
    if conn is None:
        return {}
    try:
        return index.env_refs(conn)
    except (StoreError, sqlite3.Error):
        return {}
    finally:
        conn.close()


def retire_store_db(root: Path) -> None:
    """A shared store keeps no database of its own (each host has its own): a layout 1
    ``envstore.db`` is renamed ``envstore.db.layout1`` (its ``-wal``, ``-shm`` too),
    so an older envstore's gc, verify or remove, which never check the layout, stop
    at "database missing" instead of collecting another host's live entries."""
    for suffix in ("", "-wal", "-shm"):
        old = root / f"envstore.db{suffix}"
        if old.is_file() and not old.is_symlink():
            os.replace(old, root / f"envstore.db.layout1{suffix}")
