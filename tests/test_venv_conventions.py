"""What other tools expect of a venv: pyvenv.cfg's version_info and implementation
(virtualenv and uv write them; pre-commit's health check compares version_info), and
the .gitignore and CACHEDIR.TAG that python -m venv (3.13+) and uv put in an env."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CLI, run

from envstore.env.venv import version_info

CACHEDIR_SIGNATURE = b"Signature: 8a477f597d28d172789f06886806bc55"


def _pre_commit_cfg(env: Path) -> dict[str, str]:
    """pyvenv.cfg as pre-commit's ``_read_pyvenv_cfg`` reads it (a line with no ``=``
    or more than one is skipped)."""
    ret = {}
    for line in (env / "pyvenv.cfg").read_text(encoding="UTF-8").splitlines(keepends=True):
        try:
            k, v = line.split("=")
        except ValueError:
            continue
        ret[k.strip()] = v.strip()
    return ret


def _pre_commit_healthy(env: Path) -> str | None:
    """pre-commit's ``health_check`` for a python env: None when healthy."""
    cfg = _pre_commit_cfg(env)
    if "version_info" not in cfg:
        return "created virtualenv's pyvenv.cfg is missing `version_info`"
    prog = 'import sys;print(".".join(str(p) for p in sys.version_info))'
    actual = run([env / "bin" / "python", "-S", "-c", prog], cwd="/").stdout.strip()
    if actual != cfg["version_info"]:
        return f"actual {actual}, expected {cfg['version_info']}"
    if "base-executable" in cfg:
        base = run([cfg["base-executable"], "-S", "-c", prog]).stdout.strip()
        if base != cfg["version_info"]:
            return f"base-executable {base}, expected {cfg['version_info']}"
    return None


def _markers_ok(env: Path) -> None:
    assert (env / ".gitignore").read_text().splitlines()[-1] == "*"
    assert (env / "CACHEDIR.TAG").read_bytes().startswith(CACHEDIR_SIGNATURE)


def _create(cli: CLI, store: Path, env: Path, wheelhouse: Path, *args: str | Path) -> None:
    made = cli(
        "--store", store, "create", env, "--without-pip", "--no-index", "-f", wheelhouse,
        "solo", *args,
    )  # fmt: skip
    assert made.code == 0, made.err


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        pytest.param("3.12.3", "3.12.3.final.0", id="final"),
        pytest.param("3.13.0rc1", "3.13.0.candidate.1", id="candidate"),
        pytest.param("3.14.0b2", "3.14.0.beta.2", id="beta"),
        pytest.param("3.14.0a1+", "3.14.0.alpha.1", id="dev-build"),
        pytest.param("3.12", None, id="unknown-form"),
    ],
)
def test_version_info_from_python_version(version: str, expected: str | None) -> None:
    assert version_info(version) == expected


def test_create_writes_what_pre_commit_and_git_expect(
    cli: CLI, tmp_path: Path, wheelhouse: Path
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", repo], check=True)
    env = repo / ".venv"
    _create(cli, tmp_path / "store", env, wheelhouse)
    cfg = _pre_commit_cfg(env)
    assert cfg["implementation"] == sys.implementation.name.replace("cpython", "CPython")
    assert _pre_commit_healthy(env) is None
    _markers_ok(env)
    status = run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=repo)
    assert (status.returncode, status.stdout) == (0, ""), status.stderr


def _other_python() -> str | None:
    from envstore.python.interpreters import installed

    here = "{}.{}".format(*sys.version_info[:2])
    return next((i.path for i in installed() if i.minor != here), None)


def test_relink_keeps_version_info_true_and_adds_missing_markers(
    cli: CLI, tmp_path: Path, wheelhouse: Path
) -> None:
    env = tmp_path / "env"
    _create(cli, tmp_path / "store", env, wheelhouse)
    # An env made before envstore wrote them: no version_info, no markers; and a link
    # planted where a marker goes, which is never written through.
    cfg = env / "pyvenv.cfg"
    cfg.write_text("".join(ln for ln in cfg.read_text().splitlines(True) if "_info" not in ln))
    (env / ".gitignore").unlink()
    canary = tmp_path / "canary"
    canary.write_text("keep\n")
    (env / "CACHEDIR.TAG").unlink()
    os.symlink(canary, env / "CACHEDIR.TAG")
    assert _pre_commit_healthy(env) is not None

    res = cli("relink", env, "--offline")
    assert res.code == 0, res.err
    assert _pre_commit_healthy(env) is None
    assert (env / ".gitignore").read_text().splitlines()[-1] == "*"
    assert canary.read_text() == "keep\n" and os.readlink(env / "CACHEDIR.TAG") == str(canary)
    assert "fine as it is" in cli("relink", env, "--offline").out

    other = _other_python()
    if other is None:
        pytest.skip("no Python of another minor version here")
    os.unlink(env / "CACHEDIR.TAG")
    res = cli("relink", env, "--python", other, "--offline")
    assert res.code == 0, res.err
    assert _pre_commit_healthy(env) is None  # the new base's version, not the old one's
    _markers_ok(env)
    assert run([env / "bin" / "python", "-c", "import solo"]).returncode == 0
