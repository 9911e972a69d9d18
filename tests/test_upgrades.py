"""Base-Python upgrades, round two: a relinked env is whole (its pip runs, every
package's Requires-Python holds), and doctor never calls such an env ok."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import wheelmaker
from conftest import CLI, PYTHONS, run

from envstore.store.fs import rmtree

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


def _other_minors() -> tuple[str, str] | None:
    found = [m for m in ("3.10", "3.11", "3.12", "3.13") if PYTHONS.get(m)]
    return (found[0], found[1]) if len(found) >= 2 else None


@pytest.mark.skipif(_other_minors() is None, reason="needs two CPython minor versions")
def test_an_alternatives_style_python3_is_recorded_by_its_minor(
    cli: CLI, wheelhouse: Path, tmp_path: Path
) -> None:
    """/usr/bin/python3 -> /etc/alternatives/python3 -> /usr/bin/python3.X: switching the
    alternative to another minor must not break the env."""
    a, b = _other_minors()  # type: ignore[misc]
    usr_bin, alternatives = tmp_path / "usr" / "bin", tmp_path / "etc" / "alternatives"
    usr_bin.mkdir(parents=True)
    alternatives.mkdir(parents=True)
    for minor in (a, b):
        (usr_bin / f"python{minor}").symlink_to(os.path.realpath(str(PYTHONS[minor])))
    (alternatives / "python3").symlink_to(usr_bin / f"python{a}")
    (usr_bin / "python3").symlink_to(alternatives / "python3")
    env = tmp_path / "env"
    made = cli("--store", tmp_path / "store", "create", env, "-p", usr_bin / "python3",
               "--without-pip", "--no-index", "-f", wheelhouse, "solo")  # fmt: skip
    assert made.code == 0, made.err
    recorded = json.loads((env / "envstore.json").read_text())["python"]["path"]
    assert recorded == str(usr_bin / f"python{a}")
    (alternatives / "python3").unlink()
    (alternatives / "python3").symlink_to(usr_bin / f"python{b}")  # update-alternatives
    out = run([env / "bin" / "python", "-c", "import sys, solo; print(sys.version_info[:2])"])
    assert out.returncode == 0 and out.stdout.strip() == str(tuple(map(int, a.split(".")))), (
        out.stderr
    )


@pytest.mark.skipif(_other_minors() is None, reason="needs two CPython minor versions")
def test_doctor_flags_an_unpinned_python3_and_relink_pins_it(
    cli: CLI, wheelhouse: Path, tmp_path: Path
) -> None:
    a, _ = _other_minors()  # type: ignore[misc]
    usr_bin, alternatives = tmp_path / "usr" / "bin", tmp_path / "etc" / "alternatives"
    usr_bin.mkdir(parents=True)
    alternatives.mkdir(parents=True)
    (usr_bin / f"python{a}").symlink_to(os.path.realpath(str(PYTHONS[a])))
    (alternatives / "python3").symlink_to(usr_bin / f"python{a}")
    (usr_bin / "python3").symlink_to(alternatives / "python3")
    env, store = tmp_path / "env", tmp_path / "store"
    made = cli("--store", store, "create", env, "-p", usr_bin / "python3", "--without-pip",
               "--no-index", "-f", wheelhouse, "solo")  # fmt: skip
    assert made.code == 0, made.err
    # As an envstore before this rule recorded it: the plain python3.
    manifest = json.loads((env / "envstore.json").read_text())
    manifest["python"]["path"] = str(usr_bin / "python3")
    (env / "envstore.json").write_text(json.dumps(manifest))
    (env / "bin" / "python").unlink()
    (env / "bin" / "python").symlink_to(usr_bin / "python3")
    problem = _doctor(cli, env)["base-unpinned"]
    assert problem["fix"] == f"envstore relink {env}" and f"python{a}" in problem["message"]
    assert cli("--store", store, "relink", env).code == 0
    assert os.readlink(env / "bin" / "python") == str(usr_bin / f"python{a}")
    assert _doctor(cli, env) == {}


@pytest.mark.parametrize("shell", ["bash", "dash"])
def test_activating_a_moved_env_says_it_moved_and_how_to_relink_it(
    cli: CLI, wheelhouse: Path, tmp_path: Path, shell: str
) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"no {shell} here")
    env = tmp_path / "env"
    made = cli("--store", tmp_path / "store", "create", env, "--without-pip", "--no-index",
               "-f", wheelhouse, "solo")  # fmt: skip
    assert made.code == 0, made.err
    ok = run([shell, "-c", f". {env}/bin/activate; echo rc=$?"])
    assert ok.stdout.strip() == "rc=0" and ok.stderr == "", ok.stderr  # sh too: no errors
    if shell == "bash":  # a cd that prints (a function, a hook) is not a move
        noisy_cd = 'cd() { builtin cd "$@" && echo noise; }; '
        noisy = run([shell, "-c", noisy_cd + f". {env}/bin/activate; echo rc=$?"])
        assert noisy.stdout.strip().endswith("rc=0"), noisy.stderr
    moved = tmp_path / "elsewhere" / "env"
    moved.parent.mkdir()
    env.rename(moved)
    res = run([shell, "-c", f". {moved}/bin/activate; echo rc=$?"])
    if shell == "dash":  # sh cannot know the sourced file's place: the old message
        assert "rc=1" in res.stdout and "Bad substitution" not in res.stderr
        return
    assert res.stdout.strip() == "rc=1"
    assert f"was moved or copied to {moved}" in res.stderr
    assert f"envstore relink {moved}" in res.stderr and "is gone" not in res.stderr


@pytest.mark.skipif(_other_minors() is None, reason="needs two CPython minor versions")
def test_with_no_same_minor_left_doctor_and_relink_print_a_command_that_works(
    cli: CLI, wheelhouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from envstore.python import interpreters as _interpreters

    a, b = _other_minors()  # type: ignore[misc]
    base = tmp_path / "gone" / f"python{a}"
    base.parent.mkdir()
    base.symlink_to(os.path.realpath(str(PYTHONS[a])))
    other = tmp_path / "other" / f"python{b}"
    other.parent.mkdir()
    other.symlink_to(os.path.realpath(str(PYTHONS[b])))
    monkeypatch.setattr(_interpreters, "_search_dirs", lambda: [str(other.parent)])
    env, store = tmp_path / "env", tmp_path / "store"
    made = cli("--store", store, "create", env, "-p", base, "--without-pip", "--no-index",
               "-f", wheelhouse, "solo")  # fmt: skip
    assert made.code == 0, made.err
    base.unlink()  # its Python uninstalled; only another minor is left
    fix = _doctor(cli, env)["base-missing"]["fix"]
    assert fix == f"envstore relink {env} --python {other}"  # no "3.X" to fill in
    refused = cli("--store", store, "relink", env)
    assert refused.code == 1 and fix in refused.err
    res = cli("--store", store, *fix.split()[1:], "--offline")
    assert res.code == 0, res.err
    assert run([env / "bin" / "python", "-c", "import solo"]).returncode == 0


def test_sources_are_recorded_without_credentials_and_a_crafted_one_is_never_used(
    cli: CLI, wheelhouse: Path, tmp_path: Path
) -> None:
    env, store = tmp_path / "env", tmp_path / "store"
    made = cli("--store", store, "create", env, "--without-pip", "--no-index", "-f", wheelhouse,
               "--index-url", "https://user:secret@example.invalid/simple", "solo")  # fmt: skip
    assert made.code == 0, made.err
    sources = json.loads((env / "envstore.json").read_text())["sources"]
    assert sources == {
        "find_links": [str(wheelhouse)],
        "index_url": "https://example.invalid/simple",
        "no_index": True,
    }
    cfg = (env / "pyvenv.cfg").read_text()
    assert f"-f {wheelhouse}" in cfg and "--no-index" in cfg
    assert not any("secret" in p.read_text() for p in (env / "envstore.json", env / "pyvenv.cfg"))

    # A manifest changed since the store registered it names its own sources: relink
    # ignores them (it would look only where the user says).
    crafted = tmp_path / "crafted-wheels"
    wheelmaker.build_wheel(crafted, "solo", "0.5", files={"solo.py": "X = 'crafted'\n"})
    data = json.loads((env / "envstore.json").read_text())
    data["sources"] = {"find_links": [str(crafted)], "index_url": None, "no_index": True}
    (env / "envstore.json").write_text(json.dumps(data))
    rmtree(next((store / "entries" / "pure" / "solo").iterdir()))  # relink must fetch it
    res = cli("--store", store, "relink", env, "--offline")
    assert res.code == 1 and "solo 0.5" in res.err and "did not register them" in res.err
    assert not list(store.glob("entries/pure/solo/*/site/solo.py"))  # nothing from there


def test_a_version_1_manifest_is_read_relinked_and_written_as_the_current_version(
    cli: CLI, wheelhouse: Path, tmp_path: Path
) -> None:
    env, store = tmp_path / "env", tmp_path / "store"
    assert cli("--store", store, "create", env, "--without-pip", "--no-index", "-f", wheelhouse,
               "solo").code == 0  # fmt: skip
    data = json.loads((env / "envstore.json").read_text())
    data["version"] = 1  # as the envstore before sources wrote it
    del data["sources"]
    (env / "envstore.json").write_text(json.dumps(data))
    assert cli("show", env).code == 0
    (env / "bin" / "python").unlink()
    assert cli("--store", store, "relink", env).code == 0
    from envstore.model.manifest import MANIFEST_VERSION

    assert json.loads((env / "envstore.json").read_text())["version"] == MANIFEST_VERSION
    assert _doctor(cli, env) == {}


@pytest.mark.skipif(_other_minors() is None, reason="needs two CPython minor versions")
def test_doctor_names_pip_installed_binary_packages_left_for_the_old_python(
    cli: CLI, wheelhouse: Path, tmp_path: Path
) -> None:
    a, b = _other_minors()  # type: ignore[misc]
    ext = tmp_path / "ext"
    wheelmaker.build_extension_wheel(ext, "ext-pkg", "1.0", str(PYTHONS[a]))
    env, store = tmp_path / "env", tmp_path / "store"
    assert cli("--store", store, "create", env, "-p", a, "--no-index", "-f", wheelhouse,
               "solo").code == 0  # fmt: skip
    pip = run([env / "bin" / "python", "-m", "pip", "install", "--no-index", "-f", ext, "ext-pkg"])
    assert pip.returncode == 0, pip.stderr
    assert _doctor(cli, env) == {}
    assert cli("--store", store, "relink", env, "--python", b, "--no-index", "-f",
               wheelhouse).code == 0  # fmt: skip
    problem = _doctor(cli, env)["pip-installed-abi"]
    assert "ext-pkg==1.0" in problem["message"] and "--force-reinstall" in problem["fix"]


def test_a_directory_reached_twice_lists_its_interpreters_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from envstore.python import interpreters as _interpreters

    real = tmp_path / "usr" / "bin"
    real.mkdir(parents=True)
    (real / "python3.99").symlink_to(os.path.realpath(sys.executable))
    (tmp_path / "bin").symlink_to(real)  # a merged /usr: /bin is /usr/bin
    monkeypatch.setattr(_interpreters, "_search_dirs", lambda: [str(real), str(tmp_path / "bin")])
    assert _interpreters.candidates() == [str(real / "python3.99")]


@pytest.mark.skipif(_other_minors() is None, reason="needs two CPython minor versions")
def test_relink_says_which_entries_the_store_already_had(
    cli: CLI, wheelhouse: Path, tmp_path: Path
) -> None:
    a, b = _other_minors()  # type: ignore[misc]
    ext = tmp_path / "ext"
    for minor in (a, b):
        wheelmaker.build_extension_wheel(ext, "ext-pkg", "1.0", str(PYTHONS[minor]))
    store = tmp_path / "store"
    opts = ["--without-pip", "--no-index", "-f", ext, "-f", wheelhouse, "ext-pkg", "solo"]
    for env, minor in ((tmp_path / "on-a", a), (tmp_path / "on-b", b)):
        assert cli("--store", store, "create", env, "-p", minor, *opts).code == 0
    res = cli("--store", store, "relink", tmp_path / "on-a", "--python", b)
    assert res.code == 0, res.err
    assert "1 taken from the store (ext-pkg 1.0), 0 rebuilt" in res.out, res.out


def test_relink_leaves_alone_an_env_doctor_calls_ok_after_a_kernel_update(
    cli: CLI, wheelhouse: Path, tmp_path: Path
) -> None:
    env, store = tmp_path / "env", tmp_path / "store"
    assert cli("--store", store, "create", env, "--without-pip", "--no-index", "-f", wheelhouse,
               "solo").code == 0  # fmt: skip
    data = json.loads((env / "envstore.json").read_text())
    data["python"]["markers"]["platform_release"] = "5.10.0-old-kernel"
    (env / "envstore.json").write_text(json.dumps(data))
    assert _doctor(cli, env) == {}
    before = (env / "pyvenv.cfg").stat().st_mtime_ns
    res = cli("--store", store, "relink", env)
    assert res.code == 0 and "fine as it is" in res.out, res.out
    assert (env / "pyvenv.cfg").stat().st_mtime_ns == before


@pytest.mark.skipif(_other_minors() is None, reason="needs two CPython minor versions")
def test_relink_with_python_keeps_what_the_env_was_made_with(
    cli: CLI, wheelhouse: Path, tmp_path: Path
) -> None:
    a, b = _other_minors()  # type: ignore[misc]
    env, store = tmp_path / "env", tmp_path / "store"
    assert cli("--store", store, "create", env, "-p", a, "--without-pip", "--no-index",
               "-f", wheelhouse, "solo").code == 0  # fmt: skip
    assert cli("--store", store, "relink", env, "--python", str(PYTHONS[b])).code == 0
    python = json.loads((env / "envstore.json").read_text())["python"]
    assert python["requested"] == a and python["version"].startswith(f"{b}.")


def test_urls_are_recorded_without_user_or_query_and_with_their_hash() -> None:
    from envstore.model.manifest import public_requirement, public_url

    assert (
        public_url("https://u:p@h.example/simple/?private_token=T") == "https://h.example/simple/"
    )
    assert public_url("/abs/wheels") == "/abs/wheels"
    assert (
        public_requirement("foo @ https://bob:pw@h.example/foo-1.0-py3-none-any.whl#sha256=ab")
        == "foo @ https://h.example/foo-1.0-py3-none-any.whl#sha256=ab"
    )


def test_a_dev_builds_version_meets_requires_python(cli: CLI, modern: Path, tmp_path: Path) -> None:
    from envstore.model.keys import EntryKey
    from envstore.python.interpreters import find_interpreter
    from envstore.resolve.fit import misfit
    from envstore.store.layout import Store

    store = tmp_path / "store"
    assert cli("--store", store, "create", tmp_path / "env", "--without-pip", "--no-index",
               "-f", modern, "modern==1.0").code == 0  # fmt: skip
    st = Store(store)
    (entry,) = (store / "entries" / "pure" / "modern").iterdir()
    key = EntryKey.parse(f"pure/modern/{entry.name}")
    dev = find_interpreter(None).replace(version="3.12.1+")  # platform.python_version()
    assert misfit(st, "modern", key, dev) is None


def test_doctor_finds_the_stdlib_under_lib64_where_platlibdir_is_lib64(tmp_path: Path) -> None:
    from envstore.env.doctor_checks import check_home
    from envstore.python.interpreters import find_interpreter

    minor = "3.12"
    usr = tmp_path / "usr"
    (usr / "lib64" / f"python{minor}").mkdir(parents=True)
    (usr / "lib64" / f"python{minor}" / "os.py").write_text("")
    (usr / "bin").mkdir()
    env = tmp_path / "env"
    env.mkdir()
    (env / "pyvenv.cfg").write_text(f"home = {usr / 'bin'}\n")
    interp = find_interpreter(None).replace(
        path=str(usr / "bin" / f"python{minor}"),
        stdlib=str(usr / "lib64" / f"python{minor}"),
        purelib=f"lib/python{minor}/site-packages",
    )
    assert check_home(env, interp, interp) == []


@pytest.fixture
def libs(tmp_path: Path) -> tuple[Path, Path]:
    """``app`` needs ``lib<3``; ``lib`` 1.0 runs only before NEW; newer: 1.5 (runs
    anywhere), 2.0 (needs ``newdep``, which no env here has), 3.0rc1 (a pre-release)."""
    first, later = tmp_path / "first", tmp_path / "later"
    wheelmaker.build_wheel(first, "app", "1.0", files={"app.py": ""}, requires=["lib<3"])
    wheelmaker.build_wheel(first, "lib", "1.0", files={"lib.py": "V = '1.0'\n"},
                           metadata_extra=[f"Requires-Python: <{NEW}"])  # fmt: skip
    wheelmaker.build_wheel(later, "lib", "1.5", files={"lib.py": "V = '1.5'\n"})
    wheelmaker.build_wheel(later, "lib", "2.0", files={"lib.py": "V = '2.0'\n"},
                           requires=["newdep"])  # fmt: skip
    wheelmaker.build_wheel(later, "lib", "3.0rc1", files={"lib.py": "V = '3.0rc1'\n"})
    return first, later


@_needs(OLD_PIP, NEW)
@pytest.mark.parametrize(
    "seeded", [pytest.param(True, id="from-store"), pytest.param(False, id="pip")]
)
def test_relink_takes_a_version_the_env_allows(
    cli: CLI, libs: tuple[Path, Path], tmp_path: Path, seeded: bool
) -> None:
    first, later = libs
    env, store = tmp_path / "env", tmp_path / "store"
    assert cli("--store", store, "create", env, "-p", OLD_PIP, "--without-pip", "--no-index",
               "-f", first, "app").code == 0  # fmt: skip
    if seeded:  # every version in the store already (another env on NEW made them)
        from envstore.python.interpreters import find_interpreter
        from envstore.store.ingest import ingest_wheels
        from envstore.store.layout import Store

        st = Store(store)
        with st.gc_lock(shared=True):
            ingest_wheels(st, sorted(later.glob("*.whl")), find_interpreter(NEW, st.facts_cache()))
    res = cli("--store", store, "relink", env, "--python", NEW, "--no-index", "-f", first,
              "-f", later)  # fmt: skip
    assert res.code == 0, res.err
    assert "lib 1.0 -> 1.5" in res.out, res.out  # not 3.0rc1, not 2.0 (needs newdep)
    assert run([env / "bin" / "python", "-c", "import lib; print(lib.V)"]).stdout == "1.5\n"


@_needs(OLD_PIP, NEW)
@pytest.mark.parametrize(
    ("given", "ok"),
    [
        pytest.param("file", False, id="pin-in-a-requirements-file"),
        pytest.param("args", True, id="a-bound-is-no-pin"),
    ],
)
def test_relink_reads_pins_and_bounds_where_the_user_gave_them(
    cli: CLI, libs: tuple[Path, Path], tmp_path: Path, given: str, ok: bool
) -> None:
    first, later = libs
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("app\nlib==1.0\n")
    asked = ["-r", str(reqs)] if given == "file" else ["app", "lib>=1.0"]
    env, store = tmp_path / "env", tmp_path / "store"
    assert cli("--store", store, "create", env, "-p", OLD_PIP, "--without-pip", "--no-index",
               "-f", first, *asked).code == 0  # fmt: skip
    res = cli("--store", store, "relink", env, "--python", NEW, "--no-index", "-f", first,
              "-f", later)  # fmt: skip
    assert res.code == (0 if ok else 1), res.out + res.err
    if not ok:  # the pin, from the file, bounds what relink may take
        assert "==1.0" in res.err
