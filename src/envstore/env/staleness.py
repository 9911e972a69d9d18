"""What a relink must do: which interpreter an env should use now, and which of
its packages cannot run there as they are.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from envstore.errors import InterpreterError
from envstore.model.interpreter import Interpreter
from envstore.model.keys import PURE, EntryKey
from envstore.model.manifest import Manifest
from envstore.python.interpreters import (
    FactsCache,
    find_interpreter,
    find_same_abi,
    recorded_interpreter,
    recorded_request,
)
from envstore.python.links import pinned
from envstore.resolve.rewheel import (
    VERSION_CHANGE,
    fits,
)
from envstore.store.layout import Store


@dataclass(frozen=True)
class Choice:
    """The interpreter a relink would use, and why (``interp`` None: nothing usable)."""

    interp: Interpreter | None
    why: str


def choose_interpreter(
    manifest: Manifest, cache: FactsCache | None, python: str | None = None
) -> Choice:
    """The interpreter to relink ``manifest``'s env to.

    ``python`` wins. Otherwise, in order: the recorded path if it still has the
    env's ABI; what the env was created with (``-p``) if it now names an
    interpreter of that ABI; any interpreter of that ABI on this machine; what
    ``-p`` names now, if it is another ABI (``python3`` moved to 3.12).
    """
    old = manifest.python
    if python:
        return Choice(find_interpreter(python, cache), f"--python {python}")
    try:
        current = recorded_interpreter(old.path, old.requested, cache)
    except InterpreterError:
        current = None
    if current is not None and current.soabi == old.soabi:
        pin = pinned(current)  # an env recorded before plain python3 links were pinned
        if pin.path != current.path:
            return Choice(pin, f"pins {old.path} to {pin.path}, the same file by its minor")
        return Choice(current, f"the recorded {old.path} still has the ABI {old.soabi}")
    asked = old.requested or "the default Python"
    try:
        again: Interpreter | None = recorded_request(old.requested, cache)
    except InterpreterError:
        again = None
    if again is not None and again.soabi == old.soabi:
        return Choice(again, f"{asked} now names {again.path}, with the same ABI")
    same = find_same_abi(old.soabi, cache)
    if same is not None:
        return Choice(
            same.replace(requested=old.requested),
            f"{same.path} has the same ABI ({old.soabi})",
        )
    if again is not None:
        return Choice(
            again,
            f"no Python with the ABI {old.soabi} is left; {asked} now names"
            f" Python {again.version} ({again.path})",
        )
    return Choice(None, f"no Python {old.minor} with the ABI {old.soabi} was found")


def stale_packages(
    store: Store, manifest: Manifest, new: Interpreter, accepted: set[str] | None = None
) -> dict[str, str]:
    """The packages of ``manifest`` that ``new`` cannot use as they are -> why. A reason
    that starts with ``VERSION_CHANGE`` means no wheel of the same version can run there."""
    from envstore.resolve.fit import misfit

    stale: dict[str, str] = {}
    for p in manifest.packages:
        meta = store.entry_record_or_none(p.key)
        if meta is None:
            stale[p.name] = "its store entry is missing"
        elif p.key.abi != PURE and p.key.abi != new.soabi:
            stale[p.name] = f"it is built for {p.key.abi}"
        elif accepted is not None and not fits(meta.tags, accepted):
            stale[p.name] = f"its wheel tags do not fit Python {new.version}"
        else:
            why = misfit(store, p.name, p.key, new)
            if why is not None:
                stale[p.name] = f"{VERSION_CHANGE}{why}"
    return stale


def dependency_notes(
    final: Path, store: Store, keys: dict[str, EntryKey], old: Interpreter, new: Interpreter
) -> list[str]:
    """Dependencies that become required on ``new`` (markers) and are not in the env."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    notes = []
    for name, key in sorted(keys.items()):
        record = store.entry_record_or_none(key)
        for text in record.requires if record else []:
            try:
                req = Requirement(str(text))
            except InvalidRequirement:
                continue
            if req.marker is None or canonicalize_name(req.name) in keys:
                continue
            if req.marker.evaluate(dict(new.markers, extra="")) and not req.marker.evaluate(
                dict(old.markers, extra="")
            ):
                install = shlex.join(
                    [str(final / "bin" / "python"), "-m", "pip", "install", str(req)]
                )
                notes.append(
                    f"{name} needs {req} on Python {new.minor}, which this env does not have;"
                    f" install it: {install}"
                )
    return notes


def abi_tags_of(site: Path) -> list[tuple[str, str, set[str]]]:
    """(name, version, ABI tags of its wheel) of each distribution pip installed into
    ``site`` (an env's own site-packages)."""
    found = []
    for info in sorted(site.glob("*.dist-info")):
        try:
            text = (info / "WHEEL").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        tags = [ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("Tag:")]
        abis = {t.split("-")[1] for t in tags if t.count("-") == 2}
        name, _, version = info.name[: -len(".dist-info")].partition("-")
        found.append((name, version, abis))
    return found


def foreign_abi_dists(site: Path, new: Interpreter) -> list[str]:
    """Distributions pip installed into site-packages for another Python's ABI (as
    doctor's pip-installed-abi judges them: abi3 runs on any)."""
    return [
        f"{n} {v}"
        for n, v, abis in abi_tags_of(site)
        if abis and not abis & {new.abi_tag, "abi3", "none"}
    ]
