"""Checking the store against itself, repairing entries, rebuilding the database.

``verify`` reports every problem it finds (not the first): entries against
their RECORD (presence, sizes and hashes with ``check_contents``, no extra
files, read-only modes, no links), every env's manifest against the store,
and the database against both. Damaged entries are flagged in the database so
no new env links them; ``repair`` re-ingests them from the wheel they came
from and swaps the fresh copy in, touching no other entry.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envstore._crash import crash_point
from envstore.errors import BadManifestError, EnvstoreError, LockTimeoutError, StoreError
from envstore.model.keys import EntryKey
from envstore.model.manifest import MANIFEST_NAME, Manifest
from envstore.store import db as _db
from envstore.store.gc import registered_envs
from envstore.store.layout import Store, exchange_published, make_readonly, rmtree
from envstore.store.seal import FOREIGN_CACHE, check_entry, check_view, entry_seal, pycs, view_seal
from envstore.store.seal import dumps as seal_dumps

__all__ = ["Problem", "rebuild_db", "repair", "verify"]


@dataclass(frozen=True)
class Problem:
    subject: str  # an entry key, "view/<key>", an env path, or "database"
    message: str
    note: bool = False  # worth saying, not damage (a foreign cache file, a new seal)

    def __str__(self) -> str:
        return f"{'note: ' if self.note else ''}{self.subject}: {self.message}"


def _record_rows(site: Path, dist_info: str) -> list[list[str]]:
    with open(site / dist_info / "RECORD", newline="", encoding="utf-8") as f:
        return [row for row in csv.reader(f) if row]


def _hash_ok(path: Path, spec: str) -> bool:
    algo, _, digest = spec.partition("=")
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode() == digest.rstrip("=")


def verify_entry(
    store: Store, key: EntryKey, *, check_contents: bool, notes: list[str] | None = None
) -> list[str]:
    """Problems of one entry, as messages; ``notes`` gets what is not damage."""
    root = store.entry_path(key)
    problems: list[str] = []
    try:
        meta = json.loads((root / "entry.json").read_text())
        dist_info = str(meta["dist_info"])
        rows = _record_rows(root / "site", dist_info)
    except (OSError, ValueError, KeyError) as exc:
        return [f"entry.json or RECORD unreadable: {exc}"]
    expected: set[str] = {"entry.json"}
    for row in rows:
        if len(row) != 3:
            problems.append(f"RECORD row {row!r} is malformed")
            continue
        rel = os.path.normpath(os.path.join("site", row[0]))
        if rel.startswith(".."):
            problems.append(f"RECORD path {row[0]!r} leaves the entry")
            continue
        expected.add(rel)
        path = root / rel
        if row[1] == "":
            continue  # RECORD itself
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            problems.append(f"missing file {rel}")
            continue
        if not stat.S_ISREG(st.st_mode):
            problems.append(f"{rel} is not a regular file")
            continue
        if check_contents:
            if row[2] and int(row[2]) != st.st_size:
                problems.append(f"{rel} has {st.st_size} bytes, RECORD says {row[2]}")
            elif row[1] and not _hash_ok(path, row[1]):
                problems.append(f"{rel} does not match its RECORD hash")
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                problems.append(f"{rel} is a symbolic link")
                continue
            if st.st_mode & 0o222:
                problems.append(f"{rel} is writable (mode {stat.S_IMODE(st.st_mode):o})")
            if stat.S_ISDIR(st.st_mode):
                continue
            allowed = (
                rel in expected
                or (path.parent.name == "__pycache__" and name.endswith(".pyc"))
                or (path.parent == root and name.startswith("compiled-"))
            )
            if not allowed and path.parent.name == "__pycache__" and name.endswith(FOREIGN_CACHE):
                if notes is not None:  # no importer loads it: a program's run-time cache
                    notes.append(f"foreign file {rel} (a program's run-time cache, not damage)")
            elif not allowed:
                problems.append(f"unexpected file {rel}")
    if stat.S_IMODE(os.lstat(root).st_mode) & 0o222:
        problems.append("entry directory is writable")
    return problems


def _disk_entries(store: Store) -> list[EntryKey]:
    keys = []
    for path in sorted(store.entries_dir.glob("*/*/*")):
        try:
            keys.append(EntryKey.parse(str(path.relative_to(store.entries_dir))))
        except ValueError:
            continue
    return keys


def _entry_row(store: Store, key: EntryKey) -> tuple[object, ...] | None:
    try:
        meta = json.loads((store.entry_path(key) / "entry.json").read_text())
    except (OSError, ValueError):
        return None
    return (
        str(key),
        key.name,
        key.version,
        meta.get("hash", ""),
        key.abi,
        meta.get("wheel", ""),
        meta.get("size", 0),
        meta.get("files", 0),
        meta.get("added", time.time()),
    )


def _reconcile(store: Store, disk: list[EntryKey]) -> None:
    """Bring the database index in line with the disk (it may lag after a crash)."""
    from envstore.store.registry import register_env

    conn = store.db(create=False)
    on_disk = {str(k): k for k in disk}
    in_db = {row[0] for row in conn.execute("SELECT key FROM entries")}
    rows = [_entry_row(store, on_disk[k]) for k in sorted(set(on_disk) - in_db)]
    with _db.write(conn):
        conn.executemany(
            "INSERT OR IGNORE INTO entries (key, name, version, hash, abi, wheel, size, files,"
            " added) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [r for r in rows if r is not None],
        )
        gone = [(k,) for k in in_db - set(on_disk)]
        conn.executemany("DELETE FROM entries WHERE key = ?", gone)
        conn.executemany("DELETE FROM seals WHERE object = ?", gone)
    db_envs = {row[0] for row in conn.execute("SELECT path FROM envs")}
    for env, root in registered_envs(store).items():
        if (root is None or env not in db_envs) and (Path(env) / MANIFEST_NAME).exists():
            try:  # found on disk: its recorded sources are not trusted (digest "")
                register_env(store, Manifest.load(Path(env)), Path(env), digest="")
            except BadManifestError:
                continue


def verify(store: Store, *, check_contents: bool = False) -> list[Problem]:
    """Every problem in the store; flags damaged entries in the database.

    Database rows that lag behind the disk (after a crash) are reconciled, not
    reported; environments deleted with ``rm -rf`` are gc's business, not problems.
    """
    problems: list[Problem] = []
    conn = store.db(create=False)
    disk = _disk_entries(store)
    _reconcile(store, disk)
    damaged: list[str] = []
    seals = dict(conn.execute("SELECT object, seal FROM seals").fetchall())
    unsealed: dict[str, str] = {}
    for key in disk:
        notes: list[str] = []
        seal_text = seals.get(str(key))
        if _finish_interrupted(store, key, json.loads(seal_text) if seal_text else None):
            notes.append(_FINISHED)
        found = verify_entry(store, key, check_contents=check_contents, notes=notes)
        if check_contents and not found:
            seal = seals.get(str(key))
            if seal:
                found = check_entry(store.entry_path(key), json.loads(seal))
            else:  # from before seals, or a rebuilt database: sealed as found now
                unsealed[str(key)] = seal_dumps(entry_seal(store.entry_path(key)))
                notes.append(_SEALED_NOW)
        problems += [Problem(str(key), m) for m in found]
        problems += [Problem(str(key), m, note=True) for m in notes]
        if found:
            damaged.append(str(key))
    damaged_views = _verify_views(store, problems)
    on_disk = {str(k) for k in disk}
    for env in sorted(registered_envs(store)):
        manifest_path = Path(env) / MANIFEST_NAME
        if not manifest_path.exists():
            continue
        try:
            manifest = Manifest.load(manifest_path)
        except BadManifestError as exc:
            problems.append(Problem(env, str(exc)))
            continue
        for k in manifest.keys:
            if str(k) not in on_disk:
                problems.append(Problem(env, f"uses {k}, which is not in the store"))
        if not (store.view_path(manifest.view) / "view.json").exists():
            problems.append(Problem(env, f"its view {manifest.view} is missing"))
    with _db.write(conn):
        conn.execute("UPDATE entries SET damaged = 0")
        conn.executemany("UPDATE entries SET damaged = 1 WHERE key = ?", [(k,) for k in damaged])
        conn.executemany(
            "INSERT OR REPLACE INTO seals (object, seal) VALUES (?, ?)", unsealed.items()
        )
        conn.execute("UPDATE views SET damaged = 0")
        conn.executemany(
            "UPDATE views SET damaged = 1 WHERE key = ?", [(k,) for k in damaged_views]
        )
    return problems


_FINISHED = (
    "was left writable by a process killed while it published the entry or added"
    " bytecode for another Python: bytecode it had not sealed was removed (the next create"
    " compiles it again) and the entry made read-only"
)


def _finish_interrupted(store: Store, key: EntryKey, seal: dict[str, Any] | None) -> bool:
    """An entry whose top is writable was left by a killed publish (between its rename
    and chmod) or a killed ``ensure_compiled`` (its marker unwritten): not damage, an
    unfinished step. Unless a compile holds the entry's lock now, drop the bytecode the
    seal does not list (a half-written set, recompiled on the next create: its marker
    is missing) and make the entry read-only again."""
    from envstore.store.locks import file_lock

    root = store.entry_path(key)
    try:
        if not os.lstat(root).st_mode & 0o200 or not store.owns(root) or root.is_symlink():
            return False
    except OSError:
        return False
    try:
        with file_lock(store.locks_dir / f"entry-{key.hash}.lock", timeout=0):
            if seal is not None:  # an entry without one is sealed as found later
                sealed = set(seal.get("pyc", {}))
                for rel in pycs(root):
                    if rel not in sealed:
                        os.unlink(root / rel)
            make_readonly(root)
    except LockTimeoutError:
        return False  # a compile is running now
    return True


_VIEW_SEALED_NOW = (
    "had no seal (built by an envstore before seals, or the database was rebuilt): its"
    " links and view.json are sealed as found now"
)
_SEALED_NOW = (
    "had no seal (written by an envstore before seals, or the database was rebuilt):"
    " its bytecode and entry.json are sealed as found now"
)


def _verify_views(store: Store, problems: list[Problem]) -> list[str]:
    """Check every view against its seal (sealing those that have none); the damaged."""
    from envstore.store.views import read_view

    conn = store.db(create=False)
    known = {row[0] for row in conn.execute("SELECT key FROM views")}
    seals = dict(conn.execute("SELECT object, seal FROM seals WHERE object LIKE 'view/%'"))
    damaged: list[str] = []
    unsealed: dict[str, str] = {}
    try:
        names = sorted(os.listdir(store.views_dir))
    except FileNotFoundError:
        names = []
    for name in names:
        path = store.view_path(name)
        if path.is_symlink() or not path.is_dir():
            problems.append(Problem(f"view/{name}", "is not a directory"))
            damaged.append(name)
            continue
        try:
            read_view(path)
        except (OSError, ValueError, StoreError) as exc:
            found = [f"view.json is unreadable or invalid ({exc})"]
        else:
            seal = seals.get(f"view/{name}")
            if seal:
                found = check_view(path, seal)
            else:
                found = []
                if name in known:  # a view from before seals (or a rebuilt database)
                    unsealed[f"view/{name}"] = view_seal(path)
                    problems.append(Problem(f"view/{name}", _VIEW_SEALED_NOW, note=True))
        problems += [Problem(f"view/{name}", m) for m in found]
        if found:
            damaged.append(name)
    if unsealed:
        with _db.write(conn):
            conn.executemany(
                "INSERT OR REPLACE INTO seals (object, seal) VALUES (?, ?)", unsealed.items()
            )
    return damaged


def repair(store: Store, keys: list[str]) -> list[str]:
    """Re-ingest damaged entries from their wheels and build damaged views (``view/<key>``)
    again; return the keys repaired."""
    from envstore.model.interpreter import Interpreter
    from envstore.python.interpreters import from_facts
    from envstore.store.ingest import _compile, _describe, _unpack, hash_file
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
                meta: dict[str, Any] | None = store.entry_meta(key)
            except StoreError:  # missing or damaged itself: the database names the wheel
                meta = None
            row = conn.execute("SELECT wheel FROM entries WHERE key = ?", (str(key),)).fetchone()
            found = [(meta or {}).get("wheel"), row[0] if row else None]
            names = list(dict.fromkeys(str(n) for n in found if n))
            places = [Path(str(meta["origin"]))] if meta else []
            places += [store.wheels_dir / n for n in names]
            wheel = next((p for p in places if p.is_file() and hash_file(p) == key.hash), None)
            if wheel is None:
                raise StoreError(
                    f"cannot repair {key}: its wheel ({', '.join(names) or 'name unknown'}) is"
                    " no longer available; remove the envs that use it and run gc"
                )
            tmp = store.mkdtemp(f"repair-{key.name}")
            try:
                info = validate_wheel(wheel, contents=False)
                files, size = _unpack(info, tmp)
                # Described anew from the wheel: the old entry.json may be what was damaged.
                added = (meta or {}).get("added")
                meta = _describe(info, key, tmp, files, size)
                meta["added"] = added if isinstance(added, float) else meta["added"]
                tags = [p.name[len("compiled-") :] for p in root.glob("compiled-*")]
                for tag in tags:
                    interp: Interpreter | None = None
                    for path, facts in conn.execute("SELECT path, facts FROM interpreters"):
                        data = json.loads(facts)
                        if data.get("cache_tag") == tag and os.path.exists(path):
                            interp = from_facts("", path, data)
                            break
                    if interp is not None:
                        _compile(interp, [tmp / "site"])
                        (tmp / f"compiled-{tag}").touch()
                (tmp / "entry.json").write_text(json.dumps(meta, indent=1) + "\n")
                make_readonly(tmp)
                crash_point("repair-unpacked")
                exchange_published(tmp, root)
            finally:
                rmtree(tmp)
            seal = seal_dumps(entry_seal(root))
            with _db.write(conn):
                conn.execute("UPDATE entries SET damaged = 0 WHERE key = ?", (str(key),))
                conn.execute(
                    "INSERT OR REPLACE INTO seals (object, seal) VALUES (?, ?)", (str(key), seal)
                )
            repaired.append(str(key))
    return repaired


def _repair_view(store: Store, vkey: str) -> None:
    """Build a damaged view again from what the database says it holds, and swap it in."""
    from envstore.store.views import build_view, view_key

    conn = store.db(create=False)
    row = conn.execute("SELECT cache_tag, entries FROM views WHERE key = ?", (vkey,)).fetchone()
    final = store.view_path(vkey)
    if row is None or not store.owns(final):
        raise StoreError(
            f"cannot repair view {vkey}: the database does not know it; recreate the envs"
            " that use it (envstore create ENV --clear ...), then run gc"
        )
    keys = [EntryKey.parse(k) for k in json.loads(row[1])]
    if view_key(keys, row[0]) != vkey:
        raise StoreError(f"cannot repair view {vkey}: the database's entries do not make it")
    tmp = build_view(store, keys, row[0])
    try:
        crash_point("repair-unpacked")
        exchange_published(tmp, final)
    finally:
        rmtree(tmp)
    with _db.write(conn):
        conn.execute("UPDATE views SET damaged = 0 WHERE key = ?", (vkey,))
        conn.execute(
            "INSERT OR REPLACE INTO seals (object, seal) VALUES (?, ?)",
            (f"view/{vkey}", view_seal(final)),
        )


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
    store._conn = conn  # register_env below writes through the store
    counts = {"entries": 0, "views": 0, "envs": 0, "unreadable": 0}
    with _db.write(conn):
        for key in _disk_entries(store):
            row = _entry_row(store, key)
            if row is None:
                continue
            conn.execute(
                "INSERT OR REPLACE INTO entries (key, name, version, hash, abi, wheel, size,"
                " files, added) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            counts["entries"] += 1
        for view in sorted(store.views_dir.glob("*/view.json")):
            try:
                meta = json.loads(view.read_text())
                entries = [str(EntryKey.parse(k)) for k in meta["entries"]]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            conn.execute(
                "INSERT OR REPLACE INTO views (key, cache_tag, entries, added) VALUES (?, ?, ?, ?)",
                (
                    view.parent.name,
                    str(meta["cache_tag"]),
                    json.dumps(entries),
                    view.stat().st_mtime,
                ),
            )
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
        conn.executemany("INSERT OR IGNORE INTO seals (object, seal) VALUES (?, ?)", old["seals"])
        conn.executemany("UPDATE entries SET damaged = 1 WHERE key = ?", old["damaged"])
        conn.executemany("UPDATE views SET damaged = 1 WHERE key = ?", old["damaged_views"])
    return counts


def _old_rows(path: Path) -> dict[str, Any]:
    """Seals, damage flags and manifest digests from the database being replaced, as far
    as it can be read (rebuild-db is also the way out of a damaged one)."""
    import sqlite3

    rows: dict[str, Any] = {"seals": [], "damaged": [], "damaged_views": [], "digests": {}}
    if not path.is_file() or path.is_symlink():
        return rows
    queries = {
        "seals": "SELECT object, seal FROM seals",
        "damaged": "SELECT key FROM entries WHERE damaged = 1",
        "damaged_views": "SELECT key FROM views WHERE damaged = 1",
        "digests": "SELECT path, manifest_digest FROM envs",
    }
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return rows
    try:
        for name, query in queries.items():
            try:
                found = conn.execute(query).fetchall()
            except sqlite3.Error:
                continue
            rows[name] = dict(found) if name == "digests" else found
    finally:
        conn.close()
    return rows
