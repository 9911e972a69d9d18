"""Entries to a remote cache: archive first, signed metadata last.

An entry is pushed only while it matches its seal (the store's own record of what
was written), under its entry lock (no bytecode is added meanwhile). The archive
is content-addressed, so two pushers of one entry write the same name or two
names; each writes its own metadata last, naming its own archive, so a reader
sees one whole pushed entry or none, whichever pusher won.

A pusher that finds an entry's metadata (or an archive) present refreshes it, and
the archive the metadata names, so ``remote prune`` keeps what pushes still use.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from envstore.errors import RemoteError
from envstore.model.keys import EntryKey
from envstore.model.remote import RemoteMeta, SignedMeta, archive_name, meta_name
from envstore.store.fs import rmtree
from envstore.store.layout import Store
from envstore.store.remote.archive import pack_entry
from envstore.store.remote.backends import Backend
from envstore.store.remote.keys import SecretKey
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


def _touch_archive(backend: Backend, meta: str) -> None:
    """Refresh the archive the metadata ``meta`` names (unverified: it is only touched)."""
    from envstore.model.remote import archive_named

    text = backend.read(meta, 4 << 20)
    archive = archive_named(text) if text is not None else None
    if archive is not None:
        backend.touch(archive)


def _push_one(
    store: Store, backend: Backend, signer: SecretKey, key: EntryKey, seal_text: str | None
) -> bool:
    """Push ``key``; False if the remote has it already. RemoteError says why not."""
    record = store.entry_record(key)
    if record.sha256 is None:
        raise RemoteError(f"{key}: its entry.json predates sha256; recreate it to push it")
    name = meta_name(record.sha256, key.abi)
    if backend.touch(name):  # present, and now fresh for prune
        _touch_archive(backend, name)
        return False
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
        if not backend.touch(archive_name(digest)):
            backend.write(archive_name(digest), archive)
        meta = RemoteMeta(key, record.wheel, record.sha256, digest, size, tuple(tags), seal)
        doc = SignedMeta(meta, signer.name, signer.sign(meta.signed_bytes()))
        (work / "meta.json").write_text(doc.dumps())
        backend.write(name, work / "meta.json")  # last: the entry is now visible
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
