"""An env's ``site-packages``: ``00-envstore.pth`` naming the view, the entries' own
``.pth`` files, links to ``.data`` directories, and ``write_env``, which fills a new env.
"""

from __future__ import annotations

import os
from pathlib import Path

from envstore.env.activation import write_activation_scripts
from envstore.env.scripts import write_scripts
from envstore.env.venv import venv_home_stdlib, write_file, write_interpreter_links
from envstore.model.interpreter import Interpreter
from envstore.store.views import link_tree

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from envstore.model.records import ViewRecord

# Sorts before every ordinary .pth, so the view is on sys.path before the
# entries' own .pth files (e.g. setuptools' distutils-precedence.pth) run.
PTH_NAME = "00-envstore.pth"
_ALL_REAL = 64  # link_tree depth: every directory real, only files linked


def materialize_pth(name: str, source: str, site: Path, view_site: Path) -> None:
    """Copy an entry's .pth so it acts as if its entry were installed in site-packages:
    relative path lines and ``sitedir`` (used by legacy *-nspkg.pth) mean the view.
    One that site reads before ``PTH_NAME`` (``0-early.pth``) starts by naming the view
    itself, so its import lines find the packages as they would in site-packages."""
    lines = [pth_line(view_site).decode()] if name < PTH_NAME else []
    sitedir = f"__import__('os').fsdecode({os.fsencode(view_site)!r})"  # ASCII, see pth_line
    for line in Path(source).read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith(("import ", "import\t")):
            line = line.replace("sys._getframe(1).f_locals['sitedir']", sitedir)
        elif stripped and not stripped.startswith("#") and not os.path.isabs(stripped):
            line = pth_line(view_site / stripped).decode()
        lines.append(line)
    write_file(f"{site}/{name}", ("\n".join(lines) + "\n").encode())


def pth_line(path: str | os.PathLike[str]) -> bytes:
    """A .pth line putting ``path`` on sys.path, in ASCII whatever the path holds.

    Python 3.11 and 3.12 decode .pth files in the locale's encoding, ignoring UTF-8
    mode: ASCII under ``LC_ALL=C``, where a non-ASCII path stops the interpreter at
    start-up. Such a path is written as code that decodes its exact bytes instead, and
    so is one holding a control character (a newline would start a line of its own,
    even an import line) or ending in blanks (site strips them)."""
    raw = os.fsencode(path)
    if raw.isascii() and raw.decode().isprintable() and raw == raw.rstrip():
        return raw
    return (
        b"import os, sys; p = os.fsdecode(" + repr(raw).encode() + b"); "
        b"p in sys.path or sys.path.append(p)"  # site reads a venv's .pth files twice
    )


def write_site(site: Path, view_site: Path, view: ViewRecord, *, atomic: bool = True) -> list[str]:
    """``00-envstore.pth`` naming the view, and the entries' own .pth files materialized;
    returns the names written. ``atomic``: replace the .pth line in one rename (a live
    env's site-packages); a new env's directory is published whole."""
    if atomic:
        tmp = f"{site}/.{PTH_NAME}.tmp"
        write_file(tmp, pth_line(view_site) + b"\n")
        os.replace(tmp, site / PTH_NAME)
    else:
        write_file(f"{site}/{PTH_NAME}", pth_line(view_site) + b"\n")
    written = [PTH_NAME]
    for name, source in view.pth:
        if name not in written:  # the first the view lists wins (store.views.precedence)
            materialize_pth(name, source, site, view_site)
            written.append(name)
    return written


def write_data_links(env: Path, view: ViewRecord, interp: Interpreter) -> None:
    """Links for the entries' ``.data/data`` (share/..., etc/...) and ``.data/headers``."""
    data_dirs = [Path(p) for p in view.data]
    if data_dirs:
        # Real directories down to e.g. share/jupyter/labextensions, so a later
        # pip install can add files there without writing into the store.
        link_tree(env, data_dirs, relative=False, real_depth=3)
    headers = view.headers
    if headers:
        inc = env / "include" / "site" / f"python{interp.minor}"
        inc.mkdir(parents=True, exist_ok=True)
        for dist, path in headers:
            # A real directory of links to the header files, never a link to the
            # store's directory: pip or uv (as root, file modes do not stop them)
            # would write and delete through that into the store (#22).
            (inc / dist).mkdir(exist_ok=True)
            link_tree(inc / dist, [Path(path)], relative=False, real_depth=_ALL_REAL)


def write_env(
    env: Path,
    final: Path,
    interp: Interpreter,
    view_site: Path,
    view: ViewRecord,
    *,
    command: str,
    prompt: str | None = None,
) -> None:
    """Fill the empty directory ``env`` (to be renamed to ``final``) with the environment."""
    # No include/ (uv makes none either): a directory costs a block and ~0.3 ms
    # here; write_data_links and pip make include/site/... when a wheel has headers.
    # ``env`` is new and empty: each directory is made with one mkdir, nothing is
    # checked first.
    os.mkdir(f"{env}/bin")
    parts = Path(interp.purelib).parts
    made = str(env)
    for part in parts:
        made = f"{made}/{part}"
        os.mkdir(made)
    site = env / interp.purelib
    if parts[0] == "lib":  # lib/ is a directory: lib64 -> lib, as venv makes it
        os.symlink("lib", f"{env}/lib64")
    home, stdlib = venv_home_stdlib(interp)
    write_interpreter_links(env, interp, command, prompt=prompt, home=home)
    write_activation_scripts(env, interp, final, prompt or final.name, home=home, stdlib=stdlib)
    write_site(site, view_site, view, atomic=False)
    write_scripts(env, final, view, interp)
    write_data_links(env, view, interp)
