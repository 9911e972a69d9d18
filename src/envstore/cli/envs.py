"""``envstore create``, ``remove``, ``show`` and ``list``.

Each command is ``(args, progress) -> exit code``; it calls the library and prints
what came back. ``create`` is the hot path: only what it needs is imported here,
the rest when a command runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from envstore.cli.options import index_options, request_options
from envstore.cli.output import outcome, plural

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    import argparse

__all__ = ["create", "list_", "remove", "show"]


def create(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from envstore.env.lifecycle import create_env

    manifest = create_env(
        args.env,
        args.requirements,
        python=args.python,
        store=args.store,
        requirement_files=args.requirement_files,
        **index_options(args),
        **request_options(args),
        upgrade=args.upgrade,
        with_pip=not args.without_pip,
        clear=args.clear,
        prompt=args.prompt,
        lock=args.lock,
        editables=args.editables,
        extras=args.extras,
        all_extras=args.all_extras,
        groups=args.groups,
        progress=progress,
    )
    if args.verbosity >= 0:
        print(
            f"created {manifest.env} (Python {manifest.python.version},"
            f" {plural(len(manifest.packages), 'package')}{outcome(manifest)})"
        )
    return 0


def remove(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from envstore.env.remove import remove_env

    for env in args.envs:
        remove_env(env, store=args.store)
        progress(f"removed {os.path.abspath(env)}")
    return 0


def show(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    import json
    from pathlib import Path

    from envstore.env.pipstate import foreign_dists
    from envstore.model.manifest import Manifest

    env = Path(os.path.abspath(args.env))
    manifest = Manifest.load(env)
    installed = foreign_dists(env, manifest)
    if args.json:
        data = json.loads(manifest.dumps())
        data["site-packages"] = [d.to_json() for d in installed]
        print(json.dumps(data, indent=1))
        return 0
    py = manifest.python
    print(f"env:     {manifest.env}")
    print(f"python:  {py.version} ({py.path}; requested {py.requested or 'default'})")
    print(f"abi:     {py.soabi}")
    print(f"store:   {manifest.store}")
    print("packages:")
    shadowed = {d.name for d in installed}
    for p in manifest.packages:
        mark = "" if p.requested else "  (dependency)"
        if p.name in shadowed:
            mark += "  (shadowed by site-packages)"
        print(f"  {p.name}=={p.version}{mark}")
    for e in manifest.editables:
        extras = f"[{','.join(e.extras)}]" if e.extras else ""
        print(f"  {e.name}=={e.version}  (editable: {e.path}{extras})")
    if installed:
        print("installed into site-packages, not from the store:")
        for d in installed:
            editable = f", editable: {d.editable}" if d.editable else ""
            print(f"  {d.name}=={d.version}  (by {d.by}{editable})")
    return 0


def list_(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    import json

    from envstore.cli.store import store_or_note
    from envstore.store.inventory import list_envs

    envs = list_envs(store_or_note(args))
    installed = {e.path: _site_packages(e.path) for e in envs}
    if args.json:
        print(
            json.dumps(
                [{**e.to_json(), "site-packages": installed[e.path]} for e in envs], indent=1
            )
        )
        return 0
    for e in envs:
        extra = installed[e.path]
        more = f" (+{len(extra)} pip/uv)" if extra else ""
        print(
            f"{e.path}  python {e.python or '?'}  {plural(e.packages, 'package')}{more}  {e.status}"
        )
    return 0


def _site_packages(env: str) -> list[dict[str, object]]:
    """What pip or uv installed into the env's site-packages ([] if it has no manifest)."""
    from pathlib import Path

    from envstore.env.pipstate import foreign_dists
    from envstore.errors import BadManifestError
    from envstore.model.manifest import Manifest

    try:
        manifest = Manifest.load(Path(env))
    except BadManifestError:
        return []
    return [d.to_json() for d in foreign_dists(Path(env), manifest)]
