"""envstore.IsolatedEnv: throwaway envs for build frontends, with pypa/build's ProjectBuilder.

The build backend is "tinybackend", a real PEP 517 backend in a wheel built
on the fly (stdlib only: tarfile and zipfile, a correct RECORD), so the
builds run offline. Its ``get_requires_for_build_wheel`` asks for
"tinyhelper", which ``build_wheel`` imports, so the backend-requested
install is checked too.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import wheelmaker
from conftest import hermetic_environ, run

import envstore
from envstore.store.gc import collect
from envstore.store.inventory import store_usage

TINYBACKEND = r'''
"""A tiny PEP 517 backend for envstore's tests: stdlib only, configured by tiny.json."""
import base64, csv, hashlib, io, json, os, re, tarfile, zipfile

def _config():
    with open("tiny.json") as f:
        return json.load(f)

def _dist(name):
    return re.sub(r"[-_.]+", "_", name)

def _metadata(cfg):
    return "Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (cfg["name"], cfg["version"])

def _sources():
    for root, dirs, files in os.walk("."):
        dirs[:] = sorted(d for d in dirs if d not in ("dist", "__pycache__") and d[0] != ".")
        for name in sorted(files):
            yield os.path.relpath(os.path.join(root, name), ".").replace(os.sep, "/")

def get_requires_for_build_sdist(config_settings=None):
    return _config().get("sdist_requires", [])

def get_requires_for_build_wheel(config_settings=None):
    return _config().get("wheel_requires", [])

def build_sdist(sdist_directory, config_settings=None):
    cfg = _config()
    base = "%s-%s" % (_dist(cfg["name"]).lower(), cfg["version"])
    members = [("PKG-INFO", _metadata(cfg).encode())]
    for path in _sources():
        with open(path, "rb") as f:
            members.append((path, f.read()))
    with tarfile.open(os.path.join(sdist_directory, base + ".tar.gz"), "w:gz") as tar:
        for path, data in members:
            info = tarfile.TarInfo(base + "/" + path)
            info.size, info.mode, info.mtime = len(data), 0o644, 315532800
            tar.addfile(info, io.BytesIO(data))
    return base + ".tar.gz"

def _digest(data):
    raw = hashlib.sha256(data).digest()
    return "sha256=" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    cfg = _config()
    dist = "%s-%s" % (_dist(cfg["name"]), cfg["version"])
    files = {}
    for path in _sources():
        if path.split("/")[0] in cfg["packages"] and path.endswith(".py"):
            with open(path, "rb") as f:
                files[path] = f.read()
    if cfg.get("wheel_requires"):
        import tinyhelper  # installed because get_requires_for_build_wheel asked for it
        stamp = "HELPER = %r\n" % tinyhelper.VALUE
        files[cfg["packages"][0] + "/_built.py"] = stamp.encode()
    files[dist + ".dist-info/METADATA"] = _metadata(cfg).encode()
    wheel = "Wheel-Version: 1.0\nGenerator: tinybackend\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[dist + ".dist-info/WHEEL"] = wheel.encode()
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for path, data in files.items():
        writer.writerow([path, _digest(data), len(data)])
    writer.writerow([dist + ".dist-info/RECORD", "", ""])
    files[dist + ".dist-info/RECORD"] = record.getvalue().encode()
    name = dist + "-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, name), "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in files.items():
            zf.writestr(zipfile.ZipInfo(path, (1980, 1, 1, 0, 0, 0)), data)
    return name
'''


@pytest.fixture(scope="session")
def backend_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tinybackend (a PEP 517 backend) and tinyhelper (what it asks for), as wheels."""
    wh = tmp_path_factory.mktemp("backend-wheels")
    wheelmaker.build_wheel(wh, "tinybackend", "1.0", files={"tinybackend.py": TINYBACKEND})
    wheelmaker.build_wheel(wh, "tinyhelper", "2.5", files={"tinyhelper.py": "VALUE = 'h2.5'\n"})
    return wh


_WARM_STORES: dict[str, Path] = {}


@pytest.fixture(scope="session")
def warm_store(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> Iterator[Path]:
    """A store shared by the tests here and in test_run_build, holding pip and the
    wheelhouse packages.

    A fresh store pays for ingesting and compiling pip (seconds) before pip
    can fetch anything; tests that share this one pay once. Each test leaves
    it without envs (no roots, no references), which the next one checks.
    """
    # Imported into test_run_build, this fixture is defined twice: share one store.
    if str(wheelhouse) in _WARM_STORES:
        yield _WARM_STORES[str(wheelhouse)]
        return
    store = tmp_path_factory.mktemp("warm") / "store"
    env = store.parent / "env"
    with pytest.MonkeyPatch.context() as mp:  # session scope: the autouse _hermetic is not on
        for key in list(os.environ):
            if key.startswith(("PIP_", "PYTHON", "VIRTUAL_ENV")):
                mp.delenv(key)
        for key, value in hermetic_environ().items():
            mp.setenv(key, value)
        envstore.create_env(
            env,
            ["solo", "ns-alpha", "hello-app"],
            store=store,
            no_index=True,
            find_links=[str(wheelhouse)],
        )
        envstore.remove_env(env, store=store)
    _WARM_STORES[str(wheelhouse)] = store
    yield store


def make_project(where: Path, name: str = "demo-proj", version: str = "0.3") -> Path:
    """A project built by tinybackend; its wheel build needs tinyhelper."""
    pkg = name.replace("-", "_")
    (where / pkg).mkdir(parents=True)
    (where / pkg / "__init__.py").write_text("def answer():\n    return 42\n")
    (where / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["tinybackend>=1"]\nbuild-backend = "tinybackend"\n'
    )
    config = {
        "name": name,
        "version": version,
        "packages": [pkg],
        "wheel_requires": ["tinyhelper>=2"],
    }
    (where / "tiny.json").write_text(json.dumps(config))
    return where


def store_refs(store: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(store / "envstore.db")
    try:
        return [tuple(r) for r in conn.execute("SELECT env, object FROM refs")]
    finally:
        conn.close()


def assert_no_envs_left(store: Path) -> None:
    """No gc roots and no references: every throwaway env was removed and released."""
    assert list((store / "roots").iterdir()) == []
    assert store_refs(store) == []


def check_wheel(wheel: Path, tmp_path: Path, module: str, code: str) -> str:
    """Install ``wheel`` with pip --target and run ``code`` against it; return stdout."""
    target = tmp_path / f"target-{wheel.stem}"
    pip_install = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps"]
    pip = run([*pip_install, "--target", target, wheel])
    assert pip.returncode == 0, pip.stderr
    out = run([sys.executable, "-c", f"import {module}; {code}"], extra_env={"PYTHONPATH": target})
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_lifecycle_install_union_and_cleanup(warm_store: Path, tmp_path: Path) -> None:
    store = warm_store
    # Whatever pip could fetch is already in the store: nothing may run pip.
    gone = [str(tmp_path / "gone")]
    with envstore.IsolatedEnv(store=store, no_index=True, find_links=gone) as env:
        path = env.path
        assert path.is_dir() and env.python_executable == str(path / "bin" / "python")
        extra = env.make_extra_environ()
        assert extra["PATH"].split(os.pathsep)[0] == str(path / "bin")
        assert extra["VIRTUAL_ENV"] == str(path)
        assert env.manifest.packages == []  # no pip: envstore is the installer

        env.install(["solo"])
        env.install({"ns-alpha", "solo"})  # a set, as pypa/build passes them
        assert env.requirements == ("solo", "ns-alpha")
        probe = run(
            [env.python_executable, "-c", "import sys, solo, nsp.alpha; print(sys.prefix)"],
        )
        assert probe.returncode == 0, probe.stderr
        assert probe.stdout.strip() == str(path)
        assert run([env.python_executable, "-c", "import pip"]).returncode != 0
        assert {p.name for p in env.manifest.packages} == {"solo", "ns-alpha"}
        assert {e for e, _ in store_refs(store)} == {str(path)}
    assert not path.exists()
    assert_no_envs_left(store)


def test_failed_install_keeps_the_env_and_exception_cleans_up(
    wheelhouse: Path, warm_store: Path
) -> None:
    store = warm_store
    with (
        pytest.raises(RuntimeError, match="boom"),
        envstore.IsolatedEnv(
            store=store, requirements=["solo"], no_index=True, find_links=[str(wheelhouse)]
        ) as env,
    ):
        path = env.path
        with pytest.raises(envstore.ResolutionError, match="nothere"):
            env.install(["nothere==1.0"])
        # Still there, with what it had before.
        assert env.requirements == ("solo",)
        assert run([env.python_executable, "-c", "import solo"]).returncode == 0
        raise RuntimeError("boom")
    assert not path.exists()
    assert_no_envs_left(store)


def test_explicit_path_must_be_free(tmp_path: Path, warm_store: Path) -> None:
    store = warm_store
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "mine.txt").write_text("keep")
    with pytest.raises(envstore.EnvError, match="not empty"):
        envstore.IsolatedEnv(taken, store=store).__enter__()
    assert (taken / "mine.txt").read_text() == "keep"

    with envstore.IsolatedEnv(tmp_path / "here", store=store) as env:
        assert env.path == (tmp_path / "here").resolve()
        assert (env.path / "envstore.json").exists()
    assert not (tmp_path / "here").exists()


def test_warm_create_starts_no_process(
    wheelhouse: Path, warm_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = warm_store

    def solo_env() -> envstore.IsolatedEnv:
        return envstore.IsolatedEnv(
            requirements=["solo"], store=store, no_index=True, find_links=[str(wheelhouse)]
        )

    with solo_env():
        pass  # warms the store, the interpreter facts and the resolution cache

    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a process was started: {args}")

    monkeypatch.setattr(subprocess, "Popen", no_process)
    with solo_env() as env:
        assert (env.path / "bin" / "python").is_symlink()
    assert_no_envs_left(store)


def test_project_builder_from_isolated_env(
    backend_wheels: Path, tmp_path: Path, warm_store: Path
) -> None:
    store = warm_store
    build = pytest.importorskip("build")
    import pyproject_hooks

    project = make_project(tmp_path / "proj")
    out = tmp_path / "out"
    links = [str(backend_wheels)]
    paths = []
    built = {}
    for dist in ("sdist", "wheel"):
        with envstore.IsolatedEnv(store=store, no_index=True, find_links=links) as env:
            paths.append(env.path)
            builder = build.ProjectBuilder.from_isolated_env(
                env, project, runner=pyproject_hooks.quiet_subprocess_runner
            )
            env.install(builder.build_system_requires)
            env.install(builder.get_requires_for_build(dist))
            built[dist] = Path(builder.build(dist, out))
    assert env.requirements == ("tinybackend>=1", "tinyhelper>=2")
    assert not any(p.exists() for p in paths)
    assert_no_envs_left(store)

    assert built["sdist"].name == "demo_proj-0.3.tar.gz"
    with tarfile.open(built["sdist"]) as tar:
        names = set(tar.getnames())
    assert {"demo_proj-0.3/PKG-INFO", "demo_proj-0.3/pyproject.toml"} <= names
    assert built["wheel"].name == "demo_proj-0.3-py3-none-any.whl"
    with zipfile.ZipFile(built["wheel"]) as zf:
        assert "demo_proj-0.3.dist-info/RECORD" in zf.namelist()
    out_text = check_wheel(
        built["wheel"],
        tmp_path,
        "demo_proj",
        "from demo_proj import _built; print(demo_proj.answer(), _built.HELPER)",
    )
    assert out_text.split() == ["42", "h2.5"]


def test_create_from_an_sdist_builds_it_offline_and_gc_drops_the_kept_wheel(
    store: Path, backend_wheels: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only an sdist of demo-proj is on offer: pip builds it (in its own isolated build
    # env, tinybackend and tinyhelper from the same local directory), envstore keeps
    # the wheel and unpacks it like any other.
    project = make_project(tmp_path / "project")
    sdists = tmp_path / "sdists"
    sdists.mkdir()
    backend: dict[str, object] = {}
    exec(compile(TINYBACKEND, "tinybackend.py", "exec"), backend)
    monkeypatch.chdir(project)
    sdist = backend["build_sdist"](str(sdists))  # type: ignore[operator]
    assert sdist == "demo_proj-0.3.tar.gz"
    monkeypatch.chdir(tmp_path)

    env = tmp_path / "env"
    links = [str(sdists), str(backend_wheels)]
    manifest = envstore.create_env(
        env, ["demo-proj"], store=store, no_index=True, find_links=links, with_pip=False
    )
    assert [(p.name, p.version) for p in manifest.packages] == [("demo-proj", "0.3")]
    out = run(
        [
            env / "bin" / "python",
            "-c",
            "import demo_proj, demo_proj._built as b; print(demo_proj.answer(), b.HELPER)",
        ]
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["42", "h2.5"]  # built with the backend's own requirement
    kept = store / "wheels" / "demo_proj-0.3-py3-none-any.whl"
    assert kept.is_file()
    assert store_usage(envstore.Store(store)).wheels == len(os.listdir(store / "wheels"))
    collect(envstore.Store(store), grace=0)
    assert kept.is_file()  # its entry is in use
    envstore.remove_env(env, store=store)
    assert_no_envs_left(store)
    # Once no entry is made from it, the kept wheel goes with the entry.
    plan = collect(envstore.Store(store), grace=0)
    assert [i.name for i in plan.delete if i.kind == "wheel"] == [kept.name]
    assert not kept.exists()
