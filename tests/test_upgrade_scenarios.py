"""Base-Python upgrades on whole-prefix copies: doctor's diagnosis, and its printed fix.

Each install is a hard-linked copy of a whole pyenv prefix (``cp -al``: a prefix is
~300 MB, its links cost ~0.1 s), so the interpreter runs from the copy and finds its
stdlib in the copy (a copied binary beside a symlinked stdlib hides what a removed
prefix does). Each scenario runs ``envstore doctor``, checks the diagnosis, runs the
printed fix as printed, and checks imports, console scripts and ``pip list``.

candidates() is limited to the directories a test adds (``search``), and pip is
pointed at a closed port, so nothing reaches the network.
"""

from __future__ import annotations

import itertools
import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import wheelmaker
from conftest import CLI, MINORS, PYTHONS, run

from envstore.python import interpreters as _interpreters
from envstore.store.fs import rmtree
from envstore.store.layout import Store

PKGS = ["hello-app", "solo"]  # hello-app brings dep-one and the console script `hello`
CHECK = (
    "import os, sys, hello_app, dep_one, solo; print('%d.%d' % sys.version_info[:2],"
    " sys.prefix, os.path.realpath(sys.base_prefix), os.path.realpath(os.__file__))"
)
_AVAILABLE = [m for m in MINORS if PYTHONS.get(m)]
ONE = next((m for m in ("3.12", "3.13", "3.11", "3.10", "3.9") if PYTHONS.get(m)), None)
A, B = (_AVAILABLE[-2], _AVAILABLE[-1]) if len(_AVAILABLE) >= 2 else (None, None)


_INSTALLS: list[Path] = []  # prefix copies made by the running test


def _needs(*minors: str | None) -> pytest.MarkDecorator:
    missing = [str(m) for m in minors if m is None or not PYTHONS.get(m)]
    return pytest.mark.skipif(bool(missing), reason=f"no Python {', '.join(missing)} here")


needs_two = pytest.mark.skipif(B is None, reason="needs two CPython minor versions")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any pip that envstore runs without --no-index fails at once instead of downloading."""
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple/")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")


@pytest.fixture(autouse=True)
def _drop_installs() -> Iterator[None]:
    """Remove the prefix copies after each test: kept ones slow pytest's tmp clean-up."""
    yield
    while _INSTALLS:
        shutil.rmtree(_INSTALLS.pop(), ignore_errors=True)


@pytest.fixture
def search(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The directories candidates() searches: only what a test adds."""
    dirs: list[str] = []
    monkeypatch.setattr(_interpreters, "_search_dirs", lambda: list(dirs))
    return dirs


# -- installs --------------------------------------------------------------------


def _version(minor: str) -> str:
    """The full version (X.Y.Z) of this machine's Python ``minor``."""
    out = run([str(PYTHONS[minor]), "-c", "import platform; print(platform.python_version())"])
    return out.stdout.strip()


def _install(minor: str, prefix: Path) -> Path:
    """A whole copy of Python ``minor``'s prefix at ``prefix`` (merged into it if it
    exists, as a distro's /usr holds several minors); returns ``prefix/bin/pythonX.Y``."""
    src = Path(os.path.realpath(str(PYTHONS[minor]))).parent.parent
    if str(src) in ("/", "/usr", "/usr/local"):  # a distribution's: not a prefix to copy
        pytest.skip(f"Python {minor} here is the system's ({src}), not an install of its own")
    merge = prefix.exists()
    _INSTALLS.append(prefix)
    prefix.mkdir(parents=True, exist_ok=True)
    linked = os.stat(src).st_dev == os.stat(prefix).st_dev and (
        subprocess.run(
            ["cp", "-al", "--remove-destination", f"{src}/.", str(prefix)],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    if not linked:  # another file system, or links refused: copy what start-up needs
        if not merge:
            rmtree(prefix)
        skip = shutil.ignore_patterns("test", "tests", "idlelib", "tkinter", "turtledemo")
        shutil.copytree(src, prefix, symlinks=True, ignore=skip, dirs_exist_ok=True)
    python = prefix / "bin" / f"python{minor}"
    out = run([python, "-c", "import os, sys; print(sys.prefix, os.__file__)"])
    where = out.stdout.split()
    if out.returncode != 0 or where[0] != str(prefix) or not where[1].startswith(f"{prefix}/"):
        pytest.skip(f"a copy of {src} does not run from its own prefix: {out.stdout}{out.stderr}")
    return python


def _link(path: Path, target: str | Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        path.unlink()
    os.symlink(target, path)
    return path


def _seed(store: Path, python: Path, *wheel_dirs: Path) -> None:
    """Ingest every wheel in ``wheel_dirs`` into ``store`` for ``python``."""
    from envstore.python.interpreters import find_interpreter
    from envstore.store.ingest import ingest_wheels

    st = Store(store)
    st.ensure()
    try:
        interp = find_interpreter(str(python), st.facts_cache())
        with st.gc_lock(shared=True):
            ingest_wheels(st, [w for d in wheel_dirs for w in sorted(d.glob("*.whl"))], interp)
    finally:
        st.close()


# -- checks ----------------------------------------------------------------------


def _works(env: Path, minor: str, install: Path, *, pip: bool = True) -> None:
    """Imports, a console script and ``pip list`` work, on the stdlib of ``install``."""
    out = run([env / "bin" / "python", "-c", CHECK])
    assert out.returncode == 0, out.stderr
    version, prefix, base, os_file = out.stdout.split()
    real = os.path.realpath(install)
    assert (version, prefix) == (minor, str(env))
    assert base == real and os_file.startswith(real + os.sep), (base, os_file)  # its own stdlib
    hello = run([env / "bin" / "hello"])
    assert hello.returncode == 3 and f"hello from {env}" in hello.stdout, hello.stderr
    if pip:
        listed = run([env / "bin" / "pip", "list", "--format=json"])
        assert listed.returncode == 0, listed.stderr
        names = {p["name"].lower() for p in json.loads(listed.stdout)}
        assert names >= {"pip", "hello-app", "dep-one", "solo"}, names


def _doctor(cli: CLI, env: Path) -> tuple[int, dict]:  # type: ignore[type-arg]
    res = cli("doctor", "--json", env)
    (report,) = json.loads(res.out)
    return res.code, report


def _codes(report: dict) -> dict[str, dict[str, str]]:  # type: ignore[type-arg]
    return {p["code"]: p for p in report["problems"]}


def _broken_fix(cli: CLI, env: Path) -> tuple[dict, str]:  # type: ignore[type-arg]
    """Doctor's report for a broken env and the one command it prints to fix it."""
    code, report = _doctor(cli, env)
    assert (code, report["status"]) == (1, "broken"), report
    fixes = {p["fix"] for p in report["problems"] if p["severity"] == "broken" and p["fix"]}
    assert len(fixes) == 1, report
    (fix,) = fixes
    assert f"fix: {fix}" in cli("doctor", env).out  # printed as the JSON says
    return report, fix


def _run_fix(cli: CLI, fix: str) -> str:
    """Run an ``envstore ...`` command line exactly as printed."""
    argv = shlex.split(fix)
    assert argv[0] == "envstore", fix
    res = cli(*argv[1:])
    assert res.code == 0, f"{fix}\n{res.err}"
    return res.out


def _healthy(cli: CLI, env: Path) -> None:
    code, report = _doctor(cli, env)
    assert (code, report["status"]) == (0, "ok"), report
    assert not [p for p in report["problems"] if p["severity"] != "note"], report


def _activate(env: Path, then: str = "") -> subprocess.CompletedProcess[str]:
    return run(["bash", "-c", f". {shlex.quote(str(env))}/bin/activate; echo rc=$?; {then}"])


def _find_links(argv: list[str], d: Path) -> bool:
    """Whether the command line ``argv`` passes ``-f d`` (in any spelling)."""
    pairs = itertools.pairwise(argv)
    return any(a in ("-f", "--find-links") and b == str(d) for a, b in pairs) or (
        f"--find-links={d}" in argv
    )


def _cfg(env: Path) -> dict[str, str]:
    lines = (env / "pyvenv.cfg").read_text().splitlines()
    return {k.strip(): v.strip() for k, _, v in (ln.partition("=") for ln in lines)}


def _create(cli: CLI, store: Path, env: Path, python: Path, *args: str | Path) -> None:
    made = cli("--store", store, "create", env, "-p", python, *args)
    assert made.code == 0, made.err


# -- (a) 3.9 -> 3.12: the env's pip 23.0.1 cannot run on 3.12 ---------------------------


@_needs("3.9", "3.12")
def test_a_39_removed_relinked_to_312_as_doctor_prints(
    cli: CLI, wheelhouse: Path, tmp_path: Path, search: list[str]
) -> None:
    old = _install("3.9", tmp_path / "opt" / "python3.9")
    env, store = tmp_path / "env", tmp_path / "store"
    _create(cli, store, env, old, "--no-index", "-f", wheelhouse, *PKGS)
    _works(env, "3.9", old.parent.parent)
    assert run([env / "bin" / "pip", "--version"]).stdout.startswith("pip 23.0.1 ")
    new = _install("3.12", tmp_path / "opt" / "python3.12")
    search.append(str(new.parent))
    rmtree(old.parent.parent)  # 3.9 uninstalled

    report, fix = _broken_fix(cli, env)
    assert "base-missing" in _codes(report)
    assert shlex.split(fix)[2] == str(env) and str(new.parent) in fix
    out = _run_fix(cli, fix)
    assert "pip 23.0.1 -> " in out, out
    _works(env, "3.12", new.parent.parent)
    _healthy(cli, env)


# -- (b) 3.10 -> 3.9: Requires-Python ------------------------------------------------


@pytest.fixture(scope="module")
def modern(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``modern`` 2.0 needs Python >= 3.10; 1.0 runs on 3.9."""
    wh = tmp_path_factory.mktemp("modern")
    for version, spec in (("1.0", ">=3.9"), ("2.0", ">=3.10")):
        wheelmaker.build_wheel(
            wh,
            "modern",
            version,
            files={"modern.py": f"V = {version!r}\n"},
            metadata_extra=[f"Requires-Python: {spec}"],
        )
    return wh


@_needs("3.9", "3.10")
def test_b_310_removed_relinked_to_39_takes_a_version_that_runs_there(
    cli: CLI, wheelhouse: Path, modern: Path, tmp_path: Path, search: list[str]
) -> None:
    old = _install("3.10", tmp_path / "opt" / "python3.10")
    env, store = tmp_path / "env", tmp_path / "store"
    # Both versions in the store (as an earlier env would have left them): this is about
    # Requires-Python, not about where wheels come from (that is (f)).
    _seed(store, old, modern)
    _create(cli, store, env, old, "--no-index", "-f", wheelhouse, "-f", modern, *PKGS, "modern")
    modern_v = [env / "bin" / "python", "-c", "import modern; print(modern.V)"]
    assert run(modern_v).stdout == "2.0\n"
    new = _install("3.9", tmp_path / "opt" / "python3.9")
    search.append(str(new.parent))
    rmtree(old.parent.parent)

    report, fix = _broken_fix(cli, env)
    assert "base-missing" in _codes(report) and str(new.parent) in fix
    out = _run_fix(cli, fix)
    assert "modern 2.0 -> 1.0" in out, out
    out_v = run(modern_v)
    assert out_v.stdout == "1.0\n", out_v.stderr
    _works(env, "3.9", new.parent.parent)
    _healthy(cli, env)


# -- (c) a relocatable prefix behind a symlink, replaced by a new patch release ----------


def _prefix_names(minor: str) -> tuple[str, str]:
    """Names of an install's prefix and of its next patch release's (a copy stands in)."""
    version = _version(minor)
    major_minor, _, patch = version.rpartition(".")
    return f"Python{version}", f"Python{major_minor}.{int(patch) + 1}"


@_needs(ONE)
def test_c_relocatable_prefix_behind_a_link_replaced_by_a_new_patch(
    cli: CLI, wheelhouse: Path, tmp_path: Path, search: list[str]
) -> None:
    """local/bin/pythonX.Y -> opt/PythonX.Y.Z/bin/pythonX.Y; a new patch in a new prefix,
    the link re-pointed, the old prefix removed: doctor must not say ok."""
    minor = str(ONE)
    opt = tmp_path / "opt"
    old_name, new_name = _prefix_names(minor)
    old = _install(minor, opt / old_name)
    link = _link(tmp_path / "local" / "bin" / f"python{minor}", old)
    search.append(str(link.parent))
    env, store = tmp_path / "env", tmp_path / "store"
    _create(cli, store, env, link, "--no-index", "-f", wheelhouse, *PKGS)
    _works(env, minor, opt / old_name)

    new = _install(minor, opt / new_name)
    _link(link, new)
    rmtree(opt / old_name)

    _, fix = _broken_fix(cli, env)  # home no longer holds this Python's stdlib
    activation = _activate(env)
    assert "rc=1" in activation.stdout, activation.stderr  # activation says so too
    assert f"envstore relink {env}" in activation.stderr
    _run_fix(cli, fix)
    _works(env, minor, opt / new_name)
    _healthy(cli, env)
    assert _activate(env).stdout.strip() == "rc=0"


@_needs(ONE)
@pytest.mark.parametrize("via", ["through", "beside"])
def test_c_a_stable_directory_link_is_recorded_and_survives_a_new_patch(
    cli: CLI, wheelhouse: Path, tmp_path: Path, search: list[str], via: str
) -> None:
    """opt/pythonX.Y -> PythonX.Y.Z, a stable link to the prefix; the command link goes
    through it (``through``) or straight into the prefix (``beside``). The env records
    the stable link, so a new patch release in a new prefix needs no relink."""
    minor = str(ONE)
    opt = tmp_path / "opt"
    old_name, new_name = _prefix_names(minor)
    _install(minor, opt / old_name)
    stable = _link(opt / f"python{minor}", old_name)
    into = stable if via == "through" else opt / old_name
    link = _link(tmp_path / "local" / "bin" / f"python{minor}", into / "bin" / f"python{minor}")
    search.append(str(link.parent))
    env, store = tmp_path / "env", tmp_path / "store"
    _create(cli, store, env, link, "--no-index", "-f", wheelhouse, *PKGS)
    cfg = (env / "pyvenv.cfg").read_text()
    assert f"home = {stable / 'bin'}\n" in cfg, cfg
    _works(env, minor, opt / old_name)

    _install(minor, opt / new_name)
    _link(stable, new_name)
    if via == "beside":
        _link(link, opt / new_name / "bin" / f"python{minor}")
    rmtree(opt / old_name)

    _works(env, minor, opt / new_name)  # without any relink
    _healthy(cli, env)
    assert (env / "pyvenv.cfg").read_text() == cfg
    assert _activate(env).stdout.strip() == "rc=0"


# -- (d) an alternatives-style link switched -----------------------------------------


@needs_two
def test_d_alternatives_switch_on_a_distro_prefix(
    cli: CLI, wheelhouse: Path, tmp_path: Path, search: list[str]
) -> None:
    """usr/ holds two minors (whole prefixes merged, as a distro's /usr);
    usr/bin/python3 -> etc/alternatives/python3 -> usr/bin/pythonA, then switched to B."""
    a, b = str(A), str(B)
    usr = tmp_path / "usr"
    py_a = _install(a, usr)
    _install(b, usr)
    alternatives = tmp_path / "etc" / "alternatives"
    _link(alternatives / "python3", py_a)
    python3 = _link(usr / "bin" / "python3", alternatives / "python3")
    search.append(str(usr / "bin"))
    env, store = tmp_path / "env", tmp_path / "store"
    _create(cli, store, env, python3, "--no-index", "-f", wheelhouse, *PKGS)
    manifest = json.loads((env / "envstore.json").read_text())
    assert manifest["python"]["path"] == str(py_a)  # pinned to the minor, not python3
    assert f"home = {usr / 'bin'}\n" in (env / "pyvenv.cfg").read_text()
    _works(env, a, usr)

    _link(alternatives / "python3", usr / "bin" / f"python{b}")  # update-alternatives
    now = run([python3, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
    assert now.stdout.strip() == b
    code, report = _doctor(cli, env)
    assert (code, report["problems"]) == (0, []), report
    _works(env, a, usr)


# -- (e) a moved env activated -------------------------------------------------------


@_needs(ONE)
def test_e_moved_env_activation_prints_a_relink_that_works_as_printed(
    cli: CLI, wheelhouse: Path, tmp_path: Path, search: list[str]
) -> None:
    if shutil.which("bash") is None:
        pytest.skip("no bash here")
    minor = str(ONE)
    python = _install(minor, tmp_path / "opt" / f"python{minor}")
    search.append(str(python.parent))
    env, store = tmp_path / "env", tmp_path / "store"
    _create(cli, store, env, python, "--no-index", "-f", wheelhouse, *PKGS)
    moved = tmp_path / "elsewhere" / "env"
    moved.parent.mkdir()
    env.rename(moved)

    res = _activate(moved)
    assert res.stdout.strip() == "rc=1", res.stderr
    assert f"was moved or copied to {moved}" in res.stderr, res.stderr
    (line,) = [ln for ln in res.stderr.splitlines() if "envstore relink" in ln]
    fix = line[line.index("envstore relink") :]
    assert shlex.split(fix)[:3] == ["envstore", "relink", str(moved)], fix
    _run_fix(cli, fix)

    then = "echo $VIRTUAL_ENV; python -c 'import hello_app, solo'; echo py=$?; hello; echo $?"
    ok = _activate(moved, then)
    assert ok.stdout.split()[:3] == ["rc=0", str(moved), "py=0"], ok.stdout + ok.stderr
    assert ok.stdout.split()[-1] == "3", ok.stdout + ok.stderr
    _works(moved, minor, python.parent.parent)
    _healthy(cli, moved)


# -- (f) relink remembers where the wheels came from -----------------------------------


@pytest.fixture(scope="module")
def ext_dir(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> Path:
    """One directory: ext-pkg 1.0 (a real C extension) for A and for B, and the pure
    wheels of PKGS."""
    d = tmp_path_factory.mktemp("find-links")
    for minor in (A, B):
        if minor is not None:
            wheelmaker.build_extension_wheel(d, "ext-pkg", "1.0", os.path.realpath(PYTHONS[minor]))
    for wheel in wheelhouse.glob("*.whl"):
        shutil.copy(wheel, d)
    return d


def _abi_entries(store: Path, name: str, minor: str) -> list[Path]:
    abi = "cpython-" + minor.replace(".", "") + "-"  # cpython-313-x86_64-linux-gnu
    return [
        p for p in (store / "entries").glob(f"*/{name}/*") if p.parent.parent.name.startswith(abi)
    ]


EXT = [*PKGS, "ext-pkg"]
ANSWER = "import ext_pkg; print(ext_pkg.answer())"


@needs_two
def test_f_offline_relink_uses_the_create_time_find_links(
    cli: CLI, ext_dir: Path, tmp_path: Path, search: list[str]
) -> None:
    a, b = str(A), str(B)
    old = _install(a, tmp_path / "opt" / f"python{a}")
    new = _install(b, tmp_path / "opt" / f"python{b}")
    search.append(str(new.parent))
    store = tmp_path / "store"
    envs = [tmp_path / "explicit", tmp_path / "printed"]
    for env in envs:
        _create(cli, store, env, old, "--no-index", "-f", ext_dir, *EXT)
        assert run([env / "bin" / "python", "-c", ANSWER]).stdout == "42\n"
    argv = shlex.split(_cfg(envs[0])["command"])
    assert ("-p" in argv or "--python" in argv) and _find_links(argv, ext_dir), argv
    assert str(ext_dir) in (envs[0] / "envstore.json").read_text()  # the sources are recorded
    assert not _abi_entries(store, "ext-pkg", b)
    rmtree(old.parent.parent)  # Python A uninstalled

    # relink --offline, no -f: the wheels for B come from the recorded directory.
    res = cli("relink", envs[0], "--python", new, "--offline")
    assert res.code == 0, res.err
    assert _abi_entries(store, "ext-pkg", b)
    assert run([envs[0] / "bin" / "python", "-c", ANSWER]).stdout == "42\n"
    _works(envs[0], b, new.parent.parent)
    _healthy(cli, envs[0])

    # What doctor and activation suggest works as printed: relink reads the recorded
    # sources itself (store-layout.md: the printed commands stay short).
    env = envs[1]
    report, fix = _broken_fix(cli, env)
    assert "base-missing" in _codes(report)
    activation = _activate(env)
    (line,) = [ln for ln in activation.stderr.splitlines() if "envstore relink" in ln]
    assert "rc=1" in activation.stdout, activation.stderr
    _run_fix(cli, fix)
    assert run([env / "bin" / "python", "-c", ANSWER]).stdout == "42\n"
    _works(env, b, new.parent.parent)
    _healthy(cli, env)
    assert f"envstore relink {env}" in line, line


@needs_two
def test_f_a_crafted_manifest_does_not_choose_where_relink_looks(
    cli: CLI, ext_dir: Path, tmp_path: Path, search: list[str]
) -> None:
    a, b = str(A), str(B)
    old = _install(a, tmp_path / "opt" / f"python{a}")
    new = _install(b, tmp_path / "opt" / f"python{b}")
    search.append(str(new.parent))
    mine, crafted = tmp_path / "mine", tmp_path / "crafted"
    shutil.copytree(ext_dir, mine)
    crafted.mkdir()
    tag = "cp" + b.replace(".", "")
    (wheel,) = mine.glob(f"ext_pkg-*-{tag}-*.whl")
    wheel.rename(crafted / wheel.name)  # B's wheel only in the crafted directory
    env, store = tmp_path / "env", tmp_path / "store"
    _create(cli, store, env, old, "--without-pip", "--no-index", "-f", mine, *EXT)
    manifest = env / "envstore.json"
    text = manifest.read_text()
    manifest.write_text(text.replace(json.dumps(str(mine)), json.dumps(str(crafted))))
    before = manifest.read_text()
    assert str(crafted) in before  # the recorded sources now name the crafted directory
    rmtree(old.parent.parent)

    res = cli("relink", env, "--python", new, "--offline")
    assert res.code != 0, res.out
    assert not _abi_entries(store, "ext-pkg", b)  # nothing was built from the crafted dir
    assert manifest.read_text() == before


@needs_two
def test_f_index_credentials_are_never_written(cli: CLI, wheelhouse: Path, tmp_path: Path) -> None:
    python = _install(str(A), tmp_path / "opt" / f"python{A}")
    env, store = tmp_path / "env", tmp_path / "store"
    index = "https://user:S3cr3tT0ken@example.invalid/simple"
    _create(cli, store, env, python, "--without-pip", "--index-url", index, "--no-index",
            "-f", wheelhouse, "solo")  # fmt: skip
    cfg = (env / "pyvenv.cfg").read_text()
    assert "https://example.invalid/simple" in cfg, cfg  # the index option, without the secret
    assert "example.invalid" in (env / "envstore.json").read_text()
    leaks = []
    for root in (env, store):
        for dirpath, _, files in os.walk(root):
            for name in files:
                path = Path(dirpath, name)
                if not path.is_symlink() and b"S3cr3tT0ken" in path.read_bytes():
                    leaks.append(str(path))
    assert leaks == []
