"""Exact wheels: what a lock names, by sha256, from the store, ``--find-links``,
the store's ``wheels/`` or the index.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from envstore.errors import ResolutionError
from envstore.model.interpreter import Interpreter
from envstore.resolve.pip import bundled_wheel_dirs, download, pip_may_find, searched
from envstore.resolve.request import Request, Resolved
from envstore.resolve.store_resolver import entry_with_sha256
from envstore.store.layout import Store

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from envstore.model.lock import LockedPackage


def _download_locked(
    store: Store,
    request: Request,
    interp: Interpreter,
    missing: list[LockedPackage],
    pip_site: Path,
) -> dict[str, Path]:
    """pip downloads exactly the locked wheels (``--require-hashes``, no deps, no sdists);
    those whose sha256 the lock names are kept (name -> wheel in ``wheels/``)."""
    from envstore.store.hashing import sha256_file

    wanted = {p.sha256: p.name for p in missing}
    names: dict[str, str] = {}  # wheel file name -> package

    def locked(wheel: Path) -> bool:
        name = wanted.get(sha256_file(wheel))
        if name is not None:
            names[wheel.name] = name
        return name is not None

    lines = [p.pip_line() for p in missing]
    got = download(
        store,
        interp,
        pip_site,
        request.sources,
        lines,
        "download the locked wheels",
        hashed=True,
        keep=locked,
    )
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
    from envstore.store.remote import pull, wanted_for

    assert request.remote is not None
    todo = [p for p in request.locked if p in missing or p.name in resolved.wheels]
    wanted = [wanted_for(p.name, p.wheel, p.sha256, interp.soabi) for p in todo]
    if progress:
        progress(f"asking the remote cache for {len(wanted)} entries")

    def warn(message: str) -> None:
        if progress:
            progress(f"warning: {message}")

    pulled = pull(store, request.remote, wanted, warn, offline=request.sources.offline)
    for name, key in pulled.items():
        resolved.keys[name] = key
        resolved.wheels.pop(name, None)


def from_lock(
    store: Store,
    request: Request,
    interp: Interpreter,
    pip_site: Callable[[], Path],
    progress: Callable[[str], None] | None,
) -> Resolved:
    """Exactly the locked wheels, each checked against its sha256 before anything is
    ingested; raises ResolutionError naming every wheel that is missing, does not fit
    ``interp`` or does not match its hash."""
    from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
    from packaging.version import Version

    from envstore.python.tags import supported_tags
    from envstore.store.hashing import sha256_file

    accepted = supported_tags(interp)
    sources = request.sources
    dirs = [Path(d) for d in sources.local_dirs()]
    dirs += [store.wheels_dir, *bundled_wheel_dirs(interp)]
    resolved = Resolved(requested={p.name for p in request.locked if p.requested})
    problems: list[str] = []
    missing: list[LockedPackage] = []
    for p in request.locked:
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
        if not files:
            missing.append(p)
            continue
        digests = {f: sha256_file(f) for f in files}
        match = next((f for f, h in digests.items() if h == p.sha256), None)
        if match is None:
            problems += [
                f"{what}: hash mismatch: {f} has sha256:{h}, the lock says sha256:{p.sha256}"
                for f, h in digests.items()
            ]
            continue
        resolved.wheels[p.name] = match
    if request.remote and (missing or resolved.wheels) and not problems:
        _from_remote(store, request, interp, missing, resolved, progress)
        missing = [p for p in missing if p.name not in resolved.keys]
    may_download = pip_may_find(sources, listed_local=True)
    if missing and may_download and not problems:
        if progress:
            progress(f"downloading {len(missing)} locked wheels")
        got = _download_locked(store, request, interp, missing, pip_site())
        resolved.wheels.update(got)
        missing = [p for p in missing if p.name not in got]
    where = searched(sources, "the store")
    for p in missing:
        problems.append(f"{p.name} {p.version}: no wheel {p.wheel} with its sha256 in {where}")
    if problems:
        raise ResolutionError(
            "cannot create the environment from the lock; nothing was installed:\n  - "
            + "\n  - ".join(problems)
        )
    store.check_not_damaged(list(resolved.keys.values()))
    return resolved
