"""Installing a project's editable wheel (PEP 660) into an env's own site-packages.

The wheel is the project's, built by its backend (``envstore.env.editable``); it
holds a ``.pth`` or an import hook naming the project's source, and a dist-info.
It is installed as pip would install it, plus the ``direct_url.json`` of PEP 610
(``dir_info.editable``), so ``pip freeze`` shows ``-e file:///...``. A wheel of plain
files (what backends build: a ``.pth`` or an import hook, and the dist-info) is
written by envstore from the files its cache holds (``env.editable``), with bare
``os`` calls; anything else (``.data`` directories) by pypa/installer.
Nothing of it goes into the store: it lives and dies with the env (and moves with
``site-packages`` on a relink).
"""

from __future__ import annotations

import json
import os
import re
from binascii import b2a_base64
from pathlib import Path

from envstore.env.scripts import console_script
from envstore.env.venv import shebang, write_all
from envstore.errors import BuildError
from envstore.model.interpreter import Interpreter
from envstore.store.hashing import sha256

__all__ = ["PreparedEditable", "install_editable"]

_SCRIPT = r"[A-Za-z0-9_][A-Za-z0-9._+-]*"
# What pypa/installer writes under a script's shebang (the same file either way).
_CODING = "# -*- coding: utf-8 -*-\n"
# What a script's import line may name: dotted identifiers, nothing else (the text
# goes into Python source).
_DOTTED = r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*"


class PreparedEditable:
    """A project ready to install editable: its directory, the extras asked for, the
    (cached) editable wheel, and its name, version and the requirements it adds for
    the target interpreter (a plain class: see EntryKey)."""

    __slots__ = ("extras", "files", "name", "path", "requirements", "stamp", "version", "wheel")

    def __init__(
        self,
        path: Path,
        extras: tuple[str, ...],
        wheel: Path,
        name: str,
        version: str,
        requirements: list[str],
        stamp: str = "",
        files: dict[str, bytes] | None = None,
    ) -> None:
        self.files = files  # the wheel's files (RECORD left out) when all are plain
        self.stamp = stamp  # the project's, interpreter left out: see project_stamp
        self.path = path
        self.extras = extras
        self.wheel = wheel
        self.name = name
        self.version = version
        self.requirements = requirements

    def __repr__(self) -> str:
        return f"PreparedEditable({self.name!r}, {str(self.path)!r})"

    def scripts(self) -> list[str]:
        """The names of the console scripts it installs into ``bin/`` (known when its
        files are)."""
        if self.files is None:
            return []
        infos = [n for n in self.files if n.endswith(".dist-info/entry_points.txt")]
        return [name for info in infos for name, _target in _entry_points(self.files[info])]


def install_editable(
    env: Path, final: Path, interp: Interpreter, editable: PreparedEditable
) -> None:
    """Install ``editable`` into ``env`` (a new env's directory, to be renamed to
    ``final``): files into its site-packages, scripts into ``bin/`` naming
    ``final/bin/python``. A file that is already there (envstore's own ``.pth``, the
    launcher, a script of a store package) is an error, never overwritten."""
    if editable.files is not None:
        _install_files(env, final, interp, editable, editable.files)
        return
    from installer import install
    from installer.destinations import SchemeDictionaryDestination
    from installer.exceptions import InstallerError
    from installer.sources import WheelFile

    site = env / interp.purelib
    scheme = {
        "purelib": str(site),
        "platlib": str(site),
        "headers": str(env / "include" / "site" / f"python{interp.minor}" / editable.name),
        "scripts": str(env / "bin"),
        "data": str(env),
    }
    destination = SchemeDictionaryDestination(
        scheme,
        interpreter=str(final / "bin" / "python"),
        script_kind="posix",
        bytecode_optimization_levels=(),
    )
    try:
        with WheelFile.open(editable.wheel) as source:
            install(source, destination, _metadata(editable))
    except FileExistsError as exc:
        raise BuildError(
            f"the editable wheel of {editable.path} would replace {exc.filename or exc},"
            " which the env already has; nothing was changed"
        ) from None
    except (OSError, ValueError, InstallerError) as exc:
        raise BuildError(f"cannot install the editable wheel {editable.wheel}: {exc}") from None


def _metadata(editable: PreparedEditable) -> dict[str, bytes]:
    """The files an installer adds to the dist-info (PEP 376, PEP 610)."""
    direct_url = {"url": editable.path.as_uri(), "dir_info": {"editable": True}}
    return {
        "INSTALLER": b"envstore\n",
        "REQUESTED": b"",
        "direct_url.json": json.dumps(direct_url, sort_keys=True).encode(),
    }


def _install_files(
    env: Path, final: Path, interp: Interpreter, editable: PreparedEditable, files: dict[str, bytes]
) -> None:
    """What pypa/installer does for a wheel of plain files, with ``os`` calls: each
    file into site-packages, the dist-info's installer files, console scripts naming
    ``final/bin/python``, and a RECORD listing all of them (for ``pip uninstall``)."""
    site = f"{env}/{interp.purelib}"
    made: set[str] = set()  # directories made already (the dist-info): one mkdir each
    for in_bin, name, data, mode in _planned(final, interp, editable, files):
        if in_bin:
            _create(f"{env}/bin", name, data, mode, editable)
        else:
            _create(site, name, data, mode, editable, made)


# The files _install_files writes, by the files dict (the editable cache's, kept per
# process while its wheel.json is the same file: editable_meta) and what else decides
# them; each plan holds its dict, so the id names no other while it is here. Hashing
# the RECORD rows and parsing entry_points.txt again cost ~40 us a warm sync.
_PLANS: dict[tuple[object, ...], tuple[dict[str, bytes], list[tuple[bool, str, bytes, int]]]] = {}


def _planned(
    final: Path, interp: Interpreter, editable: PreparedEditable, files: dict[str, bytes]
) -> list[tuple[bool, str, bytes, int]]:
    key = (id(files), str(final), interp.purelib, str(editable.path), str(editable.wheel))
    known = _PLANS.get(key)
    if known is not None and known[0] is files:
        return known[1]
    plan = _plan(final, interp, editable, files)
    if len(_PLANS) >= 64:  # bounded: a process syncing many projects
        _PLANS.clear()
    _PLANS[key] = (files, plan)
    return plan


def _plan(
    final: Path, interp: Interpreter, editable: PreparedEditable, files: dict[str, bytes]
) -> list[tuple[bool, str, bytes, int]]:
    """(in bin/, else site-packages; name; bytes; mode) of each file to write."""
    dist_infos = {n.split("/", 1)[0] for n in files if n.split("/", 1)[0].endswith(".dist-info")}
    if len(dist_infos) != 1:
        raise BuildError(f"the editable wheel {editable.wheel} has no one .dist-info directory")
    dist_info = dist_infos.pop()
    todo = dict(files)
    for name, data in _metadata(editable).items():
        todo[f"{dist_info}/{name}"] = data
    plan = [(False, name, data, 0o644) for name, data in todo.items()]
    rows = [_row(name, data) for name, data in todo.items()]
    bang = shebang(f"{final}/bin/python")
    up = "../" * len(interp.purelib.split("/")) + "bin"  # from site-packages (lib/pythonX.Y/...)
    for script, (module, attr) in _entry_points(files.get(f"{dist_info}/entry_points.txt")):
        data = (bang + _CODING + console_script(module, attr)).encode()
        plan.append((True, script, data, 0o755))
        rows.append(_row(f"{up}/{script}", data))
    rows.append(f"{dist_info}/RECORD,,\n")
    plan.append((False, f"{dist_info}/RECORD", "".join(rows).encode(), 0o644))
    return plan


def _create(
    root: str,
    name: str,
    data: bytes,
    mode: int,
    editable: PreparedEditable,
    made: set[str] | None = None,
) -> None:
    """``root/name`` made new (its directories too, unless in ``made``, which gets
    them): a file already there is an error, and no link is followed (``name`` was
    checked to be a plain relative path)."""
    path = f"{root}/{name}"
    parent = os.path.dirname(path)
    if parent != root and (made is None or parent not in made):
        try:  # the dist-info, in site-packages: one mkdir (makedirs stats its parent)
            os.mkdir(parent)
        except FileNotFoundError:
            os.makedirs(parent, exist_ok=True)
        except FileExistsError:
            if not os.path.isdir(parent):
                raise
        if made is not None:
            made.add(parent)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError:
        raise BuildError(
            f"the editable wheel of {editable.path} would replace {path}, which the env"
            " already has; nothing was changed"
        ) from None
    write_all(fd, data)


def _row(name: str, data: bytes) -> str:
    """A RECORD row: path, ``sha256=`` urlsafe base64 digest without padding, size."""
    digest = b2a_base64(sha256(data).digest(), newline=False).decode()
    digest = digest.rstrip("=").replace("+", "-").replace("/", "_")
    quoted = f'"{name}"' if "," in name or '"' in name else name
    return f"{quoted},sha256={digest},{len(data)}\n"


def _entry_points(text: bytes | None) -> list[tuple[str, tuple[str, str]]]:
    """The console and gui scripts of an ``entry_points.txt``: name -> (module, attr)."""
    if not text:
        return []
    out = []
    section = ""
    for raw in text.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        if section not in ("console_scripts", "gui_scripts") or "=" not in line:
            continue
        name, _, value = (p.strip() for p in line.partition("="))
        module, _, attr = value.partition(":")
        module, attr = module.strip(), attr.split("[", 1)[0].strip()
        if not (
            re.fullmatch(_SCRIPT, name)
            and re.fullmatch(_DOTTED, module)
            and re.fullmatch(_DOTTED, attr)
        ):
            raise BuildError(f"entry point {line!r} is not a valid console script")
        out.append((name, (module, attr)))
    return out
