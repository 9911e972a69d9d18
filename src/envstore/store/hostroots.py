"""Roots of envs on one host's local disk, in a store several hosts share.

Such a root is named ``<hash>@<host>``; other hosts cannot read its env's
manifest (the path is on that host's disk, or is another env on theirs), so
what it uses is written beside it in the shared store, ``state/refs/<root>``,
and its link's own mtime says when that host last saw the env live. This module
works on paths (``Store`` migrates a store through it).
"""

from __future__ import annotations

import errno
import json
import os
import re
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from envstore.errors import StoreError
from envstore.model.keys import EntryKey
from envstore.model.manifest import MANIFEST_NAME
from envstore.store.fs import UNKNOWN_HOST, host_name, read_small, temp_tag

__all__ = [
    "UNKNOWN_HOST",
    "OtherHosts",
    "drop_mark",
    "drop_refs",
    "forget",
    "gone_marks",
    "marked",
    "marks",
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


STATE_KINDS = ("refs", "gone", "damaged")
# A root's name (registry.root_name): an xxh3_64 hex digest, and ``@<host>``
# (fs.host_name) for an env on a host's local disk.
_ROOT_NAME = re.compile(r"[0-9a-f]{16}(?:@[\w.-]{1,64})?\Z")
_VIEW_MARK = re.compile(r"view/[0-9a-f]{32}\Z")


def refs_path(root: Path, name: str) -> Path:
    return root / "state" / "refs" / name


def valid_name(kind: str, name: str) -> bool:
    """Whether ``name`` may name a file in ``state/<kind>``: a root's name (refs, gone),
    or a damaged object (an entry key or ``view/<key>``). Anything else there (or
    named by a crafted root link) is never read, written or deleted."""
    if kind != "damaged":
        return bool(_ROOT_NAME.match(name))
    if _VIEW_MARK.match(name):
        return True
    try:
        EntryKey.parse(name)
    except ValueError:
        return False
    return True


@contextmanager
def state_dir(root: Path, kind: str, *, create: bool = False) -> Iterator[int | None]:
    """``state/<kind>`` opened without following a link at ``state`` or ``<kind>``
    (a file descriptor for the ``dir_fd`` calls; None if it is missing and not
    ``create``d): nothing read, written or deleted through it leaves the store."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    base = root / "state"
    fd = -1
    try:
        parent = os.open(base, flags)
        try:
            if create:
                try:
                    os.mkdir(kind, 0o755, dir_fd=parent)
                except FileExistsError:
                    pass
            fd = os.open(kind, flags, dir_fd=parent)
        finally:
            os.close(parent)
    except FileNotFoundError:
        if create:
            raise
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        raise StoreError(
            f"{base / kind} is not a directory of the store's own (a symbolic link?);"
            " envstore works only inside the store. Make it a directory again"
            f" (mkdir {base / kind})"
        ) from None
    try:
        yield None if fd < 0 else fd
    finally:
        if fd >= 0:
            os.close(fd)


def _write_at(root: Path, kind: str, name: str, text: str) -> None:
    """``state/<kind>/<name>`` replaced whole by a rename; its temporary made with
    O_EXCL|O_NOFOLLOW in the directory opened without following links."""
    file = name.replace("/", "~")
    with state_dir(root, kind, create=True) as fd:
        assert fd is not None
        tmp = f".{file}.{temp_tag()}"
        try:
            os.unlink(tmp, dir_fd=fd)  # a leftover of this host and pid
        except FileNotFoundError:
            pass
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with os.fdopen(os.open(tmp, flags, 0o644, dir_fd=fd), "w") as out:
            out.write(text)
        try:
            os.replace(tmp, file, src_dir_fd=fd, dst_dir_fd=fd)
        except OSError:  # a directory planted at the name: no temporary left behind
            os.unlink(tmp, dir_fd=fd)
            raise


def _unlink_at(root: Path, kind: str, name: str) -> None:
    if not valid_name(kind, name):
        return
    with state_dir(root, kind) as fd:
        if fd is not None:
            try:
                os.unlink(name.replace("/", "~"), dir_fd=fd)
            except OSError:
                pass


def write_refs(root: Path, name: str, objects: list[str]) -> None:
    """``state/refs/<root name>``: what a host-local env uses, for the other hosts' gc
    (replaced whole by a rename)."""
    if valid_name("refs", name):
        _write_at(root, "refs", name, json.dumps(sorted(set(objects))) + "\n")


def read_refs(root: Path, name: str) -> list[str] | None:
    """``write_refs``'s list, or None if it is missing or unreadable."""
    if not valid_name("refs", name):
        return None
    with state_dir(root, "refs") as fd:
        raw = None if fd is None else read_small(name, 4 * 1024 * 1024, dir_fd=fd)
    try:
        data = json.loads(raw) if raw is not None else None
    except ValueError:
        return None
    if isinstance(data, list) and all(isinstance(o, str) for o in data):
        return data
    return None


def drop_refs(root: Path, name: str) -> None:
    _unlink_at(root, "refs", name)


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
    file says they use) until not seen for ``host_root_age``, then dropped. A
    placeholder ``<hash>@_unknown`` is never dropped for its age (no host refreshes it,
    and a host that holds its env may never run gc): claimed for shared storage, or
    removed by hand (store-layout.md), it is kept and reported."""
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
        if now - seen > limit and host != UNKNOWN_HOST:
            out.dropped.append((host, env, name))
            continue
        out.kept.append((host, env, seen))
        used = read_refs(root, name)
        if used is None:
            fix = (
                f"; once no host has a live env at {env}, remove {roots / name}"
                if host == UNKNOWN_HOST
                else ""
            )
            out.unknown.append(f"{env} on {host}: {refs_path(root, name)} is missing{fix}")
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
    """The marks of ``kind``: name -> the text of its file (only names ``valid_name``
    accepts)."""
    out: dict[str, str] = {}
    with state_dir(root, kind) as fd:
        for file in sorted(os.listdir(fd)) if fd is not None else ():
            name = file.replace("~", "/")
            if file.startswith(".") or not valid_name(kind, name):
                continue
            raw = read_small(file, 4096, dir_fd=fd)
            if raw is not None:
                out[name] = raw.decode("utf-8", "replace").strip()
    return out


def marked(root: Path, kind: str, name: str) -> bool:
    """Whether ``state/<kind>`` holds a mark ``name`` (one lookup, no listing)."""
    if not valid_name(kind, name):
        return False
    with state_dir(root, kind) as fd:
        if fd is None:
            return False
        # As marks() reads them: a small regular file (not a link, a directory, ...).
        return read_small(name.replace("/", "~"), 4096, dir_fd=fd) is not None


def put_mark(root: Path, kind: str, name: str, text: str = "") -> None:
    if valid_name(kind, name):
        _write_at(root, kind, name, text + "\n")


def drop_mark(root: Path, kind: str, name: str) -> None:
    _unlink_at(root, kind, name)


def set_damaged(root: Path, objects: list[str], judged: Collection[str] = ()) -> None:
    """``objects`` are damaged now (what a verify found); of the other marks, those of
    objects it ``judged`` (held a seal for) or that are gone from the store are dropped,
    the rest kept (another host's verify found them, with its seals)."""
    old = set(marks(root, "damaged"))
    for obj in sorted(old - set(objects)):
        if obj in judged or not os.path.lexists(root / _object_path(obj)):
            drop_mark(root, "damaged", obj)
    for obj in sorted(set(objects) - old):
        put_mark(root, "damaged", obj)


def _object_path(obj: str) -> str:
    """A damaged mark's object below the store: ``entries/<key>`` or ``views/<key>``."""
    return f"views/{obj[5:]}" if obj.startswith("view/") else f"entries/{obj}"


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
