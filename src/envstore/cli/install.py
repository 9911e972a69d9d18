"""``envstore install`` and ``uninstall``: change an existing environment's packages."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from envstore.cli.options import index_options, request_options
from envstore.cli.output import plural, warning

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from envstore.env.change import EnvChange

__all__ = ["install", "uninstall"]


def install(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from envstore.env.install import install_packages

    done = install_packages(
        args.env,
        args.requirements,
        requirement_files=args.requirement_files,
        editables=args.editables,
        upgrade=args.upgrade,
        store=args.store,
        **index_options(args),
        **request_options(args),
        progress=progress,
    )
    _report(args, done, "installed into")
    return 0


def uninstall(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from envstore.env.uninstall import uninstall_packages

    done = uninstall_packages(args.env, args.names, store=args.store, progress=progress)
    _report(args, done, "uninstalled from")
    return 0


def _report(args: argparse.Namespace, done: EnvChange, what: str) -> None:
    for line in done.warnings:
        warning(line)
    if args.verbosity < 0:
        return
    for line in done.removed:
        print(f" - {line}")
    for line in done.added:
        print(f" + {line}")
    m = done.manifest
    editable = "".join(f", {e.name} editable" for e in m.editables)
    print(f"{what} {m.env} ({plural(len(m.packages), 'package')}{editable})")
