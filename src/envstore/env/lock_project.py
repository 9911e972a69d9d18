"""``envstore lock`` in a project: one ``pylock.toml`` for its dependencies, every
extra and every dependency group, and the project itself.

The union of all of them is resolved once per interpreter (default: the one a project
sync chooses), in a throwaway env: one version per package and interpreter, the
interpreters' locks merged into one (``envstore.model.lock_merge``). Each package is then
marked (PEP 751 ``marker``) with what needs it, from the dependency graph of the
store's entry records (``Requires-Dist``, evaluated for that interpreter): nothing
for what the dependencies need, else ``'NAME' in extras`` and ``'NAME' in
dependency_groups`` for each extra and group that does. The lock declares
``extras``, ``dependency-groups``, ``default-groups`` (``dev``, when the project has
it, as ``envstore sync`` installs it by default), the project as an editable
``directory`` package, and the digest of its inputs (``envstore.env.lock_inputs``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence

from envstore.env.lock_inputs import LOCK_NAME, inputs_digest
from envstore.env.lock_requirements import resolved_lock
from envstore.env.project import choose_python
from envstore.model.keys import canonical_name
from envstore.model.lock import Lock, LockedDirectory, LockedPackage
from envstore.model.manifest import Manifest
from envstore.model.sources import PackageSources
from envstore.resolve.project import Project, find_project, group_requirements, load_project
from envstore.store.editables import EditableCache
from envstore.store.layout import Store

__all__ = ["lock_project"]


def lock_project(
    project: str | os.PathLike[str] | None = None,
    *,
    pythons: Sequence[str | None] = (None,),
    store: Store | str | os.PathLike[str] | None = None,
    sources: PackageSources | None = None,
    progress: Callable[[str], None] | None = None,
) -> Lock:
    """The lock of the project at or above ``project`` (default: the cwd); see the
    module docstring. Several ``pythons``: resolved for each, merged
    (``envstore.model.lock_merge``). ``Lock.save(lock.source)`` writes it where a project
    sync reads it (``PROJECT/pylock.toml``)."""
    from envstore.model.lock_merge import merged

    root = find_project(project if project is not None else os.getcwd())
    st = store if isinstance(store, Store) else Store(store)
    st.ensure()
    proj = load_project(root, EditableCache(st))
    roots = _roots(proj)
    wanted = list(dict.fromkeys(r for reqs in roots.values() for r in reqs))
    locks = []
    for python in dict.fromkeys(pythons or (None,)):
        chosen = choose_python(proj, root / ".venv", python, st)
        one, manifest = resolved_lock(st, chosen, wanted, sources=sources, progress=progress)
        needs = _needs(st, manifest, roots)
        base = needs.pop("")
        one.packages = [
            _with_marker(p, " or ".join(c for c, names in needs.items() if p.name in names) or None)
            if p.name not in base
            else p
            for p in one.packages
        ]
        locks.append(one)
    lock = merged(locks)
    lock.requirements = list(proj.dependencies)
    lock.extras = list(proj.optional)
    lock.groups = list(proj.groups)
    lock.default_groups = [g for g in proj.groups if canonical_name(g) == "dev"]
    if proj.name:
        lock.directories = [LockedDirectory(proj.name, str(root), editable=True)]
    lock.tool = {"inputs": inputs_digest(proj), "project": proj.name or ""}
    lock.source = root / LOCK_NAME  # where it belongs: where a sync in the project looks
    return lock


def _with_marker(p: LockedPackage, marker: str | None) -> LockedPackage:
    from dataclasses import replace

    return replace(p, marker=marker)


def _roots(proj: Project) -> dict[str, list[str]]:
    """What each selection asks for: "" the dependencies, then a marker condition per
    extra and dependency group. One naming the project itself (``dev = ["proj[test]"]``)
    asks for the dependencies and those extras' instead."""
    from packaging.requirements import InvalidRequirement, Requirement

    own = canonical_name(proj.name) if proj.name else None

    def expanded(reqs: Iterable[str]) -> list[str]:
        out: list[str] = []
        for r in reqs:
            try:
                name, extras = canonical_name(Requirement(r).name), Requirement(r).extras
            except InvalidRequirement:
                name, extras = "", set()
            if own and name == own:
                out += [x for x in proj.requirements(sorted(extras)) if x not in out]
            else:
                out.append(r)
        return out

    roots: dict[str, list[str]] = {"": list(proj.dependencies)}
    for extra, reqs in proj.optional.items():
        roots[f"'{canonical_name(extra)}' in extras"] = expanded(reqs)
    for group in proj.groups:
        roots[f"'{canonical_name(group)}' in dependency_groups"] = expanded(
            group_requirements(proj, [group])
        )
    return roots


def _needs(
    st: Store, manifest: Manifest, roots: Mapping[str, Iterable[str]]
) -> dict[str, set[str]]:
    """For each selection of ``roots``, the names of the env's packages it needs (the
    closure of its requirements over the entries' Requires-Dist, for the env's Python)."""
    from packaging.requirements import Requirement

    env: dict[str, str] = dict(manifest.python.markers)
    requires: dict[str, list[str]] = {}
    for p in manifest.packages:
        record = st.entry_record_or_none(p.key)
        requires[p.name] = list(record.requires) if record is not None else []

    def applies(req: Requirement, extras: Iterable[str]) -> bool:
        return req.marker is None or any(
            req.marker.evaluate({**env, "extra": e}) for e in ("", *extras)
        )

    def closure(reqs: Iterable[str]) -> set[str]:
        todo: list[tuple[Requirement, tuple[str, ...]]] = [(Requirement(r), ()) for r in reqs]
        seen: set[tuple[str, frozenset[str]]] = set()
        while todo:
            req, via = todo.pop()
            if not applies(req, via):
                continue
            name = canonical_name(req.name)
            key = (name, frozenset(canonical_name(e) for e in req.extras))
            if key in seen:
                continue
            seen.add(key)
            todo += [(Requirement(line), tuple(key[1])) for line in requires.get(name, ())]
        return {name for name, _ in seen}

    return {cond: closure(reqs) for cond, reqs in roots.items()}
