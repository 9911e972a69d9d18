"""Wheels for an env's packages on another interpreter (``relink``): the same version
from the store, the recorded sources or pip, else another version the env allows.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from envstore.errors import ResolutionError
from envstore.model.interpreter import Interpreter
from envstore.model.keys import PURE, EntryKey
from envstore.model.manifest import Manifest, Package
from envstore.model.sources import PackageSources
from envstore.resolve.pip import bundled_pip_key, download, pip_may_find, searched
from envstore.store.layout import Store

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from envstore.store.ingest import Progress


def fits(tags: object, accepted: set[str]) -> bool:
    return isinstance(tags, list) and any(str(t) in accepted for t in tags)


# Where relink looks before pip, in its messages.
WHERE = "the store, its wheels/"

# Marks a stale reason that no wheel of the package's version can cure.
VERSION_CHANGE = "(another version needed) "


def _same_version(a: str, b: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def stored_replacement(
    store: Store, p: Package, new: Interpreter, accepted: set[str]
) -> EntryKey | None:
    """An entry of the same name and version that ``new`` can use, the same wheel first."""
    found: list[EntryKey] = []
    for key in entries_named(store, p.name, new):
        meta = store.entry_record_or_none(key)
        if meta and _same_version(key.version, p.version) and fits(meta.tags, accepted):
            found.append(key)
    found.sort(key=lambda k: k.hash != p.key.hash)
    return found[0] if found else None


def _wheel_rank(path: Path, p: Package, new: Interpreter, accepted: set[str]) -> int | None:
    """How well the wheel file fits (lower is better); None if it is not this package
    at this version or does not fit ``new``."""
    from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

    try:
        name, version, _, tags = parse_wheel_filename(path.name)
    except InvalidWheelFilename:
        return None
    if canonicalize_name(name) != p.name or not _same_version(str(version), p.version):
        return None
    fitting = [t for t in tags if str(t) in accepted]
    if not fitting:
        return None
    return min(0 if t.abi == new.abi_tag else 1 if t.abi == "abi3" else 2 for t in fitting)


def _from_files(
    store: Store, p: Package, new: Interpreter, accepted: set[str], sources: PackageSources
) -> Path | None:
    files: list[Path] = []
    meta = store.entry_record_or_none(p.key)
    if meta is not None and meta.origin:
        files.append(Path(meta.origin))
    for d in [store.wheels_dir, *map(Path, sources.local_dirs())]:
        try:
            files += [d / n for n in sorted(os.listdir(d)) if n.endswith(".whl")]
        except OSError:
            continue
    ranked = []
    for f in files:
        rank = _wheel_rank(f, p, new, accepted)
        if rank is not None and f.is_file():
            ranked.append((rank, f.name != p.wheel, str(f), f))
    return min(ranked)[3] if ranked else None


def _download(
    store: Store,
    p: Package,
    new: Interpreter,
    sources: PackageSources,
    pip_site: Path,
    version: str | None = None,
) -> Path:
    """A wheel of exactly ``p``'s version for ``new`` (``version=""``: the newest pip
    finds that runs there), from the index (pip, no sdists)."""
    wanted = f"{p.name}=={p.version}" if version is None else p.name + version
    got = download(store, new, pip_site, sources, [wanted], f"download a wheel of {wanted}")
    if not got:
        raise ResolutionError(f"pip downloaded no wheel of {p.name} {p.version}")
    return got[0]


def _pip_site(
    store: Store, manifest: Manifest, new: Interpreter, progress: Progress | None
) -> Path:
    for p in manifest.packages:
        if p.name == "pip" and p.key.abi == PURE and store.entry_record_or_none(p.key) is not None:
            return store.entry_dir(p.key) / "site"
    return store.entry_dir(bundled_pip_key(store, new, progress)) / "site"


def replacement_wheels(
    store: Store,
    manifest: Manifest,
    new: Interpreter,
    stale: dict[str, str],
    sources: PackageSources,
    progress: Progress | None,
    untrusted: str = "",
) -> tuple[dict[str, EntryKey], list[str]]:
    """Every package's entry for ``new`` (name -> key) and the "name version" rebuilt.

    Raises ResolutionError listing every package that has no usable wheel.
    ``untrusted``: the sources the manifest names that are not used (as options).
    """
    from envstore.python.tags import supported_tags
    from envstore.store.ingest import ingest_wheels
    from envstore.store.publish import ensure_compiled

    accepted = {str(t) for t in supported_tags(new)}
    keys = {p.name: p.key for p in manifest.packages if p.name not in stale}
    wheels: dict[str, Path] = {}
    failures: list[str] = []
    for p in manifest.packages:
        if p.name not in stale:
            continue
        if stale[p.name].startswith(VERSION_CHANGE):
            found = _other_version(store, manifest, p, new, accepted, sources, progress, untrusted)
            if isinstance(found, str):
                failures.append(f"{p.name} {p.version} ({stale[p.name]}): {found}")
            else:
                keys[p.name] = found
            continue
        key = stored_replacement(store, p, new, accepted)
        if key is not None:
            keys[p.name] = key
            continue
        wheel = _from_files(store, p, new, accepted, sources)
        if wheel is None and pip_may_find(sources, listed_local=True):
            if progress:
                progress(f"downloading {p.name} {p.version} for Python {new.version}")
            try:
                wheel = _download(store, p, new, sources, _pip_site(store, manifest, new, progress))
            except ResolutionError as exc:
                failures.append(f"{p.name} {p.version} ({stale[p.name]}): {exc}")
                continue
        if wheel is None:
            failures.append(
                f"{p.name} {p.version} ({stale[p.name]}): no wheel for"
                f" {new.abi_tag}/{new.platform} in {searched(sources, WHERE, untrusted)}"
            )
            continue
        wheels[p.name] = wheel
    if failures:
        recreate = ["envstore", "create", manifest.env, "--clear", "-p", new.path]
        recreate += sources.pip_options()  # those in use: never a crafted manifest's
        raise ResolutionError(
            f"cannot relink {manifest.env} to Python {new.version} ({new.soabi});"
            " nothing was changed. No usable wheel at the same version for:\n  - "
            + "\n  - ".join(failures)
            + "\nPass --find-links DIR with wheels for this Python, or recreate the env"
            " with versions that support it: " + shlex.join(recreate + manifest.requirements)
        )
    if wheels:
        ingested = ingest_wheels(store, list(wheels.values()), new, progress)
        for name, wheel in wheels.items():
            keys[name] = ingested[wheel]
    ensure_compiled(store, [k for k in keys.values() if k.abi == PURE], new)
    was = {p.name: p.version for p in manifest.packages}
    changed = sorted(
        f"{n} {k.version}" if k.version == was[n] else f"{n} {was[n]} -> {k.version}"
        for n, k in keys.items()
        if n in stale
    )
    return keys, changed


def _other_version(
    store: Store,
    manifest: Manifest,
    p: Package,
    new: Interpreter,
    accepted: set[str],
    sources: PackageSources,
    progress: Progress | None,
    untrusted: str,
) -> EntryKey | str:
    """The newest version of ``p`` that runs on ``new`` (its version cannot) and that
    the env allows: what the user's requirements (files included) and the env's other
    packages ask of it, no pre-release unless it was one, and its own requirements met
    by the env. For pip the target's own bundled pip first; then the store; then pip
    (which honours Requires-Python) with those bounds. A string says why there is none."""
    from envstore.resolve.fit import misfit, unmet, wanted

    packages = {q.name: q.key for q in manifest.packages}
    spec = wanted(store, manifest.requirements, packages, p.name, new)
    pre = _version(p.version).is_prerelease

    def why_not(key: EntryKey) -> str | None:
        unfit = misfit(store, p.name, key, new)
        if unfit:
            return unfit
        version = _version(key.version)
        if version.is_prerelease and not pre:
            return f"{key.version} is a pre-release"
        if not spec.contains(version, prereleases=True):
            return f"the env asks for {p.name}{spec}"
        return unmet(store, key, {**packages, p.name: key}, new)

    if p.name == "pip":
        try:
            key = bundled_pip_key(store, new, progress)
        except ResolutionError:
            pass
        else:
            if why_not(key) is None:
                return key

    found, last_why = [], f"the env asks for {p.name}{spec}" if spec else ""
    for key in entries_named(store, p.name, new):
        meta = store.entry_record_or_none(key)
        if meta and fits(meta.tags, accepted):
            why = why_not(key)
            if why is None:
                found.append(key)
            else:
                last_why = why
    if found:
        return max(found, key=lambda k: _version(k.version))
    if not pip_may_find(sources, listed_local=False):
        return f"no version that runs there in {searched(sources, WHERE, untrusted)}" + (
            f" ({last_why})" if last_why else ""
        )
    if progress:  # pip chooses (from --find-links only, with --no-index): it reads
        progress(f"finding a {p.name} for Python {new.version}")  # Requires-Python
    from envstore.store.ingest import ingest_wheels

    site = _pip_site(store, manifest, new, progress)
    bounds, why = str(spec), ""
    for _ in range(5):  # pip knows nothing of the env's other packages: exclude, retry
        try:
            wheel = _download(store, p, new, sources, site, bounds)
        except ResolutionError as exc:
            return str(exc) + (f" (earlier: {why})" if why else "")
        key = ingest_wheels(store, [wheel], new, progress)[wheel]
        found_why = why_not(key)
        if found_why is None:
            return key
        why = f"{wheel.name}: {found_why}"
        bounds = ",".join(b for b in (bounds, f"!={key.version}") if b)
    return why


def _version(text: str) -> Any:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text)
    except InvalidVersion:
        return Version("0")


def entries_named(store: Store, name: str, new: Interpreter) -> list[EntryKey]:
    """Every entry of the project ``name`` that ``new`` may see: its ABI's, and pure."""
    found = []
    for abi in (new.soabi, PURE):
        for n in sorted(store.entry_versions(abi, name)):
            try:
                found.append(EntryKey.parse(f"{abi}/{name}/{n}"))
            except ValueError:
                continue
    return found
