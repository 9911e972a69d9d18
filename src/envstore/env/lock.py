"""``lock_env``: an env's lock, from its manifest and the store's entry records."""

from __future__ import annotations

import os
from pathlib import Path

from envstore.errors import BadManifestError, LockError
from envstore.model.lock import Lock, LockedPackage, LockedPython
from envstore.store.entries import entry_sha256
from envstore.store.layout import Store

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from collections.abc import Sequence

    from envstore.model.manifest import Manifest, Package


def lock_env(
    path: str | os.PathLike[str], *, store: Store | str | os.PathLike[str] | None = None
) -> Lock:
    """The lock of the env at ``path``, from its manifest and the store (no interpreter run)."""
    from envstore.model.manifest import Manifest

    try:
        manifest = Manifest.load(Path(os.path.abspath(path)))
    except BadManifestError as exc:
        raise LockError(f"cannot lock: {exc}") from None
    if manifest.editables:
        names = ", ".join(f"{e.name} ({e.path})" for e in manifest.editables)
        raise LockError(
            f"cannot lock {manifest.env}: it has editable projects ({names}), which are"
            " source directories, not wheels a lock can name; lock an env without them"
        )
    st = store if isinstance(store, Store) else Store(store or manifest.store)
    return manifest_lock(st, manifest, manifest.packages, manifest.requirements)


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
        python=LockedPython(py.implementation, py.version, py.abi_tag, py.soabi, py.platform),
        packages=locked,
        requirements=list(requirements),
    )
