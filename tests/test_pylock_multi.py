"""One ``pylock.toml`` for several Pythons (#24): resolved for each, merged with markers
that select exactly one version per interpreter."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import wheelmaker
from conftest import CLI, PYTHONS, run
from packaging.pylock import Pylock
from packaging.specifiers import SpecifierSet

from envstore.model.lock import Lock, LockedPackage, LockedPython
from envstore.model.lock_merge import merged

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib


def _two_minors() -> tuple[str, str] | None:
    found = [m for m in ("3.10", "3.11", "3.12", "3.13") if PYTHONS.get(m)]
    return (found[0], found[-1]) if len(found) >= 2 else None


TWO = _two_minors()


@pytest.mark.skipif(TWO is None, reason="needs two CPython minor versions")
def test_a_lock_for_two_pythons_installs_each_its_own_versions(
    cli: CLI, tmp_path: Path, store: Path
) -> None:
    """``modern`` 2.0 needs the newer Python (Requires-Python), ``oldonly`` is needed
    on the older one only (a marker): the lock holds both versions of ``modern``, each
    marked, ``shared`` once, unmarked; each Python gets its own set from it."""
    assert TWO is not None
    old, new = TWO
    wh = tmp_path / "wh"
    for version, spec in (("1.0", ">=3.8"), ("2.0", f">={new}")):
        wheelmaker.build_wheel(wh, "modern", version, files={"modern.py": f"V = {version!r}\n"},
                               metadata_extra=[f"Requires-Python: {spec}"])  # fmt: skip
    wheelmaker.build_wheel(wh, "shared", "1.0", requires=[f"oldonly; python_version < '{new}'"])
    wheelmaker.build_wheel(wh, "oldonly", "1.0")
    (tmp_path / "requirements.txt").write_text("modern\nshared\n")
    lock = tmp_path / "pylock.toml"
    res = cli("--store", store, "lock", "-r", tmp_path / "requirements.txt", "-p", PYTHONS[old],
              "-p", PYTHONS[new], "--no-index", "-f", wh, "-o", lock)  # fmt: skip
    assert res.code == 0, res.err

    data = tomllib.loads(lock.read_text())
    Pylock.from_dict(data).validate()
    assert len(data["environments"]) == 2
    assert SpecifierSet(data["requires-python"]) == SpecifierSet(
        f">={old},<{new[:2]}{int(new[2:]) + 1}"
    )
    marks = {(p["name"], p["version"]): p.get("marker") for p in data["packages"]}
    assert marks == {
        ("modern", "1.0"): f'python_version < "{new}"',
        ("modern", "2.0"): f'python_version >= "{new}"',
        ("oldonly", "1.0"): f'python_version < "{new}"',
        ("shared", "1.0"): None,
    }

    fresh = tmp_path / "fresh"
    for minor, want in ((old, {"modern": "1.0", "shared": "1.0", "oldonly": "1.0"}),
                        (new, {"modern": "2.0", "shared": "1.0"})):  # fmt: skip
        env = tmp_path / f"env{minor}"
        res = cli("--store", fresh, "create", env, "--from", lock, "-p", PYTHONS[minor],
                  "--offline")  # fmt: skip
        assert res.code == 0, res.err
        packages = json.loads((env / "envstore.json").read_text())["packages"]
        assert {p["name"]: p["version"] for p in packages} == want
        got = run([env / "bin" / "python", "-c", "import modern; print(modern.V)"])
        assert got.stdout.strip() == want["modern"], got.stderr
    # uv reads the same markers: the older Python gets the older version.
    uv_env = {"UV_CACHE_DIR": str(tmp_path / "uv-cache"), "UV_OFFLINE": "1"}
    plain = tmp_path / "plain"
    assert run([PYTHONS[old], "-m", "venv", "--without-pip", plain]).returncode == 0
    made = run([sys.executable, "-m", "uv", "pip", "install", "--python", plain / "bin" / "python",
                "-r", lock], extra_env=uv_env)  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "modern==1.0" in made.stderr and "oldonly==1.0" in made.stderr
    other = [m for m in ("3.10", "3.11", "3.12", "3.13") if PYTHONS.get(m) and m not in TWO]
    if other:  # a Python the lock is not for: refused, naming the ones it is for
        res = cli("--store", fresh, "create", tmp_path / "no", "--from", lock, "-p",
                  PYTHONS[other[0]], "--offline")  # fmt: skip
        assert res.code == 1 and f"pass -p {old} or -p {new}" in res.err


def _py(minor: str) -> LockedPython:
    tag = "cp" + minor.replace(".", "")
    return LockedPython("cpython", f"{minor}.1", tag, f"cpython-{tag}", "linux-x86_64")


def _pkg(name: str, version: str, marker: str | None = None) -> LockedPackage:
    return LockedPackage(name, version, f"{name}-{version}-py3-none-any.whl", "a" * 64, True,
                         path=f"/w/{name}-{version}-py3-none-any.whl", marker=marker)  # fmt: skip


def test_merged_markers_select_exactly_one_version_per_python() -> None:
    """Three Pythons: a version chosen by 3.10 and 3.13 but not 3.12 gets two ranges; a
    project lock's own markers (extras, groups) are kept, joined with the Pythons'."""
    from packaging.markers import Marker

    fast = "'fast' in extras"
    per_python = {
        "3.12": [_pkg("a", "2.0"), _pkg("b", "1.0", fast)],
        "3.10": [_pkg("a", "1.0"), _pkg("b", "1.0", fast), _pkg("c", "1.0")],
        "3.13": [_pkg("a", "1.0"), _pkg("b", "1.0"), _pkg("c", "1.0", fast)],
    }
    lock = merged([Lock(_py(m), pkgs) for m, pkgs in per_python.items()])
    assert [py.minor for py in lock.pythons()] == ["3.10", "3.12", "3.13"]
    for minor, pkgs in per_python.items():
        for extras in ((), ("fast",)):
            env = {"python_version": minor, "extras": frozenset(extras)}
            want = {(p.name, p.version) for p in pkgs if not p.marker or extras}
            got = {
                (p.name, p.version)
                for p in lock.packages
                if p.marker is None or Marker(p.marker).evaluate(env)  # type: ignore[arg-type]
            }
            assert got == want, (minor, extras)
    Pylock.from_dict(tomllib.loads(lock.dumps())).validate()
