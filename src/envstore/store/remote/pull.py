"""Entries from a remote cache: found by their wheel's sha256, verified, then published.

For each wanted wheel (its sha256 known: a lock, pip's report, a local wheel), in
parallel, one GET (remote layout 3): the head of the entry object is read and its
signed metadata checked against the trusted keys before anything else; the archive
that follows is downloaded, hashed as it is read and no further than the signed
size, into a temporary file (in memory while small, else an unnamed file in
``tmp/``), and its sha256 and size compared. Only then is it unpacked into a new
directory in ``tmp/`` (``archive.unpack_entry``: the pack's whole index checked
first; plain names, regular files and directories only) and the entry checked as
``verify --check-contents`` checks one (every file against RECORD, nothing else
but sealed bytecode, ``entry.json`` and markers) and against the signed seal.
Layouts 2 and 1 are read too: their metadata, then the archive it names. What
passes is published like an ingested entry, its ``entry.json`` saying the remote
is its ``origin`` (so ``verify --repair`` can fetch it again: ``fetch_entry``);
anything else is a warning naming the object, ``tmp/`` is cleaned, and the caller
uses the wheel instead. Nothing unverified is unpacked, and nothing unchecked
reaches ``entries/``.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from envstore.errors import RemoteError
from envstore.model.keys import PURE, EntryKey
from envstore.model.records import EntryRecord
from envstore.model.remote import (
    ENTRY_MAGIC,
    LAYOUTS,
    META_LIMIT,
    RemoteMeta,
    meta_name,
    parse_document,
    signed_bytes,
)
from envstore.store.fs import host_name, rmtree
from envstore.store.layout import Store
from envstore.store.remote.archive import unpack_entry
from envstore.store.remote.backends import Backend, RemoteUnreachable, Stream
from envstore.store.remote.keys import PublicKey
from envstore.store.remote.workers import in_processes, in_threads, processes_for
from envstore.store.remote.written import checked
from envstore.store.seal import file_digest

__all__ = ["Pulled", "Wanted", "fetch_entry", "pull_entries"]


_CHUNK = 1 << 20
_SPOOL = 4 << 20  # archive bytes kept in memory while downloading; beyond, a file in tmp/
_THREADS = 16  # parallel fetches (as boto3's max_pool_connections in s3.py, for pushes)
# Unpacking and checking (creating thousands of files: kernel work, on the cores) at
# most this many at once, while the other threads wait on the remote: on 2 cores, a
# file:// pull of big took 2.9 s with 16 unpacking at once, 2.4 s with 4.
_UNPACKING = threading.BoundedSemaphore(min(_THREADS, 2 * (os.cpu_count() or 1)))


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
    work: Path  # tmp/<pid>-pull-...: what to delete if it is not published
    entry: Path  # the unpacked entry (``work`` itself)
    seal: dict[str, object]  # what it was checked against, with its new entry.json


def wanted_for(name: str, wheel: str, sha256: str, soabi: str) -> Wanted:
    """The entry a wheel would become for an interpreter of ``soabi``."""
    from envstore.store.wheel import parse_wheel_name

    tags = parse_wheel_name(wheel)[3]
    pure = all(t.abi == "none" and t.platform == "any" for t in tags)
    return Wanted(name, wheel, sha256, PURE if pure else soabi)


class _Hashing:
    """The archive part of a stream, read no further than its signed size and hashed as
    it is read."""

    def __init__(self, stream: Stream, size: int) -> None:
        self.stream, self.left = stream, size
        self.h = hashlib.sha256()
        self.size = 0

    def read(self, n: int) -> bytes:
        if self.left <= 0:
            return b""
        data = self.stream.read(min(n, self.left))
        self.h.update(data)
        self.size += len(data)
        self.left -= len(data)
        return data


def _read(stream: Stream, size: int) -> bytes:
    """Up to ``size`` bytes of ``stream``: fewer only at its end (a read may return
    what has arrived so far)."""
    parts, left = [], size
    while left and (chunk := stream.read(left)):
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _read_head(stream: Stream, what: str) -> bytes:
    """The signed metadata document at the head of a layout 3 entry object."""
    head = _read(stream, len(ENTRY_MAGIC) + 8)
    if len(head) != len(ENTRY_MAGIC) + 8 or not head.startswith(ENTRY_MAGIC):
        raise RemoteError(f"{what} refused: not an envstore entry object (layout 3)")
    length = int.from_bytes(head[len(ENTRY_MAGIC) :], "big")
    if length > META_LIMIT:
        raise RemoteError(f"{what} refused: its metadata is larger than {META_LIMIT} bytes")
    document = _read(stream, length)
    if len(document) != length:
        raise RemoteError(f"{what} refused: it ends inside its metadata")
    return document


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
    a ``Pulled`` to publish, or None (a miss). RemoteError says why it was refused.

    Layout 3: one GET, the signature checked on the head before the archive is read.
    Layouts 2 and 1: the metadata, then the archive it names."""
    for layout in LAYOUTS:
        name = meta_name(want.sha256, want.abi, layout)
        what = f"{backend.url}/{name}"
        if layout >= 3:
            stream = backend.open(name)
            if stream is None:
                continue
            with stream:
                meta = _checked_meta(backend, trusted, want, _read_head(stream, what), name, 3)
                if store.entry_path(meta.key).is_dir() and not again:
                    return meta.key
                return _unpack_checked(store, meta, stream, what, backend.url)
        text = backend.read(name, META_LIMIT)
        if text is None:
            continue
        meta = _checked_meta(backend, trusted, want, text, name, layout)
        if store.entry_path(meta.key).is_dir() and not again:
            return meta.key
        assert meta.archive is not None  # layouts 1 and 2 name their archive
        what = f"{backend.url}/{meta.archive}"
        stream = backend.open(meta.archive)
        if stream is None:
            raise RemoteError(f"{what} is missing (its metadata names it)")
        with stream:
            return _unpack_checked(store, meta, stream, what, backend.url)
    return None


def _download(store: Store, meta: RemoteMeta, stream: Stream, what: str) -> BinaryIO:
    """The archive read from ``stream`` (no further than its signed size) into a
    temporary file, once its sha256 and size match the signed metadata: in memory up to
    ``_SPOOL``, beyond it an unnamed file in ``tmp/`` (bounded by the signed size).
    Nothing is unpacked before that. RemoteError says why it was refused."""
    import tempfile

    body = _Hashing(stream, meta.archive_size)
    spool = tempfile.SpooledTemporaryFile(_SPOOL, dir=str(store.tmp_dir))  # noqa: SIM115
    try:
        while chunk := body.read(_CHUNK):
            spool.write(chunk)
        if body.size != meta.archive_size or body.h.hexdigest() != meta.archive_sha256:
            raise RemoteError(f"{what} refused: it does not match its signed sha256 and size")
        if stream.read(1):
            raise RemoteError(f"{what} refused: it has bytes after its signed size")
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool  # type: ignore[return-value]


def _unpack_checked(
    store: Store, meta: RemoteMeta, stream: Stream, what: str, origin: str
) -> Pulled:
    """Download the archive from ``stream`` and check its sha256 and size against the
    signed metadata (``_download``), then unpack it into a new directory in ``tmp/``
    and check the entry as ``verify --check-contents`` would, and against the signed
    seal: a ``Pulled`` (its origin set). RemoteError says why it was refused (nothing
    is left then).

    Runs in a download thread, of this process or of a forked worker (``workers``)."""
    with _download(store, meta, stream, what) as archive, _UNPACKING:
        # The new directory is the entry itself: publishing renames it away, leaving no
        # directory to remove (an rmdir per entry cost a pull of big 0.5 s, serialized).
        root = work = store.mkdtemp(f"pull-{meta.key.name}")
        try:
            try:
                unpacked = unpack_entry(archive, root, layout=meta.layout)
            except RemoteError as exc:
                raise RemoteError(f"{what} refused: {exc}") from None
            record = checked(meta, root, what, unpacked)
            record.origin = origin  # where repair finds it again (no credentials)
            _rewrite_record(root, record)
            return Pulled(
                record, work, root, {**meta.seal, "entry.json": file_digest(root / "entry.json")}
            )
        except BaseException:
            rmtree(work)
            raise


def _rewrite_record(entry: Path, record: EntryRecord) -> None:
    """Replace the verified entry's ``entry.json`` (still in ``tmp/``) with ``record``."""
    os.chmod(entry, 0o755)
    tmp = entry / ".entry.json.new"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o444)
    with open(fd, "w") as f:
        f.write(record.dumps())
    os.replace(tmp, entry / "entry.json")
    os.chmod(entry, 0o555)


def _nothing() -> None:
    pass


def _discard(result: object) -> None:
    """A fetched entry that will not be published (the pull stopped): deleted."""
    if isinstance(result, Pulled):
        rmtree(result.work)


def _left_by(store: Store, pid: int) -> None:
    """What a finished worker process left in ``tmp/`` (``tmp/<host>@<pid>-...``):
    what it sent was taken (published, or deleted) already; the rest (a pull that
    stopped early, a worker killed) is abandoned."""
    prefix = f"{host_name()}@{pid}-"
    for name in os.listdir(store.tmp_dir):
        if name.startswith(prefix):
            rmtree(store.tmp_dir / name)


def _in_child(backend: Backend, processes: int) -> None:
    """A forked worker's share of the unpacking slots, and its own remote client."""
    global _UNPACKING
    _UNPACKING = threading.BoundedSemaphore(max(1, 2 * len(os.sched_getaffinity(0)) // processes))
    getattr(backend, "forked", _nothing)()


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
    from envstore.store.publish import index_unpacked, publish_unpacked

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
            return exc
        except RemoteError as exc:
            return exc
        except Exception as exc:  # a bug's or a library's surprise: still one object's
            name = meta_name(want.sha256, want.abi)
            return RemoteError(f"{backend.url}/{name} refused: {type(exc).__name__}")

    results: list[object] = [None] * len(wanted)
    published: list[tuple[EntryRecord, dict[str, object] | None]] = []
    # Most of a fetch waits on the remote (a request's latency, ~30 ms from an object
    # store) or the disk: more threads than cores, as many as the S3 client's pool;
    # in a few processes when it can (``workers``).
    processes = processes_for(len(wanted))
    if processes:
        getattr(backend, "before_fork", _nothing)()
        processes = processes_for(len(wanted))  # still no other thread: else threads
    if processes:
        threads = min(_THREADS // processes, -(-len(wanted) // processes))
        done = in_processes(
            wanted,
            one,
            processes,
            threads,
            lambda: _in_child(backend, processes),
            lambda pid: _left_by(store, pid),
        )
    else:
        done = in_threads(wanted, one, _THREADS, _discard)
    answered: set[int] = set()
    try:  # each published as it comes, while the others are still unpacked
        try:
            first = next(done)
        except StopIteration:
            first = None
        except OSError as exc:  # not a process could be forked: threads, as without
            warn(f"cannot start worker processes ({exc.strerror}); pulling in threads")
            done = in_threads(wanted, one, _THREADS, _discard)
            first = next(done, None)
        for i, got in itertools.chain([first] if first else [], done):
            answered.add(i)
            if isinstance(got, RemoteUnreachable):
                unreachable[:] = unreachable or [str(got)]
                continue
            if isinstance(got, Pulled):
                pulled, got = got, None
                try:
                    seal = publish_unpacked(store, pulled.record, pulled.entry, pulled.seal)
                    published.append((pulled.record, seal))
                    got = EntryKey.parse(pulled.record.key)
                finally:
                    rmtree(pulled.work)
            results[i] = got
    except BaseException:
        index_unpacked(store, published)  # what is in place is indexed all the same
        raise
    finally:
        done.close()  # what was verified but will not be published is deleted
    index_unpacked(store, published)  # one transaction, not one per entry
    if len(answered) < len(wanted) and not unreachable:  # a worker process died
        lost = len(wanted) - len(answered)
        warn(f"a worker process stopped: {lost} of {len(wanted)} entries from wheels instead")
    for want, got in zip(wanted, results, strict=True):
        if isinstance(got, RemoteError):
            warn(f"{got}; using the wheel {want.wheel} instead")
        elif isinstance(got, EntryKey):
            found[want.name] = got
    if unreachable:
        warn(f"{unreachable[0]}; using wheels instead")
    return found
