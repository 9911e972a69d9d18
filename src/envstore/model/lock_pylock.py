"""A lock made by envstore as a ``packaging.pylock.Pylock``: what ``Lock.to_pylock``
writes.

One ``[[packages]]`` entry per name and version: a lock made for several
interpreters (``envstore.model.lock_merge``) may name several wheels of one version
(one per ABI), which PEP 751 lists in that entry's ``wheels`` (an installer picks the
one whose tags fit best).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

from envstore.errors import LockError
from envstore.model.lock_records import (
    LOCK_VERSION,
    LockedDirectory,
    LockedPackage,
    LockedPython,
)

__all__ = ["LockParts", "build_pylock", "requires_python"]


class LockParts(Protocol):
    """What of a ``Lock`` (``envstore.model.lock``, which imports this module) is
    written."""

    python: LockedPython | None
    packages: list[LockedPackage]
    requirements: list[str]
    extras: list[str]
    groups: list[str]
    default_groups: list[str]
    directories: list[LockedDirectory]
    tool: dict[str, Any]

    def pythons(self) -> list[LockedPython]: ...


def requires_python(pythons: list[LockedPython]) -> str:
    """The ``requires-python`` covering the minor versions of ``pythons``: ``==3.12.*``
    for one; ``>=3.10, <3.14`` for 3.10 and 3.13 (``environments`` names each)."""
    from packaging.version import Version

    minors = sorted({py.minor for py in pythons}, key=Version)
    if len(minors) == 1:
        return f"=={minors[0]}.*"
    major, minor = minors[-1].split(".")
    return f">={minors[0]}, <{major}.{int(minor) + 1}"


def build_pylock(lock: LockParts, base: Path | None) -> Any:
    """See ``Lock.to_pylock``."""
    from packaging.markers import Marker
    from packaging.pylock import Package, PackageDirectory, Pylock, PylockValidationError
    from packaging.specifiers import SpecifierSet
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    from envstore._version import __version__

    unknown = [p for p in lock.packages if not (p.path or p.url)]  # a VCS one has its url
    if unknown:
        pins = " ".join(f"{p.name}=={p.version}" for p in unknown)
        raise LockError(
            "cannot write a pylock.toml: where these wheels can be fetched from is not"
            " known (from an index other than PyPI, whose URLs are not recorded; stored"
            " before envstore recorded download URLs; or from a directory they have"
            " left): "
            + ", ".join(p.wheel for p in unknown)
            + "; put the wheel files into a directory ('pip download --no-deps"
            f" --only-binary=:all: -d DIR {pins}') and pass it to 'envstore lock ENV -f"
            " DIR', or write '--format requirements' (hashes only)"
        )
    grouped: dict[tuple[str, str], list[LockedPackage]] = {}
    for p in lock.packages:
        grouped.setdefault((p.name, p.version), []).append(p)
    packages = [
        Package(
            name=canonicalize_name(same[0].name),
            version=Version(same[0].version) if same[0].version else None,
            index=same[0].index,
            marker=Marker(same[0].marker) if same[0].marker else None,
            **_sources(same, base),
        )
        for same in grouped.values()
    ]
    packages += [
        Package(
            name=canonicalize_name(d.name),
            marker=Marker(d.marker) if d.marker else None,
            directory=PackageDirectory(path=_relative(d.path, base), editable=d.editable),
        )
        for d in lock.directories
    ]
    tool: dict[str, Any] = {
        **lock.tool,
        "version": __version__,
        "requirements": list(lock.requirements),
        "requested": list(
            dict.fromkeys(
                [p.name for p in lock.packages if p.requested]
                + [d.name for d in lock.directories if not d.editable]
            )
        ),
    }
    pythons = lock.pythons()
    if lock.python is not None:
        tool["python"] = lock.python.to_json()
    elif pythons:
        tool["pythons"] = [py.to_json() for py in pythons]
    made = Pylock(
        lock_version=Version(LOCK_VERSION),
        environments=[Marker(py.environment()) for py in pythons] or None,
        requires_python=SpecifierSet(requires_python(pythons)) if pythons else None,
        created_by="envstore",
        extras=[canonicalize_name(e) for e in lock.extras] or None,
        dependency_groups=[canonicalize_name(g) for g in lock.groups] or None,
        default_groups=[canonicalize_name(g) for g in lock.default_groups] or None,
        packages=packages,
        tool={"envstore": tool},
    )
    try:
        made.validate()
    except PylockValidationError as exc:  # a bug of ours, said plainly
        raise LockError(f"cannot write a valid pylock.toml: {exc}") from None
    return made


def _sources(same: list[LockedPackage], base: Path | None) -> dict[str, Any]:
    """Where one version is, as ``Package`` fields: its wheels (several for a lock of
    several interpreters, each file once), else the sdist, source archive or VCS commit
    it was built from (``LockedPackage.kind``)."""
    from packaging.pylock import PackageArchive, PackageSdist, PackageVcs

    p = same[0]
    path = _relative(p.path, base) if p.path else None
    url = None if p.path else p.url
    if p.kind == "vcs":  # pip's form: type+URL@commit[#subdirectory=SUB]
        kind, _, rest = (p.url or "").partition("+")
        rest, _, fragment = rest.partition("#")
        repo, _, commit = rest.rpartition("@")
        from urllib.parse import parse_qs

        subs = parse_qs(fragment).get("subdirectory")  # not egg=NAME
        sub = subs[0] if subs else None
        return {"vcs": PackageVcs(type=kind, url=repo, commit_id=commit, subdirectory=sub)}
    hashes = {"sha256": p.sha256}
    if p.kind == "sdist":
        return {"sdist": PackageSdist(name=p.wheel, path=path, url=url, hashes=hashes)}
    if p.kind == "archive":
        return {
            "archive": PackageArchive(
                path=path, url=url, hashes=hashes, subdirectory=p.subdirectory
            )
        }
    return {"wheels": _wheels(same, base)}


def _wheels(same: list[LockedPackage], base: Path | None) -> list[Any]:
    from packaging.pylock import PackageWheel

    seen: dict[str, LockedPackage] = {}
    for p in same:
        seen.setdefault(p.sha256, p)  # one file, wherever it was found
    return [
        PackageWheel(
            name=p.wheel,
            path=_relative(p.path, base) if p.path else None,
            url=None if p.path else p.url,
            hashes={"sha256": p.sha256},
        )
        for p in seen.values()
    ]


def _relative(path: str, base: Path | None) -> str:
    if base is None or not os.path.isabs(path):
        return path
    try:
        return Path(os.path.relpath(path, base)).as_posix()
    except ValueError:  # another drive (Windows)
        return path
