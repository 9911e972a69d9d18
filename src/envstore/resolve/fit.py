"""Whether a package can run on an interpreter, from its metadata alone.

Two things decide it without running anything: a wheel's tags (checked where
entries are chosen) and its ``Requires-Python``, read here from the entry's
METADATA. pip gets one more rule: releases before 23.2 use
``pkgutil.ImpImporter``, which Python 3.12 removed, though their metadata says
nothing of it (a relink from 3.9-3.11 to 3.12+ would keep a pip that fails).
"""

from __future__ import annotations

from envstore.errors import StoreError
from envstore.model.interpreter import Interpreter
from envstore.model.keys import EntryKey
from envstore.store.layout import Store

__all__ = ["misfit", "requires_python", "unmet", "wanted"]

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from packaging.specifiers import SpecifierSet

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
        dist_info = store.entry_record(key).dist_info
        path = store.entry_dir(key) / "site" / dist_info / "METADATA"
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line.strip():
                    break  # the headers end at the first blank line
                name, _, value = line.partition(":")
                if name.strip().lower() == "requires-python":
                    return value.strip() or None
    except (OSError, KeyError, StoreError):  # an unreadable entry: verify's business
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


def requirement_lines(requirements: list[str]) -> list[str]:
    """The requirement strings of an env's recorded requirements, ``-r FILE`` and ``-c
    FILE`` read (one level; options and comments skipped)."""
    lines: list[str] = []
    args = iter(requirements)
    for arg in args:
        if arg in ("-r", "-c", "--requirement", "--constraint"):
            path = next(args, "")
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except OSError:
                continue
            for line in text.splitlines():
                line = line.split(" #", 1)[0].strip()
                if line and not line.startswith(("#", "-")):
                    lines.append(line)
        elif not arg.startswith("-"):
            lines.append(arg)
    return lines


def wanted(
    store: Store, requirements: list[str], packages: dict[str, EntryKey], name: str,
    interp: Interpreter,
) -> SpecifierSet:  # fmt: skip
    """What every other package of the env and the user's own requirements (files
    included) ask of ``name``, for ``interp``: the versions a replacement may have."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.specifiers import SpecifierSet
    from packaging.utils import canonicalize_name

    spec = SpecifierSet()
    texts = list(requirement_lines(requirements))
    for other, key in packages.items():
        if other != name:
            try:
                texts += store.entry_record(key).requires
            except Exception:  # an unreadable entry asks nothing
                continue
    env = dict(interp.markers, extra="")
    for text in texts:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        if canonicalize_name(req.name) == name and (req.marker is None or req.marker.evaluate(env)):
            spec &= req.specifier
    return spec


def unmet(
    store: Store, key: EntryKey, packages: dict[str, EntryKey], interp: Interpreter
) -> str | None:
    """A requirement of the entry ``key`` that the env's other packages do not meet."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    env = dict(interp.markers, extra="")
    for text in store.entry_record(key).requires:
        try:
            req = Requirement(str(text))
        except InvalidRequirement:
            continue
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        have = packages.get(canonicalize_name(req.name))
        if have is None:
            return f"it needs {req}, which the env does not have"
        if not req.specifier.contains(have.version, prereleases=True):
            return f"it needs {req}, and the env has {req.name} {have.version}"
    return None
