"""Writing a thin PEP 405 environment that points into the store.

Everything here is O(packages + scripts): the skeleton of ``python -m venv``
(pyvenv.cfg, interpreter links, activation scripts from the target's own
stdlib), one ``.pth`` line naming the view, the entries' own ``.pth`` files,
console scripts, and links for ``.data/data`` and ``.data/headers``.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from envstore.errors import EnvError
from envstore.model.interpreter import Interpreter
from envstore.python.links import link_chain
from envstore.store.fs import not_a_directory

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    pass

__all__ = [
    "check_env_dirs",
    "implementation_name",
    "read_pyvenv_cfg",
    "venv_home",
    "venv_home_stdlib",
    "version_info",
    "write_all",
    "write_env_markers",
    "write_file",
    "write_interpreter_links",
]


def shebang(python: str) -> str:
    """A shebang running ``python``; the /bin/sh trampoline where the kernel's
    limits (length, spaces) would break a plain one."""
    if len(python) <= 127 and " " not in python:
        return f"#!{python}\n"
    return f"#!/bin/sh\n'''exec' {shlex.quote(python)} \"$0\" \"$@\"\n' '''\n"


def venv_home(interp: Interpreter) -> str:
    """The ``home`` of pyvenv.cfg for ``interp`` (``venv_home_stdlib``'s first)."""
    return venv_home_stdlib(interp)[0]


def venv_home_stdlib(interp: Interpreter) -> tuple[str, str | None]:
    """The ``home`` of pyvenv.cfg for ``interp``, and the stdlib CPython's search from
    there finds (``home_stdlib``; None when the last resort was taken unsearched).

    In a venv CPython searches ``home`` and its parents for the stdlib (and
    falls back to its compiled-in prefix), so ``home`` is the recorded path's
    directory when that search finds this interpreter's stdlib there (Homebrew's
    ``opt/python@X.Y/bin``, ``/usr/bin``), else the resolved binary's directory
    (a symlink into a relocatable install, e.g. ``~/.local/bin/python3.12``).
    """
    sub = os.path.join(*Path(interp.stdlib).parts[-2:])  # lib/python3.12

    # The recorded path's directory, then a stable directory link beside the resolved
    # prefix (/opt/python3.12 -> Python3.12.1), then each hop of the path's links: the
    # first whose search finds this stdlib. A stable name survives the prefix being
    # replaced by a new patch release; a patch-versioned prefix is the last resort.
    def finds_stdlib(home: str) -> str | None:
        found = home_stdlib(home, sub)
        try:
            return found if found is not None and os.path.samefile(found, interp.stdlib) else None
        except OSError:
            return None

    first = os.path.dirname(interp.path)
    found = finds_stdlib(first)
    if found is not None:  # the common case (/usr/bin, pyenv, Homebrew's opt/): no more
        return first, found
    prefix = os.path.dirname(os.path.dirname(interp.resolved))
    chain = [os.path.dirname(n) for n in link_chain(interp.path)[1:]]
    for home in [*_stable_links_to_prefix(prefix), *chain]:
        found = finds_stdlib(home)
        if found is not None:
            return home, found
    return os.path.dirname(interp.resolved), None


def home_stdlib(home: str, sub: str) -> str | None:
    """The stdlib CPython finds for a venv whose ``home`` is ``home``: the first
    ``lib/pythonX.Y`` (``sub``) holding ``os.py`` in ``home`` or a parent of it."""
    d = home
    while d and d != "/":  # CPython's search never tests "/" itself
        stdlib = os.path.join(d, sub)
        if os.path.isfile(os.path.join(stdlib, "os.py")) or os.path.isfile(
            os.path.join(stdlib, "os.pyc")
        ):
            return stdlib
        d = os.path.dirname(d)
    return None


def _stable_links_to_prefix(prefix: str) -> list[str]:
    """``bin`` of each directory link beside ``prefix`` that leads to it (``/opt/python3.12
    -> Python3.12.1``), shortest name first: a name without the patch version."""
    parent = os.path.dirname(prefix)
    try:
        names = os.listdir(parent)
    except OSError:
        return []
    found = []
    for name in names:
        path = os.path.join(parent, name)
        if os.path.islink(path) and os.path.realpath(path) == os.path.realpath(prefix):
            found.append(path)
    return [os.path.join(p, "bin") for p in sorted(found, key=lambda p: (len(p), p))]


def check_env_dirs(env: Path, *purelibs: str) -> None:
    """Refuse an env whose own directories (``bin`` aside: relink moves a linked one
    aside) are symlinks or files: writing into the env must never land elsewhere, and a
    cloned repository's ``.venv`` can hold any link."""
    paths = {"include", "include/site"}
    for purelib in purelibs:
        parts = purelib.split("/")
        paths.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
        paths.add(f"include/site/{parts[1]}")  # lib/python3.12/... -> include/site/python3.12
    for rel in sorted(paths):
        what = not_a_directory(env / rel)
        if what:
            raise EnvError(
                f"{env / rel} is {what}; envstore writes only into an env's own directories."
                f" Recreate the env: envstore create {shlex.quote(str(env))} --clear ..."
            )


def read_pyvenv_cfg(env: Path) -> dict[str, str]:
    """The ``key = value`` lines of ``env``'s pyvenv.cfg (empty if it is missing)."""
    values: dict[str, str] = {}
    try:
        with open(f"{env}/pyvenv.cfg", encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return values
    for line in text.splitlines():
        key, eq, value = line.partition("=")
        if eq:
            values[key.strip().lower()] = value.strip()
    return values


_PYTHON_LINK = re.compile(r"^python(\d+(\.\d+t?)?)?$")


def write_interpreter_links(
    env: Path,
    interp: Interpreter,
    command: str,
    *,
    prompt: str | None = None,
    envstore_marker: bool = True,
    markers: bool = True,
    home: str | None = None,
) -> None:
    """(Re)write ``bin/python*`` and ``pyvenv.cfg`` for ``interp``; with the activation
    scripts' check, the only files that name the base interpreter, so a relink to an
    interpreter of the same ABI touches just these. ``markers``: also write the env's
    ``.gitignore`` and ``CACHEDIR.TAG`` (``write_env_markers``). ``home``:
    ``venv_home(interp)``, when the caller has it."""
    bindir = f"{env}/bin"
    for name in os.listdir(bindir):
        if _PYTHON_LINK.match(name):
            os.unlink(f"{bindir}/{name}")
    os.symlink(interp.path, f"{bindir}/python")
    os.symlink("python", f"{bindir}/python3")
    os.symlink("python", f"{bindir}/python{interp.minor}")
    lines = [
        f"home = {home or venv_home(interp)}",
        f"implementation = {implementation_name(interp)}",
        "include-system-site-packages = false",
        f"version = {interp.version}",
    ]
    full = version_info(interp.version)
    if full:  # virtualenv's and uv's key, which pre-commit's health check compares
        lines.append(f"version_info = {full}")
    lines += [f"executable = {interp.resolved}", f"command = {command}"]
    if prompt:  # like python -m venv: only a prompt that was asked for is recorded
        lines.append(f"prompt = {prompt!r}")
    if envstore_marker:  # an exported venv is an ordinary one
        lines.append("envstore = 1")
    # ``env`` is always a directory being built (a new env, a relink's stage, an
    # export), published by its caller: no temporary file needed here.
    write_file(f"{env}/pyvenv.cfg", ("\n".join(lines) + "\n").encode())
    if markers:
        write_env_markers(env)


# What python -m venv (3.13+) and uv put in an env: git ignores it, and backup and
# archiving tools that honour the Cache Directory Tagging Specification skip it.
GITIGNORE = b"# Created by envstore automatically.\n*\n"
CACHEDIR_TAG = (
    b"Signature: 8a477f597d28d172789f06886806bc55\n"
    b"# This file is a cache directory tag created by envstore.\n"
    b"# For information about cache directory tags see https://bford.info/cachedir/\n"
)
_ENV_MARKERS = ((".gitignore", GITIGNORE), ("CACHEDIR.TAG", CACHEDIR_TAG))


def write_env_markers(env: Path, *, only_missing: bool = False) -> None:
    """Write the env's ``.gitignore`` and ``CACHEDIR.TAG``. ``only_missing``: leave
    whatever is there (an existing env's own, or a link: never written through)."""
    for name, data in _ENV_MARKERS:
        path = f"{env}/{name}"
        if only_missing and os.path.lexists(path):
            continue
        write_file(path, data)


# sys.version_info's release levels, by the suffix platform.python_version() gives them.
_LEVELS = {"a": "alpha", "b": "beta", "rc": "candidate"}
_PYTHON_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:(a|b|rc)(\d+))?\+?$")


def version_info(version: str) -> str | None:
    """``".".join(map(str, sys.version_info))`` of the interpreter whose
    ``platform.python_version()`` is ``version`` (``3.13.0rc1`` -> ``3.13.0.candidate.1``),
    derived without starting it; None for a form CPython never gives."""
    m = _PYTHON_VERSION.match(version)
    if m is None:
        return None
    major, minor, micro, level, serial = m.groups()
    return f"{major}.{minor}.{micro}.{_LEVELS[level] if level else 'final'}.{serial or 0}"


def implementation_name(interp: Interpreter) -> str:
    """``platform.python_implementation()`` (``CPython``), as virtualenv and uv record it."""
    return interp.markers.get("platform_python_implementation") or (
        "CPython" if interp.implementation == "cpython" else interp.implementation
    )


def write_file(path: str, data: bytes, mode: int = 0o666) -> None:
    """Create ``path`` (mode less the umask) holding ``data``: one open, no text layer.
    Whatever was there is replaced, never written through (a script's link to the
    launcher, a read-only file): in a new env that costs nothing."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        os.unlink(path)
        fd = os.open(path, flags, mode)
    write_all(fd, data)


def write_all(fd: int, data: bytes) -> None:
    """Write ``data`` to the new file ``fd`` and close it: bare ``os.write`` calls, no
    file object (whose set-up costs an fstat, an ioctl and an lseek per file)."""
    try:
        done = os.write(fd, data)  # all of it, as a small file's write is
        if done < len(data):
            view = memoryview(data)[done:]
            while view:
                view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def symlink(target: str, path: str) -> None:
    """``path`` -> ``target``, replacing whatever ``path`` was."""
    try:
        os.symlink(target, path)
    except FileExistsError:
        os.unlink(path)
        os.symlink(target, path)
