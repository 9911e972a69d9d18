"""What pip, uv or another installer put into an env's own ``site-packages``.

An envstore env's packages come from the store through one ``.pth`` line; whatever
``E/bin/pip install`` or ``uv pip install --python E/bin/python`` adds lands in the
env's ``site-packages`` as an ordinary installed distribution (a ``*.dist-info``
directory). Those are part of the env's state: ``show``, ``list`` and ``lock`` list
them, ``sync`` names them when it drops them, and doctor reports the ones that
duplicate a store package (uv looks only in ``site-packages``, so it installs again
what the store already serves) and the console scripts an install/uninstall cycle
took away.

``site-packages`` is the user's (and any tool's) to write, so everything read here
is untrusted data: a dist-info counts only if it is a real directory (not a link)
whose name parses as ``name-version.dist-info`` with a valid version; its small
files are opened without following links, must be regular files, and are read up
to a bound; what they say is validated before it is shown or used.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from envstore.model.interpreter import Interpreter
from envstore.model.keys import canonical_name
from envstore.model.manifest import Manifest
from envstore.store.fs import read_small

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from envstore.model.records import ViewRecord

__all__ = [
    "SiteDist",
    "duplicates",
    "foreign_dists",
    "missing_scripts",
    "site_dists",
]

# A dist-info directory as installers name it: the name with runs of -_. as "_"
# (older pip kept "." and case), then the version, which holds no "-".
_DIST_INFO = (
    r"^(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._]*[A-Za-z0-9])?)"
    r"-(?P<version>[A-Za-z0-9.!+_]+)\.dist-info$"
)
_INSTALLER = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$"
RECORD_LIMIT = 16 * 1024 * 1024


class SiteDist:
    """A distribution installed into an env's own site-packages (not from the store).
    A plain class: ``dataclasses`` (with ``inspect``) would cost ``envstore sync`` in a
    project ~12 ms to import (tests/test_import_budget.py)."""

    __slots__ = ("dist_info", "editable", "installer", "name", "requested", "version")

    def __init__(
        self,
        name: str,  # PEP 503 normalized
        version: str,
        installer: str,  # INSTALLER's line ("pip", "uv"); "" when absent or not a plain word
        dist_info: str,  # its directory's name in site-packages
        editable: str = "",  # the project's URL when installed editable (PEP 610), else ""
        requested: bool = False,  # installed by name (REQUESTED), not as a dependency
    ) -> None:
        self.name = name
        self.version = version
        self.installer = installer
        self.dist_info = dist_info
        self.editable = editable
        self.requested = requested

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SiteDist) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash((self.name, self.version, self.dist_info))

    def __repr__(self) -> str:
        return f"SiteDist({self.name!r}, {self.version!r}, {self.installer!r})"

    @property
    def by(self) -> str:
        """``pip``, ``uv``, ... or ``an unknown installer``, for messages."""
        return self.installer or "an unknown installer"

    def describe(self) -> str:
        """``name version (installed by pip[, editable: URL])``."""
        editable = f", editable: {self.editable}" if self.editable else ""
        return f"{self.name} {self.version} (installed by {self.by}{editable})"

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "version": self.version,
            "installer": self.installer,
            "dist_info": self.dist_info,
            "editable": self.editable,
            "requested": self.requested,
        }


def _installer(info: Path) -> str:
    raw = read_small(info / "INSTALLER")
    if raw is None:
        return ""
    line = raw.decode("utf-8", "replace").strip().split("\n", 1)[0].strip()
    return line if re.match(_INSTALLER, line) else ""


def _editable_url(info: Path) -> str:
    """The URL of ``direct_url.json`` when it says ``dir_info.editable``, else ""."""
    raw = read_small(info / "direct_url.json")
    if raw is None:
        return ""
    import json

    try:
        data = json.loads(raw)
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    dir_info, url = data.get("dir_info"), data.get("url")
    if not (isinstance(dir_info, dict) and dir_info.get("editable") is True):
        return ""
    if not isinstance(url, str) or not url.isprintable() or len(url) > 4096:
        return "?"  # editable, but the URL is not fit to print
    return url


def site_dists(site: Path) -> list[SiteDist]:
    """Every distribution installed into ``site`` (an env's site-packages), by name.

    Only real directories directly in ``site`` count; a ``site`` that is not itself
    a real directory has none (the env's own directories must be directories)."""
    try:
        if not stat.S_ISDIR(os.lstat(site).st_mode):
            return []
        names = sorted(os.listdir(site))
    except OSError:
        return []
    found = []
    for entry in names:
        m = re.match(_DIST_INFO, entry)
        if m is None:
            continue
        info = site / entry
        try:
            if not stat.S_ISDIR(os.lstat(info).st_mode):
                continue
        except OSError:
            continue
        installer = _installer(info)
        # envstore's own editables were checked when installed; packaging is imported
        # only for what another installer wrote (a project sync has only the former).
        if installer != "envstore" and not _valid_version(m["version"]):
            continue
        found.append(
            SiteDist(
                canonical_name(m["name"]),
                m["version"],
                installer,
                entry,
                _editable_url(info),
                os.path.lexists(info / "REQUESTED"),
            )
        )
    return found


def _valid_version(text: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        Version(text)
    except InvalidVersion:
        return False
    return True


def foreign_dists(env: Path, manifest: Manifest) -> list[SiteDist]:
    """What another installer (pip, uv, ...) put into the env's site-packages: every
    dist-info there but those of the editable projects envstore itself installed."""
    ours = {(canonical_name(e.name), e.version) for e in manifest.editables}
    return [
        d
        for d in site_dists(env / manifest.python.purelib)
        if not (d.installer == "envstore" and (d.name, d.version) in ours)
        # site_dists left the version of what says envstore installed it unchecked
        and (d.installer != "envstore" or _valid_version(d.version))
    ]


def duplicates(found: list[SiteDist], manifest: Manifest) -> list[SiteDist]:
    """Those of ``found`` that are the very name and version a store package of the env
    already provides (what uv, which looks only in site-packages, installs again)."""
    ours = {(p.name, p.version) for p in manifest.packages}
    return [d for d in found if (d.name, d.version) in ours and not d.editable]


def missing_scripts(env: Path, view: ViewRecord, interp: Interpreter) -> list[str]:
    """The console and data scripts of the env's store packages that ``bin/`` lacks:
    a ``pip install OTHER-VERSION`` replaces a script, and the ``pip uninstall`` that
    follows deletes it, while the store's package stays importable."""
    from envstore.env.scripts import script_names

    bindir = env / "bin"
    return sorted({n for n in script_names(view, interp) if not os.path.lexists(bindir / n)})
