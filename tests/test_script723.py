"""envstore run SCRIPT.py: PEP 723 inline script metadata, in a throwaway env."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import CLI, envstore_cmd, run

from envstore.errors import ProjectError
from envstore.frontends.script import ScriptMetadata, parse_script_metadata

REPORT = (
    "import sys, importlib.util as u\n"
    "print(sys.argv[1:], sys.prefix != sys.base_prefix, u.find_spec('solo') is not None,"
    " '%d.%d' % sys.version_info[:2])\n"
    "sys.exit(int(sys.argv[1]))\n"
)


def _script(path: Path, block: str, body: str = REPORT) -> Path:
    path.write_text(block + body)
    return path


def test_dependencies_args_and_exit_code(tmp_path: Path, wheelhouse: Path) -> None:
    block = (
        "#!/usr/bin/env python3\n"
        "# /// script\n"
        '# requires-python = ">=3.9"\n'
        "# dependencies = [\n"
        '#   "hello-app",  # pulls dep-one\n'
        '#   "solo==0.5",\n'
        "# ]\n"
        "#\n"
        "# [tool.other]\n"
        "# x = 1\n"
        "# ///\n"
        "import hello_app, dep_one\n"
    )
    script = _script(tmp_path / "report.py", block)
    es = [*envstore_cmd(), "--store", tmp_path / "store"]
    args = ["4", "-x", "--with", "y", "--", "z", "-p"]
    proc = run([*es, "run", "--no-index", "-f", wheelhouse, script, *args])
    assert proc.returncode == 4, proc.stderr
    minor = "{}.{}".format(*sys.version_info[:2])
    assert proc.stdout.strip() == f"{args} True True {minor}"  # untouched, in the env
    assert list((tmp_path / "store" / "roots").iterdir()) == []  # the env is gone


def test_script_without_block_gets_no_packages_and_dash_dash_is_a_command(
    tmp_path: Path, wheelhouse: Path
) -> None:
    # An unclosed block is no block (the specification: ignored).
    script = _script(tmp_path / "plain.py", '# /// script\n# dependencies = ["solo"]\n')
    es = [*envstore_cmd(), "--store", tmp_path / "store", "run", "--offline"]
    proc = run([*es, script, "0", "--help"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith("['0', '--help'] True False ")
    # After --, a .py is a command, as it always was: run, not read.
    cmd = tmp_path / "cmd.py"
    cmd.write_text('#!/bin/sh\necho as a command "$@"\n')
    cmd.chmod(0o755)
    proc = run([*es, "--with", "solo", "-f", wheelhouse, "--no-index", "--", cmd, "-v"])
    assert (proc.returncode, proc.stdout) == (0, "as a command -v\n"), proc.stderr


def _other_minor() -> str | None:
    """A minor version of an installed interpreter envstore finds that is not this one."""
    from envstore.python.interpreters import installed

    here = "{}.{}".format(*sys.version_info[:2])
    return next((i.minor for i in installed() if i.minor != here), None)


def test_requires_python_picks_a_fitting_interpreter(
    cli: CLI, tmp_path: Path, wheelhouse: Path
) -> None:
    other = _other_minor()
    if other is None:
        pytest.skip("one Python minor version here")
    block = f'# /// script\n# requires-python = "=={other}.*"\n# dependencies = ["solo"]\n# ///\n'
    script = _script(tmp_path / "pinned.py", block)
    es = [*envstore_cmd(), "--store", tmp_path / "store", "run", "--no-index", "-f", wheelhouse]
    proc = run([*es, script, "0"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"['0'] True True {other}"
    # --python is checked against it, not silently replaced.
    res = cli("--store", tmp_path / "store", "run", "-p", sys.executable, script, "0")
    assert res.code == 1, res.err
    assert res.err.strip() == (
        f"envstore: error: {script} requires Python =={other}.*, but --python"
        f" {sys.executable} is Python {'.'.join(map(str, sys.version_info[:3]))}"
    )


def test_unsatisfiable_requires_python_is_one_line(cli: CLI, tmp_path: Path) -> None:
    script = _script(tmp_path / "future.py", '# /// script\n# requires-python = ">=4"\n# ///\n')
    res = cli("--store", tmp_path / "store", "run", "--offline", script)
    assert res.code == 1
    assert res.err.startswith(
        f"envstore: error: {script} requires Python >=4, and no installed Python satisfies it"
    )
    assert len(res.err.strip().splitlines()) == 1 and "Traceback" not in res.err
    assert not (tmp_path / "store" / "roots").exists() or not any(
        (tmp_path / "store" / "roots").iterdir()
    )


@pytest.mark.parametrize(
    ("block", "says"),
    [
        pytest.param(
            "# /// script\n# dependencies = [\n# ///\n", "is not valid TOML", id="bad-toml"
        ),
        pytest.param(
            "# /// script\n# dependencies = []\n# ///\nx = 1\n# /// script\n# a = 1\n# ///\n",
            "more than one '# /// script' metadata block",
            id="two-blocks",
        ),
        pytest.param(
            "# /// script\n# dependencies = []\n# ///\n# /// script\n# a = 1\n# ///\n",
            "more than one '# /// script' metadata block",
            id="two-blocks-butted",
        ),
        pytest.param(
            '# /// script\n# dependencies = "solo"\n# ///\n',
            "'dependencies' in the '# /// script' block must be a list of strings",
            id="deps-not-a-list",
        ),
        pytest.param(
            "# /// script\n# dependencies = [1]\n# ///\n",
            "must be a list of strings",
            id="dep-not-a-string",
        ),
        pytest.param(
            '# /// script\n# dependencies = ["not a req!"]\n# ///\n',
            "invalid dependency 'not a req!'",
            id="bad-requirement",
        ),
        pytest.param(
            '# /// script\n# requires-python = "3.x"\n# ///\n',
            "invalid requires-python '3.x'",
            id="bad-requires-python",
        ),
    ],
)
def test_bad_block_is_one_line_naming_the_script(
    cli: CLI, tmp_path: Path, block: str, says: str
) -> None:
    script = _script(tmp_path / "bad.py", block)
    res = cli("--store", tmp_path / "store", "run", "--offline", script)
    assert res.code == 1
    assert res.err.startswith(f"envstore: error: {script}") and says in res.err, res.err
    assert len(res.err.strip().splitlines()) == 1


def test_missing_script(cli: CLI, tmp_path: Path) -> None:
    res = cli("--store", tmp_path / "store", "run", tmp_path / "nope.py")
    assert (res.code, res.err) == (1, f"envstore: error: no script at {tmp_path / 'nope.py'}\n")


def test_block_as_the_specification_reads_it() -> None:
    # Another type's block is not read; "# ///" lines inside a TOML string are content;
    # a bare "#" is an empty line.
    text = (
        "# /// other\n# dependencies = ['x']\n# ///\n\n"
        "# /// script\n"
        "# dependencies = ['a>=1', 'b; python_version >= \"3.9\"']\n"
        "#\n"
        '# note = """\n'
        "# /// <summary>\n"
        "# ///\n"
        '# """\n'
        "# ///\n"
    )
    assert parse_script_metadata(text, "s.py") == ScriptMetadata(
        ("a>=1", 'b; python_version >= "3.9"'), None
    )
    assert parse_script_metadata("print(1)\n", "s.py") == ScriptMetadata()
    with pytest.raises(ProjectError, match=r"^s\.py: "):
        parse_script_metadata("# /// script\n# requires-python = 3\n# ///\n", "s.py")
