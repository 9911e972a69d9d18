"""Entries to a remote cache: one object per entry, its signed metadata at its head.

An entry is pushed only while it matches its seal (the store's own record of what
was written), under its entry lock (no bytecode is added meanwhile). It is packed
in ``tmp/`` and hashed, its metadata signed, and the object (head, then archive:
remote layout 3) written in one atomic write (file: a temporary name renamed; S3:
one PUT), so a reader sees one whole pushed entry or none; two pushers of one
entry each write a whole object and the last one wins.

A pusher that finds the entry's object present, its head signed by the pusher's
own key for that entry, refreshes it (``remote prune`` keeps what pushes still use)
and uploads nothing; anything else at that name (damaged, forged, signed by another
key) is overwritten.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field

from envstore.errors import RemoteError
from envstore.model.keys import EntryKey
from envstore.model.records import EntryRecord
from envstore.model.remote import RemoteMeta, SignedMeta, entry_head, meta_name
from envstore.store.fs import rmtree
from envstore.store.layout import Store
from envstore.store.remote.archive import pack_entry
from envstore.store.remote.backends import Backend
from envstore.store.remote.keys import SecretKey
from envstore.store.remote.pull import Wanted, _checked_meta, _read_head
from envstore.store.seal import check_entry, contents

__all__ = ["PushReport", "push_entries"]


@dataclass
class PushReport:
    pushed: list[EntryKey] = field(default_factory=list)
    present: list[EntryKey] = field(default_factory=list)  # the remote had them
    skipped: list[str] = field(default_factory=list)  # why an entry was not pushed


def _sha256(path: object) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:  # type: ignore[call-overload]
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def _present(
    backend: Backend, signer: SecretKey, key: EntryKey, record: EntryRecord, name: str
) -> bool:
    """Whether the remote has ``key``'s object with a head signed by ``signer`` for that
    entry (anything else there is overwritten: a damaged or forged object, or one an
    older pusher wrote with another key)."""
    what = f"{backend.url}/{name}"
    assert record.sha256 is not None
    want = Wanted(key.name, record.wheel, record.sha256, key.abi)
    try:
        stream = backend.open(name)
        if stream is None:
            return False
        with stream:
            head = _read_head(stream, what)
        meta = _checked_meta(backend, [signer.public()], want, head, name, 3)
    except RemoteError:  # unreadable (a new file:// remote is not a directory yet)
        return False
    return meta.key == key


def _push_one(
    store: Store, backend: Backend, signer: SecretKey, key: EntryKey, seal_text: str | None
) -> bool:
    """Push ``key``; False if the remote has it already. RemoteError says why not."""
    record = store.entry_record(key)
    if record.sha256 is None:
        raise RemoteError(f"{key}: its entry.json predates sha256; recreate it to push it")
    name = meta_name(record.sha256, key.abi)
    if _present(backend, signer, key, record, name) and backend.touch(name):
        return False  # present and signed, and now fresh for prune
    if seal_text is None:
        raise RemoteError(f"{key} has no seal; run 'envstore verify --check-contents' first")
    seal = contents(json.loads(seal_text))  # without this host's directory identity
    root = store.entry_path(key)
    work = store.mkdtemp(f"push-{key.name}")
    try:
        archive = work / "entry.pack.zst"
        with store.entry_lock(key):
            problems = check_entry(root, seal)
            if problems:
                raise RemoteError(f"{key} does not match its seal ({problems[0]}); not pushed")
            tags = sorted(p.name.removeprefix("compiled-") for p in root.glob("compiled-*"))
            pack_entry(root, archive)
        digest, size = _sha256(archive)
        meta = RemoteMeta(key, record.wheel, record.sha256, digest, size, tuple(tags), seal)
        doc = SignedMeta(meta, signer.name, signer.sign(meta.signed_bytes()))
        obj = work / "entry"
        with open(obj, "wb") as out, open(archive, "rb") as f:
            out.write(entry_head(doc.dumps().encode()))
            shutil.copyfileobj(f, out, 1 << 20)
        backend.write(name, obj)  # one object: the entry is visible whole or not at all
    finally:
        rmtree(work)
    return True


def push_entries(
    store: Store, backend: Backend, signer: SecretKey, keys: Sequence[EntryKey]
) -> PushReport:
    """Upload each entry of ``keys`` the remote lacks, in parallel."""
    from concurrent.futures import ThreadPoolExecutor

    from envstore.store import index

    report = PushReport()
    if not backend.writable:
        raise RemoteError(f"{backend.url} is read-only; push to an s3:// or file:// remote")
    conn = store.db()
    seals = {k: index.seal_of(conn, str(k)) for k in keys}  # sqlite: in this thread

    def one(key: EntryKey) -> bool | RemoteError:
        try:
            return _push_one(store, backend, signer, key, seals[key])
        except RemoteError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=max(1, min(8, len(keys)))) as pool:
        results = list(pool.map(one, keys))
    for key, got in zip(keys, results, strict=True):
        if isinstance(got, RemoteError):
            report.skipped.append(str(got))
        elif got:
            report.pushed.append(key)
        else:
            report.present.append(key)
    return report
