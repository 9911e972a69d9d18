"""CLI commands for throwaway environments: ``envstore run`` and ``envstore build``.

Registered by envstore.cli.main on every start, so only argparse is imported at
module level; each command imports its library module when it runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from envstore.cli.options import add_index_options, index_options

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from envstore.cli.main import _Subcommands

__all__ = ["add_commands"]


def _add_source_options(p: argparse.ArgumentParser) -> None:
    """``-p`` and the options ``create`` passes on to pip."""
    p.add_argument(
        "-p",
        "--python",
        metavar="PYTHON",
        help="interpreter: a version (3.12), a command name or a path"
        " (default: the Python running envstore)",
    )
    add_index_options(p)


def _cmd_run(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from envstore.errors import EnvError
    from envstore.frontends.run import run_in_env

    argv = list(args.argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise EnvError("no command given: envstore run [--with REQ ...] -- CMD [ARGS...]")
    return run_in_env(
        argv,
        args.with_,
        python=args.python,
        store=args.store,
        requirement_files=args.requirement_files,
        **index_options(args),
        progress=progress,
    )


def _config_settings(items: list[str]) -> dict[str, str | list[str]]:
    settings: dict[str, str | list[str]] = {}
    for item in items:
        key, _, value = item.partition("=")
        old = settings.get(key)
        if old is None:
            settings[key] = value
        elif isinstance(old, list):
            old.append(value)
        else:
            settings[key] = [old, value]
    return settings


def _cmd_build(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from envstore.frontends.build import build_project, require_build

    require_build()
    runner = None
    if args.verbosity >= 0:
        import pyproject_hooks

        runner = pyproject_hooks.default_subprocess_runner  # backend output shows, like build
    built = build_project(
        args.srcdir,
        args.outdir,
        args.distributions or (),
        python=args.python,
        store=args.store,
        **index_options(args),
        config_settings=_config_settings(args.config_settings) or None,
        runner=runner,
        progress=progress,
    )
    if args.verbosity >= 0:
        for path in built:
            print(f"built {path}")
    return 0


def add_commands(sub: _Subcommands) -> None:
    """Register ``run`` and ``build``; each sets ``func(args, progress) -> int``."""
    p = sub.add_parser(
        "run",
        help="run a command in a throwaway environment",
        description="Create a throwaway environment holding the --with requirements (served"
        " from the store, fetched like 'create' when missing), run CMD in it with the"
        " environment activated (PATH, VIRTUAL_ENV), delete it, and exit with CMD's exit"
        " code. Put -- before CMD when CMD has options of its own.",
    )
    p.add_argument(
        "--with",
        dest="with_",
        metavar="REQ",
        action="append",
        default=[],
        help="a requirement to put in the environment (repeatable)",
    )
    p.add_argument(
        "-r",
        "--requirement",
        dest="requirement_files",
        metavar="FILE",
        action="append",
        default=[],
        help="install from a requirements file",
    )
    _add_source_options(p)
    p.add_argument("argv", metavar="CMD [ARGS...]", nargs=argparse.REMAINDER)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser(
        "build",
        help="build an sdist and a wheel, with envstore build environments",
        description="Build SRCDIR as 'python -m build' does (PEP 517 via pypa/build; needs"
        " the 'build' extra): each distribution in a throwaway environment holding"
        " build-system.requires and what the backend asks for, served from the store."
        " By default an sdist, then a wheel built from that sdist.",
    )
    p.add_argument("srcdir", metavar="SRCDIR", nargs="?", default=".", help="(default: .)")
    p.add_argument(
        "--sdist",
        "-s",
        dest="distributions",
        action="append_const",
        const="sdist",
        help="build an sdist",
    )
    p.add_argument(
        "--wheel",
        "-w",
        dest="distributions",
        action="append_const",
        const="wheel",
        help="build a wheel (from SRCDIR, also with --sdist)",
    )
    p.add_argument(
        "-o", "--outdir", metavar="OUTDIR", help="where the artifacts go (default: SRCDIR/dist)"
    )
    p.add_argument(
        "-C",
        "--config-setting",
        dest="config_settings",
        metavar="KEY[=VALUE]",
        action="append",
        default=[],
        help="a setting passed to the backend (repeatable)",
    )
    _add_source_options(p)
    p.set_defaults(func=_cmd_build)
