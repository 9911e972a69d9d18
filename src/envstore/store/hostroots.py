"""Roots of envs on one host's local disk, in a store several hosts share.

Such a root is named ``<hash>@<host>``; other hosts cannot read its env's
manifest (the path is on that host's disk, or is another env on theirs), so
what it uses is written beside it in the shared store, ``state/refs/<root>``,
and its link's own mtime says when that host last saw the env live. This module
works on paths (``Store`` migrates a store through it).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from envstore.errors import BadManifestError
from envstore.model.manifest import MANIFEST_NAME, Manifest
from envstore.store import index
from envstore.store.fs import host_name, on_shared_storage, read_small, temp_tag

__all__ = [
    "OtherHosts",
    "drop_mark",
    "drop_refs",
    "forget",
    "gone_marks",
    "marks",
    "migrate_roots",
    "other_hosts",
    "put_mark",
    "read_refs",
    "record_gone",
    "refresh",
    "refs_path",
    "set_damaged",
    "write_refs",
]

DEFAULT_HOST_ROOT_DAYS = 90.0
SEEN_EVERY = 86400.0  # a host marks its roots seen at most this often


def refs_path(root: Path, name: str) -> Path:
    return root / "state" / "refs" / name


def write_refs(root: Path, name: str, objects: list[str]) -> None:
    """``state/refs/<root name>``: what a host-local env uses, for the other hosts' gc
    (replaced whole by a rename)."""
    path = refs_path(root, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{name}.{temp_tag()}"
    tmp.write_text(json.dumps(sorted(set(objects))) + "\n")
    os.replace(tmp, path)


def read_refs(root: Path, name: str) -> list[str] | None:
    """``write_refs``'s list, or None if it is missing or unreadable."""
    raw = read_small(refs_path(root, name), 4 * 1024 * 1024)
    try:
        data = json.loads(raw) if raw is not None else None
    except ValueError:
        return None
    if isinstance(data, list) and all(isinstance(o, str) for o in data):
        return data
    return None


def drop_refs(root: Path, name: str) -> None:
    try:
        os.unlink(refs_path(root, name))
    except OSError:
        pass


def migrate_roots(root: Path) -> int:
    """Layout 1 to 2 in a shared store: every root was this host's (layout 1 stores
    were on local disk), so a root whose env is not on shared storage becomes
    ``<hash>@<this host>``, with its ``state/refs`` file. Returns how many."""
    moved = 0
    roots = root / "roots"
    for name in sorted(os.listdir(roots)):
        link = roots / name
        if name.startswith(".") or "@" in name or not link.is_symlink():
            continue
        target = os.readlink(link)
        env = os.path.dirname(target)
        if os.path.basename(target) != MANIFEST_NAME or on_shared_storage(env):
            continue
        new = f"{name}@{host_name()}"
        try:
            objects = index.env_objects(Manifest.load(Path(env)))
        except BadManifestError:
            objects = None  # gone or unreadable: its gc judges it as before
        if objects is not None:
            write_refs(root, new, objects)
        os.replace(link, roots / new)
        moved += 1
    return moved


def host_root_age() -> float:
    """How long another host's root is kept unseen: ``$ENVSTORE_HOST_ROOT_DAYS`` days
    (default 90), in seconds."""
    try:
        return max(0.0, float(os.environ.get("ENVSTORE_HOST_ROOT_DAYS", "")) * 86400)
    except ValueError:
        return DEFAULT_HOST_ROOT_DAYS * 86400


@dataclass
class OtherHosts:
    """What gc on this host makes of the roots of other hosts' local envs."""

    kept: list[tuple[str, str, float]] = field(default_factory=list)  # host, env, seen
    dropped: list[tuple[str, str, str]] = field(default_factory=list)  # host, env, root
    used: set[str] = field(default_factory=set)  # objects the kept ones use
    unknown: list[str] = field(default_factory=list)  # kept, but what they use is unknown


def other_hosts(root: Path, now: float) -> OtherHosts:
    """The roots ``<hash>@<host>`` of other hosts: kept (with what their ``state/refs``
    file says they use) until not seen for ``host_root_age``, then dropped."""
    out = OtherHosts()
    limit, me = host_root_age(), host_name()
    roots = root / "roots"
    for name in sorted(os.listdir(roots)) if roots.is_dir() else ():
        host = name.partition("@")[2]
        if name.startswith(".") or not host or host == me:
            continue
        try:
            seen = os.lstat(roots / name).st_mtime
            target = os.readlink(roots / name)
        except OSError:
            continue
        env = os.path.dirname(target)
        if os.path.basename(target) != MANIFEST_NAME:
            continue
        if now - seen > limit:
            out.dropped.append((host, env, name))
            continue
        out.kept.append((host, env, seen))
        used = read_refs(root, name)
        if used is None:
            out.unknown.append(f"{env} on {host}: {refs_path(root, name)} is missing")
        else:
            out.used.update(used)
    return out


def refresh(root: Path, names: list[str], now: float | None = None) -> None:
    """Mark this host's roots ``names`` seen now where they were marked over a day ago:
    at most one shared write per env a day."""
    now = time.time() if now is None else now
    for name in names:
        link = root / "roots" / name
        try:
            if now - os.lstat(link).st_mtime > SEEN_EVERY:
                os.utime(link, follow_symlinks=False)
        except OSError:
            pass


# -- marks every host must see: state/<kind>/<name> ------------------------------
# damaged/<object> (an entry key or view/<key>, "/" written "~"): what verify found
# damaged; gone/<root name>: since when gc has found that root's env gone.


def marks(root: Path, kind: str) -> dict[str, str]:
    """The marks of ``kind``: name -> the text of its file."""
    base = root / "state" / kind
    out: dict[str, str] = {}
    for name in sorted(os.listdir(base)) if base.is_dir() else ():
        raw = read_small(base / name, 4096)
        if not name.startswith(".") and raw is not None:
            out[name.replace("~", "/")] = raw.decode("utf-8", "replace").strip()
    return out


def put_mark(root: Path, kind: str, name: str, text: str = "") -> None:
    base = root / "state" / kind
    base.mkdir(parents=True, exist_ok=True)
    file = name.replace("/", "~")
    tmp = base / f".{file}.{temp_tag()}"
    tmp.write_text(text + "\n")
    os.replace(tmp, base / file)


def drop_mark(root: Path, kind: str, name: str) -> None:
    try:
        os.unlink(root / "state" / kind / name.replace("/", "~"))
    except OSError:
        pass


def set_damaged(root: Path, objects: list[str]) -> None:
    """Exactly ``objects`` are damaged now (what a verify found)."""
    old = set(marks(root, "damaged"))
    for obj in sorted(old - set(objects)):
        drop_mark(root, "damaged", obj)
    for obj in sorted(set(objects) - old):
        put_mark(root, "damaged", obj)


def gone_marks(root: Path) -> dict[str, float]:
    """Root name -> since when an env has been found gone, as any host's gc saw it."""
    out = {}
    for name, text in marks(root, "gone").items():
        try:
            out[name] = float(text)
        except ValueError:
            continue
    return out


def record_gone(root: Path, gone: list[tuple[str | None, float]], back: list[str | None]) -> None:
    """gc's gone clocks, for every host: a mark for each root first found gone (an
    earlier mark stays), none for a root whose env is back."""
    known = gone_marks(root)
    for name, since in gone:
        if name and name not in known:
            put_mark(root, "gone", name, repr(since))
    for name in back:
        if name:
            drop_mark(root, "gone", name)


def forget(root: Path, name: str) -> None:
    """A dropped root's refs file and gone mark."""
    drop_refs(root, name)
    drop_mark(root, "gone", name)
