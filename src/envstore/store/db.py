"""The store's SQLite database: connecting, the schema and its migrations, and
the seam where sqlite3's errors become StoreError.

The database is an index, not the only truth: entries carry ``entry.json`` and
environments are registered as root links, so the database can be rebuilt
from disk. Connections use WAL, a busy timeout, and ``BEGIN IMMEDIATE`` for
every write, so concurrent writers queue instead of failing. Every statement
outside the schema and its migrations lives in ``envstore.store.index``.

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

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import ParamSpec, TypeVar

    P = ParamSpec("P")
    R = TypeVar("R")

__all__ = [
    "SCHEMA_VERSION",
    "close_tracked",
    "connect",
    "database_error",
    "database_files",
    "ensure_gone_since",
    "open_readonly",
    "sql",
    "track_connections",
    "write",
]

# Bumped for a change an older envstore would mishandle; a column it can ignore
# (envs.gone_since) is added without a bump (see ensure_gone_since).
# 2: seals as columns (entries.seal, views.seal) and views.damaged; see _seal. An
#    older envstore would publish entries without seals and repair them unsealed.
# 3: seals in a table of their own (an entry's is KBs of JSON, and every create
#    scanned entries for damage), with a partial index for the damaged.
# 4: one table per cache (resolutions, wheel_hashes, bundled_pips) instead of three
#    kinds of row told apart by key prefix in ``resolutions``. The bump runs the
#    migration once, and stops a schema-3 envstore, whose gc knows nothing of the new
#    tables, from filling ``resolutions`` with rows schema 4 never reads.
SCHEMA_VERSION = 4
BUSY_TIMEOUT_MS = 60_000

# The connections opened since track_connections(): the console script closes them
# itself before it leaves without the interpreter's finalization (envstore.cli.main).
# Off in library use, where a list would keep every connection alive.
_tracked: list[sqlite3.Connection] | None = None


def track_connections() -> None:
    """Keep every connection opened from now on, for :func:`close_tracked`."""
    global _tracked
    if _tracked is None:
        _tracked = []


def close_tracked() -> None:
    """Close the connections kept since :func:`track_connections` (closing one twice is
    harmless): what the interpreter's finalization would do, SQLite's checkpoint of the
    WAL into the database and its removal included."""
    while _tracked:
        _tracked.pop().close()


def _create_schema(conn: sqlite3.Connection) -> None:
    import sqlite_utils

    # No sqlite-utils plugin runs on the store's database (any installed package can
    # register one; loading them also scanned every distribution: ~20 ms).
    db = sqlite_utils.Database(conn, execute_plugins=False)
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
    # Three caches, each rebuilt on demand (store-layout.md, "Database"): a resolution's
    # chosen entries under its request's hash; a wheel file's xxh3 under its path (valid
    # while the file keeps ``identity``); the entry made from an interpreter's bundled pip.
    db.table("resolutions").create(
        {"key": str, "objects": str, "created": float}, pk="key", if_not_exists=True
    )
    db.table("wheel_hashes").create(
        {"path": str, "identity": str, "hash": str, "created": float},
        pk="path",
        if_not_exists=True,
    )
    db.table("bundled_pips").create(
        {"wheel": str, "cache_tag": str, "identity": str, "entry": str, "created": float},
        pk=("wheel", "cache_tag"),
        if_not_exists=True,
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
    if _tracked is not None:
        _tracked.append(conn)
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
                if 1 <= version <= 3:
                    _migrate_3_to_4(conn)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise database_error(exc, path) from exc
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


def _migrate_3_to_4(conn: sqlite3.Connection) -> None:
    """The wheel-hash and bundled-pip rows out of ``resolutions`` (their tables are made
    by _create_schema). They are dropped, not moved: caches, rebuilt on demand (a wheel
    hashed once more), and their keys (``wheel-hash:<path>:<identity>``) would have to
    be parsed apart. The resolutions themselves are kept: their keys and rows are as
    before."""
    conn.execute(
        "DELETE FROM resolutions WHERE key GLOB 'wheel-hash:*' OR key GLOB 'bundled-pip:*'"
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
        raise database_error(exc, _path_of(conn)) from exc
    try:
        yield conn
    except BaseException:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.DatabaseError:  # a damaged file: the error being raised says so
            pass
        raise
    else:
        try:
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise database_error(exc, _path_of(conn)) from exc


def database_error(exc: sqlite3.DatabaseError, path: str | Path | None) -> StoreError:
    """The StoreError for ``exc``, raised by the database at ``path``: a damaged file is
    named with the way out (rebuild-db); a locked, full or read-only one with its cause."""
    where = f"the store database {path}" if path else "the store database"
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and not text.startswith("no such "):
        return StoreError(f"cannot use {where}: {_why(exc)}")
    # Malformed pages, not a database, a table or column missing: nothing but a rebuild
    # makes it usable again.
    return StoreError(
        f"{where} is damaged ({text}); run 'envstore rebuild-db' to rebuild it from the store"
    )


def sql(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` (a function of ``envstore.store.index``, whose first argument is the
    connection) with sqlite3's errors raised as StoreError: the library's callers see
    EnvstoreError subclasses only. A ProgrammingError (a closed connection, wrong
    bindings) is a bug in envstore and stays what it is."""
    import functools

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except sqlite3.ProgrammingError:
            raise
        except sqlite3.DatabaseError as exc:
            raise database_error(exc, _path_of(args[0] if args else None)) from exc

    return run


def _path_of(conn: object) -> str | None:
    """The file ``conn`` (a connection, or anything) is connected to, if it tells."""
    try:
        return str(conn.execute("PRAGMA database_list").fetchone()[2])  # type: ignore[attr-defined]
    except (AttributeError, TypeError, IndexError, sqlite3.Error):
        return None


def open_readonly(path: Path) -> sqlite3.Connection | None:
    """A read-only connection to the database at ``path`` (one being replaced, maybe
    damaged: rebuild-db salvages what it can from it); None if it cannot be opened."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    if _tracked is not None:
        _tracked.append(conn)
    return conn


def database_files(path: Path) -> list[Path]:
    """The database and its WAL side files."""
    return [path, Path(os.fspath(path) + "-wal"), Path(os.fspath(path) + "-shm")]


@sql
def ensure_gone_since(conn: sqlite3.Connection) -> None:
    """Add ``envs.gone_since`` to a database made before it existed. Only gc reads or
    writes it; an older envstore ignores it (its inserts name their columns)."""
    if not _has_gone_since(conn):
        with write(conn):
            if not _has_gone_since(conn):  # another gc may have added it meanwhile
                conn.execute("ALTER TABLE envs ADD COLUMN gone_since REAL")


def _has_gone_since(conn: sqlite3.Connection) -> bool:
    return any(row[1] == "gone_since" for row in conn.execute("PRAGMA table_info(envs)"))
