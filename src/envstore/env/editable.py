"""Editable projects (PEP 660): from ``-e PATH[extras]`` to a wheel ready to install.

The project's backend builds its editable wheel (``build_editable``, through
``pyproject_hooks``) in a throwaway envstore env holding ``build-system.requires``
and what ``get_requires_for_build_editable`` asks for. The wheel is cached in the
store per project directory (``envstore.store.editables``) under a **stamp**:

    the target interpreter's ABI and bytecode tag, the project's absolute path, and
    the contents of pyproject.toml, setup.py and setup.cfg (uv's default cache-keys)

so a re-create runs the backend only when one of those changed, or with
``upgrade``. Limits of the rule: metadata that comes from elsewhere (a version
from git tags or a ``_version.py``, dependencies read by setup.py from a
requirements file, a backend's own config file) is not seen; re-create with
``-U`` then. Edits to the source need no rebuild at all: the editable wheel
points at it.

The wheel's Requires-Dist (with the extras asked for, markers evaluated for the
target interpreter: ``envstore.env.editable_meta``) are resolved from the store with the env's other
requirements; the wheel itself is installed into the env's own site-packages
(``envstore.env.editable_install``).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

from envstore.env.editable_install import PreparedEditable
from envstore.env.editable_meta import cached_requirements, editable_meta
from envstore.env.make import make_env
from envstore.errors import BuildError, EnvstoreError
from envstore.model.interpreter import Interpreter
from envstore.model.sources import PackageSources
from envstore.resolve.project import Project, load_project
from envstore.resolve.request import Request
from envstore.store.editables import EditableCache
from envstore.store.fs import rmtree
from envstore.store.hashing import sha256
from envstore.store.layout import Store

__all__ = [
    "CACHE_KEYS",
    "EditableSpec",
    "parse_editable",
    "prepare_editables",
    "project_stamp",
    "stamp",
]

Progress = Callable[[str], None]

# The files whose contents decide whether a project's editable wheel is rebuilt.
CACHE_KEYS = ("pyproject.toml", "setup.py", "setup.cfg")


class EditableSpec:
    """``-e PATH[extra,...]``: a project directory and the extras asked for."""

    __slots__ = ("extras", "path")

    def __init__(self, path: Path, extras: tuple[str, ...] = ()) -> None:
        self.path = path
        self.extras = extras

    def __repr__(self) -> str:
        return f"EditableSpec({str(self.path)!r}, {self.extras!r})"


def parse_editable(text: str, base: str | os.PathLike[str] | None = None) -> EditableSpec:
    """``./p``, ``./p[x,y]``, ``file:///abs/p`` -> the absolute directory (relative to
    ``base``, default the cwd) and the extras. The directory must hold a project."""
    raw = text.strip()
    extras: tuple[str, ...] = ()
    m = re.fullmatch(r"(.*?)\[([A-Za-z0-9_.,\s-]*)\]", raw)
    if m:
        raw = m.group(1)
        extras = tuple(dict.fromkeys(e.strip() for e in m.group(2).split(",") if e.strip()))
    if raw.startswith("file://"):
        from urllib.parse import unquote, urlsplit

        raw = unquote(urlsplit(raw).path)
    elif "://" in raw or raw.startswith("git+"):
        raise BuildError(f"an editable install needs a local project directory, not {text!r}")
    path = Path(os.path.abspath(os.path.join(base or os.getcwd(), os.path.expanduser(raw))))
    if not any(os.path.isfile(f"{path}/{k}") for k in ("pyproject.toml", "setup.py")):
        raise BuildError(
            f"{text!r} is not a project directory ({path} has no pyproject.toml or setup.py)"
        )
    return EditableSpec(path, extras)


def stamp(project: Path, interp: Interpreter, keys: bytes | None = None) -> str:
    """What an editable wheel of ``project`` for ``interp`` is cached under (see the
    module docstring for the rule and its limits). ``keys``: ``_key_digests(project)``,
    when the caller has it."""
    h = sha256()
    for part in (interp.soabi, interp.cache_tag, str(project)):
        h.update(part.encode() + b"\0")
    h.update(_key_digests(project) if keys is None else keys)
    return h.hexdigest()[:32]


def project_stamp(project: Path, keys: bytes | None = None) -> str:
    """The project's part of its stamp (path and cache-key files, no interpreter): what
    an env's manifest records, so doctor can tell the project changed since its wheel
    was built, and a relink to another Python does not look like a change."""
    h = sha256(str(project).encode() + b"\0")
    h.update(_key_digests(project) if keys is None else keys)
    return h.hexdigest()[:32]


def _key_digests(project: Path) -> bytes:
    """What both stamps hash of the project's cache-key files (each read once)."""
    return b"".join(
        name.encode() + b"\0" + _file_digest(f"{project}/{name}") for name in CACHE_KEYS
    )


def _file_digest(path: str | Path) -> bytes:
    """sha256 of the regular file ``path``, read in chunks; that of ``<missing>`` when
    there is none. The path may come from a manifest (doctor): a FIFO or a device there
    must not hang or fill memory, so only a regular file is read."""
    h = sha256()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return sha256(b"<missing>").digest()
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return sha256(b"<missing>").digest()
        while chunk := os.read(fd, 1 << 20):
            h.update(chunk)
    except OSError:
        return sha256(b"<missing>").digest()
    finally:
        os.close(fd)
    return h.digest()


def prepare_editables(
    store: Store,
    specs: Sequence[EditableSpec],
    interp: Interpreter,
    sources: PackageSources,
    *,
    rebuild: bool = False,
    progress: Progress | None = None,
    max_age: float | None = None,
) -> list[PreparedEditable]:
    """An editable wheel for each project (from the cache, or built), with the
    requirements it adds for ``interp``. ``rebuild``: run the backend even when the
    cache has a wheel of the same stamp. ``max_age``: the build env's freshness window
    (``envstore.resolve.freshness``)."""
    cache = EditableCache(store)
    merged: dict[Path, tuple[str, ...]] = {}
    for spec in specs:  # -e ./p -e './p[x]': one project, both extras
        merged[spec.path] = tuple(dict.fromkeys((*merged.get(spec.path, ()), *spec.extras)))
    prepared = []
    for path, extras in merged.items():
        keys = _key_digests(path)  # before a build reads them
        key, own = stamp(path, interp, keys), project_stamp(path, keys)
        wheel = None if rebuild else cache.lookup(path, key)
        if wheel is None:
            if progress:
                progress(f"building the editable wheel of {path}")
            built = _build(store, load_project(path), interp, sources, progress, max_age)
            try:
                wheel = cache.publish(path, key, built)
            finally:
                rmtree(built.parent)  # gone already unless publishing failed
        meta = editable_meta(cache, wheel)
        prepared.append(
            PreparedEditable(
                path,
                extras,
                wheel,
                meta.name,
                meta.version,
                cached_requirements(cache, wheel, meta, extras, interp),
                own,
                meta.files,
            )
        )
    return prepared


def _build(
    store: Store,
    project: Project,
    interp: Interpreter,
    sources: PackageSources,
    progress: Progress | None,
    max_age: float | None = None,
) -> Path:
    """Run the backend's ``build_editable`` in a throwaway env (``max_age``: its
    freshness window); the wheel, in a directory of its own in the store's ``tmp/``
    (the caller deletes it)."""
    import tempfile

    import pyproject_hooks

    env = Path(os.path.realpath(tempfile.mkdtemp(prefix="envstore-editable-")))
    made = False

    def make(requires: Sequence[str]) -> None:
        nonlocal made
        request = Request(requirements=tuple(requires), sources=sources, max_age=max_age)
        make_env(store, env, request, interp, None, False, None, made, progress)
        made = True

    out = store.mkdtemp("editable")
    try:
        make(project.build_requires)
        hooks = pyproject_hooks.BuildBackendHookCaller(
            str(project.root),
            project.build_backend,
            backend_path=list(project.backend_path) or None,
            runner=pyproject_hooks.quiet_subprocess_runner,
            python_executable=str(env / "bin" / "python"),
        )
        try:
            extra = hooks.get_requires_for_build_editable()
            if set(extra) - set(project.build_requires):
                make([*project.build_requires, *extra])
            name = hooks.build_editable(str(out))
        except pyproject_hooks.HookMissing:
            raise BuildError(
                f"the build backend of {project.root} ({project.build_backend}) cannot make"
                " editable installs (it has no PEP 660 build_editable hook)"
            ) from None
        except pyproject_hooks.BackendUnavailable as exc:
            raise BuildError(
                f"the build backend {project.build_backend} of {project.root} cannot be"
                f" imported: {exc}"
            ) from None
        except Exception as exc:  # the backend failed: its output is the message
            if isinstance(exc, EnvstoreError):
                raise
            raise BuildError(
                f"building the editable wheel of {project.root} failed: {_tail(exc)}"
            ) from None
        return out / name
    except BaseException:
        rmtree(out)
        raise
    finally:
        if made:
            from envstore.env.remove import remove_env  # a build's: not a warm sync's

            remove_env(env, store=store)
        else:
            rmtree(env)


def _tail(exc: Exception) -> str:
    """The end of a failed hook's captured output (or the exception itself)."""
    import subprocess

    if isinstance(exc, subprocess.CalledProcessError) and exc.output:
        out = exc.output.decode(errors="replace") if isinstance(exc.output, bytes) else exc.output
        lines = [ln for ln in out.strip().splitlines() if ln.strip()][-15:]
        return "\n" + "\n".join(f"  {ln}" for ln in lines)
    return str(exc)
