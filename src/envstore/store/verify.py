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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envstore.errors import BadManifestError, LockTimeoutError, StoreError
from envstore.model.keys import EntryKey
from envstore.model.manifest import MANIFEST_NAME, Manifest
from envstore.store import db as _db
from envstore.store import hostdb, index
from envstore.store.damage import republished
from envstore.store.fs import make_readonly
from envstore.store.layout import Store, read_entry_record
from envstore.store.registry import registered_envs
from envstore.store.seal import (
    FOREIGN_CACHE,
    check_entry,
    contents,
    entry_seal,
    file_digest,
    new_tag_pycs,
    pyc_tag,
    pycs,
    stamped,
)
from envstore.store.seal import dumps as seal_dumps
from envstore.store.verify_views import verify_views

__all__ = [
    "Finding",
    "hash_ok",
    "record_files",
    "verify",
]


@dataclass(frozen=True)
class Finding:
    subject: str  # an entry key, "view/<key>", an env path, or "database"
    message: str
    note: bool = False  # worth saying, not damage (a foreign cache file, a new seal)

    def __str__(self) -> str:
        return f"{'note: ' if self.note else ''}{self.subject}: {self.message}"


def record_files(root: Path) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """The rows of the RECORD of the entry at ``root``, each with its path relative to
    the entry (``site/...``), and the problems of the rows that are malformed or lead
    out of the entry. StoreError if entry.json or RECORD cannot be read."""
    try:
        dist_info = read_entry_record(root).dist_info
        with open(root / "site" / dist_info / "RECORD", newline="", encoding="utf-8") as f:
            rows = [row for row in csv.reader(f) if row]
    except (OSError, ValueError, StoreError) as exc:
        raise StoreError(f"entry.json or RECORD unreadable: {exc}") from None
    listed, problems = [], []
    for row in rows:
        if len(row) != 3:
            problems.append(f"RECORD row {row!r} is malformed")
            continue
        rel = os.path.normpath(os.path.join("site", row[0]))
        if rel.startswith("..") or os.path.isabs(rel):
            problems.append(f"RECORD path {row[0]!r} leaves the entry")
            continue
        listed.append((rel, row))
    return listed, problems


def hash_ok(path: str | Path, spec: str, known: str | None = None) -> bool:
    """Whether the file matches RECORD's ``spec``; ``known``: its sha256, taken as it
    was written (so it is not read again)."""
    algo, _, digest = spec.partition("=")
    if known is not None and algo == "sha256":
        return known == digest.rstrip("=")
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode() == digest.rstrip("=")


def verify_entry(
    store: Store,
    key: EntryKey,
    *,
    check_contents: bool,
    notes: list[str] | None = None,
    root: Path | None = None,
) -> list[str]:
    """Problems of one entry, as messages; ``notes`` gets what is not damage. ``root``:
    the entry's files elsewhere than its place (a repair's fresh copy). An entry just
    pulled from a remote is checked from what was written instead
    (``envstore.store.remote.written``)."""
    root = root or store.entry_path(key)
    try:
        listed, problems = record_files(root)
    except StoreError as exc:
        return [str(exc)]
    expected: set[str] = {"entry.json"}
    top = str(root)
    for rel, row in listed:
        expected.add(rel)
        path = os.path.join(top, rel)  # strings, not Paths: an entry has thousands of files
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
            elif row[1] and not hash_ok(path, row[1]):
                problems.append(f"{rel} does not match its RECORD hash")
    for dirpath, dirnames, filenames in os.walk(top):
        reldir = os.path.relpath(dirpath, top)
        in_pycache = os.path.basename(dirpath) == "__pycache__"
        for name in dirnames + filenames:
            rel = name if reldir == "." else f"{reldir}/{name}"
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISLNK(st.st_mode):
                problems.append(f"{rel} is a symbolic link")
                continue
            if st.st_mode & 0o222:
                problems.append(f"{rel} is writable (mode {stat.S_IMODE(st.st_mode):o})")
            if stat.S_ISDIR(st.st_mode):
                continue
            allowed = (
                rel in expected
                or (in_pycache and name.endswith(".pyc"))
                or (reldir == "." and name.startswith("compiled-"))
            )
            if not allowed and in_pycache and name.endswith(FOREIGN_CACHE):
                if notes is not None:  # no importer loads it: a program's run-time cache
                    notes.append(f"foreign file {rel} (a program's run-time cache, not damage)")
            elif not allowed:
                problems.append(f"unexpected file {rel}")
    if stat.S_IMODE(os.lstat(root).st_mode) & 0o222:
        problems.append("entry directory is writable")
    return problems


def disk_entries(store: Store) -> list[EntryKey]:
    return hostdb.disk_entries(store.root)


def entry_json(store: Store, key: EntryKey) -> dict[str, Any] | None:
    """The entry's ``entry.json``, read and checked (to index it: ``index.add_entry``),
    or None if it is missing or invalid."""
    record = store.entry_record_or_none(key)
    return None if record is None else record.to_json()


def _reconcile(store: Store, disk: list[EntryKey]) -> None:
    """Bring the database index in line with the disk (it may lag after a crash)."""
    from envstore.store.registry import register_env

    conn = store.db(create=False)
    on_disk = {str(k): k for k in disk}
    in_db = index.entry_keys(conn)
    metas = {k: entry_json(store, on_disk[k]) for k in sorted(set(on_disk) - in_db)}
    with _db.write(conn):
        for k, meta in metas.items():
            if meta is not None:
                index.add_entry(conn, on_disk[k], meta)
        for k in sorted(in_db - set(on_disk)):
            index.forget_entry(conn, k)
    db_envs = set(index.env_paths(conn))
    for env, root in registered_envs(store).items():
        if (root is None or env not in db_envs) and (Path(env) / MANIFEST_NAME).exists():
            try:  # found on disk: its recorded sources are not trusted (digest "")
                register_env(store, Manifest.load(Path(env)), Path(env), digest="")
            except BadManifestError:
                continue


def verify(store: Store, *, check_contents: bool = False) -> list[Finding]:
    """Every problem in the store; flags damaged entries in the database.

    Database rows that lag behind the disk (after a crash) are reconciled, not
    reported; environments deleted with ``rm -rf`` are gc's business, not problems.
    """
    problems: list[Finding] = []
    conn = store.db(create=False)
    disk = disk_entries(store)
    _reconcile(store, disk)
    damaged: list[str] = []
    seals = index.seals(conn)
    unsealed: dict[str, str] = {}
    marked = _marked(store)  # never sealed as found: a host that never saw it whole
    judged: set[str] = set()  # checked against a seal this host held before this run
    why: dict[str, str] = {}  # why a marked entry this verify did not judge stays marked
    for key in disk:
        notes: list[str] = []
        root = store.entry_path(key)
        seal_text = seals.get(str(key))
        old = json.loads(seal_text) if seal_text else None
        seal = None if old is None or republished(root, old) else old
        if _finish_interrupted(store, key, seal):
            notes.append(_FINISHED)
        found = verify_entry(store, key, check_contents=check_contents, notes=notes)
        is_marked = str(key) in marked
        if not check_contents:
            why[str(key)] = "entries are judged only with --check-contents"
        elif not found and seal is not None:
            added = new_tag_pycs(root, seal) if store.shared else []
            if added:  # another host's Python compiled them: sealed as found now
                digests = {rel: file_digest(root / rel) for rel in added}
                seal = {**seal, "pyc": {**seal["pyc"], **digests}}
                tags = ", ".join(sorted({pyc_tag(rel) for rel in added}))
                if not is_marked:
                    notes.append(_ADDED_TAGS.format(tags))
                why[str(key)] = f"it holds bytecode for {tags}, which this host never sealed"
            else:
                judged.add(str(key))
            found = check_entry(root, seal)
            if not found and (added or "dir" not in seal) and not (added and is_marked):
                unsealed[str(key)] = seal_dumps(stamped(seal, root))  # "dir": from before
        elif not found and is_marked:  # not sealed as found: it may be what was marked
            why[str(key)] = _NO_SEAL if old is None else _PUBLISHED_SINCE
        elif not found:  # from before seals, a rebuilt database, or published again since:
            new = entry_seal(root)  # sealed as found now, as another host's entry
            unsealed[str(key)] = seal_dumps(new)
            if old is None:
                notes.append(_SEALED_NOW)
            elif contents(old) != contents(new):
                notes.append(_REPUBLISHED)
        problems += [Finding(str(key), m) for m in found]
        problems += [Finding(str(key), m, note=True) for m in notes]
        if found:
            damaged.append(str(key))
    views = verify_views(store, marked)
    problems += [Finding(f"view/{k}", m, note=n) for k, m, n in views.problems]
    damaged_views = views.damaged
    judged |= {f"view/{k}" for k in views.judged}
    why |= {f"view/{k}": _NO_SEAL for k in views.unsealed}
    for obj in sorted(marked - judged - set(damaged) - {f"view/{k}" for k in damaged_views}):
        if obj in why:  # there, and not judged: another verify's finding stands
            problems.append(Finding(obj, _UNJUDGED.format(why[obj])))
            if obj.startswith("view/"):
                damaged_views.append(obj[5:])
            else:
                damaged.append(obj)
    on_disk = {str(k) for k in disk}
    upstream: set[EntryKey] = set()  # entries envs use from upstream stores
    for env in sorted(registered_envs(store)):
        manifest_path = Path(env) / MANIFEST_NAME
        if not manifest_path.exists():
            continue
        try:
            manifest = Manifest.load(manifest_path)
        except BadManifestError as exc:
            problems.append(Finding(env, str(exc)))
            continue
        for k in manifest.keys:
            if str(k) in on_disk:
                continue
            if store.has_entry(k):
                upstream.add(k)
            else:
                problems.append(Finding(env, f"uses {k}, which is not in the store"))
        if not (store.view_path(manifest.view) / "view.json").exists():
            problems.append(Finding(env, f"its view {manifest.view} is missing"))
    for k in sorted(upstream, key=str):  # read only: no seal, no flag, no repair there
        root = store.entry_dir(k)
        where = f"{k} (upstream {str(root).partition('/entries/')[0]})"
        for m in verify_entry(store, k, check_contents=check_contents, root=root):
            problems.append(Finding(where, m))
    with _db.write(conn):
        index.set_damaged(conn, damaged, damaged_views)
        index.put_seals(conn, unsealed.items())
    if store.shared:  # every host refuses a damaged entry, not only this one
        from envstore.store.hostroots import set_damaged

        # Another verify's marks stay unless this one judged the object (against a
        # seal this host held before, of the directory there now, covering it whole).
        set_damaged(store.root, [*damaged, *(f"view/{v}" for v in damaged_views)], judged)
    return problems


def _marked(store: Store) -> set[str]:
    """What is marked damaged for every host (``state/damaged/``; none outside shared
    mode)."""
    if not store.shared:
        return set()
    from envstore.store.hostroots import marks

    return set(marks(store.root, "damaged"))


_NO_SEAL = "this host holds no seal of it from before (it never saw it whole)"
_PUBLISHED_SINCE = "it was published again since this host sealed it"
_UNJUDGED = (
    "is marked damaged (state/damaged/, by an earlier verify on this or another host)"
    " and this verify cannot judge it: {}; 'envstore verify --repair' rebuilds it"
)


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
                if store.shared:  # another host's finished compile for its Python
                    sealed |= set(new_tag_pycs(root, seal))
                for rel in pycs(root):
                    if rel not in sealed:
                        os.unlink(root / rel)
            make_readonly(root)
    except LockTimeoutError:
        return False  # a compile is running now
    return True


_REPUBLISHED = (
    "was published again since this host sealed it (a repair, or a new copy, by this or"
    " another host): its bytecode and entry.json are sealed as found now"
)
_ADDED_TAGS = (
    "bytecode for {} was added since this host sealed the entry (another host's envstore"
    " compiled it for its Python, and marked it so): sealed as found now"
)
_SEALED_NOW = (
    "had no seal (written by an envstore before seals, or the database was rebuilt):"
    " its bytecode and entry.json are sealed as found now"
)
