"""The start-up budget of the hot path: ``envstore create`` from a warm store.

A warm create links what the store already holds; it must not pay for the
modules only a cold create, a resolution or another command needs. Each module
below costs milliseconds to import (``typing`` ~5 ms, ``dataclasses`` pulls in
``inspect``), and the CLI's start is most of a warm create: a change that pulls
one into the create path fails here, with the chain of imports that did it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest
from conftest import CLI, run

from envstore.cli.arguments import add_commands
from envstore.cli.main import COMMANDS, command

# Modules a warm create must not import (a name covers its submodules).
BUDGET = [
    "typing",
    "dataclasses",
    "inspect",
    "packaging",  # requirements, versions, tags: resolution's, not a warm create's
    "installer",
    "sqlite_utils",
    "pip",
    "email",
    "zipfile",
    "tarfile",
    "subprocess",
    "tempfile",
    "shutil",  # argparse's default help formatter would import it
    "concurrent",
    "threading",
    "logging",
    "hashlib",
    "csv",
    "base64",
    "uuid",
    "socket",
    "urllib.request",
    "importlib.metadata",
    # argparse (with gettext and locale): a plain create is parsed by cli.fastpath
    "argparse",
    "gettext",
    "locale",
    "envstore.cli.parser",
    "envstore.cli.arguments",
    # the CLI's other command modules: main imports the running command's only
    "envstore.cli.store",
    "envstore.cli.python",
    "envstore.cli.interp",
    "envstore.cli.portable",
    "envstore.cli.frontends",
]


def _imports(stderr: str) -> list[tuple[int, str]]:
    """``-X importtime``'s report as (depth, module), in import order."""
    found = []
    for line in stderr.splitlines():
        if line.startswith("import time:") and not line.endswith("| imported package"):  # header
            name = line.rsplit("|", 1)[1]
            depth = (len(name) - len(name.lstrip())) // 2
            found.append((depth, name.strip()))
    return found


def _over_budget(imports: list[tuple[int, str]], budget: list[str] = BUDGET) -> list[str]:
    """Each module over ``budget``, with the modules that imported it (the report lists
    a module after those it imported, one level deeper)."""
    over = []
    for i, (depth, name) in enumerate(imports):
        if not any(name == b or name.startswith(b + ".") for b in budget):
            continue
        chain, level = [name], depth
        for d, parent in imports[i + 1 :]:
            if d < level:
                chain.append(parent)
                level = d
        over.append(" <- ".join(chain))
    return over


# Modules only some creates need, imported where they are used (#20, session 11): pip's
# and locks' code, the stamps of a requirement naming a place, a new view's seal, a
# failed editable build's cleanup. A create without pip needs none of them.
NOT_WITHOUT_PIP = [
    "envstore.resolve.pip",
    "envstore.resolve.exact",
    "envstore.resolve.stamps",
    "envstore.store.seal",
    "envstore.env.remove",
]


@pytest.mark.parametrize(
    ("how", "budget"),
    [
        pytest.param(
            ["--without-pip", "-r", "{reqs}"], BUDGET + NOT_WITHOUT_PIP, id="as-benchmarked"
        ),
        pytest.param(["hello-app"], BUDGET, id="with-pip"),
    ],
)
def test_a_warm_create_stays_within_its_import_budget(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path, how: list[str], budget: list[str]
) -> None:
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("hello-app\nsolo\n")
    args = ["--no-index", "-f", str(wheelhouse), *(a.format(reqs=reqs) for a in how)]
    first = cli("--store", store, "create", tmp_path / "cold", *args)
    assert first.code == 0, first.err
    proc = run(
        [sys.executable, "-X", "importtime", "-m", "envstore", "--store", store, "create",
         tmp_path / "warm", *args]
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "warm" / "envstore.json").is_file()
    imports = _imports(proc.stderr)
    names = {name for _, name in imports}
    assert "envstore.env.lifecycle" in names and "envstore.cli.main" in names  # measured
    over = _over_budget(imports, budget)
    assert not over, "over the import budget:\n" + "\n".join(over)


def test_every_command_declared_has_a_function() -> None:
    """The parser's commands (arguments.py) and main's table (COMMANDS) name the same
    commands, and each function is there: the table is only strings until one runs."""
    declared: list[str] = []

    class Record:
        def __init__(self, parent: str = "") -> None:
            self.parent = parent

        def add_parser(self, name: str, **kwargs: object) -> argparse.ArgumentParser:
            declared.append(self.parent + name)
            return argparse.ArgumentParser(add_help=False)

        def nested(self, parser: object, dest: str) -> Record:
            return Record(declared.pop() + " ")  # a group of commands, not one

    add_commands(Record())
    assert sorted(declared) == sorted(COMMANDS)
    for name in declared:
        command_name, _, sub = name.partition(" ")
        assert callable(command(argparse.Namespace(command=command_name, subcommand=sub)))


def test_the_console_script_collects_garbage_again_once_the_command_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Start-up runs without the garbage collector (its objects live until exit); the
    command itself, which may ingest hundreds of wheels, runs with it."""
    import gc

    import envstore.cli.main as cli_main

    seen: list[tuple[bool, int]] = []

    def probe(args: argparse.Namespace, progress: object) -> int:
        seen.append((gc.isenabled(), gc.get_freeze_count()))
        return 0

    monkeypatch.setattr(cli_main, "command", lambda args: probe)
    monkeypatch.setattr(cli_main, "_leave", sys.exit)  # never os._exit in this process
    monkeypatch.setattr(sys, "argv", ["envstore", "list"])
    try:
        with pytest.raises(SystemExit):
            cli_main.entrypoint()
    finally:
        gc.unfreeze()
        gc.enable()
        cli_main._collecting_after_start = False
    assert seen and seen[0][0] and seen[0][1] > 0


def test_the_console_script_leaves_its_database_closed_and_its_output_flushed(
    store: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    """The console script skips the interpreter's finalization when nothing needs it
    (cli.main._leave): it still closes the store's database first (SQLite then folds
    its write-ahead log into the database and deletes it, so the next command does
    not replay it) and flushes what it printed to a pipe."""
    args = ["--no-index", "-f", str(wheelhouse), "--without-pip", "solo"]
    cold = run(
        [sys.executable, "-m", "envstore", "--store", store, "create", tmp_path / "c", *args]
    )
    assert cold.returncode == 0, cold.stderr  # pip ran: atexit callbacks, the usual exit
    proc = run(
        [sys.executable, "-m", "envstore", "--store", store, "create", tmp_path / "e", *args]
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"created {tmp_path / 'e'} ")  # flushed through the pipe
    assert (store / "envstore.db").is_file()
    assert not (store / "envstore.db-wal").exists()  # closed: checkpointed and removed
    fail = run([sys.executable, "-m", "envstore", "--store", store, "remove", tmp_path / "nope"])
    assert fail.returncode == 1 and fail.stderr.startswith("envstore: error: ")


# Modules a warm ``envstore sync`` in a project (its editable wheel cached) must not
# import: pyproject.toml and its groups come from the store's pyproject.json
# (envstore.resolve.project), cli.fastpath parses the command, and the editable install
# comes from the cache's wheel.json (envstore.env.editable_meta).
SYNC_BUDGET = [
    "tomllib",
    "tomli",
    "typing",
    "dependency_groups",
    "argparse",
    "gettext",
    "envstore.cli.parser",
    "dataclasses",
    "inspect",
    "packaging",
    "installer",
    "pyproject_hooks",
    "email",
    "zipfile",
    "subprocess",
    "tempfile",
    "shutil",
    "hashlib",
    "csv",
    "base64",
    "threading",
    "logging",
    *NOT_WITHOUT_PIP,
]


def test_a_warm_project_sync_stays_within_its_import_budget(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from projectmaker import make_project

    proj = make_project(
        tmp_path / "proj",
        dependencies=["solo"],
        groups={"dev": ["dep-one"]},  # synced by default: dependency-groups' job
        scripts={"sample-cli": "sample:main"},
    )
    monkeypatch.chdir(proj)
    args = ["--no-index", "-f", str(wheelhouse), "-p", sys.executable, "--without-pip"]
    first = cli("--store", store, "sync", *args)
    assert first.code == 0, first.err
    for removed in (True, False):  # into a removed .venv, and with nothing changed
        if removed:
            import shutil

            shutil.rmtree(proj / ".venv")
        proc = run([sys.executable, "-X", "importtime", "-m", "envstore", "--store", store,
                    "sync", *args], cwd=proj)  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert (proj / ".venv" / "bin" / "sample-cli").exists()
        imports = _imports(proc.stderr)
        assert "envstore.env.project" in {name for _, name in imports}  # measured
        over = _over_budget(imports, SYNC_BUDGET)
        assert not over, "over the sync import budget:\n" + "\n".join(over)


def _python_says(*lines: str) -> str:
    """What a fresh interpreter running ``lines`` prints (it must succeed)."""
    proc = run([sys.executable, "-c", "\n".join(lines)])
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_the_warm_paths_compile_no_pattern_at_import() -> None:
    """A pattern compiled when its module is imported costs every CLI start ~0.1-0.3 ms,
    used or not: the modules of a warm create and a warm project sync compile theirs on
    first use (``re.match(PATTERN, text)``, cached by re), where a text can match. The
    one exception is a pattern every create uses (the version in pyvenv.cfg)."""
    said = _python_says(
        "import re, sys",
        "seen = []",
        "compile = re.compile",
        "def spy(pattern, flags=0):",
        "    seen.append(sys._getframe(1).f_globals.get('__name__') or '')",
        "    return compile(pattern, flags)",
        "re.compile = spy",
        "import envstore.cli.main, envstore.cli.fastpath, envstore.cli.envs",
        "import envstore.env.lifecycle, envstore.env.project, envstore.env.editable",
        "import envstore.env.unchanged",
        "print(' '.join(sorted({n for n in seen if n.startswith('envstore')})))",
    )
    assert said.split() == ["envstore.env.venv"]


@pytest.mark.parametrize(
    "spec",
    ["", ">=3.10", ">=3.9,<4", " >= 3.11 , < 3.13 ", ">3.11", "<=3.11", "==3.11", "!=3.11.7",
     ">=3.11.7", ">3.11.7.0", ">=03.010", "~=3.10", "==3.*", ">=3.10a1"],
)  # fmt: skip
def test_requires_python_is_read_without_packaging_as_packaging_reads_it(spec: str) -> None:
    """A project sync with no -p and no .python-version picks its Python by
    requires-python: plain specs (and final releases) are decided without importing
    packaging (~5 ms), with packaging's answer; the rest by packaging itself."""
    from packaging.specifiers import SpecifierSet

    from envstore.python.requires_python import fits_requires_python

    for version in ["3", "3.9.0", "3.10", "3.11", "3.11.0", "3.11.7", "3.11.7.0", "3.13.1", "4"]:
        want = SpecifierSet(spec).contains(version, prereleases=True)
        assert fits_requires_python(spec, version) == want, (spec, version)


def test_a_plain_requires_python_imports_no_packaging() -> None:
    _python_says(
        "import sys",
        "from envstore.python.requires_python import fits_requires_python as fits",
        "assert fits('>=3.9, <4', '3.11.7') and not fits('>=3.12', '3.11.7') and fits('', '3')",
        "assert 'packaging' not in sys.modules",
    )
