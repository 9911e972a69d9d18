"""Seals: digests of what RECORD does not cover, kept in the store database.

A wheel's RECORD names its files and their hashes, so ``verify --check-contents``
checks those against the wheel's own promise (and RECORD itself is sealed, so a
file changed together with its row is found too). It says nothing of what envstore
writes itself and every env then runs or reads: the bytecode (unchecked-hash
pycs, which the interpreter never compares with their source), ``entry.json``
(console scripts are made from its ``entry_points``) and the views (every link
an env imports through). Those are sealed when written: their xxh3-128 digests
go into the database (``entries.seal``, ``views.seal``), and verify compares.

The database is the trust anchor (store-layout.md, "Integrity"): someone who
can rewrite files and database both can hide a change; a change to files alone
(an edit, a program writing into its own package, a tampered link) is found.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from envstore.errors import StoreError
from envstore.store.damage import dir_identity

__all__ = [
    "FOREIGN_CACHE",
    "check_entry",
    "check_view",
    "contents",
    "entry_seal",
    "file_digest",
    "new_tag_pycs",
    "pyc_tag",
    "pycs",
    "stamped",
    "view_seal",
]

# Files that a program writes next to its modules at run time and no importer
# loads (numba's cache index and data): reported as foreign, never damage.
FOREIGN_CACHE = (".nbi", ".nbc")


def file_digest(path: str | os.PathLike[str]) -> str:
    """xxh3-128 of a file's bytes, 32 hex digits."""
    import xxhash

    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return str(h.hexdigest())


def pycs(root: Path) -> list[str]:
    """Every ``.pyc`` under ``root/site``, relative to ``root``."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root / "site"):
        dirnames.sort()
        if os.path.basename(dirpath) == "__pycache__":
            rel = os.path.relpath(dirpath, root)
            found += [f"{rel}/{n}" for n in sorted(filenames) if n.endswith(".pyc")]
    return found


def _is_pyc(rel: str) -> bool:
    """Whether ``rel`` (relative to an entry) is one of what ``pycs`` finds."""
    parts = rel.split("/")
    return (
        parts[0] == "site"
        and len(parts) > 2
        and parts[-2] == "__pycache__"
        and rel.endswith(".pyc")
    )


def new_tag_pycs(root: Path, seal: Mapping[str, object]) -> list[str]:
    """The bytecode files of ``root`` for cache tags that ``seal`` has none of while the
    entry has their ``compiled-<tag>`` marker: what another host's envstore compiled for
    its Python (another minor) in a shared store after this host sealed the entry (it
    sealed them in its own database, then wrote the marker). An interpreter never writes
    a marker: bytecode without one, or for a tag the seal has, is not among them."""
    sealed = {pyc_tag(rel) for rel in seal.get("pyc") or {}}  # type: ignore[attr-defined]
    try:
        marked = {n[len("compiled-") :] for n in os.listdir(root) if n.startswith("compiled-")}
    except OSError:
        return []
    new = marked - sealed
    return [rel for rel in pycs(root) if pyc_tag(rel) in new] if new else []


def pyc_tag(rel: str) -> str:
    """The cache tag of a bytecode file (``mod.cpython-312[.opt-1].pyc``: ``cpython-312``)."""
    parts = os.path.basename(rel).split(".")
    return parts[1] if len(parts) > 2 else ""


def stamped(seal: Mapping[str, object], root: Path) -> dict[str, object]:
    """``seal``, taken of the entry at ``root``, naming that directory."""
    return {**seal, "dir": dir_identity(root)}


def contents(seal: Mapping[str, object]) -> dict[str, object]:
    """The digests of ``seal`` without the directory it names (a remote cache's seal: an
    inode number means nothing on another machine)."""
    return {k: v for k, v in seal.items() if k != "dir"}


def entry_seal(root: Path, old: dict[str, object] | None = None) -> dict[str, object]:
    """The seal of the entry at ``root``: the directory, the digest of its ``entry.json``
    and of each bytecode file. ``old``: a seal whose bytecode digests are kept (adding
    bytecode for another interpreter digests only the new files), unless it was taken
    of another directory."""
    ident = dir_identity(root)
    same = old is not None and old.get("dir", ident) == ident
    known: dict[str, str] = dict(old.get("pyc", {})) if old and same else {}  # type: ignore[call-overload]
    pyc = {rel: known.get(rel) or file_digest(root / rel) for rel in pycs(root)}
    digest = file_digest(root / "entry.json")
    return {"dir": ident, "entry.json": digest, "RECORD": _record(root), "pyc": pyc}


def _record(root: Path) -> str:
    """The digest of the entry's RECORD (as installer wrote it): files changed together
    with their RECORD rows (a .pth, a data script, an added module) change it."""
    from envstore.store.layout import read_entry_record

    try:
        return file_digest(root / "site" / read_entry_record(root).dist_info / "RECORD")
    except (OSError, StoreError):
        return ""


def check_entry(
    root: Path,
    seal: dict[str, object],
    digests: Mapping[str, str] | None = None,
    files: Iterable[str] | None = None,
) -> list[str]:
    """What differs between the entry at ``root`` and its seal. ``digests``: its files'
    xxh3-128, taken as they were written (so they are not read again); ``files``: every
    file of the entry, relative to it, when known (then its tree is not walked)."""
    known = digests or {}

    def digest(rel: str) -> str:
        return known.get(rel) or file_digest(root / rel)

    problems = []
    try:
        if digest("entry.json") != seal.get("entry.json"):
            problems.append("entry.json was changed after it was written")
    except OSError as exc:
        problems.append(f"entry.json cannot be read ({exc.strerror})")
    if "RECORD" in seal and _record(root) != seal["RECORD"]:
        problems.append("RECORD was changed after it was written (with the files it lists?)")
    want: dict[str, str] = seal.get("pyc") or {}  # type: ignore[assignment]
    have = set(pycs(root)) if files is None else {f for f in files if _is_pyc(f)}
    for rel in sorted(have - set(want)):
        problems.append(f"bytecode {rel} was added after the entry was sealed")
    for rel in sorted(set(want) - have):
        problems.append(f"bytecode {rel} is missing")
    for rel in sorted(have & set(want)):
        try:
            if digest(rel) != want[rel]:
                problems.append(f"bytecode {rel} does not match what was compiled")
        except OSError as exc:
            problems.append(f"bytecode {rel} cannot be read ({exc.strerror})")
    return problems


def view_seal(view: Path) -> str:
    """The digest of a view: its ``view.json`` and every name and link target in it."""
    import xxhash

    h = xxhash.xxh3_128()
    h.update(file_digest(view / "view.json").encode())
    for dirpath, dirnames, filenames in os.walk(view / "site"):
        dirnames.sort()
        rel = os.path.relpath(dirpath, view)
        for name in sorted(dirnames + filenames):
            path = os.path.join(dirpath, name)
            target = os.readlink(path) if os.path.islink(path) else "/" if name in dirnames else ""
            h.update(f"{rel}/{name}\0{target}\n".encode("utf-8", "surrogateescape"))
    return str(h.hexdigest())


def check_view(view: Path, seal: str) -> list[str]:
    """What differs between the view at ``view`` and its seal."""
    try:
        now = view_seal(view)
    except OSError as exc:
        return [f"cannot be read ({exc.strerror})"]
    if now != seal:
        return ["a link or view.json was changed after the view was built"]
    return []


def dumps(seal: dict[str, object]) -> str:
    return json.dumps(seal, separators=(",", ":"), sort_keys=True)
