"""A project made on the fly for the project-sync section: ``pyproject.toml`` naming
a workload's packages as dependencies, a package under ``src/`` with a console
script, and an in-tree PEP 517/660 backend (stdlib only), so uv and envstore
both build its editable wheel offline with no build dependency to fetch (both
then cache it: the warm runs never call the backend)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["make_project"]

BACKEND = r'''
"""A tiny PEP 517/660 backend for the benchmark project (stdlib only)."""
import base64, hashlib, json, os, zipfile

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_P = json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "p.json")))


def _files(editable):
    name, ver = _P["name"], _P["version"]
    di = f"{name}-{ver}.dist-info"
    meta = [f"Metadata-Version: 2.1", f"Name: {name}", f"Version: {ver}"]
    meta += ["Requires-Dist: " + r for r in _P["dependencies"]]
    files = {
        f"{di}/METADATA": "\n".join(meta) + "\n",
        f"{di}/WHEEL": "Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
        f"{di}/entry_points.txt": f"[console_scripts]\n{name} = {name}:main\n",
    }
    if editable:
        files[f"_{name}_editable.pth"] = os.path.join(_ROOT, "src") + "\n"
    else:
        src = os.path.join(_ROOT, "src", name, "__init__.py")
        files[f"{name}/__init__.py"] = open(src).read()
    return di, files


def _wheel(directory, editable):
    di, files = _files(editable)
    name = f"{_P['name']}-{_P['version']}-py3-none-any.whl"
    record = []
    with zipfile.ZipFile(os.path.join(directory, name), "w") as z:
        for path, text in files.items():
            data = text.encode()
            z.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{path},sha256={digest.decode()},{len(data)}")
        z.writestr(f"{di}/RECORD", "\n".join(record + [f"{di}/RECORD,,"]) + "\n")
    return name


def get_requires_for_build_wheel(config_settings=None):
    return []


get_requires_for_build_editable = get_requires_for_build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, False)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    return _wheel(wheel_directory, True)
'''


def make_project(root: Path, name: str, dependencies: list[str]) -> Path:
    """The project at ``root``: ``name`` 0.1 depending on ``dependencies``."""
    import json

    (root / "_backend").mkdir(parents=True)
    (root / "src" / name).mkdir(parents=True)
    deps = ", ".join(json.dumps(d) for d in dependencies)
    (root / "pyproject.toml").write_text(
        "[build-system]\nrequires = []\nbuild-backend = 'bench_backend'\n"
        "backend-path = ['_backend']\n\n"
        f"[project]\nname = {name!r}\nversion = '0.1'\nrequires-python = '>=3.11'\n"
        f"dependencies = [{deps}]\n\n[project.scripts]\n{name} = '{name}:main'\n\n"
        # The wheelhouse is CPython 3.11 on Linux: uv's universal lock is kept to it.
        "[tool.uv]\nenvironments = [\"sys_platform == 'linux'\"]\n"
    )
    (root / "_backend" / "bench_backend.py").write_text(BACKEND)
    spec = {"name": name, "version": "0.1", "dependencies": dependencies}
    (root / "_backend" / "p.json").write_text(json.dumps(spec))
    (root / "src" / name / "__init__.py").write_text("def main():\n    print('ok')\n")
    return root
