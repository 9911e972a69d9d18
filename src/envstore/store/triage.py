"""What ``verify`` found, sorted into damage and what ``repair`` can fix."""

from __future__ import annotations

import os
from collections.abc import Iterable

from envstore.store.verify import Finding

__all__ = ["damage", "repairable"]


def damage(found: Iterable[Finding]) -> list[Finding]:
    """The problems among ``found`` that are damage: a note (a foreign cache file, an
    entry sealed now) is worth saying but fails nothing."""
    return [p for p in found if not p.note]


def repairable(found: Iterable[Finding]) -> list[str]:
    """What ``repair`` can fix among ``found``, as it takes them: each damaged entry
    (its key) and view (``view/<key>``) once, sorted.

    A problem of an environment (its subject is the env's absolute path) is not the
    store's to repair: the env is relinked or made again.
    """
    return sorted({p.subject for p in damage(found) if not os.path.isabs(p.subject)})
