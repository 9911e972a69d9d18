"""Self-test for tests/wheelmaker.py: its wheels are real (pip installs them)."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

# tests/ is not a package: pytest's default ("prepend") import mode puts tests/ on sys.path.
import wheelmaker as wm

HOSTILE_IDS = {
    "path-traversal", "path-traversal-nested", "absolute-path", "nul-in-name",
    "control-char-in-name", "duplicate-member", "symlink-member", "record-missing",
    "record-unparseable", "record-hash-mismatch", "record-size-mismatch",
    "record-phantom-file", "record-unlisted-file", "record-md5", "record-sha1",
    "no-dist-info", "two-dist-info", "name-mismatch", "version-mismatch",
    "wheel-version-2", "entry-point-slash", "entry-point-dotdot",
    "data-scripts-python", "bad-data-scheme", "high-ratio-member", "oversized-member",
    "corrupt-data", "file-and-directory",
}  # fmt: skip


def hermetic_env(**extra: str) -> dict[str, str]:
    drop = ("PIP_", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PIP_CONFIG_FILE"] = os.devnull
    env.update(extra)
    return env


def pip_install_target(wheel: Path, target: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--no-index", "--no-deps",
           "--disable-pip-version-check", "--target", str(target), str(wheel)]  # fmt: skip
    proc = subprocess.run(cmd, env=hermetic_env(), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def run_python(code: str, path: Path) -> str:
    proc = subprocess.run([sys.executable, "-c", code], env=hermetic_env(PYTHONPATH=str(path)),
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def assert_record_correct(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        record = next(n for n in zf.namelist() if n.endswith(".dist-info/RECORD"))
        rows = {row[0]: row for row in csv.reader(io.StringIO(zf.read(record).decode()))}
        assert set(rows) == set(zf.namelist())
        assert rows[record][1:] == ["", ""]
        for name in zf.namelist():
            if name != record:
                data = zf.read(name)
                digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
                assert rows[name] == [name, f"sha256={digest.decode()}", str(len(data))]


def test_build_wheel_installs_and_imports(tmp_path: Path) -> None:
    wheel = wm.build_wheel(
        tmp_path / "dist",
        "Demo.Pkg",
        "2.5",
        requires=["dep>=1.0", "other; python_version<'3.10'"],
        entry_points={"console_scripts": {"demo-hello": "demo_pkg:main"}},
        files={"demo_pkg/__init__.py": "__version__ = '2.5'\ndef main():\n    print('hi')\n"},
        data={"scripts/demo-tool": "#!python\nprint(1)\n", "data/share/demo/x.txt": "hi"},
    )
    assert wheel.name == "Demo_Pkg-2.5-py3-none-any.whl"
    assert_record_correct(wheel)
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert names[-1] == "Demo_Pkg-2.5.dist-info/RECORD"
        assert zf.getinfo("Demo_Pkg-2.5.data/scripts/demo-tool").external_attr >> 16 == 0o100755
        metadata = zf.read("Demo_Pkg-2.5.dist-info/METADATA").decode()
        assert "Name: Demo.Pkg\n" in metadata and "Requires-Dist: dep>=1.0\n" in metadata
        assert "Root-Is-Purelib: true\n" in zf.read("Demo_Pkg-2.5.dist-info/WHEEL").decode()
    target = tmp_path / "target"
    pip_install_target(wheel, target)
    assert run_python("import demo_pkg; print(demo_pkg.__version__)", target) == "2.5"
    assert (target / "bin" / "demo-hello").exists() and (target / "bin" / "demo-tool").exists()
    assert list(target.glob("Demo*2.5.dist-info"))


def test_build_wheel_defaults_reproducible_and_tags(tmp_path: Path) -> None:
    a = wm.build_wheel(tmp_path / "a", "my-lib", tag="py2.py3-none-any")
    b = wm.build_wheel(tmp_path / "b", "my-lib", tag="py2.py3-none-any")
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as zf:
        assert zf.read("my_lib/__init__.py") == b"__version__ = '1.0'\n"
        wheel_txt = zf.read("my_lib-1.0.dist-info/WHEEL").decode()
        assert all(info.date_time == (1980, 1, 1, 0, 0, 0) for info in zf.infolist())
    assert "Tag: py2-none-any\nTag: py3-none-any\n" in wheel_txt
    plat = wm.build_wheel(tmp_path / "c", "my-lib", tag="cp311-cp311-linux_x86_64")
    with zipfile.ZipFile(plat) as zf:
        assert "Root-Is-Purelib: false" in zf.read("my_lib-1.0.dist-info/WHEEL").decode()


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not available")
def test_extension_wheel_for_running_interpreter(tmp_path: Path) -> None:
    wheel = wm.build_extension_wheel(tmp_path / "dist", "ext-demo", "0.1", sys.executable)
    assert wheel.name == f"ext_demo-0.1-{wm.interpreter_tag(sys.executable)}.whl"
    assert_record_correct(wheel)
    target = tmp_path / "target"
    pip_install_target(wheel, target)
    assert run_python("import ext_demo; print(ext_demo.answer())", target) == "42"


def test_hostile_corpus(tmp_path: Path) -> None:
    corpus = dict(wm.hostile_wheels(tmp_path))
    assert set(corpus) == HOSTILE_IDS
    for case_id, path in corpus.items():
        assert path.is_file() and path.stat().st_size < 1_000_000, case_id
    with zipfile.ZipFile(corpus["oversized-member"]) as zf:
        assert zf.getinfo("evil/big.bin").file_size == 2**40
    with zipfile.ZipFile(corpus["high-ratio-member"]) as zf:
        assert zf.getinfo("evil/zeros.bin").file_size == 64 * 1024 * 1024
    with zipfile.ZipFile(corpus["symlink-member"]) as zf:
        assert zf.getinfo("evil/link").external_attr >> 16 == 0o120777
    with zipfile.ZipFile(corpus["duplicate-member"]) as zf:
        assert zf.namelist().count("evil/__init__.py") == 2
    assert b"evil/a\x00b.py" in corpus["nul-in-name"].read_bytes()
    for case_id in ("path-traversal", "control-char-in-name", "two-dist-info", "bad-data-scheme"):
        assert_record_correct(corpus[case_id])
    with pytest.raises(AssertionError):
        assert_record_correct(corpus["record-unlisted-file"])
