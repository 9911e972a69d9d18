"""TOML text as data: the standard ``tomllib`` from Python 3.11, ``tomli`` (a
dependency on 3.10) before it. The one place that knows which."""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["loads"]


def loads(text: str) -> dict[str, Any]:
    """Parse ``text``; a ``ValueError`` (``TOMLDecodeError`` is one) if it is not TOML."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:
        import tomli as tomllib
    data: dict[str, Any] = tomllib.loads(text)
    return data
