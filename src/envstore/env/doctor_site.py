"""``envstore doctor`` on what pip or uv changed in an env: store packages that a
later install put into ``site-packages`` as well (another version shadows the
store's; the same version, as uv installs it, only duplicates it), and console
scripts of the store's packages that an install/uninstall cycle deleted.

Only reads: the manifest, the view and the env's ``site-packages`` and ``bin/``
(through ``envstore.env.pipstate``, which treats them as untrusted).
"""

from __future__ import annotations

import shlex
from pathlib import Path

from envstore.env.doctor_checks import WARNING, Problem, relink_cmd
from envstore.env.pipstate import SiteDist, duplicates, foreign_dists, missing_scripts
from envstore.errors import StoreError
from envstore.model.manifest import Manifest
from envstore.store.layout import Store

__all__ = ["check_site", "uninstall_cmd"]


def uninstall_cmd(env: Path, manifest: Manifest, dists: list[SiteDist]) -> str:
    """The one command that removes ``dists`` from the env's site-packages (and only
    there): uv's when uv installed them all or the env has no pip (uv looks nowhere
    else), else the env's pip (which takes the site-packages copy first)."""
    names = sorted({d.name for d in dists})
    python = str(env / "bin" / "python")
    has_pip = any(p.name == "pip" for p in manifest.packages) or any(
        d.name == "pip" for d in foreign_dists(env, manifest)
    )
    if all(d.installer == "uv" for d in dists) or not has_pip:
        return shlex.join(["uv", "pip", "uninstall", "--python", python, *names])
    return shlex.join([python, "-m", "pip", "uninstall", "-y", *names])


def check_site(env: Path, manifest: Manifest, store: Store) -> list[Problem]:
    """Shadowed and duplicated store packages, and missing console scripts."""
    found = foreign_dists(env, manifest)
    ours = {p.name: p for p in manifest.packages}
    dupes = duplicates(found, manifest)
    problems = []
    for d in found:
        pkg = ours.get(d.name)
        if pkg is None or d in dupes:
            continue
        problems.append(
            Problem(
                "shadowed",
                WARNING,
                f"{d.describe()} in site-packages shadows the store's {d.name} {pkg.version}",
                uninstall_cmd(env, manifest, [d]),
                f"goes back to the store's {d.name} {pkg.version}; keep it if you meant it",
            )
        )
    if dupes:
        problems.append(
            Problem(
                "duplicate",
                WARNING,
                "installed into site-packages again although the env's store packages"
                " provide the very same versions (uv looks only in site-packages): "
                + ", ".join(d.describe() for d in dupes),
                uninstall_cmd(env, manifest, dupes),
                "removes the copies (the store's stay, and are what imports find next);"
                f" then {relink_cmd(env)} restores console scripts the copies replaced",
            )
        )
    problems += _check_scripts(env, manifest, store)
    return problems


def _check_scripts(env: Path, manifest: Manifest, store: Store) -> list[Problem]:
    from envstore.store.views import read_view

    if manifest.env != str(env):
        return []  # moved: check_files says relink, which writes every script anyway
    try:
        view = read_view(store.view_path(manifest.view))
    except (OSError, ValueError, StoreError):
        return []  # check_files reports the view
    missing = missing_scripts(env, view, manifest.python)
    if not missing:
        return []
    return [
        Problem(
            "scripts-missing",
            WARNING,
            "console scripts of the env's packages are missing from bin/ (a pip install"
            " of another version replaced them and the pip uninstall after it deleted"
            " them): " + ", ".join(missing),
            relink_cmd(env),
            "writes them again",
        )
    ]
