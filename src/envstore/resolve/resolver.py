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

With an index in play, 1 and 2 answer only within the freshness window
(``envstore.resolve.freshness``): the cached resolution if pip made it at most
``max_age`` ago, the store resolver if every package it chose is pinned to one
version; otherwise pip resolves against the index (3), and the store still serves
every wheel it already has. ``index_note`` on the answer says which, and why.

A request with ``locked`` wheels (from a lock file) never resolves: each
named wheel is taken as it is, from a store entry with the same sha256 or a
file of that name whose sha256 matches (``--find-links`` directories, the
store's ``wheels/``, the interpreter's bundled wheels), else downloaded by pip
with ``--require-hashes``. Every problem is reported before anything is
ingested.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from envstore.errors import ResolutionError
from envstore.model.interpreter import Interpreter
from envstore.resolve.cache import cache_keys, from_cache
from envstore.resolve.freshness import (
    age_text,
    effective_max_age,
    hash_pinned,
    index_in_play,
    why_no_index,
)
from envstore.resolve.request import Request, Resolved
from envstore.resolve.store_resolver import from_store
from envstore.store.layout import Store

__all__ = [
    "Request",
    "Resolved",
    "resolve",
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
        from envstore.resolve.exact import from_lock  # locks and pip: not a warm create's

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
    # A git ref is stamped by its commit (asking the repository) unless no network is
    # allowed or wanted: then by the ref, answered by what it resolved to last time.
    by_ref = request.sources.offline or (
        not request.upgrade and effective_max_age(request.max_age) == float("inf")
    )
    key, alias = cache_keys(request, interp, by_ref)
    if request.upgrade:
        resolved, why = None, "upgrade (-U)"
    else:
        resolved, why = _without_pip(store, request, interp, key)
    if resolved is not None:
        store.check_not_damaged(list(resolved.keys.values()))
        if progress:
            progress(f"index not consulted: {resolved.index_note}")
        if request.remote and resolved.wheels:  # local wheels (from_pip asks for its own)
            from envstore.resolve.remote_first import ask_for_local_wheels

            ask_for_local_wheels(store, request, interp, resolved, progress)
    else:
        from envstore.resolve import pip

        if not pip.pip_may_run(request.sources):
            raise pip.cannot_fetch(" ".join(request.pip_requirements()) or "the requirements")
        if index_in_play(request.sources):
            why = f"index consulted: {why}"
        else:
            why = f"no index ({why_no_index(request.sources)}); pip chooses: {why}"
        if progress:
            progress(why)
        started = time.time()
        resolved = pip.from_pip(store, request, interp, pip_site(), progress)
        resolved.resolved_at = started
        resolved.index_note = why
    resolved.cache_key, resolved.alias_key = key, alias
    return resolved


def _without_pip(
    store: Store, request: Request, interp: Interpreter, key: str | None
) -> tuple[Resolved | None, str]:
    """The answer of the resolution cache or the store resolver, if the freshness policy
    lets them answer (``index_note`` says why); else None and why the index is needed."""
    sources = request.sources
    in_play = index_in_play(sources)
    max_age = effective_max_age(request.max_age) if in_play else float("inf")
    cached = from_cache(store, key) if key is not None else None
    why = "not resolved against the index before"
    if cached is not None:
        age = time.time() - cached.resolved_at
        if not in_play:
            cached.index_note = f"cached resolution, {why_no_index(sources)}"
            return cached, ""
        if max_age == float("inf"):
            cached.index_note = "cached resolution (max-age inf)"
            return cached, ""
        window = f"(max-age {age_text(max_age)})"
        if cached.resolved_at and age <= max_age:
            cached.index_note = f"fresh cache: resolved {age_text(age)} ago {window}"
            return cached, ""
        if hash_pinned(request.requirements, request.requirement_files):
            cached.index_note = "pinned with hashes"
            return cached, ""
        if max_age == 0:
            why = "refresh (max-age 0)"
        elif cached.resolved_at:
            why = f"window expired: resolved {age_text(age)} ago {window}"
    elif max_age == 0:
        why = "refresh (max-age 0)"
    resolved = from_store(store, request, interp)
    if resolved is None:
        return None, why if in_play else "the store cannot satisfy the requirements"
    if not in_play:
        resolved.index_note = f"from the store, {why_no_index(sources)}"
    elif resolved.pinned:
        resolved.index_note = "pinned: every package is pinned to one version"
    elif max_age == float("inf"):
        resolved.index_note = "from the store (max-age inf)"
    else:
        return None, why
    return resolved, ""


# -- exact wheels from a lock ------------------------------------------------------
