"""Creating and removing environments: the library's main entry points.

A create holds the store's gc lock shared from picking entries until the env
is registered, so gc (which deletes only under the exclusive lock) can never
remove an entry between "chosen" and "referenced". The env is written in a
sibling temp directory and renamed into place, so a crash never leaves a
half environment at the requested path. Replacing an env (``clear``, ``sync``)
swaps the new directory with the old one atomically once the new one is
complete and registered, so a failure at any earlier step leaves the old env
working and referenced.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from envstore.env.make import check_target, make_env
from envstore.errors import (
    BadManifestError,
    EnvError,
    InterpreterError,
)
from envstore.model.interpreter import Interpreter
from envstore.model.manifest import Manifest
from envstore.model.sources import PackageSources, sources_from
from envstore.python.interpreters import find_interpreter, recorded_interpreter, recorded_request
from envstore.resolve.request import Request
from envstore.store.layout import Store
from envstore.store.registry import register_env, root_name, unregister_env

TYPE_CHECKING = False  # not typing's: importing typing costs every CLI start ~5 ms
if TYPE_CHECKING:
    from envstore.model.lock import Lock

__all__ = [
    "create_env",
    "register_env",
    "root_name",
    "sync_env",
    "unregister_env",
]

Progress = Callable[[str], None]


def create_env(
    path: str | os.PathLike[str],
    requirements: Sequence[str] = (),
    *,
    python: str | None = None,
    store: Store | str | os.PathLike[str] | None = None,
    requirement_files: Sequence[str] = (),
    sources: PackageSources | None = None,
    find_links: Sequence[str] = (),
    index_url: str | None = None,
    no_index: bool = False,
    offline: bool = False,
    upgrade: bool = False,
    constraints: Sequence[str] = (),
    pre: bool = False,
    with_pip: bool = True,
    clear: bool = False,
    prompt: str | None = None,
    lock: Lock | str | os.PathLike[str] | None = None,
    editables: Sequence[str] = (),
    extras: Sequence[str] = (),
    all_extras: bool = False,
    groups: Sequence[str] = (),
    progress: Progress | None = None,
    max_age: float | None = None,
) -> Manifest:
    """Create a thin environment at ``path`` holding ``requirements``; return its manifest.

    ``editables`` are project directories (``./proj``, ``./proj[extra]``) installed
    editable (PEP 660) into the env's own site-packages; their dependencies come
    from the store with the other requirements. A ``pyproject.toml`` among
    ``requirement_files`` means its ``[project].dependencies`` (with ``extras``, or
    every extra with ``all_extras``); ``groups`` are PEP 735 dependency groups,
    ``[PATH:]NAME`` (PATH: the project directory, default the cwd).

    ``sources`` says where packages may come from (or the keywords ``find_links``,
    ``index_url``, ``no_index`` and ``offline`` do: not both; TypeError).
    ``constraints`` (files, as pip's ``-c``) and ``pre`` (pre-releases allowed) bound
    the versions chosen. A requirement may be any form pip accepts: ``name @ URL``, a
    URL, a local wheel, sdist or project directory (relative to the current
    directory; in a requirements file, to the file).
    With ``lock`` (a Lock or a lock file), the env holds exactly the locked wheels
    (``with_pip`` is ignored: pip is there if the lock has it); nothing is resolved.
    With ``clear``, an existing env at ``path`` is replaced once the new one is
    complete; until then (and if anything fails) it stays as it was. The new env
    stays in the old one's store unless ``store`` names another.
    ``sources.remote`` (else ``$ENVSTORE_REMOTE``): a remote cache of entries asked for
    locked wheels first; ``sources.push`` (else ``$ENVSTORE_PUSH=1``): what was ingested
    is uploaded to it.
    ``max_age`` (seconds; None: ``$ENVSTORE_MAX_AGE``, else 600): with an index in play,
    requirements not pinned to one version are resolved against it by pip unless the
    same request was within ``max_age``; ``float("inf")`` keeps any store answer, 0
    resolves now. Pinned requirements, locks and ``offline`` never need the index.
    """
    where = sources_from(sources, find_links, index_url, no_index, offline)
    final = Path(os.path.abspath(path))
    replacing = check_target(final, clear)
    old = _old_store(final) if replacing else None
    st = store if isinstance(store, Store) else Store(store or old)
    st.ensure()
    locked = _load_lock(lock, requirements, requirement_files)
    if locked is None:  # a lock's extras and groups are chosen from it (selected)
        requirements, requirement_files = _expand(
            requirements, requirement_files, extras, all_extras, groups
        )
    if locked is not None:
        from envstore.env.locked import interpreter_for_lock, lock_editables, selected

        interp = interpreter_for_lock(locked, python, st)
        locked = selected(locked, interp, extras, all_extras, groups)
        editables = [*editables, *lock_editables(locked)]
    else:
        interp = find_interpreter(python, st.facts_cache())
    request = _request(requirements, requirement_files, where, upgrade, locked, constraints, pre)
    request.max_age = max_age
    made = _make(
        st, final, request, interp, locked, with_pip, prompt, replacing, progress, editables
    )
    _release_old_store(old, st, final)
    return made


def _make(
    st: Store,
    final: Path,
    request: Request,
    interp: Interpreter,
    locked: Lock | None,
    with_pip: bool,
    prompt: str | None,
    replacing: bool,
    progress: Progress | None,
    editables: Sequence[str],
    keep_unchanged: bool = False,
) -> Manifest:
    """make_env, with the editable projects built (or taken from the cache) first and
    their requirements added to the request. ``keep_unchanged``: see make_env."""
    # Editable projects: those given, then the -e lines of the requirement files.
    every = [*editables, *request.editables]
    if not every:
        return make_env(
            st,
            final,
            request,
            interp,
            locked,
            with_pip,
            prompt,
            replacing,
            progress,
            keep_unchanged=keep_unchanged,
        )
    from envstore.env.editable import parse_editable, prepare_editables

    specs = [parse_editable(e) for e in every]
    # From finding a project's cached wheel to registering the env that lists it, gc
    # waits: at --grace 0 it would delete the wheel no env lists yet.
    with st.gc_lock(shared=True):
        prepared = prepare_editables(
            st,
            specs,
            interp,
            request.sources,
            rebuild=request.upgrade,
            progress=progress,
            max_age=request.max_age,
        )
        recorded = request.pip_requirements()
        # With a lock, the projects' dependencies are among its packages: none resolved.
        if locked is None:
            needs = tuple(r for e in prepared for r in e.requirements)
            request = request.installing_editables(needs)
        return make_env(
            st,
            final,
            request,
            interp,
            locked,
            with_pip,
            prompt,
            replacing,
            progress,
            prepared,
            recorded,
            keep_unchanged=keep_unchanged,
            gc_locked=True,
        )


def _old_store(final: Path) -> str | None:
    """The store the env at ``final`` was made in, if its manifest says and it is there."""
    try:
        return _existing_store(Manifest.load(final).store)
    except BadManifestError:
        return None


def _existing_store(path: str) -> str | None:
    """``path`` if a store is there (a deleted one is not made again at a stale path)."""
    return path if os.path.isfile(os.path.join(path, "store.json")) else None


def _release_old_store(old: str | None, st: Store, final: Path) -> None:
    """An env replaced into another store: the old store lets go of it."""
    if old is None:
        return
    try:
        same = os.path.samefile(old, st.root)  # the same store, however it was written
    except OSError:
        return
    if not same:
        unregister_env(Store(old), final)


def sync_env(
    path: str | os.PathLike[str],
    requirements: Sequence[str] = (),
    *,
    lock: Lock | str | os.PathLike[str] | None = None,
    python: str | None = None,
    store: Store | str | os.PathLike[str] | None = None,
    requirement_files: Sequence[str] = (),
    sources: PackageSources | None = None,
    find_links: Sequence[str] = (),
    index_url: str | None = None,
    no_index: bool = False,
    offline: bool = False,
    upgrade: bool = False,
    constraints: Sequence[str] = (),
    pre: bool = False,
    with_pip: bool | None = None,
    editables: Sequence[str] = (),
    extras: Sequence[str] = (),
    all_extras: bool = False,
    groups: Sequence[str] = (),
    progress: Progress | None = None,
    max_age: float | None = None,
) -> Manifest:
    """Bring the env at ``path`` to exactly ``requirements`` (or ``lock``) and
    ``editables``, creating it if it does not exist. ``sources`` (or its four
    keywords) and ``max_age`` as for :func:`create_env`.

    An existing env keeps its interpreter (unless ``python`` names another), its
    store, its prompt and whether it has pip (unless ``with_pip`` says). The new
    env is built beside the old one and swapped in atomically; the old one's store
    references are released (gc frees what nothing else uses). On failure the old
    env is untouched.
    """
    where = sources_from(sources, find_links, index_url, no_index, offline)
    return _sync(
        path, requirements, lock=lock, python=python, store=store,
        requirement_files=requirement_files, where=where, upgrade=upgrade,
        constraints=constraints, pre=pre, with_pip=with_pip, editables=editables,
        extras=extras, all_extras=all_extras, groups=groups, progress=progress,
        max_age=max_age,
    )  # fmt: skip


def _sync(
    path: str | os.PathLike[str], requirements: Sequence[str], *,
    lock: Lock | str | os.PathLike[str] | None, python: str | None,
    store: Store | str | os.PathLike[str] | None, requirement_files: Sequence[str],
    where: PackageSources, upgrade: bool, constraints: Sequence[str], pre: bool,
    with_pip: bool | None, editables: Sequence[str], extras: Sequence[str],
    all_extras: bool, groups: Sequence[str], progress: Progress | None,
    max_age: float | None, ensured: bool = False,
) -> Manifest:  # fmt: skip
    """sync_env, its sources settled. ``ensured``: ``store`` is a Store its caller
    ensured moments ago in the same call (sync_project), so it is not checked twice."""
    if not (requirements or requirement_files or editables or groups) and lock is None:
        raise EnvError(
            f"nothing to sync {path} to: give requirements, -r FILE or --from LOCK"
            " (an empty requirements file empties the env)"
        )
    final = Path(os.path.abspath(path))
    replacing = check_target(final, clear=True)
    old: Manifest | None = None
    if replacing:
        try:
            old = Manifest.load(final)
        except BadManifestError:
            old = None
    kept = _existing_store(old.store) if old else None
    st = store if isinstance(store, Store) else Store(store or kept)
    if not (ensured and isinstance(store, Store)):
        st.ensure()
    locked = _load_lock(lock, requirements, requirement_files)
    if locked is None:  # a lock's extras and groups are chosen from it (selected)
        requirements, requirement_files = _expand(
            requirements, requirement_files, extras, all_extras, groups
        )
    if old is not None and python is None:
        was = old.python
        try:  # a path from the env's files: run only if envstore finds it by itself
            interp = recorded_interpreter(was.path, was.requested, st.facts_cache())
        except InterpreterError:  # gone (or unknown): what it was asked for, as relink would
            interp = recorded_request(was.requested, st.facts_cache())
    elif locked is not None:
        from envstore.env.locked import interpreter_for_lock

        interp = interpreter_for_lock(locked, python, st)
    else:
        interp = find_interpreter(python, st.facts_cache())
    if locked is not None:
        from envstore.env.locked import check_lock_python, lock_editables, selected

        check_lock_python(locked, interp)
        locked = selected(locked, interp, extras, all_extras, groups)
        editables = [*editables, *lock_editables(locked)]
    request = _request(requirements, requirement_files, where, upgrade, locked, constraints, pre)
    request.max_age = max_age
    if with_pip is None:
        with_pip = old is None or any(p.name == "pip" for p in old.packages)
    prompt = _prompt_of(final) if replacing else None  # else it has no pyvenv.cfg
    made = _make(
        st, final, request, interp, locked, with_pip, prompt, replacing, progress, editables, True
    )
    _release_old_store(kept, st, final)
    return made


def _prompt_of(env: Path) -> str | None:
    """The prompt an existing env was created with (``--prompt``), if any."""
    from envstore.env.venv import read_pyvenv_cfg

    raw = read_pyvenv_cfg(env).get("prompt")
    if raw and raw[0] in "'\"":
        import ast

        try:
            return str(ast.literal_eval(raw))
        except (ValueError, SyntaxError):
            pass
    return raw or None


def _request(
    requirements: Sequence[str],
    requirement_files: Sequence[str],
    sources: PackageSources,
    upgrade: bool,
    locked: Lock | None,
    constraints: Sequence[str] = (),
    pre: bool = False,
) -> Request:
    return Request(
        requirements=tuple(requirements),
        requirement_files=tuple(os.path.abspath(f) for f in requirement_files),
        sources=sources,
        upgrade=upgrade,
        locked=tuple(locked.packages) if locked is not None else (),
        constraints=tuple(os.path.abspath(f) for f in constraints),
        pre=pre,
    )


def _expand(
    requirements: Sequence[str],
    requirement_files: Sequence[str],
    extras: Sequence[str],
    all_extras: bool,
    groups: Sequence[str],
) -> tuple[Sequence[str], Sequence[str]]:
    """``-r pyproject.toml`` and ``--group`` turned into plain requirements (what the
    manifest records, and relink re-resolves); other files are left as they are."""
    if not (extras or all_extras or groups) and not any(
        os.path.basename(f) == "pyproject.toml" for f in requirement_files
    ):
        return requirements, requirement_files
    from envstore.resolve.project import project_requirements

    found, others = project_requirements(
        requirement_files, extras=extras, all_extras=all_extras, groups=groups
    )
    return [*requirements, *found], others


def _load_lock(
    lock: Lock | str | os.PathLike[str] | None,
    requirements: Sequence[str],
    requirement_files: Sequence[str],
) -> Lock | None:
    if lock is None:
        return None
    if requirements or requirement_files:
        raise EnvError("give either requirements or a lock, not both")
    from envstore.model.lock import Lock

    return lock if isinstance(lock, Lock) else Lock.load(lock)
