"""The two hashes of a wheel: xxh3-128 (entry keys) and sha256 (locks)."""

from __future__ import annotations

from pathlib import Path


def hash_file(path: Path) -> str:
    """xxh3-128 of a file, 32 hex digits."""
    import xxhash

    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return str(h.hexdigest())


def sha256_file(path: Path) -> str:
    """sha256 of a file, 64 hex digits: what pip's ``--hash=sha256:`` and locks name."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
