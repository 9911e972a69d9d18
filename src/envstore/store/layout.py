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

from envstore.errors import StoreError
from envstore.model.keys import EntryKey, plain_name
from envstore.model.records import EntryRecord
from envstore.store import db as _db
from envstore.store import index
from envstore.store.fs import network_mount, not_a_directory, temp_tag
from envstore.store.locks import file_lock

TYPE_CHECKING = False  # not typing's: importing typing costs every CLI start ~3 ms
if TYPE_CHECKING:
    pass

    from envstore.store.caches import InterpreterFacts
    from envstore.store.upstream import Layers

__all__ = [
    "LAYOUT_VERSION",
    "EntryKey",
    "Store",
    "default_store_dir",
    "not_a_directory",
    "plain_name",
]

# 2: roots keyed by host and path (``<hash>@<host>`` for an env on a host's local disk
#    in a shared store; ``state/`` holds what every host must see). An envstore of
#    layout 1 would take another host's root for a gone env and collect what it uses.
LAYOUT_VERSION = 2
_SUBDIRS = ("entries", "views", "roots", "tmp", "locks", "wheels", "state")
# What every host must see (hostroots): checked and made with the layout.
_STATE_DIRS = ("state/refs", "state/gone", "state/damaged")  # upgrade.py's too


def default_store_dir() -> Path:
    """``$ENVSTORE_HOME``, else ``$XDG_DATA_HOME/envstore``, else ``~/.local/share/envstore``."""
    env = os.environ.get("ENVSTORE_HOME")
    if env:
        return Path(os.path.abspath(os.path.expanduser(env)))
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(os.path.abspath(data)) / "envstore"


def read_entry_record(entry: Path) -> EntryRecord:
    """``entry/entry.json``, the one reader of it: every field that names a file is a
    plain name, so nothing built from it leaves the entry or the env (a tampered
    store is untrusted data too). StoreError, naming the file and the fix, if not."""
    path = entry / "entry.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"{path} is unreadable ({exc}); run 'envstore verify --repair'") from None
    try:
        return EntryRecord.from_json(data)
    except ValueError as exc:
        raise StoreError(f"{path} is invalid ({exc}); run 'envstore verify --repair'") from None


class Store:
    """A store directory; cheap to construct, touches the disk on first use."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        # abspath, not Path.absolute: '..' resolved lexically, as the view paths that
        # name this root are checked (a '..' component is refused there).
        self.root = Path(os.path.abspath(os.path.expanduser(root))) if root else default_store_dir()
        self._conn: sqlite3.Connection | None = None
        self._layers: Layers | None = None
        self._shared: bool | None = None
        self._db_path: Path | None = None
        self._layout_checked = False  # ensure() ran (a layout 1 store is migrated there)

    # -- layout -----------------------------------------------------------
    @property
    def shared(self) -> bool:
        """Whether the store is on a filesystem other hosts may use at once (a network
        filesystem under it, from ``/proc/self/mountinfo``; ``ENVSTORE_SHARED=1`` or
        ``0`` decides instead): then its database is this host's, on local disk."""
        if self._shared is None:
            forced = os.environ.get("ENVSTORE_SHARED")
            if forced in ("0", "1"):
                self._shared = forced == "1"
            else:
                self._shared = network_mount(self.root)
        return self._shared

    @property
    def db_path(self) -> Path:
        """``envstore.db`` in the store; for a shared store, this host's own copy."""
        if self._db_path is None:
            if not self.shared:
                return self.root / "envstore.db"
            from envstore.store.hostdb import local_db_path

            path = local_db_path(self.root)
            if not (self.root / "store.json").exists():
                return path  # its identity is not settled before the store is made
            self._db_path = path
        return self._db_path

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
        """The entry is published (and compiled for ``cache_tag``, if given), here or in
        an upstream (``entry_dir``). A string path: a warm create asks ~2 per package,
        and pathlib's joins cost ~10x the stat."""
        name = f"compiled-{cache_tag}" if cache_tag else "entry.json"
        if os.path.exists(f"{self.root}/entries/{key}/{name}"):
            return True
        if not os.environ.get("ENVSTORE_UPSTREAM") or os.path.isdir(f"{self.root}/entries/{key}"):
            return False
        found = self.upstreams().locate(key)
        return found is not None and os.path.exists(f"{found}/{name}")

    def upstreams(self) -> Layers:
        """The read-only stores under this one (``ENVSTORE_UPSTREAM``)."""
        if self._layers is None:
            from envstore.store.upstream import Layers, upstream_roots

            self._layers = Layers(upstream_roots(self.root))
        return self._layers

    def entry_dir(self, key: EntryKey) -> Path:
        """Where the entry is read from: this store (``entry_path``, where it is written),
        else the first upstream that holds it (store-layout.md, "Upstream stores")."""
        own = f"{self.root}/entries/{key}"
        if os.environ.get("ENVSTORE_UPSTREAM") and not os.path.isdir(own):
            found = self.upstreams().locate(key)
            if found is not None:
                return found
        return Path(own)

    def entry_versions(self, abi: str, name: str) -> list[str]:
        """The ``<version>-<hash>`` names of ``abi/name`` here and in the upstreams."""
        try:
            names = os.listdir(f"{self.root}/entries/{abi}/{name}")
        except OSError:
            names = []
        if os.environ.get("ENVSTORE_UPSTREAM"):
            names += [n for n in self.upstreams().versions(abi, name) if n not in names]
        return names

    def entry_record(self, key: EntryKey) -> EntryRecord:
        """The entry's ``entry.json`` (here or upstream), checked (``read_entry_record``)."""
        return read_entry_record(self.entry_dir(key))

    def entry_record_or_none(self, key: EntryKey) -> EntryRecord | None:
        """``entry_record``, or None for an entry that is missing or unreadable."""
        try:
            return read_entry_record(self.entry_dir(key))
        except StoreError:
            return None

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
        db = str(self.db_path)
        for path in (self.root, self.entries_dir, db, f"{db}-wal", f"{db}-shm"):
            try:
                # The root may be reached through a link (~/.local/share -> /data/...);
                # the files in it must be its own.
                st = os.stat(path) if path == self.root else os.lstat(path)
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(st.st_mode):
                raise StoreError(
                    f"refusing to use {path}: it is a symbolic link; the store's files must"
                    " be its own (run 'envstore rebuild-db' after removing it)"
                )
            if st.st_uid != os.geteuid():
                from envstore.errors import user_name

                owner, me = user_name(st.st_uid), user_name(os.geteuid())
                sudo = (
                    f" If it is yours and a command run with sudo made it, give it back:"
                    f" sudo chown -R {me} {self.root}."
                    if st.st_uid == 0
                    else ""
                )
                raise StoreError(
                    f"refusing to use {path}: it belongs to {owner}, not to you ({me}), so"
                    f" {owner} could change the code your environments run.{sudo} Otherwise"
                    " use a store of your own (--store DIR or ENVSTORE_HOME), or set"
                    f" ENVSTORE_TRUST_SHARED_STORE=1 if you trust {owner}"
                )
            if st.st_mode & 0o022:
                raise StoreError(
                    f"refusing to use {path}: it is writable by other users (mode"
                    f" {stat.S_IMODE(st.st_mode):o}), so they could change the code your"
                    f" environments run. Remove their write permission (chmod go-w {path}),"
                    " or set ENVSTORE_TRUST_SHARED_STORE=1 if everyone who can write it is"
                    " trusted"
                )

    def ensure(self, *, named_by: str | None = None) -> None:
        """Create the layout if needed and check its version and permissions.

        ``named_by``: the file that named this store (an env's manifest). Such a store
        must exist already: a crafted manifest never turns a directory into a store.
        """
        marker = self.root / "store.json"
        self._layout_checked = True
        try:
            layout = json.loads(marker.read_text())["layout"]
        except FileNotFoundError:
            layout = None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"{marker} is unreadable: {exc}") from exc
        if layout is None and named_by is not None:
            raise StoreError(
                f"{self.root}, the store {named_by} names, is not an envstore store;"
                " pass --store STORE to name the env's store"
            )
        if layout is None:
            self.root.mkdir(parents=True, exist_ok=True)
            for d in (*_SUBDIRS, *_STATE_DIRS):
                (self.root / d).mkdir(exist_ok=True)
            tmp = self.root / f".store.json.{temp_tag()}"
            tmp.write_text(json.dumps({"layout": LAYOUT_VERSION}) + "\n")
            os.replace(tmp, marker)
        elif layout == 1:
            self._migrate_from_1(marker)
        elif layout != LAYOUT_VERSION:
            raise StoreError(
                f"the store {self.root} has layout {layout}; this envstore uses {LAYOUT_VERSION}"
            )
        else:
            self.check_layout()
        self.check_trust()

    def _migrate_from_1(self, marker: Path) -> None:
        """Layout 1 to 2 (``upgrade.from_1``), then the layout checked again."""
        from envstore.store.upgrade import from_1

        self.check_layout()  # before the lock: locks/ may be a link out too
        with self.gc_lock(shared=False):
            from_1(self.root, self.shared, self.check_layout)
        self.check_layout()

    def check_layout(self) -> None:
        """Refuse a store whose directories are symlinks (or files): everything envstore
        writes, renames or deletes must stay inside the store. Ten lstats."""
        for name in (*_SUBDIRS, *_STATE_DIRS):
            path = f"{self.root}/{name}"
            what = not_a_directory(path)
            if what:
                raise StoreError(
                    f"{path} is {what}; envstore works only inside the store's own"
                    f" directories. Make it a directory again (mkdir {path}) or rebuild the"
                    " store"
                )

    def owns(self, path: Path) -> bool:
        """Whether ``path`` lies in the store with no symlink on the way to it: the real
        path of its parent is the store's real path plus the same relative path. (The
        last component is the caller's to lstat: deleting it never follows a link.)"""
        rel = os.path.relpath(path.parent, self.root)
        if rel == ".." or rel.startswith("../"):
            return False
        real_root = os.path.realpath(self.root)
        return os.path.realpath(path.parent) == os.path.normpath(os.path.join(real_root, rel))

    def exists(self) -> bool:
        return (self.root / "store.json").exists()

    # -- database ---------------------------------------------------------
    def db(self, *, create: bool = True) -> sqlite3.Connection:
        """The store database; created with the store, an error if it vanished later."""
        if self._conn is None:
            self.check_trust()
            if not self._layout_checked and self.exists():
                self.ensure()  # a command that reads only: its version, and a migration
            if self.shared and not self.db_path.exists() and self.exists():
                from envstore.store.hostdb import build_missing

                build_missing(self.root, self.db_path)  # this host's, from the shared store
            fresh = not any(self.roots_dir.iterdir()) if self.roots_dir.is_dir() else True
            self._conn = _db.connect(self.db_path, create=create and fresh)
        return self._conn

    def facts_cache(self, *, create: bool = True) -> InterpreterFacts:
        """The store's cache of interpreter facts, to hand to ``envstore.python``."""
        from envstore.store.caches import InterpreterFacts

        return InterpreterFacts(self.db(create=create))

    def use_connection(self, conn: sqlite3.Connection) -> None:
        """Make ``conn`` the store's database connection (``rebuild_db`` fills a new
        database beside the old one through the store's own functions)."""
        self.close()
        self._conn = conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def check_not_damaged(self, keys: list[EntryKey]) -> None:
        """Refuse to link entries that ``verify`` found damaged (until repaired)."""
        damaged = index.damaged_entries(self.db())
        if self.shared:  # what any host's verify found (one listdir)
            from envstore.store.hostroots import marks

            damaged |= set(marks(self.root, "damaged"))
        bad = sorted(damaged & {str(k) for k in keys})
        if bad:
            raise StoreError(
                f"damaged store entries: {', '.join(bad)}; run 'envstore verify --repair'"
            )

    # -- locks and temporary space -----------------------------------------
    @contextmanager
    def gc_lock(self, *, shared: bool) -> Iterator[None]:
        """Shared for creators (pick and reference entries), exclusive for deleting."""
        self.locks_dir.mkdir(exist_ok=True)  # a store whose locks/ was deleted
        with file_lock(self.locks_dir / "gc.lock", shared=shared):
            yield

    @contextmanager
    def entry_lock(self, key: EntryKey) -> Iterator[None]:
        """Serializes adding bytecode to one entry."""
        with file_lock(self.locks_dir / f"entry-{key.hash}.lock"):
            yield

    def mkdtemp(self, prefix: str) -> Path:
        """A fresh directory in ``tmp/`` (same filesystem, so publish is a rename).

        Named ``<host>@<pid>-<prefix>-<random>`` so gc can tell an abandoned one (its
        process is gone) from work in progress, and leaves other hosts' alone (a
        store on a shared filesystem) until they are old.
        """
        import tempfile

        return Path(tempfile.mkdtemp(prefix=f"{temp_tag()}-{prefix}-", dir=self.tmp_dir))
