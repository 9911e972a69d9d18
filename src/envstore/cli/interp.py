"""CLI commands added by this module (registered by envstore.cli.main): ``doctor`` and ``relink``.

Only argparse is imported here; each command imports what it uses when it runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from envstore.cli.options import add_index_options, index_options

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from envstore.cli.main import _Subcommands

__all__ = ["add_commands"]


def _store_option(args: argparse.Namespace) -> list[str]:
    return ["--store", args.store] if args.store else []


def _cmd_doctor(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    import json
    import shlex

    from envstore.env.doctor import diagnose, diagnose_all
    from envstore.errors import EnvError
    from envstore.store.layout import Store

    if not args.envs and not args.all:
        raise EnvError("doctor: name the environments to check, or use --all")
    diagnoses = [diagnose(env, store=args.store) for env in args.envs]
    if args.all:
        gc = shlex.join(["envstore", *_store_option(args), "gc"])
        named = {d.env for d in diagnoses}
        diagnoses += [d for d in diagnose_all(Store(args.store), gc) if d.env not in named]
    if args.json:
        print(json.dumps([d.to_json() for d in diagnoses], indent=1))
    else:
        for d in diagnoses:
            where = f"Python {d.python.version}, {d.python.path}" if d.python else ""
            print(f"{d.env}: {d.status}" + (f" ({where})" if where else ""))
            for p in d.problems:
                print(f"  [{p.severity}] {p.message}")
                if p.fix:
                    print(f"    fix: {p.fix}")
                if p.detail:
                    print(f"    ({p.detail})")
        if args.all and not diagnoses:
            print("no environments are registered in the store")
    return 1 if any(d.status == "broken" for d in diagnoses) else 0


def _cmd_relink(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from envstore.env.relink import relink_env
    from envstore.errors import EnvError, EnvstoreError

    if not args.envs and not args.all:
        raise EnvError("relink: name the environments to relink, or use --all")
    envs = list(args.envs)
    if args.all:
        import os

        from envstore.env.doctor import registered_envs
        from envstore.model.manifest import MANIFEST_NAME
        from envstore.store.layout import Store

        for env in registered_envs(Store(args.store)):
            if env not in envs and os.path.exists(os.path.join(env, MANIFEST_NAME)):
                envs.append(env)
    failed = 0
    for env in envs:
        try:
            result = relink_env(
                env,
                python=args.python,
                store=args.store,
                **index_options(args),
                progress=progress,
            )
        except EnvstoreError as exc:
            if len(envs) == 1:
                raise
            print(f"envstore: error: {env}: {exc}", file=__import__("sys").stderr)
            failed += 1
            continue
        if args.verbosity < 0:
            continue
        old, new = result.old, result.new
        if result.kind == "unchanged":
            print(f"{result.env}: fine as it is (Python {new.version}, {new.path})")
            continue
        stored = (
            f", {len(result.from_store)} taken from the store ({', '.join(result.from_store)})"
            if result.from_store
            else ""
        )
        what = (
            "same ABI, links only"
            if result.kind == "same-abi" and not result.rebuilt and not result.from_store
            else f"{result.reused} packages reused{stored}, {len(result.rebuilt)} rebuilt"
            + (f" ({', '.join(result.rebuilt)})" if result.rebuilt else "")
        )
        print(
            f"{result.env}: Python {old.version} ({old.path}) -> {new.version} ({new.path});"
            f" {what}; {result.seconds * 1000:.0f} ms"
        )
        for note in result.notes:
            print(f"  note: {note}")
    return 1 if failed else 0


def add_commands(sub: _Subcommands) -> None:
    """Register this module's subcommands; each sets ``func(args, progress) -> int``."""
    p = sub.add_parser(
        "doctor",
        help="diagnose environments (base interpreter, store entries, shadowed packages)",
        description="Check environments and print, for each problem, the command that fixes"
        " it. Exits non-zero when an environment is broken.",
    )
    p.add_argument("envs", metavar="ENV", nargs="*", help="environment directories")
    p.add_argument("--all", action="store_true", help="every environment registered in the store")
    p.add_argument("--json", action="store_true", help="print the diagnoses as JSON")
    p.set_defaults(func=_cmd_doctor)

    p = sub.add_parser(
        "relink",
        help="repair environments after their base Python was upgraded, moved or removed",
        description="Point environments at a working interpreter. With the same ABI available"
        " only links, pyvenv.cfg and the manifest are rewritten; for another minor version pure"
        " packages are reused and ABI-tagged ones re-resolved at the same versions; a package"
        " whose version cannot run there (Requires-Python, or pip < 23.2 on 3.12+) takes the"
        " newest version the env's requirements allow. Without -f, --index-url or --no-index,"
        " it looks where the env's wheels came from (recorded when it was made). If some"
        " package has no usable wheel, nothing is changed.",
    )
    p.add_argument("envs", metavar="ENV", nargs="*", help="environment directories")
    p.add_argument("--all", action="store_true", help="every environment registered in the store")
    p.add_argument(
        "-p",
        "--python",
        metavar="PYTHON",
        help="the interpreter to use: a version, a command name or a path (default: the"
        " recorded one if it still works, else one with the same ABI)",
    )
    add_index_options(p)
    p.set_defaults(func=_cmd_relink)
