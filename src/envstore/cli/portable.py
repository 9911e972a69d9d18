"""CLI commands for portable environments: lock, sync, export, move.

Registered by envstore.cli.main on every start, so only argparse is imported at
module level; each command imports its library module when it runs.
(Moving an env is ``mv`` plus ``envstore relink NEWPATH``, in _cmd_interp.)
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from envstore.cli.options import add_index_options, index_options, plural

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from envstore.cli.main import _Subcommands

__all__ = ["add_commands"]


def _cmd_lock(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    import sys
    from pathlib import Path

    from envstore.env.lock import lock_env

    lock = lock_env(args.env, store=args.store)
    text = lock.pip_requirements() if args.format == "requirements" else lock.dumps()
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        out = Path(args.output)
        tmp = out.parent / f".{out.name}.tmp"
        tmp.write_text(text)
        tmp.replace(out)
        progress(f"locked {len(lock.packages)} packages into {out}")
    return 0


def _cmd_sync(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from envstore.env.lifecycle import sync_env

    manifest = sync_env(
        args.env,
        args.requirements,
        lock=args.lock,
        python=args.python,
        store=args.store,
        requirement_files=args.requirement_files,
        **index_options(args),
        upgrade=args.upgrade,
        with_pip=args.with_pip,
        progress=progress,
    )
    if args.verbosity >= 0:
        print(
            f"synced {manifest.env} (Python {manifest.python.version},"
            f" {plural(len(manifest.packages), 'package')})"
        )
    return 0


def _cmd_export(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    import sys

    from envstore.env.export import export_env

    result = export_env(args.env, args.dest, relocatable=args.relocatable, store=args.store)
    for note in result.notes:
        print(f"envstore: warning: {note}", file=sys.stderr)
    if args.verbosity >= 0:
        kind = "relocatable venv" if args.relocatable else "venv"
        packages = plural(result.packages, "package")
        print(f"exported {args.env} to {result.dest} ({kind}, {packages})")
    return 0


def add_commands(sub: _Subcommands) -> None:
    """Register this module's subcommands on the CLI's subparsers."""
    p = sub.add_parser(
        "lock",
        help="write the exact wheels (with sha256) of an environment",
        description="Write a lock of ENV: every package's version, wheel file name and sha256"
        " (as pip's --require-hashes checks it) and the interpreter's version, ABI and"
        " platform. Reads only the manifest and the store; the env's Python is not started.",
    )
    p.add_argument("env", metavar="ENV")
    p.add_argument("-o", "--output", metavar="FILE", help="write the lock here (default: stdout)")
    p.add_argument(
        "--format",
        choices=["json", "requirements"],
        default="json",
        help="json (what sync --from reads; default) or a pip requirements file with hashes",
    )
    p.set_defaults(func=_cmd_lock)

    p = sub.add_parser(
        "sync",
        help="bring an environment to exactly a set of requirements or a lock (creates it)",
        description="Make ENV hold exactly the given requirements, or exactly the wheels of"
        " a lock (--from LOCK: nothing is resolved, every wheel's sha256 is checked before"
        " anything is installed). ENV is created when it does not exist; an existing env keeps"
        " its Python, store, prompt and pip unless told otherwise. The new env is built beside"
        " the old one and swapped in at once; on any failure the old env is left as it was.",
    )
    p.add_argument("env", metavar="ENV", help="the environment (created if missing)")
    p.add_argument("requirements", metavar="REQ", nargs="*", help="requirement specifiers")
    p.add_argument(
        "-r",
        "--requirement",
        dest="requirement_files",
        metavar="FILE",
        action="append",
        default=[],
        help="install from a requirements file",
    )
    p.add_argument(
        "--from",
        dest="lock",
        metavar="LOCK",
        help="a lock written by 'envstore lock': exactly its wheels, found in --find-links"
        " directories, the store or the index",
    )
    p.add_argument(
        "-p",
        "--python",
        metavar="PYTHON",
        help="interpreter (default: the env's own; for a new env from a lock, a Python of"
        " the lock's version)",
    )
    add_index_options(p)
    p.add_argument(
        "-U",
        "--upgrade",
        action="store_true",
        help="resolve with pip even when the store could satisfy the requirements",
    )
    pip = p.add_mutually_exclusive_group()
    pip.add_argument(
        "--with-pip",
        dest="with_pip",
        action="store_const",
        const=True,
        default=None,
        help="put pip in the env (default: as before; yes for a new env)",
    )
    pip.add_argument("--without-pip", dest="with_pip", action="store_const", const=False)
    p.set_defaults(func=_cmd_sync)

    p = sub.add_parser(
        "export",
        help="copy an environment into an ordinary, self-contained venv",
        description="Write ENV as an ordinary venv at DEST with real copies of every package"
        " (no store references; for machines without envstore, e.g. a container image)."
        " bin/python links to the same base interpreter path.",
    )
    p.add_argument("env", metavar="ENV")
    p.add_argument("dest", metavar="DEST", help="a new (or empty) directory")
    p.add_argument(
        "--relocatable",
        action="store_true",
        help="scripts and activation find the env relative to themselves, so DEST can be moved",
    )
    p.set_defaults(func=_cmd_export)
