"""Writing a thin PEP 405 environment that points into the store.

Everything here is O(packages + scripts): the skeleton of ``python -m venv``
(pyvenv.cfg, interpreter links, activation scripts from the target's own
stdlib), one ``.pth`` line naming the view, the entries' own ``.pth`` files,
console scripts, and links for ``.data/data`` and ``.data/headers``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

from envstore._interpreters import Interpreter
from envstore._view import link_tree

__all__ = ["PTH_NAME", "write_env", "write_interpreter_links"]

# Sorts before every ordinary .pth, so the view is on sys.path before the
# entries' own .pth files (e.g. setuptools' distutils-precedence.pth) run.
PTH_NAME = "00-envstore.pth"

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


def write_interpreter_links(env: Path, interp: Interpreter, command: str) -> None:
    """(Re)write ``bin/python*`` and ``pyvenv.cfg`` for ``interp``; the only files that
    name the base interpreter, so a relink touches just these (and scripts)."""
    bindir = env / "bin"
    for name in os.listdir(bindir):
        if re.match(r"^python(\d+(\.\d+)?)?$", name):
            os.unlink(bindir / name)
    os.symlink(interp.path, bindir / "python")
    os.symlink("python", bindir / "python3")
    os.symlink("python", bindir / f"python{interp.minor}")
    cfg = (
        f"home = {os.path.dirname(interp.path)}\n"
        "include-system-site-packages = false\n"
        f"version = {interp.version}\n"
        f"executable = {interp.resolved}\n"
        f"command = {command}\n"
        "envstore = 1\n"
    )
    tmp = env / ".pyvenv.cfg.tmp"
    tmp.write_text(cfg)
    os.replace(tmp, env / "pyvenv.cfg")


def _activation_scripts(env: Path, interp: Interpreter, final: Path, prompt: str) -> None:
    scripts = Path(interp.stdlib) / "venv" / "scripts"
    for sub in ("common", "posix"):
        d = scripts / sub
        if not d.is_dir():
            continue
        for name in os.listdir(d):
            src = d / name
            if not src.is_file():
                continue
            text = src.read_text(encoding="utf-8")
            # 3.9-3.12 templates expect "(name) " for the prompt, 3.13+ add the parentheses.
            shown = prompt if "(__VENV_PROMPT__)" in text else f"({prompt}) "
            text = (
                text.replace("__VENV_DIR__", str(final))
                .replace("__VENV_NAME__", final.name)
                .replace("__VENV_PROMPT__", shown)
                .replace("__VENV_BIN_NAME__", "bin")
                .replace("__VENV_PYTHON__", str(final / "bin" / "python"))
            )
            (env / "bin" / name).write_text(text, encoding="utf-8")


def _materialize_pth(name: str, source: str, site: Path, view_site: Path) -> None:
    """Copy an entry's .pth so it acts as if its entry were installed in site-packages:
    relative path lines and ``sitedir`` (used by legacy *-nspkg.pth) mean the view."""
    lines = []
    for line in Path(source).read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith(("import ", "import\t")):
            line = line.replace("sys._getframe(1).f_locals['sitedir']", repr(str(view_site)))
        elif stripped and not stripped.startswith("#") and not os.path.isabs(stripped):
            line = str(view_site / stripped)
        lines.append(line)
    (site / name).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _script_name(name: str, dist: str, interp: Interpreter) -> str:
    # pip and setuptools name versioned scripts after the python that built the
    # wheel (pip3.11 in pip's wheel); an installer renames them for the target.
    if dist == "pip" and re.match(r"^pip\d+\.\d+$", name):
        return f"pip{interp.minor}"
    if dist == "setuptools" and re.match(r"^easy_install-\d+\.\d+$", name):
        return f"easy_install-{interp.minor}"
    return name


def write_scripts(env: Path, final: Path, view: dict[str, object], interp: Interpreter) -> None:
    bindir = env / "bin"
    bang = shebang(str(final / "bin" / "python"))
    for name, module, attr, _section, dist in view["scripts"]:  # type: ignore[attr-defined]
        head = attr.split(".")[0]
        path = bindir / _script_name(name, dist, interp)
        path.write_text(bang + _SCRIPT.format(module=module, head=head, attr=attr))
        os.chmod(path, 0o755)
    for name, source in view["data_scripts"]:  # type: ignore[attr-defined]
        data = Path(source).read_bytes()
        if data.startswith(b"#!python"):
            data = bang.encode() + data.split(b"\n", 1)[1] if b"\n" in data else bang.encode()
        path = bindir / name
        path.write_bytes(data)
        os.chmod(path, 0o755)


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
    (env / "bin").mkdir()
    (env / "include").mkdir()
    site = env / interp.purelib
    site.mkdir(parents=True)
    if (env / "lib").is_dir() and not (env / "lib64").exists():
        os.symlink("lib", env / "lib64")
    write_interpreter_links(env, interp, command)
    _activation_scripts(env, interp, final, prompt or final.name)
    (site / PTH_NAME).write_text(f"{view_site}\n")
    for name, source in view["pth"]:  # type: ignore[attr-defined]
        if name != PTH_NAME:
            _materialize_pth(name, source, site, view_site)
    write_scripts(env, final, view, interp)
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


def read_view(view_path: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((view_path / "view.json").read_text())
    return data
