"""``rebuild_db``: a new database from what is on disk (entries, views, gc roots),
built beside the old one and swapped in.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from envstore.errors import BadManifestError, EnvstoreError
from envstore.model.keys import EntryKey
from envstore.model.manifest import Manifest
from envstore.store import db as _db
from envstore.store import index
from envstore.store.layout import Store
from envstore.store.registry import registered_envs
from envstore.store.verify import disk_entries, entry_json


def rebuild_db(store: Store) -> dict[str, int]:
    """Recreate the database from entries, views and roots on disk."""
    if not store.exists():
        raise EnvstoreError(f"{store.root} is not an envstore store")
    store.ensure()  # its version, its directories, and whose it is: before anything is written
    store.close()
    # Built beside the old one and renamed over it: a failure (a full disk) leaves the
    # old database as it was, never an empty one.
    new = store.root / f".envstore.db.rebuild-{os.getpid()}"
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
    from envstore.store.registry import register_env

    old = _old_rows(store.db_path)
    conn = _db.connect(path, create=True)
    store.use_connection(conn)  # register_env below writes through the store
    counts = {"entries": 0, "views": 0, "envs": 0, "unreadable": 0}
    with _db.write(conn):
        for key in disk_entries(store):
            meta = entry_json(store, key)
            if meta is None:
                continue
            index.add_entry(conn, key, meta)
            counts["entries"] += 1
        for view in sorted(store.views_dir.glob("*/view.json")):
            try:
                meta = json.loads(view.read_text())
                entries = [str(EntryKey.parse(k)) for k in meta["entries"]]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            added = view.stat().st_mtime
            index.add_view(conn, view.parent.name, str(meta["cache_tag"]), entries, added)
            counts["views"] += 1
    for env in registered_envs(store):
        try:
            manifest = Manifest.load(Path(env))
        except BadManifestError:
            counts["unreadable"] += 1
            continue
        # The digest the old database had (else none: its sources are not trusted).
        register_env(store, manifest, Path(env), digest=old["digests"].get(env, ""))
        counts["envs"] += 1
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
