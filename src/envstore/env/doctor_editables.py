"""``envstore doctor`` on an env's editable projects (PEP 660): the project directory
gone (its imports and scripts fail), or changed since its editable wheel was built
(the env's view of its dependencies, version and scripts may be out of date).

Only reads: the manifest, the project's cache-key files and pyvenv.cfg's recorded
command (which the fixes are made from).
"""

from __future__ import annotations

import shlex
from pathlib import Path

from envstore.env.doctor_checks import BROKEN, NOTE, Problem
from envstore.env.editable import project_stamp
from envstore.env.venv import read_pyvenv_cfg
from envstore.model.manifest import EditablePackage, Manifest

__all__ = ["check_editables"]


def check_editables(env: Path, manifest: Manifest) -> list[Problem]:
    """Every editable project that is gone or changed; one problem each."""
    problems = []
    for e in manifest.editables:
        path = Path(e.path)
        if not any((path / k).is_file() for k in ("pyproject.toml", "setup.py")):
            fix = _recreate(env, drop=e)
            problems.append(
                Problem(
                    "editable-missing",
                    BROKEN,
                    f"{e.name} is installed editable from {path}, which is gone (or holds no"
                    f" pyproject.toml or setup.py): importing it and its scripts fail",
                    fix,
                    f"put the project back at {path}, or re-create the env"
                    + (" without it (add -e NEW_PATH if it moved)" if fix else ""),
                )
            )
        elif e.stamp and project_stamp(path) != e.stamp:
            own = env == path / ".venv"
            problems.append(
                Problem(
                    "editable-changed",
                    NOTE,
                    f"{path} changed (pyproject.toml, setup.py or setup.cfg) since the"
                    f" editable wheel of {e.name} was built: its dependencies, version and"
                    " scripts in the env may be out of date (source edits need nothing)",
                    shlex.join(["envstore", "sync", "--project", str(path)])
                    if own
                    else _recreate(env),
                    "envstore sync (with the options it was synced with), or create -U,"
                    " rebuilds the editable wheel",
                )
            )
    return problems


def _recreate(env: Path, drop: EditablePackage | None = None) -> str:
    """The env's recorded ``envstore create`` command with ``--clear`` (and without
    ``-e`` of ``drop``); "" if pyvenv.cfg records no such command."""
    try:
        words = shlex.split(read_pyvenv_cfg(env).get("command", ""))
    except ValueError:
        return ""
    if words[:2] != ["envstore", "create"] or len(words) < 3:
        return ""
    out = [*words[:3], "--clear"]
    rest = iter(words[3:])
    for word in rest:
        if word == "--clear":
            continue
        if word == "-e" and drop is not None:
            target = next(rest, "")
            if target.split("[", 1)[0] == drop.path:
                continue
            out += [word, target]
            continue
        out.append(word)
    return shlex.join(out)
