"""Base-interpreter upgrades, simulated with fake install layouts: doctor and relink.

Each layout is a few symlinks to the real CPythons on this machine (CPython
resolves argv[0]'s symlinks to find its prefix, so a fake path really runs).
candidates() is limited to the fake layout, so the machine's own installs
cannot stand in for the removed one unless a test says so.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import wheelmaker
from conftest import CLI, MINORS, PYTHONS, entries, run

from envstore.python import interpreters as _interpreters
from envstore.store.fs import rmtree
from envstore.store.layout import Store

PURE = ["hello-app", "ns-alpha", "ns-beta", "solo"]
CHECK = (
    "import os, sys, hello_app, dep_one, nsp.alpha, nsp.beta, solo; "
    "print('%d.%d' % sys.version_info[:2], os.environ.get('DEP_ONE_HOOK'), sys.prefix)"
)

# The Python running the tests: the shared store fixture holds its pip already.
DEFAULT = os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable)
_MINORS = [m for m in MINORS if PYTHONS[m]]
needs_two = pytest.mark.skipif(len(_MINORS) < 2, reason="needs two CPython minor versions")
A, B = (_MINORS[-2], _MINORS[-1]) if len(_MINORS) >= 2 else (None, None)


def _real(minor: str | None) -> str:
    assert minor is not None and PYTHONS[minor]
    return os.path.realpath(str(PYTHONS[minor]))


def _link(path: Path, target: str | Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        path.unlink()
    os.symlink(target, path)
    return path


def _manifest(env: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((env / "envstore.json").read_text())
    return data


def _python(env: Path) -> dict[str, str]:
    return _manifest(env)["python"]  # type: ignore[return-value]


def _doctor(cli: CLI, *args: str | Path, store: Path | None = None) -> tuple[int, list[dict]]:  # type: ignore[type-arg]
    res = cli(*(["--store", store] if store else []), "doctor", "--json", *args)
    return res.code, json.loads(res.out)


def _seed(store: Path, python: str, *wheel_dirs: Path) -> None:
    """Ingest every wheel in ``wheel_dirs`` for ``python``, as a first create would, so
    creates resolve from the store and never start pip (ingesting pip itself is slow)."""
    from envstore.python.interpreters import find_interpreter
    from envstore.store.ingest import ingest_wheels

    st = Store(store)
    st.ensure()
    try:
        interp = find_interpreter(python, st.facts_cache())
        with st.gc_lock(shared=True):
            wheels = [w for d in wheel_dirs for w in sorted(d.glob("*.whl"))]
            ingest_wheels(st, wheels, interp)
    finally:
        st.close()


def _minor_of(python: str) -> str:
    return run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]).stdout.strip()


def _problems(report: dict[str, object]) -> dict[str, dict[str, str]]:
    return {p["code"]: p for p in report["problems"]}  # type: ignore[attr-defined,index]


def _works(env: Path, minor: str) -> None:
    out = run([env / "bin" / "python", "-c", CHECK])
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [minor, "ran", str(env)]
    hello = run([env / "bin" / "hello"])
    assert hello.returncode == 3 and f"hello from {env}" in hello.stdout, hello.stderr
    data = run([env / "bin" / "hello-data"])
    assert data.returncode == 0 and f"data script {env}" in data.stdout
    assert (env / "include" / "site" / f"python{minor}" / "hello-app" / "hello.h").exists()
    assert (env / "share" / "hello-app" / "greeting.txt").read_text() == "hi there\n"


@pytest.fixture
def bare(tmp_path: Path) -> Path:
    """An empty store of this test's own (see _seed)."""
    return tmp_path / "bare-store"


@pytest.fixture
def search(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The directories candidates() searches: only what a test adds."""
    dirs: list[str] = []
    monkeypatch.setattr(_interpreters, "_search_dirs", lambda: list(dirs))
    return dirs


@pytest.fixture(scope="session")
def ext_wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """minor -> a directory with ext-pkg 1.0 (a real C extension) built for that Python."""
    dirs = {}
    for minor in (A, B):
        if minor is not None:
            d = tmp_path_factory.mktemp(f"ext{minor}")
            wheelmaker.build_extension_wheel(d, "ext-pkg", "1.0", _real(minor))
            dirs[minor] = d
    return dirs


@needs_two
def test_distro_minor_bump(
    cli: CLI,
    wheelhouse: Path,
    ext_wheels: dict[str, Path],
    tmp_path: Path,
    bare: Path,
    search: list[str],
) -> None:
    assert A is not None and B is not None
    store = bare
    _seed(store, _real(A), wheelhouse, ext_wheels[A])
    usr_bin = tmp_path / "usr" / "bin"
    _link(usr_bin / f"python{A}", _real(A))
    _link(usr_bin / "python3", f"python{A}")
    search.append(str(usr_bin))
    env = tmp_path / "env"
    made = cli(
        "--store", store, "create", env, "-p", usr_bin / "python3", "--without-pip",
        "--no-index", "-f", wheelhouse, "-f", ext_wheels[A], *PURE, "ext-pkg",
    )  # fmt: skip
    assert made.code == 0, made.err
    assert _python(env)["path"] == str(usr_bin / f"python{A}")  # pinned to the minor
    _works(env, A)

    # The distro adds python{B} and re-points python3; python{A} stays: nothing breaks.
    _link(usr_bin / f"python{B}", _real(B))
    _link(usr_bin / "python3", f"python{B}")
    code, [report] = _doctor(cli, env)
    assert (code, report["status"], report["problems"]) == (0, "ok", [])
    _works(env, A)

    # Then python{A} is removed.
    (usr_bin / f"python{A}").unlink()
    code, [report] = _doctor(cli, env)
    assert code == 1 and report["status"] == "broken"
    problem = _problems(report)["base-missing"]
    fix = f"envstore relink {env} --python {usr_bin / f'python{B}'}"
    assert problem["fix"] == fix
    assert "ext-pkg 1.0" in problem["detail"]  # it needs a wheel for the new ABI
    activate = run(["bash", "-c", f"source {env}/bin/activate; echo rc=$?"])
    assert "rc=1" in activate.stdout
    assert f"envstore relink {env}" in activate.stderr and "is gone" in activate.stderr

    # Without a wheel for B nothing changes, and the error names the package.
    before = (env / "envstore.json").read_text()
    failed = cli(*shlex.split(fix)[1:], "--no-index", "-f", wheelhouse)
    assert failed.code == 1
    assert "ext-pkg 1.0" in failed.err and "nothing was changed" in failed.err
    assert (env / "envstore.json").read_text() == before
    assert (env / "lib" / f"python{A}" / "site-packages" / "00-envstore.pth").exists()

    fixed = cli(*shlex.split(fix)[1:], "--no-index", "-f", ext_wheels[B])
    assert fixed.code == 0, fixed.err
    assert "1 rebuilt (ext-pkg 1.0)" in fixed.out
    _works(env, B)
    out = run([env / "bin" / "python", "-c", "import ext_pkg; print(ext_pkg.answer())"])
    assert out.stdout.strip() == "42", out.stderr
    assert not (env / "lib" / f"python{A}").exists()
    assert _doctor(cli, env)[0] == 0
    # The store references followed: gc would keep the B entries, not the A ones.
    refs = {r for (r,) in _refs(store, env)}
    assert any(r.startswith("cpython-" + B.replace(".", "")) for r in refs)
    assert not any(r.startswith("cpython-" + A.replace(".", "")) for r in refs)


def _refs(store: Path, env: Path) -> list[tuple[str]]:
    from envstore.store.layout import Store

    st = Store(store)
    try:
        return list(st.db().execute("SELECT object FROM refs WHERE env = ?", (str(env),)))
    finally:
        st.close()


@needs_two
def test_pure_env_survives_a_minor_change_offline(
    cli: CLI, wheelhouse: Path, tmp_path: Path, bare: Path, search: list[str]
) -> None:
    assert A is not None and B is not None
    store = bare
    wh = tmp_path / "wh"
    wh.mkdir()
    # A stand-in "pip" whose versioned script must be renamed for the new Python.
    wheelmaker.build_wheel(
        wh,
        "pip",
        "99.0",
        files={"fakepip/__init__.py": "def main():\n    return 0\n"},
        entry_points={"console_scripts": {f"pip{A}": "fakepip:main", "pip": "fakepip:main"}},
    )
    _seed(store, _real(A), wheelhouse, wh)
    env = tmp_path / "env"
    made = cli(
        "--store", store, "create", env, "-p", _real(A), "--without-pip", "--prompt", "demo",
        "--no-index", "-f", wheelhouse, "-f", wh, *PURE, "pip",
    )  # fmt: skip
    assert made.code == 0, made.err
    before = entries(store)
    (wh / os.listdir(wh)[0]).unlink()  # no wheel anywhere but the store

    res = cli("relink", env, "--python", _real(B), "--offline")
    assert res.code == 0, res.err
    assert entries(store) == before  # every entry reused, nothing downloaded or unpacked
    _works(env, B)
    assert (env / "bin" / f"pip{B}").exists() and not (env / "bin" / f"pip{A}").exists()
    assert "prompt = 'demo'" in (env / "pyvenv.cfg").read_text()
    tag = _python(env)["cache_tag"]
    for package in _manifest(env)["packages"]:  # type: ignore[attr-defined]
        assert (store / "entries" / package["key"] / f"compiled-{tag}").exists()


_FACTS = (
    "import platform, sysconfig;"
    " print(platform.python_version(), sysconfig.get_config_var('SOABI'))"
)


def _same_abi_pair() -> tuple[str, str] | None:
    """Two installs of one minor version with different patch versions (same ABI)."""
    seen: dict[str, tuple[str, str]] = {}  # soabi -> (version, path)
    for minor in MINORS:
        for cand in (PYTHONS[minor], f"/usr/bin/python{minor}", f"/usr/local/bin/python{minor}"):
            if not cand or not os.path.exists(cand):
                continue
            out = run([cand, "-c", _FACTS])
            if out.returncode != 0:
                continue
            version, soabi = out.stdout.split()
            path = os.path.realpath(cand)
            if soabi in seen and seen[soabi][0] != version:
                return seen[soabi][1], path
            seen.setdefault(soabi, (version, path))
    return None


def _keg(root: Path, minor: str, version: str, real: str) -> None:
    stdlib = run([real, "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"])
    keg = root / "Cellar" / f"python@{minor}" / version
    _link(keg / "bin" / f"python{minor}", real)
    _link(keg / "lib" / f"python{minor}", stdlib.stdout.strip())
    _link(root / "opt" / f"python@{minor}", f"../Cellar/python@{minor}/{version}")
    _link(root / "bin" / f"python{minor}", f"../Cellar/python@{minor}/{version}/bin/python{minor}")


def test_homebrew_patch_upgrade(
    cli: CLI, wheelhouse: Path, tmp_path: Path, bare: Path, search: list[str]
) -> None:
    store = bare
    old, new = _same_abi_pair() or (DEFAULT, DEFAULT)  # else one stands in for both
    minor = _minor_of(old)
    _seed(store, old, wheelhouse)
    brew = tmp_path / "homebrew"
    _keg(brew, minor, "1.0.1", old)
    opt = brew / "opt" / f"python@{minor}" / "bin" / f"python{minor}"
    env = tmp_path / "env"
    made = cli(
        "--store", store, "create", env, "-p", brew / "bin" / f"python{minor}", "--without-pip",
        "--no-index", "-f", wheelhouse, *PURE,
    )  # fmt: skip
    assert made.code == 0, made.err
    assert _python(env)["path"] == str(opt)
    assert f"home = {opt.parent}\n" in (env / "pyvenv.cfg").read_text()
    _works(env, minor)

    # brew upgrade: a new keg, opt/ and bin/ re-pointed, the old keg deleted.
    _keg(brew, minor, "1.0.2", new)
    rmtree(brew / "Cellar" / f"python@{minor}" / "1.0.1")
    _works(env, minor)  # the env never noticed
    code, [report] = _doctor(cli, env)
    assert code == 0 and report["status"] == "ok"
    assert set(_problems(report)) == ({"base-patch"} if old != new else set())
    if old != new:
        patch = _problems(report)["base-patch"]
        assert patch["severity"] == "note" and patch["fix"] == f"envstore relink {env}"
        res = cli("relink", env)
        assert res.code == 0 and "links only" in res.out, res.err
        version = run([env / "bin" / "python", "-c", "import platform;"
                       " print(platform.python_version())"]).stdout.strip()  # fmt: skip
        assert _python(env)["version"] == version
        assert f"version = {version}\n" in (env / "pyvenv.cfg").read_text()
    code, [report] = _doctor(cli, env)
    assert (code, report["problems"]) == (0, [])
    assert "fine as it is" in cli("relink", env).out


def test_base_removed_with_the_same_abi_elsewhere(
    cli: CLI, wheelhouse: Path, tmp_path: Path, bare: Path, search: list[str]
) -> None:
    store, real = bare, DEFAULT
    minor = _minor_of(real)
    _seed(store, real, wheelhouse)
    base = _link(tmp_path / "pyenv" / "bin" / f"python{minor}", real)
    envs = [tmp_path / "one", tmp_path / "two"]
    for env in envs:
        made = cli(
            "--store", store, "create", env, "-p", base, "--without-pip",
            "--no-index", "-f", wheelhouse, *PURE,
        )  # fmt: skip
        assert made.code == 0, made.err
    view = _manifest(envs[0])["view"]
    base.unlink()  # pyenv uninstall

    # Nothing of that ABI anywhere: doctor says how to get out, relink refuses cleanly.
    code, [report] = _doctor(cli, envs[0])
    problem = _problems(report)["base-missing"]
    assert code == 1 and problem["fix"] == "" and f"install Python {minor}" in problem["detail"]
    refused = cli("relink", envs[0])
    assert refused.code == 1 and f"Install Python {minor} again" in refused.err

    other = _link(tmp_path / "other" / "bin" / f"python{minor}", real)
    search.append(str(other.parent))
    code, [report] = _doctor(cli, envs[0])
    problem = _problems(report)["base-missing"]
    assert (code, problem["fix"]) == (1, f"envstore relink {envs[0]}")
    assert str(other) in problem["detail"] and "no package work" in problem["detail"]

    before = entries(store)
    res = cli("--store", store, "relink", "--all")
    assert res.code == 0, res.err
    assert res.out.count("same ABI, links only") == 2
    assert entries(store) == before
    for env in envs:
        assert _python(env)["path"] == str(other)
        assert _manifest(env)["view"] == view  # same view: no package work at all
        _works(env, minor)
    code, reports = _doctor(cli, "--all", store=store)
    assert code == 0 and [r["status"] for r in reports] == ["ok", "ok"]


def test_moved_install(
    cli: CLI, wheelhouse: Path, tmp_path: Path, bare: Path, search: list[str]
) -> None:
    """A relocatable install moved elsewhere (hard-linked copy of a real prefix)."""
    store, real = bare, DEFAULT
    _seed(store, real, wheelhouse)
    info = run([real, "-c", "import sys, sysconfig; print(sys.base_prefix);"
                " print(sysconfig.get_path('stdlib'))"]).stdout.split()  # fmt: skip
    prefix, stdlib = Path(info[0]), Path(info[1])
    minor = stdlib.name.removeprefix("python")
    inst = tmp_path / "opt" / f"python-{minor}"
    (inst / "bin").mkdir(parents=True)
    (inst / "lib").mkdir()
    try:
        os.link(real, inst / "bin" / f"python{minor}")
    except OSError:
        pytest.skip("cannot hard-link the interpreter here")
    lib = inst / "lib" / stdlib.name
    lib.mkdir()
    parts = [stdlib / n for n in os.listdir(stdlib) if n not in ("site-packages", "test")]
    copy = subprocess.run(["cp", "-al", *parts, lib], capture_output=True, check=False)
    if copy.returncode != 0:
        pytest.skip("cannot copy the stdlib with hard links here")
    for shared in (prefix / "lib").glob("libpython*"):
        os.link(shared, inst / "lib" / shared.name)
    env = tmp_path / "env"
    made = cli(
        "--store", store, "create", env, "-p", inst / "bin" / f"python{minor}", "--without-pip",
        "--no-index", "-f", wheelhouse, *PURE,
    )  # fmt: skip
    assert made.code == 0, made.err
    base_prefix = "import sys; print(sys.base_prefix)"
    assert run([env / "bin" / "python", "-c", base_prefix]).stdout.strip() == str(inst)

    moved = tmp_path / "moved" / f"python-{minor}"
    moved.parent.mkdir()
    os.rename(inst, moved)
    search.append(str(moved / "bin"))
    code, [report] = _doctor(cli, env)
    assert (code, _problems(report)["base-missing"]["fix"]) == (1, f"envstore relink {env}")
    res = cli("relink", env)
    assert res.code == 0 and "links only" in res.out, res.err
    assert _python(env)["path"] == str(moved / "bin" / f"python{minor}")
    _works(env, minor)
    # pyvenv.cfg's home lets CPython find the moved stdlib, not the original one.
    assert run([env / "bin" / "python", "-c", base_prefix]).stdout.strip() == str(moved)


@needs_two
def test_base_replaced_by_another_minor(
    cli: CLI, wheelhouse: Path, tmp_path: Path, bare: Path, search: list[str]
) -> None:
    assert A is not None and B is not None
    store = bare
    _seed(store, _real(A), wheelhouse)
    mine = _link(tmp_path / "bin" / "mypython", _real(A))  # kept as given: not pinned
    env = tmp_path / "env"
    made = cli(
        "--store", store, "create", env, "-p", mine, "--without-pip",
        "--no-index", "-f", wheelhouse, *PURE,
    )  # fmt: skip
    assert made.code == 0, made.err
    assert _python(env)["path"] == str(mine)
    _link(mine, _real(B))
    assert run([env / "bin" / "python", "-c", "import solo"]).returncode != 0
    code, [report] = _doctor(cli, env)
    problem = _problems(report)["base-abi"]
    assert code == 1 and f"is now Python {B}" in problem["message"]
    assert problem["fix"] == f"envstore relink {env} --python {mine}"
    res = cli(*shlex.split(problem["fix"])[1:], "--offline")
    assert res.code == 0, res.err
    _works(env, B)


def test_nested_venv_as_python(cli: CLI, wheelhouse: Path, tmp_path: Path, bare: Path) -> None:
    store, real = bare, DEFAULT
    _seed(store, real, wheelhouse)
    outer = tmp_path / "outer"
    subprocess.run([real, "-m", "venv", "--without-pip", outer], check=True)
    inner = tmp_path / "inner"
    _link(inner / "bin" / "python", outer / "bin" / "python")
    (inner / "pyvenv.cfg").write_text(f"home = {outer / 'bin'}\n")
    env = tmp_path / "env"
    made = cli(
        "--store", store, "create", env, "-p", inner / "bin" / "python", "--without-pip",
        "--no-index", "-f", wheelhouse, "solo",
    )  # fmt: skip
    assert made.code == 0, made.err
    recorded = _python(env)
    assert recorded["requested"] == str(inner / "bin" / "python")
    assert os.path.realpath(recorded["path"]) == real
    assert str(tmp_path) not in recorded["path"]  # never into another env
    rmtree(outer)
    assert run([env / "bin" / "python", "-c", "import solo"]).returncode == 0


def test_doctor_reports_every_problem(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path, search: list[str]
) -> None:
    from envstore.store.registry import root_name

    real = DEFAULT  # the store fixture holds its pip already
    base = _link(tmp_path / "base" / "python3", real)
    env = tmp_path / "env"
    made = cli(
        "--store", store, "create", env, "-p", base, "--no-index", "-f", wheelhouse, *PURE,
    )  # fmt: skip
    assert made.code == 0, made.err
    py = env / "bin" / "python"
    shadow = run([py, "-m", "pip", "install", "-q", "--no-index", "-f", wheelhouse,
                  "dep-one==1.1"])  # fmt: skip
    assert shadow.returncode == 0, shadow.stderr
    solo = next((store / "entries" / "pure" / "solo").iterdir())
    rmtree(solo)
    (store / "roots" / root_name(env)).unlink()
    base.unlink()

    code, [report] = _doctor(cli, env)
    problems = _problems(report)
    assert code == 1
    assert set(problems) == {"base-missing", "entries-missing", "unregistered", "shadowed"}
    assert "solo 0.5" in problems["entries-missing"]["message"]
    assert problems["shadowed"]["fix"] == f"{py} -m pip uninstall -y dep-one"
    assert problems["base-missing"]["fix"] == ""  # nothing of that ABI was found
    assert f"envstore relink {env}" in problems["base-missing"]["detail"]
    assert problems["entries-missing"]["fix"] == problems["unregistered"]["fix"]
    text = cli("doctor", env)
    assert text.code == 1 and text.out.count("fix: ") == 3 and text.out.count("[") == 4

    # solo's wheel is only in the wheelhouse, which the env recorded when it was made:
    # relink finds it there offline, rebuilds the very same entry, and re-registers.
    fix = ["relink", env, "--python", real]
    fixed = cli(*fix, "--offline")
    assert fixed.code == 0, fixed.err
    assert solo.is_dir()
    code, [report] = _doctor(cli, env)
    assert code == 0 and set(_problems(report)) == {"shadowed"}
    assert run(shlex.split(problems["shadowed"]["fix"])).returncode == 0
    code, [report] = _doctor(cli, env)
    assert (code, report["status"], report["problems"]) == (0, "ok", [])
    assert run([py, "-c", "import dep_one, solo; print(dep_one.VERSION)"]).stdout.strip() == "1.2"


def test_doctor_all_reports_a_missing_env(
    cli: CLI, wheelhouse: Path, tmp_path: Path, bare: Path
) -> None:
    store = bare
    _seed(store, DEFAULT, wheelhouse)
    for name in ("keep", "gone"):
        made = cli("--store", store, "create", tmp_path / name, "-p", DEFAULT,
                   "--without-pip", "--no-index", "-f", wheelhouse, "solo")  # fmt: skip
        assert made.code == 0, made.err
    shutil.rmtree(tmp_path / "gone")
    code, reports = _doctor(cli, "--all", store=store)
    by_env = {r["env"]: r for r in reports}
    assert code == 0  # a vanished env breaks nothing; gc tidies it
    assert by_env[str(tmp_path / "keep")]["status"] == "ok"
    missing = _problems(by_env[str(tmp_path / "gone")])["env-missing"]
    assert missing["fix"] == f"envstore --store {store} gc"
    nothing = cli("doctor")
    assert nothing.code != 0


@pytest.mark.parametrize(
    ("shell", "source"),
    [
        pytest.param("bash", "source {env}/bin/activate; echo rc=$?", id="bash"),
        pytest.param("zsh", "source {env}/bin/activate; echo rc=$?", id="zsh"),
        pytest.param("fish", "source {env}/bin/activate.fish; echo rc=$status", id="fish"),
    ],
)
def test_activation_explains_a_missing_base(
    shell: str, source: str, cli: CLI, wheelhouse: Path, tmp_path: Path, bare: Path
) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"no {shell} here")
    store, real = bare, DEFAULT
    _seed(store, real, wheelhouse)
    base = _link(tmp_path / "base" / "python3", real)
    env = tmp_path / "env"
    made = cli("--store", store, "create", env, "-p", base, "--without-pip",
               "--no-index", "-f", wheelhouse, "solo")  # fmt: skip
    assert made.code == 0, made.err
    ok = run([shell, "-c", source.format(env=env) + "; echo $VIRTUAL_ENV"])
    assert ok.stdout.split() == ["rc=0", str(env)] and ok.stderr == ""
    base.unlink()
    gone = run([shell, "-c", source.format(env=env)])
    assert gone.stdout.strip() == "rc=1"
    assert f"envstore relink {env}" in gone.stderr and str(base) in gone.stderr


def _env_and_copy(cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path) -> tuple[Path, Path]:
    """An env of the default Python and a copy of it (which needs a relink)."""
    _seed(store, DEFAULT, wheelhouse)
    env = tmp_path / "env"
    made = cli("--store", store, "create", env, "-p", DEFAULT, "--without-pip",
               "--no-index", "-f", wheelhouse, *PURE)  # fmt: skip
    assert made.code == 0, made.err
    copy = tmp_path / "copy"
    shutil.copytree(env, copy, symlinks=True)
    return env, copy


def test_copied_env_is_relinked_in_place(
    cli: CLI, wheelhouse: Path, tmp_path: Path, bare: Path
) -> None:
    store = bare
    env, copy = _env_and_copy(cli, wheelhouse, tmp_path, store)
    code, [report] = _doctor(cli, copy)
    assert code == 1 and set(_problems(report)) == {"env-moved", "unregistered"}
    assert _problems(report)["env-moved"]["fix"] == f"envstore relink {copy}"
    res = cli("relink", copy)
    assert res.code == 0, res.err
    _works(copy, _minor_of(DEFAULT))
    _works(env, _minor_of(DEFAULT))  # the original is untouched
    code, reports = _doctor(cli, "--all", store=store)
    assert code == 0 and [r["status"] for r in reports] == ["ok", "ok"]


def test_relinks_of_one_env_wait_for_each_other(
    cli: CLI, wheelhouse: Path, tmp_path: Path, bare: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two relinks of one env would both swap its bin/ and site-packages: the second
    # waits for the first (here: for the test holding the env's lock, then gives up).
    from envstore.store.locks import file_lock

    _, copy = _env_and_copy(cli, wheelhouse, tmp_path, bare)  # a relink with work to do
    monkeypatch.setenv("ENVSTORE_LOCK_TIMEOUT", "0.5")
    with file_lock(copy / ".envstore-lock"):  # the env's own lock file
        res = cli("relink", copy)
    assert res.code == 1 and "timed out" in res.err and str(copy) in res.err
    assert _doctor(cli, copy)[0] == 1  # untouched: still needs its relink
    res = cli("relink", copy)
    assert res.code == 0, res.err
    _works(copy, _minor_of(DEFAULT))


def test_create_clear_takes_turns_with_a_relink_of_the_same_env(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A relink re-registers the env it works on; a create --clear (or sync) swapping
    # the env at the same time would have its registration replaced by the old one's.
    from envstore.store.locks import file_lock

    env = tmp_path / "env"
    made = cli("--store", store, "create", env, "--no-index", "-f", wheelhouse, "solo")
    assert made.code == 0, made.err
    monkeypatch.setenv("ENVSTORE_LOCK_TIMEOUT", "0.5")
    clear = ("--store", store, "create", "--clear", env, "--no-index", "-f", wheelhouse)
    with file_lock(env / ".envstore-lock"):  # as a relink of it holds
        res = cli(*clear, "hello-app")
    assert res.code == 1 and "timed out" in res.err and str(env) in res.err
    assert run([env / "bin" / "python", "-c", "import solo"]).returncode == 0  # unchanged
    assert not (env / "bin" / "hello").exists()
    res = cli(*clear, "hello-app")
    assert res.code == 0, res.err
    assert run([env / "bin" / "hello"]).returncode == 3


def test_the_env_lock_follows_a_directory_replaced_while_waiting(tmp_path: Path) -> None:
    import threading
    import time

    from envstore.store.locks import env_lock, file_lock

    env = tmp_path / "env"
    env.mkdir()
    got = threading.Event()
    done = threading.Event()

    def waiter() -> None:
        with env_lock(env):
            got.set()
            done.wait(30)

    old_holder = file_lock(env / ".envstore-lock")  # the old env's holder (create --clear)
    old_holder.__enter__()
    thread = threading.Thread(target=waiter)  # a thread: OFD locks exclude those too
    thread.start()
    try:
        time.sleep(0.2)
        assert not got.is_set()
        env.rename(tmp_path / "old")  # the holder swaps a new directory in
        env.mkdir()
        with file_lock(env / ".envstore-lock"):  # and someone holds that one's
            old_holder.__exit__(None, None, None)  # releases the old env's lock
            time.sleep(0.3)
            assert not got.is_set()  # the old env's lock was not enough
        assert got.wait(10)
    finally:
        done.set()
        thread.join(10)
    with pytest.raises(FileNotFoundError):  # an error inside the lock is the caller's
        with env_lock(env):
            (tmp_path / "missing").read_text()


def test_relink_makes_a_deleted_bin_again(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path
) -> None:
    env = tmp_path / "env"
    made = cli("--store", store, "create", env, "--no-index", "-f", wheelhouse, "hello-app")
    assert made.code == 0, made.err
    shutil.rmtree(env / "bin")
    code, [report] = _doctor(cli, env)
    assert code == 1 and {p["fix"] for p in _problems(report).values()} == {
        f"envstore relink {env}"
    }
    fixed = cli("--store", store, "relink", env)
    assert fixed.code == 0, fixed.err
    assert _doctor(cli, env)[0] == 0
    assert run([env / "bin" / "hello"]).returncode == 3
    assert run([env / "bin" / "pip", "--version"]).stdout.startswith("pip ")

    # bin/ as a link to a directory elsewhere, then dangling: relink handles both.
    (env / "bin").rename(tmp_path / "bin-elsewhere")
    (env / "bin").symlink_to(tmp_path / "bin-elsewhere")
    assert cli("--store", store, "relink", env).code == 0
    assert run([env / "bin" / "hello"]).returncode == 3
    shutil.rmtree(tmp_path / "bin-elsewhere")
    assert cli("--store", store, "relink", env).code == 0
    assert run([env / "bin" / "hello"]).returncode == 3

    # A copy of the interpreter instead of the link still runs: a warning, not broken.
    python = env / "bin" / "python"
    real = os.path.realpath(python)
    python.unlink()
    shutil.copy2(real, python)
    code, [report] = _doctor(cli, env)
    assert code == 0 and _problems(report)["links"]["severity"] == "warning"
    assert "a file, not a link" in _problems(report)["links"]["message"]


def test_a_changed_script_launcher_is_reported_and_written_again(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path
) -> None:
    env = tmp_path / "env"
    made = cli("--store", store, "create", env, "--no-index", "-f", wheelhouse, "hello-app")
    assert made.code == 0, made.err
    assert _doctor(cli, env)[0] == 0
    # An installer that wrote through bin/hello's link (as root: the file is 0555).
    launcher = env / "bin" / os.readlink(env / "bin" / "hello")
    launcher.chmod(0o755)
    launcher.write_text(f"#!{env}/bin/python\nprint('not hello')\n")
    assert run([env / "bin" / "pip", "--version"]).stdout == "not hello\n"
    code, [report] = _doctor(cli, env)
    problems = _problems(report)
    assert code == 1 and set(problems) == {"scripts"}
    assert problems["scripts"]["fix"] == f"envstore relink {env}"
    fixed = cli("--store", store, "relink", env)
    assert fixed.code == 0, fixed.err
    assert _doctor(cli, env)[0] == 0
    assert run([env / "bin" / "hello"]).returncode == 3
    assert run([env / "bin" / "pip", "--version"]).stdout.startswith("pip ")
