"""Creating and removing environments: the library's main entry points.

A create holds the store's gc lock shared from picking entries until the env
is registered, so gc (which deletes only under the exclusive lock) can never
remove an entry between "chosen" and "referenced". The env is written in a
sibling temp directory and renamed into place, so a crash never leaves a
half environment at the requested path.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from envstore._crash import crash_point
from envstore._db import write
from envstore._interpreters import Interpreter, find_interpreter
from envstore._resolve import Request, bundled_pip, remember, resolve
from envstore._store import EntryKey, Store, rmtree
from envstore._venv import read_view, write_env
from envstore._view import ensure_view
from envstore.errors import BadManifestError, EnvError, ResolutionError
from envstore.manifest import MANIFEST_NAME, Manifest, Package

__all__ = ["create_env", "register_env", "remove_env", "root_name"]

Progress = Callable[[str], None]


def root_name(env: Path) -> str:
    """The file name of an env's gc root: a hash of its absolute path."""
    import xxhash

    return str(xxhash.xxh3_64_hexdigest(str(env).encode()))


def _check_target(final: Path, clear: bool, store: Store) -> None:
    if final.is_symlink() or (final.exists() and not final.is_dir()):
        raise EnvError(f"{final} exists and is not a directory")
    if not final.exists():
        return
    if (final / MANIFEST_NAME).exists():
        if not clear:
            raise EnvError(f"{final} is already an envstore environment; use --clear to replace it")
        remove_env(final, store=store)
    elif any(final.iterdir()):
        raise EnvError(f"{final} exists, is not empty and is not an envstore environment")


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
    conn = store.db()
    row = conn.execute("SELECT objects FROM resolutions WHERE key = ?", (cache,)).fetchone()
    if row is not None:
        key = EntryKey.parse(json.loads(row[0])[0])
        if store.compiled_marker(key, interp.cache_tag).exists():
            return key
    from envstore._ingest import ingest_wheels

    key = ingest_wheels(store, [wheel], interp, progress)[wheel]
    with write(conn):
        conn.execute(
            "INSERT OR REPLACE INTO resolutions (key, objects, created) VALUES (?, ?, ?)",
            (cache, json.dumps([str(key)]), time.time()),
        )
    return key


def _remove_stale_temps(final: Path) -> None:
    """Delete temp dirs a killed create of the same env left beside it."""
    for tmp in final.parent.glob(f".{final.name}.envstore-tmp-*"):
        pid = tmp.name.rsplit("-", 1)[1]
        if pid.isdigit():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                rmtree(tmp)
            except PermissionError:
                pass


def register_env(store: Store, manifest: Manifest, final: Path) -> None:
    """Record ``final`` as a live env: its gc root on disk and its rows in the database."""
    import xxhash

    root = store.roots_dir / root_name(final)
    tmp_link = store.roots_dir / f".{root.name}.{os.getpid()}"
    if tmp_link.is_symlink():
        tmp_link.unlink()
    os.symlink(final / MANIFEST_NAME, tmp_link)
    os.replace(tmp_link, root)
    digest = xxhash.xxh3_64_hexdigest(manifest.dumps().encode())
    now = time.time()
    objects = [str(k) for k in manifest.keys] + [f"view/{manifest.view}"]
    conn = store.db()
    with write(conn):
        conn.execute(
            "INSERT OR REPLACE INTO envs (path, root, manifest_digest, python, created, last_seen)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (str(final), root.name, digest, manifest.python.version, manifest.created, now),
        )
        conn.execute("DELETE FROM refs WHERE env = ?", (str(final),))
        conn.executemany(
            "INSERT OR IGNORE INTO refs (env, object) VALUES (?, ?)",
            [(str(final), o) for o in objects],
        )


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
    progress: Progress | None = None,
) -> Manifest:
    """Create a thin environment at ``path`` holding ``requirements``; return its manifest."""
    st = store if isinstance(store, Store) else Store(store)
    final = Path(os.path.abspath(path))
    _check_target(final, clear, st)
    st.ensure()
    request = Request(
        requirements=tuple(requirements),
        requirement_files=tuple(os.path.abspath(f) for f in requirement_files),
        find_links=tuple(os.path.abspath(d) if "://" not in d else d for d in find_links),
        index_url=index_url,
        no_index=no_index,
        offline=offline,
        upgrade=upgrade,
    )
    interp = find_interpreter(python, st.db())
    with st.gc_lock(shared=True):

        def pip_site() -> Path:
            return st.entry_path(_pip_key(st, interp, progress)) / "site"

        resolved = resolve(st, request, interp, pip_site, progress)
        keys = dict(resolved.keys)
        if resolved.wheels:
            from envstore._ingest import ingest_wheels

            new = ingest_wheels(st, list(resolved.wheels.values()), interp, progress)
            for name, wheel in resolved.wheels.items():
                keys[name] = new[wheel]
        elif any(not st.compiled_marker(k, interp.cache_tag).exists() for k in keys.values()):
            from envstore._ingest import ensure_compiled

            ensure_compiled(st, keys.values(), interp)
        if not resolved.from_cache:
            remember(st, request, interp, keys, resolved.requested)
        if with_pip and "pip" not in keys:
            keys["pip"] = _pip_key(st, interp, progress)
        vkey, vpath = ensure_view(st, list(keys.values()), interp)
        view = read_view(vpath)
        wheels: dict[str, str] = view.get("wheels", {})  # type: ignore[assignment]
        manifest = Manifest(
            env=str(final),
            store=str(st.root),
            python=interp,
            view=vkey,
            packages=[
                Package(k.name, k.version, k, wheels.get(str(k), ""), name in resolved.requested)
                for name, k in sorted(keys.items())
            ],
            requirements=list(request.pip_requirements()),
            created=time.time(),
        )
        final.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temps(final)
        tmp = final.parent / f".{final.name}.envstore-tmp-{os.getpid()}"
        rmtree(tmp)
        tmp.mkdir()
        try:
            command = shlex.join(["envstore", "create", str(final), *request.pip_requirements()])
            write_env(tmp, final, interp, vpath / "site", view, command=command, prompt=prompt)
            manifest.save(tmp)
            register_env(st, manifest, final)
            crash_point("create-registered")
            if final.is_dir():
                final.rmdir()  # empty (checked above); rename needs it gone or empty
            os.rename(tmp, final)
        finally:
            rmtree(tmp)
    return manifest


def remove_env(
    path: str | os.PathLike[str], *, store: Store | str | os.PathLike[str] | None = None
) -> None:
    """Delete an envstore environment and release its references."""
    final = Path(os.path.abspath(path))
    if not (final / MANIFEST_NAME).exists():
        raise EnvError(f"{final} is not an envstore environment (no {MANIFEST_NAME})")
    try:
        manifest = Manifest.load(final)
        store_root = manifest.store
    except BadManifestError:
        store_root = None
    st = store if isinstance(store, Store) else Store(store or store_root)
    # Env first: once it is gone its root dangles and gc would drop it anyway;
    # the other order could leave a live env whose entries gc may collect.
    rmtree(final)
    crash_point("remove-deleted")
    root = st.roots_dir / root_name(final)
    if root.is_symlink():
        root.unlink()
    if st.db_path.exists():
        conn = st.db()
        with write(conn):
            conn.execute("DELETE FROM refs WHERE env = ?", (str(final),))
            conn.execute("DELETE FROM envs WHERE path = ?", (str(final),))
