"""Activation scripts, from the interpreter's own venv templates, relocatable,
with a check that the base interpreter is still there.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from envstore.env.venv import home_stdlib, venv_home, write_file
from envstore.model.interpreter import Interpreter

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from collections.abc import Callable


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


def _stdlib_landmark(
    interp: Interpreter, home: str | None = None, stdlib: str | None = None
) -> str:
    """The ``os.py`` of the stdlib that pyvenv.cfg's home (``home``, if the caller has
    it) leads to: gone when a relocatable install behind a link is replaced by a new
    patch release (bin/python still runs, then dies). ``stdlib``: the one found from
    ``home`` (``venv_home_stdlib``), when the caller has it: not searched again."""
    if stdlib is None:
        sub = os.path.join(*Path(interp.stdlib).parts[-2:])  # lib/python3.12
        stdlib = home_stdlib(home or venv_home(interp), sub)
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
# The scripts as written, by everything they are made from (a warm process, as tox or
# an IDE, makes the same env again and again): rendering them costs ~0.3 ms an env.
_RENDERED: dict[tuple[object, ...], list[tuple[str, bytes]]] = {}


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
    if script.endswith(".csh") and inside_quotes:
        # csh cannot escape "$" inside double quotes: close them, single-quote the
        # character, open them again ("a"'$'"b").
        table = str.maketrans({c: f"\"'{c}'\"" for c in '$`"'})
        return lambda s: s.translate(table)
    if script.endswith(".bat") and inside_quotes:
        return str
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
    home: str | None = None,
    stdlib: str | None = None,
) -> None:
    """``bin/activate*`` from the interpreter's own venv templates, plus the check above
    (``check``). ``relocatable``: bash/zsh and fish find the env from the script's own
    location (csh keeps the absolute path; Activate.ps1 always finds it itself).
    ``home``, ``stdlib``: ``venv_home_stdlib(interp)``, when the caller has them."""
    landmark = _stdlib_landmark(interp, home, stdlib if home else None) if check else ""
    key: tuple[object, ...] = (interp.stdlib, interp.minor, interp.version, interp.path)
    key += (str(final), prompt, landmark, check, relocatable)
    scripts = _RENDERED.get(key)
    if scripts is None:
        scripts = _render(interp, final, prompt, landmark, check, relocatable)
        if len(_RENDERED) >= 64:  # a process making many envs: bounded
            _RENDERED.clear()
        _RENDERED[key] = scripts
    for name, data in scripts:
        write_file(f"{env}/bin/{name}", data)


def _render(
    interp: Interpreter, final: Path, prompt: str, landmark: str, check: bool, relocatable: bool
) -> list[tuple[str, bytes]]:
    """The activation scripts' names and bytes (see write_activation_scripts)."""
    # 3.9-3.12 templates expect "(name) " for the prompt, 3.13+ add the parentheses.
    shown = prompt if tuple(map(int, interp.minor.split("."))) >= (3, 13) else f"({prompt}) "
    values = {
        "__VENV_DIR__": str(final),
        "__VENV_NAME__": final.name,
        "__VENV_PROMPT__": shown,
        "__VENV_BIN_NAME__": "bin",
        "__VENV_PYTHON__": f"{final}/bin/python",
    }
    scripts = []
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
        scripts.append((name, (parts[0] + block + parts[1]).encode()))
    return scripts
