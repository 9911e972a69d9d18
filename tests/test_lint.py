"""Lint and types run with the suite, so CI keeps them true."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from conftest import run

ROOT = Path(__file__).resolve().parent.parent


def _tool(name: str) -> list[str]:
    exe = Path(sys.executable).parent / name
    if exe.exists():
        return [str(exe)]
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed; install the test extra: pip install -e '.[test]'")
    return [found]


def test_ruff() -> None:
    for args in (["check"], ["format", "--check"]):
        paths = [p for p in ("src", "tests", "benchmarks") if (ROOT / p).is_dir()]
        proc = run([*_tool("ruff"), *args, *paths], cwd=ROOT)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict_on_src() -> None:
    proc = run([*_tool("mypy")], cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
