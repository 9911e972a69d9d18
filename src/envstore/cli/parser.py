"""The parser of the ``envstore`` command, built for the one command being run.

argparse spends ~1 ms per subcommand (a help formatter per option, gettext
lookups), and ``envstore create`` is a hot path: ``build`` makes only the parser
of the command named on the command line, and every parser only when unsure
(help, a typo, an abbreviated option). What each command takes is declared in
``envstore.cli.arguments``; which function runs it is ``envstore.cli.main``'s.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from envstore._version import __version__
from envstore.cli.arguments import add_commands

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from typing import Any

__all__ = ["HelpFormatter", "Subcommands", "build", "command_of", "parse"]

# Commands whose trailing positionals are requirements, which may follow options
# (create ENV --no-index -f DIR pkg): argparse's subparsers leave those over.
_TAKE_REQUIREMENTS = ("create", "sync", "install")


class HelpFormatter(argparse.HelpFormatter):
    """argparse's, sized without ``shutil`` (which pulls in bz2 and lzma, ~3 ms):
    argparse makes a formatter for every option it adds, not only to print help."""

    def __init__(self, prog: str) -> None:
        try:
            width = int(os.environ.get("COLUMNS", 0))
        except ValueError:
            width = 0
        if width <= 0:  # as shutil.get_terminal_size: the terminal's, else 80
            try:
                width = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
            except (AttributeError, ValueError, OSError):
                width = 0
        super().__init__(prog, width=(width if width > 0 else 80) - 2)


class Skipped:
    """Stands in for the parser of a command that is not being run: accepts and drops
    every call (``add_argument``, ``set_defaults``, nested subcommands...)."""

    def __getattr__(self, name: str) -> Callable[..., Skipped]:
        return lambda *args, **kwargs: self


class Subcommands:
    """argparse's subparsers, with our help formatter and the global options; given
    ``only``, the parser of that one command is built and the others are skipped."""

    def __init__(
        self,
        sub: argparse._SubParsersAction[argparse.ArgumentParser],
        only: str | None,
        common: argparse.ArgumentParser | None = None,
    ) -> None:
        self._sub = sub
        self._only = only
        self.found = False
        self.common = common or _common_options()

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        if self._only is None or name == self._only:
            self.found = True
            return self._sub.add_parser(
                name, formatter_class=HelpFormatter, parents=[self.common], **kwargs
            )
        return Skipped()

    def nested(self, parser: Any, dest: str) -> Subcommands | Skipped:
        """The subcommands of ``parser``, a command with commands of its own
        (``python list``): each is built when ``parser`` is."""
        if isinstance(parser, Skipped):
            return parser
        sub = parser.add_subparsers(dest=dest, metavar="COMMAND", required=True)
        return Subcommands(sub, None, self.common)


def _common_options() -> argparse.ArgumentParser:
    """The global options, also taken after the command (envstore create ENV --store
    DIR), as uv and pip take theirs; unset there unless given."""
    # Our formatter: argparse's default one would size itself with shutil.
    common = argparse.ArgumentParser(add_help=False, formatter_class=HelpFormatter)
    common.add_argument(
        "--store", metavar="DIR", default=argparse.SUPPRESS, help="the store directory"
    )
    for flag, value in (("-v", 1), ("-q", -1)):  # a group's usage trips on hidden help
        common.add_argument(
            flag,
            dest="verbosity",
            action="store_const",
            const=value,
            default=argparse.SUPPRESS,
            help=argparse.SUPPRESS,
        )
    return common


def command_of(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` runs, when only global options precede it; None when
    unsure (help, an abbreviated or unknown option), which builds every parser."""
    args = iter(argv)
    for arg in args:
        if arg == "--store":
            next(args, None)
        elif arg in ("-v", "--verbose", "-q", "--quiet") or arg.startswith("--store="):
            continue
        else:
            return None if arg.startswith("-") else arg
    return None


def build(command: str | None = None) -> argparse.ArgumentParser:
    """The CLI parser; given ``command``, only that subcommand's parser is built
    (for an unknown name, every one, so argparse's error lists them)."""
    parser = argparse.ArgumentParser(
        prog="envstore",
        formatter_class=HelpFormatter,
        description="Cheap, durable, clean Python environments: every wheel is unpacked once"
        " into a shared store, and environments are thin venvs pointing into it.",
    )
    parser.add_argument(
        "--store",
        metavar="DIR",
        default=None,
        help="the store directory (default: $ENVSTORE_HOME, else $XDG_DATA_HOME/envstore,"
        " else ~/.local/share/envstore); read-only stores under it: $ENVSTORE_UPSTREAM"
        " (absolute paths, ':'-separated)",
    )
    parser.add_argument(
        "--version", action="version", version=f"envstore {__version__}", help="print the version"
    )
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument(
        "-v",
        "--verbose",
        dest="verbosity",
        action="store_const",
        const=1,
        default=0,
        help="report progress even when not on a terminal",
    )
    verbosity.add_argument(
        "-q",
        "--quiet",
        dest="verbosity",
        action="store_const",
        const=-1,
        help="print nothing but errors",
    )
    # prog given: argparse would format a usage line to find it
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, prog="envstore")
    commands = Subcommands(sub, command)
    add_commands(commands)
    if not commands.found:
        return build(None)
    return parser


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """``argv`` parsed; exits with argparse's usage error (status 2) when it is wrong.

    ``command`` names the command run, ``subcommand`` a nested one (``python list``).
    """
    parser = build(command_of(argv))
    args, extra = parser.parse_known_args(argv)
    # Requirements may follow options, which the subparsers leave over; anything
    # else left over is an error.
    unknown = [a for a in extra if a.startswith("-")]
    if extra and (unknown or args.command not in _TAKE_REQUIREMENTS):
        # Reported by the command's parser, with its usage (argparse's subparsers
        # leave these to the top-level one, whose usage says nothing of the command's).
        ran = _parser_run(parser, args)
        ran.error(f"unrecognized arguments: {' '.join(unknown or extra)}")
    if extra:
        args.requirements = [*args.requirements, *extra]
    return args


def _parser_run(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> argparse.ArgumentParser:
    """The parser of the (nested) command ``args`` names: ``parser``'s, followed down
    through each subcommand chosen."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = action.choices.get(getattr(args, action.dest, None) or "")
            if chosen is not None:
                return _parser_run(chosen, args)
    return parser
