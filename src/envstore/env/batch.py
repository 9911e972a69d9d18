"""Commands over several environments: which envs ``--all`` means, and going on past
one env's failure."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence

from envstore.env.doctor import Diagnosis, diagnose, diagnose_all
from envstore.errors import EnvstoreError
from envstore.model.manifest import MANIFEST_NAME
from envstore.store.layout import Store
from envstore.store.registry import registered_envs

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from typing import TypeVar

    T = TypeVar("T")

__all__ = ["diagnose_envs", "each", "relink_targets"]


def relink_targets(
    envs: Sequence[str],
    *,
    every: bool = False,
    store: Store | str | os.PathLike[str] | None = None,
) -> list[str]:
    """The envs a relink of ``envs`` visits: those, then with ``every`` each env
    registered in ``store`` whose manifest is still in place (one gone, or moved away,
    has nothing to relink: ``gc`` drops it), each once."""
    targets = list(dict.fromkeys(envs))
    if every:
        st = store if isinstance(store, Store) else Store(store)
        for env in sorted(registered_envs(st, strict=False)):
            if env not in targets and os.path.exists(os.path.join(env, MANIFEST_NAME)):
                targets.append(env)
    return targets


def each(
    envs: Sequence[str], action: Callable[[str], T]
) -> Iterator[tuple[str, T | EnvstoreError]]:
    """``action`` on each of ``envs`` in turn, yielding each env with its result or the
    error that stopped it: one env's failure does not stop the others. With a single
    env its error is raised, as the action itself raises it."""
    for env in envs:
        try:
            yield env, action(env)
        except EnvstoreError as exc:
            if len(envs) == 1:
                raise
            yield env, exc


def diagnose_envs(
    envs: Sequence[str],
    *,
    every: bool = False,
    store: str | os.PathLike[str] | None = None,
    gc_command: str = "envstore gc",
) -> list[Diagnosis]:
    """``diagnose`` of each of ``envs`` (in the store its manifest names unless ``store``
    is given), then with ``every`` of each other env registered in ``store`` (the
    default store without it), a registered env that is gone being one problem whose
    fix is ``gc_command`` (see ``diagnose_all``)."""
    diagnoses = [diagnose(env, store=store) for env in envs]
    if every:
        named = {d.env for d in diagnoses}
        diagnoses += [d for d in diagnose_all(Store(store), gc_command) if d.env not in named]
    return diagnoses
