"""``envstore sync`` in a project: the project's env holds exactly its dependencies,
the groups and extras asked for, and the project itself (editable by default).

What goes in (as ``uv sync``): ``[project].dependencies`` and the extras asked for;
the ``dev`` dependency group if the project has one (unless ``no_dev``), the
groups named, or every group; the project installed editable (or as a wheel in
the store with ``editable=False``, or not at all with ``install_project=False``).
The interpreter: ``python``, else the project's ``.python-version``, else the env's
own if it satisfies ``requires-python``, else the newest installed Python that does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from envstore.env.lifecycle import _sync
from envstore.env.pipstate import site_dists
from envstore.errors import BadManifestError, InterpreterError, ProjectError
from envstore.model.keys import canonical_name
from envstore.model.manifest import Manifest
from envstore.model.sources import PackageSources, sources_from
from envstore.python.interpreters import newest_installed
from envstore.python.requires_python import fits_requires_python
from envstore.resolve.project import Project, find_project, group_requirements, load_project
from envstore.store.editables import EditableCache
from envstore.store.layout import Store

__all__ = ["ProjectSync", "env_names", "sync_project"]


class ProjectSync:
    """What a project sync did: the new manifest, and what it added and removed
    (``"name version"`` each). A plain class: see ``resolve.project.Project``."""

    __slots__ = ("added", "groups", "manifest", "project", "removed")

    def __init__(
        self,
        manifest: Manifest,
        project: Path,
        groups: list[str],
        removed: list[str] | None = None,
        added: list[str] | None = None,
    ) -> None:
        self.manifest = manifest
        self.project = project
        self.groups = groups
        self.removed = removed or []
        self.added = added or []

    def __repr__(self) -> str:
        return f"ProjectSync({self.manifest!r}, added={self.added}, removed={self.removed})"


def env_names(env: Path) -> dict[str, str]:
    """name -> version of what the env at ``env`` holds: its manifest's packages and
    editables, and whatever pip installed into its site-packages (any venv)."""
    found: dict[str, str] = {}
    if not os.path.isdir(env):  # a removed .venv: no glob pattern to compile (~30 us)
        return found
    try:
        manifest = Manifest.load(env)
    except BadManifestError:
        manifest = None
    if manifest is not None:
        found.update({p.name: p.version for p in manifest.packages})
        found.update({canonical_name(e.name): e.version for e in manifest.editables})
    for site in sorted(env.glob("lib/python3*/site-packages")):
        for d in site_dists(site):  # validated: site-packages is anyone's to write
            found.setdefault(d.name, d.version)
    return found


def _python_version_file(root: Path) -> str | None:
    """The first version in the nearest ``.python-version`` at or above ``root``."""
    for d in (root, *root.parents):
        try:
            text = (d / ".python-version").read_text()
        except OSError:
            continue
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                return line
    return None


def choose_python(project: Project, env: Path, python: str | None, store: Store) -> str | None:
    """The ``-p`` to sync with (None: the env's own, kept by sync_env)."""
    if python:
        return python
    pinned = _python_version_file(project.root)
    if pinned:
        return pinned
    spec = project.requires_python or ""
    try:
        fits_requires_python(spec, "3")
    except ValueError:  # packaging's InvalidSpecifier (not imported for a plain spec)
        raise ProjectError(
            f"{project.root / 'pyproject.toml'}: invalid requires-python"
            f" {project.requires_python!r}"
        ) from None
    try:
        current = Manifest.load(env).python.version
    except BadManifestError:
        current = None
    if current is not None and fits_requires_python(spec, current):
        return None
    newest = newest_installed(lambda i: fits_requires_python(spec, i.version), store.facts_cache())
    if newest is None:
        raise InterpreterError(
            f"no installed Python satisfies requires-python {project.requires_python!r}"
            f" of {project.root}; pass -p or write a .python-version"
        )
    return newest.path


def sync_project(
    project: str | os.PathLike[str] | None = None,
    env: str | os.PathLike[str] | None = None,
    *,
    groups: Sequence[str] = (),
    all_groups: bool = False,
    no_dev: bool = False,
    extras: Sequence[str] = (),
    all_extras: bool = False,
    install_project: bool = True,
    editable: bool = True,
    python: str | None = None,
    store: Store | str | os.PathLike[str] | None = None,
    sources: PackageSources | None = None,
    upgrade: bool = False,
    with_pip: bool | None = None,
    progress: Callable[[str], None] | None = None,
    max_age: float | None = None,
    locked: bool = False,
) -> ProjectSync:
    """Make ``env`` (default: the project's ``.venv``) hold exactly what the project
    at or above ``project`` (default: the cwd) asks for; see the module docstring.
    From the project's ``pylock.toml`` when it is fresh (``envstore.env.lock_inputs``;
    ``locked``: fail unless it is)."""
    root = find_project(project if project is not None else os.getcwd())
    st = store if isinstance(store, Store) else Store(store)
    st.ensure()
    proj = load_project(root, EditableCache(st))
    final = Path(os.path.abspath(env)) if env is not None else root / ".venv"
    names = list(proj.groups) if all_groups else []
    if not no_dev and not all_groups and any(canonical_name(g) == "dev" for g in proj.groups):
        names.append(next(g for g in proj.groups if canonical_name(g) == "dev"))
    names += [g for g in groups if g not in names]
    wanted_extras = list(proj.optional) if all_extras else list(extras)
    proj.requirements(wanted_extras)  # an unknown extra is an error
    requirements = group_requirements(proj, names) if names else []
    if install_project and proj.name is None:
        raise ProjectError(
            f"{root / 'pyproject.toml'} has no [project] name to install; pass"
            " --no-install-project to install only its dependencies and groups"
        )
    # A group may name the project itself (dev = ["sample[test]"]): its extras join.
    own = canonical_name(proj.name) if proj.name else None
    mine = [r for r in requirements if own and _own_extras(r, own) is not None]
    for r in mine:
        requirements.remove(r)
        wanted_extras += [e for e in _own_extras(r, own or "") or () if e not in wanted_extras]
    editables: list[str] = []
    extras_part = f"[{','.join(wanted_extras)}]" if wanted_extras else ""
    if install_project and editable:
        editables.append(f"{root}{extras_part}")
    elif install_project:
        requirements.insert(0, f"{proj.name}{extras_part} @ {root.as_uri()}")
    else:
        requirements = proj.requirements(wanted_extras) + requirements
    before = env_names(final)
    chosen = choose_python(proj, final, python, st)
    lock = None
    if locked or os.path.isfile(f"{root}/pylock.toml"):  # imported only then: dataclasses
        from envstore.env.lock_inputs import project_lock, syncing

        warn = (lambda m: progress(f"warning: {m}")) if progress else None
        usable = editable or not install_project
        lock = project_lock(proj, locked=locked, editable=usable, warn=warn)
        if lock is not None:  # its packages, not the requirements (the project: as asked)
            lock, requirements = syncing(lock, names), []
    # sync_env's work, the store ensured above (once a call, not twice: ~50 us).
    manifest = _sync(
        final, requirements, lock=lock, python=chosen, store=st, requirement_files=(),
        where=sources_from(sources), upgrade=upgrade, constraints=(), pre=False,
        with_pip=with_pip, editables=editables,
        extras=wanted_extras if lock is not None else (), all_extras=False, groups=(),
        progress=progress, max_age=max_age, ensured=True,
    )  # fmt: skip
    after = {p.name: p.version for p in manifest.packages}
    after.update({canonical_name(e.name): e.version for e in manifest.editables})
    return ProjectSync(
        manifest,
        root,
        names,
        removed=[f"{n} {v}" for n, v in sorted(before.items()) if after.get(n) != v],
        added=[f"{n} {v}" for n, v in sorted(after.items()) if before.get(n) != v],
    )


def _own_extras(requirement: str, own: str) -> tuple[str, ...] | None:
    """The extras of ``requirement`` if it names the project ``own`` itself, else None."""
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[([^\]]*)\])?", requirement)
    if not m or canonical_name(m.group(1)) != own:
        return None
    return tuple(e.strip() for e in (m.group(3) or "").split(",") if e.strip())
