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
    from pathlib import Path

    from envstore.model.manifest import Manifest

    manifest = Manifest.load(Path(args.env))
    if args.json:
        print(manifest.dumps(), end="")
        return 0
    py = manifest.python
    print(f"env:     {manifest.env}")
    print(f"python:  {py.version} ({py.path}; requested {py.requested or 'default'})")
    print(f"abi:     {py.soabi}")
    print(f"store:   {manifest.store}")
    print("packages:")
    for p in manifest.packages:
        mark = "" if p.requested else "  (dependency)"
        print(f"  {p.name}=={p.version}{mark}")
    for e in manifest.editables:
        extras = f"[{','.join(e.extras)}]" if e.extras else ""
        print(f"  {e.name}=={e.version}  (editable: {e.path}{extras})")
    return 0


def list_(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    import json

    from envstore.cli.store import store_or_note
    from envstore.store.inventory import list_envs

    envs = list_envs(store_or_note(args))
    if args.json:
        print(json.dumps([e.to_json() for e in envs], indent=1))
        return 0
    for e in envs:
        print(f"{e.path}  python {e.python or '?'}  {plural(e.packages, 'package')}  {e.status}")
    return 0
