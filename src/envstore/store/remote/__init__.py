"""A signed remote cache of store entries (issue #26; store-layout.md, "Remote cache").

Imported only when a remote is configured (``--remote`` or ``ENVSTORE_REMOTE``):
its libraries (obstore and boto3, cryptography, zstandard: the ``remote`` extra) cost
start-up time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from envstore.errors import RemoteError
from envstore.model.keys import EntryKey
from envstore.model.sources import public_url
from envstore.store.layout import Store
from envstore.store.remote.backends import Backend, FileBackend, HttpBackend
from envstore.store.remote.keys import generate_key, signing_key_from_env, trusted_keys_from_env
from envstore.store.remote.prune import PrunePlan
from envstore.store.remote.pull import Pulled, Wanted, fetch_entry, pull_entries, wanted_for
from envstore.store.remote.push import PushReport, push_entries

__all__ = [
    "Backend",
    "PrunePlan",
    "Pulled",
    "PushReport",
    "Wanted",
    "generate_key",
    "open_backend",
    "prune",
    "pull",
    "push",
    "refetch",
    "remote_from_env",
    "wanted_for",
]


def open_backend(url: str) -> Backend:
    """The backend for a remote URL: ``file://``, ``s3://`` or ``http(s)://``."""
    _check_libraries()
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise RemoteError(f"remote {public_url(url)!r} is not a URL (file://, s3://, https://)")
    if scheme == "file":
        from urllib.parse import unquote

        path = unquote(rest[rest.index("/") :] if "/" in rest else "")
        if not path.startswith("/"):
            raise RemoteError(f"remote {url!r}: a file:// URL names an absolute directory")
        return FileBackend(Path(path))
    if scheme in ("http", "https"):
        return HttpBackend(url)
    if scheme == "s3":
        from envstore.store.remote.s3 import S3Backend

        _check_libraries(("obstore", "boto3"))
        return S3Backend(url)
    raise RemoteError(f"remote {public_url(url)!r}: unknown scheme {scheme!r}")


def _check_libraries(modules: Sequence[str] = ("cryptography", "zstandard")) -> None:
    """RemoteError if one of the ``remote`` extra's libraries is missing (``pip install
    -U envstore`` adds no new dependency of an extra installed before): said once, not
    once per object."""
    import importlib.util

    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise RemoteError(f"a remote needs {module}: pip install 'envstore[remote]'")


def remote_from_env(remote: str | None) -> str | None:
    """``remote`` if given, else ``$ENVSTORE_REMOTE`` (empty: none)."""
    return remote or os.environ.get("ENVSTORE_REMOTE") or None


def pull(
    store: Store,
    url: str,
    wanted: Sequence[Wanted],
    warn: Callable[[str], None],
    *,
    offline: bool = False,
) -> dict[str, EntryKey]:
    """What of ``wanted`` the remote at ``url`` has and that verifies, now in the store.
    Never raises for the remote's sake: each problem is one ``warn`` line."""
    try:
        backend = open_backend(url)
        if offline and not url.startswith("file:"):
            return {}  # --offline: no network; a shared directory is not the network
        trusted = trusted_keys_from_env()
    except RemoteError as exc:
        warn(f"{exc}; the remote is not used")
        return {}
    if not trusted:
        warn(f"no ENVSTORE_TRUSTED_KEYS: nothing from {backend.url} can be verified; not used")
        return {}
    return pull_entries(store, backend, trusted, wanted, warn)


def push(store: Store, url: str, keys: Sequence[EntryKey]) -> PushReport:
    """Upload what of ``keys`` the remote at ``url`` lacks, signed with
    ``$ENVSTORE_SIGNING_KEY``. RemoteError if it cannot be used at all."""
    signer = signing_key_from_env()
    if signer is None:
        raise RemoteError("pushing needs ENVSTORE_SIGNING_KEY (a key from 'envstore key generate')")
    return push_entries(store, open_backend(url), signer, keys)


def refetch(store: Store, origin: str, key: EntryKey, wheel: str, sha256: str) -> Pulled:
    """The entry ``key`` fetched again from the remote it was pulled from (``origin``)
    and verified, in ``tmp/``: what ``verify --repair`` swaps in for a damaged copy.
    RemoteError says why not (nothing there, refused, unreachable, no trusted keys)."""
    backend = open_backend(origin)
    trusted = trusted_keys_from_env()
    if not trusted:
        raise RemoteError(f"no ENVSTORE_TRUSTED_KEYS to verify it from {backend.url}")
    got = fetch_entry(store, backend, trusted, Wanted(key.name, wheel, sha256, key.abi), again=True)
    if not isinstance(got, Pulled):
        raise RemoteError(f"{backend.url} no longer has it")
    if got.record.key != str(key):
        from envstore.store.fs import rmtree

        rmtree(got.work)
        raise RemoteError(f"{backend.url} has another entry for its wheel ({got.record.key})")
    return got


def prune(url: str, older_than: float, *, dry_run: bool = False) -> PrunePlan:
    """Drop the objects of the remote at ``url`` no push has touched for ``older_than``
    seconds (``store/remote/prune.py``); with ``dry_run`` only say which."""
    from envstore.store.remote.prune import prune as prune_backend

    backend = open_backend(url)
    if not backend.writable:
        raise RemoteError(f"{backend.url} is read-only; prune its s3:// or file:// side")
    return prune_backend(backend, older_than, dry_run=dry_run)
