"""``verify``'s check of the views: each against this host's seal of it."""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from envstore.errors import StoreError
from envstore.store import db as _db
from envstore.store import index
from envstore.store.layout import Store
from envstore.store.seal import check_view, view_seal

__all__ = ["ViewsFound", "verify_views"]

_VIEW_SEALED_NOW = (
    "had no seal (built by an envstore before seals, or the database was rebuilt): its"
    " links and view.json are sealed as found now"
)


@dataclass
class ViewsFound:
    """What ``verify_views`` found: each problem as (view key, message, is a note), the
    damaged views, the views it judged (against a seal of this host from before this
    run), and those it left unjudged (marked, no seal: never sealed as found)."""

    problems: list[tuple[str, str, bool]] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)
    judged: set[str] = field(default_factory=set)
    unsealed: list[str] = field(default_factory=list)


def _unlisted_upstreams(store: Store, view: Path) -> str:
    """Why a view that links into upstream stores no longer listed in
    ``ENVSTORE_UPSTREAM`` cannot be read now ("" if that is not so)."""
    from envstore.store.upstream import upstream_roots, view_layers

    listed = {str(r) for r in upstream_roots(store.root)}
    unlisted = sorted(set(view_layers(view, store.root)) - listed)
    if not unlisted:
        return ""
    return (
        f"links into the upstream store {', '.join(unlisted)}, not in ENVSTORE_UPSTREAM"
        " now; 'envstore doctor' names the envs that use it and 'envstore relink ENV'"
        " moves each to this store"
    )


def verify_views(store: Store, marked: Collection[str] = ()) -> ViewsFound:
    """Check every view against its seal, sealing as found a view this database knows
    but holds no seal of, unless it is ``marked`` (``view/<key>``) damaged: a host that
    never saw it whole cannot judge it."""
    from envstore.store.views import read_view

    conn = store.db(create=False)
    known = index.view_keys(conn)
    seals = index.seals(conn, views_only=True)
    out = ViewsFound()
    unsealed: dict[str, str] = {}
    try:
        names = sorted(os.listdir(store.views_dir))
    except FileNotFoundError:
        names = []
    for name in names:
        path = store.view_path(name)
        if path.is_symlink() or not path.is_dir():
            out.problems.append((name, "is not a directory", False))
            out.damaged.append(name)
            continue
        try:
            read_view(path)
        except (OSError, ValueError, StoreError) as exc:
            found = [f"view.json is unreadable or invalid ({exc})"]
            gone = _unlisted_upstreams(store, path)
            if gone:  # not damage: the envs using it are doctor's and relink's business
                out.problems.append((name, gone, True))
                continue
        else:
            seal = seals.get(f"view/{name}")
            found = check_view(path, seal) if seal else []
            if seal:
                out.judged.add(name)
            elif f"view/{name}" in marked:
                out.unsealed.append(name)  # the caller says why it stays damaged
            elif name in known:  # a view from before seals (or a rebuilt database)
                unsealed[f"view/{name}"] = view_seal(path)
                out.problems.append((name, _VIEW_SEALED_NOW, True))
        out.problems += [(name, m, False) for m in found]
        if found:
            out.damaged.append(name)
    if unsealed:
        with _db.write(conn):
            index.put_seals(conn, unsealed.items())
    return out
