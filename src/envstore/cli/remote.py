"""``envstore key generate`` and ``envstore push``: the remote cache (issue #26)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from envstore.cli.output import warning
from envstore.errors import EnvError

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    import argparse

__all__ = ["key_generate", "prune", "push"]


def key_generate(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from envstore.store.remote import generate_key

    public = generate_key(args.name, Path(args.secret_file), Path(args.public_file))
    print(public.line())
    return 0


def push(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from envstore.model.keys import EntryKey
    from envstore.model.manifest import Manifest
    from envstore.model.sources import public_url
    from envstore.store import index
    from envstore.store.layout import Store
    from envstore.store.remote import push as push_keys
    from envstore.store.remote import remote_from_env

    url = remote_from_env(args.remote)
    if url is None:
        raise EnvError("no remote: give --remote URL or set ENVSTORE_REMOTE")
    if bool(args.envs) == bool(args.all):
        raise EnvError("give the environments to push, or --all (not both)")
    manifests = [Manifest.load(Path(env)) for env in args.envs]
    # The store named, else the first env's (a store is never created here).
    store = Store(args.store or (manifests[0].store if manifests else None))
    store.check_layout()
    keys: set[EntryKey] = {p.key for m in manifests for p in m.packages}
    if args.all:
        keys = {EntryKey.parse(k) for k in index.entry_keys(store.db(create=False))}
    with store.gc_lock(shared=True):  # no entry is deleted while it is packed
        report = push_keys(store, url, sorted(keys))
    for why in report.skipped:
        warning(f"not pushed: {why}")
    print(
        f"pushed {len(report.pushed)} of {len(keys)} entries to {public_url(url)}"
        f" ({len(report.present)} there already)"
    )
    return 1 if report.skipped else 0


def prune(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from envstore.model.sources import public_url
    from envstore.store.remote import prune as prune_remote
    from envstore.store.remote import remote_from_env

    url = remote_from_env(args.remote)
    if url is None:
        raise EnvError("no remote: give --remote URL or set ENVSTORE_REMOTE")
    plan = prune_remote(url, args.older_than, dry_run=args.dry_run)
    if args.dry_run:
        for name in [*plan.metas, *plan.archives, *plan.leftovers]:
            print(f"would delete {name}")
    gone = len(plan.metas) + len(plan.archives) + len(plan.leftovers)
    print(
        f"{'would delete' if args.dry_run else 'deleted'} {gone} objects"
        f" ({len(plan.metas)} entries) from {public_url(url)}; kept {plan.kept}"
    )
    return 0
