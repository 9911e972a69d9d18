"""Garbage collection: plan from the roots and the database, then delete.

Liveness is decided from registered environments only, never guessed: an env
is registered by its root link (``roots/``) and its database row, and it is
live while its manifest exists. The union of both registrations is used, so a
stale database can only make gc keep more, never delete more.

Fails closed: a registered env whose manifest exists but cannot be read might
reference anything, so nothing is deleted from ``entries/`` or ``views/``
(dead registrations and abandoned temp directories are still cleaned).
Deleting happens under the exclusive gc lock; creators hold it shared from
choosing entries until the env is registered and renamed into place, and fresh
objects get a grace period.

An env whose manifest is gone may have been moved (``mv env elsewhere``, then
``envstore relink elsewhere``), so the grace period applies to it too: the first
gc that finds it gone records when (``envs.gone_since``) and keeps what its
database rows reference; a gc after the grace period drops it. The same rules
keep a project's cached editable wheels (``editables/``): its rows name them.
"""

from __future__ import annotations

import json
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from envstore._crash import crash_point
from envstore.errors import BadManifestError, StoreError
from envstore.model.keys import EntryKey
from envstore.model.manifest import MANIFEST_NAME, Manifest
from envstore.store import caches, hostroots, index
from envstore.store.db import ensure_gone_since, write
from envstore.store.fs import OTHER_HOST_TEMP_AGE, rmtree, store_temp_abandoned
from envstore.store.gc_wheels import Item, unneeded_wheels, unused_editables
from envstore.store.layout import Store, read_entry_record
from envstore.store.registry import claim_host_roots, registered_envs
from envstore.store.views import read_view

__all__ = ["GcPlan", "apply_plan", "collect", "plan_gc", "tree_size"]

DEFAULT_GRACE = 600.0


@dataclass
class GcPlan:
    dead_envs: list[str] = field(default_factory=list)
    gone_envs: list[tuple[str, float]] = field(default_factory=list)  # (env, gone since)
    back_envs: list[str] = field(default_factory=list)  # gone before, manifest back
    dead_roots: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    delete: list[Item] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # temp dirs that could not go yet
    other_hosts: list[tuple[str, str, float]] = field(default_factory=list)  # host, env, seen
    dropped_hosts: list[tuple[str, str]] = field(default_factory=list)  # host, env
    seen_roots: list[str] = field(default_factory=list)  # this host's, live: mark seen
    gone_roots: dict[str, str | None] = field(default_factory=dict)  # gone or back: root

    @property
    def bytes(self) -> int:
        return sum(i.size for i in self.delete)


def tree_size(path: Path) -> int:
    """Bytes used by a tree (lstat sizes; symlinks never followed)."""
    total = 0
    try:
        st = os.lstat(path)
    except OSError:
        return 0
    if not stat.S_ISDIR(st.st_mode):
        return st.st_size
    for dirpath, dirnames, filenames in os.walk(path):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def plan_gc(
    store: Store, *, grace: float = DEFAULT_GRACE, now: float | None = None, sizes: bool = True
) -> GcPlan:
    """What a gc would do; reads only. Call with the gc lock held.

    ``sizes=False`` leaves each item's size at 0 for ``apply_plan`` to fill in
    while deleting (one walk of each tree instead of two).
    """
    now = time.time() if now is None else now
    plan = GcPlan()

    def size(path: Path) -> int:
        return tree_size(path) if sizes else 0

    conn = store.db(create=False)
    gone_since = index.gone_since(conn)
    refs = index.env_refs(conn)
    live: set[str] = set()
    keep_everything = False
    # A shared store: every host's gone clocks, and what its envs use, from state/.
    shared_gone = hostroots.gone_marks(store.root) if store.shared else {}
    for env, root in registered_envs(store).items():
        manifest_path = Path(env) / MANIFEST_NAME
        since = shared_gone.get(root or "", gone_since.get(env))
        shared_refs = hostroots.read_refs(store.root, root) if root and store.shared else None
        used = refs.get(env) or shared_refs
        if not manifest_path.exists():
            # Known to have lived: this host's rows, any host's gone clock, or (shared)
            # its state/refs file, written with its root by the host that made it.
            known = env in gone_since or root in shared_gone or shared_refs is not None
            if used and known and now - (since or now) < grace:
                # Maybe moved: keep what it used until relinked or the grace is over.
                plan.gone_envs.append((env, now if since is None else since))
                plan.gone_roots[env] = root
                live.update(used)
                continue
            plan.dead_envs.append(env)
            if root is not None:
                plan.dead_roots.append(store.roots_dir / root)
            continue
        if since is not None:
            plan.back_envs.append(env)
            plan.gone_roots[env] = root
        try:
            manifest = Manifest.load(manifest_path)
        except BadManifestError as exc:
            plan.problems.append(f"{env}: {exc} (keeping every entry it might use)")
            keep_everything = True
            continue
        live.update(index.env_objects(manifest))
        if root and "@" in root:
            plan.seen_roots.append(root)
        # And what its rows name: a relink killed midway registered both its old
        # and new objects, and its manifest names only one set.
        live.update(used or ())

    # Other hosts' local envs: kept with what they use until not seen for long.
    others = hostroots.other_hosts(store.root, now)
    live.update(others.used)
    plan.other_hosts = others.kept
    plan.dropped_hosts = [(host, env) for host, env, _ in others.dropped]
    plan.dead_roots += [store.roots_dir / name for _, _, name in others.dropped]
    plan.problems += [f"{u} (keeping every entry it might use)" for u in others.unknown]
    keep_everything = keep_everything or bool(others.unknown)

    # Ages (and a view's entries) come from the database; the files on disk
    # answer only for what it does not know.
    known_entries = index.entry_ages(conn)
    known_views = index.view_rows(conn)
    views = _scan_views(store, known_views)
    entries = _scan_entries(store, plan, known_entries)
    for vkey, (path, added, view_entries) in views.items():
        if f"view/{vkey}" in live or keep_everything or now - added < grace:
            live.update(view_entries)  # a kept view keeps its entries (it links to them)
            continue
        plan.delete.append(Item("view", vkey, path, size(path)))
    for key, (path, added) in entries.items():
        if key in live:
            continue
        if keep_everything or now - added < grace:
            continue
        plan.delete.append(Item("entry", key, path, size(path)))
    if not keep_everything:
        doomed = {i.name for i in plan.delete if i.kind == "entry"}
        plan.delete += unneeded_wheels(store, entries, doomed, grace, now, size)
        plan.delete += unused_editables(store, live, grace, now, size)
    if store.tmp_dir.is_dir():
        for name in sorted(os.listdir(store.tmp_dir)):
            path = store.tmp_dir / name
            try:
                age = now - os.lstat(path).st_mtime
            except OSError:
                continue
            if store_temp_abandoned(name, age, max(grace, OTHER_HOST_TEMP_AGE)):
                plan.delete.append(Item("temp", name, path, size(path)))
    return plan


def _scan_views(
    store: Store, known: dict[str, tuple[float, str]]
) -> dict[str, tuple[Path, float, list[str]]]:
    found: dict[str, tuple[Path, float, list[str]]] = {}
    if not store.views_dir.is_dir():
        return found
    for name in sorted(os.listdir(store.views_dir)):
        path = store.views_dir / name
        if path.is_symlink() or not path.is_dir():
            continue
        try:
            added, listed = known[name]
            found[name] = (path, float(added), list(json.loads(listed)))
            continue
        except (KeyError, ValueError, TypeError):
            pass
        try:
            entries = read_view(path).entries
            found[name] = (path, os.lstat(path / "view.json").st_mtime, entries)
        except (OSError, StoreError):
            found[name] = (path, os.lstat(path).st_mtime, [])
    return found


def _scan_entries(
    store: Store, plan: GcPlan, known: dict[str, float]
) -> dict[str, tuple[Path, float]]:
    """Entries on disk; anything in entries/ that is not one is planned for removal."""
    found: dict[str, tuple[Path, float]] = {}
    base = store.entries_dir
    if not base.is_dir():
        return found
    for abi in sorted(os.listdir(base)):
        for name in _dirs(base / abi, plan, f"{abi}"):
            for ver in _dirs(base / abi / name, plan, f"{abi}/{name}"):
                path = base / abi / name / ver
                if path.is_symlink() or not path.is_dir():
                    plan.delete.append(Item("stray", f"{abi}/{name}/{ver}", path, 0))
                    continue
                key = f"{abi}/{name}/{ver}"
                if key in known:
                    found[key] = (path, float(known[key]))
                    continue
                try:
                    EntryKey.parse(key)
                    added = read_entry_record(path).added
                except (OSError, ValueError, StoreError):
                    added = os.lstat(path).st_mtime
                found[key] = (path, added)
    return found


def _dirs(path: Path, plan: GcPlan, label: str) -> list[str]:
    if path.is_symlink() or not path.is_dir():
        plan.delete.append(Item("stray", label, path, 0))
        return []
    return sorted(os.listdir(path))


def apply_plan(store: Store, plan: GcPlan) -> None:
    """Carry out a plan made under the same exclusive gc lock."""
    for root in plan.dead_roots:
        if root.is_symlink():
            root.unlink()
        hostroots.forget(store.root, root.name)
    hostroots.refresh(store.root, plan.seen_roots)
    if store.shared:  # every host's gc sees when an env was first found gone
        gone = [(plan.gone_roots.get(env), since) for env, since in plan.gone_envs]
        hostroots.record_gone(store.root, gone, [plan.gone_roots.get(e) for e in plan.back_envs])
    left: list[Item] = []
    for item in plan.delete:
        # Every path came from listing the store's own directories; each is checked
        # by real path (no link on the way), and rmtree never follows a link.
        if not store.owns(item.path):
            plan.skipped.append(f"{item.path} (not inside the store by its real path)")
            left.append(item)
            continue
        try:
            item.size = rmtree(item.path)
        except OSError as exc:
            if item.kind not in ("temp", "editable"):
                raise
            # A killed process's last writer may still be adding to it, a create may be
            # caching a wheel into a project's directory: the next gc.
            plan.skipped.append(f"{item.path} ({exc.strerror or exc}); the next gc removes it")
            left.append(item)
        crash_point("gc-deleting")
    plan.delete = [i for i in plan.delete if i not in left]
    for abi_dir in store.entries_dir.glob("*/*"):
        if abi_dir.is_dir() and not abi_dir.is_symlink() and not any(abi_dir.iterdir()):
            abi_dir.rmdir()
    conn = store.db(create=False)
    stale_hashes = caches.stale_wheel_hashes(conn)  # stat()s: before taking the write lock
    with write(conn):
        for env in plan.dead_envs:
            index.forget_env(conn, env)
        for env, since in plan.gone_envs:
            index.mark_gone(conn, env, since)
        for env in plan.back_envs:
            index.mark_back(conn, env)
        deleted_entries = [i.name for i in plan.delete if i.kind == "entry"]
        for key in deleted_entries:
            index.forget_entry(conn, key)
        for item in plan.delete:
            if item.kind == "view":
                index.forget_view(conn, item.name)
        # The caches, each by what makes a row useless: a resolution or a bundled pip's
        # entry naming a deleted entry (the rest still answer right); a wheel's hash
        # once its file is gone or changed (it would never match again).
        caches.drop_answers_naming(conn, deleted_entries)
        caches.drop_wheel_hashes(conn, stale_hashes)


def collect(store: Store, *, grace: float = DEFAULT_GRACE, dry_run: bool = False) -> GcPlan:
    """Plan and (unless ``dry_run``) apply a gc of ``store``."""
    if not store.exists():
        return GcPlan()
    conn = store.db(create=False)  # refuses, with the rebuild hint, if the database is gone
    check = index.quick_check(conn)
    if check != "ok":
        raise StoreError(
            f"the store database {store.db_path} is damaged ({check}); gc will not run."
            " Run 'envstore rebuild-db' to rebuild it from the store"
        )
    store.check_layout()  # a tmp/ or views/ that is a link out: gc deletes nothing
    if not dry_run:
        ensure_gone_since(conn)
    with store.gc_lock(shared=dry_run):
        if store.shared and not dry_run:  # roots from before the store was shared
            claim_host_roots(store)
        plan = plan_gc(store, grace=grace, sizes=dry_run)
        if not dry_run:
            crash_point("gc-planned")
            apply_plan(store, plan)
    return plan
