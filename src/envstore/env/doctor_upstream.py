"""``envstore doctor``'s check of the upstream stores an env's view links into
(store-layout.md, "Upstream stores"): one that is gone, or no longer listed in
``ENVSTORE_UPSTREAM``, is named with the fix (relink pulls the env's entries into
the user's own store)."""

from __future__ import annotations

from pathlib import Path

from envstore.env.doctor_checks import BROKEN, WARNING, Problem, relink_cmd
from envstore.model.manifest import Manifest
from envstore.store.layout import Store

__all__ = ["check_upstreams"]


def check_upstreams(env: Path, manifest: Manifest, store: Store) -> list[Problem]:
    from envstore.store.upstream import upstream_roots, view_layers

    layers = view_layers(store.view_path(manifest.view), store.root)
    if not layers:
        return []
    listed = {str(r) for r in upstream_roots(store.root)}
    problems = []
    for root, present in sorted(layers.items()):
        if present and root in listed:
            continue
        why = "is gone" if not present else "is no longer listed in ENVSTORE_UPSTREAM"
        problems.append(
            Problem(
                "upstream-gone",
                BROKEN if not present else WARNING,
                f"the env uses entries of the upstream store {root}, which {why}",
                relink_cmd(env),
                f"pulls its packages into your store {store.root} (from the store's wheels/,"
                " the env's --find-links or the index) and links the env there",
            )
        )
    return problems
