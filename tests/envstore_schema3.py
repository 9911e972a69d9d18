# The store database module of envstore at database schema 3 (commit 1043ef8,
# src/envstore/store/db.py), kept verbatim below this comment: tests build a store as
# schema 3 made it, and play an older envstore meeting a newer database.
"""The store's SQLite index: entries, views, environments, references, caches.

The database is an index, not the only truth: entries carry ``entry.json`` and
environments are registered as root links, so the database can be rebuilt
from disk. Connections use WAL, a busy timeout, and ``BEGIN IMMEDIATE`` for
every write, so concurrent writers queue instead of failing.

The hot path (``create`` from a warm store) only needs a few statements, so it
uses the stdlib ``sqlite3`` module directly; ``sqlite_utils`` (~0.15 s to
import) is loaded only to create or migrate the schema.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from envstore.errors import StoreError

__all__ = ["SCHEMA_VERSION", "connect", "ensure_gone_since", "write"]

# Bumped for a change an older envstore would mishandle; a column it can ignore
# (envs.gone_since) is added without a bump (see ensure_gone_since).
# 2: seals as columns (entries.seal, views.seal) and views.damaged; see _seal. An
#    older envstore would publish entries without seals and repair them unsealed.
# 3: seals in a table of their own (an entry's is KBs of JSON, and every create
#    scanned entries for damage), with a partial index for the damaged.
SCHEMA_VERSION = 3
BUSY_TIMEOUT_MS = 60_000


def _create_schema(conn: sqlite3.Connection) -> None:
    import sqlite_utils

    db = sqlite_utils.Database(conn)
    db.table("entries").create(
        {
            "key": str,
            "name": str,
            "version": str,
            "hash": str,
            "abi": str,
            "wheel": str,
            "size": int,
            "files": int,
            "added": float,
            "damaged": int,
        },
        pk="key",
        defaults={"damaged": 0},
        if_not_exists=True,
    )
    db.table("views").create(
        {
            "key": str,
            "cache_tag": str,
            "entries": str,
            "added": float,
            "damaged": int,
        },
        pk="key",
        defaults={"damaged": 0},
        if_not_exists=True,
    )
    db.table("envs").create(
        {
            "path": str,
            "root": str,
            "manifest_digest": str,
            "python": str,
            "created": float,
            "last_seen": float,
            "gone_since": float,  # when gc first found the manifest gone (else NULL)
        },
        pk="path",
        if_not_exists=True,
    )
    # Seals in a table of their own: an entry's is KBs of JSON, and every create scans
    # entries for damage (through the partial index below, which stays empty).
    db.table("seals").create({"object": str, "seal": str}, pk="object", if_not_exists=True)
    conn.execute("CREATE INDEX IF NOT EXISTS entries_damaged ON entries (key) WHERE damaged = 1")
    db.table("refs").create({"env": str, "object": str}, pk=("env", "object"), if_not_exists=True)
    db.table("refs").create_index(["object"], if_not_exists=True)
    db.table("interpreters").create(
        {"path": str, "identity": str, "facts": str, "queried": float},
        pk="path",
        if_not_exists=True,
    )
    db.table("resolutions").create(
        {"key": str, "objects": str, "created": float}, pk="key", if_not_exists=True
    )


def connect(path: Path, *, create: bool) -> sqlite3.Connection:
    """Open the database at ``path``; with ``create`` make it if it is missing.

    Raises StoreError when it is missing (and ``create`` is false), corrupt, or
    from a newer envstore.
    """
    exists = path.exists()
    if not exists and not create:
        raise StoreError(
            f"the store database {path} is missing; run 'envstore rebuild-db'"
            " to rebuild it from the store"
        )
    try:
        conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the store database {path}: {exc}") from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # WAL + NORMAL: a commit is atomic but not fsynced. A power loss may
        # forget the last commits; the index is rebuilt from disk, and gc takes
        # liveness from the root links too, so that can only make gc keep more.
        conn.execute("PRAGMA synchronous = NORMAL")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return conn
        if version == 0 and not create:  # emptied (a zero-length file): not a new store
            raise StoreError(
                f"the store database {path} is empty; run 'envstore rebuild-db'"
                " to rebuild it from the store"
            )
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the store database {path} has schema {version}, newer than this"
                f" envstore understands ({SCHEMA_VERSION}); upgrade envstore"
            )
        conn.execute("PRAGMA journal_mode = WAL")
        with write(conn):
            # Re-read inside the write lock: another process may have migrated.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version < SCHEMA_VERSION:
                _create_schema(conn)  # a new store; the tables that exist are kept
                if version == 1:
                    _migrate_1_to_2(conn)
                if version == 2:
                    _migrate_2_to_3(conn)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except sqlite3.OperationalError as exc:  # the file may be fine: say what is wrong
        conn.close()
        raise StoreError(f"cannot use the store database {path}: {_why(exc)}") from exc
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise StoreError(
            f"the store database {path} is unreadable ({exc}); run"
            " 'envstore rebuild-db' to rebuild it from the store"
        ) from exc
    except BaseException:
        conn.close()
        raise
    return conn


def _migrate_1_to_2(conn: sqlite3.Connection) -> None:
    """``views.damaged`` (the seals table and index come with _create_schema, as for
    schema 3). Entries and views from before have no seal: verify seals them as it
    finds them (store-layout.md, "Integrity")."""
    conn.execute("ALTER TABLE views ADD COLUMN damaged INTEGER DEFAULT 0")


def _migrate_2_to_3(conn: sqlite3.Connection) -> None:
    """Seals from their columns into the seals table (made by _create_schema); the
    columns stay, unread (dropping one rewrites the table)."""
    conn.execute(
        "INSERT OR IGNORE INTO seals (object, seal)"
        " SELECT key, seal FROM entries WHERE seal IS NOT NULL"
    )
    conn.execute(
        "INSERT OR IGNORE INTO seals (object, seal)"
        " SELECT 'view/' || key, seal FROM views WHERE seal IS NOT NULL"
    )


def _why(exc: sqlite3.Error) -> str:
    text = str(exc)
    if "disk is full" in text:
        return f"{text}: the disk is full; free some space and retry"
    if "readonly" in text or "unable to open" in text:
        return f"{text}: check that you may write it and its directory"
    return text


@contextmanager
def write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A write transaction that takes the write lock up front (``BEGIN IMMEDIATE``)."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot write the store database: {_why(exc)}") from exc
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        try:
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot commit to the store database: {_why(exc)}") from exc


def database_files(path: Path) -> list[Path]:
    """The database and its WAL side files."""
    return [path, Path(os.fspath(path) + "-wal"), Path(os.fspath(path) + "-shm")]


def ensure_gone_since(conn: sqlite3.Connection) -> None:
    """Add ``envs.gone_since`` to a database made before it existed. Only gc reads or
    writes it; an older envstore ignores it (its inserts name their columns)."""
    if not _has_gone_since(conn):
        with write(conn):
            if not _has_gone_since(conn):  # another gc may have added it meanwhile
                conn.execute("ALTER TABLE envs ADD COLUMN gone_since REAL")


def _has_gone_since(conn: sqlite3.Connection) -> bool:
    return any(row[1] == "gone_since" for row in conn.execute("PRAGMA table_info(envs)"))
