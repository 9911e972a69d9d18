"""``envstore gc``, ``store``, ``verify`` and ``rebuild-db``: the store as a whole."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

from envstore.cli.output import note, plural, size, warning
from envstore.errors import StoreError
from envstore.store.layout import Store

__all__ = ["gc", "rebuild_db", "store_or_note", "usage", "verify"]


def store_or_note(args: argparse.Namespace) -> Store:
    """The store named by ``args``; a read of one that does not exist says so (a
    mistyped --store would otherwise look like an empty store)."""
    store = Store(args.store)
    if not store.exists() and args.verbosity >= 0:
        note(f"there is no store at {store.root} yet")
    return store


def gc(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    import time

    from envstore.store.gc import collect

    plan = collect(store_or_note(args), grace=args.grace, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for problem in plan.problems:
        warning(str(problem))
    for leftover in plan.skipped:
        warning(f"could not remove {leftover}")
    if args.verbosity >= 0:
        for env in plan.dead_envs:
            print(f"{verb} registration of {env} (gone)")
        for env, since in plan.gone_envs:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(since))
            print(
                f"kept {env} (gone since {when}): what it uses stays for the grace period;"
                " if it was moved, run 'envstore relink' at its new place"
            )
        for host, env, seen in plan.other_hosts:  # a shared store: which host holds what
            when = time.strftime("%Y-%m-%d", time.localtime(seen))
            print(f"kept {env} on host {host} (last seen by it {when})")
        for host, env in plan.dropped_hosts:
            print(f"{verb} registration of {env} on host {host} (not seen for too long)")
        for item in plan.delete:
            print(f"{verb} {item.kind} {item.name} ({size(item.size)})")
        freed = "would free" if args.dry_run else "freed"
        print(f"{freed} {size(plan.bytes)} ({len(plan.delete)} items)")
    return 1 if plan.problems else 0


def usage(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    """``envstore store``."""
    from envstore.store.inventory import store_usage

    store = store_or_note(args)
    found = store_usage(store)
    if args.json:
        print(json.dumps({"store": str(store.root), **found.to_json()}, indent=1))
        return 0
    print(f"store:        {store.root}")
    print(f"entries:      {found.entries} ({found.unreferenced} unreferenced)")
    print(f"views:        {found.views}")
    print(f"wheels:       {found.wheels} (kept to repair or rebuild entries)")
    print(f"environments: {found.envs}")
    print(f"on disk:      {size(found.bytes)}")
    print(f"saved:        {size(found.saved)} (vs. every env holding its own copies)")
    for layer, keys in sorted(found.upstream.items()):
        where = f"upstream {layer}" if layer else "missing (in no store now)"
        print(f"{where}: {len(keys)} {'entry' if len(keys) == 1 else 'entries'} used by envs")
        if args.verbosity > 0:
            for key in keys:
                print(f"  {key}")
    return 0


def verify(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from envstore.store.repair import repair
    from envstore.store.triage import damage, repairable
    from envstore.store.verify import verify as verify_store

    store = Store(args.store)
    if not store.exists():
        raise StoreError(f"there is no store at {store.root} (pass --store DIR?)")
    found = verify_store(store, check_contents=args.check_contents or args.repair)
    for problem in found:
        print(problem)
    problems = damage(found)
    if args.repair and problems:
        for key in repair(store, repairable(problems)):
            print(f"repaired {key}")
        problems = damage(verify_store(store, check_contents=True))
        for problem in problems:
            print(f"still: {problem}")
    if args.verbosity >= 0:
        print(f"{plural(len(problems), 'problem')} found" if problems else "no problems found")
    return 1 if problems else 0


def rebuild_db(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from envstore.store.rebuild import rebuild_db as rebuild

    counts = rebuild(Store(args.store))
    if args.verbosity >= 0:
        print(
            f"rebuilt the database: {counts['entries']} entries, {counts['views']} views,"
            f" {counts['envs']} environments ({counts['unreadable']} unreadable manifests)"
        )
    return 0
