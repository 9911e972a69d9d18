"""Looking entries up by what their records say (a wheel's sha256, for locks)."""

from __future__ import annotations

from pathlib import Path

from envstore.model.keys import EntryKey
from envstore.store.layout import Store


def entry_sha256(store: Store, key: EntryKey) -> tuple[str, str] | str:
    """``(sha256, wheel file name)`` of the wheel ``key`` was made from, or why not.

    Read from ``entry.json``; an entry ingested before envstore recorded it is
    hashed from its kept wheel (``origin`` or ``<store>/wheels/``), which must
    still be the same file (its xxh3 is the entry's key).
    """
    record = store.entry_record_or_none(key)
    if record is None:
        return f"its store entry {key} is missing"
    wheel = record.wheel
    if record.sha256 is not None:
        return record.sha256, wheel
    from envstore.store.hashing import hash_file, sha256_file

    places = [Path(record.origin)] if record.origin else []
    places.append(store.wheels_dir / wheel)
    for place in places:
        if place.is_file() and hash_file(place) == key.hash:
            return sha256_file(place), wheel
    return (
        f"its entry {key} predates sha256 in entry.json and its wheel {wheel} is no longer"
        " at its origin or in the store's wheels/"
    )
