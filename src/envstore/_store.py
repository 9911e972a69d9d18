"""The store on disk: where things live, and the primitives that keep it safe.

The layout is documented in store-layout.md (layout version 1). Entries and
views are published atomically (filled in ``tmp/``, made read-only, renamed
into place) and never modified afterwards, except that bytecode for another
interpreter version may be added to a pure entry.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from envstore import _db
from envstore._locks import file_lock
from envstore.errors import StoreError

__all__ = ["LAYOUT_VERSION", "EntryKey", "Store", "default_store_dir", "make_readonly", "rmtree"]

LAYOUT_VERSION = 1
PURE = "pure"


def default_store_dir() -> Path:
    """``$ENVSTORE_HOME``, else ``$XDG_DATA_HOME/envstore``, else ``~/.local/share/envstore``."""
    env = os.environ.get("ENVSTORE_HOME")
    if env:
        return Path(env).expanduser().absolute()
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(data).absolute() / "envstore"


class EntryKey:
    """Identifies an entry: ABI subtree (``pure`` or a SOABI), normalized name, version, hash.

    A plain class, like the other records on the create path: importing
    dataclasses (and the inspect module it pulls in) costs every CLI start
    ~20 ms on this machine, a fifth of a warm create.
    """

    __slots__ = ("abi", "hash", "name", "version")

    def __init__(self, abi: str, name: str, version: str, hash: str) -> None:
        self.abi = abi
        self.name = name
        self.version = version
        self.hash = hash  # xxh3_128 of the wheel file, 32 hex digits

    def _fields(self) -> tuple[str, str, str, str]:
        return (self.abi, self.name, self.version, self.hash)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EntryKey) and self._fields() == other._fields()

    def __lt__(self, other: EntryKey) -> bool:
        return self._fields() < other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return f"EntryKey({str(self)!r})"

    def __str__(self) -> str:
        return f"{self.abi}/{self.name}/{self.version}-{self.hash}"

    @classmethod
    def parse(cls, text: str) -> EntryKey:
        parts = text.split("/")
        if len(parts) != 3 or "-" not in parts[2] or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"not an entry key: {text!r}")
        version, _, digest = parts[2].rpartition("-")
        if len(digest) != 32 or not all(c in "0123456789abcdef" for c in digest) or not version:
            raise ValueError(f"not an entry key: {text!r}")
        return cls(parts[0], parts[1], version, digest)


def make_readonly(root: Path) -> None:
    """Files 0444 (0555 if executable), directories 0555, bottom-up; never follows symlinks."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if stat.S_ISREG(st.st_mode):
                mode = 0o555 if st.st_mode & 0o111 else 0o444
                if stat.S_IMODE(st.st_mode) != mode:  # unpacked files are made so already
                    os.chmod(p, mode)
        for name in dirnames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, 0o555)
    os.chmod(root, 0o555)


def make_writable_dirs(root: Path) -> None:
    """Let the owner add files to every directory below ``root`` (for adding bytecode)."""
    os.chmod(root, 0o755)
    for dirpath, dirnames, _ in os.walk(root):
        for name in dirnames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, 0o755)


def rmtree(path: Path) -> int:
    """Delete ``path`` (file, link or tree) without ever following a symlink out of it;
    return the bytes it held (lstat sizes of its files and links, like gc's tree_size).

    One pass; a read-only directory (a store entry) is made writable only when
    deleting inside it is refused.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return 0
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(path)
        return st.st_size
    freed = _empty_dir(os.fspath(path))
    os.rmdir(path)
    return freed


def _empty_dir(top: str) -> int:
    try:
        with os.scandir(top) as it:
            children = list(it)
    except PermissionError:
        os.chmod(top, 0o700)
        with os.scandir(top) as it:
            children = list(it)
    freed = 0
    writable = False
    for child in children:
        # is_dir(follow_symlinks=False): a link to a directory is unlinked, never entered.
        is_dir = child.is_dir(follow_symlinks=False)
        if is_dir:
            freed += _empty_dir(child.path)
        else:
            freed += child.stat(follow_symlinks=False).st_size
        remove = os.rmdir if is_dir else os.unlink
        try:
            remove(child.path)
        except PermissionError:
            if writable:
                raise
            os.chmod(top, 0o700)
            writable = True
            remove(child.path)
    return freed


def exchange(a: Path, b: Path) -> None:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``), so ``b`` is
    never missing; elsewhere, two renames."""
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        renameat2 = None
    if renameat2 is not None:
        at_fdcwd, rename_exchange = -100, 2
        if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
            return
    trash = a.parent / f"{a.name}.old"
    os.rename(b, trash)
    os.rename(a, b)
    os.rename(trash, a)


class Store:
    """A store directory; cheap to construct, touches the disk on first use."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root).expanduser().absolute() if root else default_store_dir()
        self._conn: sqlite3.Connection | None = None

    # -- layout -----------------------------------------------------------
    @property
    def db_path(self) -> Path:
        return self.root / "envstore.db"

    @property
    def entries_dir(self) -> Path:
        return self.root / "entries"

    @property
    def views_dir(self) -> Path:
        return self.root / "views"

    @property
    def roots_dir(self) -> Path:
        return self.root / "roots"

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    @property
    def locks_dir(self) -> Path:
        return self.root / "locks"

    @property
    def wheels_dir(self) -> Path:
        return self.root / "wheels"

    def entry_path(self, key: EntryKey) -> Path:
        return Path(f"{self.root}/entries/{key}")

    def has_entry(self, key: EntryKey, cache_tag: str | None = None) -> bool:
        """The entry is published (and compiled for ``cache_tag``, if given). A string
        path: a warm create asks ~2 per package, and pathlib's joins cost ~10x the stat."""
        name = f"compiled-{cache_tag}" if cache_tag else "entry.json"
        return os.path.exists(f"{self.root}/entries/{key}/{name}")

    def compiled_marker(self, key: EntryKey, cache_tag: str) -> Path:
        """Exists once the entry has bytecode for interpreters with ``cache_tag``."""
        return self.entry_path(key) / f"compiled-{cache_tag}"

    def view_path(self, view_key: str) -> Path:
        return self.views_dir / view_key

    def check_trust(self) -> None:
        """Refuse a store (or database) that other users could write, unless opted in.

        Whoever can write the store can change the code every env runs
        (store-layout.md, "Trust model").
        """
        if os.environ.get("ENVSTORE_TRUST_SHARED_STORE") == "1":
            return
        for path in (self.root, self.entries_dir, self.db_path):
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            if st.st_uid != os.geteuid() or st.st_mode & 0o022:
                who = (
                    "owned by another user"
                    if st.st_uid != os.geteuid()
                    else (f"writable by other users (mode {stat.S_IMODE(st.st_mode):o})")
                )
                raise StoreError(
                    f"refusing to use {path}: it is {who}, so they could change the code"
                    " your environments run. Fix its permissions (chmod go-w), or set"
                    " ENVSTORE_TRUST_SHARED_STORE=1 if everyone who can write it is trusted"
                )

    def ensure(self) -> None:
        """Create the layout if needed and check its version and permissions."""
        marker = self.root / "store.json"
        try:
            layout = json.loads(marker.read_text())["layout"]
        except FileNotFoundError:
            layout = None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{marker} is unreadable: {exc}") from exc
        if layout is None:
            self.root.mkdir(parents=True, exist_ok=True)
            for d in ("entries", "views", "roots", "tmp", "locks", "wheels"):
                (self.root / d).mkdir(exist_ok=True)
            tmp = self.root / f".store.json.{os.getpid()}"
            tmp.write_text(json.dumps({"layout": LAYOUT_VERSION}) + "\n")
            os.replace(tmp, marker)
        elif layout != LAYOUT_VERSION:
            raise StoreError(
                f"the store {self.root} has layout {layout}; this envstore uses {LAYOUT_VERSION}"
            )
        self.check_trust()

    def exists(self) -> bool:
        return (self.root / "store.json").exists()

    # -- database ---------------------------------------------------------
    def db(self, *, create: bool = True) -> sqlite3.Connection:
        """The store database; created with the store, an error if it vanished later."""
        if self._conn is None:
            self.check_trust()
            fresh = not any(self.roots_dir.iterdir()) if self.roots_dir.is_dir() else True
            self._conn = _db.connect(self.db_path, create=create and fresh)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def check_not_damaged(self, keys: list[EntryKey]) -> None:
        """Refuse to link entries that ``verify`` found damaged (until repaired)."""
        rows = self.db().execute("SELECT key FROM entries WHERE damaged = 1").fetchall()
        bad = sorted({r[0] for r in rows} & {str(k) for k in keys})
        if bad:
            raise StoreError(
                f"damaged store entries: {', '.join(bad)}; run 'envstore verify --repair'"
            )

    # -- locks and temporary space -----------------------------------------
    @contextmanager
    def gc_lock(self, *, shared: bool) -> Iterator[None]:
        """Shared for creators (pick and reference entries), exclusive for deleting."""
        with file_lock(self.locks_dir / "gc.lock", shared=shared):
            yield

    @contextmanager
    def entry_lock(self, key: EntryKey) -> Iterator[None]:
        """Serializes adding bytecode to one entry."""
        with file_lock(self.locks_dir / f"entry-{key.hash}.lock"):
            yield

    def mkdtemp(self, prefix: str) -> Path:
        """A fresh directory in ``tmp/`` (same filesystem, so publish is a rename).

        Named ``<pid>-<prefix>-<random>`` so gc can tell an abandoned one (its
        process is gone) from work in progress.
        """
        import tempfile

        return Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-{prefix}-", dir=self.tmp_dir))
