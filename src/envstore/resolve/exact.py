"""Exact wheels: what a lock names, by sha256, from the store, ``--find-links``,
the store's ``wheels/`` or the index.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import unquote, urlparse

from envstore.errors import LockError, ResolutionError
from envstore.model.interpreter import Interpreter
from envstore.resolve.pip import (
    bundled_wheel_dirs,
    download,
    pip_may_find,
    pip_may_run,
    searched,
    wheel_url,
)
from envstore.resolve.request import Request, Resolved
from envstore.resolve.store_resolver import entry_with_sha256
from envstore.store.layout import Store

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from typing import Any

    from envstore.model.lock import Lock, LockedDirectory, LockedPackage


def select_locked(
    lock: Lock,
    interp: Interpreter,
    *,
    extras: Sequence[str] = (),
    groups: Sequence[str] | None = None,
    directories: list[LockedDirectory] | None = None,
) -> list[LockedPackage]:
    """The packages of ``lock`` for ``interp``: a lock made in memory as it is; one read
    from a pylock.toml chosen by ``packaging.pylock`` (its ``requires-python`` and
    ``environments``, each package's marker, evaluated with ``extras`` and the dependency
    ``groups``, else the lock's ``default-groups``, the wheel whose tags fit ``interp``
    best). Source trees (``directory`` packages) chosen go to ``directories`` (relative
    paths made absolute), when given. Raises LockError naming every package that cannot
    be installed here."""
    if lock.pylock is None:
        return list(lock.packages)
    import dataclasses

    from packaging.pylock import PackageDirectory, PylockSelectError

    from envstore.model.lock import LockedDirectory
    from envstore.python.tags import ranked_tags

    source, pylock = lock.source, lock.pylock
    env: Any = dict(interp.markers)
    tags = ranked_tags(interp)
    asked: dict[str, Any] = {"extras": extras, "dependency_groups": groups}
    try:
        list(dataclasses.replace(pylock, packages=[]).select(environment=env, tags=tags, **asked))
    except PylockSelectError as exc:
        if str(exc).startswith("Undeclared"):
            names = [*(pylock.dependency_groups or ()), *(pylock.default_groups or ())]
            declared = (
                f"extras: {', '.join(pylock.extras or ()) or 'none'}; dependency groups:"
                f" {', '.join(dict.fromkeys(names)) or 'none'}"
            )
            raise LockError(f"{source}: {exc} (the lock declares {declared})") from None
        here = f"{interp.implementation} {interp.version}, {interp.abi_tag}, {interp.platform}"
        made_for = "; ".join(str(m) for m in pylock.environments or ())
        why = f"it was made for {made_for}" if "environments" in str(exc) else str(exc)
        raise LockError(
            f"{source}: not for this Python ({here}): {why}; lock again for it"
        ) from None
    requested = lock.requested()
    chosen: list[LockedPackage] = []
    problems: list[tuple[int, str]] = []  # by the package's index: in the lock's order
    try:  # the whole lock at once: one ranking of the tags, not one per package
        picks: list[tuple[Any, Any]] = list(pylock.select(environment=env, tags=tags, **asked))
    except PylockSelectError:  # one package at a time, to name each that cannot be
        picks = []
        for i, package in enumerate(pylock.packages):
            one = dataclasses.replace(pylock, packages=[package])
            try:
                picks += one.select(environment=env, tags=tags, **asked)
            except PylockSelectError as exc:
                if not (package.wheels and "No wheel found" in str(exc)):
                    what = f"{package.name} {package.version or ''}".rstrip() + f" (packages[{i}])"
                    why = str(exc).replace("packages[0]", f"packages[{i}]")
                    problems.append((i, f"{what}: {why}"))
                    continue
                # No wheel fits: from_lock names it with every other problem (its tags).
                picks.append((package, package.wheels[0]))
    at = {id(package): i for i, package in enumerate(pylock.packages)}
    for pkg, dist in picks:
        i = at[id(pkg)]  # the lock's own package objects, from either way
        what = f"{pkg.name} {pkg.version or ''}".rstrip() + f" (packages[{i}])"
        if isinstance(dist, PackageDirectory) and directories is not None:
            tree = dist.path
            if source is not None and not os.path.isabs(tree):
                tree = os.path.normpath(source.parent / tree)
            directories.append(LockedDirectory(pkg.name, tree, bool(dist.editable)))
            continue
        if any(c.name == pkg.name for c in chosen):
            problems.append((i, f"{what}: {pkg.name} is selected twice"))
            continue
        got = _locked(pkg, dist, source, requested is None or pkg.name in requested)
        if isinstance(got, str):
            problems.append((i, f"{what}: {got}"))
        else:
            chosen.append(got)
    if problems:
        listed = "\n  - ".join(why for _, why in sorted(problems, key=lambda p: p[0]))
        raise LockError(f"cannot use the lock {source}; nothing was installed:\n  - {listed}")
    return chosen


def _locked(pkg: Any, dist: Any, source: Path | None, requested: bool) -> LockedPackage | str:
    """The package ``packaging.pylock`` chose, as envstore installs it, or what is wrong
    with it: a wheel, an sdist or archive (built into a wheel by pip), a VCS commit."""
    from packaging.pylock import PackageArchive, PackageSdist, PackageVcs, PackageWheel

    from envstore.model.lock_records import (
        FULL_COMMIT,
        SHA256,
        SOURCE_NAME,
        WHEEL_NAME,
        LockedPackage,
        relative_parts,
    )
    from envstore.model.records import web_url

    url, path = dist.url, getattr(dist, "path", None)
    if not all(_plain(v) for v in (url, path)) or (
        url and not url.startswith(("https://", "http://", "file://"))
    ):
        # Both become lines of the requirements file pip reads: a newline there would
        # hand pip options the lock chose (another index, -r FILE), and pip expands
        # ${NAME} there from the environment (a secret, sent to the lock's server).
        return "its url or path is not a plain URL (no whitespace, control character or '$')"
    if path and source is not None and not os.path.isabs(path):
        path = os.path.normpath(source.parent / path)
    version = str(pkg.version) if pkg.version else ""
    if isinstance(dist, PackageVcs):
        # A full commit hash: a branch or tag name moves, and "-x" would be an option.
        commit = dist.commit_id or ""
        full = FULL_COMMIT.get(dist.type)
        if full is None or not full.fullmatch(commit):
            return (
                f"a {dist.type} source needs a full commit hash as its commit-id (git: 40 or 64"
                " hex digits, hg: 40; other version control systems are not supported)"
            )
        where = url or (Path(path).as_uri() if path else "")
        sub = dist.subdirectory or ""
        if not where or not _plain(sub) or not relative_parts(sub):
            return "its vcs source has no plain url or path, or its subdirectory is not plain"
        sub = f"#subdirectory={sub}" if sub else ""
        pip_url = f"{dist.type}+{where}@{commit}{sub}"
        return LockedPackage(pkg.name, version, "", "", requested, None, pip_url, kind="vcs")
    if not isinstance(dist, (PackageWheel, PackageSdist, PackageArchive)):
        return f"{type(dist).__name__.removeprefix('Package').lower()} sources are not supported"
    subdirectory = None
    if isinstance(dist, PackageArchive):
        subdirectory = dist.subdirectory or None
        if subdirectory is not None and not (
            _plain(subdirectory) and relative_parts(subdirectory) and "#" not in (url or "")
        ):
            return (
                "its archive's subdirectory is not plain relative components"
                " (or its url already has a #fragment)"
            )
        name = unquote(urlparse(url).path if url else str(path)).rsplit("/", 1)[-1]
    else:
        name = dist.filename
    wheel = name.endswith(".whl")
    digest = dist.hashes.get("sha256")
    if not isinstance(digest, str) or not SHA256.match(digest):
        return f"{name} has no sha256 hash (64 hex digits)"
    if not (WHEEL_NAME if wheel else SOURCE_NAME).match(name):
        return f"{name!r} is not a {'wheel' if wheel else 'source archive'} file name"
    if wheel and not version:
        version = name.split("-")[1]
    index = pkg.index if web_url(pkg.index) else None
    kind = "wheel" if wheel else "archive" if isinstance(dist, PackageArchive) else "sdist"
    return LockedPackage(
        pkg.name, version, name, digest, requested, path, url, index, kind=kind,
        subdirectory=subdirectory,
    )  # fmt: skip


def _plain(value: str | None) -> bool:
    """No whitespace, control character or ``$`` in ``value`` (None: nothing to check)."""
    return value is None or (
        "$" not in value and all(c.isprintable() and not c.isspace() for c in value)
    )


def _download_locked(
    store: Store,
    request: Request,
    interp: Interpreter,
    missing: list[LockedPackage],
    pip_site: Path,
) -> dict[str, Path]:
    """pip downloads exactly the locked wheels (``--require-hashes``, no deps, no sdists);
    those whose sha256 the lock names are kept (name -> wheel in ``wheels/``). A wheel
    the lock names by its package's ``index`` alone (no url) is looked for there, the
    run's index options after it (not with ``--no-index``): the hash decides, as for a
    lock's url."""
    from envstore.store.hashing import sha256_file

    wanted = {p.sha256: p.name for p in missing}
    names: dict[str, str] = {}  # wheel file name -> package

    def locked(wheel: Path) -> bool:
        name = wanted.get(sha256_file(wheel))
        if name is not None:
            names[wheel.name] = name
        return name is not None

    sources = request.sources
    by_index: dict[str | None, list[LockedPackage]] = {}
    for p in missing:
        on = p.index if p.index and not p.url and not sources.no_index else None
        by_index.setdefault(on, []).append(p)
    got: list[Path] = []
    for index, todo in by_index.items():
        where = sources
        if index is not None:
            from envstore.model.sources import PackageSources

            others = [u for u in (sources.index_url, *sources.extra_index_urls) if u]
            others = [u for u in others if u.rstrip("/") != index.rstrip("/")]
            where = PackageSources(sources.find_links, index, False, sources.offline, others)
        lines = [p.pip_line() for p in todo]
        got += download(
            store, interp, pip_site, where, lines, "download the locked wheels", hashed=True,
            keep=locked,
        )  # fmt: skip
    return {names[w.name]: w for w in got}


def _from_remote(
    store: Store,
    request: Request,
    interp: Interpreter,
    missing: list[LockedPackage],
    resolved: Resolved,
    progress: Callable[[str], None] | None,
) -> None:
    """Ask the remote cache for the locked wheels the store lacks (before any wheel is
    fetched or unpacked); what it has and verifies becomes an entry, the rest is left to
    the wheel path. Warnings go to ``progress`` as ``warning: ...``."""
    from envstore.resolve.remote_first import ask_remote

    todo = [p for p in request.locked if p in missing or p.name in resolved.wheels]
    known = {p.name: (p.wheel, p.sha256) for p in todo}
    ask_remote(store, request, interp, known, resolved, progress)


def from_lock(
    store: Store,
    request: Request,
    interp: Interpreter,
    pip_site: Callable[[], Path],
    progress: Callable[[str], None] | None,
) -> Resolved:
    """Exactly the locked wheels, each checked against its sha256 before anything is
    ingested, and the wheels pip builds from the locked sdists and VCS commits
    (``locked_sources``); raises ResolutionError naming every wheel or source that is
    missing, does not fit ``interp`` or does not match its hash."""
    from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
    from packaging.version import Version

    from envstore.python.tags import supported_tags
    from envstore.resolve.locked_sources import (
        build_locked,
        built_before,
        matching_file,
        named_file,
        source_line,
    )

    accepted = supported_tags(interp)
    sources = request.sources
    dirs = [Path(d) for d in sources.local_dirs()]
    dirs += [store.wheels_dir, *bundled_wheel_dirs(interp)]
    resolved = Resolved(requested={p.name for p in request.locked if p.requested})
    problems: list[str] = []
    missing: list[LockedPackage] = []
    builds: list[tuple[LockedPackage, str]] = []  # sdists and VCS commits
    for p in request.locked:
        if p.kind != "wheel":
            before = built_before(store, p, interp)
            if before is not None:  # built from this very source already
                resolved.keys[p.name] = before
                continue
            line = source_line(p, dirs, problems)
            if line is not None:
                builds.append((p, line))
            continue
        what = f"{p.name} {p.version} ({p.wheel})"
        try:
            name, version, _, tags = parse_wheel_filename(p.wheel)
            same = canonicalize_name(name) == p.name and version == Version(p.version)
        except (InvalidWheelFilename, ValueError):
            same = False
        if not same:
            problems.append(f"{what}: not a wheel file name of {p.name} {p.version}")
            continue
        if not tags & accepted:
            problems.append(
                f"{what}: the locked wheel does not fit this Python ({interp.version},"
                f" {interp.abi_tag}, {interp.platform}); there is no wheel for this platform"
                " in the lock"
            )
            continue
        key = entry_with_sha256(store, p.name, p.sha256, interp)
        if key is not None:
            resolved.keys[p.name] = key
            continue
        files = [d / p.wheel for d in dirs if (d / p.wheel).is_file()]
        named = named_file(p)
        if named is not None and named.is_file():
            files.insert(0, named)
        if not files:
            missing.append(p)
            continue
        match = matching_file(files, p.sha256, what, problems)
        if match is None:
            continue
        resolved.wheels[p.name] = match
    if request.remote and (missing or resolved.wheels) and not problems:
        _from_remote(store, request, interp, missing, resolved, progress)
        missing = [p for p in missing if p.name not in resolved.keys]
    may_download = pip_may_find(sources, listed_local=True) or (
        pip_may_run(sources) and all(p.pip_line().startswith(f"{p.name} @") for p in missing)
    )
    if missing and may_download and not problems:
        if progress:
            progress(f"downloading {len(missing)} locked wheels")
        got = _download_locked(store, request, interp, missing, pip_site())
        resolved.wheels.update(got)
        for p in missing:  # a wheel fetched by its URL: where it came from, for locks
            # What this run's sources say (wheel_url), never the lock's index: the lock is
            # untrusted, and entry.json is shared with every later lock of the store.
            fetched = wheel_url(p.url or "", got[p.name].name, sources) if p.name in got else None
            if fetched is not None:
                resolved.urls[p.name] = fetched
        missing = [p for p in missing if p.name not in got]
    where = searched(sources, "the store")
    for p in missing:
        at = f"{p.path or p.url}, " if p.path or p.url else ""
        problems.append(f"{p.name} {p.version}: no wheel {p.wheel} with its sha256 in {at}{where}")
    if builds and not problems:
        built = build_locked(store, interp, pip_site, sources, builds, problems, progress)
        resolved.wheels.update(built)
    if problems:
        raise ResolutionError(
            "cannot create the environment from the lock; nothing was installed:\n  - "
            + "\n  - ".join(problems)
        )
    store.check_not_damaged(list(resolved.keys.values()))
    return resolved
