"""What the store holds: registered environments and space accounting."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from envstore.errors import BadManifestError
from envstore.model.manifest import MANIFEST_NAME, Manifest
from envstore.store import index
from envstore.store.gc import tree_size
from envstore.store.layout import Store
from envstore.store.registry import registered_envs

__all__ = ["EnvStatus", "StoreUsage", "list_envs", "store_usage"]


@dataclass
class EnvStatus:
    path: str
    python: str
    packages: int
    status: str  # ok | missing | base interpreter broken | manifest unreadable

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def list_envs(store: Store) -> list[EnvStatus]:
    """Every registered environment and whether it works, from manifests alone."""
    if not store.exists():
        return []
    found: list[EnvStatus] = []
    for env in sorted(registered_envs(store)):
        if not (Path(env) / MANIFEST_NAME).exists():
            found.append(EnvStatus(env, "", 0, "missing"))
            continue
        try:
            manifest = Manifest.load(Path(env))
        except BadManifestError:
            found.append(EnvStatus(env, "", 0, "manifest unreadable"))
            continue
        python = Path(env) / "bin" / "python"
        ok = os.path.exists(python) and os.access(python, os.X_OK)
        found.append(
            EnvStatus(
                env,
                manifest.python.version,
                len(manifest.packages),
                "ok" if ok else "base interpreter broken",
            )
        )
    return found


@dataclass
class StoreUsage:
    entries: int
    views: int
    envs: int
    bytes: int  # on disk: entries, views and kept wheels
    shared_bytes: int  # what envs would hold if each had its own copies
    unreferenced: int  # entries no env uses (gc candidates)
    wheels: int = 0  # files in wheels/ (kept to repair, lock or rebuild entries)
    # upstream store -> the entries envs use from it ("" : used, and in no layer now)
    upstream: dict[str, list[str]] = field(default_factory=dict)

    @property
    def saved(self) -> int:
        return max(self.shared_bytes - self.bytes, 0)

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "saved": self.saved}


def store_usage(store: Store) -> StoreUsage:
    if not store.exists():
        return StoreUsage(0, 0, 0, 0, 0, 0)
    conn = store.db(create=False)
    refs = index.ref_counts(conn)
    entries = sorted(p for p in store.entries_dir.glob("*/*/*") if p.is_dir())
    total = shared = unreferenced = 0
    for path in entries:
        size = tree_size(path)
        total += size
        count = refs.get(str(path.relative_to(store.entries_dir)), 0)
        shared += size * count
        unreferenced += count == 0
    views = [p for p in store.views_dir.iterdir() if p.is_dir()] if store.views_dir.is_dir() else []
    total += sum(tree_size(v) for v in views)
    wheels = sorted(store.wheels_dir.iterdir()) if store.wheels_dir.is_dir() else []
    total += sum(tree_size(w) for w in wheels)
    envs = index.env_count(conn)
    found = StoreUsage(len(entries), len(views), envs, total, shared, unreferenced, len(wheels))
    own = {str(p.relative_to(store.entries_dir)) for p in entries}
    used = [k for k in refs if k not in own and not k.startswith(("view/", "editable/"))]
    if used:
        found.upstream = _layers(store, used)
    return found


def _layers(store: Store, keys: list[str]) -> dict[str, list[str]]:
    """Which upstream store each of ``keys`` (used by envs, not in the store) is read
    from: looked up by path, the upstreams are not scanned."""
    from envstore.model.keys import EntryKey

    layers: dict[str, list[str]] = {}
    for text in sorted(keys):
        try:
            key = EntryKey.parse(text)
        except ValueError:
            continue
        where = str(store.entry_dir(key))
        layer = where.partition("/entries/")[0] if store.has_entry(key) else ""
        layers.setdefault(layer, []).append(text)
    return layers
