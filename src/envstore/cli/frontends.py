"""``envstore run`` and ``build``: throwaway environments."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from envstore.cli.options import freshness_options, index_options

__all__ = ["build", "run"]


def run(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from envstore.errors import EnvError
    from envstore.frontends.run import run_in_env

    argv = list(args.argv)
    if argv[:1] != ["--"] and argv[:1] and argv[0].endswith(".py"):
        # A script given before any "--": PEP 723 (what "-- CMD" never means).
        from envstore.frontends.script import run_script

        return run_script(
            argv[0],
            argv[1:],
            args.with_,
            python=args.python,
            store=args.store,
            requirement_files=args.requirement_files,
            **index_options(args),
            progress=progress,
        )
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise EnvError(
            "no command given: envstore run [--with REQ ...] -- CMD [ARGS...]"
            " (or envstore run SCRIPT.py [ARGS...])"
        )
    return run_in_env(
        argv,
        args.with_,
        python=args.python,
        store=args.store,
        requirement_files=args.requirement_files,
        **index_options(args),
        **freshness_options(args),
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


def build(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
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
        **freshness_options(args),
        config_settings=_config_settings(args.config_settings) or None,
        runner=runner,
        progress=progress,
    )
    if args.verbosity >= 0:
        for path in built:
            print(f"built {path}")
    return 0
