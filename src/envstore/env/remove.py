"""``remove_env``: delete an env and release its store references."""

from __future__ import annotations

import os
from pathlib import Path

from envstore._crash import crash_point
from envstore.env.make import is_envstore_env
from envstore.errors import (
    BadManifestError,
    EnvError,
)
from envstore.model.manifest import Manifest
from envstore.store.fs import rmtree, temp_tag
from envstore.store.layout import Store
from envstore.store.locks import env_lock
from envstore.store.registry import registered, unregister_env


def _check_may_remove(final: Path) -> None:
    """Refuse, before deleting anything, an env this user cannot delete whole: another
    user's, or one in a directory they may not write."""
    me = os.geteuid()
    if me == 0:
        return
    from envstore.errors import user_name

    env, parent = os.lstat(final), os.stat(final.parent)
    if env.st_uid != me:
        who = user_name(env.st_uid)
        raise EnvError(f"cannot remove {final}: it belongs to {who}; only {who} can remove it")
    # Its owner may unlink it from a sticky directory (/tmp) it can write.
    if not os.access(final.parent, os.W_OK | os.X_OK):
        who = user_name(parent.st_uid)
        raise EnvError(
            f"cannot remove {final}: you may not write its directory {final.parent}"
            f" (it belongs to {who})"
        )


def remove_env(
    path: str | os.PathLike[str], *, store: Store | str | os.PathLike[str] | None = None
) -> None:
    """Delete an envstore environment and release its references (of an env already
    deleted, with ``rm -rf``: only release them, without waiting for gc's grace period)."""
    final = Path(os.path.abspath(path))
    if not is_envstore_env(final):
        if not os.path.lexists(final):
            st = store if isinstance(store, Store) else Store(store)
            if registered(st, final):
                # A create of this path registers it, then renames it into place, under
                # the shared gc lock: wait for one in flight, then look again.
                with st.gc_lock(shared=False):
                    if not os.path.lexists(final):
                        unregister_env(st, final)
                        return
                remove_env(final, store=store)  # it was made meanwhile: remove it
                return
            hint = "" if store else " (if it was registered in another store, pass --store)"
            raise EnvError(f"{final} does not exist, and {st.root} has no env there{hint}")
        what = "no pyvenv.cfg written by envstore" if final.is_dir() else "not a directory"
        raise EnvError(f"{final} is not an envstore environment ({what}); nothing was removed")
    try:
        manifest = Manifest.load(final)
    except BadManifestError as exc:
        raise EnvError(
            f"{exc}; not removing {final}: remove it with rm -r if it is yours, then run"
            " 'envstore gc'"
        ) from None
    _check_may_remove(final)
    st = store if isinstance(store, Store) else Store(store or manifest.store)
    # Under the env's lock: a relink, or the swap of create --clear or sync, finishes
    # first (or, coming later, finds the env gone), so none re-registers a removed env.
    with env_lock(final):
        # Env first: once it is gone its root dangles and gc would drop it anyway;
        # the other order could leave a live env whose entries gc may collect. Renamed
        # aside first: a waiter for its lock must not make a new lock file in it.
        aside = final.parent / f".{final.name}.envstore-tmp-{temp_tag()}"
        os.rename(final, aside)
        rmtree(aside)
        crash_point("remove-deleted")
        unregister_env(st, final)
