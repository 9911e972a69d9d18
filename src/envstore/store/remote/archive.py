"""An entry as one archive: a deterministic tar, gzip-compressed, and its safe unpacking.

Packing takes what an entry is (``entry.json``, its ``compiled-<tag>`` markers,
``site/`` and ``data/`` with their bytecode), never a program's run-time cache
files (``FOREIGN_CACHE``). Members are sorted, owned by 0:0 with mtime 0, so the
same entry packs to the same bytes.

Unpacking trusts nothing in the archive, even once its hash matched signed
metadata (the signer may be careless): only regular files and directories, every
name a relative path of plain components under those top-level names, no
duplicates, bounded sizes; files are created ``O_EXCL`` and read-only in a
fresh directory, so nothing can be written through a link or outside it.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from envstore.errors import RemoteError
from envstore.model.keys import plain_name
from envstore.store.seal import FOREIGN_CACHE

__all__ = ["MAX_UNPACKED", "pack_entry", "unpack_entry"]

MAX_UNPACKED = 8 << 30  # bytes an archive may unpack to
_MAX_MEMBERS = 500_000
_TOPS = ("site", "data")


def _members(root: Path) -> list[tuple[str, Path]]:
    """(archive name, path) of everything an entry is, in a fixed order."""
    found: list[tuple[str, Path]] = [("entry.json", root / "entry.json")]
    found += [(p.name, p) for p in sorted(root.glob("compiled-*")) if p.is_file()]
    for top in _TOPS:
        base = root / top
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            rel = os.path.relpath(dirpath, root)
            found.append((rel, Path(dirpath)))
            for name in sorted(filenames):
                if name.endswith(FOREIGN_CACHE) and os.path.basename(dirpath) == "__pycache__":
                    continue  # a program's run-time cache: not part of the entry
                found.append((f"{rel}/{name}", Path(dirpath, name)))
    return found


def pack_entry(root: Path, dest: Path) -> None:
    """Write the entry at ``root`` as a tar.gz at ``dest``."""
    import gzip

    with open(dest, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for name, path in _members(root):
                st = os.lstat(path)
                info = tarfile.TarInfo(name)
                info.mtime = 0
                if path.is_symlink():
                    raise RemoteError(f"{path} is a symbolic link; not packing the entry")
                if os.path.isdir(path):
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
                    continue
                info.size = st.st_size
                info.mode = 0o555 if st.st_mode & 0o111 else 0o444
                with open(path, "rb") as f:
                    tar.addfile(info, f)


def _check_name(name: str) -> str | None:
    """Why ``name`` may not be unpacked, or None."""
    if not name or name.startswith("/") or "\\" in name or len(name) > 4096:
        return "not a relative path"
    parts = name.split("/")
    if not all(plain_name(p) for p in parts) or len(parts) > 64:
        return "not a path of plain names"
    top_file = name == "entry.json" or name.startswith("compiled-")
    if len(parts) == 1 and not top_file and name not in _TOPS:
        return "not a file of an entry"
    if len(parts) > 1 and parts[0] not in _TOPS:
        return "not under site/ or data/"
    return None


def unpack_entry(archive: Path, dest: Path) -> None:
    """Unpack ``archive`` into the empty directory ``dest``; RemoteError naming every
    refused member (``dest`` is then the caller's to delete)."""
    import zlib

    problems: list[str] = []
    seen: set[str] = set()
    total = 0
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            for count, member in enumerate(tar):
                name = member.name.rstrip("/") if member.isdir() else member.name
                why = _check_name(name)
                if why is None and name in seen:
                    why = "a duplicate member"
                if why is None and not (member.isreg() or member.isdir()):
                    why = "not a regular file or directory"
                if why is None and "/" not in name and member.isdir() != (name in _TOPS):
                    why = "a directory where a file belongs or the reverse"
                total += member.size
                if total > MAX_UNPACKED or count >= _MAX_MEMBERS:
                    problems.append(f"unpacks to more than {MAX_UNPACKED} bytes or members")
                    break
                if why is not None:
                    problems.append(f"{name!r}: {why}")
                    continue
                seen.add(name)
                target = dest / name
                target.parent.mkdir(parents=True, exist_ok=True)
                if member.isdir():
                    target.mkdir(exist_ok=True)
                    continue
                mode = 0o555 if member.mode & 0o111 else 0o444
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
                source = tar.extractfile(member)
                assert source is not None  # a regular file
                with source, open(os.open(target, flags, mode), "wb") as out:
                    while chunk := source.read(1 << 20):
                        out.write(chunk)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        problems.append(f"cannot be unpacked ({exc})")
    if problems:
        raise RemoteError("; ".join(problems[:5]))
