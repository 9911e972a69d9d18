"""Repairing an environment after its base interpreter changed: ``envstore relink``.

An environment is its manifest, so a repair rebuilds the few files that depend
on the interpreter instead of reinstalling anything:

* **Same ABI** (a patch upgrade, a moved install, another install of the same
  minor version): rewrite ``bin/python*``, ``pyvenv.cfg``, the activation
  scripts and the manifest. No package work, no network.
* **Another ABI** (a minor upgrade, or ``--python`` names one): pure entries are
  reused (bytecode added for the new interpreter); ABI-tagged packages are
  re-resolved at the same versions (the store, ``<store>/wheels``,
  ``--find-links``, then the index); a view is made for the new cache tag,
  ``site-packages`` moves to the new ``lib/python3.Y``, scripts are regenerated.

Entries missing from the store are rebuilt the same way, and a moved env gets
scripts and activation for its new path and is registered there (a copy is
registered beside its original; a move drops the old place's registration).
Store work comes first and only adds: if a package has no compatible wheel,
the env has not been touched. The env is then changed by a few renames and
replaces, undone in reverse order if one fails, and re-registered so the
database references follow.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from envstore.env.pipstate import missing_scripts
from envstore.env.relink_apply import apply_switch
from envstore.env.scripts import launcher_intact
from envstore.env.site import PTH_NAME, pth_line
from envstore.env.staleness import (
    choose_interpreter,
    dependency_notes,
    foreign_abi_dists,
    stale_packages,
)
from envstore.env.venv import (
    implementation_name,
    read_pyvenv_cfg,
    venv_home,
    version_info,
)
from envstore.errors import EnvError, InterpreterError, StoreError
from envstore.model.interpreter import Interpreter
from envstore.model.keys import EntryKey
from envstore.model.manifest import MANIFEST_NAME, Manifest, Package
from envstore.model.sources import PackageSources, sources_from
from envstore.resolve.rewheel import entries_named, replacement_wheels
from envstore.store.layout import Store
from envstore.store.views import read_view

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from envstore.model.records import ViewRecord

__all__ = [
    "RelinkResult",
    "choose_interpreter",
    "relink_env",
    "stale_packages",
]

Progress = Callable[[str], None]


@dataclass
class RelinkResult:
    env: str
    old: Interpreter
    new: Interpreter
    kind: str  # "unchanged", "same-abi" or "abi-change"
    why: str
    reused: int = 0
    rebuilt: list[str] = field(default_factory=list)  # "name version" of new entries
    from_store: list[str] = field(default_factory=list)  # "name version" already stored
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


# -- packages -------------------------------------------------------------------


# -- changing the env -----------------------------------------------------------


def _stored_keys(store: Store, manifest: Manifest, new: Interpreter) -> list[EntryKey]:
    """The entries of the env's package names the store holds now, for ``new``."""
    return [k for p in manifest.packages for k in entries_named(store, p.name, new)]


def _registered_as_is(store: Store, manifest: Manifest) -> bool:
    """Whether ``store`` registered this env's manifest with exactly the text it was
    loaded from (the very text parsed: a file swapped between two reads proves nothing)."""
    import xxhash

    from envstore.store.index import env_digest

    if manifest.text is None:
        return False
    digest = env_digest(store.db(), manifest.env)
    return digest is not None and digest == xxhash.xxh3_64_hexdigest(manifest.text.encode())


def _unchanged(final: Path, store: Store, manifest: Manifest, new: Interpreter) -> bool:
    """Whether the env already is exactly what a relink to ``new`` would write."""
    from envstore.store.registry import root_name

    old = manifest.python
    # Equal interpreters, markers aside: platform_release changes with every kernel
    # update, which is no reason to rewrite an env doctor calls ok.
    if new.replace(requested="") != old.replace(requested=""):
        return False
    cfg = read_pyvenv_cfg(final)
    site = final / old.purelib
    try:
        pth = (site / PTH_NAME).read_bytes().strip()
        link = os.readlink(final / "bin" / "python")
        root = os.readlink(store.roots_dir / root_name(final, store))
    except OSError:
        return False
    return (
        manifest.env == str(final)
        and link == new.path
        and cfg.get("home") == venv_home(new)
        and cfg.get("version") == new.version
        and cfg.get("version_info") == version_info(new.version)
        and cfg.get("implementation") == implementation_name(new)
        and pth == pth_line(store.view_path(manifest.view) / "site")
        and (store.view_path(manifest.view) / "view.json").exists()
        and root == str(final / MANIFEST_NAME)
        and _launcher_ok(final, store.view_path(manifest.view), new)
    )


def _launcher_ok(final: Path, view_path: Path, new: Interpreter) -> bool:
    try:
        return _scripts_ok(final, read_view(view_path), new)
    except (OSError, ValueError, StoreError):
        return False


def _scripts_ok(final: Path, view: ViewRecord, new: Interpreter) -> bool:
    """The launcher is envstore's and no script of the view is missing from bin/ (a pip
    install/uninstall cycle of a store package deletes its scripts)."""
    return launcher_intact(final, view, new) and not missing_scripts(final, view, new)


def relink_env(
    path: str | os.PathLike[str],
    *,
    python: str | None = None,
    store: Store | str | os.PathLike[str] | None = None,
    sources: PackageSources | None = None,
    find_links: Sequence[str] = (),
    index_url: str | None = None,
    no_index: bool = False,
    offline: bool = False,
    progress: Progress | None = None,
    for_this_host: bool = False,
) -> RelinkResult:
    """Point the env at ``path`` to a working interpreter (see the module docstring).

    ``sources`` (or its four keywords, not both) as for :func:`envstore.create_env`;
    naming no place to look means where the env's wheels came from, if this store
    registered its manifest as it is. ``for_this_host``: relink an env on shared
    storage of a shared store to another interpreter than it records (refused
    otherwise: the other hosts use it with the one it records)."""
    given = sources_from(sources, find_links, index_url, no_index, offline)
    final = Path(os.path.abspath(path))
    if not (final / MANIFEST_NAME).exists():
        raise EnvError(f"{final} is not an envstore environment (no {MANIFEST_NAME})")
    # One relink of an env at a time: both would swap bin/ and site-packages (and
    # create --clear and sync take turns with it). The lock is the env's own lock
    # file (in it: removed with it, so none pile up in the store).
    from envstore.store.locks import env_lock

    with env_lock(final):
        return _relink_locked(final, python, store, given, progress, for_this_host)


def _relink_locked(
    final: Path,
    python: str | None,
    store: Store | str | os.PathLike[str] | None,
    sources: PackageSources,
    progress: Progress | None,
    for_this_host: bool = False,
) -> RelinkResult:
    started = time.monotonic()
    untrusted = ""
    manifest = Manifest.load(final)
    from envstore.model.manifest import same_env

    final = Path(same_env(manifest, final))
    st = store if isinstance(store, Store) else Store(store or manifest.store)
    st.ensure(named_by=None if store else str(final / MANIFEST_NAME))
    if not sources.says_where():
        # None given: where the env's wheels came from, if this store registered the
        # manifest as it is (a crafted one never chooses where relink looks).
        recorded = manifest.sources
        if _registered_as_is(st, manifest):
            sources = recorded.reused(sources.offline, sources.remote, sources.push)
        elif recorded.options():  # not trusted, and no reason to think the index is fine
            untrusted = shlex.join(recorded.options())
            # the store, its wheels/ (and the remote cache, if any: it is verified)
            sources = PackageSources(
                no_index=True, offline=True, remote=sources.remote, push=sources.push
            )
    old = manifest.python
    choice = choose_interpreter(manifest, st.facts_cache(), python)
    if choice.interp is None:
        from envstore.python.interpreters import installed

        found = sorted(
            installed(st.facts_cache()), key=lambda i: [int(x) for x in i.minor.split(".")]
        )
        move = (
            f", or move the env to Python {found[-1].version}: "
            + shlex.join(["envstore", "relink", str(final), "--python", found[-1].path])
            if found
            else ""
        )
        raise InterpreterError(
            f"cannot relink {final}: {choice.why}. Install Python {old.minor} again and rerun"
            f" 'envstore relink {final}'{move}"
        )
    new = choice.interp
    # What the env was made with (-p python3) stays its request, also after --python
    # names the interpreter for this repair: the next relink follows python3 again.
    new = new.replace(requested=old.requested)
    same_abi = new.soabi == old.soabi and new.cache_tag == old.cache_tag
    moved = new.path != old.path and not os.path.exists(old.path)
    if (moved or not same_abi) and not for_this_host:
        _refuse_for_other_hosts(st, final, old, new)
    with st.gc_lock(shared=True):
        if same_abi:
            stale = stale_packages(st, manifest, new)
            if not stale and _unchanged(final, st, manifest, new):
                return RelinkResult(
                    str(final), old, new, "unchanged", choice.why, len(manifest.packages)
                )
        else:
            from envstore.python.tags import supported_tags

            accepted = {str(t) for t in supported_tags(new)}
            stale = stale_packages(st, manifest, new, accepted)
        known = set(_stored_keys(st, manifest, new))
        keys, rebuilt = (
            replacement_wheels(st, manifest, new, stale, sources, progress, untrusted)
            if stale or not same_abi
            else ({p.name: p.key for p in manifest.packages}, [])
        )
        if sources.pushes():
            from envstore.env.make import push_ingested

            push_ingested(st, sources, [k for k in keys.values() if k not in known], progress)
        from envstore.store.views import ensure_view

        vkey, vpath = ensure_view(st, list(keys.values()), new)
        view = read_view(vpath)
        wheels = view.wheels
        old_packages = {p.name: p for p in manifest.packages}
        new_manifest = Manifest(
            env=str(final),
            store=str(st.root),
            python=new,
            view=vkey,
            packages=[
                Package(name, k.version, k, wheels.get(str(k), ""), old_packages[name].requested)
                for name, k in sorted(keys.items())
            ],
            requirements=manifest.requirements,
            created=manifest.created,
            sources=manifest.sources,
            editables=manifest.editables,  # in site-packages, which moves with the env
        )
        moved = manifest.env != str(final)
        regenerate = (
            not same_abi or vkey != manifest.view or moved or not _scripts_ok(final, view, new)
        )
        apply_switch(final, st, manifest, new_manifest, view, regenerate)
        if moved and not os.path.exists(os.path.join(manifest.env, MANIFEST_NAME)):
            # Moved, not copied: the old place's registration follows the env here.
            from envstore.store.registry import unregister_env

            unregister_env(st, Path(manifest.env))
    # Which of the replaced packages were in the store already, and which were built
    # from wheels just now (relink used to call them all "rebuilt").
    stored_before = {str(k) for k in keys.values() if k in known}
    result = RelinkResult(
        str(final),
        old,
        new,
        "same-abi" if same_abi else "abi-change",
        choice.why,
        reused=len(keys) - len(rebuilt),
        rebuilt=[r for r in rebuilt if str(keys[r.split()[0]]) not in stored_before],
        from_store=[r for r in rebuilt if str(keys[r.split()[0]]) in stored_before],
    )
    if not same_abi:
        result.notes += dependency_notes(final, st, keys, old, new)
        foreign = foreign_abi_dists(final / new.purelib, new)
        if foreign:
            result.notes.append(
                "pip installed these into site-packages for the old Python; reinstall them: "
                + ", ".join(foreign)
            )
    result.seconds = time.monotonic() - started
    return result


def _refuse_for_other_hosts(st: Store, final: Path, old: Interpreter, new: Interpreter) -> None:
    """An env on shared storage of a shared store is every host's: pointing it at this
    host's interpreter would break it for the hosts that have the one it records."""
    from envstore.store.fs import host_name, on_shared_storage

    if not (st.shared and on_shared_storage(final)):
        return
    raise EnvError(
        f"not relinking {final}: it is on shared storage and belongs to Python {old.minor}"
        f" ({old.path}) on other hosts; relinking it to this host's Python {new.version}"
        f" ({new.path}) would break it there. Make a separate env for this host"
        f" ({final}-{host_name()}), or pass --for-this-host to relink it anyway"
    )
