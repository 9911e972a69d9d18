"""The command line itself: --version, usage errors, help texts, ``python list``."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CLI, envstore_cmd, run

from envstore._version import __version__
from envstore.cli.parser import build, parse
from envstore.python import interpreters as _interpreters
from envstore.python.interpreters import find_interpreter

_GLOBAL_HIDDEN = {"verbosity"}  # -v/-q after the command: documented once, before it


def _parsers(
    parser: argparse.ArgumentParser | None = None, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every parser of the CLI with the command words that reach it: the top-level
    one and each (nested) subcommand's."""
    parser = parser or build(None)
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def _usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The lines argparse printed for ``argv``, which it refused with status 2."""
    with pytest.raises(SystemExit) as exited:
        parse(argv)
    assert exited.value.code == 2
    return capsys.readouterr().err.splitlines()


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"envstore {__version__}\n"
    proc = run([*envstore_cmd(), "--version"])  # the console script's way, fast path first
    assert proc.returncode == 0 and proc.stdout == f"envstore {__version__}\n", proc.stderr


@pytest.mark.parametrize(
    ("line", "command", "wrong"),
    [
        ("create env --bogus", "create", "unrecognized arguments: --bogus"),
        ("--store S create env a --no-such -q", "create", "unrecognized arguments: --no-such"),
        ("sync env a --bogus", "sync", "unrecognized arguments: --bogus"),
        ("list extra", "list", "unrecognized arguments: extra"),
        ("gc --grace 1 --bogus", "gc", "unrecognized arguments: --bogus"),
        ("python list --bogus", "python list", "unrecognized arguments: --bogus"),
        ("remote prune --older-than 1d x", "remote prune", "unrecognized arguments: x"),
        ("remove", "remove", "the following arguments are required: ENV"),
        ("show", "show", "the following arguments are required: ENV"),
    ],
)
def test_a_wrong_subcommand_line_prints_that_subcommands_usage(
    line: str, command: str, wrong: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _usage_error(shlex.split(line), capsys)
    assert err[0].startswith(f"usage: envstore {command} [-h]"), err
    assert err[-1] == f"envstore {command}: error: {wrong}"


def test_every_missing_argument_message_names_what_is_missing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each command given nothing names exactly the arguments it cannot do without
    (``create`` once claimed REQ, which may be left out, was required)."""
    checked = []
    for path, parser in _parsers():
        if not path:
            continue
        missing = []
        for action in parser._actions:
            if action.option_strings:
                if action.required:
                    missing.append("/".join(action.option_strings))
            elif action.nargs not in ("?", "*", argparse.REMAINDER):
                missing.append(action.metavar or action.dest)  # type: ignore[arg-type]
        if not missing:
            assert parse(list(path)).command == path[0]  # nothing missing: it parses
            continue
        err = _usage_error(list(path), capsys)
        checked.append(path)
        assert err[-1] == (
            f"envstore {' '.join(path)}: error: the following arguments are required:"
            f" {', '.join(missing)}"
        )
    assert ("create",) in checked and ("remote", "prune") in checked
    assert _usage_error(["create"], capsys)[-1].endswith("are required: ENV")


def test_every_command_and_flag_has_help() -> None:
    """Every parser, including commands added later, has a description for its own
    --help, every command a line in its parent's list, and every argument help text."""
    lacking = []
    for path, parser in _parsers():
        name = " ".join(("envstore", *path))
        if not parser.description:
            lacking.append(f"{name}: no description")
        for action in parser._actions:
            what = "/".join(action.option_strings) or action.metavar or action.dest
            if isinstance(action, argparse._SubParsersAction):
                # The list of commands is its help: each command needs its line.
                lacking += [
                    f"{name} {choice.dest}: no help in {name}'s list of commands"
                    for choice in action._choices_actions
                    if not choice.help
                ]
            elif action.help == argparse.SUPPRESS:
                if action.dest not in _GLOBAL_HIDDEN:
                    lacking.append(f"{name} {what}: hidden")
            elif not action.help or not action.help.strip():
                lacking.append(f"{name} {what}: no help")
    assert len(list(_parsers())) > 20  # the walk reached the nested commands
    assert not lacking, "\n".join(lacking)


def test_upgrade_help_says_what_the_store_answers_without_it() -> None:
    for command in ("create", "sync"):
        (upgrade,) = [a for a in build(command)._subparsers._actions[-1].choices[command]._actions  # type: ignore[union-attr]
                      if "-U" in a.option_strings]  # fmt: skip
        assert upgrade.help is not None
        assert "older" in upgrade.help and "store" in upgrade.help


# -- python list ----------------------------------------------------------------


@pytest.fixture
def search(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The directories candidates() searches: empty until a test adds some."""
    dirs: list[str] = []
    monkeypatch.setattr(_interpreters, "_search_dirs", lambda: list(dirs))
    return dirs


def _link(path: Path, target: str | Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)
    return path


def test_python_list_shows_each_interpreter_once_and_marks_the_default(
    cli: CLI, tmp_path: Path, search: list[str]
) -> None:
    default = find_interpreter(None).path  # what create uses without --python
    real = os.path.realpath(default)
    minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    usr_bin, bin_ = tmp_path / "usr" / "bin", tmp_path / "bin"
    versioned = _link(usr_bin / f"python{minor}", real)
    plain = _link(usr_bin / "python3", f"python{minor}")
    in_bin = _link(bin_ / f"python{minor}", versioned)  # /bin beside /usr/bin
    venv = tmp_path / "venv"  # links to the same file, yet another interpreter
    subprocess.run([real, "-m", "venv", "--without-pip", venv], check=True)
    search += [str(usr_bin), str(bin_), str(venv / "bin")]

    res = cli("python", "list", "--json", "--store", tmp_path / "store")
    assert res.code == 0, res.err
    rows = json.loads(res.out)
    assert [(r["path"], r["also"], r["default"], r["venv"]) for r in rows] == [
        (str(versioned), [str(plain), str(in_bin)], True, False),
        (str(venv / "bin" / f"python{minor}"), [str(venv / "bin" / "python3")], False, True),
    ]

    text = cli("python", "list", "--store", tmp_path / "store")
    assert text.code == 0, text.err
    lines = text.out.splitlines()
    assert len(lines) == 2 and [("(default)" in line) for line in lines] == [True, False]
    assert lines[0].endswith(f"(default)  (also {plain}, {in_bin})")

    # The default is listed, and marked, also where the search does not find it.
    search[:] = [str(venv / "bin")]
    rows = json.loads(cli("python", "list", "--json").out)
    assert [(r["path"], r["also"], r["default"]) for r in rows] == [
        (default, [], True),
        (str(venv / "bin" / f"python{minor}"), [str(venv / "bin" / "python3")], False),
    ]


def test_a_store_named_with_dotdot_works(
    cli: CLI, tmp_path: Path, wheelhouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--store ../store``: the store's root, which its views' paths start with (and
    view.json's reader refuses a '..' component in), has no '..' component."""
    from envstore.store.layout import Store

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    assert Store("../store").root == tmp_path / "store"
    monkeypatch.setenv("ENVSTORE_HOME", "../store")
    assert Store().root == tmp_path / "store"
    r = cli("--store", "../store", "create", "env", "--without-pip", "--no-index", "-f",
            wheelhouse, "solo")  # fmt: skip
    assert r.code == 0, r.err
    assert cli("--store", "../store", "doctor", "env").code == 0
