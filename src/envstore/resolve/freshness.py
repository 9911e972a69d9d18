"""How current a new env must be: when a resolution may be answered without the index.

With an index in play, a request whose requirements are not all pinned to one exact
version is resolved against the index (by pip) unless the same request was resolved
there within the last ``max_age`` seconds; within that window the cached resolution
answers, without pip. Exactly pinned requests (``==X.Y.Z`` for every package chosen,
or a requirements file with ``--hash`` on every line), locks and ``--offline`` never
need the index when the store holds what they name. With ``--no-index`` and only local
``--find-links`` directories there is no index: the directories decide, as ever.

The default window, 10 minutes, is what uv keeps an index page for (the lifetime the
main index's ``Cache-Control`` allows): a new env is as current as pip or uv would
make it, up to that. ``max_age`` of ``inf`` is the old store-first behaviour (every
cached or stored answer is good); 0 resolves now (``--refresh``).

The window is measured from the ``created`` time of the request's row in the
resolution cache, which is written when pip resolves it (a row written from the store
alone says 0: the index was never asked).
"""

from __future__ import annotations

import os

from envstore.errors import ResolutionError
from envstore.model.sources import PackageSources

__all__ = [
    "DEFAULT_MAX_AGE",
    "ENV_VAR",
    "age_text",
    "effective_max_age",
    "exact_pin",
    "index_in_play",
    "parse_duration",
]

DEFAULT_MAX_AGE = 600.0
ENV_VAR = "ENVSTORE_MAX_AGE"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, *, infinite: bool = False) -> float | None:
    """``90``, ``90s``, ``10m``, ``2h``, ``1d`` (and ``inf`` when ``infinite``) ->
    seconds; None if ``text`` is not one."""
    if infinite and text.strip().lower() in ("inf", "infinity", "never"):
        return float("inf")
    number, unit = (text[:-1], _UNITS[text[-1]]) if text and text[-1] in _UNITS else (text, 1)
    try:
        seconds = float(number) * unit
    except ValueError:
        return None
    if not 0 <= seconds < float("inf"):  # also nan
        return None
    return seconds


def effective_max_age(max_age: float | None) -> float:
    """``max_age`` if given, else ``$ENVSTORE_MAX_AGE``, else :data:`DEFAULT_MAX_AGE`."""
    if max_age is not None:
        if not max_age >= 0:  # also nan
            raise ResolutionError(f"max_age must be 0 or more seconds, not {max_age!r}")
        return float(max_age)
    text = os.environ.get(ENV_VAR, "")
    if not text:
        return DEFAULT_MAX_AGE
    found = parse_duration(text, infinite=True)
    if found is None:
        raise ResolutionError(
            f"${ENV_VAR} is not a duration: {text!r} (e.g. 0, 30s, 10m, 2h, inf); fix or unset it"
        )
    return found


def index_in_play(sources: PackageSources) -> bool:
    """Whether pip would look at an index (or a remote ``--find-links`` page) whose
    contents may change: not offline, and not ``--no-index`` with local directories only."""
    if sources.offline:
        return False
    return not sources.no_index or bool(sources.remote_links())


def why_no_index(sources: PackageSources) -> str:
    """Why a request with ``sources`` never consults an index (see index_in_play)."""
    if sources.offline:
        return "--offline"
    return "--no-index: the --find-links directories decide" if sources.find_links else "--no-index"


def exact_pin(specifier: object) -> bool:
    """Whether a packaging SpecifierSet admits one version only (``==1.2.3``, no
    wildcard, or ``===``)."""
    for spec in specifier:  # type: ignore[attr-defined]
        if spec.operator == "===" or (spec.operator == "==" and not spec.version.endswith("*")):
            return True
    return False


def age_text(seconds: float) -> str:
    """``42s``, ``12m``, ``3h``, ``2d``, ``inf`` (a duration as ``--max-age`` takes it)."""
    if seconds == float("inf"):
        return "inf"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def hash_pinned(requirements: tuple[str, ...], files: tuple[str, ...]) -> bool:
    """Whether the request is requirement files (no other requirements) whose every
    line pins one version with ``--hash``: pip then requires every package, dependencies
    too, to be pinned so, and what it chose once it chooses always."""
    from envstore.resolve.lines import logical_lines

    if requirements or not files:
        return False
    for f in files:
        try:
            with open(f, encoding="utf-8") as fh:
                lines = logical_lines(fh.read())
        except (OSError, UnicodeDecodeError):
            return False
        for line in lines:
            head, _, rest = line.partition(" --")
            if line.startswith("-") or "hash" not in rest or "==" not in head or "*" in head:
                return False
    return True
