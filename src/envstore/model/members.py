"""The names a wheel's members may have: the rule ingest (``store.wheel``) and the
editable install (``env.editable``) both hold them to. No packaging: the editable
install runs on ``envstore sync``'s warm path."""

from __future__ import annotations

import re

__all__ = ["MAX_DEPTH", "MAX_NAME_BYTES", "bad_member_name", "plain_member"]

# A member's path below its entry: the store's path comes on top, and every tree walk
# (verify, gc, views) must stay far from PATH_MAX (4096) and Python's recursion limit.
MAX_NAME_BYTES = 1024
MAX_DEPTH = 64


def bad_member_name(name: str) -> str | None:
    """Why ``name`` may not be a wheel member's path, or None when it may."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return f"member name {name!r} contains a NUL or control character"
    if "\\" in name:
        return f"member name {name!r} contains a backslash"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return f"member {name!r} has an absolute path"
    parts = name.rstrip("/").split("/")
    if any(p in ("..", ".") for p in parts) or "" in parts:
        return f"member {name!r} escapes or is not a normal relative path"
    if len(name.encode()) > MAX_NAME_BYTES or len(parts) > MAX_DEPTH:
        return (
            f"member {name[:60]!r}... is {len(name.encode())} bytes, {len(parts)} levels deep"
            f" (at most {MAX_NAME_BYTES} bytes and {MAX_DEPTH} levels are unpacked)"
        )
    if any(len(p.encode()) > 255 for p in parts):
        return f"member {name[:60]!r}... has a name over 255 bytes, more than a file system holds"
    return None


def plain_member(name: object) -> str | None:
    """``name`` if it is a sound path of a file that goes to site-packages as it is
    (not under ``.data/``, not a directory), else None."""
    if not isinstance(name, str) or name.endswith("/") or bad_member_name(name):
        return None
    top = name.split("/", 1)[0]
    return None if top.endswith(".data") else name
