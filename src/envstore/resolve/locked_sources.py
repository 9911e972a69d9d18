"""Packages a lock names by their source: an sdist (or a source archive) whose sha256
the lock gives, or a VCS commit; pip builds each into a wheel (``pip wheel --no-deps``,
in its own isolated build env, whose build requirements it resolves from the sources
given), which is then ingested like any other.

What a source was built into is remembered in the resolution cache (``built_key`` of
the sdist's ``sha256:<hex>``, or of the VCS URL with its full commit, for the
interpreter's ABI): the next env from a lock naming the same source takes that entry,
without building it again (or running pip at all: also ``--offline``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from envstore.errors import LockError
from envstore.model.interpreter import Interpreter
from envstore.model.keys import EntryKey
from envstore.model.sources import PackageSources
from envstore.resolve.pip import download, pip_may_run
from envstore.store.layout import Store

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from envstore.model.lock import LockedPackage

__all__ = ["build_locked", "built_before", "named_file", "source_line"]


def source_line(p: LockedPackage, dirs: Sequence[Path], problems: list[str]) -> str | None:
    """What pip builds ``p`` from (a requirement line), or None with a problem added: a
    local sdist (the lock's ``path`` or ``file:`` URL, else one of that name in
    ``dirs``) is hashed here, before anything is built or ingested; a remote one is
    hashed by pip (``--require-hashes``) before it is built; a VCS commit has no hash."""
    try:
        return _source_line(p, dirs, problems)
    except LockError as exc:
        problems.append(f"{p.name} {p.version}: {exc}")
        return None


def _source_line(p: LockedPackage, dirs: Sequence[Path], problems: list[str]) -> str | None:
    from envstore.model.lock import requirement_line

    if p.kind == "vcs":
        return requirement_line(p.url or "")
    if p.kind == "directory":  # a source tree: no hash to check, built as it is now
        return requirement_line(f"{p.name} @ {Path(p.path or '').resolve().as_uri()}")
    what = f"{p.name} {p.version} ({p.wheel})".replace("  ", " ")
    sub = f"#subdirectory={p.subdirectory}" if p.subdirectory else ""  # pip's fragment
    named = named_file(p)
    files = [named] if named is not None else [d / p.wheel for d in dirs]
    files = [f for f in files if f.is_file()]
    if not files and p.url and p.url.startswith(("https://", "http://")):
        return requirement_line(f"{p.name} @ {p.url}{sub} --hash=sha256:{p.sha256}")
    if not files:
        problems.append(f"{what}: no sdist {p.wheel} at {named or 'the --find-links'}")
        return None
    match = matching_file(files, p.sha256, what, problems)
    if match is None:
        return None
    uri = match.resolve().as_uri()
    return requirement_line(f"{p.name} @ {uri}{sub} --hash=sha256:{p.sha256}")


def matching_file(
    files: Sequence[Path], sha256: str, what: str, problems: list[str]
) -> Path | None:
    """The first of ``files`` whose sha256 is the lock's; else None, each file's
    mismatch added to ``problems``."""
    from envstore.store.hashing import sha256_file

    digests = {f: sha256_file(f) for f in files}
    match = next((f for f, h in digests.items() if h == sha256), None)
    if match is None:
        problems += [
            f"{what}: hash mismatch: {f} has sha256:{h}, the lock says sha256:{sha256}"
            for f, h in digests.items()
        ]
    return match


def named_file(p: LockedPackage) -> Path | None:
    """The local file the lock names for ``p`` (``path``, or a ``file:`` URL)."""
    if p.path:
        return Path(p.path)
    if p.url and p.url.startswith("file:"):
        from urllib.parse import unquote, urlparse

        return Path(unquote(urlparse(p.url).path))
    return None


def _built_key(p: LockedPackage, interp: Interpreter) -> str:
    from envstore.resolve.cache import built_key

    ident = (p.url or "") if p.kind == "vcs" else f"sha256:{p.sha256}"
    if p.subdirectory:  # one archive, several projects: each is its own build
        ident += f"#subdirectory={p.subdirectory}"
    return built_key(ident, "locked", interp)


def built_before(store: Store, p: LockedPackage, interp: Interpreter) -> EntryKey | None:
    """The store entry the locked source ``p`` (an sdist, archive or VCS commit) was
    built into for ``interp`` before, if it is still there."""
    from envstore.resolve.cache import first_key
    from envstore.store import caches

    if p.kind == "directory":
        return None
    key = first_key(caches.resolution(store.db(), _built_key(p, interp)))
    if key is None or key.name != p.name or not store.has_entry(key):
        return None  # the database is data from disk: the entry must be of this package
    return key if not p.version or key.version == p.version else None


def build_locked(
    store: Store,
    interp: Interpreter,
    pip_site: Callable[[], Path],
    sources: PackageSources,
    todo: Sequence[tuple[LockedPackage, str]],
    problems: list[str],
    progress: Callable[[str], None] | None,
) -> dict[str, Path]:
    """pip builds each source of ``todo`` (package, ``source_line``) into a wheel in the
    store's ``wheels/``; returns name -> wheel, adding a problem for each that gave no
    wheel of its name and version."""
    from packaging.utils import canonicalize_name, parse_wheel_filename
    from packaging.version import Version

    if not pip_may_run(sources):
        problems += [
            f"{p.name}: built from its source by pip, which --offline does not run" for p, _ in todo
        ]
        return {}
    if progress:
        progress(f"building {len(todo)} locked packages from source")
    hashed = [line for p, line in todo if p.kind in ("sdist", "archive")]
    plain = [line for p, line in todo if p.kind not in ("sdist", "archive")]
    got: list[Path] = []
    site = pip_site()
    if hashed:
        got += download(
            store, interp, site, sources, hashed, "build the locked sdists", build=True, hashed=True
        )
    if plain:
        got += download(
            store,
            interp,
            site,
            sources,
            plain,
            "build the locked VCS sources and source trees",
            build=True,
        )
    built: dict[str, tuple[Version, Path]] = {}
    for wheel in got:
        name, version, _, _ = parse_wheel_filename(wheel.name)
        built[canonicalize_name(name)] = (version, wheel)
    out: dict[str, Path] = {}
    for p, _ in todo:
        found = built.get(p.name)
        if found is None:
            problems.append(f"{p.name}: pip built no wheel of it from {p.wheel or p.url}")
        elif p.version and found[0] != Version(p.version):
            problems.append(
                f"{p.name}: its source built version {found[0]}, the lock says {p.version}"
            )
        else:
            out[p.name] = found[1]
    if out and not problems:  # a source tree may change: built again every time
        fixed = [(p, out[p.name]) for p, _ in todo if p.kind != "directory"]
        _remember(store, interp, fixed, progress)
    return out


def _remember(
    store: Store,
    interp: Interpreter,
    built: Sequence[tuple[LockedPackage, Path]],
    progress: Callable[[str], None] | None,
) -> None:
    """Ingest what was built (the caller's ingest then finds the entries there) and
    remember which entry each source became (``built_before``)."""
    from envstore.store import caches
    from envstore.store.db import write
    from envstore.store.ingest import ingest_wheels

    if not built:
        return
    keys = ingest_wheels(store, [wheel for _, wheel in built], interp, progress)
    with write(store.db()) as conn:
        for p, wheel in built:
            item = {"key": str(keys[wheel]), "requested": p.requested}
            caches.put_resolution(conn, _built_key(p, interp), [item], 0)
