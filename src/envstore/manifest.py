"""``envstore.manifest``, a public import path: the manifest record of an env.

The code lives in ``envstore.model.manifest``; this module re-exports it.
"""

from __future__ import annotations

from envstore.model.manifest import (
    MANIFEST_NAME,
    MANIFEST_VERSION,
    Manifest,
    Package,
    Sources,
    public_requirement,
    public_url,
)

__all__ = [
    "MANIFEST_NAME",
    "MANIFEST_VERSION",
    "Manifest",
    "Package",
    "Sources",
    "public_requirement",
    "public_url",
]
