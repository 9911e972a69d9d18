"""``envstore lock``, ``sync`` and ``export``: environments beyond this machine.

(Moving an env is ``mv`` plus ``envstore relink NEWPATH``, in envstore.cli.interp.)
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from envstore.cli.options import index_options, request_options
from envstore.cli.output import plural, warning

__all__ = ["export", "lock", "sync"]


def lock(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    import sys

    from envstore.env.lock import lock_env

    found = lock_env(args.env, store=args.store)
    requirements = args.format == "requirements"
    if args.output in (None, "-"):
        sys.stdout.write(found.pip_requirements() if requirements else found.dumps())
    else:
        found.save(args.output, pip_requirements=requirements)
        progress(f"locked {len(found.packages)} packages into {args.output}")
    return 0


def sync(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from envstore.env.lifecycle import sync_env

    manifest = sync_env(
        args.env,
        args.requirements,
        lock=args.lock,
        python=args.python,
        store=args.store,
        requirement_files=args.requirement_files,
        **index_options(args),
        **request_options(args),
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


def export(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from envstore.env.export import export_env

    result = export_env(args.env, args.dest, relocatable=args.relocatable, store=args.store)
    for note in result.notes:
        warning(note)
    if args.verbosity >= 0:
        kind = "relocatable venv" if args.relocatable else "venv"
        packages = plural(result.packages, "package")
        print(f"exported {args.env} to {result.dest} ({kind}, {packages})")
    return 0
