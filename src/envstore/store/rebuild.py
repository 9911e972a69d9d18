"""``rebuild_db``: a new database from what is on disk (entries, views, gc roots),
built beside the old one and swapped in.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from envstore.errors import EnvstoreError
from envstore.store import db as _db
from envstore.store import index
from envstore.store.hostdb import fill
from envstore.store.layout import Store


def rebuild_db(store: Store) -> dict[str, int]:
    """Recreate the database from entries, views and roots on disk."""
    if not store.exists():
        raise EnvstoreError(f"{store.root} is not an envstore store")
    store.ensure()  # its version, its directories, and whose it is: before anything is written
    store.close()
    # Built beside the old one and renamed over it: a failure (a full disk) leaves the
    # old database as it was, never an empty one.
    # (A shared store's database is this host's, on local disk: beside it, too.)
    store.db_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    new = store.db_path.parent / f".envstore.db.rebuild-{os.getpid()}"
    with store.gc_lock(shared=False):
        for f in _db.database_files(new):
            f.unlink(missing_ok=True)
        try:
            counts = _fill_db(store, new)
            store.close()  # the last connection: its WAL is checkpointed into the file
            for f in _db.database_files(store.db_path)[1:]:
                f.unlink(missing_ok=True)
            os.replace(new, store.db_path)
        finally:
            store.close()
            for f in _db.database_files(new):
                f.unlink(missing_ok=True)
    return counts


def _fill_db(store: Store, path: Path) -> dict[str, int]:
    old = _old_rows(store.db_path)
    conn = _db.connect(path, create=True)
    store.use_connection(conn)
    # The digests the old database had (else none: a manifest's sources are not trusted).
    counts = fill(conn, store.root, old["digests"])
    with _db.write(conn):  # what only the old database knew: seals and damage
        index.put_seals(conn, old["seals"], replace=False)
        index.mark_damaged(conn, old["damaged"], old["damaged_views"])
    return counts


def _old_rows(path: Path) -> dict[str, Any]:
    """Seals, damage flags and manifest digests from the database being replaced, as far
    as it can be read (rebuild-db is also the way out of a damaged one)."""
    empty: dict[str, Any] = {"seals": [], "damaged": [], "damaged_views": [], "digests": {}}
    if not path.is_file() or path.is_symlink():
        return empty
    conn = _db.open_readonly(path)
    if conn is None:
        return empty
    try:
        return index.salvage(conn)
    finally:
        conn.close()
