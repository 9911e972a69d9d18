"""The database's caches, one table each: what envstore learnt once and would
rather not work out again. Every row can be dropped at any time; it is rebuilt
on demand.

- ``interpreters``: an interpreter's facts by path, valid while its identity
  holds (``InterpreterFacts``, handed to ``envstore.python``).
- ``resolutions``: the entries a request resolved to, by the request's hash, and
  (``created``) when the package index was asked for them: 0 when it never was (an
  answer from the store alone, offline or from local directories). The freshness
  window (``envstore.resolve.freshness``) is measured from it.
- ``wheel_hashes``: a wheel file's xxh3 (its entry's key), by path, valid while
  the file keeps its identity (size, times, inode).
- ``bundled_pips``: the entry made from an interpreter's bundled pip wheel.

Like ``envstore.store.index``, functions take the connection first and raise
StoreError; writers outside a ``db.write`` transaction commit on their own
(the connection is in autocommit mode).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time

from envstore.python.query import FactsCache
from envstore.store.db import sql

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

__all__ = [
    "InterpreterFacts",
    "all_facts",
    "bundled_pip",
    "drop_answers_naming",
    "drop_wheel_hashes",
    "file_identity",
    "put_bundled_pip",
    "put_resolution",
    "put_wheel_hash",
    "resolution",
    "stale_wheel_hashes",
    "timed_resolution",
    "wheel_hash",
]


# -- interpreter facts --------------------------------------------------------------


@sql
def _facts(conn: sqlite3.Connection, path: str) -> tuple[str, str] | None:
    row = conn.execute("SELECT identity, facts FROM interpreters WHERE path = ?", (path,))
    found = row.fetchone()
    return None if found is None else (found[0], found[1])


@sql
def _put_facts(conn: sqlite3.Connection, path: str, identity: str, facts: str) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO interpreters (path, identity, facts, queried) VALUES (?, ?, ?, ?)",
        (path, identity, facts, time.time()),
    )


@sql
def _facts_known(conn: sqlite3.Connection, path: str) -> bool:
    return conn.execute("SELECT 1 FROM interpreters WHERE path = ?", (path,)).fetchone() is not None


@sql
def all_facts(conn: sqlite3.Connection) -> list[tuple[str, dict[str, Any]]]:
    """Every cached interpreter: (path, facts), whatever its identity is now."""
    rows = conn.execute("SELECT path, facts FROM interpreters").fetchall()
    return [(path, json.loads(facts)) for path, facts in rows]


class InterpreterFacts(FactsCache):
    """The store's cache of interpreter facts (the ``interpreters`` table)."""

    def __init__(self, conn: sqlite3.Connection, path: str | None = None) -> None:
        self.conn = conn
        self.path = path  # the database file conn is connected to, if the caller knows

    def get(self, path: str, identity: str) -> dict[str, object] | None:
        row = _facts(self.conn, path)
        if row is None or row[0] != identity:
            return None
        facts: dict[str, object] = json.loads(row[1])
        return facts

    def put(self, path: str, identity: str, facts: dict[str, object]) -> None:
        _put_facts(self.conn, path, identity, json.dumps(facts))

    def known(self, path: str) -> bool:
        return _facts_known(self.conn, path)

    def scope(self) -> object:
        if self.path is None:
            return None
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        # Its size and mtime too: a commit goes to the -wal file, so these change only
        # at a checkpoint or when the file is rewritten (restored, damaged): asked again.
        return (self.path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


# -- resolutions ----------------------------------------------------------------------


def resolution(conn: sqlite3.Connection, key: str) -> list[dict[str, Any]] | None:
    """The entries remembered for the request hashed to ``key``: ``{"key": entry key,
    "requested": bool}`` each; None if none are."""
    found = timed_resolution(conn, key)
    return None if found is None else found[0]


@sql
def timed_resolution(
    conn: sqlite3.Connection, key: str
) -> tuple[list[dict[str, Any]], float] | None:
    """:func:`resolution`, and when the index was asked for it (0: never)."""
    row = conn.execute("SELECT objects, created FROM resolutions WHERE key = ?", (key,)).fetchone()
    if row is None:
        return None
    items: list[dict[str, Any]] = json.loads(row[0])
    created = row[1] if isinstance(row[1], (int, float)) else 0.0
    return items, float(created)


@sql
def put_resolution(
    conn: sqlite3.Connection, key: str, items: list[dict[str, Any]], created: float | None = None
) -> None:
    """Remember ``items`` under ``key``; ``created``: when the index was asked for them
    (default now; 0: it was not)."""
    conn.execute(
        "INSERT OR REPLACE INTO resolutions (key, objects, created) VALUES (?, ?, ?)",
        (key, json.dumps(items), time.time() if created is None else created),
    )


# -- wheel hashes ---------------------------------------------------------------------


def file_identity(path: str) -> str | None:
    """What says a file is unchanged (size, mtime, ctime, inode); None if it is gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_ino}"


@sql
def wheel_hash(conn: sqlite3.Connection, path: str, identity: str) -> str | None:
    """The xxh3 of the wheel at ``path`` (absolute) when it had ``identity``."""
    row = conn.execute(
        "SELECT hash FROM wheel_hashes WHERE path = ? AND identity = ?", (path, identity)
    ).fetchone()
    return None if row is None else str(row[0])


@sql
def put_wheel_hash(conn: sqlite3.Connection, path: str, identity: str, digest: str) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO wheel_hashes (path, identity, hash, created) VALUES (?, ?, ?, ?)",
        (path, identity, digest, time.time()),
    )


# -- bundled pip ----------------------------------------------------------------------


@sql
def bundled_pip(conn: sqlite3.Connection, wheel: str, identity: str, cache_tag: str) -> str | None:
    """The entry made (and compiled for ``cache_tag``) from the pip wheel at ``wheel``
    when it had ``identity``."""
    row = conn.execute(
        "SELECT entry FROM bundled_pips WHERE wheel = ? AND cache_tag = ? AND identity = ?",
        (wheel, cache_tag, identity),
    ).fetchone()
    return None if row is None else str(row[0])


@sql
def put_bundled_pip(
    conn: sqlite3.Connection, wheel: str, identity: str, cache_tag: str, entry: str
) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO bundled_pips (wheel, cache_tag, identity, entry, created)"
        " VALUES (?, ?, ?, ?, ?)",
        (wheel, cache_tag, identity, entry, time.time()),
    )


# -- what gc drops ----------------------------------------------------------------------


@sql
def drop_answers_naming(conn: sqlite3.Connection, entries: Iterable[str]) -> None:
    """Drop the resolutions and bundled-pip rows that name any of ``entries`` (deleted
    by gc): answers that can no longer be used. The others still hold."""
    gone = set(entries)
    if not gone:
        return
    stale = []
    for key, objects in conn.execute("SELECT key, objects FROM resolutions").fetchall():
        try:
            named = {str(item["key"]) for item in json.loads(objects)}
        except (ValueError, TypeError, KeyError):
            named = gone  # unreadable: no use to anyone
        if named & gone:
            stale.append((key,))
    conn.executemany("DELETE FROM resolutions WHERE key = ?", stale)
    conn.executemany("DELETE FROM bundled_pips WHERE entry = ?", [(e,) for e in gone])


@sql
def stale_wheel_hashes(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """The (path, identity) of wheel hashes whose file is gone or changed: they can
    never match again."""
    rows = conn.execute("SELECT path, identity FROM wheel_hashes").fetchall()
    return [(path, ident) for path, ident in rows if file_identity(path) != ident]


@sql
def drop_wheel_hashes(conn: sqlite3.Connection, rows: Iterable[tuple[str, str]]) -> None:
    """Drop these (path, identity) rows (unless the file's hash was remembered anew)."""
    conn.executemany("DELETE FROM wheel_hashes WHERE path = ? AND identity = ?", rows)
