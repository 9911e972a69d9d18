"""``envstore lock -r FILE -p 3.10 -p 3.13``: a ``pylock.toml`` of requirements, for
one interpreter or several.

The requirements are resolved once per interpreter by pip, each into a throwaway env
(as ``create -U`` resolves them: a lock is what resolves now, not whichever versions
the store holds; with ``--offline``, from the store alone), which is locked
(``envstore.env.lock.lock_env``) and removed; the locks are merged
(``envstore.model.lock_merge``): one package per version, each marked with the
Pythons that chose it, and ``environments`` naming every interpreter. Each ``-p`` is
an interpreter found on this machine (a path, or a version searched for as ``create
-p`` searches); none is downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from envstore.env.lifecycle import create_env
from envstore.env.lock import lock_env
from envstore.env.remove import remove_env
from envstore.model.lock import Lock
from envstore.model.manifest import Manifest
from envstore.model.sources import PackageSources
from envstore.store.layout import Store

__all__ = ["lock_requirements", "resolved_lock"]


def lock_requirements(
    requirements: Sequence[str] = (),
    *,
    requirement_files: Sequence[str] = (),
    pythons: Sequence[str | None] = (None,),
    store: Store | str | os.PathLike[str] | None = None,
    sources: PackageSources | None = None,
    progress: Callable[[str], None] | None = None,
) -> Lock:
    """The lock of ``requirements`` and ``requirement_files`` for each of ``pythons``
    (None: the default Python), merged into one (see the module docstring)."""
    from envstore.model.lock_merge import merged

    st = store if isinstance(store, Store) else Store(store)
    st.ensure()
    locks = []
    for python in dict.fromkeys(pythons or (None,)):
        lock, _ = resolved_lock(
            st,
            python,
            requirements,
            requirement_files=requirement_files,
            sources=sources,
            progress=progress,
        )
        locks.append(lock)
    return merged(locks)


def resolved_lock(
    st: Store,
    python: str | None,
    requirements: Sequence[str],
    *,
    requirement_files: Sequence[str] = (),
    sources: PackageSources | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[Lock, Manifest]:
    """The lock of what ``requirements`` resolve to for ``python``, and the manifest of
    the throwaway env they were resolved into."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="envstore-lock-") as tmp:
        env = Path(tmp) / "env"
        manifest = create_env(
            env,
            requirements,
            requirement_files=requirement_files,
            python=python,
            store=st,
            sources=sources,
            with_pip=False,
            upgrade=not (sources is not None and sources.offline),
            progress=progress,
        )
        try:
            return lock_env(env, store=st), manifest
        finally:
            remove_env(env, store=st)
