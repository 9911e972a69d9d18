"""``envstore remote prune``: drop what no push has touched for a while.

Pushers refresh the objects they find present (``push.py``), so an object's age is
the time since a push last wanted it. A layout 3 entry object holds its metadata
and archive: it goes whole. The plan is computed first (a pure function
of the listing and the surviving metadata), then carried out: old metadata goes
first, so a reader never finds metadata whose archive was pruned before it; then
old archives no surviving metadata names; then other old leftovers (a crashed
pusher's temporary files). An archive a young metadata names is kept at any age.

A push racing the prune can lose an archive it has just touched and then named
(the listing predates the touch): readers then miss that entry and use its wheel,
and the next push uploads it again. Prune while the fleet is quiet to avoid it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from envstore.model.remote import LAYOUTS, META_LIMIT, archive_named, meta_prefix
from envstore.store.remote.backends import Backend

__all__ = ["PrunePlan", "plan_prune", "prune"]


@dataclass
class PrunePlan:
    metas: list[str] = field(default_factory=list)  # deleted first
    archives: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    kept: int = 0


def plan_prune(
    listing: Sequence[tuple[str, float]], cutoff: float, names: dict[str, str | None]
) -> PrunePlan:
    """What to delete: objects last touched before ``cutoff``, except archives named
    (``names``: young metadata -> the archive it names) by metadata that stays."""
    plan = PrunePlan()
    meta_dirs = tuple(meta_prefix(layout) for layout in LAYOUTS)  # v3: whole entries
    archive_dirs = tuple(f"v{layout}/archives/" for layout in LAYOUTS)
    named = {a for a in names.values() if a}
    for name, touched in sorted(listing):
        base = name.rsplit("/", 1)[-1]
        if touched >= cutoff or name in named:
            plan.kept += 1
        elif base.startswith("."):
            plan.leftovers.append(name)
        elif name.startswith(meta_dirs):
            plan.metas.append(name)
        elif name.startswith(archive_dirs):
            plan.archives.append(name)
        else:
            plan.leftovers.append(name)
    return plan


def prune(backend: Backend, older_than: float, *, dry_run: bool = False) -> PrunePlan:
    """Plan (and unless ``dry_run`` carry out) the removal of what no push touched in
    the last ``older_than`` seconds."""
    from concurrent.futures import ThreadPoolExecutor

    cutoff = time.time() - older_than
    listing = [item for layout in LAYOUTS for item in backend.listing(f"v{layout}/")]
    young = [n for n, t in listing if t >= cutoff and n.endswith(".json") and "/meta/" in n]

    def named_by(meta: str) -> str | None:
        text = backend.read(meta, META_LIMIT)
        return archive_named(text) if text is not None else None

    with ThreadPoolExecutor(max_workers=8) as pool:
        names = dict(zip(young, pool.map(named_by, young), strict=True))
        plan = plan_prune(listing, cutoff, names)
        if not dry_run:
            for batch in (plan.metas, plan.archives, plan.leftovers):
                list(pool.map(backend.delete, batch))
    return plan
