"""An env's console scripts: symlinks to one launcher, ``bin/.envstore-scripts``,
which runs the entry point named after the link (and ordinary scripts for export).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from envstore.env.venv import shebang, symlink, write_file
from envstore.model.interpreter import Interpreter

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from envstore.model.records import ViewRecord

# The one file behind an env's console scripts: each ``bin/<name>`` is a symlink
# to it (a relative link short enough to live in the inode: no block, ~0.1 ms to
# make), and the name it was started as picks the entry point, like a multi-call
# binary. A user's alias to a script (``~/bin/jl -> env/bin/jupyter-lab``) is
# followed back to the script's own name. Only ``os`` and ``sys`` are used: both
# are imported at start-up already.
LAUNCHER = ".envstore-scripts"


_LAUNCHER = """\
# envstore: every console script of this environment is a symlink to this file;
# the name it is started as selects the entry point below.
import os
import sys

SCRIPTS = {scripts}


def _entry_point():
    path = sys.argv[0]
    for _ in range(40):
        name = os.path.basename(path)
        if name in SCRIPTS:
            return SCRIPTS[name]
        try:
            path = os.path.join(os.path.dirname(path), os.readlink(path))
        except OSError:
            break
    sys.exit(f"{{sys.argv[0]}}: not a console script of this environment")


if __name__ == "__main__":
    module, attr = _entry_point()
    head, *rest = attr.split(".")
    func = getattr(__import__(module, fromlist=[head]), head)
    for part in rest:
        func = getattr(func, part)
    sys.exit(func())
"""


# An ordinary script, for ``envstore export`` (an ordinary venv has one file per script).
_SCRIPT = """\
import re
import sys
from {module} import {head}
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit({attr}())
"""


def console_script(module: str, attr: str) -> str:
    """A console script's text after its shebang, as pip writes it."""
    return _SCRIPT.format(module=module, head=attr.split(".")[0], attr=attr)


def script_name(name: str, dist: str, interp: Interpreter) -> str:
    # pip and setuptools name versioned scripts after the python that built the
    # wheel (pip3.11 in pip's wheel); an installer renames them for the target.
    if dist == "pip" and re.match(r"^pip\d+\.\d+$", name):
        return f"pip{interp.minor}"
    if dist == "setuptools" and re.match(r"^easy_install-\d+\.\d+$", name):
        return f"easy_install-{interp.minor}"
    return name


def script_names(view: ViewRecord, interp: Interpreter) -> list[str]:
    """The names in ``bin/`` that ``write_scripts`` writes for ``view`` and ``interp``."""
    names = [
        script_name(name, dist, interp) for name, _module, _attr, _section, dist in view.scripts
    ]
    names += [name for name, _source in view.data_scripts]
    return names


def write_scripts(
    env: Path,
    final: Path,
    view: ViewRecord,
    interp: Interpreter,
    *,
    bang: str | None = None,
    launcher: bool = True,
) -> None:
    """Console scripts and ``.data/scripts``. Their shebang names the env's own
    ``bin/python``, never the base interpreter, so a same-ABI relink leaves them alone.

    With ``launcher`` the console scripts are symlinks to one file, ``LAUNCHER``
    (above): a ``big`` env has 33 of them, and a file each cost a 4 KB block and a
    write. Installers replace a script rather than write through it (pip and uv
    unlink first), so ``pip install`` into the env leaves the others working.

    No /bin/sh trampoline to explain a missing base interpreter: it measured
    ~1 ms (dash) per start, ~7% of ``python -c pass``, paid by every invocation
    for a rare event that activate and ``envstore doctor`` already explain.
    """
    bindir = f"{env}/bin"
    if bang is None:
        bang = shebang(f"{final}/bin/python")
    data_scripts = view.data_scripts
    console, launcher_text = _console_launcher(view, interp, bang)
    if launcher and console:
        # Read-only: an installer that writes through a script's link instead of
        # replacing it (Poetry resolves the path first) fails instead of turning
        # every script of the env into its own.
        write_file(f"{bindir}/{LAUNCHER}", launcher_text, 0o555)
        for name in console:
            # A script replaces what bin/ already has under its name (a relink's
            # copied scripts, a console script named "activate"), as pip does.
            symlink(LAUNCHER, f"{bindir}/{name}")
    else:
        for name, (module, attr) in console.items():
            text = bang + console_script(module, attr)
            write_file(f"{bindir}/{name}", text.encode(), 0o755)  # as pip: less the umask
    written: set[str] = set()
    for name, source in data_scripts:
        if name in written:  # the view lists the package whose file wins first
            continue
        written.add(name)
        data = Path(source).read_bytes()
        if data.startswith(b"#!python"):
            data = bang.encode() + data.split(b"\n", 1)[1] if b"\n" in data else bang.encode()
        write_file(f"{bindir}/{name}", data, 0o755)


# The console scripts and launcher of a view (read once per process while its
# view.json is the same file: make._read_view) for an interpreter's minor version
# and a shebang, each kept with its view (so the id names no other while it is here).
_LAUNCHERS: dict[tuple[int, str, str], tuple[ViewRecord, dict[str, tuple[str, str]], bytes]] = {}


def _console_launcher(
    view: ViewRecord, interp: Interpreter, bang: str
) -> tuple[dict[str, tuple[str, str]], bytes]:
    """``_console_scripts`` and their ``_launcher_text``, remembered per process."""
    key = (id(view), interp.minor, bang)
    known = _LAUNCHERS.get(key)
    if known is not None and known[0] is view:
        return known[1], known[2]
    console = _console_scripts(view, interp)
    text = _launcher_text(bang, console)
    if len(_LAUNCHERS) >= 64:  # bounded: a process making many envs
        _LAUNCHERS.clear()
    _LAUNCHERS[key] = (view, console, text)
    return console, text


def _console_scripts(view: ViewRecord, interp: Interpreter) -> dict[str, tuple[str, str]]:
    """bin/ name -> (module, attribute) of the view's console and gui scripts; a data
    script of the same name wins, as it always did."""
    console: dict[str, tuple[str, str]] = {}
    for name, module, attr, _section, dist in view.scripts:
        # The view lists packages in the order their files win (store.views.precedence).
        console.setdefault(script_name(name, dist, interp), (module, attr))
    for name, _source in view.data_scripts:
        console.pop(name, None)
    return console


def launcher_intact(env: Path, view: ViewRecord, interp: Interpreter) -> bool:
    """Whether ``bin/`` still has the launcher ``write_scripts`` would write for ``view``
    (an env made before the launcher existed, a file per script, counts as intact)."""
    console = _console_scripts(view, interp)
    path = env / "bin" / LAUNCHER
    if not console or not os.path.lexists(path):
        return not any(
            os.path.islink(env / "bin" / n) and os.readlink(env / "bin" / n) == LAUNCHER
            for n in console
        )
    try:
        return path.read_bytes() == _launcher_text(shebang(str(env / "bin" / "python")), console)
    except OSError:
        return False


def _launcher_text(bang: str, console: dict[str, tuple[str, str]]) -> bytes:
    """The launcher for ``console`` (name -> (module, attribute)), a line per script
    (names are checked at ingest, and ``repr`` quotes whatever they hold)."""
    rows = "".join(f"    {name!r}: {value!r},\n" for name, value in sorted(console.items()))
    return (bang + _LAUNCHER.format(scripts="{\n" + rows + "}")).encode()
