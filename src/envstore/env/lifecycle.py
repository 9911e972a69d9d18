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
import shlex
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path

from envstore._crash import crash_point
from envstore.env.venv import write_env
from envstore.errors import (
    BadManifestError,
    EnvError,
    InterpreterError,
    ResolutionError,
    writing,
)
from envstore.model.interpreter import Interpreter
from envstore.model.keys import EntryKey
from envstore.model.manifest import MANIFEST_NAME, Manifest, Package, Sources, public_requirement
from envstore.python.interpreters import find_interpreter, recorded_interpreter, recorded_request
from envstore.resolve.resolver import Request, bundled_pip, cache_get, cache_put, remember, resolve
from envstore.store.db import write
from envstore.store.layout import Store, exchange, rmtree
from envstore.store.locks import env_lock
from envstore.store.registry import register_env, registered, root_name, unregister_env
from envstore.store.views import ensure_view, read_view

TYPE_CHECKING = False  # not typing's: importing typing costs every CLI start ~5 ms
if TYPE_CHECKING:
    from envstore.model.lock import Lock

__all__ = [
    "create_env",
    "is_envstore_env",
    "register_env",
    "remove_env",
    "root_name",
    "sync_env",
    "unregister_env",
]

Progress = Callable[[str], None]


def _check_target(final: Path, clear: bool) -> bool:
    """Whether ``final`` holds an envstore env to replace; raises if it may not be used.

    The old env is left alone here: it is replaced only once the new one is complete,
    so a failed resolve or fetch leaves it as it was.
    """
    if final.is_symlink() or (final.exists() and not final.is_dir()):
        raise EnvError(f"{final} exists and is not a directory")
    if not final.exists():
        return False
    if is_envstore_env(final) and not clear:
        raise EnvError(f"{final} is already an envstore environment; use --clear to replace it")
    if clear and os.path.isfile(final / "pyvenv.cfg"):
        return True  # an envstore env or any venv, as python -m venv --clear would
    if any(final.iterdir()):
        what = "a virtual environment (no pyvenv.cfg)" if clear else "an envstore environment"
        raise EnvError(f"{final} exists, is not empty and is not {what}; nothing was changed")
    return False


def is_envstore_env(env: Path) -> bool:
    """An env envstore made: its pyvenv.cfg says so and it has a manifest. (Its manifest
    alone is not enough: any directory can hold a file named envstore.json.)"""
    from envstore.env.venv import read_pyvenv_cfg

    return (env / MANIFEST_NAME).is_file() and read_pyvenv_cfg(env).get("envstore") == "1"


def _pip_key(store: Store, interp: Interpreter, progress: Progress | None) -> EntryKey:
    wheel = bundled_pip(interp)
    if wheel is None:
        raise ResolutionError(
            f"{interp.path} has no bundled pip (ensurepip); use --without-pip, or name pip"
            " in the requirements"
        )
    # Hashing the wheel costs an import of the ingest machinery; remember the
    # answer per wheel file identity so a warm create skips it.
    st = wheel.stat()
    cache = f"bundled-pip:{wheel}:{st.st_size}:{st.st_mtime_ns}:{interp.cache_tag}"
    known = cache_get(store, cache)
    if known is not None:
        key = EntryKey.parse(known[0])
        if store.has_entry(key, interp.cache_tag):
            return key
    from envstore.store.ingest import ingest_wheels

    key = ingest_wheels(store, [wheel], interp, progress)[wheel]
    with write(store.db()) as conn:
        cache_put(conn, cache, [str(key)])
    return key


def _remove_stale_temps(final: Path) -> None:
    """Delete temp dirs a killed create of the same env left beside it."""
    prefix = f".{final.name}.envstore-tmp-"
    try:
        with os.scandir(final.parent) as it:  # not glob: a new pattern to compile per env
            temps = [final.parent / e.name for e in it if e.name.startswith(prefix)]
    except OSError:  # a parent we may write but not list (mode 0311)
        return
    for tmp in temps:
        pid = tmp.name.rsplit("-", 1)[1]
        if pid.isdigit():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                rmtree(tmp)
            except PermissionError:
                pass


def create_env(
    path: str | os.PathLike[str],
    requirements: Sequence[str] = (),
    *,
    python: str | None = None,
    store: Store | str | os.PathLike[str] | None = None,
    requirement_files: Sequence[str] = (),
    find_links: Sequence[str] = (),
    index_url: str | None = None,
    no_index: bool = False,
    offline: bool = False,
    upgrade: bool = False,
    with_pip: bool = True,
    clear: bool = False,
    prompt: str | None = None,
    lock: Lock | str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
) -> Manifest:
    """Create a thin environment at ``path`` holding ``requirements``; return its manifest.

    With ``lock`` (a Lock or a lock file), the env holds exactly the locked wheels
    (``with_pip`` is ignored: pip is there if the lock has it); nothing is resolved.
    With ``clear``, an existing env at ``path`` is replaced once the new one is
    complete; until then (and if anything fails) it stays as it was. The new env
    stays in the old one's store unless ``store`` names another.
    """
    final = Path(os.path.abspath(path))
    replacing = _check_target(final, clear)
    old = _old_store(final) if replacing else None
    st = store if isinstance(store, Store) else Store(store or old)
    st.ensure()
    locked = _load_lock(lock, requirements, requirement_files)
    request = _request(
        requirements, requirement_files, find_links, index_url, no_index, offline, upgrade, locked
    )
    if locked is not None:
        interp = _interpreter_for_lock(locked, python, st)
    else:
        interp = find_interpreter(python, st.db())
    made = _make_env(st, final, request, interp, locked, with_pip, prompt, replacing, progress)
    _release_old_store(old, st, final)
    return made


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
    find_links: Sequence[str] = (),
    index_url: str | None = None,
    no_index: bool = False,
    offline: bool = False,
    upgrade: bool = False,
    with_pip: bool | None = None,
    progress: Progress | None = None,
) -> Manifest:
    """Bring the env at ``path`` to exactly ``requirements`` (or ``lock``), creating it if
    it does not exist.

    An existing env keeps its interpreter (unless ``python`` names another), its
    store, its prompt and whether it has pip (unless ``with_pip`` says). The new
    env is built beside the old one and swapped in atomically; the old one's store
    references are released (gc frees what nothing else uses). On failure the old
    env is untouched.
    """
    if not requirements and not requirement_files and lock is None:
        raise EnvError(
            f"nothing to sync {path} to: give requirements, -r FILE or --from LOCK"
            " (an empty requirements file empties the env)"
        )
    final = Path(os.path.abspath(path))
    replacing = _check_target(final, clear=True)
    old: Manifest | None = None
    if replacing:
        try:
            old = Manifest.load(final)
        except BadManifestError:
            old = None
    kept = _existing_store(old.store) if old else None
    st = store if isinstance(store, Store) else Store(store or kept)
    st.ensure()
    locked = _load_lock(lock, requirements, requirement_files)
    request = _request(
        requirements, requirement_files, find_links, index_url, no_index, offline, upgrade, locked
    )
    if old is not None and python is None:
        was = old.python
        try:  # a path from the env's files: run only if envstore finds it by itself
            interp = recorded_interpreter(was.path, was.requested, st.db())
        except InterpreterError:  # gone (or unknown): what it was asked for, as relink would
            interp = recorded_request(was.requested, st.db())
        if locked is not None:
            _check_lock_python(locked, interp)
    elif locked is not None:
        interp = _interpreter_for_lock(locked, python, st)
    else:
        interp = find_interpreter(python, st.db())
    if with_pip is None:
        with_pip = old is None or any(p.name == "pip" for p in old.packages)
    prompt = _prompt_of(final)
    made = _make_env(st, final, request, interp, locked, with_pip, prompt, replacing, progress)
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
    find_links: Sequence[str],
    index_url: str | None,
    no_index: bool,
    offline: bool,
    upgrade: bool,
    locked: Lock | None,
) -> Request:
    return Request(
        requirements=tuple(requirements),
        requirement_files=tuple(os.path.abspath(f) for f in requirement_files),
        find_links=tuple(os.path.abspath(d) if "://" not in d else d for d in find_links),
        index_url=index_url,
        no_index=no_index,
        offline=offline,
        upgrade=upgrade,
        locked=tuple(locked.packages) if locked is not None else (),
    )


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


def _check_lock_python(lock: Lock, interp: Interpreter) -> None:
    want = lock.python
    if interp.implementation != want.implementation or interp.minor != want.minor:
        raise InterpreterError(
            f"the lock is for {want.implementation} {want.minor} ({want.abi_tag},"
            f" {want.platform}), but {interp.path} is {interp.implementation} {interp.version};"
            f" pass -p {want.minor}"
        )


def _interpreter_for_lock(lock: Lock, python: str | None, store: Store) -> Interpreter:
    """``python`` if given, else the default Python if it is the lock's minor version,
    else a search for that version."""
    interp = find_interpreter(python, store.db())
    if python is None and interp.minor != lock.python.minor:
        interp = find_interpreter(lock.python.minor, store.db())
    _check_lock_python(lock, interp)
    return interp


def _make_env(
    st: Store,
    final: Path,
    request: Request,
    interp: Interpreter,
    locked: Lock | None,
    with_pip: bool,
    prompt: str | None,
    replacing: bool,
    progress: Progress | None,
) -> Manifest:
    with st.gc_lock(shared=True):

        def pip_site() -> Path:
            return st.entry_path(_pip_key(st, interp, progress)) / "site"

        resolved = resolve(st, request, interp, pip_site, progress)
        keys = dict(resolved.keys)
        # Entries made for another Python version need its bytecode first.
        stale = [k for k in keys.values() if not st.has_entry(k, interp.cache_tag)]
        if stale:
            from envstore.store.ingest import ensure_compiled

            ensure_compiled(st, stale, interp)
        if resolved.wheels:
            from envstore.store.ingest import ingest_wheels

            new = ingest_wheels(st, list(resolved.wheels.values()), interp, progress)
            for name, wheel in resolved.wheels.items():
                keys[name] = new[wheel]
        if not resolved.from_cache and locked is None:
            remember(st, resolved, keys, {w: keys[n] for n, w in resolved.wheels.items()})
        if with_pip and locked is None and "pip" not in keys:
            keys["pip"] = _pip_key(st, interp, progress)
        vkey, vpath = ensure_view(st, list(keys.values()), interp)
        view = read_view(vpath)
        wheels: dict[str, str] = view.get("wheels", {})  # type: ignore[assignment]
        # As recorded (manifest, pyvenv.cfg): URLs without credentials.
        requirements = [
            public_requirement(r)
            for r in (locked.requirements if locked else request.pip_requirements())
        ]
        manifest = Manifest(
            env=str(final),
            store=str(st.root),
            python=interp,
            view=vkey,
            packages=[
                Package(k.name, k.version, k, wheels.get(str(k), ""), name in resolved.requested)
                for name, k in sorted(keys.items())
            ],
            requirements=requirements,
            created=time.time(),
            sources=Sources(request.find_links, request.index_url, request.no_index),
        )
        final.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(final)
        tmp = final.parent / f".{final.name}.envstore-tmp-{os.getpid()}"
        rmtree(tmp)
        tmp.mkdir()
        try:
            # The whole command, credentials removed: what re-creates this env.
            asked = ["-p", interp.requested] if interp.requested else []
            opts = [*asked, *manifest.sources.options()]
            command = shlex.join(["envstore", "create", str(final), *opts, *requirements])
            with writing(f"the env {final} (in {tmp})"):
                write_env(tmp, final, interp, vpath / "site", view, command=command, prompt=prompt)
                text = manifest.save(tmp)
            # Replacing: a relink of the old env would register it again; take turns.
            with env_lock(final) if replacing else nullcontext():
                if not replacing:
                    _retire_registration(st, final)
                # Same path, same root: the old env's references are replaced by the new.
                register_env(st, manifest, final, text)
                crash_point("create-registered")
                if replacing and final.is_dir():
                    exchange(tmp, final)  # the old env is now at tmp, deleted below
                else:
                    _publish(st, tmp, final)
        finally:
            rmtree(tmp)
    return manifest


def _retire_registration(store: Store, final: Path) -> None:
    """A new env at ``final`` takes over its path's registration. One left there by an
    env moved away (``mv``, not yet relinked) or deleted is kept under another name as a
    gone env's: gc keeps what it used for the grace period, as for any env moved away."""
    if not store.db_path.exists():
        return
    conn = store.db()
    if conn.execute("SELECT 1 FROM envs WHERE path = ?", (str(final),)).fetchone() is None:
        return
    from envstore.store.db import ensure_gone_since

    ensure_gone_since(conn)
    now = time.time()
    alias = f"{final} (earlier env, replaced {time.strftime('%Y-%m-%d %H:%M:%S')})"
    with write(conn):
        conn.execute(
            "UPDATE OR REPLACE envs SET path = ?, root = NULL,"
            " gone_since = COALESCE(gone_since, ?) WHERE path = ?",
            (alias, now, str(final)),
        )
        conn.execute("UPDATE OR REPLACE refs SET env = ? WHERE env = ?", (alias, str(final)))


def _publish(store: Store, tmp: Path, final: Path) -> None:
    """Rename the new env into place. Losing that race to another create of the same
    path (after both registered) leaves the registration to the env that won."""
    try:
        if final.is_dir():
            final.rmdir()  # empty (checked before); rename needs it gone or empty
        os.rename(tmp, final)
    except OSError as exc:
        try:
            winner = Manifest.load(final)
        except (BadManifestError, OSError):
            raise EnvError(f"cannot create {final}: {exc.strerror or exc}") from None
        if Path(winner.store) == store.root:
            register_env(store, winner, final)
        else:
            unregister_env(store, final)
        raise EnvError(f"{final} was created by another process meanwhile") from None


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
        # the other order could leave a live env whose entries gc may collect.
        rmtree(final)
        crash_point("remove-deleted")
        unregister_env(st, final)
