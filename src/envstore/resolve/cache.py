"""The resolution cache: the same request on the same interpreter with the same
inputs (files, find-links listings) resolves to the same entries without pip.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from envstore.errors import ResolutionError
from envstore.model.interpreter import Interpreter
from envstore.model.keys import EntryKey
from envstore.resolve.reqfiles import listing, requirement_texts
from envstore.resolve.request import Request, Resolved
from envstore.store.layout import Store

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    import sqlite3
    from typing import Any


def cache_key(request: Request, interp: Interpreter) -> str:
    import xxhash

    files: list[str] = []
    seen: set[str] = set()
    for f in request.requirement_files:
        try:
            files += requirement_texts(f, seen)
        except OSError as exc:
            raise ResolutionError(f"cannot read requirements file {f}: {exc}") from None
    # What a local --find-links directory holds (names, sizes, mtimes): a wheel
    # added, removed or rebuilt there changes pip's choice, so the cached one is stale.
    # (PIP_FIND_LINKS too: pip, when it runs, looks there as well.)
    more = os.environ.get("PIP_FIND_LINKS", "").split()
    links = [[os.path.abspath(d), listing(d)] for d in [*request.find_links, *more]]
    blob = json.dumps(
        [
            sorted(request.requirements),
            files,
            links,
            request.index_url,
            request.no_index,
            interp.soabi,
            interp.version,
            interp.platform,
        ]
    )
    return str(xxhash.xxh3_128_hexdigest(blob.encode()))


def cache_get(store: Store, key: str) -> Any:
    """What the ``resolutions`` table (the store's cache of answers) holds under ``key``,
    decoded; None if nothing."""
    row = store.db().execute("SELECT objects FROM resolutions WHERE key = ?", (key,)).fetchone()
    return None if row is None else json.loads(row[0])


def cache_put(conn: sqlite3.Connection, key: str, value: object) -> None:
    """Remember ``value`` under ``key`` in ``resolutions``; inside a write transaction."""
    conn.execute(
        "INSERT OR REPLACE INTO resolutions (key, objects, created) VALUES (?, ?, ?)",
        (key, json.dumps(value), time.time()),
    )


def from_cache(store: Store, cache_key: str) -> Resolved | None:
    items = cache_get(store, cache_key)
    if items is None:
        return None
    resolved = Resolved()
    for item in items:
        key = EntryKey.parse(item["key"])
        if not store.has_entry(key):
            return None
        resolved.keys[key.name] = key
        if item["requested"]:
            resolved.requested.add(key.name)
    return resolved


def remember(
    store: Store,
    resolved: Resolved,
    keys: dict[str, EntryKey],
    ingested: dict[Path, EntryKey] | None = None,
) -> None:
    """Cache ``resolved``'s outcome (``keys``, every entry chosen) under the key computed
    when it was resolved, and which store entry each ``ingested`` wheel file became."""
    from envstore.store.db import write

    items = [{"key": str(k), "requested": n in resolved.requested} for n, k in sorted(keys.items())]
    conn = store.db()
    with write(conn):
        if resolved.cache_key is not None:
            cache_put(conn, resolved.cache_key, items)
        for wheel, key in (ingested or {}).items():
            stamp = _file_stamp(wheel)
            if stamp is not None:
                cache_put(conn, stamp, [key.hash])


def _file_stamp(path: Path) -> str | None:
    """A resolution-cache key for the hash of the file at ``path`` as it is now."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    ident = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    return f"wheel-hash:{os.path.abspath(path)}:{':'.join(map(str, ident))}"


def wheel_hash(store: Store, path: Path) -> str:
    """xxh3-128 of a wheel file (what its store entry would be keyed by), remembered
    per file identity: a warm create that misses the resolution cache hashes nothing."""
    from envstore.store.db import write
    from envstore.store.hashing import hash_file

    stamp = _file_stamp(path)
    known = cache_get(store, stamp) if stamp is not None else None
    if known is not None:
        return str(known[0])
    digest = hash_file(path)
    if stamp is not None:
        with write(store.db()) as conn:
            cache_put(conn, stamp, [digest])
    return digest
