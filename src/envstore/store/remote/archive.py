"""An entry as one archive, and its safe unpacking.

Remote layout 2 (``v2/archives/<sha256>.pack.zst``) is an envstore pack: one zstd
frame holding a magic line, the length and JSON of a member index (name, kind,
size of every directory and file, in a fixed order), then the files' bytes in
that order. The index comes first, so the whole archive is checked before a
byte is written, and unpacking is a loop of plain writes: no per-member header
to parse. Layout 1 archives (``v1/archives/<sha256>.tar.gz``, a gzip-compressed
tar, as older envstores pushed them) are still read, never written.

Packing takes what an entry is (``entry.json``, its ``compiled-<tag>`` markers,
``site/`` and ``data/`` with their bytecode), never a program's run-time cache
files (``FOREIGN_CACHE``). Members are sorted, so the same entry packs to the
same bytes.

Unpacking trusts nothing in the archive, even once its hash matched signed
metadata (the signer may be careless): only regular files and directories, every
name a relative path of plain components under those top-level names, no
duplicates, bounded sizes; files are created ``O_EXCL`` and read-only in a fresh
directory, so nothing can be written through a link or outside it. Each file is
hashed as it is written (``Unpacked``), so checking it against RECORD and the
seal reads nothing again.
"""

from __future__ import annotations

import hashlib
import json
import os
from base64 import urlsafe_b64encode
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import BinaryIO

from xxhash import xxh3_128_hexdigest

from envstore.errors import RemoteError
from envstore.model.keys import plain_name
from envstore.store.seal import FOREIGN_CACHE

__all__ = ["MAX_UNPACKED", "MAX_WINDOW", "Unpacked", "pack_entry", "pack_members", "unpack_entry"]

MAX_UNPACKED = 8 << 30  # bytes an archive may unpack to
MAX_MEMBERS = 500_000
_MAX_INDEX = 64 << 20  # bytes of a pack's member index
# What a pack's zstd frame may ask the decompressor to keep: packs are written at level
# 3 (a 2 MiB window, zstd's windowLog 21 for inputs of unknown size); 4x that as margin.
MAX_WINDOW = 8 << 20
_MAGIC = b"envstore-pack 2\n"
_TOPS = ("site", "data")
_CHUNK = 1 << 20
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
DIR, FILE, EXEC = "d", "f", "x"  # member kinds of a pack's index


def _members(root: Path) -> list[tuple[str, str, int]]:
    """(archive name, kind, size) of everything an entry is, in a fixed order."""
    found: list[tuple[str, str, int]] = []

    def add(rel: str) -> None:
        st = os.lstat(os.path.join(root, rel))
        if not os.path.isfile(os.path.join(root, rel)) or os.path.islink(root / rel):
            raise RemoteError(f"{root / rel} is not a regular file; not packing the entry")
        found.append((rel, EXEC if st.st_mode & 0o111 else FILE, st.st_size))

    add("entry.json")
    for p in sorted(root.glob("compiled-*")):
        add(p.name)
    for top in _TOPS:
        base = root / top
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            rel = os.path.relpath(dirpath, root)
            found.append((rel, DIR, 0))
            for name in sorted(filenames):
                if name.endswith(FOREIGN_CACHE) and os.path.basename(dirpath) == "__pycache__":
                    continue  # a program's run-time cache: not part of the entry
                add(f"{rel}/{name}")
            for name in dirnames:
                if os.path.islink(os.path.join(dirpath, name)):
                    raise RemoteError(f"{dirpath}/{name} is a symbolic link; not packing it")
    return found


def pack_members(members: Iterable[tuple[str, str, int, Iterable[bytes]]], dest: Path) -> None:
    """Write a pack of ``(name, kind, size, chunks)`` at ``dest`` (a directory's chunks
    are empty). The building block of ``pack_entry``, and of tests' odd archives."""
    import zstandard

    members = list(members)
    index = json.dumps([[n, k, s] for n, k, s, _ in members], separators=(",", ":")).encode()
    with open(dest, "wb") as raw:
        with zstandard.ZstdCompressor(level=3).stream_writer(raw, closefd=False) as out:
            out.write(_MAGIC + len(index).to_bytes(8, "big") + index)
            for name, _kind, size, chunks in members:
                written = 0
                for chunk in chunks:
                    written += len(chunk)
                    out.write(chunk)
                if written != size:
                    raise RemoteError(f"{name} changed while it was packed")


def _chunks(path: str) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            yield chunk


def pack_entry(root: Path, dest: Path) -> None:
    """Write the entry at ``root`` as a pack at ``dest``."""
    pack_members(
        (
            (n, k, s, () if k == DIR else _chunks(os.path.join(root, n)))
            for n, k, s in _members(root)
        ),
        dest,
    )


_plain = lru_cache(maxsize=1 << 16)(plain_name)  # an entry repeats its directory names


def check_name(name: str) -> str | None:
    """Why ``name`` may not be unpacked, or None."""
    if not name or name.startswith("/") or "\\" in name or len(name) > 4096:
        return "not a relative path"
    parts = name.split("/")
    if not all(map(_plain, parts)) or len(parts) > 64:
        return "not a path of plain names"
    top_file = name == "entry.json" or name.startswith("compiled-")
    if len(parts) == 1 and not top_file and name not in _TOPS:
        return "not a file of an entry"
    if len(parts) > 1 and parts[0] not in _TOPS:
        return "not under site/ or data/"
    return None


@dataclass
class Unpacked:
    """What was written, hashed as it was written: a file's size, its sha256 as RECORD
    spells it (not for bytecode, which RECORD does not list) and its xxh3-128 as a
    seal spells it, by name relative to the entry."""

    sizes: dict[str, int] = field(default_factory=dict)
    sha256: dict[str, str] = field(default_factory=dict)
    xxh3: dict[str, str] = field(default_factory=dict)


class Writer:
    """Writes checked members into the empty directory ``dest``, hashing files as they
    are written; every refusal is collected (``problems``) and nothing more is written
    once there is one."""

    def __init__(self, dest: Path) -> None:
        self.dest = str(dest)
        self.problems: list[str] = []
        self.seen: set[str] = set()
        self.files: set[str] = set()
        self.dirs: set[str] = {""}
        self.total = 0
        self.out = Unpacked()

    def check(self, name: str, is_dir: bool, size: int) -> bool:
        """Whether the member may be written; a refusal goes into ``problems``."""
        why = check_name(name)
        if why is None and name in self.seen:
            why = "a duplicate member"
        if why is None and "/" not in name and is_dir != (name in _TOPS):
            why = "a directory where a file belongs or the reverse"
        if why is None and self.files and self._under_a_file(name):
            why = "under a file"
        self.total += size
        if self.total > MAX_UNPACKED or len(self.seen) >= MAX_MEMBERS:
            self.problems.append(f"unpacks to more than {MAX_UNPACKED} bytes or members")
            raise _TooBig
        if why is not None:
            self.problems.append(f"{name!r}: {why}")
            return False
        self.seen.add(name)
        if not is_dir:
            self.files.add(name)
        return True

    def _under_a_file(self, name: str) -> bool:
        while "/" in name:
            name = name.rpartition("/")[0]
            if name in self.files:
                return True
        return False

    def _parent(self, name: str) -> None:
        parent = name.rpartition("/")[0]
        if parent not in self.dirs:  # once per directory
            self._parent(parent)
            self.mkdir(parent)

    def mkdir(self, name: str) -> None:
        if name not in self.dirs:
            self._parent(name)
            os.mkdir(os.path.join(self.dest, name), 0o755)
            self.dirs.add(name)

    def data(self, name: str, executable: bool, data: bytes) -> None:
        """Write a checked file held whole in ``data`` (most of an entry's files are
        small: one write and one-shot hashes, ~15% less CPU for a pull of ``big``)."""
        self._parent(name)
        fd = os.open(f"{self.dest}/{name}", _NEW_FILE, 0o555 if executable else 0o444)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        self.out.sizes[name] = len(data)
        self.out.xxh3[name] = xxh3_128_hexdigest(data)
        if not name.endswith(".pyc"):
            digest = hashlib.sha256(data).digest()
            self.out.sha256[name] = urlsafe_b64encode(digest).rstrip(b"=").decode()

    def file(self, name: str, executable: bool, chunks: Iterable[bytes]) -> None:
        """Write a checked file from ``chunks``."""
        import xxhash

        self._parent(name)
        fd = os.open(os.path.join(self.dest, name), _NEW_FILE, 0o555 if executable else 0o444)
        pyc = name.endswith(".pyc")
        sha = None if pyc else hashlib.sha256()
        xxh, size = xxhash.xxh3_128(), 0
        try:
            for chunk in chunks:
                size += len(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
                xxh.update(chunk)
                if sha is not None:
                    sha.update(chunk)
        finally:
            os.close(fd)
        self.out.sizes[name] = size
        self.out.xxh3[name] = xxh.hexdigest()
        if sha is not None:
            self.out.sha256[name] = urlsafe_b64encode(sha.digest()).rstrip(b"=").decode()

    def seal(self) -> None:
        """Directories read-only, deepest first (files were created so)."""
        for name in sorted(self.dirs - {""}, key=lambda n: -n.count("/")):
            os.chmod(os.path.join(self.dest, name), 0o555)


class _TooBig(Exception):
    """The archive unpacks to more than the bounds: stop reading it."""


def _read_whole(source: BinaryIO, size: int) -> bytes:
    data = source.read(size)
    if len(data) < size:  # a read may return less than asked: the rest, or the end
        data += b"".join(_read_exactly(source, size - len(data)))
    return data


def _read_exactly(source: BinaryIO, size: int) -> Iterator[bytes]:
    left = size
    while left:
        chunk = source.read(min(left, _CHUNK))
        if not chunk:
            raise EOFError("the archive ends inside a member")
        left -= len(chunk)
        yield chunk


def _index(source: BinaryIO) -> list[tuple[str, str, int]]:
    head = source.read(len(_MAGIC) + 8)
    if len(head) != len(_MAGIC) + 8 or not head.startswith(_MAGIC):
        raise RemoteError("not an envstore pack (layout 2)")
    length = int.from_bytes(head[len(_MAGIC) :], "big")
    if length > _MAX_INDEX:
        raise RemoteError(f"its member index is larger than {_MAX_INDEX} bytes")
    raw = b"".join(_read_exactly(source, length))
    # Bounded before it is parsed whole: a member is one list of three values (one
    # "[" and three ","s), so these bound what json.loads may build.
    if raw.count(b"[") + raw.count(b"{") > MAX_MEMBERS + 1 or raw.count(b",") > 3 * MAX_MEMBERS:
        raise RemoteError(f"its member index lists more than {MAX_MEMBERS} members")
    try:
        index = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise RemoteError("its member index is not JSON") from None
    ok = isinstance(index, list) and all(
        isinstance(m, list)
        and len(m) == 3
        and isinstance(m[0], str)
        and m[1] in (DIR, FILE, EXEC)
        and type(m[2]) is int
        and m[2] >= 0
        and (m[1] != DIR or m[2] == 0)
        for m in index
    )
    if not ok:
        raise RemoteError("its member index is not a list of [name, kind, size]")
    return [(m[0], m[1], m[2]) for m in index]


def _unpack_pack(raw: BinaryIO, writer: Writer) -> None:
    import zstandard

    with zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW).stream_reader(
        raw, read_size=_CHUNK, read_across_frames=True, closefd=False
    ) as source:
        index = _index(source)
        for name, kind, size in index:  # every member checked before one is written
            writer.check(name, kind == DIR, size)
        if writer.problems:
            return
        for name, kind, size in index:
            if kind == DIR:
                writer.mkdir(name)
            elif size <= _CHUNK:
                writer.data(name, kind == EXEC, _read_whole(source, size))
            else:
                writer.file(name, kind == EXEC, _read_exactly(source, size))
        if source.read(1):
            writer.problems.append("it has bytes after its last member")


def _unpack_tar(raw: BinaryIO, writer: Writer) -> None:
    """Layout 1: feed the members of a tar.gz to ``writer``, each checked first."""
    import tarfile

    with tarfile.open(fileobj=raw, mode="r|gz") as tar:
        for member in tar:
            name = member.name.rstrip("/") if member.isdir() else member.name
            if not (member.isreg() or member.isdir()):
                writer.problems.append(f"{name!r}: not a regular file or directory")
                continue
            if not writer.check(name, member.isdir(), member.size) or writer.problems:
                continue
            if member.isdir():
                writer.mkdir(name)
                continue
            source = tar.extractfile(member)
            assert source is not None  # a regular file
            with source:
                writer.file(
                    name, bool(member.mode & 0o111), iter(partial(source.read, _CHUNK), b"")
                )


def unpack_entry(archive: Path | BinaryIO, dest: Path, *, layout: int = 2) -> Unpacked:
    """Unpack ``archive`` (a file of remote layout ``layout``, downloaded and its
    sha256 checked) into the empty directory ``dest`` and make it read-only; what was
    written, hashed. RemoteError naming every refused member (``dest`` is then the
    caller's to delete)."""
    if isinstance(archive, Path):
        with open(archive, "rb") as f:
            return unpack_entry(f, dest, layout=layout)
    import zlib

    import zstandard

    writer = Writer(dest)
    try:
        if layout == 1:
            _unpack_tar(archive, writer)
        else:
            _unpack_pack(archive, writer)
    except _TooBig:
        pass
    except RemoteError as exc:
        writer.problems.append(str(exc))
    except (EOFError, zlib.error, zstandard.ZstdError, OSError) as exc:
        writer.problems.append(f"cannot be unpacked ({exc})")
    except Exception as exc:  # tarfile's own errors (layout 1)
        if type(exc).__module__ != "tarfile":
            raise
        writer.problems.append(f"cannot be unpacked ({exc})")
    if writer.problems:
        raise RemoteError("; ".join(writer.problems[:5]))
    writer.seal()
    os.chmod(dest, 0o555)
    return writer.out
