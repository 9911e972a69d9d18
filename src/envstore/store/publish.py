"""Publishing entries and adding bytecode to published ones.

An entry filled in ``tmp/`` (by ingest, a remote cache's archive, or a copy of an
upstream store's entry) is made read-only and renamed into place; if the name already
exists another process won the race and our copy is dropped. Then it is indexed with
its seal. A pure entry first used by another interpreter gets that interpreter's
bytecode (under its entry lock, resealed before its marker is written); an upstream
store's entry is first copied into this store, its tree being read-only to us
(store-layout.md, "Upstream stores").
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from envstore.errors import StoreError, writing
from envstore.model.interpreter import Interpreter
from envstore.model.keys import EntryKey
from envstore.model.records import EntryRecord
from envstore.store.bytecode import compile_site
from envstore.store.fs import make_readonly, make_writable_dirs, publish_dir, rmtree
from envstore.store.layout import Store, read_entry_record
from envstore.store.seal import dumps as seal_dumps
from envstore.store.seal import entry_seal, stamped

__all__ = [
    "Pending",
    "ensure_compiled",
    "index_entries",
    "index_unpacked",
    "publish",
    "publish_unpacked",
]


@dataclass
class Pending:
    key: EntryKey
    tmp: Path
    record: EntryRecord


def publish(store: Store, pending: Pending, *, readonly: bool = False) -> bool:
    final = store.entry_path(pending.key)
    if not readonly:
        make_readonly(pending.tmp)
    if not store.owns(final.parent):
        raise StoreError(f"{final.parent} leads out of the store (a symbolic link on the way)")
    final.parent.mkdir(parents=True, exist_ok=True)
    if publish_dir(pending.tmp, final):
        return True
    rmtree(pending.tmp)  # another process published the same entry first
    return False


def publish_unpacked(
    store: Store, record: EntryRecord, tmp: Path, seal: dict[str, object] | None = None
) -> dict[str, object] | None:
    """Publish an entry filled in ``tmp`` by other means (a remote cache's archive, checked
    by the caller) as ingest publishes its own; ``index_unpacked`` then indexes it. The
    seal to index it with: ``seal`` (the caller checked ``tmp`` against it and found it
    read-only, so neither is done again), or None when another process published the
    same entry first (``tmp`` is then gone) or no seal was given: taken from what won."""
    key = EntryKey.parse(record.key)
    won = publish(store, Pending(key, tmp, record), readonly=seal is not None)
    return seal if won else None


def index_unpacked(
    store: Store, published: list[tuple[EntryRecord, dict[str, object] | None]]
) -> None:
    """Index entries ``publish_unpacked`` published (record, the seal it returned), all
    in one transaction: a pull publishes ~90 entries as they verify, then indexes them."""
    if not published:
        return
    now = time.time()  # gc's age: from now
    metas = [{**record.to_json(), "added": now} for record, _seal in published]
    known = {EntryKey.parse(r.key): s for r, s in published if s is not None}
    index_entries(store, metas, known)


def index_entries(
    store: Store,
    metas: list[dict[str, object]],
    known: dict[EntryKey, dict[str, object]] | None = None,
) -> None:
    """Index published entries, each with its seal: taken from the published copy (the
    one that won a race to publish), so it names the ``entry.json`` that is there
    (``known``: seals of copies this process published, checked as they were made)."""
    from envstore.store import index
    from envstore.store.db import write

    keyed = {EntryKey.parse(str(m["key"])): m for m in metas}
    known = known or {}
    seals = [(str(k), seal_dumps(_seal(store.entry_path(k), known.get(k)))) for k in keyed]
    conn = store.db()
    with write(conn):
        for key, meta in keyed.items():
            index.add_entry(conn, key, meta)
        # Replacing: a seal left by an entry of the same key deleted since (a killed gc)
        # would name other files; this one was taken from what is published now.
        index.put_seals(conn, seals)


def _seal(root: Path, known: dict[str, object] | None) -> dict[str, object]:
    """The seal of the published entry at ``root``: ``known`` (its digests, checked as
    they were written) naming the directory, else taken now."""
    return stamped(known, root) if known else entry_seal(root)


def _reseal(store: Store, key: EntryKey) -> None:
    """Seal the bytecode just added to ``key`` (its entry lock held)."""
    from envstore.store import index
    from envstore.store.db import write

    conn = store.db()
    text = index.seal_of(conn, str(key))
    old = json.loads(text) if text else None
    seal = seal_dumps(entry_seal(store.entry_path(key), old))
    with write(conn):
        index.put_seals(conn, [(str(key), seal)])


def ensure_compiled(store: Store, keys: Iterable[EntryKey], interp: Interpreter) -> None:
    """Add ``interp``'s bytecode to existing pure entries that lack it (an upstream's
    entry is copied into this store first: its tree is read-only to us)."""
    missing = [k for k in keys if not store.has_entry(k, interp.cache_tag)]
    for key in missing:
        if store.entry_dir(key) != store.entry_path(key):  # only in an upstream
            _copy_from_upstream(store, key, store.entry_dir(key))
        with store.entry_lock(key):
            marker = store.compiled_marker(key, interp.cache_tag)
            if marker.exists():
                continue
            root = store.entry_path(key)
            if root.is_symlink() or not store.owns(root):
                raise StoreError(
                    f"{root} is not a directory of the store (a symbolic link on the way);"
                    " run 'envstore verify --repair'"
                )
            make_writable_dirs(root)
            try:
                compile_site(interp, [root / "site"])
                _reseal(store, key)  # before the marker: a kill here recompiles the same
                marker.touch()
            finally:
                make_readonly(root)


def _copy_from_upstream(store: Store, key: EntryKey, src: Path) -> None:
    """Publish here a copy of ``src``, the upstream entry ``key`` (store-layout.md)."""
    from envstore.store.upstream import copy_entry

    tmp = store.mkdtemp(f"entry-{key.name}")
    try:
        with writing(f"a copy of {src} into the store ({tmp})"):
            copy_entry(key, src, tmp)
        copied = read_entry_record(tmp)
        if copied.key != str(key):  # changed under us since it was looked up
            raise StoreError(f"{src} no longer holds the entry {key}; run the command again")
        if publish(store, Pending(key, tmp, copied)):
            index_entries(store, [{**copied.to_json(), "added": time.time()}])
    finally:
        rmtree(tmp)
