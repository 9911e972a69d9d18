"""A package's row of the manifest's text (``Manifest.dumps``), as ``json.dumps`` of
its ``to_json()`` writes it, kept per process: a warm process (tox, an IDE) writes
the same rows on every sync, ~2 us each.
"""

from __future__ import annotations

import functools
from json.encoder import encode_basestring_ascii as _enc  # json.dumps(str), no set-up

__all__ = ["package_row"]


@functools.lru_cache(maxsize=4096)
def package_row(name: str, version: str, hash: str, key: str, wheel: str, requested: bool) -> str:
    """The row of the package ``name`` (``hash``: its key's hash, ``key``: its text)."""
    return (
        f'  {{"name": {_enc(name)}, "version": {_enc(version)}, "hash": '
        f'{_enc(f"xxh3_128:{hash}")}, "key": {_enc(key)}, "wheel": {_enc(wheel)}, '
        f'"requested": {"true" if requested else "false"}}}'
    )
