"""``envstore lock``, ``sync`` and ``export``: environments beyond this machine.

(Moving an env is ``mv`` plus ``envstore relink NEWPATH``, in envstore.cli.interp.)
"""

from __future__ import annotations

from collections.abc import Callable

from envstore.cli.options import freshness_options, index_options, request_options
from envstore.cli.output import outcome, plural, warning

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    import argparse

    from envstore.env.pipstate import SiteDist
    from envstore.model.manifest import Manifest

__all__ = ["export", "lock", "sync"]


def lock(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    import sys
    from pathlib import Path

    from envstore.env.lock import lock_env

    requirements = args.format == "requirements"
    output = args.output or (None if requirements else "pylock.toml")
    if output not in (None, "-") and not requirements:
        from packaging.pylock import is_valid_pylock_path

        if not is_valid_pylock_path(Path(output)):
            from envstore.errors import LockError

            raise LockError(
                f"{output}: PEP 751 names a lock pylock.toml or pylock.NAME.toml (installers"
                " recognize it by that name); pass such a -o"
            )
    if args.env is None:
        return _lock_new(args, progress, output, requirements)
    _refuse_project_options(args)
    found = lock_env(args.env, store=args.store, find_links=args.find_links)
    if output in (None, "-"):
        sys.stdout.write(found.pip_requirements() if requirements else found.dumps())
    else:
        found.save(output, pip_requirements=requirements)
        progress(f"locked {len(found.packages)} packages into {output}")
    return 0


def _refuse_project_options(args: argparse.Namespace) -> None:
    """``lock ENV`` reads the env's manifest and the store: the options that choose a
    project, a Python or where to resolve from would be silently ignored."""
    ignored = {
        "--project": args.project,
        "--requirement": args.requirement_files,
        "--python": args.python,
        "--index-url": args.index_url,
        "--extra-index-url": args.extra_index_urls,
        "--no-index": args.no_index,
        "--offline": args.offline,
        "--remote": args.remote,
        "--push": args.push,
    }
    given = [flag for flag, value in ignored.items() if value]
    if given:
        from envstore.errors import LockError

        raise LockError(
            f"lock ENV: {', '.join(given)} only apply to a project's lock (no ENV): the lock"
            " of an env is read from its manifest and the store; drop them (-f DIR names"
            " where its wheels are)"
        )


def _lock_new(
    args: argparse.Namespace, progress: Callable[[str], None], output: str | None, pip: bool
) -> int:
    """A lock resolved here: of ``-r`` files, else of the project."""
    import sys

    pythons = args.python or [None]
    if args.requirement_files:
        from envstore.env.lock_requirements import lock_requirements

        if args.project:
            from envstore.errors import LockError

            raise LockError("lock: -r FILE locks those requirements; drop --project, or -r")
        found = lock_requirements(
            requirement_files=args.requirement_files,
            pythons=pythons,
            store=args.store,
            **index_options(args),
            progress=progress,
        )
    else:
        from envstore.env.lock_project import lock_project

        found = lock_project(
            args.project,
            pythons=pythons,
            store=args.store,
            **index_options(args),
            progress=progress,
        )
    if output in (None, "-"):
        sys.stdout.write(found.pip_requirements() if pip else found.dumps())
        return 0
    # The default is the project's own (where 'envstore sync' in it looks).
    target = str(args.output or found.source or output)
    found.save(target, pip_requirements=pip)
    progress(f"locked {len(found.packages)} packages into {target}")
    return 0


def sync(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    nothing = not (args.requirements or args.requirement_files or args.lock or args.editables)
    # In a project: no ENV, or --project naming it. ENV alone with nothing to sync it to
    # stays the mistake it was (the env is not emptied, nor filled from the cwd's project).
    if nothing and (args.env is None or args.project is not None):
        return _sync_project(args, progress)
    if args.env is None:
        from envstore.errors import EnvError

        raise EnvError("give the environment to sync (ENV) before its requirements")
    from envstore.env.lifecycle import sync_env

    before = _site_state(args.env)
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
        editables=args.editables,
        extras=args.extras,
        all_extras=args.all_extras,
        groups=args.groups,
        progress=progress,
    )
    if args.verbosity >= 0:
        for line in _dropped(before, manifest):
            print(f" - {line}")
        print(
            f"synced {manifest.env} (Python {manifest.python.version},"
            f" {plural(len(manifest.packages), 'package')}{outcome(manifest)})"
        )
    return 0


def _site_state(env: str) -> list[SiteDist]:
    """What pip or uv installed into the env at ``env`` (a sync drops all of it)."""
    import os
    from pathlib import Path

    from envstore.env.pipstate import foreign_dists
    from envstore.errors import BadManifestError
    from envstore.model.manifest import Manifest

    path = Path(os.path.abspath(env))
    try:
        return foreign_dists(path, Manifest.load(path))
    except BadManifestError:
        return []


def _dropped(before: list[SiteDist], manifest: Manifest) -> list[str]:
    """A line for each package pip or uv had installed, which the synced env no longer
    has in its site-packages (it may hold the same version from the store)."""
    now = {(p.name, p.version) for p in manifest.packages}
    return [
        d.describe() + ("; now from the store" if (d.name, d.version) in now else "")
        for d in before
    ]


def _sync_project(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from envstore.env.project import sync_project

    done = sync_project(
        args.project,
        args.env,
        groups=args.groups,
        all_groups=args.all_groups,
        no_dev=args.no_dev,
        locked=args.locked,
        extras=args.extras,
        all_extras=args.all_extras,
        install_project=not args.no_install_project,
        editable=not args.no_editable,
        python=args.python,
        store=args.store,
        **index_options(args),
        **freshness_options(args),
        upgrade=args.upgrade,
        with_pip=args.with_pip,
        progress=progress,
    )
    if args.verbosity >= 0:
        m = done.manifest
        for line in done.removed:
            print(f" - {line}")
        for line in done.added:
            print(f" + {line}")
        editable = "".join(f", {e.name} editable" for e in m.editables)
        print(
            f"synced {m.env} (Python {m.python.version},"
            f" {plural(len(m.packages), 'package')}{outcome(m)}{editable})"
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
