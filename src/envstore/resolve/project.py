"""A project's ``pyproject.toml``: its build system, ``[project]`` dependencies and
extras, and PEP 735 dependency groups (``include-group`` resolved by PyPA's
``dependency-groups`` library).

TOML is read with ``tomllib`` (Python 3.11+) or ``tomli`` (3.10). Everything is
parsed once into a ``Project``; a malformed file raises ProjectError naming it.

Given the store's editable cache, what the file parsed to and the requirements of
the dependency groups asked for are kept in ``editables/<project>/pyproject.json``
under the xxh3 of the file's bytes: tomllib (with typing) and dependency-groups
(with packaging's requirement parser and dataclasses) cost ~10 ms and ~40 ms to
import, more than the rest of a warm ``envstore sync``. What the cache holds is
checked exactly as the file's contents are; another digest means parse again.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from envstore.errors import ProjectError
from envstore.model.keys import canonical_name

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from typing import Any

    from envstore.store.editables import EditableCache

__all__ = [
    "PYPROJECT",
    "Project",
    "ProjectError",
    "find_project",
    "group_requirements",
    "load_project",
    "project_requirements",
    "split_group",
]

PYPROJECT = "pyproject.toml"


class Project:
    """What envstore reads from a project's ``pyproject.toml`` (a plain class, not a
    dataclass: ``dataclasses`` costs ~12 ms to import on ``envstore sync``'s path)."""

    __slots__ = (
        "_cache",
        "backend_path",
        "build_backend",
        "build_requires",
        "dependencies",
        "groups",
        "name",
        "optional",
        "requires_python",
        "root",
    )

    def __init__(
        self,
        root: Path,
        name: str | None,
        dependencies: tuple[str, ...] = (),
        optional: Mapping[str, tuple[str, ...]] | None = None,
        groups: Mapping[str, Sequence[str | Mapping[str, str]]] | None = None,
        requires_python: str | None = None,
        build_requires: tuple[str, ...] = ("setuptools>=40.8.0",),
        build_backend: str = "setuptools.build_meta:__legacy__",
        backend_path: tuple[str, ...] = (),
    ) -> None:
        self.root = root
        self.name = name
        self.dependencies = dependencies
        self.optional: Mapping[str, tuple[str, ...]] = optional or {}
        self.groups: Mapping[str, Sequence[str | Mapping[str, str]]] = groups or {}
        self.requires_python = requires_python
        self.build_requires = build_requires
        self.build_backend = build_backend
        self.backend_path = backend_path
        # The project's pyproject.json and where it goes (load_project's cache).
        self._cache: tuple[EditableCache, dict[str, object]] | None = None

    def __repr__(self) -> str:
        return f"Project({str(self.root)!r}, {self.name!r})"

    def requirements(self, extras: Sequence[str] = (), all_extras: bool = False) -> list[str]:
        """``[project].dependencies`` plus those of ``extras`` (every extra with
        ``all_extras``); an unknown extra is an error, as uv makes it."""
        unknown = [
            e for e in extras if canonical_name(e) not in {canonical_name(k) for k in self.optional}
        ]
        if unknown:
            have = ", ".join(sorted(self.optional)) or "none"
            raise ProjectError(
                f"{self.root / PYPROJECT} has no extra {', '.join(unknown)} (it has: {have})"
            )
        out = list(self.dependencies)
        wanted = {canonical_name(e) for e in extras}
        for name, reqs in self.optional.items():
            if all_extras or canonical_name(name) in wanted:
                out += reqs
        return out


def _read_toml(path: Path, cache: EditableCache | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The file's TOML, and its cache record (``{}`` without a cache)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise ProjectError(f"{path} does not exist") from None
    except OSError as exc:
        raise ProjectError(f"cannot read {path}: {exc.strerror or exc}") from None
    record: dict[str, Any] = {}
    if cache is not None:
        import xxhash

        digest = xxhash.xxh3_64_hexdigest(raw)
        # This process read the same bytes for the same store before, and the cache's
        # record is still the file it read or wrote then (a damaged or deleted one is
        # written again below): what they parsed to then (~40 us of a warm sync).
        memo = (str(path), str(cache.root), digest, len(raw))
        seen = _READ.get(memo)
        if seen is not None and seen[0] == cache.project_identity(path.parent):
            return seen[1]
        found = cache.read_project(path.parent)
        if (
            found is not None
            and found.get("digest") == digest
            and isinstance(found.get("toml"), dict)
            and isinstance(found.get("groups"), dict)
        ):
            return _remember(cache, memo, (found["toml"], found))  # type: ignore[arg-type]
        record = {"digest": digest, "groups": {}}
    from envstore.model.toml import loads

    try:
        data = loads(raw.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError is one too
        raise ProjectError(f"{path} is not valid TOML: {exc}") from None
    if cache is not None:
        record["toml"] = data
        cache.write_project(path.parent, record)
        return _remember(cache, memo, (data, record))
    return data, record


# What _read_toml returned, by file path, store, and the digest and length of the
# bytes it read (the file is read every time: an edit is never missed, however close
# in time), with the identity of the cache's record then. The record is the one
# group_requirements adds to.
_Read = tuple[dict[str, "Any"], dict[str, "Any"]]
_READ: dict[tuple[str, str, str, int], tuple[tuple[int, ...] | None, _Read]] = {}


def _remember(cache: EditableCache, memo: tuple[str, str, str, int], read: _Read) -> _Read:
    if len(_READ) >= 64:  # bounded: a process syncing many projects
        _READ.clear()
    _READ[memo] = (cache.project_identity(Path(memo[0]).parent), read)
    return read


def _rewritten(cache: EditableCache, root: Path, record: dict[str, Any]) -> None:
    """This process wrote ``record`` again (a group added): what it remembered of that
    record now names the file just written (else the next sync reads it back)."""
    ident = cache.project_identity(root)
    for memo, (_, read) in list(_READ.items()):
        if read[1] is record:
            _READ[memo] = (ident, read)


def _strings(value: object, where: str, path: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ProjectError(f"{path}: {where} must be a list of strings")
    return tuple(value)


def load_project(root: str | os.PathLike[str], cache: EditableCache | None = None) -> Project:
    """The project at ``root`` (a directory holding pyproject.toml, or the file itself);
    ``cache``: keep what it parsed to in the store (see the module docstring)."""
    path = Path(os.path.abspath(root))
    if path.name == PYPROJECT and not path.is_dir():
        path = path.parent
    file = path / PYPROJECT
    data, record = _read_toml(file, cache)
    project = data.get("project", {})
    if not isinstance(project, dict):
        raise ProjectError(f"{file}: [project] must be a table")
    optional = project.get("optional-dependencies", {})
    if not isinstance(optional, dict):
        raise ProjectError(f"{file}: [project.optional-dependencies] must be a table")
    groups = data.get("dependency-groups", {})
    if not isinstance(groups, dict):
        raise ProjectError(f"{file}: [dependency-groups] must be a table")
    system = data.get("build-system", {})
    if not isinstance(system, dict):
        raise ProjectError(f"{file}: [build-system] must be a table")
    name = project.get("name")
    requires_python = project.get("requires-python")
    found = Project(
        root=path,
        name=name if isinstance(name, str) else None,
        dependencies=_strings(project.get("dependencies", []), "project.dependencies", file),
        optional={
            str(k): _strings(v, f"project.optional-dependencies.{k}", file)
            for k, v in optional.items()
        },
        groups=groups,
        requires_python=requires_python if isinstance(requires_python, str) else None,
    )
    if "build-backend" in system or "requires" in system:
        backend = system.get("build-backend", found.build_backend)
        if not isinstance(backend, str):
            raise ProjectError(f"{file}: build-system.build-backend must be a string")
        found.build_requires = _strings(system.get("requires", []), "build-system.requires", file)
        found.build_backend = backend
        found.backend_path = _strings(
            system.get("backend-path", []), "build-system.backend-path", file
        )
    if cache is not None and "toml" in record:
        found._cache = (cache, record)
    return found


def split_group(text: str) -> tuple[str | None, str]:
    """``[PATH:]NAME`` -> (PATH or None, NAME): a group of the project at PATH (a
    directory or its pyproject.toml)."""
    path, colon, name = text.rpartition(":")
    return (path or None, name) if colon else (None, text)


def group_requirements(project: Project, names: Sequence[str]) -> list[str]:
    """The requirements of the dependency groups ``names`` (PEP 735; ``include-group``
    followed), in order, without repeats; kept in the project's cache record when it
    has one."""
    have = {canonical_name(k) for k in project.groups}
    missing = [n for n in names if canonical_name(n) not in have]
    if missing:
        listed = ", ".join(sorted(project.groups)) or "none"
        raise ProjectError(
            f"{project.root / PYPROJECT} has no dependency group {', '.join(missing)}"
            f" (it has: {listed})"
        )
    key = "\0".join(names)
    cached = project._cache
    if cached is not None:
        known = cached[1]["groups"]
        hit = known.get(key) if isinstance(known, dict) else None
        if isinstance(hit, list) and all(isinstance(r, str) for r in hit):
            return list(hit)
    from dependency_groups import CyclicDependencyError, resolve

    try:
        found = resolve(project.groups, *names) if names else ()
    except (CyclicDependencyError, LookupError, TypeError, ValueError) as exc:
        raise ProjectError(f"{project.root / PYPROJECT}: dependency groups: {exc}") from None
    out = list(dict.fromkeys(found))
    if cached is not None and isinstance(cached[1]["groups"], dict):
        cached[1]["groups"][key] = out
        cached[0].write_project(project.root, cached[1])
        _rewritten(cached[0], project.root, cached[1])
    return list(out)  # the caller's own: the record (kept per process) holds ``out``


def find_project(start: str | os.PathLike[str]) -> Path:
    """The nearest directory at or above ``start`` holding a pyproject.toml."""
    here = d = os.path.abspath(start)
    while True:  # strings, not Path.parents: each of those a Path made (~3 us)
        if os.path.isfile(f"{d.rstrip('/')}/{PYPROJECT}"):
            return Path(d)
        up = os.path.dirname(d)
        if up == d:
            break
        d = up
    raise ProjectError(f"no {PYPROJECT} in {here} or any directory above it")


def project_requirements(
    requirement_files: Sequence[str],
    *,
    extras: Sequence[str] = (),
    all_extras: bool = False,
    groups: Sequence[str] = (),
    base: str | os.PathLike[str] | None = None,
) -> tuple[list[str], list[str]]:
    """Read what ``-r pyproject.toml`` (with ``extras``), ``--group [PATH:]NAME`` ask for:
    (their requirements, the other requirement files, left to pip's syntax). A group
    without PATH is the project's at ``base`` (default: the cwd)."""
    requirements: list[str] = []
    others: list[str] = []
    used_extras = False
    for f in requirement_files:
        if os.path.basename(f) == PYPROJECT:
            requirements += load_project(f).requirements(extras, all_extras)
            used_extras = True
        else:
            others.append(f)
    if (extras or all_extras) and not used_extras:
        raise ProjectError("--extra and --all-extras need -r pyproject.toml (the project's extras)")
    by_project: dict[str, list[str]] = {}
    for g in groups:
        path, name = split_group(g)
        by_project.setdefault(os.path.abspath(path or base or os.getcwd()), []).append(name)
    for path, names in by_project.items():
        requirements += group_requirements(load_project(path), names)
    return list(dict.fromkeys(requirements)), others
