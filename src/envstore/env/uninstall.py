"""``uninstall_packages``: remove packages from an existing env, as ``pip uninstall``
does: the named packages (store packages or editable projects) go, with the
requirements that name them; their dependencies stay; a package left requiring a
removed one is a warning, not an error. Nothing is resolved: the env is rebuilt
from exactly the entries it keeps (as from a lock), beside the old one, and
swapped in; its store references follow the new manifest.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from envstore.env.change import (
    EnvChange,
    OpenEnv,
    changes,
    changing,
    keep_editables,
    recorded_request,
    requirement_name,
)
from envstore.env.editable_install import PreparedEditable
from envstore.env.lock import manifest_lock
from envstore.env.make import make_env
from envstore.errors import EnvError
from envstore.model.keys import canonical_name
from envstore.model.manifest import Package
from envstore.resolve.request import Request
from envstore.store.layout import Store

__all__ = ["uninstall_packages"]


def uninstall_packages(
    env: str | os.PathLike[str],
    names: Sequence[str],
    *,
    store: Store | str | os.PathLike[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> EnvChange:
    """Remove the packages ``names`` from the env at ``env``; see the module docstring.
    A name the env does not hold is an error (nothing is changed)."""
    if not names:
        raise EnvError(f"name the packages to uninstall from {env}")
    with changing(env, store) as opened:
        m = opened.manifest
        gone = {canonical_name(n): n for n in names}
        have = {p.name for p in m.packages} | {canonical_name(e.name) for e in m.editables}
        missing = [n for c, n in gone.items() if c not in have]
        if missing:
            raise EnvError(
                f"{opened.final} has no package {', '.join(missing)}; nothing was changed"
                f" ('envstore show {opened.final}' lists its packages)"
            )
        sources = m.sources.reused()
        packages = [p for p in m.packages if p.name not in gone]
        prepared = keep_editables(
            opened,
            [e for e in m.editables if canonical_name(e.name) not in gone],
            sources,
            progress,
        )
        old = recorded_request(m.requirements, sources)
        st, interp = opened.store, opened.interp
        recorded = Request(
            tuple(r for r in old.requirements if requirement_name(r, st, interp) not in gone),
            old.requirement_files,
            sources,
            constraints=old.constraints,
            pre=old.pre,
        ).pip_requirements()
        lock = manifest_lock(st, m, packages, recorded)
        request = Request(sources=sources, locked=tuple(lock.packages))
        made = make_env(
            st, opened.final, request, interp, lock, False, opened.prompt, True, progress, prepared
        )
        return changes(opened, made, _broken(opened, packages, prepared, set(gone)))


def _broken(
    opened: OpenEnv, packages: list[Package], editables: list[PreparedEditable], gone: set[str]
) -> list[str]:
    """What the env still holds that requires a removed package (markers evaluated for
    its interpreter, extras left out), as pip warns after an uninstall."""
    from packaging.requirements import InvalidRequirement, Requirement

    markers = {**opened.interp.markers, "extra": ""}
    needs: list[tuple[str, list[str]]] = []
    for p in packages:
        record = opened.store.entry_record_or_none(p.key)
        needs.append((f"{p.name} {p.version}", record.requires if record is not None else []))
    needs += [(f"{e.name} {e.version}", e.requirements) for e in editables]
    found: list[str] = []
    for who, requires in needs:
        for text in requires:
            try:
                req = Requirement(text)
            except InvalidRequirement:
                continue
            if canonical_name(req.name) in gone and (
                req.marker is None or req.marker.evaluate(markers)
            ):
                found.append(f"{who} requires {req.name}, which was uninstalled")
    return found
