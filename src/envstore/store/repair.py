"""``repair``: re-ingest damaged entries from their wheels (or fetch them again from the
remote cache they were pulled from) and rebuild damaged views."""

from __future__ import annotations

import json
import os
from pathlib import Path

from envstore._crash import crash_point
from envstore.errors import StoreError
from envstore.model.keys import EntryKey
from envstore.store import db as _db
from envstore.store import index
from envstore.store.fs import exchange_published, make_readonly, rmtree
from envstore.store.layout import Store
from envstore.store.seal import dumps as seal_dumps
from envstore.store.seal import entry_seal, view_seal

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from envstore.model.records import EntryRecord


def repair(store: Store, keys: list[str]) -> list[str]:
    """Re-ingest damaged entries from their wheels and build damaged views (``view/<key>``)
    again; return the keys repaired."""
    from envstore.model.interpreter import Interpreter
    from envstore.python.query import from_facts
    from envstore.store.bytecode import compile_site
    from envstore.store.caches import all_facts
    from envstore.store.hashing import hash_file
    from envstore.store.ingest import describe_entry, unpack_wheel
    from envstore.store.wheel import validate_wheel

    repaired: list[str] = []
    conn = store.db(create=False)
    with store.gc_lock(shared=False):
        for text in keys:
            if text.startswith("view/"):
                _repair_view(store, text[len("view/") :])
                repaired.append(text)
                continue
            key = EntryKey.parse(text)
            root = store.entry_path(key)
            if not store.owns(root):
                raise StoreError(f"cannot repair {key}: {root.parent} leads out of the store")
            try:
                old: EntryRecord | None = store.entry_record(key)
            except StoreError:  # missing or damaged itself: the database names the wheel
                old = None
            found = [old.wheel if old else None, index.entry_wheel(conn, str(key))]
            names = list(dict.fromkeys(str(n) for n in found if n))
            places = [Path(old.origin)] if old and old.origin else []
            places += [store.wheels_dir / n for n in names]
            wheel = next((p for p in places if p.is_file() and hash_file(p) == key.hash), None)
            if wheel is None and old is not None and old.origin and "://" in old.origin:
                _from_remote(store, key, old, root)
                repaired.append(str(key))
                continue
            if wheel is None:
                raise StoreError(
                    f"cannot repair {key}: its wheel ({', '.join(names) or 'name unknown'}) is"
                    " no longer available; remove the envs that use it and run gc"
                )
            tmp = store.mkdtemp(f"repair-{key.name}")
            try:
                info = validate_wheel(wheel, contents=False)
                files, size = unpack_wheel(info, tmp)
                # Described anew from the wheel: the old entry.json may be what was damaged.
                record = describe_entry(info, key, tmp, files, size)
                if old is not None:
                    record.added = old.added
                    if old.sha256 == record.sha256:  # where the same wheel was downloaded
                        record.url, record.index = old.url, old.index
                tags = [p.name[len("compiled-") :] for p in root.glob("compiled-*")]
                for tag in tags:
                    interp: Interpreter | None = None
                    for path, data in all_facts(conn):
                        if data.get("cache_tag") == tag and os.path.exists(path):
                            interp = from_facts("", path, data)
                            break
                    if interp is not None:
                        compile_site(interp, [tmp / "site"])
                        (tmp / f"compiled-{tag}").touch()
                (tmp / "entry.json").write_text(record.dumps())
                make_readonly(tmp)
                crash_point("repair-unpacked")
                exchange_published(tmp, root)
            finally:
                rmtree(tmp)
            _sealed(store, key, root)
            repaired.append(str(key))
    return repaired


def _sealed(store: Store, key: EntryKey, root: Path) -> None:
    """Record the repaired entry's seal; it is no longer damaged."""
    seal = seal_dumps(entry_seal(root))
    conn = store.db(create=False)
    with _db.write(conn):
        index.clear_damaged(conn, entries=[str(key)])
        index.put_seals(conn, [(str(key), seal)])
    _unmark(store, str(key))


def _from_remote(store: Store, key: EntryKey, old: EntryRecord, root: Path) -> None:
    """Swap in the entry fetched again, verified, from the remote cache it came from."""
    from envstore.errors import RemoteError
    from envstore.store.remote import refetch

    if old.sha256 is None:
        raise StoreError(f"cannot repair {key}: its entry.json names no wheel sha256")
    try:
        got = refetch(store, old.origin or "", key, old.wheel, old.sha256)
    except RemoteError as exc:
        raise StoreError(f"cannot repair {key} from its remote cache: {exc}") from None
    try:
        crash_point("repair-unpacked")
        exchange_published(got.entry, root)
    finally:
        rmtree(got.work)
    _sealed(store, key, root)


def _repair_view(store: Store, vkey: str) -> None:
    """Build a damaged view again from what the database says it holds, and swap it in."""
    from envstore.store.views import build_view, read_view, upstream_layers, view_key

    conn = store.db(create=False)
    row = index.view_source(conn, vkey)
    final = store.view_path(vkey)
    if row is None and store.shared:  # built by another host since this database was
        try:  # (what view.json says is taken only if it makes the view's name, below)
            meta = read_view(final)
            row = (meta.cache_tag, json.dumps(meta.entries))
        except (StoreError, TypeError):
            row = None
    if row is None or not store.owns(final):
        raise StoreError(
            f"cannot repair view {vkey}: the database does not know it; recreate the envs"
            " that use it (envstore create ENV --clear ...), then run gc"
        )
    keys = [EntryKey.parse(k) for k in json.loads(row[1])]
    if view_key(keys, row[0], upstream_layers(store, keys)) != vkey:
        raise StoreError(f"cannot repair view {vkey}: the database's entries do not make it")
    tmp = build_view(store, keys, row[0])
    try:
        crash_point("repair-unpacked")
        exchange_published(tmp, final)
    finally:
        rmtree(tmp)
    with _db.write(conn):
        index.clear_damaged(conn, views=[vkey])
        index.put_seals(conn, [(f"view/{vkey}", view_seal(final))])
    _unmark(store, f"view/{vkey}")


def _unmark(store: Store, obj: str) -> None:
    """A repaired object's damage mark in a shared store (every host sees it)."""
    if store.shared:
        from envstore.store.hostroots import drop_mark

        drop_mark(store.root, "damaged", obj)
