"""Placeholder roots ``<hash>@_unknown``: a store becoming shared sorts out its roots
without a host (``migrate_roots``), and each host that holds such a root's env claims
it (``claim_roots``). Works on paths, under the exclusive gc lock (store-layout.md,
"Roots from before the record").
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from envstore.errors import BadManifestError
from envstore.model.manifest import MANIFEST_NAME, Manifest
from envstore.store import index
from envstore.store.fs import host_name, on_shared_storage
from envstore.store.hostroots import UNKNOWN_HOST, forget, read_refs, valid_name, write_refs

__all__ = ["Claim", "claim_roots", "migrate_roots"]


def migrate_roots(root: Path, old_refs: dict[str, list[str]]) -> list[Claim]:
    """A store becoming shared (``upgrade``): until now a root carried no host whatever
    disk its env was on (a host that saw the store local, such as the file server,
    registered its local envs so). A root whose env this host sees, on shared storage,
    stays one for every host; any other may be another host's local env, so it becomes
    the placeholder ``<hash>@_unknown``: kept like another host's root, but never for
    its age alone (``other_hosts``), with what it uses (``old_refs``, env -> objects
    from the store's own database, else its ``state/refs`` file), claimed by each host
    that holds the env (``claim_roots``; this host right away). Returns this host's
    claims, for its database (``hostdb.record_claims``)."""
    roots = root / "roots"
    for name in sorted(os.listdir(roots)):
        link = roots / name
        if "@" in name or not valid_name("refs", name) or not link.is_symlink():
            continue  # a host's own root, or no root's name (a stray link: left as it is)
        target = os.readlink(link)
        env = os.path.dirname(target)
        if os.path.basename(target) != MANIFEST_NAME:
            continue
        if os.path.isfile(link) and on_shared_storage(env):
            continue
        new = f"{name}@{UNKNOWN_HOST}"
        objects = old_refs.get(env, read_refs(root, name))
        if objects is not None:
            write_refs(root, new, objects)
        os.replace(link, roots / new)
        os.utime(roots / new, follow_symlinks=False)
        forget(root, name)
    return claim_roots(root)


class Claim(NamedTuple):
    """A placeholder root this host claimed: the env, its root's new name, its manifest
    (found on disk: the database records it with no trusted sources)."""

    env: str
    root: str
    manifest: Manifest


def claim_roots(root: Path) -> list[Claim]:
    """Claim the placeholders ``<hash>@_unknown`` (``migrate_roots``) of envs alive here:
    the manifest names that very path and this store, and the env uses nothing the
    placeholder's ``state/refs`` file does not name (so the same view: the same
    packages for the same Python; a placeholder whose refs are unknown is claimed on
    the rest). An env on shared storage is every host's: the placeholder is renamed
    the bare ``<hash>``. An env on this host's local disk gets its own root
    ``<hash>@<this host>`` (unless it has one) beside the placeholder, which stays for
    the other hosts with an env at that path (``other_hosts``). Returns what became
    this host's (or every host's), for the caller's database."""
    import xxhash

    out: list[Claim] = []
    roots, me = root / "roots", host_name()
    for name in sorted(os.listdir(roots)) if roots.is_dir() else ():
        base, _, host = name.partition("@")
        link = roots / name
        if host != UNKNOWN_HOST or not valid_name("refs", name) or not link.is_symlink():
            continue
        target = os.readlink(link)
        if os.path.basename(target) != MANIFEST_NAME:
            continue  # a root names an env's manifest (registry.register_env), nothing else
        env = os.path.dirname(target)
        try:
            manifest = Manifest.load(link)
        except (BadManifestError, OSError):  # PermissionError: another user's env
            continue  # not alive here (or unreadable): not this host's to claim
        if manifest.env != env or xxhash.xxh3_64_hexdigest(env.encode()) != base:
            continue  # a root is named by its env's path (registry.root_name)
        if os.path.realpath(manifest.store) != os.path.realpath(root):
            continue
        objects = index.env_objects(manifest)
        refs = read_refs(root, name)
        if refs is not None and not set(objects) <= set(refs):
            continue  # another env at that path (another host's, or this one's since)
        shared = on_shared_storage(env)
        new = base if shared else f"{base}@{me}"
        if not os.path.lexists(roots / new):  # else registered by a host anew already
            write_refs(root, new, objects if refs is None else refs)  # before its root
            os.symlink(os.readlink(link), roots / new)
            out.append(Claim(env, new, manifest))
        if shared:  # one env for every host, judged by every host from now on
            link.unlink()
            forget(root, name)
    return out
