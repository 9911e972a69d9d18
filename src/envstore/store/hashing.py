"""The two hashes of a wheel: xxh3-128 (entry keys) and sha256 (locks)."""

from __future__ import annotations

from pathlib import Path

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from hashlib import sha256 as sha256
else:
    # CPython's own sha256 (the same digests) without hashlib, whose OpenSSL binding
    # costs ~2.5 ms to load: editable stamps are hashed on ``envstore sync``'s warm path.
    try:
        from _sha2 import sha256  # 3.12+
    except ImportError:
        try:
            from _sha256 import sha256  # 3.10, 3.11
        except ImportError:
            from hashlib import sha256

__all__ = ["hash_file", "sha256", "sha256_file"]


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
