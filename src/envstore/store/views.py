"""Views: one merged directory per (package set, interpreter cache tag).

Every directory on ``sys.path`` costs start-up time in every process
(lessons-from-peers.md measured +35% for ``python -c pass`` with 91 entries),
so an env puts a single view on ``sys.path``. A view holds absolute symlinks
to each entry's top-level names; a name present in several entries (a
namespace package, a shared ``__pycache__``) becomes a real directory merged
the same way, one level down. Where two entries ship the same file, the one pip
would have installed last wins: a package over what it requires (``precedence``),
else the first by name.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from envstore._crash import crash_point
from envstore.errors import StoreError
from envstore.model.interpreter import Interpreter
from envstore.model.keys import EntryKey, canonical_name
from envstore.model.records import ViewRecord
from envstore.store.fs import make_readonly, publish_dir, rmtree
from envstore.store.layout import Store

__all__ = [
    "build_view",
    "check_view_not_damaged",
    "ensure_view",
    "link_tree",
    "precedence",
    "upstream_layers",
    "view_key",
]


def view_key(keys: list[EntryKey], cache_tag: str, layers: list[str] | None = None) -> str:
    """The view's name: its cache tag and entries, and where each entry that is not in
    the store itself is read from (``upstream_layers``): a view linking into an upstream
    is another view than one of the same entries in the store."""
    import xxhash

    text = "\n".join([cache_tag, *sorted(str(k) for k in keys), *(layers or [])])
    return str(xxhash.xxh3_128_hexdigest(text.encode()))


def upstream_layers(store: Store, keys: list[EntryKey]) -> list[str]:
    """``upstream KEY PATH`` for each of ``keys`` read from an upstream store (none
    without ``ENVSTORE_UPSTREAM``: views keep the names they always had)."""
    if not os.environ.get("ENVSTORE_UPSTREAM"):
        return []
    own = f"{store.root}/entries/"
    dirs = {k: str(store.entry_dir(k)) for k in keys}
    return sorted(f"upstream {k} {d}" for k, d in dirs.items() if not d.startswith(own))


def link_tree(
    target: Path,
    sources: list[Path],
    *,
    relative: bool,
    skip_top: tuple[str, ...] = (),
    real_depth: int = 0,
) -> None:
    """Merge ``sources`` into ``target`` with symlinks, making real directories only where
    two sources (or an existing real directory in ``target``) share a name, or for the
    first ``real_depth`` levels (so later writes there stay outside the store)."""
    _link_tree(os.fspath(target), [os.fspath(s) for s in sources], relative, skip_top, real_depth)


def _link_tree(
    target: str, sources: list[str], relative: bool, skip_top: tuple[str, ...], real_depth: int
) -> None:
    # String paths, one lstat per name and the directory entries' own types: a warm
    # create links ~100 names, and pathlib with is_dir/is_symlink/exists each cost
    # ~3x the syscalls and the time.
    names: dict[str, list[tuple[str, bool]]] = {}
    for src in sources:
        with os.scandir(src) as it:
            found = sorted(it, key=lambda e: e.name)
        for e in found:
            if e.name.endswith(skip_top):
                continue
            names.setdefault(e.name, []).append((f"{src}/{e.name}", e.is_dir()))
    for name, paths in names.items():
        dest = f"{target}/{name}"
        try:
            mode: int | None = os.lstat(dest).st_mode
        except (FileNotFoundError, NotADirectoryError):
            mode = None
        existing_dir = mode is not None and stat.S_ISDIR(mode)
        merge = len(paths) > 1 or real_depth > 0
        if existing_dir or (merge and all(is_dir for _, is_dir in paths)):
            if not existing_dir:
                if mode is not None:
                    continue  # a file already claimed the name: first wins
                os.mkdir(dest)
            _link_tree(
                dest, [p for p, is_dir in paths if is_dir], relative, (), max(real_depth - 1, 0)
            )
            continue
        if mode is not None:
            continue
        link = os.path.relpath(paths[0][0], target) if relative else paths[0][0]
        os.symlink(link, dest)


def precedence(keys: list[EntryKey], requires: dict[EntryKey, list[str]]) -> list[EntryKey]:
    """``keys`` in the order their files win where two ship the same one: pip installs
    a package's dependencies before it, so a package's copy overwrites theirs. Every
    package comes before what it (transitively) requires; otherwise by name."""
    import re

    by_name = {k.name: k for k in keys}
    deps: dict[EntryKey, set[EntryKey]] = {}
    for key in keys:
        found = set()
        for text in requires.get(key, []):
            m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", str(text))
            dep = by_name.get(canonical_name(m.group(1))) if m else None
            if dep is not None and dep != key:
                found.add(dep)
        deps[key] = found
    dependents = {k: 0 for k in keys}
    for found in deps.values():
        for dep in found:
            dependents[dep] += 1
    order: list[EntryKey] = []
    left = sorted(keys, key=lambda k: (k.name, str(k)))
    while left:
        # The first by name that nothing left requires (in a cycle: the first by name).
        key = next((k for k in left if dependents[k] == 0), left[0])
        left.remove(key)
        order.append(key)
        for dep in deps[key]:
            dependents[dep] -= 1
    return order


def _collect(store: Store, keys: list[EntryKey], vkey: str, cache_tag: str) -> ViewRecord:
    view = ViewRecord(
        key=vkey,
        cache_tag=cache_tag,
        entries=[str(k) for k in keys],
        scripts=[],
        data_scripts=[],
        pth=[],
        data=[],
        headers=[],
        wheels={},
    )
    for key in keys:
        root = store.entry_dir(key)
        record = store.entry_record(key)
        view.wheels[str(key)] = record.wheel
        for name, module, attr, section in record.entry_points:
            view.scripts.append([name, module, attr, section, key.name])
        view.pth.extend([name, str(root / "site" / name)] for name in record.pth)
        if "scripts" in record.data:
            for name in sorted(os.listdir(root / "data" / "scripts")):
                view.data_scripts.append([name, str(root / "data" / "scripts" / name)])
        if "data" in record.data:
            view.data.append(str(root / "data" / "data"))
        if "headers" in record.data:
            view.headers.append([key.name, str(root / "data" / "headers")])
    return view


def ensure_view(store: Store, keys: list[EntryKey], interp: Interpreter) -> tuple[str, Path]:
    """The view of ``keys`` for ``interp``, built and published if it does not exist yet.

    Call with the gc lock held (shared) and the entries compiled for ``interp``.
    """
    keys = sorted(keys, key=lambda k: (k.name, str(k)))
    vkey = view_key(keys, interp.cache_tag, upstream_layers(store, keys))
    final = store.view_path(vkey)
    if os.path.exists(f"{final}/view.json"):  # not a Path made for it
        check_view_not_damaged(store, vkey)
        return vkey, final
    tmp = build_view(store, keys, interp.cache_tag)
    try:
        crash_point("view-built")
        if publish_dir(tmp, final):
            _record(store, vkey, interp.cache_tag, [str(k) for k in keys])
        elif not (final / "view.json").exists():
            raise StoreError(f"cannot publish the view {final}: something else is there")
    finally:
        if tmp.exists():
            rmtree(tmp)
    return vkey, final


def check_view_not_damaged(store: Store, vkey: str) -> None:
    """Refuse to link a view that ``verify`` found damaged (until repaired), or that is a
    link: a view is a directory of the store."""
    if os.path.islink(store.view_path(vkey)):
        raise StoreError(f"store view {vkey} is a symbolic link; run 'envstore verify --repair'")
    from envstore.store import index

    damaged = index.view_damaged(store.db(), vkey)
    if store.shared:  # the mark every host sees (one lookup), or this host's own flag
        from envstore.store.hostroots import marked

        shown = marked(store.root, "damaged", f"view/{vkey}")
        damaged = shown or (damaged and _flag_holds(store, vkey))
    if damaged:
        raise StoreError(f"damaged store view {vkey}; run 'envstore verify --repair'")


def _flag_holds(store: Store, vkey: str) -> bool:
    """Whether this host's flag on a view whose shared mark is gone (a repair on some
    host) still holds: a seal of this host is behind it and the view does not match it
    (see ``envstore.store.damage``)."""
    from envstore.store import index
    from envstore.store.seal import check_view

    seal = index.seal_of(store.db(), f"view/{vkey}")
    return seal is not None and bool(check_view(store.view_path(vkey), seal))


def build_view(store: Store, keys: list[EntryKey], cache_tag: str) -> Path:
    """The view of ``keys`` built read-only in ``tmp/``, for the caller to publish."""
    keys = precedence(keys, {k: store.entry_record(k).requires for k in keys})
    vkey = view_key(keys, cache_tag, upstream_layers(store, keys))
    tmp = store.mkdtemp("view")
    try:
        site = tmp / "site"
        site.mkdir()
        link_tree(
            site,
            [store.entry_dir(k) / "site" for k in keys],
            relative=False,
            skip_top=(".pth",),
        )
        (tmp / "view.json").write_text(_collect(store, keys, vkey, cache_tag).dumps())
        make_readonly(tmp)
    except BaseException:
        rmtree(tmp)
        raise
    return tmp


def _record(store: Store, vkey: str, cache_tag: str, entries: list[str]) -> None:
    import time

    from envstore.store import index
    from envstore.store.db import write
    from envstore.store.seal import view_seal  # a new view's: not a warm create's

    seal = view_seal(store.view_path(vkey))  # of the published view, whoever won
    conn = store.db()
    with write(conn):
        index.add_view(conn, vkey, cache_tag, entries, time.time())
        index.put_seals(conn, [(f"view/{vkey}", seal)], replace=False)


def read_view(view_path: Path) -> ViewRecord:
    """A view's ``view.json``, the one reader of it, checked: every name it gives is a
    plain file name and every path it gives lies in its store's ``entries/``, so
    writing an env from it (or unlinking what it lists) stays in the env (or in an
    upstream's ``entries/``). StoreError
    if it is not so."""
    path = view_path / "view.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(f"{path} is unreadable ({exc}); run 'envstore verify --repair'") from None
    prefixes: tuple[str, ...] = (f"{view_path.parent.parent}/entries/",)
    if os.environ.get("ENVSTORE_UPSTREAM"):  # or one of the upstreams' entries/
        from envstore.store.upstream import upstream_roots

        prefixes += tuple(f"{r}/entries/" for r in upstream_roots(view_path.parent.parent))
    try:
        return ViewRecord.from_json(data, prefixes)
    except ValueError as exc:
        raise StoreError(f"{path} is invalid ({exc}); run 'envstore verify'") from None
