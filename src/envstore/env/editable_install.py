"""Installing a project's editable wheel (PEP 660) into an env's own site-packages.

The wheel is the project's, built by its backend (``envstore.env.editable``); it
holds a ``.pth`` or an import hook naming the project's source, and a dist-info.
It is installed with pypa/installer as pip would install it, plus the
``direct_url.json`` of PEP 610 (``dir_info.editable``), so ``pip freeze`` shows
``-e file:///...``. Nothing of it goes into the store: it lives and dies with the
env (and moves with ``site-packages`` on a relink).
"""

from __future__ import annotations

import json
from pathlib import Path

from envstore.errors import BuildError
from envstore.model.interpreter import Interpreter

__all__ = ["PreparedEditable", "install_editable"]


class PreparedEditable:
    """A project ready to install editable: its directory, the extras asked for, the
    (cached) editable wheel, and its name, version and the requirements it adds for
    the target interpreter (a plain class: see EntryKey)."""

    __slots__ = ("extras", "name", "path", "requirements", "stamp", "version", "wheel")

    def __init__(
        self,
        path: Path,
        extras: tuple[str, ...],
        wheel: Path,
        name: str,
        version: str,
        requirements: list[str],
        stamp: str = "",
    ) -> None:
        self.stamp = stamp  # the project's, interpreter left out: see project_stamp
        self.path = path
        self.extras = extras
        self.wheel = wheel
        self.name = name
        self.version = version
        self.requirements = requirements

    def __repr__(self) -> str:
        return f"PreparedEditable({self.name!r}, {str(self.path)!r})"


def install_editable(
    env: Path, final: Path, interp: Interpreter, editable: PreparedEditable
) -> None:
    """Install ``editable`` into ``env`` (a new env's directory, to be renamed to
    ``final``): files into its site-packages, scripts into ``bin/`` naming
    ``final/bin/python``. A file that is already there (envstore's own ``.pth``, the
    launcher, a script of a store package) is an error, never overwritten."""
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
    direct_url = {"url": editable.path.as_uri(), "dir_info": {"editable": True}}
    metadata = {
        "INSTALLER": b"envstore\n",
        "REQUESTED": b"",
        "direct_url.json": json.dumps(direct_url, sort_keys=True).encode(),
    }
    try:
        with WheelFile.open(editable.wheel) as source:
            install(source, destination, metadata)
    except FileExistsError as exc:
        raise BuildError(
            f"the editable wheel of {editable.path} would replace {exc.filename or exc},"
            " which the env already has; nothing was changed"
        ) from None
    except (OSError, ValueError, InstallerError) as exc:
        raise BuildError(f"cannot install the editable wheel {editable.wheel}: {exc}") from None
