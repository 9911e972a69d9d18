"""Every statement envstore runs on its database, by what it means.

Each function takes the connection first and returns plain values (never a
cursor, so no error surfaces later while iterating), and raises StoreError, not
sqlite3's errors (``envstore.store.db.sql``). Writers run inside the caller's
``db.write`` transaction unless they say otherwise. The caches (interpreter facts,
resolutions, wheel hashes, bundled pip) are in ``envstore.store.caches``; the
schema and its migrations in ``envstore.store.db``.

Objects are named as in ``refs`` and ``seals``: an entry by its key
(``abi/name/version-hash``), a view as ``view/<key>``, a project's cached editable
wheels as ``editable/<project>`` (refs only).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time

from envstore.model.keys import EntryKey
from envstore.store.db import sql

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

    from envstore.model.manifest import Manifest

__all__ = [
    "add_entry",
    "add_view",
    "clear_damaged",
    "damaged_entries",
    "editable_ref",
    "entry_ages",
    "entry_keys",
    "entry_wheel",
    "entry_wheels",
    "env_count",
    "env_digest",
    "env_known",
    "env_objects",
    "env_paths",
    "env_refs",
    "forget_entry",
    "forget_env",
    "forget_view",
    "gone_since",
    "mark_back",
    "mark_damaged",
    "mark_gone",
    "project_key",
    "put_env",
    "put_seals",
    "quick_check",
    "ref_counts",
    "retire_env",
    "salvage",
    "seal_of",
    "seals",
    "set_damaged",
    "view_damaged",
    "view_keys",
    "view_rows",
    "view_source",
]


# -- entries ----------------------------------------------------------------------


def project_key(project: str | os.PathLike[str]) -> str:
    """The cache directory name of a project directory: a hash of its absolute path."""
    from envstore.store.hashing import sha256  # hashlib: not on a plain create

    return sha256(os.fsencode(os.path.abspath(project))).hexdigest()[:32]


def editable_ref(project: str | os.PathLike[str]) -> str:
    """How an env's ``refs`` rows name the cached editable wheels of ``project``."""
    return f"editable/{project_key(project)}"


def env_objects(manifest: Manifest, also: Iterable[str] = ()) -> list[str]:
    """What an env's ``refs`` rows name: its entries, its view, what else the caller
    says (``also``), and its editables' cached wheels (gc keeps those)."""
    objects = [str(k) for k in manifest.keys] + [f"view/{manifest.view}", *also]
    return objects + [editable_ref(e.path) for e in manifest.editables]


@sql
def add_entry(conn: sqlite3.Connection, key: EntryKey, meta: Mapping[str, Any]) -> None:
    """Index the published entry ``key`` described by ``meta`` (its ``entry.json``;
    fields an old one lacks get defaults). An entry indexed already is kept as it is:
    a key names one content."""
    conn.execute(
        "INSERT OR IGNORE INTO entries (key, name, version, hash, abi, wheel, size, files,"
        " added) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            str(key),
            key.name,
            key.version,
            meta.get("hash", ""),
            key.abi,
            meta.get("wheel", ""),
            meta.get("size", 0),
            meta.get("files", 0),
            meta.get("added", time.time()),
        ),
    )


@sql
def forget_entry(conn: sqlite3.Connection, key: str) -> None:
    """Drop an entry's row and its seal (the entry is gone from disk)."""
    conn.execute("DELETE FROM entries WHERE key = ?", (key,))
    conn.execute("DELETE FROM seals WHERE object = ?", (key,))


@sql
def entry_keys(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT key FROM entries")}


@sql
def entry_ages(conn: sqlite3.Connection) -> dict[str, float]:
    """Every indexed entry -> when it was added (time.time())."""
    return dict(conn.execute("SELECT key, added FROM entries").fetchall())


@sql
def entry_wheels(conn: sqlite3.Connection) -> dict[str, str]:
    """Every indexed entry -> the file name of the wheel it was made from."""
    return dict(conn.execute("SELECT key, wheel FROM entries").fetchall())


@sql
def entry_wheel(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT wheel FROM entries WHERE key = ?", (key,)).fetchone()
    return None if row is None else row[0]


# -- damage (set by verify, cleared by repair) ---------------------------------------


@sql
def damaged_entries(conn: sqlite3.Connection) -> set[str]:
    """The entries verify found damaged (through a partial index: one cheap SELECT on
    every create)."""
    return {row[0] for row in conn.execute("SELECT key FROM entries WHERE damaged = 1")}


@sql
def view_damaged(conn: sqlite3.Connection, vkey: str) -> bool:
    row = conn.execute("SELECT damaged FROM views WHERE key = ?", (vkey,)).fetchone()
    return row is not None and bool(row[0])


@sql
def set_damaged(conn: sqlite3.Connection, entries: Iterable[str], views: Iterable[str]) -> None:
    """Exactly ``entries`` and ``views`` are damaged now (what a verify found)."""
    conn.execute("UPDATE entries SET damaged = 0")
    conn.execute("UPDATE views SET damaged = 0")
    mark_damaged(conn, entries, views)


@sql
def mark_damaged(
    conn: sqlite3.Connection, entries: Iterable[str] = (), views: Iterable[str] = ()
) -> None:
    conn.executemany("UPDATE entries SET damaged = 1 WHERE key = ?", [(k,) for k in entries])
    conn.executemany("UPDATE views SET damaged = 1 WHERE key = ?", [(k,) for k in views])


@sql
def clear_damaged(
    conn: sqlite3.Connection, entries: Iterable[str] = (), views: Iterable[str] = ()
) -> None:
    conn.executemany("UPDATE entries SET damaged = 0 WHERE key = ?", [(k,) for k in entries])
    conn.executemany("UPDATE views SET damaged = 0 WHERE key = ?", [(k,) for k in views])


# -- views --------------------------------------------------------------------------


@sql
def add_view(
    conn: sqlite3.Connection, vkey: str, cache_tag: str, entries: list[str], added: float
) -> None:
    """Index the published view ``vkey`` of ``entries`` (kept as it is if indexed)."""
    conn.execute(
        "INSERT OR IGNORE INTO views (key, cache_tag, entries, added) VALUES (?, ?, ?, ?)",
        (vkey, cache_tag, json.dumps(entries), added),
    )


@sql
def forget_view(conn: sqlite3.Connection, vkey: str) -> None:
    """Drop a view's row and its seal (the view is gone from disk)."""
    conn.execute("DELETE FROM views WHERE key = ?", (vkey,))
    conn.execute("DELETE FROM seals WHERE object = ?", (f"view/{vkey}",))


@sql
def view_keys(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT key FROM views")}


@sql
def view_rows(conn: sqlite3.Connection) -> dict[str, tuple[float, str]]:
    """Every indexed view -> (when added, its entries as the JSON list stored)."""
    return {k: (a, e) for k, a, e in conn.execute("SELECT key, added, entries FROM views")}


@sql
def view_source(conn: sqlite3.Connection, vkey: str) -> tuple[str, str] | None:
    """What view ``vkey`` was built from: (cache tag, its entries as a JSON list)."""
    row = conn.execute("SELECT cache_tag, entries FROM views WHERE key = ?", (vkey,)).fetchone()
    return None if row is None else (row[0], row[1])


# -- seals --------------------------------------------------------------------------


@sql
def seal_of(conn: sqlite3.Connection, obj: str) -> str | None:
    row = conn.execute("SELECT seal FROM seals WHERE object = ?", (obj,)).fetchone()
    return None if row is None else row[0]


@sql
def seals(conn: sqlite3.Connection, *, views_only: bool = False) -> dict[str, str]:
    """Every seal (of views only, with ``views_only``): object -> seal."""
    where = " WHERE object LIKE 'view/%'" if views_only else ""
    return dict(conn.execute(f"SELECT object, seal FROM seals{where}").fetchall())


@sql
def put_seals(
    conn: sqlite3.Connection, items: Iterable[tuple[str, str]], *, replace: bool = True
) -> None:
    """Record (object, seal) pairs. ``replace=False`` keeps a seal already recorded."""
    verb = "REPLACE" if replace else "IGNORE"
    conn.executemany(f"INSERT OR {verb} INTO seals (object, seal) VALUES (?, ?)", items)


# -- environments and their references -----------------------------------------------


@sql
def put_env(
    conn: sqlite3.Connection,
    path: str,
    *,
    root: str,
    digest: str,
    python: str,
    created: float,
    objects: list[str],
) -> None:
    """Register the env at ``path`` (its root's file name, manifest digest, Python
    version, creation time) as referencing exactly ``objects``."""
    conn.execute(
        "INSERT OR REPLACE INTO envs (path, root, manifest_digest, python, created, last_seen)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (path, root, digest, python, created, time.time()),
    )
    # Rows that are exactly these already (an env made again; retire_env leaves them)
    # are kept, as deleting and inserting them again would leave them (~60 us).
    had = {row[0] for row in conn.execute("SELECT object FROM refs WHERE env = ?", (path,))}
    if had == set(objects):
        return
    conn.execute("DELETE FROM refs WHERE env = ?", (path,))
    # Up to _ROWS rows a statement (``?1`` the env): the rows, in the order, of an
    # executemany, which steps a statement per row (~90 -> ~40 us); 999 variables max.
    for i in range(0, len(objects), _ROWS):
        part = objects[i : i + _ROWS]
        conn.execute(_REFS_INSERT + ", ".join(["(?1, ?)"] * len(part)), (path, *part))


_ROWS, _REFS_INSERT = 500, "INSERT OR IGNORE INTO refs (env, object) VALUES "


@sql
def forget_env(conn: sqlite3.Connection, path: str) -> None:
    """Drop the env's row and its references."""
    conn.execute("DELETE FROM refs WHERE env = ?", (path,))
    conn.execute("DELETE FROM envs WHERE path = ?", (path,))


@sql
def retire_env(conn: sqlite3.Connection, path: str, alias: str, since: float) -> None:
    """Keep the registration at ``path`` (and its references) under ``alias``, gone
    since ``since`` unless it was gone already; its root is another env's now. The
    references are copied, not moved: the caller registers the new env at ``path``
    next, in the same transaction (``put_env`` keeps those it names: cheaper)."""
    conn.execute(
        "UPDATE OR REPLACE envs SET path = ?, root = NULL,"
        " gone_since = COALESCE(gone_since, ?) WHERE path = ?",
        (alias, since, path),
    )
    copy = "INSERT OR IGNORE INTO refs (env, object) SELECT ?, object FROM refs WHERE env = ?"
    conn.execute(copy, (alias, path))


@sql
def env_known(conn: sqlite3.Connection, path: str) -> bool:
    return conn.execute("SELECT 1 FROM envs WHERE path = ?", (path,)).fetchone() is not None


@sql
def env_paths(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT path FROM envs")]


@sql
def env_count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM envs").fetchone()[0])


@sql
def env_digest(conn: sqlite3.Connection, path: str) -> str | None:
    """The digest of the manifest envstore last registered for ``path``."""
    row = conn.execute("SELECT manifest_digest FROM envs WHERE path = ?", (path,)).fetchone()
    return None if row is None else row[0]


@sql
def gone_since(conn: sqlite3.Connection) -> dict[str, float | None]:
    """Every env -> since when gc has found its manifest gone (None: it was not)."""
    try:
        return dict(conn.execute("SELECT path, gone_since FROM envs").fetchall())
    except sqlite3.OperationalError:  # a dry run on a database from before the column
        return {path: None for path in env_paths(conn)}


@sql
def mark_gone(conn: sqlite3.Connection, path: str, since: float) -> None:
    conn.execute(
        "UPDATE envs SET gone_since = ? WHERE path = ? AND gone_since IS NULL", (since, path)
    )


@sql
def mark_back(conn: sqlite3.Connection, path: str) -> None:
    conn.execute("UPDATE envs SET gone_since = NULL WHERE path = ?", (path,))


@sql
def env_refs(conn: sqlite3.Connection) -> dict[str, list[str]]:
    """Every env -> the objects its rows reference."""
    refs: dict[str, list[str]] = {}
    for env, obj in conn.execute("SELECT env, object FROM refs").fetchall():
        refs.setdefault(env, []).append(obj)
    return refs


@sql
def ref_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Every referenced object -> how many envs reference it."""
    return dict(conn.execute("SELECT object, COUNT(*) FROM refs GROUP BY object").fetchall())


# -- the file itself ----------------------------------------------------------------


def quick_check(conn: sqlite3.Connection) -> str:
    """``ok``, or what SQLite's quick check found wrong with the file."""
    try:
        return str(conn.execute("PRAGMA quick_check").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        return str(exc)


def salvage(conn: sqlite3.Connection) -> dict[str, Any]:
    """What only a database knows, from one being replaced, as far as it can be read
    (rebuild-db is also the way out of a damaged one): ``seals`` (object, seal) pairs,
    ``damaged`` entries, ``damaged_views``, and ``digests`` (env -> manifest digest)."""
    rows: dict[str, Any] = {"seals": [], "damaged": [], "damaged_views": [], "digests": {}}
    queries = {
        "seals": "SELECT object, seal FROM seals",
        "damaged": "SELECT key FROM entries WHERE damaged = 1",
        "damaged_views": "SELECT key FROM views WHERE damaged = 1",
        "digests": "SELECT path, manifest_digest FROM envs",
    }
    for name, query in queries.items():
        try:
            found = conn.execute(query).fetchall()
        except sqlite3.Error:
            continue
        if name == "digests":
            rows[name] = dict(found)
        elif name == "seals":
            rows[name] = found
        else:
            rows[name] = [k for (k,) in found]
    return rows
