"""SIGKILL at every named step: the store still verifies, the next command works,
and gc removes the leftovers."""

from __future__ import annotations

import os
import re
import shutil
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import wheelmaker
from conftest import PYTHONS, entries, envstore_cmd, run

from envstore._crash import CRASH_POINTS

SRC = Path(__file__).resolve().parent.parent / "src" / "envstore"


def es(store: Path, *args: object, crash: str | None = None) -> tuple[int, str]:
    extra = {"ENVSTORE_CRASH_AT": crash} if crash else {}
    proc = run([*envstore_cmd(), "--store", store, *map(str, args)], extra_env=extra)
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("crashwh")
    wheelmaker.build_wheel(d, "alpha", "1.0", files={"alpha/__init__.py": "A = 1\n"})
    wheelmaker.build_wheel(d, "beta", "1.0", files={"beta/__init__.py": "B = 2\n"})
    return d


def create(store: Path, env: Path, wh: Path, *reqs: str, crash: str | None = None) -> int:
    code, out = es(
        store, "create", env, "--no-index", "-f", wh, "--without-pip", *reqs, crash=crash
    )
    if crash is None:
        assert code == 0, out
    return code


def _crash_in_create(point: str) -> Callable[[Path, Path, Path], None]:
    def scenario(store: Path, wh: Path, tmp: Path) -> None:
        assert create(store, tmp / "env", wh, "alpha", crash=point) == -signal.SIGKILL
        assert not (tmp / "env").exists()  # never a half env at the requested path
        check_clean(store)
        create(store, tmp / "env", wh, "alpha")  # the next command succeeds
        assert run([tmp / "env" / "bin" / "python", "-c", "import alpha"]).returncode == 0
        assert not list(tmp.glob(".env.envstore-tmp-*"))  # its stale temp dir was removed

    return scenario


def _crash_in_gc(point: str) -> Callable[[Path, Path, Path], None]:
    def scenario(store: Path, wh: Path, tmp: Path) -> None:
        create(store, tmp / "keep", wh, "alpha")
        create(store, tmp / "gone", wh, "beta")
        shutil.rmtree(tmp / "gone")
        code, out = es(store, "gc", "--grace", "0", crash=point)
        assert code == -signal.SIGKILL, out
        check_clean(store)
        assert run([tmp / "keep" / "bin" / "python", "-c", "import alpha"]).returncode == 0
        code, out = es(store, "gc", "--grace", "0")
        assert code == 0, out
        assert {e.split("/")[1] for e in entries(store)} == {"alpha"}

    return scenario


def _crash_in_remove(store: Path, wh: Path, tmp: Path) -> None:
    create(store, tmp / "env", wh, "alpha")
    code, out = es(store, "remove", tmp / "env", crash="remove-deleted")
    assert code == -signal.SIGKILL, out
    check_clean(store)
    create(store, tmp / "env", wh, "alpha")
    assert run([tmp / "env" / "bin" / "python", "-c", "import alpha"]).returncode == 0


def _crash_in_relink(store: Path, wh: Path, tmp: Path) -> None:
    mine = f"{sys.version_info[0]}.{sys.version_info[1]}"
    other = next((py for minor, py in PYTHONS.items() if py and minor != mine), None)
    if other is None:
        pytest.skip("needs a second Python version")
    create(store, tmp / "env", wh, "alpha")
    code, out = es(store, "relink", tmp / "env", "-p", other, crash="relink-switched")
    assert code == -signal.SIGKILL, out
    check_clean(store)
    # The env already runs on the new Python and its view, while its manifest still
    # names the old one: gc keeps both, so it still imports.
    code, out = es(store, "gc", "--grace", "0")
    assert code == 0, out
    assert run([tmp / "env" / "bin" / "python", "-c", "import alpha"]).returncode == 0
    code, out = es(store, "relink", tmp / "env", "-p", other)  # the next relink completes it
    assert code == 0, out
    assert run([tmp / "env" / "bin" / "python", "-c", "import alpha"]).returncode == 0


def _crash_in_repair(store: Path, wh: Path, tmp: Path) -> None:
    create(store, tmp / "env", wh, "alpha")
    target = next((store / "entries" / "pure" / "alpha").iterdir()) / "site" / "alpha"
    os.chmod(target, 0o755)
    (target / "planted.py").write_text("x = 1\n")
    os.chmod(target / "planted.py", 0o444)
    os.chmod(target, 0o555)
    code, out = es(store, "verify", "--repair", crash="repair-unpacked")
    assert code == -signal.SIGKILL, out
    code, out = es(store, "verify", "--check-contents")
    assert code == 1 and "planted.py" in out  # still the old damage, nothing new
    assert out.count("\n") == 2, out
    code, out = es(store, "verify", "--repair")
    assert code == 0, out
    check_clean(store)


SCENARIOS: dict[str, Callable[[Path, Path, Path], None]] = {
    "ingest-unpacked": _crash_in_create("ingest-unpacked"),
    "ingest-published": _crash_in_create("ingest-published"),
    "view-built": _crash_in_create("view-built"),
    "create-registered": _crash_in_create("create-registered"),
    "gc-planned": _crash_in_gc("gc-planned"),
    "gc-deleting": _crash_in_gc("gc-deleting"),
    "remove-deleted": _crash_in_remove,
    "relink-switched": _crash_in_relink,
    "repair-unpacked": _crash_in_repair,
}


def check_clean(store: Path) -> None:
    code, out = es(store, "verify", "--check-contents")
    assert code == 0, out


def test_every_crash_point_has_a_scenario() -> None:
    used = set()
    for path in SRC.rglob("*.py"):
        used |= set(re.findall(r'crash_point\("([^"]+)"\)', path.read_text()))
    assert used == set(CRASH_POINTS)
    assert set(SCENARIOS) == set(CRASH_POINTS)


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_crash_point(point: str, store: Path, wh: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    SCENARIOS[point](store, wh, work)
    # Afterwards: remove every env, and gc leaves an empty store.
    for manifest in work.glob("*/envstore.json"):
        shutil.rmtree(manifest.parent)
    code, out = es(store, "gc", "--grace", "0")
    assert code == 0, out
    assert entries(store) == []
    assert list((store / "tmp").iterdir()) == []
    assert list((store / "views").iterdir()) == []
