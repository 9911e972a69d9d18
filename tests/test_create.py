"""envstore create: real wheels, real interpreters, checked through the env's own python."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import wheelmaker
from conftest import CLI, PYTHONS, entries, envstore_cmd, python_params, run

from envstore.env.site import pth_line

ALL = ["hello-app", "ns-alpha", "ns-beta", "solo"]

CHECK = r"""
import importlib.metadata as md, json, os, sys
import hello_app, dep_one, nsp.alpha, nsp.beta, solo, ext_pkg
eps = [e.name for e in md.entry_points(group="envstore.test")] if sys.version_info >= (3, 10) \
    else [e.name for e in md.entry_points().get("envstore.test", [])]
print(json.dumps({
    "prefix": sys.prefix,
    "dep_one": dep_one.VERSION,
    "hook": os.environ.get("DEP_ONE_HOOK"),
    "ns": [nsp.alpha.A, nsp.beta.B],
    "answer": ext_pkg.answer(),
    "dists": sorted(d.metadata["Name"] for d in md.distributions()),
    "eps": eps,
    "cached": hello_app.__cached__,
}))
"""


@pytest.mark.parametrize("python", python_params())
def test_env_works_on_every_python(
    python: str, wheelhouse: Path, tmp_path: Path, store: Path
) -> None:
    wh = tmp_path / "wh"
    wh.mkdir()
    wheelmaker.build_extension_wheel(wh, "ext-pkg", "1.0", python)
    env = tmp_path / "env"
    proc = run(
        [
            *envstore_cmd(),
            "--store",
            store,
            "create",
            env,
            "-p",
            python,
            "--no-index",
            "-f",
            wheelhouse,
            "-f",
            wh,
            *ALL,
            "ext-pkg",
        ]
    )
    assert proc.returncode == 0, proc.stderr
    py = env / "bin" / "python"

    out = run([py, "-c", CHECK])
    assert out.returncode == 0, out.stderr
    facts = json.loads(out.stdout)
    assert facts["prefix"] == str(env)
    assert facts["dep_one"] == "1.2"  # highest version satisfying >=1.1
    assert facts["hook"] == "ran"  # the entry's own .pth ran
    assert facts["ns"] == [1, 2]  # PEP 420 namespace split across two distributions
    assert facts["answer"] == 42  # ABI-tagged wheel with a real extension module
    assert {"hello-app", "dep-one", "ns-alpha", "ns-beta", "solo", "ext-pkg", "pip"} <= set(
        facts["dists"]
    )
    assert facts["eps"] == ["plugin"]
    # Bytecode comes precompiled from the store, for this interpreter.
    assert Path(facts["cached"]).exists()
    assert str(store) in os.path.realpath(facts["cached"])

    script = run([env / "bin" / "hello"])
    assert script.returncode == 3 and f"hello from {env}" in script.stdout
    data_script = run([env / "bin" / "hello-data"])
    assert data_script.returncode == 0 and f"data script {env}" in data_script.stdout
    assert (env / "share" / "hello-app" / "greeting.txt").read_text() == "hi there\n"
    minor = ".".join(python.rsplit("python", 1)[1].split(".")[:2])
    assert (env / "include" / "site" / f"python{minor}" / "hello-app" / "hello.h").exists()

    pip_list = run([py, "-m", "pip", "list", "--format=json"])
    assert pip_list.returncode == 0, pip_list.stderr
    versions = {p["name"].lower(): p["version"] for p in json.loads(pip_list.stdout)}
    assert versions["hello-app"] == "1.0" and versions["dep-one"] == "1.2"
    assert versions["ns-beta"] == "2.0" and versions["ext-pkg"] == "1.0"
    check = run([py, "-m", "pip", "check"])
    assert check.returncode == 0, check.stdout + check.stderr

    activate = run(
        [
            "bash",
            "-c",
            f"source {env}/bin/activate && echo $VIRTUAL_ENV && "
            "command -v python && command -v hello",
        ]
    )
    assert activate.stdout.split() == [str(env), f"{env}/bin/python", f"{env}/bin/hello"]


def test_second_env_adds_no_entries_and_few_files(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path
) -> None:
    first = cli("--store", store, "create", tmp_path / "a", "--no-index", "-f", wheelhouse, *ALL)
    assert first.code == 0, first.err
    before = entries(store)
    second = cli("--store", store, "create", tmp_path / "b", "--no-index", "-f", wheelhouse, *ALL)
    assert second.code == 0, second.err
    assert entries(store) == before
    # The env holds O(packages + scripts) files, none of the packages' own files.
    files = [p for p in (tmp_path / "b").rglob("*") if not p.is_dir() or p.is_symlink()]
    assert len(files) < 40, files
    assert not list((tmp_path / "b").rglob("*.py"))
    out = run([tmp_path / "b" / "bin" / "python", "-c", "import hello_app, solo, nsp.beta"])
    assert out.returncode == 0, out.stderr


def test_pinned_requirements_in_store_never_start_pip(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path
) -> None:
    assert (
        cli("--store", store, "create", tmp_path / "a", "--no-index", "-f", wheelhouse, *ALL).code
        == 0
    )
    # A different spelling (so not the resolution cache), pinned, with a
    # find-links directory that no longer exists: only the store can serve it.
    gone = tmp_path / "gone"
    reqs = tmp_path / "reqs.txt"
    reqs.write_text("hello-app==1.0\nsolo==0.5\n")
    res = cli("--store", store, "create", tmp_path / "b", "--no-index", "-f", gone, "-r", reqs)
    assert res.code == 0, res.err
    offline = cli("--store", store, "create", tmp_path / "c", "--offline", "ns-alpha")
    assert offline.code == 0, offline.err
    manifest = json.loads((tmp_path / "b" / "envstore.json").read_text())
    names = {p["name"]: p["requested"] for p in manifest["packages"]}
    assert names == {"hello-app": True, "solo": True, "dep-one": False, "pip": False}


def test_offline_without_the_package_fails_clearly(cli: CLI, tmp_path: Path, store: Path) -> None:
    res = cli("--store", store, "create", tmp_path / "env", "--offline", "nothere==1.0")
    assert res.code == 1
    assert "offline" in res.err and "nothere==1.0" in res.err
    assert "Traceback" not in res.err
    assert not (tmp_path / "env").exists()


def test_existing_env_needs_clear(cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path) -> None:
    args = ("--store", store, "create", tmp_path / "env", "--no-index", "-f", wheelhouse)
    assert cli(*args, "solo").code == 0
    again = cli(*args, "solo")
    assert again.code == 1 and "--clear" in again.err
    cleared = cli(*args, "--clear", "ns-alpha")
    assert cleared.code == 0, cleared.err
    out = run([tmp_path / "env" / "bin" / "python", "-c", "import nsp.alpha; import solo"])
    assert out.returncode != 0 and "solo" in out.stderr

    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    refused = cli("--store", store, "create", other, "--offline", "solo")
    assert refused.code == 1 and "not empty" in refused.err
    assert (other / "keep.txt").read_text() == "mine"


def test_pip_inside_env_uninstalls_without_touching_store_and_installs(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path
) -> None:
    env = tmp_path / "env"
    assert cli("--store", store, "create", env, "--no-index", "-f", wheelhouse, "solo").code == 0
    entry = next((store / "entries" / "pure" / "solo").iterdir())
    before = sorted(p.name for p in (entry / "site").iterdir())
    py = env / "bin" / "python"
    run([py, "-m", "pip", "uninstall", "-y", "solo"])
    assert sorted(p.name for p in (entry / "site").iterdir()) == before
    installed = run([py, "-m", "pip", "install", "--no-index", "-f", wheelhouse, "ns-beta"])
    assert installed.returncode == 0, installed.stderr
    assert run([py, "-c", "import nsp.beta, solo"]).returncode == 0


def test_console_scripts_are_links_to_one_launcher(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path
) -> None:
    wh = tmp_path / "wh"
    wh.mkdir()
    code = (
        "import os, sys\n\n"
        "def main():\n    print('a', os.path.basename(sys.argv[0]), sys.prefix)\n\n"
        "class Runner:\n    @staticmethod\n    def run():\n        print('b')\n        return 4\n"
    )
    wheelmaker.build_wheel(
        wh,
        "multi-tool",
        files={"multi_tool/__init__.py": code},
        entry_points={
            "console_scripts": {
                "tool-a": "multi_tool:main",
                "tool-b": "multi_tool:Runner.run",
                "activate": "multi_tool:main",  # replaces the venv's own, as pip would
            }
        },
    )
    env = tmp_path / "env"
    res = cli("--store", store, "create", env, "--no-index", "-f", wh, "-f", wheelhouse,
              "multi-tool", "hello-app")  # fmt: skip
    assert res.code == 0, res.err
    bindir = env / "bin"
    targets = {os.readlink(bindir / n) for n in ("tool-a", "tool-b", "hello", "activate")}
    assert len(targets) == 1
    launcher = bindir / targets.pop()
    assert launcher.is_file() and launcher.stat().st_mode & 0o777 == 0o555
    assert run([bindir / "activate"]).stdout == f"a activate {env}\n"
    a = run([bindir / "tool-a"])
    assert (a.returncode, a.stdout) == (0, f"a tool-a {env}\n"), a.stderr
    b = run([bindir / "tool-b"])
    assert (b.returncode, b.stdout) == (4, "b\n"), b.stderr
    # A user's alias to a script runs that script; a copy of the launcher names its error.
    (tmp_path / "tb").symlink_to(bindir / "tool-b")
    assert run([tmp_path / "tb"]).stdout == "b\n"
    copy = tmp_path / "copy"
    copy.write_bytes((bindir / "tool-a").read_bytes())
    copy.chmod(0o755)
    lost = run([copy])
    assert lost.returncode == 1 and "not a console script of this environment" in lost.stderr
    # pip replaces the script it installs and leaves the others working.
    other = {"other_a.py": "def main():\n    print('other')\n"}
    eps = {"console_scripts": {"tool-a": "other_a:main"}}
    wheelmaker.build_wheel(wh, "other-a", files=other, entry_points=eps)
    pip = run([bindir / "python", "-m", "pip", "install", "--no-index", "-f", wh, "other-a"])
    assert pip.returncode == 0, pip.stderr
    assert run([bindir / "tool-a"]).stdout == "other\n"
    assert run([bindir / "tool-b"]).stdout == "b\n"
    assert run([bindir / "hello"]).returncode == 3


def test_without_pip(cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path) -> None:
    env = tmp_path / "env"
    res = cli(
        "--store", store, "create", env, "--no-index", "-f", wheelhouse, "--without-pip", "solo"
    )
    assert res.code == 0, res.err
    assert not (env / "bin" / "pip").exists()
    assert run([env / "bin" / "python", "-c", "import pip"]).returncode != 0


def test_bad_wheel_is_refused_and_nothing_written(cli: CLI, tmp_path: Path, store: Path) -> None:
    wh = tmp_path / "wh"
    (wh / "evil").mkdir(parents=True)
    for ident, path in wheelmaker.hostile_wheels(wh):
        if ident == "record-hash-mismatch":
            (wh / path.name).write_bytes(path.read_bytes())
    # good wheels unpacked beside it (in other threads) are not published either
    for i in range(6):
        wheelmaker.build_wheel(wh, f"fine-{i}", "1.0", files={f"fine_{i}.py": "X = 1\n" * 5000})
    fine = [f"fine-{i}" for i in range(6)]
    res = cli("--store", store, "create", tmp_path / "env", "--no-index", "-f", wh, *fine, "evil")
    assert res.code == 1
    assert "evil-1.0-py3-none-any.whl" in res.err and "hash" in res.err
    assert entries(store) == [e for e in entries(store) if e.startswith("pure/pip/")]
    assert not [p for p in (store / "tmp").iterdir()]
    assert not (tmp_path / "env").exists()


def test_cli_errors_are_one_line_without_traceback(cli: CLI, tmp_path: Path) -> None:
    res = cli("create", tmp_path / "env", "-p", "2.7.99", "solo")
    assert res.code == 1
    assert res.err.startswith("envstore: error: ") and "Traceback" not in res.err
    help_proc = run([*envstore_cmd(), "create", "--help"])
    assert help_proc.returncode == 0 and "--find-links" in help_proc.stdout


def test_cli_builds_only_the_running_commands_parser_yet_lists_all(tmp_path: Path) -> None:
    # `envstore create` builds only create's parser; help, typos and options before
    # the command must still see every command.
    top = run([*envstore_cmd(), "--store", tmp_path / "s", "-q", "--help"])
    assert top.returncode == 0
    for command in ("create", "gc", "relink", "build", "sync", "export"):
        assert command in top.stdout
    typo = run([*envstore_cmd(), "--store", tmp_path / "s", "craete", "x"])
    assert typo.returncode == 2 and "'create'" in typo.stderr and "'relink'" in typo.stderr
    sub = run([*envstore_cmd(), "--store=" + str(tmp_path / "s"), "-v", "gc", "--help"])
    assert sub.returncode == 0 and "--grace" in sub.stdout and "--find-links" not in sub.stdout
    nested = run([*envstore_cmd(), "python", "list", "--help"])
    assert nested.returncode == 0 and "--json" in nested.stdout


def test_a_non_ascii_store_and_env_path_work_under_the_c_locale(tmp_path: Path) -> None:
    # 3.11 and 3.12 decode .pth files in the locale's encoding (ASCII here).
    pythons = [py for minor, py in PYTHONS.items() if py and minor in ("3.11", "3.12")]
    if not pythons:
        pytest.skip("needs Python 3.11 or 3.12")
    wh = tmp_path / "wh"
    wh.mkdir()
    files = {"extra/__init__.py": "", "extra.pth": "extra_dir\n", "extra_dir/more.py": "X = 1\n"}
    wheelmaker.build_wheel(wh, "extra", "1.0", files=files)
    store = tmp_path / "störe"
    for py in pythons:
        env = tmp_path / f"énv-{os.path.basename(py)}"
        made = run([*envstore_cmd(), "--store", store, "create", env, "-p", py, "--no-index",
                    "-f", wh, "--without-pip", "extra"])  # fmt: skip
        assert made.returncode == 0, made.stderr
        out = run([env / "bin" / "python", "-c", "import extra, more"], extra_env={"LC_ALL": "C"})
        assert out.returncode == 0, out.stderr
        doctor = run([*envstore_cmd(), "--store", store, "doctor", env])
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr


def test_a_pth_line_is_one_ascii_line_whatever_the_path_holds() -> None:
    import sys

    evil = "/tmp/s\nimport os; os.system('touch /tmp/pwned')#"
    for path in ("/plain/path", "/tmp/st\u00f6re", evil, "/tmp/cr\r", "/tmp/blank "):
        line = pth_line(path)
        assert line.isascii() and len(line.decode().splitlines()) == 1
        if not line.startswith(b"import "):
            assert line.decode() == path
            continue
        saved = list(sys.path)
        try:
            exec(line.decode())  # as site runs it
            exec(line.decode())  # site reads a venv's .pth files twice
            assert sys.path[len(saved) :] == [path]
        finally:
            sys.path[:] = saved


def _activation_pythons() -> list[object]:
    """Every Python here, and the system's own: Debian's 3.11 ships the venv templates
    fixed for CVE-2024-9287 (placeholders unquoted, venv quotes each value)."""
    found = {p for p in PYTHONS.values() if p}
    found |= {p for p in ("/usr/bin/python3",) if os.path.exists(p)}
    return [pytest.param(p, id=p) for p in sorted(found)]


@pytest.mark.parametrize("python", _activation_pythons())
def test_activate_quotes_the_path_and_prompt_for_every_template(
    cli: CLI, python: str, tmp_path: Path
) -> None:
    env = tmp_path / "it's an env"
    prompt = "my 'env' $HOME"
    made = cli("--store", tmp_path / "s", "create", env, "-p", python, "--without-pip",
               "--prompt", prompt)  # fmt: skip
    assert made.code == 0, made.err
    script = f'source "{env}/bin/activate" && echo "$VIRTUAL_ENV" && echo "$PS1"'
    res = run(["bash", "-c", script])
    assert res.returncode == 0 and res.stderr == "", res.stderr
    venv_dir, ps1 = res.stdout.splitlines()
    assert venv_dir == str(env)
    assert ps1 == f"({prompt}) "  # nothing in it expanded


@pytest.mark.skipif(not shutil.which("csh"), reason="no csh")
@pytest.mark.parametrize("python", _activation_pythons())
def test_csh_activate_expands_nothing_in_the_path(cli: CLI, python: str, tmp_path: Path) -> None:
    env = tmp_path / 'env $HOME `x` "q"'
    made = cli("--store", tmp_path / "s", "create", env, "-p", python, "--without-pip")
    assert made.code == 0, made.err
    script = f"set prompt = '> '; source '{env}/bin/activate.csh' && printenv VIRTUAL_ENV"
    res = run(["csh", "-c", script])
    assert res.returncode == 0 and res.stderr == "", res.stderr
    assert res.stdout == f"{env}\n"
