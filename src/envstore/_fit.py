"""Whether a package can run on an interpreter, from its metadata alone.

Two things decide it without running anything: a wheel's tags (checked where
entries are chosen) and its ``Requires-Python``, read here from the entry's
METADATA. pip gets one more rule: releases before 23.2 use
``pkgutil.ImpImporter``, which Python 3.12 removed, though their metadata says
nothing of it (a relink from 3.9-3.11 to 3.12+ would keep a pip that fails).
"""

from __future__ import annotations

from envstore._interpreters import Interpreter
from envstore._store import EntryKey, Store

__all__ = ["misfit", "requires_python"]

# The first pip release that runs on each Python minor (where older ones do not).
_PIP_MINIMUM = {(3, 12): (23, 2)}


def _release(version: str) -> tuple[int, ...]:
    out = []
    for part in version.split("."):
        digits = "".join(c for c in part if c.isdigit()) if part[:1].isdigit() else ""
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


def requires_python(store: Store, key: EntryKey) -> str | None:
    """The ``Requires-Python`` of the entry's distribution, or None."""
    try:
        dist_info = str(store.entry_meta(key)["dist_info"])
        path = store.entry_path(key) / "site" / dist_info / "METADATA"
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    break  # the headers end at the first blank line
                name, _, value = line.partition(":")
                if name.strip().lower() == "requires-python":
                    return value.strip() or None
    except (OSError, KeyError, ValueError):
        return None
    except Exception:  # an unreadable entry: verify's business, not this check's
        return None
    return None


def misfit(store: Store, name: str, key: EntryKey, interp: Interpreter) -> str | None:
    """Why the package ``name`` at ``key`` cannot run on ``interp``, or None."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    spec = requires_python(store, key)
    if spec:
        try:
            # The release as pip compares it (sys.version_info[:3]): a dev build's
            # version reads "3.12.1+", which no specifier admits.
            version = ".".join(str(n) for n in _release(interp.version)[:3])
            if not SpecifierSet(spec).contains(version, prereleases=True):
                return f"it requires Python {spec}"
        except InvalidSpecifier:
            pass
    if name == "pip":
        minor = _release(interp.version)[:2]
        need = max((v for m, v in _PIP_MINIMUM.items() if m <= minor), default=None)
        if need is not None and _release(key.version)[:2] < need:
            return f"pip {key.version} cannot run on Python {interp.minor} (it needs pip >= 23.2)"
    return None
