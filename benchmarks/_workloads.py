"""Workloads: prepared wheelhouses, plus synthetic wheels/projects made offline."""

from __future__ import annotations

import base64
import hashlib
import random
import textwrap
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# What a fresh process imports in the `living` and `create-cold` sections.
IMPORTS: dict[str, list[str]] = {
    "build-env": ["setuptools"],
    "web": ["requests", "httpx", "rich", "pydantic", "jinja2", "click"],
    "big": ["jupyterlab", "jupyter_server", "ipykernel"],
    "binary": ["numpy", "pandas", "scipy"],
    "smoke": ["smokea", "smokec"],
}
ALL_WORKLOADS = ["build-env", "web", "big", "binary"]


@dataclass
class Workload:
    name: str
    wheelhouse: Path
    top: list[str]  # top-level requirement names
    order: list[str]  # all pins, dependencies first (every prefix is closed)
    imports: list[str]

    @property
    def requirements(self) -> Path:
        return self.wheelhouse / "requirements.txt"

    @property
    def import_stmt(self) -> str:
        return "import " + ", ".join(self.imports)

    def subset_file(self, n: int, dest_dir: Path) -> Path:
        """A requirements file with the first ``n`` pins of the dependency order."""
        dest_dir.mkdir(parents=True, exist_ok=True)
        path = dest_dir / f"{self.name}-first-{n}.txt"
        path.write_text("\n".join(self.order[:n]) + "\n")
        return path


def load_workload(data: Path, name: str) -> Workload:
    wh = data / "wheelhouses" / name
    req = wh / "requirements.txt"
    if not req.exists():
        raise FileNotFoundError(f"{req} missing: run benchmarks/prepare.py first")
    order_file = wh / "install-order.txt"
    order = (order_file if order_file.exists() else req).read_text().split()
    top = (wh / "top.txt").read_text().split() if (wh / "top.txt").exists() else order
    return Workload(name, wh, top, order, IMPORTS.get(name, []))


# --------------------------------------------------------------------------
# synthetic wheels (stdlib zipfile, valid RECORD)


def _record_hash(data: bytes) -> str:
    digest = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def build_wheel(
    dest: Path,
    name: str,
    version: str,
    deps: Sequence[str] = (),
    files: dict[str, str] | None = None,
) -> Path:
    """Write a pure-Python ``py3-none-any`` wheel with a correct RECORD."""
    dist = name.replace("-", "_").lower()
    info = f"{dist}-{version}.dist-info"
    contents: dict[str, bytes] = {
        path: text.encode()
        for path, text in (files or {f"{dist}/__init__.py": f"NAME = {name!r}\n"}).items()
    }
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Requires-Dist: {d}" for d in deps]
    contents[f"{info}/METADATA"] = ("\n".join(meta) + "\n").encode()
    contents[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: envstore-bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = [f"{p},{_record_hash(b)},{len(b)}" for p, b in contents.items()]
    record.append(f"{info}/RECORD,,")
    contents[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for p, b in contents.items():
            zf.writestr(p, b)
    return path


def make_smoke_workload(root: Path) -> Workload:
    """Three tiny wheels: smokea -> smokeb, and smokec."""
    wh = root / "wheelhouses" / "smoke"
    build_wheel(wh, "smokeb", "1.0")
    build_wheel(wh, "smokea", "1.0", ["smokeb"], {"smokea/__init__.py": "import smokeb\n"})
    build_wheel(wh, "smokec", "1.0")
    order = ["smokeb==1.0", "smokea==1.0", "smokec==1.0"]
    (wh / "requirements.txt").write_text("\n".join(sorted(order)) + "\n")
    (wh / "install-order.txt").write_text("\n".join(order) + "\n")
    (wh / "top.txt").write_text("smokea\nsmokec\n")
    return Workload("smoke", wh, ["smokea", "smokec"], order, IMPORTS["smoke"])


def make_gc_wheelhouse(dest: Path, n_wheels: int) -> list[str]:
    """``n_wheels`` dependency-free tiny wheels; returns their pins."""
    pins = []
    for i in range(n_wheels):
        name = f"gcpkg{i:05d}"
        files = {f"{name}/__init__.py": f"N = {i}\n", f"{name}/data.py": "X = 1\n"}
        build_wheel(dest, name, "1.0", files=files)
        pins.append(f"{name}==1.0")
    return pins


def gc_env_specs(pins: list[str], n_envs: int, per_env: int = 5, seed: int = 1) -> list[list[str]]:
    """Random (seeded) requirement lists; every wheel is used at least once."""
    rng = random.Random(seed)
    specs = [rng.sample(pins, min(per_env, len(pins))) for _ in range(n_envs)]
    for i, pin in enumerate(pins):  # make sure every wheel lands in the store
        spec = specs[i % n_envs]
        if pin not in spec:
            spec.append(pin)
    return specs


# --------------------------------------------------------------------------
# a project with an in-tree, stdlib-only build backend (builds offline)

_SMOKE_BACKEND = '''\
"""Minimal PEP 517 backend (stdlib only) for the benchmark smoke test."""
import base64, hashlib, io, os, tarfile, zipfile

NAME, VERSION = "smokeproj", "0.1.0"
META = f"Metadata-Version: 2.1\\nName: {NAME}\\nVersion: {VERSION}\\n"


def _h(b):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(b).digest()).rstrip(b"=").decode()


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    info = f"{NAME}-{VERSION}.dist-info"
    files = {
        f"{NAME}/__init__.py": b"VALUE = 1\\n",
        f"{info}/METADATA": META.encode(),
        f"{info}/WHEEL": (
            b"Wheel-Version: 1.0\\nGenerator: smoke\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
        ),
    }
    rec = [f"{p},{_h(b)},{len(b)}" for p, b in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\\n".join(rec) + "\\n").encode()
    name = f"{NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w") as zf:
        for p, b in files.items():
            zf.writestr(p, b)
    return name


def build_sdist(sdist_directory, config_settings=None):
    base = f"{NAME}-{VERSION}"
    name = base + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as tf:
        for p in ("pyproject.toml", "_backend/smoke_backend.py", f"{NAME}/__init__.py"):
            tf.add(p, arcname=f"{base}/{p}")
        data = META.encode()
        ti = tarfile.TarInfo(f"{base}/PKG-INFO")
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    return name
'''


def make_smoke_project(root: Path) -> Path:
    proj = root / "projects" / "smokeproj"
    (proj / "_backend").mkdir(parents=True, exist_ok=True)
    (proj / "smokeproj").mkdir(exist_ok=True)
    (proj / "pyproject.toml").write_text(
        textwrap.dedent("""\
        [build-system]
        requires = []
        build-backend = "smoke_backend"
        backend-path = ["_backend"]

        [project]
        name = "smokeproj"
        version = "0.1.0"
        """)
    )
    (proj / "_backend" / "smoke_backend.py").write_text(_SMOKE_BACKEND)
    (proj / "smokeproj" / "__init__.py").write_text("VALUE = 1\n")
    return proj
