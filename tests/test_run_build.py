"""envstore run and envstore build: real subprocesses, throwaway envs that do not outlive them."""

from __future__ import annotations

import glob
import re
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from conftest import CLI, PYTHONS, envstore_cmd, run
from test_isolated import (
    assert_no_envs_left,
    backend_wheels,
    check_wheel,
    make_project,
    warm_store,
)

__all__ = ["backend_wheels", "warm_store"]  # fixtures shared with test_isolated


def test_run_console_script_exit_code_and_cleanup(
    warm_store: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    es = [*envstore_cmd(), "--store", warm_store]
    proc = run(
        [*es, "run", "--with", "hello-app", "--no-index", "-f", wheelhouse, "--", "hello"],
        extra_env={"TMPDIR": str(tmp)},
    )
    assert proc.returncode == 3, proc.stderr  # hello_app.main returns 3
    match = re.match(r"hello from (\S+)$", proc.stdout.strip())
    assert match, proc.stdout
    env = Path(match[1])
    assert env.parent == tmp.resolve()
    assert not env.exists()
    assert list(tmp.iterdir()) == []
    assert_no_envs_left(warm_store)


def test_run_activates_env_and_passes_arguments(warm_store: Path, tmp_path: Path) -> None:
    code = (
        "import os, sys, shutil; import solo, nsp.alpha; "
        "print(os.environ['VIRTUAL_ENV'] == sys.prefix, "
        "shutil.which('python') == os.path.join(sys.prefix, 'bin', 'python'), sys.argv[1:]); "
        "sys.exit(int(sys.argv[1]))"
    )
    es = [*envstore_cmd(), "--store", warm_store]
    withs = ["--with", "solo", "--with", "ns-alpha"]
    proc = run([*es, "run", "--offline", *withs, "python", "-c", code, "7", "-x"])
    assert proc.returncode == 7, proc.stderr
    assert proc.stdout.strip() == "True True ['7', '-x']"
    assert_no_envs_left(warm_store)


def test_run_missing_command_and_package(cli: CLI, warm_store: Path) -> None:
    res = cli("--store", warm_store, "run", "--offline", "--", "no-such-command-here")
    assert res.code == 1 and "command not found: no-such-command-here" in res.err
    res = cli("--store", warm_store, "run", "--offline", "--with", "nothere", "--", "python")
    assert res.code == 1 and "offline" in res.err and "nothere" in res.err
    assert "Traceback" not in res.err
    assert_no_envs_left(warm_store)


def test_build_default_sdist_then_wheel(
    warm_store: Path, backend_wheels: Path, tmp_path: Path
) -> None:
    project = make_project(tmp_path / "proj")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = tmp_path / "out"
    es = [*envstore_cmd(), "--store", warm_store]
    proc = run(
        [*es, "build", project, "-o", out, "--no-index", "-f", backend_wheels],
        extra_env={"TMPDIR": str(tmp)},
    )
    assert proc.returncode == 0, proc.stderr
    sdist, wheel = out / "demo_proj-0.3.tar.gz", out / "demo_proj-0.3-py3-none-any.whl"
    assert proc.stdout.splitlines() == [f"built {sdist}", f"built {wheel}"]
    assert sorted(out.iterdir()) == [wheel, sdist]
    with tarfile.open(sdist) as tar:
        assert "demo_proj-0.3/PKG-INFO" in tar.getnames()
    printed = check_wheel(
        wheel, tmp_path, "demo_proj", "from demo_proj import _built; print(_built.HELPER)"
    )
    assert printed.strip() == "h2.5"  # the backend-requested tinyhelper was installed
    # The wheel came from the sdist, extracted to a temporary directory that is gone too.
    assert list(tmp.iterdir()) == []
    assert_no_envs_left(warm_store)


def test_build_wheel_only_into_default_outdir(
    cli: CLI, warm_store: Path, backend_wheels: Path, tmp_path: Path
) -> None:
    project = make_project(tmp_path / "proj", name="other", version="1.2")
    res = cli(
        "-q", "--store", warm_store, "build", project, "-w", "--no-index", "-f", backend_wheels
    )
    assert res.code == 0, res.err
    assert [p.name for p in (project / "dist").iterdir()] == ["other-1.2-py3-none-any.whl"]
    assert res.out == ""
    assert_no_envs_left(warm_store)


def test_build_failure_is_one_error(
    cli: CLI, warm_store: Path, backend_wheels: Path, tmp_path: Path
) -> None:
    project = make_project(tmp_path / "proj")
    (project / "tiny.json").write_text("{not json")
    res = cli("-q", "--store", warm_store, "build", project, "--no-index", "-f", backend_wheels)
    assert res.code == 1
    assert res.err.startswith("envstore: error: ") and "JSONDecodeError" in res.err
    assert_no_envs_left(warm_store)


def test_build_without_pypa_build_is_a_clear_error(
    cli: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "build", None)  # import build -> ImportError
    res = cli("build", make_project(tmp_path / "proj"))
    assert res.code == 1
    assert "pip install 'envstore[build]'" in res.err and "Traceback" not in res.err


def _bundled(name: str) -> list[tuple[str, Path]]:
    """(python, wheel) for each interpreter here whose ensurepip bundles ``name``."""
    found = []
    for python in filter(None, PYTHONS.values()):
        prefix = Path(python).resolve().parent.parent
        for whl in prefix.glob(f"lib/python3*/ensurepip/_bundled/{name}-*.whl"):
            found.append((python, whl))
    return found


def _offline_wheel_package() -> Path | None:
    """A ``wheel`` wheel that is on this machine anyway (CPython's bundled or test data)."""
    found = []
    for python in filter(None, PYTHONS.values()):
        prefix = Path(python).resolve().parent.parent
        for pattern in ("ensurepip/_bundled", "test", "test/wheeldata"):
            found += glob.glob(f"{prefix}/lib/python3*/{pattern}/wheel-*-py3-none-any.whl")
    return Path(sorted(found)[-1]) if found else None


SETUPTOOLS = _bundled("setuptools")


@pytest.mark.skipif(not SETUPTOOLS, reason="no CPython here bundles a setuptools wheel")
def test_build_real_setuptools_project(tmp_path: Path, warm_store: Path) -> None:
    store = warm_store
    python, setuptools = SETUPTOOLS[-1]  # the newest interpreter, with its own setuptools
    links = [setuptools.parent]
    # setuptools < 70.1 asks for "wheel" to build a wheel: build just the sdist
    # unless a wheel of "wheel" is on this machine too.
    wheel_pkg = _offline_wheel_package()
    if wheel_pkg is not None:
        (tmp_path / "links").mkdir()
        shutil.copy(wheel_pkg, tmp_path / "links")
        links.append(tmp_path / "links")
    project = tmp_path / "proj"
    (project / "sprocket").mkdir(parents=True)
    (project / "sprocket" / "__init__.py").write_text("def spin():\n    return 'spun'\n")
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "sprocket"\nversion = "2.0"\n\n'
        '[tool.setuptools]\npackages = ["sprocket"]\n'
    )
    out = tmp_path / "out"
    sdist_only = [] if wheel_pkg is not None else ["--sdist"]
    args = [*envstore_cmd(), "-q", "--store", store, "build", project, "-o", out, "-p", python]
    for link in links:
        args += ["-f", link]
    proc = run([*args, "--no-index", *sdist_only])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with tarfile.open(out / "sprocket-2.0.tar.gz") as tar:
        assert "sprocket-2.0/sprocket/__init__.py" in tar.getnames()
    if wheel_pkg is not None:
        wheel = out / "sprocket-2.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel) as zf:
            assert "sprocket-2.0.dist-info/RECORD" in zf.namelist()
        printed = check_wheel(wheel, tmp_path, "sprocket", "print(sprocket.spin())")
        assert printed.strip() == "spun"
    assert_no_envs_left(store)
