"""``envstore create`` parsed without argparse, for its plain forms.

A warm create is the hot path, and argparse is a tenth of it: importing argparse
(with gettext and locale), building the create parser and parsing take ~5 ms of
a ~50 ms create. This parser takes the forms a script or a frontend writes —
each option spelled out in full or by its short flag, its value as the next
argument — and returns exactly what argparse would (``tests/test_fastpath.py``
holds the two to that). Anything else (help, ``--opt=value``, joined short
flags, an abbreviation, an unknown or misplaced option, a missing ENV) returns
None, and ``envstore.cli.parser`` parses it as always, errors and all.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

__all__ = ["parse_create"]

# option -> (attribute, kind): "append", "value" and "duration" (converted as
# argparse's type=max_age does) take the next argument, "true" stores True. The
# create parser's options (envstore.cli.arguments).
_CREATE = {
    "-r": ("requirement_files", "append"),
    "--requirement": ("requirement_files", "append"),
    "-e": ("editables", "append"),
    "--editable": ("editables", "append"),
    "--extra": ("extras", "append"),
    "--all-extras": ("all_extras", "true"),
    "--group": ("groups", "append"),
    "-p": ("python", "value"),
    "--python": ("python", "value"),
    "-f": ("find_links", "append"),
    "--find-links": ("find_links", "append"),
    "-i": ("index_url", "value"),
    "--index-url": ("index_url", "value"),
    "--extra-index-url": ("extra_index_urls", "append"),
    "-c": ("constraints", "append"),
    "--constraint": ("constraints", "append"),
    "--pre": ("pre", "true"),
    "--max-age": ("max_age", "duration"),
    "--refresh": ("refresh", "true"),
    "--no-index": ("no_index", "true"),
    "--offline": ("offline", "true"),
    "-U": ("upgrade", "true"),
    "--upgrade": ("upgrade", "true"),
    "--without-pip": ("without_pip", "true"),
    "--clear": ("clear", "true"),
    "--prompt": ("prompt", "value"),
    "--from": ("lock", "value"),
    "--remote": ("remote", "value"),
    "--push": ("push", "true"),
}
_VERBOSITY = {"-v": 1, "--verbose": 1, "-q": -1, "--quiet": -1}


def parse_create(argv: Sequence[str]) -> argparse.Namespace | None:
    """``argv`` parsed as argparse parses an ``envstore create`` command line, or None
    when it is not one of the plain forms (then argparse must parse it)."""
    from types import SimpleNamespace

    args = list(argv)
    store: str | None = None
    verbosity = 0
    i = 0
    # Global options before the command: argparse allows one of -v/-q there.
    while i < len(args) and args[i] != "create":
        arg = args[i]
        if arg == "--store" and i + 1 < len(args) and not args[i + 1].startswith("-"):
            store = args[i + 1]
            i += 2
        elif arg in _VERBOSITY and verbosity == 0:
            verbosity = _VERBOSITY[arg]
            i += 1
        else:
            return None
    if i == len(args):
        return None
    values: dict[str, object] = {
        "requirement_files": [],
        "editables": [],
        "extras": [],
        "all_extras": False,
        "groups": [],
        "python": None,
        "find_links": [],
        "index_url": None,
        "extra_index_urls": [],
        "constraints": [],
        "pre": False,
        "max_age": None,
        "refresh": False,
        "no_index": False,
        "offline": False,
        "upgrade": False,
        "without_pip": False,
        "clear": False,
        "prompt": None,
        "lock": None,
        "remote": None,
        "push": False,
    }
    positionals: list[str] = []
    rest = iter(args[i + 1 :])
    for arg in rest:
        if not arg.startswith("-"):
            positionals.append(arg)
            continue
        if arg in ("-v", "-q"):  # also after the command (last one wins)
            verbosity = _VERBOSITY[arg]
            continue
        if arg == "--store":
            found = next(rest, None)
            if found is None or found.startswith("-"):
                return None
            store = found
            continue
        option = _CREATE.get(arg)
        if option is None:
            return None
        name, kind = option
        if kind == "true":
            values[name] = True
            continue
        found = next(rest, None)
        if found is None or found.startswith("-"):
            return None
        if kind == "append":
            values[name] = [*values[name], found]  # type: ignore[misc]
        elif kind == "duration":
            from envstore.resolve.freshness import parse_duration

            seconds = parse_duration(found, infinite=True)
            if seconds is None:
                return None  # argparse says what is wrong with it
            values[name] = seconds
        else:
            values[name] = found
    if not positionals:
        return None
    # A SimpleNamespace (argparse.Namespace would import argparse): the same attributes.
    parsed: argparse.Namespace = SimpleNamespace(  # type: ignore[assignment]
        store=store,
        verbosity=verbosity,
        command="create",
        env=positionals[0],
        requirements=positionals[1:],
        **values,
    )
    return parsed
