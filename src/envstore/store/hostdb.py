"""A store on a shared filesystem keeps its database per host, on local disk.

SQLite must never be opened by two hosts at once (its WAL index is shared
memory, its locks are not all NFS's), and the database is an index: each host
keeps its own under ``$ENVSTORE_DB_DIR`` (default: the user's cache directory,
``$XDG_CACHE_HOME/envstore/db`` or ``~/.cache/envstore/db``), in a directory
named by its host and the store's identity, and builds it from the shared store
(entries, views, roots) when it is missing.

This module imports nothing of the store's layout (``Store`` opens its database
through it), so it works on paths.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from envstore.errors import BadManifestError, StoreError, user_name
from envstore.model.keys import EntryKey
from envstore.model.manifest import Manifest
from envstore.model.records import EntryRecord
from envstore.store import db as _db
from envstore.store import index
from envstore.store.fs import host_name, manifest_links, read_small
from envstore.store.locks import file_lock

if TYPE_CHECKING:
    from envstore.store.placeholders import Claim

__all__ = [
    "build_missing",
    "check_db_dir",
    "disk_entries",
    "fill",
    "local_db_path",
    "put_found",
    "record_claims",
    "vouched_digest",
]


def local_db_path(root: Path) -> Path:
    """Where this host keeps the database of the shared store at ``root``:
    ``<dir>/<host>-<identity>/envstore.db``, the identity a hash of the store's real
    path and its ``store.json`` (a store made anew at the same path is another store)."""
    import xxhash

    base = os.environ.get("ENVSTORE_DB_DIR")
    if not base:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
        base = os.path.join(cache, "envstore", "db")
    try:
        marker = os.stat(root / "store.json").st_ino
    except OSError:
        marker = 0
    ident = xxhash.xxh3_64_hexdigest(f"{os.path.realpath(root)}\0{marker}".encode())
    return Path(base).absolute() / f"{host_name()}-{ident}" / "envstore.db"


def check_db_dir(path: Path) -> None:
    """Refuse the database ``path`` if its directory, or the one above it (``$ENVSTORE_DB_DIR``
    or the default), is a symbolic link, another user's, or writable by group or others:
    whoever can rename files there can swap in a database that names other entries."""
    for d in (path.parent.parent, path.parent):
        try:
            st = os.lstat(d)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(st.st_mode):
            why = "it is a symbolic link"
        elif st.st_uid != os.geteuid():
            why = f"it belongs to {user_name(st.st_uid)}, not to you"
        elif st.st_mode & 0o022:
            why = f"it is writable by other users (mode {stat.S_IMODE(st.st_mode):o})"
        else:
            continue
        raise StoreError(
            f"refusing to use the per-host database directory {d}: {why}; set"
            " ENVSTORE_DB_DIR to a directory of your own (such as"
            " $XDG_RUNTIME_DIR/envstore-db), or fix it (chmod go-w, or remove it)"
        )


def build_missing(root: Path, path: Path, untrusted: Collection[str] = ()) -> None:
    """Build this host's database ``path`` of the shared store ``root`` from what is on
    disk, unless another process of this host did meanwhile (one at a time: the
    build lock beside it). Built beside it and renamed into place. ``untrusted``:
    ``fill``'s."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    check_db_dir(path)  # mkdir's mode applies only to what it made
    with file_lock(path.parent / "build.lock"):
        if path.exists():
            return
        tmp = path.parent / f".envstore.db.build-{os.getpid()}"
        for f in _db.database_files(tmp):
            f.unlink(missing_ok=True)
        try:
            conn = _db.connect(tmp, create=True)
            try:
                fill(conn, root, untrusted=untrusted)
            finally:
                conn.close()  # the last connection: its WAL is checkpointed into the file
            for f in _db.database_files(path)[1:]:
                f.unlink(missing_ok=True)  # a lost database's WAL: never replayed onto this one
            os.replace(tmp, path)
        finally:
            for f in _db.database_files(tmp):
                f.unlink(missing_ok=True)


def fill(
    conn: sqlite3.Connection,
    root: Path,
    digests: dict[str, str] | None = None,
    untrusted: Collection[str] = (),
) -> dict[str, int]:
    """Index the entries, views and registered envs of the store at ``root`` into
    ``conn`` (a new database). ``digests``: env -> the manifest digest to keep (else
    ``vouched_digest``'s: a manifest found on disk is trusted for its sources only as
    far as what envstore wrote when it registered the env vouches for them); the envs
    ``untrusted`` (claimed, ``placeholders.claim_roots``) get none."""
    from envstore.store.hostroots import marks, read_refs

    counts = {"entries": 0, "views": 0, "envs": 0, "unreadable": 0}
    records: dict[str, EntryRecord] = {}
    with _db.write(conn):
        for key, record in disk_entry_records(root):
            index.add_entry(conn, key, record.to_json())
            records[str(key)] = record
            counts["entries"] += 1
        for view in sorted((root / "views").glob("*/view.json")):
            try:
                meta = json.loads(view.read_text())
                entries = [str(EntryKey.parse(k)) for k in meta["entries"]]
                added = view.stat().st_mtime
            except (OSError, ValueError, KeyError, TypeError):
                continue
            index.add_view(conn, view.parent.name, str(meta["cache_tag"]), entries, added)
            counts["views"] += 1
    damaged = marks(root, "damaged")  # what any host's verify found
    with _db.write(conn):
        index.mark_damaged(
            conn,
            [o for o in damaged if not o.startswith("view/")],
            [o[5:] for o in damaged if o.startswith("view/")],
        )
    for env, name in manifest_links(root / "roots").items():
        try:
            manifest = Manifest.load(Path(env))
        except BadManifestError:
            counts["unreadable"] += 1
            continue
        digest = (digests or {}).get(env)
        if env in untrusted:
            digest = ""
        elif not digest:
            digest = vouched_digest(manifest, records, read_refs(root, name))
        with _db.write(conn):
            put_found(conn, env, name, manifest, digest)
        counts["envs"] += 1
    return counts


def put_found(
    conn: sqlite3.Connection, env: str, root: str, manifest: Manifest, digest: str
) -> None:
    """The rows of an env found on disk (its manifest as it is now)."""
    index.put_env(
        conn,
        env,
        root=root,
        digest=digest,
        python=manifest.python.version,
        created=manifest.created,
        objects=index.env_objects(manifest),
    )


def record_claims(root: Path, claims: Sequence[Claim]) -> None:
    """This host's database of the shared store at ``root`` learns the envs it claimed
    (``placeholders.claim_roots``) with no trusted sources: built now if missing (with
    them untrusted), else updated."""
    if not claims:
        return
    path = local_db_path(root)
    if path.exists():
        check_db_dir(path)
    else:
        build_missing(root, path, [c.env for c in claims])
    conn = _db.connect(path, create=False)
    try:
        put_claims(conn, claims)
    finally:
        conn.close()


def put_claims(conn: sqlite3.Connection, claims: Sequence[Claim]) -> None:
    """The envs claimed (``placeholders.claim_roots``) into the database ``conn``, in one
    transaction: found on disk, so relink trusts none of their recorded sources."""
    with _db.write(conn):
        for claim in claims:
            put_found(conn, claim.env, claim.root, claim.manifest, "")


def vouched_digest(
    manifest: Manifest, records: dict[str, EntryRecord], refs: list[str] | None
) -> str:
    """The digest to record for a manifest found on disk (untrusted: a cloned repo's, or
    changed since): its own when what envstore wrote when it registered the env vouches
    for it. ``refs``, the env's ``state/refs`` file (``hostroots.read_refs``), must name
    every object the manifest names (so a crafted manifest cannot borrow another env's
    entries), and the entries among them (``records``) every place its sources name:
    each find-links directory held a wheel one of them was ingested from (``origin``),
    its index is the one one was downloaded from (``index``), no extra index (an entry
    records none then). Else "" (relink then trusts none of them); also where there is
    no refs file (a store in local mode). The store is trusted as a whole: whoever can
    write its ``entry.json`` or ``state/refs`` files can change what every env runs."""
    import xxhash

    src = manifest.sources
    if manifest.text is None or src.extra_index_urls or refs is None:
        return ""
    if not set(index.env_objects(manifest)) <= set(refs):
        return ""
    mine = [records[k] for k in refs if k in records]
    origins = {os.path.dirname(r.origin) for r in mine if r.origin}
    indexes = {r.index.rstrip("/") for r in mine if r.index}
    if any(d not in origins for d in src.find_links):
        return ""
    if src.index_url and src.index_url.rstrip("/") not in indexes:
        return ""
    return str(xxhash.xxh3_64_hexdigest(manifest.text.encode()))


def disk_entries(root: Path) -> list[EntryKey]:
    """The keys of every entry directory in the store at ``root``."""
    base = root / "entries"
    keys = []
    for path in sorted(base.glob("*/*/*")):
        try:
            keys.append(EntryKey.parse(str(path.relative_to(base))))
        except ValueError:
            continue
    return keys


def disk_entry_records(root: Path) -> list[tuple[EntryKey, EntryRecord]]:
    """Every entry on disk whose ``entry.json`` reads and checks, with its record."""
    out = []
    for key in disk_entries(root):
        raw = read_small(root / "entries" / str(key) / "entry.json", 16 * 1024 * 1024)
        try:
            out.append((key, EntryRecord.from_json(json.loads(raw or b""))))
        except (ValueError, TypeError, StoreError):
            continue
    return out
