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
from envstore.python.interpreters import link_chain
from envstore.store.layout import not_a_directory
from envstore.store.views import link_tree

TYPE_CHECKING = False  # not typing's: see _envs
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "LAUNCHER",
    "PTH_NAME",
    "check_env_dirs",
    "launcher_intact",
    "pth_line",
    "read_pyvenv_cfg",
    "script_names",
    "venv_home",
    "write_activation_scripts",
    "write_data_links",
    "write_env",
    "write_file",
    "write_interpreter_links",
    "write_scripts",
    "write_site",
]

# Sorts before every ordinary .pth, so the view is on sys.path before the
# entries' own .pth files (e.g. setuptools' distutils-precedence.pth) run.
PTH_NAME = "00-envstore.pth"

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


def shebang(python: str) -> str:
    """A shebang running ``python``; the /bin/sh trampoline where the kernel's
    limits (length, spaces) would break a plain one."""
    if len(python) <= 127 and " " not in python:
        return f"#!{python}\n"
    return f"#!/bin/sh\n'''exec' {shlex.quote(python)} \"$0\" \"$@\"\n' '''\n"


def venv_home(interp: Interpreter) -> str:
    """The ``home`` of pyvenv.cfg for ``interp``.

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
    def finds_stdlib(home: str) -> bool:
        found = home_stdlib(home, sub)
        try:
            return found is not None and os.path.samefile(found, interp.stdlib)
        except OSError:
            return False

    first = os.path.dirname(interp.path)
    if finds_stdlib(first):  # the common case (/usr/bin, pyenv, Homebrew's opt/): no more
        return first
    prefix = os.path.dirname(os.path.dirname(interp.resolved))
    chain = [os.path.dirname(n) for n in link_chain(interp.path)[1:]]
    for home in [*_stable_links_to_prefix(prefix), *chain]:
        if finds_stdlib(home):
            return home
    return os.path.dirname(interp.resolved)


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
        text = (env / "pyvenv.cfg").read_text(encoding="utf-8")
    except OSError:
        return values
    for line in text.splitlines():
        key, eq, value = line.partition("=")
        if eq:
            values[key.strip().lower()] = value.strip()
    return values


def write_interpreter_links(
    env: Path,
    interp: Interpreter,
    command: str,
    *,
    prompt: str | None = None,
    envstore_marker: bool = True,
) -> None:
    """(Re)write ``bin/python*`` and ``pyvenv.cfg`` for ``interp``; with the activation
    scripts' check, the only files that name the base interpreter, so a relink to an
    interpreter of the same ABI touches just these."""
    bindir = env / "bin"
    for name in os.listdir(bindir):
        if re.match(r"^python(\d+(\.\d+t?)?)?$", name):
            os.unlink(bindir / name)
    os.symlink(interp.path, bindir / "python")
    os.symlink("python", bindir / "python3")
    os.symlink("python", bindir / f"python{interp.minor}")
    lines = [
        f"home = {venv_home(interp)}",
        "include-system-site-packages = false",
        f"version = {interp.version}",
        f"executable = {interp.resolved}",
        f"command = {command}",
    ]
    if prompt:  # like python -m venv: only a prompt that was asked for is recorded
        lines.append(f"prompt = {prompt!r}")
    if envstore_marker:  # an exported venv is an ordinary one
        lines.append("envstore = 1")
    # ``env`` is always a directory being built (a new env, a relink's stage, an
    # export), published by its caller: no temporary file needed here.
    write_file(f"{env}/pyvenv.cfg", ("\n".join(lines) + "\n").encode())


def _gone_check(name: str, final: Path, interp: Interpreter, landmark: str) -> str:
    """Shell code for the top of an activation script: when ``bin/python`` cannot run
    (its base interpreter was removed or moved), say so and how to repair the env,
    instead of activating an env whose every command fails with "bad interpreter"."""
    python = str(final / "bin" / "python")
    what = (
        f"envstore: cannot activate {final}: its Python {interp.version}"
        f" ({interp.path}) is gone (moved, removed or upgraded)."
    )
    fix = (
        f"envstore: repair it with: envstore relink {shlex.quote(str(final))}"
        f"   (details: envstore doctor {shlex.quote(str(final))})"
    )
    head = "# Added by envstore: explain a moved env, or a base interpreter that is gone.\n"
    moved = f"envstore: {final} was moved or copied to"  # + its new place, from the shell
    relink = "envstore: repair it with: envstore relink"  # + its new place
    if name == "activate":  # bash and zsh: the script's own place, as _HERE finds it
        q = shlex.quote
        return (
            # Only bash and zsh know the sourced file's path (sh stops at the syntax).
            f"{head}_envstore_here=\n"
            'if [ -n "${BASH_VERSION:-}" ]; then _envstore_here=${BASH_SOURCE[0]}\n'
            'elif [ -n "${ZSH_VERSION:-}" ]; then _envstore_here=${(%):-%x}\n'
            "fi\n"
            # builtin: a cd function or a chpwd hook must not print into the result.
            'if [ -n "$_envstore_here" ]; then _envstore_here=$(CDPATH= builtin cd --'
            ' "$(dirname -- "$_envstore_here")"/.. >/dev/null 2>&1 && builtin pwd -P); fi\n'
            f'if [ -n "$_envstore_here" ] && [ "$_envstore_here" != "$(CDPATH= builtin cd --'
            f' {q(str(final))} >/dev/null 2>&1 && builtin pwd -P)" ]; then\n'
            f"    printf '%s %s\\n%s %q\\n' {q(moved)} \"$_envstore_here\" {q(relink)}"
            ' "$_envstore_here" >&2\n'
            "    unset _envstore_here\n"
            "    return 1 2>/dev/null || exit 1\n"
            "fi\n"
            "unset _envstore_here\n"
            f"if [ ! -x {q(python)} ] || [ ! -e {q(landmark)} ]; then\n"
            f"    printf '%s\\n' {q(what)} {q(fix)} >&2\n"
            "    return 1 2>/dev/null || exit 1\n"
            "fi\n\n"
        )
    if name == "activate.fish":

        def fq(text: str) -> str:
            return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

        # In a sourced file fish's exit skips the rest of the file, not the shell.
        return (
            f"{head}set -l _envstore_here {_HERE[name]}\n"
            f'if test "$_envstore_here" != (builtin realpath {fq(str(final))} 2>/dev/null)\n'
            f"    printf '%s %s\\n%s %s\\n' {fq(moved)} \"$_envstore_here\" {fq(relink)}"
            ' "$_envstore_here" >&2\n'
            "    exit 1\n"
            "end\n"
            f"if not test -x {fq(python)}; or not test -e {fq(landmark)}\n"
            f"    printf '%s\\n' {fq(what)} {fq(fix)} >&2\n"
            "    exit 1\n"
            "end\n\n"
        )
    if name == "activate.csh":
        q = shlex.quote
        # csh can neither find its own place nor leave a sourced file early: warn in
        # words that fit a moved env too, then activate anyway.
        neutral = (
            f"envstore: {final}/bin/python cannot run: its Python {interp.version}"
            f" ({interp.path}) is gone, or the env was moved from {final}."
        )
        return "".join(
            [
                head,
                f"if ( ! -x {q(python)} ) then\n",
                f"    echo {q(neutral)}\n",
                f"    echo {q('envstore: repair it with: envstore relink ENV (its path now)')}\n",
                "endif\n\n",
            ]
        )
    return ""


def _stdlib_landmark(interp: Interpreter) -> str:
    """The ``os.py`` of the stdlib that pyvenv.cfg's home leads to: gone when a
    relocatable install behind a link is replaced by a new patch release (bin/python
    still runs, then dies)."""
    stdlib = home_stdlib(venv_home(interp), os.path.join(*Path(interp.stdlib).parts[-2:]))
    landmark = os.path.join(stdlib or interp.stdlib, "os.py")
    if stdlib is not None and not os.path.isfile(landmark):  # a stdlib of .pyc files only
        landmark += "c"
    return landmark


def _split_after_comments(text: str) -> tuple[str, str]:
    """``text`` split after its leading comment and blank lines (where the check goes)."""
    lines = text.splitlines(keepends=True)
    i = 0
    while i < len(lines) and (lines[i].startswith("#") or not lines[i].strip()):
        i += 1
    return "".join(lines[:i]), "".join(lines[i:])


# Relocatable activation: VIRTUAL_ENV is the parent of the directory holding the
# sourced script (bash: BASH_SOURCE, zsh: %x), as uv's relocatable venvs do.
_HERE = {
    "activate": '"$(CDPATH= cd -- "$(dirname -- "${BASH_SOURCE[0]:-${(%):-%x}}")"/.. >/dev/null'
    ' && pwd)"',
    "activate.fish": "(builtin realpath (dirname (status filename))/..)",
}


_TEMPLATES: dict[str, list[tuple[str, str, str]]] = {}


def _activation_templates(stdlib: str) -> list[tuple[str, str, str]]:
    """The venv module's activation templates of a stdlib as (name, head, body), split
    where the check goes; read once per process (a build frontend creates many envs
    in one process)."""
    found = _TEMPLATES.get(stdlib)
    if found is None:
        found = []
        scripts = Path(stdlib) / "venv" / "scripts"
        for sub in ("common", "posix"):
            d = scripts / sub
            if not d.is_dir():
                continue
            for name in sorted(os.listdir(d)):
                if (d / name).is_file():
                    found.append((name, *_split_after_comments((d / name).read_text("utf-8"))))
        _TEMPLATES[stdlib] = found
    return found


def _quote_for(script: str, *, inside_quotes: bool) -> Callable[[str], str]:
    """How a value is quoted for the shell that reads ``script``: as venv quotes it for
    templates with bare placeholders; inside the double quotes of older templates, with
    the characters that shell still expands there escaped (venv itself did not)."""
    if script.endswith(".ps1"):
        return (lambda s: s.replace("'", "''")) if inside_quotes else _quote_ps1
    if script.endswith((".bat", ".csh")) and inside_quotes:
        return str  # csh cannot escape "$" inside double quotes
    if not inside_quotes:
        return str if script.endswith(".bat") else shlex.quote
    specials = '\\$`"' if script == "activate" else '\\$"'  # sh, zsh / fish
    table = str.maketrans({c: "\\" + c for c in specials})
    return lambda s: s.translate(table)


def _quote_ps1(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def write_activation_scripts(
    env: Path,
    interp: Interpreter,
    final: Path,
    prompt: str,
    *,
    check: bool = True,
    relocatable: bool = False,
) -> None:
    """``bin/activate*`` from the interpreter's own venv templates, plus the check above
    (``check``). ``relocatable``: bash/zsh and fish find the env from the script's own
    location (csh keeps the absolute path; Activate.ps1 always finds it itself)."""
    # 3.9-3.12 templates expect "(name) " for the prompt, 3.13+ add the parentheses.
    shown = prompt if tuple(map(int, interp.minor.split("."))) >= (3, 13) else f"({prompt}) "
    values = {
        "__VENV_DIR__": str(final),
        "__VENV_NAME__": final.name,
        "__VENV_PROMPT__": shown,
        "__VENV_BIN_NAME__": "bin",
        "__VENV_PYTHON__": f"{final}/bin/python",
    }
    landmark = _stdlib_landmark(interp) if check else ""
    for name, head, body in _activation_templates(interp.stdlib):
        # Templates since the fix for CVE-2024-9287 (3.9.21, 3.10.16, 3.11.11, 3.12.8,
        # 3.13.1, and distributions' backports such as Debian 12's 3.11.2) leave the
        # placeholders unquoted and expect venv to quote each value for the shell.
        quote = _quote_for(name, inside_quotes='"__VENV_DIR__"' in head + body)
        parts = []
        for text in (head, body):
            if relocatable and name in _HERE:
                text = text.replace('"__VENV_DIR__"', "__VENV_DIR__")
                text = text.replace("__VENV_DIR__", _HERE[name])
            for placeholder, value in values.items():
                if placeholder in text:
                    text = text.replace(placeholder, quote(value))
            parts.append(text)
        block = _gone_check(name, final, interp, landmark) if check else ""
        write_file(f"{env}/bin/{name}", (parts[0] + block + parts[1]).encode())


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


def _script_name(name: str, dist: str, interp: Interpreter) -> str:
    # pip and setuptools name versioned scripts after the python that built the
    # wheel (pip3.11 in pip's wheel); an installer renames them for the target.
    if dist == "pip" and re.match(r"^pip\d+\.\d+$", name):
        return f"pip{interp.minor}"
    if dist == "setuptools" and re.match(r"^easy_install-\d+\.\d+$", name):
        return f"easy_install-{interp.minor}"
    return name


def script_names(view: dict[str, object], interp: Interpreter) -> list[str]:
    """The names in ``bin/`` that ``write_scripts`` writes for ``view`` and ``interp``."""
    names = [
        _script_name(name, dist, interp)
        for name, _module, _attr, _section, dist in view["scripts"]  # type: ignore[attr-defined]
    ]
    names += [name for name, _source in view["data_scripts"]]  # type: ignore[attr-defined]
    return names


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
    with open(fd, "wb") as f:
        f.write(data)


def _symlink(target: str, path: str) -> None:
    """``path`` -> ``target``, replacing whatever ``path`` was."""
    try:
        os.symlink(target, path)
    except FileExistsError:
        os.unlink(path)
        os.symlink(target, path)


def write_scripts(
    env: Path,
    final: Path,
    view: dict[str, object],
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
        bang = shebang(str(final / "bin" / "python"))
    data_scripts: list[list[str]] = view["data_scripts"]  # type: ignore[assignment]
    console = _console_scripts(view, interp)
    if launcher and console:
        # Read-only: an installer that writes through a script's link instead of
        # replacing it (Poetry resolves the path first) fails instead of turning
        # every script of the env into its own.
        write_file(f"{bindir}/{LAUNCHER}", _launcher_text(bang, console), 0o555)
        for name in console:
            # A script replaces what bin/ already has under its name (a relink's
            # copied scripts, a console script named "activate"), as pip does.
            _symlink(LAUNCHER, f"{bindir}/{name}")
    else:
        for name, (module, attr) in console.items():
            head = attr.split(".")[0]
            text = bang + _SCRIPT.format(module=module, head=head, attr=attr)
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


def _console_scripts(view: dict[str, object], interp: Interpreter) -> dict[str, tuple[str, str]]:
    """bin/ name -> (module, attribute) of the view's console and gui scripts; a data
    script of the same name wins, as it always did."""
    console: dict[str, tuple[str, str]] = {}
    for name, module, attr, _section, dist in view["scripts"]:  # type: ignore[attr-defined]
        # The view lists packages in the order their files win (_view.precedence).
        console.setdefault(_script_name(name, dist, interp), (module, attr))
    for name, _source in view["data_scripts"]:  # type: ignore[attr-defined]
        console.pop(name, None)
    return console


def launcher_intact(env: Path, view: dict[str, object], interp: Interpreter) -> bool:
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


def write_site(
    site: Path, view_site: Path, view: dict[str, object], *, atomic: bool = True
) -> list[str]:
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
    for name, source in view["pth"]:  # type: ignore[attr-defined]
        if name not in written:  # the first the view lists wins (_view.precedence)
            materialize_pth(name, source, site, view_site)
            written.append(name)
    return written


def write_data_links(env: Path, view: dict[str, object], interp: Interpreter) -> None:
    """Links for the entries' ``.data/data`` (share/..., etc/...) and ``.data/headers``."""
    data_dirs = [Path(p) for p in view["data"]]  # type: ignore[attr-defined]
    if data_dirs:
        # Real directories down to e.g. share/jupyter/labextensions, so a later
        # pip install can add files there without writing into the store.
        link_tree(env, data_dirs, relative=False, real_depth=3)
    headers = view["headers"]
    if headers:
        inc = env / "include" / "site" / f"python{interp.minor}"
        inc.mkdir(parents=True, exist_ok=True)
        for dist, path in headers:  # type: ignore[attr-defined]
            if not (inc / dist).exists():
                os.symlink(path, inc / dist)


def write_env(
    env: Path,
    final: Path,
    interp: Interpreter,
    view_site: Path,
    view: dict[str, object],
    *,
    command: str,
    prompt: str | None = None,
) -> None:
    """Fill the empty directory ``env`` (to be renamed to ``final``) with the environment."""
    # No include/ (uv makes none either): a directory costs a block and ~0.3 ms
    # here; write_data_links and pip make include/site/... when a wheel has headers.
    (env / "bin").mkdir()
    site = env / interp.purelib
    site.mkdir(parents=True)
    if (env / "lib").is_dir() and not (env / "lib64").exists():
        os.symlink("lib", env / "lib64")
    write_interpreter_links(env, interp, command, prompt=prompt)
    write_activation_scripts(env, interp, final, prompt or final.name)
    write_site(site, view_site, view, atomic=False)
    write_scripts(env, final, view, interp)
    write_data_links(env, view, interp)
