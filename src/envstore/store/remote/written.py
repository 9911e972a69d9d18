"""Checking an entry just pulled from a remote, from what its writer wrote.

``verify --check-contents`` walks an entry's tree and reads its files; an entry
pulled from a remote was written a moment ago by ``archive.Writer`` into a
directory it made in ``tmp/``, every file created new (``O_EXCL``, no link
followed) and hashed as it was written, the directories its own. So the writer's
list is the tree: the same checks are made against it, with no walk and no read
(two walks of ``big``'s 15,500 files were ~8% of a pull). What no walk is needed
for holds by construction: there are no links, and files and directories are
read-only (``unpack_entry`` seals them).
"""

from __future__ import annotations

from pathlib import Path

from envstore.errors import EnvstoreError, RemoteError, StoreError
from envstore.model.records import EntryRecord
from envstore.model.remote import RemoteMeta
from envstore.store.layout import read_entry_record
from envstore.store.remote.archive import Unpacked
from envstore.store.seal import FOREIGN_CACHE, check_entry
from envstore.store.verify import hash_ok, record_files

__all__ = ["check_written", "checked", "markers"]


def check_written(root: Path, unpacked: Unpacked, seal: dict[str, object]) -> list[str]:
    """What ``verify --check-contents`` and the seal check would find wrong with the
    entry at ``root``, whose files are exactly ``unpacked``'s."""
    try:
        listed, problems = record_files(root)
    except StoreError as exc:
        return [str(exc)]
    expected = {"entry.json"}
    for rel, row in listed:
        expected.add(rel)
        if row[1] == "":
            continue  # RECORD itself
        size = unpacked.sizes.get(rel)
        if size is None:
            problems.append(f"missing file {rel}")
        elif row[2] and not (row[2].isdigit() and int(row[2]) == size):
            problems.append(f"{rel} has {size} bytes, RECORD says {row[2]}")
        elif row[1] and not hash_ok(f"{root}/{rel}", row[1], unpacked.sha256.get(rel)):
            problems.append(f"{rel} does not match its RECORD hash")
    for rel in unpacked.sizes:
        if rel in expected:
            continue
        reldir, _, name = rel.rpartition("/")
        in_pycache = reldir.rpartition("/")[2] == "__pycache__"
        if (in_pycache and name.endswith((".pyc", *FOREIGN_CACHE))) or (
            not reldir and name.startswith("compiled-")
        ):
            continue  # bytecode (sealed), a run-time cache (as verify: not damage), a marker
        problems.append(f"unexpected file {rel}")
    return problems + check_entry(root, seal, unpacked.xxh3, files=unpacked.sizes)


def markers(unpacked: Unpacked) -> set[str]:
    """The cache tags of the entry's ``compiled-<tag>`` markers."""
    return {n.removeprefix("compiled-") for n in unpacked.sizes if n.startswith("compiled-")}


def checked(meta: RemoteMeta, entry: Path, what: str, unpacked: Unpacked) -> EntryRecord:
    """The unpacked entry's record, once it is what the signed metadata says: every
    file against RECORD and the seal, by the digests taken as it was written."""
    try:
        record = read_entry_record(entry)
    except EnvstoreError:
        raise RemoteError(f"{what} refused: its entry.json is unreadable or invalid") from None
    problems = check_written(entry, unpacked, meta.seal)
    if (record.key, record.sha256, record.wheel) != (str(meta.key), meta.wheel_sha256, meta.wheel):
        problems.append("entry.json describes another entry")
    if markers(unpacked) != set(meta.cache_tags):
        problems.append("its bytecode markers are not the signed cache tags")
    if problems:
        raise RemoteError(f"{what} refused: {'; '.join(problems[:3])}")
    return record
