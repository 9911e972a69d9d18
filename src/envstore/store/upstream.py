"""Read-only upstream stores: ``ENVSTORE_UPSTREAM`` (store-layout.md, "Upstream stores").

An upstream is an ordinary store that someone else made (a site's admin) and the user
may only read: listing it is the user's decision to trust its code. envstore never
writes there, never opens its database and never scans it: an entry is looked up by
its path, ``<upstream>/entries/<key>``, only when the user's own store lacks it. What
is found is still untrusted data where paths are concerned: the entry's real path must
be that path below the upstream's real path (no link on the way out), its top-level
names must not be links, and its ``entry.json`` must be valid and name the key.

This module is imported only when ``ENVSTORE_UPSTREAM`` is set (the warm create path
pays nothing otherwise).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from envstore.errors import StoreError
from envstore.model.keys import EntryKey
from envstore.model.records import EntryRecord
from envstore.store.fs import read_small

__all__ = ["UPSTREAM_VAR", "Layers", "copy_entry", "layer_of", "upstream_roots"]

UPSTREAM_VAR = "ENVSTORE_UPSTREAM"


def upstream_roots(own: Path) -> tuple[Path, ...]:
    """The stores ``ENVSTORE_UPSTREAM`` lists (``os.pathsep``-separated, highest
    priority first), each once, without the user's own store. Each must be absolute
    (``~`` expanded): a relative one would trust whatever the current directory (a
    cloned repo, say) holds under that name."""
    roots: list[Path] = []
    own_real = os.path.realpath(own)
    for part in os.environ.get(UPSTREAM_VAR, "").split(os.pathsep):
        if not part.strip():
            continue
        path = os.path.expanduser(part.strip())
        if not os.path.isabs(path):
            raise StoreError(
                f"${UPSTREAM_VAR} lists {part.strip()!r}, which is not an absolute path;"
                " list upstream stores by absolute path"
            )
        root = Path(os.path.abspath(path))
        if root not in roots and os.path.realpath(root) != own_real:
            roots.append(root)
    return tuple(roots)


def _no_links_below(entry: str) -> bool:
    """What envstore links or copies from an entry (``entry.json``, ``site/`` and
    ``data/`` and their top-level names, data scripts) is no symbolic link. Deeper
    files are the upstream's code, which the user chose to trust; verify checks them."""
    try:
        if not stat.S_ISREG(os.lstat(f"{entry}/entry.json").st_mode):
            return False
        for sub in ("site", "data", "data/scripts", "data/data", "data/headers"):
            top = f"{entry}/{sub}"
            try:
                st = os.lstat(top)
            except FileNotFoundError:
                if sub == "site":
                    return False
                continue
            if not stat.S_ISDIR(st.st_mode):
                return False
            with os.scandir(top) as it:
                if any(e.is_symlink() for e in it):
                    return False
    except OSError:
        return False
    return True


class Layers:
    """The upstreams of one store, and what was found in them (cached per process)."""

    def __init__(self, roots: tuple[Path, ...]) -> None:
        self.roots = roots
        self._real: dict[Path, str | None] = {}
        self._found: dict[str, Path | None] = {}

    def _real_root(self, root: Path) -> str | None:
        if root not in self._real:
            real = os.path.realpath(root)
            self._real[root] = real if os.path.isfile(f"{real}/store.json") else None
        return self._real[root]

    def locate(self, key: EntryKey) -> Path | None:
        """The entry ``key`` in the first upstream that holds it, checked (see the
        module docstring); None if none does."""
        text = str(key)
        if text not in self._found:
            self._found[text] = next(
                (e for e in (self._in(root, key) for root in self.roots) if e), None
            )
        return self._found[text]

    def _in(self, root: Path, key: EntryKey) -> Path | None:
        real = self._real_root(root)
        if real is None:
            return None
        entry = f"{root}/entries/{key}"
        if os.path.realpath(entry) != f"{real}/entries/{key}" or not _no_links_below(entry):
            return None
        import json

        try:  # the layout's reader would say "run verify --repair": not the user's to run
            record = EntryRecord.from_json(
                json.loads(read_small(f"{entry}/entry.json", 1 << 24) or b"")
            )
        except ValueError:
            return None
        return Path(entry) if record.key == str(key) else None

    def versions(self, abi: str, name: str) -> list[str]:
        """The ``<version>-<hash>`` directory names of ``abi/name`` in every upstream (not
        yet checked: ``locate`` checks the one used)."""
        found: list[str] = []
        for root in self.roots:
            if self._real_root(root) is None:
                continue
            try:
                found += [n for n in os.listdir(f"{root}/entries/{abi}/{name}") if n not in found]
            except OSError:
                continue
        return found


def layer_of(path: str, own: Path) -> str | None:
    """The store a path of an entry lies in (``<store>/entries/...``), None for the
    user's own store ``own`` or for a path that names no store's entries."""
    if path.startswith(f"{own}/entries/"):
        return None
    head, sep, _ = path.partition("/entries/")
    return head if sep and head else None


def copy_entry(key: EntryKey, src: Path, dest: Path) -> None:
    """Copy the upstream entry ``src`` into the empty directory ``dest`` (in the user's
    ``tmp/``): directories and regular files only, never following a link (an entry
    holds none; one found is refused). The copy's files are the user's, writable until
    the caller makes them read-only."""
    import shutil

    for top, dirs, files in os.walk(src):
        rel = os.path.relpath(top, src)
        here = dest if rel == "." else dest / rel
        for name in dirs + files:
            path = os.path.join(top, name)
            st = os.lstat(path)
            if stat.S_ISDIR(st.st_mode):
                (here / name).mkdir()
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb", opener=_nofollow) as f, open(here / name, "xb") as out:
                    shutil.copyfileobj(f, out, 1 << 20)
                os.chmod(here / name, 0o755 if st.st_mode & 0o111 else 0o644)
            else:
                raise StoreError(
                    f"the upstream entry {src} holds {os.path.join(rel, name)}, which is not a"
                    f" file or directory; it was not used (ask the upstream's admin to run"
                    f" 'envstore verify' there)"
                )


def _nofollow(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NOFOLLOW)


def view_layers(view: Path, own: Path) -> dict[str, bool]:
    """The upstream stores the view ``view`` links into (its ``site/`` and the real
    directories merged one level down), each with whether every such link still leads
    somewhere. Links are read, never followed out."""
    found: dict[str, bool] = {}
    site = view / "site"
    try:
        tops = list(os.scandir(site))
    except OSError:
        return found
    entries = list(tops)
    for e in tops:
        if not e.is_symlink() and e.is_dir():
            try:
                entries += list(os.scandir(e.path))
            except OSError:
                continue
    for e in entries:
        if not e.is_symlink():
            continue
        try:
            target = os.readlink(e.path)
        except OSError:
            continue
        layer = layer_of(target, own)
        if layer is not None:
            found[layer] = found.get(layer, True) and os.path.exists(target)
    # The store itself, spelled another way (a link to it, --store given differently).
    own_real = os.path.realpath(own)
    return {k: v for k, v in found.items() if os.path.realpath(k) != own_real}
