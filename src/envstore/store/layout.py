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
from envstore.store.containment import owned
from envstore.store.fs import network_mount, not_a_directory, temp_tag
from envstore.store.locks import file_lock

TYPE_CHECKING = False  # not typing's: importing typing costs every CLI start ~3 ms
if TYPE_CHECKING:
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
# 3: ``"shared": true`` in store.json once any host uses the store in shared mode:
#    then every host does. An envstore of layout 2 would decide it per host, and a
#    host that sees the store local would make roots the others take for gone envs.
LAYOUT_VERSION = 3
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
        self._recorded_shared: bool | None = None  # store.json's "shared"
        self._db_path: Path | None = None
        self._layout_checked = False  # ensure() ran (a layout 1 store is migrated there)
        self._subs: dict[str, Path] = {}

    # -- layout -----------------------------------------------------------
    @property
    def shared(self) -> bool:
        """Whether other hosts may use the store at once: its ``store.json`` says so
        (then every host does), else a network filesystem is under it (mountinfo);
        ``ENVSTORE_SHARED=1`` forces it on, ``0`` off (an error if recorded shared)."""
        if self._shared is None:
            forced = os.environ.get("ENVSTORE_SHARED")
            if self._recorded_shared is None:  # ensure() not run: a bad file is its to report
                self._recorded_shared = self._read_marker(strict=False)[1]
            if self._recorded_shared:
                if forced == "0":
                    raise StoreError(
                        f"ENVSTORE_SHARED=0, but {self.root}/store.json records the store as"
                        " shared by several hosts, so every host must use it in shared mode;"
                        " unset ENVSTORE_SHARED"
                    )
                self._shared = True
            elif forced in ("0", "1"):
                self._shared = forced == "1"
            else:
                self._shared = network_mount(self.root)
        return self._shared

    def _read_marker(self, *, strict: bool = True) -> tuple[int | None, bool]:
        """``store.json``'s layout (None: no store yet) and whether it records the store
        shared; unreadable: a StoreError, or (not ``strict``) ``(None, False)``."""
        marker = self.root / "store.json"
        try:
            data = json.loads(marker.read_bytes())  # no text layer: ~10 us
            layout, shared = data["layout"], data.get("shared", False)
            if not isinstance(shared, bool):
                raise TypeError(f"'shared' is {shared!r}, not true or false")
        except FileNotFoundError:
            return None, False
        except (OSError, ValueError, KeyError, TypeError) as exc:
            if not strict:
                return None, False
            raise StoreError(f"{marker} is unreadable: {exc}") from exc
        return layout, shared

    @property
    def db_path(self) -> Path:
        """``envstore.db`` in the store; for a shared store, this host's own copy."""
        if self._db_path is None:
            if not self.shared:
                return self._sub("envstore.db")
            from envstore.store.hostdb import local_db_path

            path = local_db_path(self.root)
            if not (self.root / "store.json").exists():
                return path  # its identity is not settled before the store is made
            self._db_path = path
        return self._db_path

    def _sub(self, name: str) -> Path:
        """``root / name``, joined once per Store (the root never changes; a sync asks
        for these paths ~15 times, each pathlib join ~2 us)."""
        path = self._subs.get(name)
        if path is None:
            path = self._subs[name] = self.root / name
        return path

    @property
    def entries_dir(self) -> Path:
        return self._sub("entries")

    @property
    def views_dir(self) -> Path:
        return self._sub("views")

    @property
    def roots_dir(self) -> Path:
        return self._sub("roots")

    @property
    def tmp_dir(self) -> Path:
        return self._sub("tmp")

    @property
    def locks_dir(self) -> Path:
        return self._sub("locks")

    @property
    def wheels_dir(self) -> Path:
        return self._sub("wheels")

    def entry_path(self, key: EntryKey) -> Path:
        return Path(f"{self.root}/entries/{key}")

    def has_entry(self, key: EntryKey, cache_tag: str | None = None) -> bool:
        """The entry is published (and compiled for ``cache_tag``, if given), here or in
        an upstream (``entry_dir``). A string path: a warm create asks ~2 per package,
        and pathlib's joins cost ~10x the stat."""
        name = f"compiled-{cache_tag}" if cache_tag else "entry.json"
        try:  # os.path.exists, without its call (not os.access: faccessat2 is refused
            os.stat(f"{self.root}/entries/{key}/{name}")  # by older container seccomp)
            return True
        except (OSError, ValueError):
            pass
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
        if self.shared:  # this host's database directory: always the user's own
            from envstore.store.hostdb import check_db_dir

            check_db_dir(self.db_path)
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
            if stat.S_ISLNK(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
                from envstore.store.trust import refusal

                raise refusal(path, st, self.root)

    def ensure(self, *, named_by: str | None = None) -> None:
        """Create the layout if needed and check its version and permissions.

        ``named_by``: the file that named this store (an env's manifest). Such a store
        must exist already: a crafted manifest never turns a directory into a store.
        """
        self._layout_checked = True
        layout, self._recorded_shared = self._read_marker()
        if layout is None and named_by is not None:
            raise StoreError(
                f"{self.root}, the store {named_by} names, is not an envstore store;"
                " pass --store STORE to name the env's store"
            )
        if layout is None:
            from envstore.store.upgrade import write_marker

            self.root.mkdir(parents=True, exist_ok=True)
            for d in (*_SUBDIRS, *_STATE_DIRS):
                (self.root / d).mkdir(exist_ok=True)
            write_marker(self.root, LAYOUT_VERSION, self.shared)
        elif layout not in (1, 2, LAYOUT_VERSION):
            raise StoreError(
                f"the store {self.root} has layout {layout}; this envstore uses {LAYOUT_VERSION}"
            )
        elif layout != LAYOUT_VERSION or (self.shared and not self._recorded_shared):
            self._upgrade()
        else:
            self.check_layout()
        self.check_trust()

    def _upgrade(self) -> None:
        """``upgrade.upgrade`` under the exclusive gc lock (no create registers a root
        meanwhile), the layout checked before the lock is taken (locks/ a link out)."""
        from envstore.store.upgrade import upgrade

        self.check_layout()
        with self.gc_lock(shared=False):
            self._recorded_shared = upgrade(
                self.root, LAYOUT_VERSION, self.shared, self.check_layout
            )
        self._db_path = None  # its identity has store.json's inode, replaced just now
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
        return owned(self.root, path)

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

        conn = self.db(create=create)
        return InterpreterFacts(conn, str(self.db_path))

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
        """Refuse to link entries that ``verify`` found damaged (until repaired; in shared
        mode see ``envstore.store.damage``)."""
        from envstore.store.damage import refused_entries

        bad = refused_entries(self.root, self.db(), self.shared, [str(k) for k in keys])
        if bad:
            raise StoreError(
                f"damaged store entries: {', '.join(bad)}; run 'envstore verify --repair'"
            )

    # -- locks and temporary space -----------------------------------------
    @contextmanager
    def gc_lock(self, *, shared: bool) -> Iterator[None]:
        """Shared for creators (pick and reference entries), exclusive for deleting."""
        self.locks_dir.mkdir(exist_ok=True)  # a store whose locks/ was deleted
        with file_lock(self._sub("locks/gc.lock"), shared=shared):
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
