"""Making an env: resolve, build or reuse the view, fill a temporary directory,
register it, and rename it into place.
"""

from __future__ import annotations

import errno
import os
import shlex
import stat
import time
from contextlib import nullcontext
from pathlib import Path

from envstore._crash import crash_point
from envstore.env.site import write_env
from envstore.errors import (
    BadManifestError,
    EnvError,
    writing,
)
from envstore.model.interpreter import Interpreter
from envstore.model.keys import canonical_name
from envstore.model.manifest import (
    MANIFEST_NAME,
    EditablePackage,
    Manifest,
    Outcome,
    Package,
    public_requirement,
)
from envstore.resolve.cache import remember
from envstore.resolve.forms import absolute
from envstore.resolve.request import Request
from envstore.resolve.resolver import resolve
from envstore.store import index
from envstore.store.fs import exchange, rmtree, temp_abandoned, temp_tag
from envstore.store.layout import Store
from envstore.store.locks import env_lock
from envstore.store.registry import register_env, unregister_env
from envstore.store.views import ensure_view, read_view

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from collections.abc import Sequence

    from envstore.env.editable_install import PreparedEditable
    from envstore.model.keys import EntryKey
    from envstore.model.lock import Lock
    from envstore.model.records import ViewRecord
    from envstore.model.sources import PackageSources
    from envstore.store.ingest import Progress


def make_env(
    st: Store,
    final: Path,
    request: Request,
    interp: Interpreter,
    locked: Lock | None,
    with_pip: bool,
    prompt: str | None,
    replacing: bool,
    progress: Progress | None,
    editables: Sequence[PreparedEditable] = (),
    recorded: Sequence[str] | None = None,
    unrequested: frozenset[str] = frozenset(),
    keep_unchanged: bool = False,
    gc_locked: bool = False,
) -> Manifest:
    """Make the env ``final`` (``replacing`` the one there). ``editables`` are installed
    into its own site-packages; ``recorded`` are the requirements its manifest and
    pyvenv.cfg record (default: the request's); ``unrequested``: names the request
    pins only to keep them (``envstore install``), never marked requested.
    ``keep_unchanged`` (sync): an env that already is what would be made is left as
    it is (``envstore.env.unchanged``). ``gc_locked``: the caller holds the gc lock
    (shared) around this call, so it is not taken again (~25 us)."""
    with nullcontext() if gc_locked else st.gc_lock(shared=True):

        def pip_site() -> Path:
            from envstore.resolve.pip import bundled_pip_key  # not a warm create's

            return st.entry_dir(bundled_pip_key(st, interp, progress)) / "site"

        resolved = resolve(st, request, interp, pip_site, progress)
        keys = dict(resolved.keys)
        # Entries made for another Python version need its bytecode first.
        stale = [k for k in keys.values() if not st.has_entry(k, interp.cache_tag)]
        if stale:
            from envstore.store.publish import ensure_compiled

            ensure_compiled(st, stale, interp)
        if resolved.wheels:
            from envstore.store.ingest import ingest_wheels

            got = resolved.wheels
            urls = {got[n]: u for n, u in resolved.urls.items() if n in got}
            new = ingest_wheels(st, list(got.values()), interp, progress, urls)
            for name, wheel in resolved.wheels.items():
                keys[name] = new[wheel]
            if request.push:
                push_ingested(st, request.sources, list(new.values()), progress)
        if not resolved.from_cache and locked is None:
            remember(st, resolved, keys, {w: keys[n] for n, w in resolved.wheels.items()})
        if with_pip and locked is None and "pip" not in keys:
            from envstore.resolve.pip import bundled_pip_key

            keys["pip"] = bundled_pip_key(st, interp, progress)
        for e in editables:  # the project itself is the editable, never a store copy
            keys.pop(canonical_name(e.name), None)
        vkey, vpath = ensure_view(st, list(keys.values()), interp)
        view = _read_view(vpath)
        wheels = view.wheels
        # As recorded (manifest, pyvenv.cfg): URLs without credentials, local paths
        # absolute (what install and relink resolve again runs elsewhere).
        requirements = [
            public_requirement(r)
            for r in (
                locked.requirements
                if locked
                else [
                    absolute(r)
                    for r in (recorded if recorded is not None else request.pip_requirements())
                ]
            )
        ]
        manifest = Manifest(
            env=str(final),
            store=str(st.root),
            python=interp,
            view=vkey,
            packages=[
                Package(
                    k.name,
                    k.version,
                    k,
                    wheels.get(str(k), ""),
                    name in resolved.requested and name not in unrequested,
                )
                for name, k in sorted(keys.items())
            ],
            requirements=requirements,
            created=time.time(),
            sources=request.sources.recorded(),
            editables=[
                EditablePackage(e.name, e.version, str(e.path), e.extras, e.wheel.name, e.stamp)
                for e in editables
            ],
        )
        fetched = sum(1 for p in manifest.packages if p.name in resolved.wheels)
        manifest.outcome = Outcome(
            len(manifest.packages) - fetched,
            fetched,
            resolved.resolved_at > 0 and not resolved.from_cache,
            resolved.index_note,
        )
        if keep_unchanged and replacing:
            from envstore.env.unchanged import unchanged

            same = unchanged(st, final, manifest, view, interp, editables)
            if same is not None:
                if progress:
                    progress(f"{final} already holds what was asked: nothing changed")
                same.outcome = manifest.outcome
                return same
        parent = final.parent
        if not os.path.isdir(parent):  # a .venv's project: there (one stat, no failed mkdir)
            parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temps(final)
        tmp = parent / f".{final.name}.envstore-tmp-{temp_tag()}"
        rmtree(tmp)
        tmp.mkdir()
        try:
            # The whole command, credentials removed: what re-creates this env.
            asked = ["-p", interp.requested] if interp.requested else []
            opts = [*asked, *manifest.sources.options()]
            edits = [a for e in editables for a in ("-e", _editable_arg(e))]
            command = shlex.join(["envstore", "create", str(final), *opts, *edits, *requirements])
            with writing(f"the env {final} (in {tmp})"):
                write_env(tmp, final, interp, vpath / "site", view, command=command, prompt=prompt)
            if editables:
                from envstore.env.editable_install import install_editable

                for e in editables:
                    install_editable(tmp, final, interp, e)
            with writing(f"the env {final} (in {tmp})"):
                text = manifest.save(tmp)
            # Replacing: a relink of the old env would register it again; take turns.
            with env_lock(final) if replacing else nullcontext():
                # Same path, same root: the old env's references are replaced by the new.
                # A new env retires the registration left at its path (one transaction).
                alias = None if replacing else _retiring_alias(st, final)
                register_env(st, manifest, final, text, retire_as=alias)
                crash_point("create-registered")
                if replacing and final.is_dir():
                    exchange(tmp, final)  # the old env is now at tmp, deleted below
                else:
                    _publish(st, tmp, final)
        finally:
            rmtree(tmp)
    return manifest


# The views a process has read, by path and file identity: view.json is written once
# (a view's key names its content) and read-only, and a warm process (tox, an IDE)
# makes envs of the same view again and again: parsing and checking it cost ~0.2 ms.
_VIEWS: dict[tuple[object, ...], ViewRecord] = {}


def _read_view(vpath: Path) -> ViewRecord:
    """``read_view(vpath)``, once per process while its view.json is the same file."""
    try:
        st = os.stat(f"{vpath}/view.json")
    except OSError:
        return read_view(vpath)  # its error
    key: tuple[object, ...] = (str(vpath), os.environ.get("ENVSTORE_UPSTREAM"), st.st_dev)
    key += (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
    view = _VIEWS.get(key)
    if view is None:
        view = read_view(vpath)
        if len(_VIEWS) >= 32:  # a process making many envs: bounded
            _VIEWS.clear()
        _VIEWS[key] = view
    return view


def _editable_arg(e: PreparedEditable) -> str:
    return f"{e.path}[{','.join(e.extras)}]" if e.extras else str(e.path)


def push_ingested(
    st: Store, sources: PackageSources, keys: list[EntryKey], progress: Progress | None
) -> None:
    """Upload what a command ingested to the remote cache; a failure is a warning (the
    env itself is fine), shown even without progress."""
    from envstore.errors import EnvstoreError
    from envstore.store.remote import push

    say = progress or (lambda message: None)
    url = sources.remote_cache()
    if not url:
        say("warning: --push without a remote (--remote URL or ENVSTORE_REMOTE): nothing pushed")
        return
    try:
        report = push(st, url, keys)
    except (EnvstoreError, OSError) as exc:
        say(f"warning: nothing pushed: {exc}")
        return
    for why in report.skipped:
        say(f"warning: not pushed: {why}")
    say(f"pushed {len(report.pushed)} entries ({len(report.present)} were there already)")


def _retiring_alias(store: Store, final: Path) -> str | None:
    """A new env at ``final`` takes over its path's registration. One left there by an
    env moved away (``mv``, not yet relinked) or deleted is kept under the name this
    returns (None: there is none), as a gone env's: gc keeps what it used for the grace
    period, as for any env moved away. ``register_env`` retires it and registers the
    new env in one transaction."""
    if not store.db_path.exists():
        return None
    conn = store.db()
    if not index.env_known(conn, str(final)):
        return None
    if _GONE_SINCE.get(id(conn)) is not conn:  # once per connection: a PRAGMA, ~30 us
        from envstore.store.db import ensure_gone_since

        ensure_gone_since(conn)
        if len(_GONE_SINCE) >= 8:  # bounded: a process using many stores
            _GONE_SINCE.clear()
        _GONE_SINCE[id(conn)] = conn
    return f"{final} (earlier env, replaced {time.strftime('%Y-%m-%d %H:%M:%S')})"


# The connections whose database has ``envs.gone_since`` (ensure_gone_since ran on
# them), by id, each kept (so its id is not another's while it is here): a column is
# never dropped, and a database replaced (rebuild-db) is another file, which a
# connection opened before does not see (a connection is not weakly referable).
_GONE_SINCE: dict[int, object] = {}


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


def check_target(final: Path, clear: bool) -> bool:
    """Whether ``final`` holds an envstore env to replace; raises if it may not be used.

    The old env is left alone here: it is replaced only once the new one is complete,
    so a failed resolve or fetch leaves it as it was.
    """
    try:  # one lstat (not is_symlink, exists, is_dir, exists: four)
        mode = os.lstat(final).st_mode
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP):
            return False  # what pathlib's exists() takes as not there
        raise
    if not stat.S_ISDIR(mode):  # a link (to a directory or not), a file
        raise EnvError(f"{final} exists and is not a directory")
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


def remove_stale_temps(final: Path) -> None:
    """Delete temp dirs a killed create of the same env left beside it."""
    prefix = f".{final.name}.envstore-tmp-"
    try:
        with os.scandir(final.parent) as it:  # not glob: a new pattern to compile per env
            temps = [final.parent / e.name for e in it if e.name.startswith(prefix)]
    except OSError:  # a parent we may write but not list (mode 0311)
        return
    now = time.time()
    for tmp in temps:
        try:
            age = now - os.lstat(tmp).st_mtime
        except OSError:
            continue
        # <host>@<pid>: another host's (an env on a shared filesystem) only when old.
        if temp_abandoned(tmp.name[len(prefix) :], age):
            rmtree(tmp)
