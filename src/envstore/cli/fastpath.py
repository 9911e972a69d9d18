"""``envstore create`` and ``envstore sync`` parsed without argparse, for their plain
forms.

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

__all__ = ["parse_create", "parse_plain", "parse_sync"]

# option -> (attribute, kind): "append", "value" and "duration" (converted as
# argparse's type=max_age does) take the next argument, "true" stores True. The
# create parser's options (envstore.cli.arguments).
_CREATE: dict[str, tuple[str, object]] = {
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

# The sync parser's: create's but --clear, --prompt and --without-pip (sync's is one of
# a pair, "const"), and the project options. "const" stores its value, True or False.
_SYNC: dict[str, tuple[str, object]] = {
    **{k: v for k, v in _CREATE.items() if k not in ("--clear", "--prompt", "--without-pip")},
    "--project": ("project", "value"),
    "--all-groups": ("all_groups", "true"),
    "--no-dev": ("no_dev", "true"),
    "--locked": ("locked", "true"),
    "--no-install-project": ("no_install_project", "true"),
    "--no-editable": ("no_editable", "true"),
    "--with-pip": ("with_pip", True),
    "--without-pip": ("with_pip", False),
}
_DEFAULTS: dict[str, object] = {
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
    "lock": None,
    "remote": None,
    "push": False,
}
_CREATE_DEFAULTS = {**_DEFAULTS, "without_pip": False, "clear": False, "prompt": None}
_SYNC_DEFAULTS = {
    **_DEFAULTS,
    "project": None,
    "all_groups": False,
    "no_dev": False,
    "locked": False,
    "no_install_project": False,
    "no_editable": False,
    "with_pip": None,
}


def parse_plain(argv: Sequence[str]) -> argparse.Namespace | None:
    """A plain ``create`` or ``sync`` line parsed (see ``parse_create``), else None."""
    return parse_create(argv) or parse_sync(argv)


def parse_sync(argv: Sequence[str]) -> argparse.Namespace | None:
    """``argv`` parsed as argparse parses an ``envstore sync`` command line, or None
    when it is not one of the plain forms. ENV is optional (a project's sync names
    none), so a line whose first positional follows an option is left to argparse,
    whose optional positional takes its default there."""
    return _parse(argv, "sync", _SYNC, _SYNC_DEFAULTS)


def parse_create(argv: Sequence[str]) -> argparse.Namespace | None:
    """``argv`` parsed as argparse parses an ``envstore create`` command line, or None
    when it is not one of the plain forms (then argparse must parse it)."""
    return _parse(argv, "create", _CREATE, _CREATE_DEFAULTS)


def _parse(
    argv: Sequence[str],
    command: str,
    options: dict[str, tuple[str, object]],
    defaults: dict[str, object],
) -> argparse.Namespace | None:
    from types import SimpleNamespace

    args = list(argv)
    store: str | None = None
    verbosity = 0
    i = 0
    # Global options before the command: argparse allows one of -v/-q there.
    while i < len(args) and args[i] != command:
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
    values = {k: list(v) if isinstance(v, list) else v for k, v in defaults.items()}
    positionals: list[str] = []
    consts: set[object] = set()
    seen_option = False
    rest = iter(args[i + 1 :])
    for arg in rest:
        if not arg.startswith("-"):
            if command == "sync" and seen_option and not positionals:
                return None
            positionals.append(arg)
            continue
        seen_option = True
        if arg in ("-v", "-q"):  # also after the command (last one wins)
            verbosity = _VERBOSITY[arg]
            continue
        if arg == "--store":
            found = next(rest, None)
            if found is None or found.startswith("-"):
                return None
            store = found
            continue
        option = options.get(arg)
        if option is None:
            return None
        name, kind = option
        if kind == "true":
            values[name] = True
            continue
        if isinstance(kind, bool):  # --with-pip / --without-pip: one of the pair only
            consts.add(kind)
            if len(consts) > 1:
                return None
            values[name] = kind
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
    if not positionals and command == "create":
        return None
    # A SimpleNamespace (argparse.Namespace would import argparse): the same attributes.
    parsed: argparse.Namespace = SimpleNamespace(  # type: ignore[assignment]
        store=store,
        verbosity=verbosity,
        command=command,
        env=positionals[0] if positionals else None,
        requirements=positionals[1:],
        **values,
    )
    return parsed
