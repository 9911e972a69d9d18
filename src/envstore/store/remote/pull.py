"""Entries from a remote cache: found by their wheel's sha256, verified, then published.

For each wanted wheel (its sha256 known, from a lock), in parallel: the signed
metadata is read and its signature checked against the trusted keys; the archive
it names is downloaded into ``tmp/``, no larger than the metadata says, and its
sha256 compared; only then is it unpacked (``archive.unpack_entry``: plain names,
regular files and directories only) and checked as ``verify --check-contents``
checks an entry (every file against RECORD, nothing else but sealed bytecode,
``entry.json`` and markers) and against the signed seal. What passes is published
like an ingested entry, its ``entry.json`` saying the remote is its ``origin``
(so ``verify --repair`` can fetch it again: ``fetch_entry``); anything else is a
warning naming the object, and the caller uses the wheel instead. Nothing
unverified reaches ``entries/``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from envstore.errors import EnvstoreError, RemoteError
from envstore.model.keys import PURE, EntryKey
from envstore.model.records import EntryRecord
from envstore.model.remote import LAYOUTS, RemoteMeta, meta_name, parse_document, signed_bytes
from envstore.store.fs import rmtree
from envstore.store.layout import Store, read_entry_record
from envstore.store.remote.archive import Unpacked, unpack_entry
from envstore.store.remote.backends import Backend, RemoteUnreachable
from envstore.store.remote.keys import PublicKey
from envstore.store.seal import check_entry, file_digest
from envstore.store.verify import verify_entry

__all__ = ["Pulled", "Wanted", "fetch_entry", "pull_entries"]

_META_LIMIT = 4 << 20  # bytes of metadata (a seal lists every pyc)


@dataclass(frozen=True)
class Wanted:
    """An entry asked for: made from the wheel ``wheel`` with this sha256, for ``abi``."""

    name: str  # the normalized project name
    wheel: str
    sha256: str
    abi: str  # PURE or the interpreter's SOABI


@dataclass
class Pulled:
    """A verified entry in ``tmp/``, read-only, to publish (or swap in) and then drop
    ``work``."""

    record: EntryRecord
    work: Path  # tmp/<pid>-pull-...: the archive and the unpacked entry
    entry: Path
    seal: dict[str, object]  # what it was checked against, with its new entry.json


def wanted_for(name: str, wheel: str, sha256: str, soabi: str) -> Wanted:
    """The entry a wheel would become for an interpreter of ``soabi``."""
    from envstore.store.wheel import parse_wheel_name

    tags = parse_wheel_name(wheel)[3]
    pure = all(t.abi == "none" and t.platform == "any" for t in tags)
    return Wanted(name, wheel, sha256, PURE if pure else soabi)


class _Hashing:
    """A file that hashes what is written to it."""

    def __init__(self, f: object) -> None:
        self.f = f
        self.h = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.h.update(data)
        self.size += len(data)
        return self.f.write(data)  # type: ignore[attr-defined,no-any-return]

    def seek(self, pos: int) -> int:  # a retried download starts over
        self.h, self.size = hashlib.sha256(), 0
        return self.f.seek(pos)  # type: ignore[attr-defined,no-any-return]

    def truncate(self) -> int:
        return self.f.truncate()  # type: ignore[attr-defined,no-any-return]


def _verified_meta(
    backend: Backend, trusted: Sequence[PublicKey], want: Wanted
) -> RemoteMeta | None:
    """The signed metadata of the newest layout the remote has for ``want``."""
    for layout in LAYOUTS:
        name = meta_name(want.sha256, want.abi, layout)
        text = backend.read(name, _META_LIMIT)
        if text is not None:
            return _checked_meta(backend, trusted, want, text, name, layout)
    return None


def _checked_meta(
    backend: Backend,
    trusted: Sequence[PublicKey],
    want: Wanted,
    text: bytes,
    name: str,
    layout: int,
) -> RemoteMeta:
    what = f"{backend.url}/{name}"
    try:
        signed, key_name, signature = parse_document(text)
    except ValueError as exc:
        raise RemoteError(f"{what} refused: {exc}") from None
    keys = [k for k in trusted if k.name == key_name]
    if not keys:
        raise RemoteError(f"{what} refused: signed by {key_name!r}, not a trusted key")
    if not any(k.verifies(signed_bytes(signed, layout), signature) for k in keys):
        raise RemoteError(f"{what} refused: its signature does not verify (key {key_name!r})")
    try:
        meta = RemoteMeta.from_json(signed, layout)
    except ValueError as exc:
        raise RemoteError(f"{what} refused: {exc}") from None
    if (meta.wheel_sha256, meta.wheel, meta.key.abi, meta.key.name) != (
        want.sha256,
        want.wheel,
        want.abi,
        want.name,
    ):
        raise RemoteError(f"{what} refused: it describes another wheel ({meta.wheel}, {meta.key})")
    return meta


def fetch_entry(
    store: Store,
    backend: Backend,
    trusted: Sequence[PublicKey],
    want: Wanted,
    *,
    again: bool,
) -> object:
    """The entry's key if the store has it now (unless ``again``: repair replaces it),
    a ``Pulled`` to publish, or None (a miss). RemoteError says why it was refused."""
    meta = _verified_meta(backend, trusted, want)
    if meta is None:
        return None
    if store.entry_path(meta.key).is_dir() and not again:
        return meta.key
    what = f"{backend.url}/{meta.archive}"
    work = store.mkdtemp(f"pull-{meta.key.name}")
    try:
        archive = work / "archive"
        with open(archive, "wb") as f:
            out = _Hashing(f)
            if not backend.download(meta.archive, out, meta.archive_size):  # type: ignore[arg-type]
                raise RemoteError(f"{what} is missing (its metadata names it)")
        if out.size != meta.archive_size or out.h.hexdigest() != meta.archive_sha256:
            raise RemoteError(f"{what} refused: it does not match its signed sha256 and size")
        entry = work / "entry"
        record, seal = _unpack_checked(store, meta, archive, entry, what, backend.url)
        return Pulled(record, work, entry, seal)
    except BaseException:
        rmtree(work)
        raise


def _unpack_checked(
    store: Store, meta: RemoteMeta, archive: Path, root: Path, what: str, origin: str
) -> tuple[EntryRecord, dict[str, object]]:
    """Unpack the downloaded, verified ``archive`` into ``root`` (a new directory) and
    check it as ``verify --check-contents`` would and against the signed seal; its record
    (its origin set) and seal. RemoteError says why it was refused.

    In the download threads, not worker processes: measured on big (2 cores), worker
    processes cost 0.4 s more CPU (starting, importing) for no shorter wall time; the
    heavy parts (zstd, hashing, os.write, file creation) release the GIL."""
    root.mkdir()
    try:
        unpacked = unpack_entry(archive, root, layout=meta.layout)
    except RemoteError as exc:
        raise RemoteError(f"{what} refused: {exc}") from None
    archive.unlink()
    record = _checked(store, meta, root, what, unpacked)
    record.origin = origin  # where repair finds it again (no credentials)
    _rewrite_record(root, record)
    return record, {**meta.seal, "entry.json": file_digest(root / "entry.json")}


def _rewrite_record(entry: Path, record: EntryRecord) -> None:
    """Replace the verified entry's ``entry.json`` (still in ``tmp/``) with ``record``."""
    os.chmod(entry, 0o755)
    tmp = entry / ".entry.json.new"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o444)
    with open(fd, "w") as f:
        f.write(record.dumps())
    os.replace(tmp, entry / "entry.json")
    os.chmod(entry, 0o555)


def _checked(
    store: Store, meta: RemoteMeta, entry: Path, what: str, unpacked: Unpacked
) -> EntryRecord:
    """The unpacked entry's record, once it is what the signed metadata says: every
    file against RECORD and the seal, by the digests taken as it was written."""
    try:
        record = read_entry_record(entry)
    except EnvstoreError:
        raise RemoteError(f"{what} refused: its entry.json is unreadable or invalid") from None
    problems = verify_entry(
        store, meta.key, check_contents=True, root=entry, sha256=unpacked.sha256
    )
    problems += check_entry(entry, meta.seal, unpacked.xxh3)
    if (record.key, record.sha256, record.wheel) != (str(meta.key), meta.wheel_sha256, meta.wheel):
        problems.append("entry.json describes another entry")
    markers = {p.name.removeprefix("compiled-") for p in entry.glob("compiled-*")}
    if markers != set(meta.cache_tags):
        problems.append("its bytecode markers are not the signed cache tags")
    if problems:
        raise RemoteError(f"{what} refused: {'; '.join(problems[:3])}")
    return record


def pull_entries(
    store: Store,
    backend: Backend,
    trusted: Sequence[PublicKey],
    wanted: Sequence[Wanted],
    warn: Callable[[str], None],
) -> dict[str, EntryKey]:
    """Each wanted entry the remote has and that verifies, published into ``store``:
    name -> key. Every refusal is one ``warn`` line naming the object; an unreachable
    remote is one line for the whole run. Call with the store's gc lock held (shared)."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from envstore.store.publish import publish_unpacked

    found: dict[str, EntryKey] = {}
    if not wanted:
        return found
    unreachable: list[str] = []

    def one(want: Wanted) -> object:
        if unreachable:
            return None
        try:
            return fetch_entry(store, backend, trusted, want, again=False)
        except RemoteUnreachable as exc:
            unreachable.append(str(exc))
        except RemoteError as exc:
            return exc
        return None

    results: list[object] = [None] * len(wanted)
    with ThreadPoolExecutor(max_workers=min(8, len(wanted))) as pool:
        futures = {pool.submit(one, want): i for i, want in enumerate(wanted)}
        try:  # each published as it comes, while the others are still unpacked
            for future in as_completed(futures):
                got = future.result()
                if isinstance(got, Pulled):
                    pulled, got = got, None
                    try:
                        publish_unpacked(store, pulled.record, pulled.entry, pulled.seal)
                        got = EntryKey.parse(pulled.record.key)
                    finally:
                        rmtree(pulled.work)
                results[futures[future]] = got
        except BaseException:
            for future in futures:
                future.cancel()
            for future in futures:  # what was verified but will not be published
                got = None if future.cancelled() else future.exception() or future.result()
                if isinstance(got, Pulled):
                    rmtree(got.work)
            raise
    for want, got in zip(wanted, results, strict=True):
        if isinstance(got, RemoteError):
            warn(f"{got}; using the wheel {want.wheel} instead")
        elif isinstance(got, EntryKey):
            found[want.name] = got
    if unreachable:
        warn(f"{unreachable[0]}; using wheels instead")
    return found
