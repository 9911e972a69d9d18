"""What the tox and Hatch plugins share: where packages come from, read from the
``PIP_*`` variables those tools' users set, and installing the project's own
wheel into an env's own site-packages (never the store: every rebuild of a
project is a new wheel, and a store entry per build would only grow the store).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from envstore.errors import BuildError
from envstore.model.sources import PackageSources

__all__ = ["env_fingerprint", "install_wheel", "purelib", "sources_from_env", "wheel_digest"]

_TRUE = {"1", "true", "yes", "on", "y"}


def sources_from_env(env: Mapping[str, str], options: Sequence[str] = ()) -> PackageSources:
    """The index settings pip would take from ``env``: ``PIP_INDEX_URL``,
    ``PIP_EXTRA_INDEX_URL``, ``PIP_FIND_LINKS`` (both whitespace-separated lists, as
    pip reads them) and ``PIP_NO_INDEX``; ``options`` (``--index-url URL``,
    ``-f DIR``, ``--no-index``, ... from a deps list) add to them or replace them."""
    find_links = env.get("PIP_FIND_LINKS", "").split()
    index_url = env.get("PIP_INDEX_URL") or None
    extra = env.get("PIP_EXTRA_INDEX_URL", "").split()
    no_index = env.get("PIP_NO_INDEX", "").strip().lower() in _TRUE
    for option in options:
        flag, _, value = option.replace("=", " ", 1).partition(" ")
        value = value.strip()
        if flag in {"-i", "--index-url"}:
            index_url = value
        elif flag == "--extra-index-url":
            extra.append(value)
        elif flag in {"-f", "--find-links"}:
            find_links.append(value)
        elif flag == "--no-index":
            no_index = True
    return PackageSources(
        find_links=find_links, index_url=index_url, extra_index_urls=extra, no_index=no_index
    )


def purelib(venv: Path) -> Path:
    """The site-packages of the env at ``venv`` (``lib/pythonX.Y/site-packages``)."""
    found = sorted(venv.glob("lib/*/site-packages"))
    if len(found) != 1:
        raise BuildError(f"{venv} has no single lib/*/site-packages; recreate the environment")
    return found[0]


def install_wheel(venv: Path, wheel: Path, *, editable_of: Path | None = None) -> None:
    """Install ``wheel`` into ``venv``'s own site-packages and ``bin/`` as pip would
    (scripts naming ``venv/bin/python``), ``direct_url.json`` saying where it came
    from (PEP 610; ``editable_of``: the project directory of an editable wheel).

    The env must not have the distribution yet: callers sync the env first, which
    makes its site-packages anew."""
    from installer import install
    from installer.destinations import SchemeDictionaryDestination
    from installer.exceptions import InstallerError
    from installer.sources import WheelFile

    site = purelib(venv)
    scheme = {
        "purelib": str(site),
        "platlib": str(site),
        "headers": str(venv / "include" / "site" / site.parent.name / wheel.name.split("-")[0]),
        "scripts": str(venv / "bin"),
        "data": str(venv),
    }
    destination = SchemeDictionaryDestination(
        scheme,
        interpreter=str(venv / "bin" / "python"),
        script_kind="posix",
        bytecode_optimization_levels=(),
    )
    if editable_of is not None:
        direct_url: dict[str, object] = {
            "url": editable_of.resolve().as_uri(),
            "dir_info": {"editable": True},
        }
    else:
        direct_url = {"url": wheel.resolve().as_uri(), "archive_info": {}}
    metadata = {
        "INSTALLER": b"envstore\n",
        "REQUESTED": b"",
        "direct_url.json": json.dumps(direct_url, sort_keys=True).encode(),
    }
    try:
        with WheelFile.open(wheel) as source:
            install(source, destination, metadata)
    except FileExistsError as exc:
        raise BuildError(
            f"installing {wheel.name} into {venv} would replace {exc.filename or exc};"
            " recreate the environment"
        ) from None
    except (OSError, ValueError, InstallerError) as exc:
        raise BuildError(f"cannot install {wheel} into {venv}: {exc}") from None


def wheel_digest(wheel: Path) -> str | None:
    """A digest of what ``wheel`` installs: its name and its RECORD, which names every
    file with its hash (a rebuild of unchanged sources has the same one, though the
    archive's timestamps differ); None when it has no single RECORD."""
    import hashlib
    import zipfile

    try:
        with zipfile.ZipFile(wheel) as zf:
            records = [n for n in zf.namelist() if n.count("/") == 1]
            records = [n for n in records if n.endswith(".dist-info/RECORD")]
            if len(records) != 1:
                return None
            data = zf.read(records[0])
    except (OSError, zipfile.BadZipFile):
        return None
    return f"{wheel.name}:{hashlib.sha256(data).hexdigest()}"


def env_fingerprint(venv: Path) -> str | None:
    """What changes when anything is installed into or removed from the env at
    ``venv``, by envstore or behind its back: its manifest's bytes and the names in
    its site-packages and ``bin/`` (envstore.env.unchanged's test, seen from outside)."""
    import hashlib

    from envstore.model.manifest import MANIFEST_NAME

    digest = hashlib.sha256()
    try:
        digest.update((venv / MANIFEST_NAME).read_bytes())
        for where in (purelib(venv), venv / "bin"):
            digest.update("\0".join(sorted(os.listdir(where))).encode(errors="surrogateescape"))
    except (OSError, BuildError):
        return None
    return digest.hexdigest()
