"""Which envs use the store: gc roots on disk (``roots/``) and the envs and refs
rows of the database.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from envstore.errors import StoreError
from envstore.model.manifest import MANIFEST_NAME, Manifest
from envstore.store import index
from envstore.store.db import write
from envstore.store.fs import host_name, manifest_links, on_shared_storage, temp_tag
from envstore.store.layout import Store


def root_name(env: Path, store: Store | None = None) -> str:
    """The file name of an env's gc root: a hash of its absolute path, and for an env on
    this host's local disk, in a shared store, ``@<host>`` (``/tmp/venv`` on two hosts
    is two envs; an env on shared storage is one for every host)."""
    import xxhash

    name = str(xxhash.xxh3_64_hexdigest(str(env).encode()))
    if store is not None and store.shared and not on_shared_storage(env):
        return f"{name}@{host_name()}"
    return name


def register_env(
    store: Store,
    manifest: Manifest,
    final: Path,
    text: str | None = None,
    also: Sequence[str] = (),
    digest: str | None = None,
    retire_as: str | None = None,
) -> None:
    """Record ``final`` as a live env: its gc root on disk and its rows in the database.
    ``text``: the manifest as saved, when the caller has it (saves encoding it again).
    ``also``: more objects to reference (what the env uses until a switch completes).
    ``digest``: the manifest digest to record instead of the text's (``""`` for a
    manifest found on disk, not written by envstore: relink then trusts none of its
    recorded sources). ``retire_as``: first keep a registration already at ``final``
    under this name (a gone env's: ``index.retire_env``), in the same transaction."""
    import xxhash

    name = root_name(final, store)
    root = f"{store.roots_dir}/{name}"  # strings: no Path made (a sync's few us each)
    target = f"{final}/{MANIFEST_NAME}"
    try:
        os.symlink(target, root)
    except FileExistsError:  # re-registering (sync, create --clear, relink): swap it
        # The same link (an env made again) is kept, but not in a shared store, where
        # the link's mtime is when this host last saw its env (hostroots): made anew.
        if store.shared or _link_target(root) != target:
            tmp_link = store.roots_dir / f".{name}.{temp_tag()}"
            if tmp_link.is_symlink():
                tmp_link.unlink()
            os.symlink(target, tmp_link)
            os.replace(tmp_link, root)
    if digest is None:
        digest = xxhash.xxh3_64_hexdigest((text or manifest.dumps()).encode())
    objects = index.env_objects(manifest, also)  # editables: gc keeps their cached wheels
    if store.shared:  # other hosts may not read its manifest, or its gone env's: what it uses
        from envstore.store.hostroots import write_refs

        write_refs(store.root, name, objects)
    conn = store.db()
    with write(conn):
        if retire_as is not None:
            index.retire_env(conn, str(final), retire_as, time.time())
        index.put_env(
            conn,
            str(final),
            root=name,
            digest=digest,
            python=manifest.python.version,
            created=manifest.created,
            objects=objects,
        )


def claim_host_roots(store: Store) -> None:
    """This host's envs among the roots registered before the store was shared
    (``placeholders.claim_roots``): keyed by this host, and in its database."""
    from envstore.store.placeholders import claim_roots

    claimed = claim_roots(store.root)
    if not claimed:
        return
    from envstore.store.hostdb import put_claims

    put_claims(store.db(), claimed)


def _link_target(path: str | Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:  # not a link (a file or directory put there): replaced
        return None


def unregister_env(store: Store, env: Path) -> None:
    """Drop ``env``'s gc root and database rows (its store references)."""
    root = store.roots_dir / root_name(env, store)
    if root.is_symlink():
        root.unlink()
    if store.shared:
        from envstore.store.hostroots import drop_refs

        drop_refs(store.root, root.name)
    if store.db_path.exists():
        conn = store.db()
        with write(conn):
            index.forget_env(conn, str(env))


def registered(store: Store, env: Path) -> bool:
    """Whether the store has a gc root or a database row for ``env``."""
    if (store.roots_dir / root_name(env, store)).is_symlink():
        return True
    if not store.db_path.exists():
        return False
    return index.env_known(store.db(), str(env))


def registered_envs(store: Store, *, strict: bool = True) -> dict[str, str | None]:
    """Every registered env path -> its root file name (None if only the database has it).

    ``strict`` (gc, verify, rebuild: fail closed): a missing or unreadable database
    raises StoreError. Otherwise (doctor, reports) it adds nothing."""
    envs: dict[str, str | None] = dict(manifest_links(store.roots_dir))
    try:
        for path in index.env_paths(store.db(create=False)):
            envs.setdefault(path, None)
    except StoreError:
        if strict:
            raise
    return envs
