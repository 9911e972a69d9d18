"""Python projects made on the fly for tests: a ``pyproject.toml``, a package and an
in-tree build backend (PEP 517 and PEP 660), stdlib only, so pip, uv and envstore
build them offline with no build dependency.

The backend (``_backend/envstore_test_backend.py`` in the project, named by
``backend-path``) reads the project's metadata from ``_backend/project.json``,
which :func:`make_project` writes beside ``pyproject.toml`` (so it needs no TOML
parser on any Python). It builds:

* wheels: the package ``src/<import name>/`` plus a dist-info (METADATA with
  Requires-Dist and Provides-Extra, entry_points.txt for ``scripts``, RECORD);
* editable wheels: the same dist-info and a ``_<name>_editable.pth`` naming
  ``src/``, so edits to the source show without a rebuild;
* sdists: the project's files with PKG-INFO.

Each build appends a line to ``_backend/builds.log`` (``wheel``, ``editable`` or
``sdist``): a test can count how often a frontend ran the backend.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["BACKEND", "builds", "make_project"]

BACKEND = r'''
"""A tiny PEP 517 / PEP 660 backend for envstore's tests (stdlib only)."""
import base64, hashlib, io, json, os, re, tarfile, zipfile

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_HERE)
_EPOCH = (1980, 1, 1, 0, 0, 0)


def _project():
    with open(os.path.join(_HERE, "project.json"), encoding="utf-8") as f:
        return json.load(f)


def _log(kind):
    with open(os.path.join(_HERE, "builds.log"), "a", encoding="utf-8") as f:
        f.write(kind + "\n")


def _dist(name):
    return re.sub(r"[-_.]+", "_", name)


def _metadata(p):
    lines = ["Metadata-Version: 2.1", "Name: " + p["name"], "Version: " + p["version"]]
    if p.get("requires_python"):
        lines.append("Requires-Python: " + p["requires_python"])
    lines += ["Requires-Dist: " + r for r in p["dependencies"]]
    for extra, reqs in sorted(p["optional_dependencies"].items()):
        lines.append("Provides-Extra: " + extra)
        for r in reqs:
            marker = 'extra == "%s"' % extra
            r = r.replace(";", "; (", 1) + ") and " if ";" in r else r + "; "
            lines.append("Requires-Dist: " + r + marker)
    return "".join(line + "\n" for line in lines)


def _dist_info(p):
    info = "%s-%s.dist-info" % (_dist(p["name"]), p["version"])
    files = {info + "/METADATA": _metadata(p).encode(),
             info + "/WHEEL": b"Wheel-Version: 1.0\nGenerator: envstore-test-backend\n"
             b"Root-Is-Purelib: true\nTag: py3-none-any\n"}
    if p["scripts"]:
        text = "[console_scripts]\n" + "".join(
            "%s = %s\n" % item for item in sorted(p["scripts"].items()))
        files[info + "/entry_points.txt"] = text.encode()
    return info, files


def _write_wheel(directory, p, files, info):
    name = "%s-%s-py3-none-any.whl" % (_dist(p["name"]), p["version"])
    rows = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append("%s,sha256=%s,%d\n" % (path, digest, len(data)))
    rows.append(info + "/RECORD,,\n")
    files[info + "/RECORD"] = "".join(rows).encode()
    with zipfile.ZipFile(os.path.join(directory, name), "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files.items():
            zi = zipfile.ZipInfo(path, _EPOCH)
            zi.external_attr = 0o644 << 16
            z.writestr(zi, data)
    return name


def _package_files(p):
    src = os.path.join(_ROOT, "src")
    files = {}
    for top, dirs, names in os.walk(src):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for n in sorted(names):
            if n.endswith(".pyc"):
                continue
            full = os.path.join(top, n)
            with open(full, "rb") as f:
                files[os.path.relpath(full, src).replace(os.sep, "/")] = f.read()
    return files


def get_requires_for_build_wheel(config_settings=None):
    return []


get_requires_for_build_editable = get_requires_for_build_sdist = get_requires_for_build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _log("wheel")
    p = _project()
    info, meta = _dist_info(p)
    files = _package_files(p)
    files.update(meta)
    return _write_wheel(wheel_directory, p, files, info)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    _log("editable")
    p = _project()
    info, files = _dist_info(p)
    pth = "_%s_editable.pth" % _dist(p["name"]).lower()
    files = {pth: (os.path.join(_ROOT, "src") + "\n").encode(), **files}
    return _write_wheel(wheel_directory, p, files, info)


def build_sdist(sdist_directory, config_settings=None):
    _log("sdist")
    p = _project()
    base = "%s-%s" % (_dist(p["name"]), p["version"])
    path = os.path.join(sdist_directory, base + ".tar.gz")
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        pkg_info = _metadata(p).encode()
        ti = tarfile.TarInfo(base + "/PKG-INFO")
        ti.size = len(pkg_info)
        tar.addfile(ti, io.BytesIO(pkg_info))
        for top, dirs, names in os.walk(_ROOT):
            skip = ("__pycache__", ".venv", ".git", ".tox", "dist")
            dirs[:] = sorted(d for d in dirs if d not in skip)
            for n in sorted(names):
                if n == "builds.log" or n.endswith(".pyc"):
                    continue
                full = os.path.join(top, n)
                tar.add(full, base + "/" + os.path.relpath(full, _ROOT), recursive=False)
    return base + ".tar.gz"
'''


def _toml_list(items: Sequence[object]) -> str:
    return "[" + ", ".join(_toml_value(i) for i in items) + "]"


def _toml_value(value: object) -> str:
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return _toml_list(value)
    raise TypeError(value)


def make_project(
    root: Path,
    name: str = "sample",
    version: str = "0.1",
    *,
    dependencies: Sequence[str] = (),
    optional_dependencies: Mapping[str, Sequence[str]] | None = None,
    groups: Mapping[str, Sequence[str | Mapping[str, str]]] | None = None,
    scripts: Mapping[str, str] | None = None,
    requires_python: str | None = None,
    source: str | None = None,
) -> Path:
    """A project at ``root`` (created): ``pyproject.toml``, ``src/<import name>/__init__.py``
    holding ``source`` (default: a ``VERSION`` and a ``main()`` printing it) and the
    in-tree backend. ``groups`` are PEP 735 dependency groups (an item may be
    ``{"include-group": NAME}``). Returns ``root``."""
    module = re.sub(r"[-_.]+", "_", name).lower()
    package = root / "src" / module
    package.mkdir(parents=True, exist_ok=True)
    if source is None:
        source = f"VERSION = {version!r}\n\n\ndef main():\n    print('{name}', VERSION)\n"
    (package / "__init__.py").write_text(source)
    backend = root / "_backend"
    backend.mkdir(exist_ok=True)
    (backend / "envstore_test_backend.py").write_text(BACKEND)
    project = {
        "name": name,
        "version": version,
        "dependencies": list(dependencies),
        "optional_dependencies": {k: list(v) for k, v in (optional_dependencies or {}).items()},
        "scripts": dict(scripts or {}),
        "requires_python": requires_python,
    }
    (backend / "project.json").write_text(json.dumps(project, indent=1))
    lines = [
        "[build-system]",
        "requires = []",
        'build-backend = "envstore_test_backend"',
        'backend-path = ["_backend"]',
        "",
        "[project]",
        f"name = {json.dumps(name)}",
        f"version = {json.dumps(version)}",
        f"dependencies = {_toml_list(list(dependencies))}",
    ]
    if requires_python:
        lines.append(f"requires-python = {json.dumps(requires_python)}")
    if optional_dependencies:
        lines += ["", "[project.optional-dependencies]"]
        lines += [f"{k} = {_toml_list(list(v))}" for k, v in optional_dependencies.items()]
    if scripts:
        lines += ["", "[project.scripts]"]
        lines += [f"{k} = {json.dumps(v)}" for k, v in scripts.items()]
    if groups:
        lines += ["", "[dependency-groups]"]
        lines += [f"{json.dumps(k)} = {_toml_list(list(v))}" for k, v in groups.items()]
    (root / "pyproject.toml").write_text("\n".join(lines) + "\n")
    return root


def builds(root: Path) -> list[str]:
    """The builds the backend of the project at ``root`` has run, in order."""
    log = root / "_backend" / "builds.log"
    return log.read_text().split() if log.exists() else []
