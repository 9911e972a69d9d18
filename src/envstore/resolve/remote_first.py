"""Asking the remote cache first, for wheels whose sha256 is known before they are
fetched or unpacked (issue #26, "Lookup"): the index's hashes in pip's ``--report``
and the local wheels it chose (``pip.from_pip``, before it downloads), the local
wheels the store resolver or the resolution cache chose (``resolver.resolve``), as
for a lock's (``exact.from_lock``). What the remote has and verifies becomes an
entry; the rest takes the wheel path."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from envstore.model.interpreter import Interpreter
from envstore.resolve.request import Request, Resolved
from envstore.store.layout import Store

__all__ = ["ask_for_local_wheels", "ask_remote", "report_sha256", "report_wheel"]


def report_sha256(info: dict[str, object]) -> str | None:
    """The sha256 an item of pip's report gives for its archive (PEP 610
    ``archive_info``: ``hashes``, or the older ``hash``), lower case; None if none
    or if it is not 64 hex digits."""
    from envstore.model.lock_records import SHA256

    archive = info.get("archive_info")
    if not isinstance(archive, dict):
        return None
    hashes = archive.get("hashes")
    sha256 = hashes.get("sha256") if isinstance(hashes, dict) else None
    if sha256 is None and str(archive.get("hash", "")).startswith("sha256="):
        sha256 = str(archive["hash"])[len("sha256=") :]
    if not isinstance(sha256, str) or not SHA256.match(sha256.lower()):
        return None  # it names an object of the remote: only a digest may
    return sha256.lower()


def ask_remote(
    store: Store,
    request: Request,
    interp: Interpreter,
    known: dict[str, tuple[str, str]],
    resolved: Resolved,
    progress: Callable[[str], None] | None,
) -> set[str]:
    """Ask ``request.remote`` for the entries of ``known`` (name -> (wheel file name,
    sha256)); each hit goes into ``resolved.keys`` (and out of ``resolved.wheels``).
    The names it had. Warnings go to ``progress`` as ``warning: ...``."""
    from envstore.store.remote import pull, wanted_for

    assert request.remote is not None
    wanted = [wanted_for(name, wheel, sha, interp.soabi) for name, (wheel, sha) in known.items()]
    if not wanted:
        return set()
    if progress:
        progress(f"asking the remote cache for {len(wanted)} entries")

    def warn(message: str) -> None:
        if progress:
            progress(f"warning: {message}")

    pulled = pull(store, request.remote, wanted, warn, offline=request.sources.offline)
    for name, key in pulled.items():
        resolved.keys[name] = key
        resolved.wheels.pop(name, None)
    return set(pulled)


def report_wheel(url: str, info: dict[str, object], local: Path | None) -> tuple[str, str] | None:
    """(wheel file name, sha256) of an item of pip's report whose sha256 is known
    before it is fetched: the index gave it, or the wheel is the local file ``local``
    (hashed here if the report has no hash); None for anything else (no hash, an
    sdist, a directory)."""
    from urllib.parse import unquote, urlsplit

    wheel = unquote(urlsplit(url).path).rsplit("/", 1)[-1]
    if not wheel.endswith(".whl"):
        return None
    sha256 = report_sha256(info)
    if sha256 is None and local is not None:
        from envstore.store.hashing import sha256_file

        sha256 = sha256_file(local)
    return (wheel, sha256) if sha256 is not None else None


def ask_for_local_wheels(
    store: Store,
    request: Request,
    interp: Interpreter,
    resolved: Resolved,
    progress: Callable[[str], None] | None,
) -> None:
    """Ask the remote for the entries of the local wheels ``resolved`` would ingest
    (``--find-links`` directories, wheels named on the command line, the store's
    ``wheels/``), by their sha256, hashed here: cheaper than unpacking them."""
    from envstore.store.hashing import sha256_file

    known = {name: (path.name, sha256_file(path)) for name, path in resolved.wheels.items()}
    ask_remote(store, request, interp, known, resolved, progress)
