"""Where an env's packages built from source came from, for its lock: the sdist, source
archive, VCS commit or project directory one of its requirements names.

The store keeps no record of it (``entry.json`` names the wheel pip built, in the
store's ``wheels/``); what is known without a format change:

* a local sdist, archive or project directory (a path, or a ``file:`` URL) the
  resolution cache says was built into the very entry the env has, with the place's
  stamp unchanged since (an archive's size, mtime and inode; a project's
  ``pyproject.toml``...: ``envstore.resolve.stamps``): its sha256 is taken now;
* ``name @ git+URL@COMMIT`` with a full commit (the env has ``name``: pip built it
  from that commit, which cannot change);
* ``name @ https://.../FILE.tar.gz#sha256=HEX``: the URL and the hash it carries.

A branch or tag of a repository, an archive URL without a hash or a place changed
since leave the package unknown: ``envstore lock`` names it with the fix.
"""

from __future__ import annotations

import os
from pathlib import Path

from envstore.model.keys import canonical_name
from envstore.model.lock import LockedDirectory, LockedPackage
from envstore.model.lock_records import FULL_COMMIT, SHA256, relative_parts
from envstore.model.manifest import Manifest
from envstore.store.layout import Store

__all__ = ["built_sources"]


def built_sources(st: Store, manifest: Manifest) -> dict[str, LockedPackage | LockedDirectory]:
    """{name: where it was built from} for the env's packages whose source one of the
    manifest's requirements names, as far as it is known (see the module docstring)."""
    from envstore.resolve.cache import built_entry
    from envstore.resolve.forms import classify, direct_name, local_path
    from envstore.resolve.lines import ARCHIVES

    have = {p.name: p for p in manifest.packages}
    found: dict[str, LockedPackage | LockedDirectory] = {}
    for line in manifest.requirements:
        if line.startswith("-"):  # -r FILE, -c FILE: their lines are not followed
            continue
        form = classify(line)
        if form.kind == "name":
            continue
        path = form.target if form.kind == "path" else local_path(form.target)
        sub = _subdirectory(form.target) if form.kind != "path" else None
        if path is not None:
            key = built_entry(st, form, manifest.python)
            pkg = have.get(key.name) if key is not None else None
            if key is None or pkg is None or pkg.key != key:
                continue  # not built into what the env has, or changed since
            if sub is not None and not (sub and relative_parts(sub)):
                continue  # a fragment naming no plain subdirectory: left unknown
            if os.path.isdir(path):
                where = os.path.join(path, sub) if sub else path
                found[key.name] = LockedDirectory(key.name, where, editable=False)
            elif path.lower().endswith(ARCHIVES):
                found[key.name] = _archive(key.name, key.version, path, sub or None)
            continue
        named = direct_name(line)
        pkg = have.get(canonical_name(named)) if named else None
        if pkg is None:
            continue  # a bare URL: which package it made is not known
        url = form.target
        if url.startswith("git+"):
            rest = url.split("#", 1)[0]
            commit = rest.rpartition("@")[2] if "@" in rest.partition("://")[2] else ""
            if FULL_COMMIT["git"].fullmatch(commit):
                found[pkg.name] = LockedPackage(
                    pkg.name, pkg.version, "", "", True, url=url, kind="vcs"
                )
        elif url.startswith("https://") and "#sha256=" in url:
            from envstore.model.records import web_url

            file_url, _, digest = url.partition("#sha256=")
            name = file_url.rsplit("/", 1)[-1]
            if web_url(file_url) and SHA256.match(digest.lower()):
                found[pkg.name] = LockedPackage(
                    pkg.name,
                    pkg.version,
                    name,
                    digest.lower(),
                    True,
                    url=file_url,
                    kind=_kind(pkg.name, pkg.version, name),
                )
    return found


def _archive(name: str, version: str, path: str, subdirectory: str | None) -> LockedPackage:
    from envstore.store.hashing import sha256_file

    file = os.path.basename(path)
    digest = sha256_file(Path(path))
    kind = "archive" if subdirectory else _kind(name, version, file)  # an sdist has none
    return LockedPackage(
        name, version, file, digest, True, path=path, kind=kind, subdirectory=subdirectory
    )


def _subdirectory(url: str) -> str | None:
    """The ``subdirectory`` a requirement URL's fragment names; None without a fragment
    (or one with only ``egg=``/hashes), "" for one naming no usable subdirectory."""
    from urllib.parse import parse_qs

    fragment = url.partition("#")[2]
    if not fragment:
        return None
    found = parse_qs(fragment, keep_blank_values=True).get("subdirectory")
    if found is None:
        return None
    return found[0] if len(found) == 1 else ""


def _kind(name: str, version: str, file: str) -> str:
    """``sdist`` for a file named as PEP 625 names one (``name-version.tar.gz``), else
    ``archive``."""
    from packaging.utils import InvalidSdistFilename, canonicalize_name, parse_sdist_filename
    from packaging.version import Version

    try:
        got, at = parse_sdist_filename(file)
    except InvalidSdistFilename:
        return "archive"
    same = canonicalize_name(got) == name and at == Version(version)
    return "sdist" if same and file.endswith(".tar.gz") else "archive"
