"""Base-Python upgrades, round two: a relinked env is whole (its pip runs, every
package's Requires-Python holds), and doctor never calls such an env ok."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import wheelmaker
from conftest import CLI, PYTHONS, run

OLD_PIP = "3.10"  # bundles pip 23.0.1, which cannot run on 3.12+
NEW = "3.12"


def _needs(*minors: str) -> pytest.MarkDecorator:
    missing = [m for m in minors if not PYTHONS.get(m)]
    return pytest.mark.skipif(bool(missing), reason=f"no Python {', '.join(missing)} here")


@pytest.fixture
def modern(tmp_path: Path) -> Path:
    """``modern`` 2.0 needs Python >= 3.10, 1.0 runs on 3.9; ``only-new`` needs >= 3.10."""
    wh = tmp_path / "modern-wheels"
    for version, spec in (("1.0", ">=3.9"), ("2.0", ">=3.10")):
        wheelmaker.build_wheel(
            wh,
            "modern",
            version,
            files={"modern.py": f"V = {version!r}\n"},
            metadata_extra=[f"Requires-Python: {spec}"],
        )
    wheelmaker.build_wheel(
        wh,
        "only-new",
        "1.0",
        files={"only_new.py": "X = 1\n"},
        metadata_extra=["Requires-Python: >=3.10"],
    )
    return wh


def _doctor(cli: CLI, env: Path) -> dict[str, dict[str, str]]:
    res = cli("doctor", "--json", env)
    (report,) = json.loads(res.out)
    return {p["code"]: p for p in report["problems"]}


@_needs(OLD_PIP, NEW)
def test_relink_to_312_gives_the_env_a_pip_that_runs_there(
    cli: CLI, wheelhouse: Path, tmp_path: Path
) -> None:
    env, store = tmp_path / "env", tmp_path / "store"
    opts = ["--no-index", "-f", wheelhouse]
    made = cli("--store", store, "create", env, "-p", OLD_PIP, *opts, "solo")
    assert made.code == 0, made.err
    res = cli("--store", store, "relink", env, "--python", NEW, *opts)
    assert res.code == 0, res.err
    assert "pip 23.0.1 -> " in res.out, res.out
    pip = run([env / "bin" / "pip", "list", "--format=json"])
    assert pip.returncode == 0, pip.stderr
    assert {p["name"] for p in json.loads(pip.stdout)} >= {"pip", "solo"}
    assert _doctor(cli, env) == {}


@_needs(OLD_PIP, NEW)
def test_doctor_reports_a_pip_that_cannot_run_on_the_envs_python(
    cli: CLI, wheelhouse: Path, tmp_path: Path
) -> None:
    # pip 23.0.1 pinned into a 3.12 env: its metadata allows 3.12, yet it cannot run.
    old_pip = tmp_path / "old-pip"
    old_pip.mkdir()
    bundled = Path(str(PYTHONS[OLD_PIP])).parent.parent / "lib"
    (wheel,) = bundled.glob(f"python{OLD_PIP}/ensurepip/_bundled/pip-23.0.1-*.whl")
    shutil.copy(wheel, old_pip)
    env = tmp_path / "env"
    made = cli("--store", tmp_path / "store", "create", env, "-p", NEW, "--no-index",
               "-f", old_pip, "-f", wheelhouse, "pip==23.0.1", "solo")  # fmt: skip
    assert made.code == 0, made.err
    assert run([env / "bin" / "pip", "list"]).returncode != 0  # really broken
    problem = _doctor(cli, env)["python-fit"]
    assert (
        problem["severity"] == "broken"
        and "pip 23.0.1 cannot run on Python 3.12" in (problem["message"])
    )
    assert cli("doctor", env).code == 1


@_needs("3.9", "3.10")
def test_relink_to_an_older_minor_takes_versions_that_run_there(
    cli: CLI, modern: Path, tmp_path: Path
) -> None:
    env, store = tmp_path / "env", tmp_path / "store"
    opts = ["--no-index", "-f", modern]
    assert cli("--store", store, "create", env, "-p", "3.10", "--without-pip", *opts,
               "modern").code == 0  # fmt: skip
    assert run([env / "bin" / "python", "-c", "import modern; print(modern.V)"]).stdout == "2.0\n"
    res = cli("--store", store, "relink", env, "--python", "3.9", *opts)
    assert res.code == 0, res.err
    assert "modern 2.0 -> 1.0" in res.out, res.out
    out = run([env / "bin" / "python", "-c", "import modern; print(modern.V)"])
    assert out.stdout == "1.0\n", out.stderr
    assert _doctor(cli, env) == {}


@_needs("3.9", "3.10")
def test_relink_refuses_when_no_version_runs_there_and_doctor_says_why(
    cli: CLI, modern: Path, tmp_path: Path
) -> None:
    env, store = tmp_path / "env", tmp_path / "store"
    opts = ["--no-index", "-f", modern]
    assert cli("--store", store, "create", env, "-p", "3.10", "--without-pip", *opts,
               "only-new").code == 0  # fmt: skip
    before = (env / "envstore.json").read_text()
    res = cli("--store", store, "relink", env, "--python", "3.9", *opts)
    assert res.code == 1 and "only-new 1.0" in res.err and "requires Python >=3.10" in res.err
    assert (env / "envstore.json").read_text() == before  # nothing was changed
