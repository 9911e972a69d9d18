"""Turning wheels into store entries: validate, unpack, compile, publish.

An entry is filled in ``tmp/``, compiled with the target interpreter, made
read-only and renamed into place. If the name already exists another process
won the race, and our copy is dropped. A crash leaves only a temp directory,
which gc removes.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from envstore._crash import crash_point
from envstore.errors import (
    BadWheelError,
    IncompatibleWheelError,
    writing,
)
from envstore.model.interpreter import Interpreter
from envstore.model.keys import PURE, EntryKey
from envstore.model.records import EntryRecord
from envstore.model.wheel import WheelInfo
from envstore.python.tags import supported_tags
from envstore.store.bytecode import Compiler
from envstore.store.fs import rmtree
from envstore.store.hashing import hash_file, sha256_file
from envstore.store.layout import Store
from envstore.store.publish import Pending, ensure_compiled, index_entries, publish
from envstore.store.wheel import parse_wheel_name, validate_wheel

__all__ = [
    "hash_file",
    "ingest_wheels",
    "sha256_file",
    "supported_tags",
]

Progress = Callable[[str], None]


def unpack_wheel(
    info: WheelInfo, dest: Path, on_py: Callable[[str], None] | None = None
) -> tuple[int, int]:
    """Unpack ``info``'s wheel into ``dest``; return the files written and their bytes.

    Each member's RECORD hash is checked as it is written (``validate_wheel(...,
    contents=False)`` left that here, so each member is inflated once); every
    mismatch is reported together, and the caller drops ``dest``. Files are created
    read-only. ``on_py`` gets each ``.py`` file of ``site/`` once written (to compile
    it while the rest is unpacked).
    """
    import hashlib
    import zipfile
    import zlib

    from installer import install
    from installer.destinations import SchemeDictionaryDestination
    from installer.records import Hash, RecordEntry
    from installer.sources import WheelFile

    skipped = set(info.skipped)
    mismatched: list[str] = []
    made: set[str] = set()
    totals = [0, 0]  # files, bytes

    class _Member:
        """A member's stream with the hash its RECORD row promises."""

        def __init__(self, name: str, stream: Any, hash_: str) -> None:
            self.name = name
            self.read = stream.read
            self.algo, _, digest = hash_.partition("=")
            self.digest = digest.rstrip("=")

    class _Source(WheelFile):
        def get_contents(self) -> Iterator[Any]:
            for record, stream, is_executable in super().get_contents():
                if record[0] not in skipped:
                    yield record, _Member(record[0], stream, record[1]), is_executable

    class _Destination(SchemeDictionaryDestination):
        def write_to_fs(self, scheme: Any, path: str, stream: Any, is_executable: bool) -> Any:
            # validate_wheel refused absolute, "..", backslashed and duplicate names.
            target = f"{self.scheme_dict[scheme]}/{path}"
            parent = target.rpartition("/")[0]
            if parent not in made:
                os.makedirs(parent, exist_ok=True)
                made.add(parent)
            # Members carry their RECORD hash; RECORD and INSTALLER (ours) do not.
            checked = stream if isinstance(stream, _Member) and stream.digest else None
            algo = checked.algo if checked else self.hash_algorithm
            h = hashlib.new(algo)
            size = 0
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
            with open(os.open(target, flags, 0o555 if is_executable else 0o444), "wb") as f:
                while chunk := stream.read(1 << 20):
                    h.update(chunk)
                    f.write(chunk)
                    size += len(chunk)
            digest = base64.urlsafe_b64encode(h.digest()).decode().rstrip("=")
            if checked and digest != checked.digest:
                mismatched.append(f"RECORD hash of {checked.name} does not match its contents")
            totals[0] += 1
            totals[1] += size
            return RecordEntry(path, Hash(algo, digest), size)

        # Scripts are kept verbatim; each env rewrites shebangs for its own python.
        def write_file(self, scheme: Any, path: Any, stream: Any, is_executable: bool) -> Any:
            record = self.write_to_fs(scheme, os.fspath(path), stream, is_executable)
            if on_py is not None and scheme in ("purelib", "platlib") and path.endswith(".py"):
                on_py(os.path.join(site, path))
            return record

        # Entry-point scripts are generated per env, from entry.json.
        def write_script(self, name: str, module: str, attr: str, section: str) -> Any:
            return RecordEntry(name, None, None)

        def finalize_installation(self, scheme: Any, record_file_path: str, records: Any) -> None:
            kept = [(s, r) for s, r in records if s != "scripts" or r.hash_ is not None]
            super().finalize_installation(scheme, record_file_path, kept)

    site = dest / "site"
    data = dest / "data"
    destination = _Destination(
        scheme_dict={
            "purelib": str(site),
            "platlib": str(site),
            "scripts": str(data / "scripts"),
            "data": str(data / "data"),
            "headers": str(data / "headers"),
        },
        interpreter="python",
        script_kind="posix",
    )
    site.mkdir(parents=True)
    made.add(str(site))
    try:
        with WheelFile.open(info.path) as source:
            install(_Source(source._zipfile), destination, {"INSTALLER": b"envstore\n"})
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise BadWheelError(info.path.name, [f"a member cannot be inflated: {exc}"]) from None
    if mismatched:
        raise BadWheelError(info.path.name, mismatched)
    return totals[0], totals[1]


def describe_entry(
    info: WheelInfo,
    key: EntryKey,
    dest: Path,
    files: int,
    size: int,
    fetched: tuple[str, str | None] | None = None,
) -> EntryRecord:
    """entry.json: ``files`` and ``size`` are what the wheel unpacked to (bytecode,
    which compile workers may still be writing, is not counted); ``fetched``, the URL
    the wheel was downloaded from and the index it was found on (for locks)."""
    site = dest / "site"
    return EntryRecord(
        key=str(key),
        name=key.name,
        version=key.version,
        hash=f"xxh3_128:{key.hash}",
        abi=key.abi,
        wheel=info.path.name,
        # Locks name wheels by sha256 (pip's --require-hashes); entries are keyed by
        # the faster xxh3, so the sha256 is recorded once here.
        sha256=sha256_file(info.path),
        origin=str(info.path),
        url=fetched[0] if fetched else None,
        index=fetched[1] if fetched else None,
        tags=sorted(str(t) for t in info.tags),
        dist_info=info.dist_info,
        requires=list(info.requires),
        extras=list(info.extras),
        entry_points=[[e.name, e.module, e.attr, e.section] for e in info.entry_points],
        data=sorted(p.name for p in (dest / "data").iterdir()) if (dest / "data").is_dir() else [],
        pth=sorted(p.name for p in site.iterdir() if p.name.endswith(".pth")),
        files=files,
        size=size,
        added=time.time(),
    )


def _unpack_one(
    store: Store,
    key: EntryKey,
    wheel: Path,
    compiler: Compiler,
    progress: Progress | None,
    made: list[Path],
    fetched: tuple[str, str | None] | None = None,
) -> Pending:
    if progress:
        progress(f"unpacking {wheel.name}")
    info = validate_wheel(wheel, contents=False)  # unpack_wheel checks the hashes
    tmp = store.mkdtemp(f"entry-{key.name}")
    made.append(tmp)  # removed by the caller on failure, once the compiler is stopped
    with writing(f"{wheel.name} into the store ({tmp})"):
        files, size = unpack_wheel(info, tmp, compiler.submit_file)
    return Pending(key, tmp, describe_entry(info, key, tmp, files, size, fetched))


def _unpack_all(
    store: Store,
    todo: dict[EntryKey, Path],
    compiler: Compiler,
    progress: Progress | None,
    urls: Mapping[Path, tuple[str, str | None]],
) -> list[Pending]:
    """Validate and unpack each wheel into ``tmp/``, one per core at a time: creating a
    file waits ~0.1-0.8 ms on a VM disk, and those waits (and zlib, and the hashes)
    overlap in threads (numpy+pandas+scipy: 13 s -> 7 s here). Each ``.py`` file goes
    to the compiler as soon as it is written. The first failing wheel, in the given
    order, is raised once every thread is done."""
    from concurrent.futures import CancelledError, ThreadPoolExecutor, as_completed

    done: list[Pending] = []
    made: list[Path] = []
    errors: dict[EntryKey, BaseException] = {}
    # A thread per core: more only queue on the GIL (installer is Python, file by file).
    threads = max(1, min(8, os.cpu_count() or 1, len(todo)))
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = {
            pool.submit(_unpack_one, store, k, w, compiler, progress, made, urls.get(w)): k
            for k, w in todo.items()
        }
        for future in as_completed(futures):
            try:
                p = future.result()
            except CancelledError:  # not started: an earlier wheel failed
                continue
            except BaseException as exc:  # the first in order is raised below
                errors[futures[future]] = exc
                for f in futures:
                    f.cancel()
                continue
            done.append(p)
    if errors:
        compiler.stop()  # its workers may still be writing into these directories
        for tmp in made:
            rmtree(tmp)
        raise next(errors[k] for k in todo if k in errors)
    order = {k: i for i, k in enumerate(todo)}
    return sorted(done, key=lambda p: order[p.key])


def ingest_wheels(
    store: Store,
    wheels: Iterable[Path],
    interp: Interpreter,
    progress: Progress | None = None,
    urls: Mapping[Path, tuple[str, str | None]] | None = None,
) -> dict[Path, EntryKey]:
    """Make sure each wheel is an entry usable by ``interp``; return their keys.
    ``urls``: for a wheel pip downloaded, the URL and the index it came from, recorded
    in a new entry's ``entry.json`` (an entry that exists already keeps its record).

    Call with the store's gc lock held (shared), so nothing is collected
    between publishing and referencing.
    """
    tags = supported_tags(interp)
    keys: dict[Path, EntryKey] = {}
    todo: dict[EntryKey, Path] = {}
    for wheel in wheels:
        name, version, _, wheel_tags = parse_wheel_name(wheel.name)
        if not wheel_tags & tags:
            raise IncompatibleWheelError(
                f"{wheel.name} does not fit {interp.path} (Python {interp.version},"
                f" {interp.abi_tag}, {interp.platform})"
            )
        pure = all(t.abi == "none" and t.platform == "any" for t in wheel_tags)
        key = EntryKey(PURE if pure else interp.soabi, name, str(version), hash_file(wheel))
        keys[wheel] = key
        if not store.entry_dir(key).is_dir():  # here or in an upstream: used in place
            todo.setdefault(key, wheel)
    pending: list[Pending] = []
    compiler = Compiler(interp)  # compiles each module as soon as it is unpacked
    try:
        pending = _unpack_all(store, todo, compiler, progress, urls or {})
        if pending:
            if progress:
                progress(f"compiling bytecode for {len(pending)} new entries")
            compiler.wait()
            for p in pending:
                with writing(f"{p.tmp / 'entry.json'} (for {p.record.wheel})"):
                    (p.tmp / f"compiled-{interp.cache_tag}").touch()
                    (p.tmp / "entry.json").write_text(p.record.dumps())
            crash_point("ingest-unpacked")
            for p in pending:
                publish(store, p)
            crash_point("ingest-published")
            index_entries(store, [p.record.to_json() for p in pending])
    finally:
        compiler.stop()  # after an error: no worker may outlive its temp dirs
        for p in pending:
            if p.tmp.exists():
                rmtree(p.tmp)
    store.check_not_damaged(list(keys.values()))
    ensure_compiled(store, keys.values(), interp)
    return keys
