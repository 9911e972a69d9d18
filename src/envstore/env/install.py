"""``install_packages``: add or upgrade packages in an existing env, as ``pip install``
does with its default upgrade strategy (only if needed).

What the env asks for afterwards is its recorded requirements plus the new ones (a
new requirement naming a project the env records replaces that requirement; ``-r``
files and ``-e`` projects are added). It is resolved twice at most:

1. every installed package the new requirements do not name (or name with a
   specifier its installed version satisfies, unless ``upgrade``) pinned to its
   installed version (``name==version`` requirements, so the store resolver can
   answer without pip when the store has the new packages);
2. if that cannot be resolved, the installed packages again, by name only: none
   is dropped, and each may take the newest version the requirements allow
   (pip's resolver offers no "prefer this version", so the fallback does not
   look for the smallest change).

Like pip, an install removes nothing: a package that is no longer needed by what
the env asks for stays (not marked requested). The env's editable projects stay
editable. The env is rebuilt beside the old one and swapped in (``make_env``), so
on any failure it stays as it was; its store references follow the new manifest.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from envstore.env.change import (
    EnvChange,
    OpenEnv,
    changes,
    changing,
    keep_editables,
    recorded_request,
    requirement_name,
)
from envstore.env.editable import parse_editable, prepare_editables
from envstore.env.editable_install import PreparedEditable
from envstore.env.make import make_env
from envstore.errors import EnvError, ResolutionError
from envstore.model.keys import canonical_name
from envstore.model.manifest import Manifest
from envstore.model.sources import PackageSources, sources_from
from envstore.resolve.forms import absolute
from envstore.resolve.request import Request
from envstore.store.layout import Store

__all__ = ["install_packages"]

Progress = Callable[[str], None]


def install_packages(
    env: str | os.PathLike[str],
    requirements: Sequence[str] = (),
    *,
    requirement_files: Sequence[str] = (),
    editables: Sequence[str] = (),
    upgrade: bool = False,
    constraints: Sequence[str] = (),
    pre: bool = False,
    store: Store | str | os.PathLike[str] | None = None,
    sources: PackageSources | None = None,
    find_links: Sequence[str] = (),
    index_url: str | None = None,
    no_index: bool = False,
    offline: bool = False,
    max_age: float | None = None,
    progress: Progress | None = None,
) -> EnvChange:
    """Add ``requirements`` (any form ``create`` takes), the requirements files
    ``requirement_files`` and the editable projects ``editables`` to the env at
    ``env``; see the module docstring. What is installed stays at its version unless
    the new requirements need another (``upgrade``: the packages they name go to the
    newest version allowed). ``sources`` (or its four keywords; default: where the
    env's wheels came from), ``constraints``, ``pre`` and ``max_age`` as for
    ``create_env``."""
    given = sources_from(sources, find_links, index_url, no_index, offline)
    if not (requirements or requirement_files or editables):
        raise EnvError(f"nothing to install into {env}: give requirements, -r FILE or -e PATH")
    with changing(env, store) as opened:
        where = opened.sources(given)
        new = Request(
            tuple(absolute(r) for r in requirements),
            tuple(os.path.abspath(f) for f in requirement_files),
            where,
            upgrade=upgrade,
            constraints=tuple(os.path.abspath(f) for f in constraints),
            pre=pre,
            max_age=max_age,
        )
        made = _install(opened, new, list(editables), progress)
        return changes(opened, made)


def _install(
    opened: OpenEnv, new: Request, editables: list[str], progress: Progress | None
) -> Manifest:
    st, interp, manifest = opened.store, opened.interp, opened.manifest
    old = recorded_request(manifest.requirements, new.sources)
    named: dict[str, list[str]] = {}  # name -> the new requirements naming it
    for r in new.requirements:
        name = requirement_name(r, st, interp)
        if name is not None:
            named.setdefault(name, []).append(r)
    kept = [r for r in old.requirements if requirement_name(r, st, interp) not in named]
    wanted = Request(
        (*kept, *new.requirements),
        (
            *old.requirement_files,
            *(f for f in new.requirement_files if f not in old.requirement_files),
        ),
        new.sources,
        upgrade=new.upgrade,
        constraints=(*old.constraints, *(f for f in new.constraints if f not in old.constraints)),
        pre=old.pre or new.pre,
        max_age=new.max_age,
    )
    prepared = _editables(opened, new, [*editables, *new.editables], named, progress)
    own = {canonical_name(e.name) for e in prepared}
    pins: list[str] = []
    names: list[str] = []
    unrequested: set[str] = set()
    for p in manifest.packages:
        if p.name in own or (p.name == "pip" and not p.requested):
            continue  # the project is the editable; the bundled pip is added again
        if p.name in named and (new.upgrade or not _satisfied(p.version, named[p.name])):
            continue
        pins.append(f"{p.name}=={p.version}")
        names.append(p.name)
        if not p.requested and p.name not in named:
            unrequested.add(p.name)
    with_pip = any(p.name == "pip" for p in manifest.packages)
    recorded = wanted.pip_requirements()
    # A relative path an older create recorded names a place relative to a directory
    # nobody knows now: recorded as it is, not resolved (what it installed is kept).
    resolvable = [r for r in wanted.requirements if not _relative_path(r)]
    deps = tuple(r for e in prepared for r in e.requirements)
    attempts = [pins, names] if pins else [[]]
    for i, extra in enumerate(attempts):
        request = Request(
            (*resolvable, *extra),
            wanted.requirement_files,
            wanted.sources,
            upgrade=wanted.upgrade,
            constraints=wanted.constraints,
            pre=wanted.pre,
            max_age=wanted.max_age,
        ).installing_editables(deps)
        try:
            return make_env(
                st,
                opened.final,
                request,
                interp,
                None,
                with_pip,
                opened.prompt,
                True,
                progress,
                prepared,
                recorded,
                frozenset(unrequested),
            )
        except ResolutionError as exc:
            if i == len(attempts) - 1:
                relative = [r for r in wanted.requirements if _relative_path(r)]
                if relative:
                    raise ResolutionError(
                        f"{exc}\n({opened.final} records {', '.join(map(repr, relative))},"
                        " relative to the directory it was created in, which envstore cannot"
                        " resolve again; 'envstore sync' with absolute paths re-creates it)"
                    ) from None
                raise
            if progress:
                progress("the installed versions do not fit the new requirements; resolving again")
    raise AssertionError("unreachable")  # every attempt returns or raises


def _relative_path(requirement: str) -> bool:
    from envstore.resolve.forms import classify

    return classify(requirement).kind == "path" and not requirement.lstrip().startswith("/")


def _satisfied(version: str, requirements: Sequence[str]) -> bool:
    """Whether ``version`` satisfies each of ``requirements`` (name forms only: a new
    URL or path is resolved again)."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.version import InvalidVersion

    from envstore.resolve.forms import classify

    for text in requirements:
        if classify(text).kind != "name":
            return False
        try:
            if not Requirement(text).specifier.contains(version, prereleases=True):
                return False
        except (InvalidRequirement, InvalidVersion):
            return False
    return True


def _editables(
    opened: OpenEnv,
    new: Request,
    given: list[str],
    named: dict[str, list[str]],
    progress: Progress | None,
) -> list[PreparedEditable]:
    """The new editable projects, then those the env has that they (or a new
    requirement naming the same project) do not replace."""
    fresh = (
        prepare_editables(
            opened.store,
            [parse_editable(e) for e in given],
            opened.interp,
            new.sources,
            rebuild=new.upgrade,
            progress=progress,
        )
        if given
        else []
    )
    paths = {e.path for e in fresh}
    replaced = {canonical_name(e.name) for e in fresh} | set(named)
    kept = [
        e
        for e in opened.manifest.editables
        if Path(e.path) not in paths and canonical_name(e.name) not in replaced
    ]
    return [*keep_editables(opened, kept, new.sources, progress), *fresh]
