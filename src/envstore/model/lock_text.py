"""Reading a lock file's text: TOML (``tomllib``, or ``tomli`` before 3.11), and the
message for an envstore JSON lock of before PEP 751."""

from __future__ import annotations

import os
from typing import Any

from envstore.errors import LockError

__all__ = ["old_json_message", "toml_data"]


def toml_data(path: str | os.PathLike[str], raw: bytes) -> dict[str, Any]:
    from envstore.model.toml import loads

    try:
        return loads(raw.decode("utf-8"))
    except ValueError as exc:  # UnicodeDecodeError and TOMLDecodeError are ValueErrors
        raise LockError(f"{path} is not a pylock.toml (not valid TOML: {exc})") from None


def old_json_message(path: str | os.PathLike[str], raw: bytes) -> str:
    import json

    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if isinstance(data, dict) and "lock-version" in data:
        return (
            f"{path} is an envstore JSON lock, which envstore no longer reads: lock the env"
            " it was made from again ('envstore lock ENV' writes a PEP 751 pylock.toml)"
        )
    return f"{path} is JSON, not a pylock.toml (PEP 751)"
