"""``lock_env``: an env's lock, from its manifest, the store's entry records and what
pip or uv installed into its site-packages.

A package pip or uv put into ``site-packages`` is part of the env (it runs, and
shadows a store package of the same name): it is locked when the store holds the
very same wheel (the same name and version, and every file its RECORD lists with
the same hash; uv's re-installs of store packages are such), in place of the store
package it shadows. Anything else (a wheel the store does not hold, an editable
install) makes the lock fail, naming each and the fix: a lock that left them out
would rebuild another env than this one.

A package built from source has no wheel file a lock can name; it is locked as its
source where the env's requirements name it (``envstore.env.lock_sources``: an
sdist, archive, VCS commit or project directory), and the env's editable projects as
``directory`` packages marked editable.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from envstore.env.pipstate import RECORD_LIMIT, SiteDist, foreign_dists
from envstore.errors import BadManifestError, LockError
from envstore.model.keys import EntryKey
from envstore.model.lock import Lock, LockedDirectory, LockedPackage, LockedPython
from envstore.model.manifest import Manifest, Package
from envstore.store.entries import entry_sha256
from envstore.store.fs import read_small
from envstore.store.layout import Store

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["lock_env", "manifest_lock"]


def lock_env(
    path: str | os.PathLike[str],
    *,
    store: Store | str | os.PathLike[str] | None = None,
    find_links: Sequence[str | os.PathLike[str]] = (),
) -> Lock:
    """The lock of the env at ``path``, from its manifest and the store (no interpreter
    run). Each wheel's file is located for ``Lock.save`` (a ``pylock.toml``): where it was
    ingested from, or a file of its name and sha256 in the env's ``--find-links``
    directories or ``find_links``; else the source it was built from, when known (see
    the module docstring); a wheel found nowhere is named when the lock is written
    (``Lock.save``) but the lock still rebuilds the env (``create_env(lock=)``)."""
    env = Path(os.path.abspath(path))
    try:
        manifest = Manifest.load(env)
    except BadManifestError as exc:
        raise LockError(f"cannot lock: {exc}") from None
    st = store if isinstance(store, Store) else Store(store or manifest.store)
    chosen = {p.name: (p.key, p.wheel, p.requested) for p in manifest.packages}
    unlockable = []
    for d in foreign_dists(env, manifest):
        key = None if d.editable else _stored_same(st, manifest, env, d)
        if key is None:
            unlockable.append(d)
            continue
        was = chosen.get(d.name)  # what the manifest says stays: requested, wheel name
        if was is None:
            chosen[d.name] = (key, "", d.requested)
        elif was[0] != key:
            chosen[d.name] = (key, "", was[2])
    if unlockable:
        raise LockError(_unlockable(manifest, env, unlockable))
    packages = [
        Package(name, key.version, key, wheel, requested)
        for name, (key, wheel, requested) in sorted(chosen.items())
    ]
    lock = manifest_lock(st, manifest, packages, manifest.requirements)
    recorded = [d for d in manifest.sources.find_links if "://" not in d]
    dirs = [*recorded, *(os.path.abspath(d) for d in find_links)]
    keys = [p.key for p in packages]  # manifest_lock keeps their order
    located = [_located(st, k, p, dirs) for k, p in zip(keys, lock.packages, strict=True)]
    _from_sources(st, manifest, lock, located)
    return lock


def _from_sources(st: Store, manifest: Manifest, lock: Lock, located: list[LockedPackage]) -> None:
    """``lock``'s packages: ``located``, where a wheel's file is known; else what it was
    built from where the env's requirements say (``lock_sources``): an sdist, archive
    or VCS commit, or a project directory (a PEP 751 ``directory``); and the env's
    editable projects as ``directory`` packages marked editable."""
    from dataclasses import replace

    from envstore.env.lock_sources import built_sources

    unknown = [p for p in located if not (p.path or p.url)]
    sources = built_sources(st, manifest) if unknown else {}
    lock.packages, lock.directories = [], []
    for p in located:
        src = sources.get(p.name) if not (p.path or p.url) else None
        if isinstance(src, LockedDirectory):
            lock.directories.append(src)
        elif src is not None:
            lock.packages.append(replace(src, requested=p.requested))
        else:
            lock.packages.append(p)
    lock.directories += [LockedDirectory(e.name, e.path, editable=True) for e in manifest.editables]


def _located(st: Store, key: EntryKey, p: LockedPackage, dirs: Sequence[str]) -> LockedPackage:
    """``p`` with the path of a file outside the store holding its wheel (same name and
    sha256): where its entry was ingested from, else one in ``dirs``; else with the
    URL (and index) its entry records the wheel was downloaded from."""
    from dataclasses import replace

    from envstore.store.hashing import sha256_file

    places = [Path(d) / p.wheel for d in dirs]
    record = st.entry_record_or_none(key)
    if record is not None and record.origin and os.path.isabs(record.origin):
        places.insert(0, Path(record.origin))
    root = st.root.resolve()
    for place in places:
        try:
            real = place.resolve()
            if place.name != p.wheel or real.is_relative_to(root) or not real.is_file():
                continue
            if sha256_file(real) == p.sha256:
                return replace(p, path=str(place))
        except OSError:
            continue
    if record is not None and record.url and record.sha256 == p.sha256:
        return replace(p, url=record.url, index=record.index)
    return p


def manifest_lock(
    st: Store, manifest: Manifest, packages: Sequence[Package], requirements: Sequence[str]
) -> Lock:
    """A lock of ``packages`` (of ``manifest``'s env, whose entries are in ``st``) that
    records ``requirements``."""
    locked: list[LockedPackage] = []
    problems: list[str] = []
    for p in packages:
        found = entry_sha256(st, p.key)
        if isinstance(found, str):
            problems.append(f"{p.name} {p.version}: {found}")
            continue
        digest, wheel = found
        locked.append(LockedPackage(p.name, p.version, p.wheel or wheel, digest, p.requested))
    if problems:
        raise LockError(
            f"cannot lock {manifest.env}:\n  - "
            + "\n  - ".join(problems)
            + f"\n(envstore relink {manifest.env} rebuilds missing entries)"
        )
    py = manifest.python
    return Lock(
        python=LockedPython(
            py.implementation,
            py.version,
            py.abi_tag,
            py.soabi,
            py.platform,
            py.markers.get("sys_platform", ""),
            py.markers.get("platform_machine", ""),
        ),
        packages=locked,
        requirements=list(requirements),
    )


def _unlockable(manifest: Manifest, env: Path, found: list[SiteDist]) -> str:
    import shlex

    wheels = [d for d in found if not d.editable]
    fixes = []
    if wheels:
        pins = [f"{d.name}=={d.version}" for d in wheels]
        fixes.append(
            "add them from a wheel envstore stores: "
            + shlex.join(["envstore", "install", str(env), *pins])
        )
    fixes.append(
        "or remove them: "
        + shlex.join(
            [str(env / "bin" / "python"), "-m", "pip", "uninstall", "-y", *(d.name for d in found)]
        )
    )
    return (
        f"cannot lock {manifest.env}: installed into its site-packages by pip or uv, and"
        " not a wheel the store holds (an editable install is a source directory): "
        + ", ".join(d.describe() for d in found)
        + "; "
        + ", ".join(fixes)
        + "; then lock again"
    )


def _stored_same(st: Store, manifest: Manifest, env: Path, d: SiteDist) -> EntryKey | None:
    """The store entry made from the very wheel ``d`` was installed from, if any."""
    from packaging.version import Version

    from envstore.resolve.rewheel import entries_named

    installed = read_small(env / manifest.python.purelib / d.dist_info / "RECORD", RECORD_LIMIT)
    if installed is None:
        return None
    mine = _hashed_rows(installed)
    for key in entries_named(st, d.name, manifest.python):
        if Version(key.version) != Version(d.version):
            continue
        record = st.entry_record_or_none(key)
        if record is None:
            continue
        stored = read_small(st.entry_dir(key) / "site" / record.dist_info / "RECORD", RECORD_LIMIT)
        theirs = _hashed_rows(stored or b"", record.dist_info)
        if theirs and theirs <= mine:
            return key
    return None


def _hashed_rows(record: bytes, dist_info: str = "") -> set[tuple[str, str]]:
    """(path, hash) of a RECORD's hashed rows, less what installers write themselves
    (INSTALLER, REQUESTED, direct_url.json, scripts and data moved out of the wheel's
    layout): what a wheel's files are, wherever they were installed."""
    generated = {f"{dist_info}/{n}" for n in ("INSTALLER", "REQUESTED", "direct_url.json")}
    rows = set()
    try:
        for row in csv.reader(record.decode("utf-8").splitlines()):
            path = row[0] if row else ""
            moved = path.startswith("../") or ".data/" in path  # scripts, data, headers
            if len(row) >= 2 and row[1] and path not in generated and not moved:
                rows.add((path, row[1]))
    except (UnicodeDecodeError, csv.Error):
        return set()
    return rows
