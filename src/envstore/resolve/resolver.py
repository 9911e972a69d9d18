"""From requirements to a set of store entries and wheels to ingest.

Order of attempts (store first, like an installer that finds a requirement
already satisfied):

1. the resolution cache: the same requirements (requirement files and what
   they include), options, local find-links listings and interpreter resolved
   before, every entry still present: no parsing, no pip;
2. the store resolver: every requirement (and, transitively, every
   Requires-Dist) satisfied by entries already in the store, highest version
   first, no backtracking;
3. pip, run by the target interpreter so markers are its own:
   ``pip install --dry-run --ignore-installed --report``, then ``pip wheel
   --no-deps`` for what is not a local wheel (downloads wheels, builds sdists).

``upgrade`` skips 1 and 2. ``offline`` forbids 3 (``pip.pip_may_run``).

A request with ``locked`` wheels (from a lock file) never resolves: each
named wheel is taken as it is, from a store entry with the same sha256 or a
file of that name whose sha256 matches (``--find-links`` directories, the
store's ``wheels/``, the interpreter's bundled wheels), else downloaded by pip
with ``--require-hashes``. Every problem is reported before anything is
ingested.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from envstore.errors import ResolutionError
from envstore.model.interpreter import Interpreter
from envstore.resolve.cache import cache_key, from_cache
from envstore.resolve.exact import from_lock
from envstore.resolve.pip import (
    bundled_wheel_dirs,
    cannot_fetch,
    from_pip,
    pip_command,
    pip_may_run,
    run_pip,
)
from envstore.resolve.request import Request, Resolved
from envstore.resolve.store_resolver import from_store
from envstore.store.layout import Store

__all__ = [
    "Request",
    "Resolved",
    "bundled_wheel_dirs",
    "pip_command",
    "resolve",
    "run_pip",
]


def resolve(
    store: Store,
    request: Request,
    interp: Interpreter,
    pip_site: Callable[[], Path],
    progress: Callable[[str], None] | None = None,
) -> Resolved:
    """Resolve ``request`` for ``interp``; see the module docstring for the order."""
    if request.locked:
        return from_lock(store, request, interp, pip_site, progress)
    if request.editables:
        # Never resolved as ordinary requirements (that would freeze a copy into the
        # store): the caller installs them and passes a request without them.
        first = request.editables[0]
        origin = request.editable_origins.get(first)
        raise ResolutionError(
            f"editable requirements in {origin}: not supported yet"
            if origin
            else f"editable requirements ({first}): not supported yet"
        )
    # Computed once, before anything is fetched: what is remembered under it is the
    # answer to the files as they were read.
    key = cache_key(request, interp)
    resolved = None
    if not request.upgrade:
        resolved = from_cache(store, key) if key is not None else None
        if resolved is None:
            resolved = from_store(store, request, interp)
        else:
            resolved.from_cache = True
        if resolved is not None:
            store.check_not_damaged(list(resolved.keys.values()))
    if resolved is None:
        if not pip_may_run(request.sources):
            raise cannot_fetch(" ".join(request.pip_requirements()) or "the requirements")
        resolved = from_pip(store, request, interp, pip_site(), progress)
    resolved.cache_key = key
    return resolved


# -- exact wheels from a lock ------------------------------------------------------
