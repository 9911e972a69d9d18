"""The resolution cache: the same request on the same interpreter with the same
inputs (files, find-links listings) resolves to the same entries without pip.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from envstore.errors import ResolutionError
from envstore.model.interpreter import Interpreter
from envstore.model.keys import EntryKey
from envstore.resolve.forms import Form, absolute, classify, local_path
from envstore.resolve.reqfiles import listing, requirement_texts
from envstore.resolve.request import Request, Resolved
from envstore.store import caches
from envstore.store.layout import Store

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


def cache_keys(
    request: Request, interp: Interpreter, by_ref: bool = False
) -> tuple[str | None, str | None]:
    """The resolution cache's key for ``request`` on ``interp`` (None when a requirement
    names a place whose content cannot be told unchanged: ``stamps``), and the key its
    answer is also kept under when a ``git+URL@REF`` was stamped by the commit REF names
    now: the same request stamped by REF (``by_ref``), which a later ``--offline`` or
    ``--max-age inf`` request computes without asking the repository. None when there
    is no such key."""
    import xxhash

    files: list[str] = []
    seen: set[str] = set()
    places: list[tuple[str, str | None]] = [(r, None) for r in request.requirements]
    found: list[tuple[str, str]] = []
    for f in (*request.requirement_files, *request.constraints):
        if f in request.constraints:
            files.append("-c")  # what follows constrains: not the same key as -r
        try:
            files += requirement_texts(f, seen, found)
        except OSError as exc:
            raise ResolutionError(f"cannot read requirements file {f}: {exc}") from None
    places += found
    forms = [classify(line, base) for line, base in places]  # once: each ~3 us
    stamps = place_stamps(places, by_ref, forms)
    if stamps is None:
        return None, None
    moving = not by_ref and _moving(places)
    by_ref_stamps = place_stamps(places, True, forms) if moving else None
    # What a local --find-links directory holds (names, sizes, mtimes): a wheel
    # added, removed or rebuilt there changes pip's choice, so the cached one is stale.
    # (PIP_FIND_LINKS too: pip, when it runs, looks there as well.)
    more = os.environ.get("PIP_FIND_LINKS", "").split()
    links = [(os.path.abspath(d), listing(d)) for d in [*request.sources.find_links, *more]]
    extra = request.sources.extra_index_urls

    # "." is where it was said (the requirements: the first of places)
    wanted = sorted(absolute(r, form=f) for r, f in zip(request.requirements, forms, strict=False))

    def key(stamps: list[str]) -> str:
        # The same inputs hash to the same key: kept per process by the inputs
        # themselves (a tuple compared whole), not encoded again (~50 us a warm sync).
        known: tuple[object, ...] = (tuple(wanted), tuple(files))
        known += (tuple((d, _frozen(rows)) for d, rows in links),)
        known += (request.sources.index_url, request.sources.no_index, tuple(extra))
        known += (request.pre, tuple(stamps), interp.soabi, interp.version, interp.platform)
        found = _KEYS.get(known)
        if found is not None:
            return found
        blob = json.dumps(
            [
                wanted,
                files,
                links,
                request.sources.index_url,
                request.sources.no_index,
                # Only when present, so the keys of every other request stay as they were.
                *([["extra-index", *extra]] if extra else []),
                *([["pre"]] if request.pre else []),
                *([["places", *stamps]] if stamps else []),
                interp.soabi,
                interp.version,
                interp.platform,
            ]
        )
        found = str(xxhash.xxh3_128_hexdigest(blob.encode()))
        if len(_KEYS) >= 64:  # bounded: a process resolving many requests
            _KEYS.clear()
        _KEYS[known] = found
        return found

    alias = key(by_ref_stamps) if by_ref_stamps and by_ref_stamps != stamps else None
    return key(stamps), alias


# Resolution-cache keys by their inputs (cache_keys); every input is a str, an int, a
# bool, None or a tuple of them, so equal tuples are equal JSON.
_KEYS: dict[tuple[object, ...], str] = {}


def _frozen(rows: list[tuple[str, int, int, int, int]] | None) -> tuple[object, ...] | None:
    return tuple(rows) if rows is not None else None


def _moving(places: list[tuple[str, str | None]]) -> bool:
    """Whether a requirement is a ``git+`` URL (whose ref may move)."""
    return any("git+" in line for line, _ in places)


def place_stamps(
    places: list[tuple[str, str | None]], by_ref: bool, forms: list[Form] | None = None
) -> list[str] | None:
    """[target, stamp] of each requirement that names a place (a path or a URL), taken
    from the current directory or its file's directory; None if one has no stamp.
    ``forms``: ``classify`` of each place, when the caller has them."""
    out = []
    for i, (line, base) in enumerate(places):
        form = forms[i] if forms is not None else classify(line, base)
        if form.kind == "name":
            continue
        from envstore.resolve.stamps import stamp  # a place named: not a plain create's

        found = stamp(form, by_ref)
        if found is None:
            return None
        out.append(json.dumps([form.target, found]))
    return out


def built_key(path: str, place_stamp: str, interp: Interpreter) -> str:
    """The resolution cache's key for what the local project or archive ``path`` built
    into, at ``place_stamp``, for ``interp``: one entry, served to any request naming it
    while the stamp holds (another hash of the same table: no schema change)."""
    import xxhash

    blob = json.dumps(["built", path, place_stamp, interp.soabi, interp.version, interp.platform])
    return str(xxhash.xxh3_128_hexdigest(blob.encode()))


def local_places(request: Request, interp: Interpreter) -> dict[str, str]:
    """{local path: :func:`built_key`} of each local project or archive the request names
    (a path or a ``file:`` URL), stamped now: before pip builds it."""
    places: list[tuple[str, str | None]] = [(r, None) for r in request.requirements]
    found: list[tuple[str, str]] = []
    seen: set[str] = set()
    for f in request.requirement_files:
        try:
            requirement_texts(f, seen, found)
        except OSError:
            continue  # pip says so
    from envstore.resolve.stamps import stamp

    out = {}
    for line, base in [*places, *found]:
        form = classify(line, base)
        path = form.target if form.kind == "path" else local_path(form.target)
        if form.kind != "name" and path is not None:
            found_stamp = stamp(form, by_ref=True)
            if found_stamp is not None:
                out[path] = built_key(path, found_stamp, interp)
    return out


def built_entry(store: Store, form: Form, interp: Interpreter) -> EntryKey | None:
    """The store entry the local project or archive ``form`` names was built into, if
    its stamp has not changed since and the entry is still there."""
    from envstore.resolve.stamps import stamp

    path = form.target if form.kind == "path" else local_path(form.target)
    found_stamp = stamp(form, by_ref=True) if path is not None else None
    if path is None or found_stamp is None:
        return None
    key = first_key(caches.resolution(store.db(), built_key(path, found_stamp, interp)))
    return key if key is not None and store.has_entry(key) else None


def first_key(items: Sequence[Mapping[str, object]] | None) -> EntryKey | None:
    """The entry key of a cached resolution's first item; None when there is none, or
    it is no entry key (the database is data from disk)."""
    try:
        return EntryKey.parse(str(items[0]["key"])) if items else None
    except (ValueError, KeyError, TypeError):
        return None


def from_cache(store: Store, cache_key: str) -> Resolved | None:
    """The cached answer to the request hashed to ``cache_key``, with when the index
    was asked for it (``resolved_at``); None if there is none or an entry is gone."""
    found = caches.timed_resolution(store.db(), cache_key)
    if found is None:
        return None
    items, created = found
    resolved = Resolved()
    resolved.from_cache = True
    resolved.resolved_at = created
    for item in items:
        key = _parsed(item["key"])
        if not store.has_entry(key):
            return None
        resolved.keys[key.name] = key
        if item["requested"]:
            resolved.requested.add(key.name)
    return resolved


# Keys parsed from the resolution cache, by their text (a key is a value: the same text
# is the same key): a warm process (tox, an IDE) reads the same ~20 on every sync, and
# each parse is a regex match, ~1.5 us.
_PARSED: dict[object, EntryKey] = {}


def _parsed(text: object) -> EntryKey:
    key = _PARSED.get(text) if isinstance(text, str) else None
    if key is None:
        key = EntryKey.parse(text)  # type: ignore[arg-type]  # a ValueError if not a str
        if len(_PARSED) >= 4096:  # bounded: a process syncing many different envs
            _PARSED.clear()
        _PARSED[text] = key
    return key


def remember(
    store: Store,
    resolved: Resolved,
    keys: dict[str, EntryKey],
    ingested: dict[Path, EntryKey] | None = None,
) -> None:
    """Cache ``resolved``'s outcome (``keys``, every entry chosen) under the key computed
    when it was resolved, with when the index was asked for it (``resolved_at``), and
    which store entry each ``ingested`` wheel file became."""
    from envstore.store.db import write

    items = [{"key": str(k), "requested": n in resolved.requested} for n, k in sorted(keys.items())]
    conn = store.db()
    with write(conn):
        for under in (resolved.cache_key, resolved.alias_key):
            if under is not None:
                caches.put_resolution(conn, under, items, resolved.resolved_at)
        for name, built in resolved.built.items():
            if name in keys:
                caches.put_resolution(conn, built, [{"key": str(keys[name]), "requested": True}])
        for wheel, key in (ingested or {}).items():
            path = os.path.abspath(wheel)
            ident = caches.file_identity(path)
            if ident is not None:
                caches.put_wheel_hash(conn, path, ident, key.hash)


def wheel_hash(store: Store, path: Path) -> str:
    """xxh3-128 of a wheel file (what its store entry would be keyed by), remembered
    per file identity: a warm create that misses the resolution cache hashes nothing."""
    from envstore.store.db import write
    from envstore.store.hashing import hash_file

    where = os.path.abspath(path)
    ident = caches.file_identity(where)
    known = caches.wheel_hash(store.db(), where, ident) if ident is not None else None
    if known is not None:
        return known
    digest = hash_file(path)
    if ident is not None:
        with write(store.db()) as conn:
            caches.put_wheel_hash(conn, where, ident, digest)
    return digest
