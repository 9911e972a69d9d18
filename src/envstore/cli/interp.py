"""``envstore doctor`` and ``relink``: environments and their base interpreter."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from envstore.cli.options import index_options
from envstore.cli.output import error
from envstore.errors import EnvError

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from envstore.env.relink import RelinkResult

__all__ = ["doctor", "relink"]


def doctor(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    import json
    import shlex

    from envstore.env.batch import diagnose_envs

    if not args.envs and not args.all:
        raise EnvError("doctor: name the environments to check, or use --all")
    # The fix for a registered env gone, as the user would type it here.
    gc = shlex.join(["envstore", *(["--store", args.store] if args.store else []), "gc"])
    diagnoses = diagnose_envs(args.envs, every=args.all, store=args.store, gc_command=gc)
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


def relink(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from functools import partial

    from envstore.env.batch import each, relink_targets
    from envstore.env.relink import RelinkResult, relink_env

    if not args.envs and not args.all:
        raise EnvError("relink: name the environments to relink, or use --all")
    envs = relink_targets(args.envs, every=args.all, store=args.store)
    one = partial(
        relink_env,
        python=args.python,
        store=args.store,
        **index_options(args),
        progress=progress,
        for_this_host=args.for_this_host,
    )
    failed = 0
    for env, result in each(envs, one):
        if not isinstance(result, RelinkResult):
            error(f"{env}: {result}")
            failed += 1
        elif args.verbosity >= 0:
            _print_relinked(result)
    return 1 if failed else 0


def _print_relinked(result: RelinkResult) -> None:
    old, new = result.old, result.new
    if result.kind == "unchanged":
        print(f"{result.env}: fine as it is (Python {new.version}, {new.path})")
        return
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
