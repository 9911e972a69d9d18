"""What each ``envstore`` command takes: its arguments, help and description.

``add_commands`` declares every command on the subcommands ``envstore.cli.parser``
hands it, which build only the parser of the command being run. Commands are
listed in help in the order declared here.
"""

from __future__ import annotations

import argparse

from envstore.cli.install_arguments import add_install_commands
from envstore.cli.options import (
    add_editable_option,
    add_freshness_options,
    add_index_options,
    add_project_options,
    add_project_sync_options,
    add_request_options,
    duration,
)
from envstore.cli.remote_arguments import add_remote_commands
from envstore.cli.store_arguments import add_store_commands

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from typing import Any, Protocol

    class Subcommands(Protocol):
        """``envstore.cli.parser.Subcommands``, as the declarations use it."""

        def add_parser(self, name: str, **kwargs: Any) -> Any: ...

        def nested(self, parser: Any, dest: str) -> Subcommands: ...


__all__ = ["add_commands", "duration"]


def add_commands(sub: Subcommands) -> None:
    """Declare every command on ``sub``, in the order help lists them."""
    _envs(sub)
    add_install_commands(sub)
    add_store_commands(sub)
    _interp(sub)
    _frontends(sub)
    _portable(sub)
    add_remote_commands(sub)


def _requirement_files(p: Any, help: str = "install from a requirements file") -> None:
    p.add_argument(
        "-r",
        "--requirement",
        dest="requirement_files",
        metavar="FILE",
        action="append",
        default=[],
        help=help,
    )


def _upgrade(p: Any) -> None:
    p.add_argument(
        "-U",
        "--upgrade",
        action="store_true",
        help="resolve with pip (newest versions the index allows) every time, pinned"
        " requirements too, ignoring --max-age; without it the store answers exactly pinned"
        " requirements, and a resolution younger than --max-age answers the others (with"
        " --max-age inf, or no index, the store answers with versions it already holds,"
        " which may be older than the index's newest)",
    )


def _envs(sub: Subcommands) -> None:
    p = sub.add_parser(
        "create",
        help="create an environment",
        description="Create a virtual environment at ENV whose packages come from the store."
        " Requirements already in the store are used as they are (no pip, works offline)"
        " when pinned to one version, or when the same request was resolved against the"
        " index within --max-age (10m: a new env is as current as pip would make it);"
        " with --no-index, wheels in --find-links directories are chosen among as pip would"
        " (newest first), without running it; the rest are resolved and downloaded by pip,"
        " unpacked once and shared.",
    )
    p.add_argument("env", metavar="ENV", help="directory of the new environment")
    # default=[]: without one argparse counts REQ as required and, when ENV is
    # missing, names both
    p.add_argument(
        "requirements", metavar="REQ", nargs="*", default=[], help="requirement specifiers"
    )
    _requirement_files(p)
    add_editable_option(p)
    add_project_options(p)
    p.add_argument(
        "-p",
        "--python",
        metavar="PYTHON",
        help="interpreter: a version (3.12, 3.12.1), a command name (python3.12) or"
        " a path (default: the Python running envstore)",
    )
    add_index_options(p)
    add_request_options(p)
    _upgrade(p)
    p.add_argument("--without-pip", action="store_true", help="do not put pip in the env")
    p.add_argument("--clear", action="store_true", help="replace an existing envstore env")
    p.add_argument("--prompt", help="prompt prefix shown when the env is activated")
    p.add_argument(
        "--from",
        dest="lock",
        metavar="LOCK",
        help="exactly the wheels of a PEP 751 pylock.toml (no resolution; the packages for"
        " this Python are chosen by their markers, each wheel's sha256 is checked before"
        " anything is installed; no REQ with it)",
    )

    p = sub.add_parser(
        "remove",
        help="delete environments and release their store references",
        description="Delete each ENV and release the store entries it used (gc deletes"
        " those no other environment uses). An ENV already deleted with rm -rf is"
        " released at once instead of after gc's grace period.",
    )
    p.add_argument("envs", metavar="ENV", nargs="+", help="environment directories")

    p = sub.add_parser(
        "show",
        help="print an environment's interpreter and packages",
        description="Print ENV's base interpreter (version, path, the request it was made"
        " with), its store and its packages (requested, dependency or editable), as its"
        " manifest (ENV/envstore.json) records them.",
    )
    p.add_argument("env", metavar="ENV", help="the environment directory")
    p.add_argument(
        "--json", action="store_true", help="print the manifest (envstore.json) as it is"
    )


def _interp(sub: Subcommands) -> None:
    p = sub.add_parser(
        "doctor",
        help="diagnose environments (base interpreter, store entries, shadowed packages)",
        description="Check environments and print, for each problem, the command that fixes"
        " it. Exits non-zero when an environment is broken.",
    )
    p.add_argument("envs", metavar="ENV", nargs="*", help="environment directories")
    p.add_argument("--all", action="store_true", help="every environment registered in the store")
    p.add_argument("--json", action="store_true", help="print the diagnoses as JSON")

    p = sub.add_parser(
        "relink",
        help="repair environments after their base Python was upgraded, moved or removed",
        description="Point environments at a working interpreter. With the same ABI available"
        " only links, pyvenv.cfg and the manifest are rewritten; for another minor version pure"
        " packages are reused and ABI-tagged ones re-resolved at the same versions; a package"
        " whose version cannot run there (Requires-Python, or pip < 23.2 on 3.12+) takes the"
        " newest version the env's requirements allow. Without -f, --index-url or --no-index,"
        " it looks where the env's wheels came from (recorded when it was made). If some"
        " package has no usable wheel, nothing is changed.",
    )
    p.add_argument("envs", metavar="ENV", nargs="*", help="environment directories")
    p.add_argument("--all", action="store_true", help="every environment registered in the store")
    p.add_argument(
        "-p",
        "--python",
        metavar="PYTHON",
        help="the interpreter to use: a version, a command name or a path (default: the"
        " recorded one if it still works, else one with the same ABI)",
    )
    p.add_argument(
        "--for-this-host",
        action="store_true",
        help="relink an env on shared storage (a store several hosts share) to another"
        " interpreter than it records, though other hosts use it with that one",
    )
    add_index_options(p)


def _source_options(p: Any) -> None:
    """``-p`` and the options ``create`` passes on to pip."""
    p.add_argument(
        "-p",
        "--python",
        metavar="PYTHON",
        help="interpreter: a version (3.12), a command name or a path"
        " (default: the Python running envstore)",
    )
    add_index_options(p)
    add_freshness_options(p)


def _frontends(sub: Subcommands) -> None:
    p = sub.add_parser(
        "run",
        help="run a command in a throwaway environment",
        description="Create a throwaway environment holding the --with requirements (served"
        " from the store, fetched like 'create' when missing), run CMD in it with the"
        " environment activated (PATH, VIRTUAL_ENV), delete it, and exit with CMD's exit"
        " code. Put -- before CMD when CMD has options of its own. 'envstore run SCRIPT.py"
        " [ARGS...]' runs a Python script with the dependencies and requires-python of its"
        " inline '# /// script' metadata block (PEP 723), like 'uv run SCRIPT.py'.",
    )
    p.add_argument(
        "--with",
        dest="with_",
        metavar="REQ",
        action="append",
        default=[],
        help="a requirement to put in the environment (repeatable)",
    )
    _requirement_files(p)
    _source_options(p)
    p.add_argument(
        "argv",
        metavar="SCRIPT.py|CMD [ARGS...]",
        nargs=argparse.REMAINDER,
        help="a PEP 723 script (a path ending in .py) and its arguments, or the command to"
        " run and its arguments",
    )

    p = sub.add_parser(
        "build",
        help="build an sdist and a wheel, with envstore build environments",
        description="Build SRCDIR as 'python -m build' does (PEP 517 via pypa/build; needs"
        " the 'build' extra): each distribution in a throwaway environment holding"
        " build-system.requires and what the backend asks for, served from the store."
        " By default an sdist, then a wheel built from that sdist.",
    )
    p.add_argument(
        "srcdir",
        metavar="SRCDIR",
        nargs="?",
        default=".",
        help="the project directory (default: .)",
    )
    p.add_argument(
        "--sdist",
        "-s",
        dest="distributions",
        action="append_const",
        const="sdist",
        help="build an sdist",
    )
    p.add_argument(
        "--wheel",
        "-w",
        dest="distributions",
        action="append_const",
        const="wheel",
        help="build a wheel (from SRCDIR, also with --sdist)",
    )
    p.add_argument(
        "-o", "--outdir", metavar="OUTDIR", help="where the artifacts go (default: SRCDIR/dist)"
    )
    p.add_argument(
        "-C",
        "--config-setting",
        dest="config_settings",
        metavar="KEY[=VALUE]",
        action="append",
        default=[],
        help="a setting passed to the backend (repeatable)",
    )
    _source_options(p)


def _portable(sub: Subcommands) -> None:
    p = sub.add_parser(
        "lock",
        help="write a PEP 751 pylock.toml of an environment's exact wheels, or a project's",
        description="Write a lock of ENV as a PEP 751 pylock.toml: every package's version,"
        " wheel file name, sha256 and where the file is (a path relative to the lock, or the"
        " URL it was downloaded from), and the interpreter it was made for (requires-python,"
        " environments). Reads only the manifest and the store; the env's Python is not"
        " started. Without ENV, in a project: its dependencies, every extra and dependency"
        " group (marked) and the project itself, resolved once, into PROJECT/pylock.toml"
        " with a digest of pyproject.toml's inputs ('sync --locked' checks it). With -r"
        " FILE: those requirements. Several -p: resolved for each (interpreters found here),"
        " merged into one lock with a marker on each version that differs. With ENV,"
        " only -f DIR applies (where its wheels are); --project, -r, -p and the other index"
        " and remote options are for a new lock and refused.",
    )
    p.add_argument(
        "env", metavar="ENV", nargs="?", help="the environment directory (none: the project)"
    )
    p.add_argument(
        "--project",
        metavar="DIR",
        help="without ENV: the project (default: the nearest pyproject.toml at or above the"
        " current directory)",
    )
    p.add_argument(
        "-p",
        "--python",
        metavar="PYTHON",
        action="append",
        help="without ENV: an interpreter to resolve for (repeatable: one lock for each"
        " Python given; default: as 'sync' in the project, or the default Python)",
    )
    _requirement_files(p, "without ENV: lock the requirements of FILE, not a project's")
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write the lock here: pylock.toml or pylock.NAME.toml (default: ./pylock.toml;"
        " '-': stdout, paths absolute); --format requirements defaults to stdout",
    )
    # -f: also where wheels of an env's lock may be found; the others (and --project,
    # -p) are for a project's lock only: refused with ENV (cli.portable).
    add_index_options(p)
    p.add_argument(
        "--format",
        choices=["pylock", "requirements"],
        default="pylock",
        help="pylock (PEP 751 pylock.toml, what --from reads; default) or a pip requirements"
        " file with hashes",
    )

    p = sub.add_parser(
        "sync",
        help="bring an environment to exactly a set of requirements or a lock (creates it)",
        description="Make ENV hold exactly the given requirements, or exactly the wheels of"
        " a lock (--from LOCK: nothing is resolved, every wheel's sha256 is checked before"
        " anything is installed). ENV is created when it does not exist; an existing env keeps"
        " its Python, store, prompt and pip unless told otherwise. The new env is built beside"
        " the old one and swapped in at once; on any failure the old env is left as it was.",
    )
    p.add_argument(
        "env",
        metavar="ENV",
        nargs="?",
        help="the environment (created if missing; in a project: default PROJECT/.venv)",
    )
    p.add_argument(
        "requirements", metavar="REQ", nargs="*", default=[], help="requirement specifiers"
    )
    _requirement_files(p)
    add_editable_option(p)
    add_project_options(p)
    add_project_sync_options(p)
    p.add_argument(
        "--from",
        dest="lock",
        metavar="LOCK",
        help="a PEP 751 pylock.toml: exactly its wheels for this Python, from the store,"
        " the lock's paths or URLs, --find-links directories or the index",
    )
    p.add_argument(
        "-p",
        "--python",
        metavar="PYTHON",
        help="interpreter (default: the env's own; for a new env from a lock, a Python of"
        " the lock's version; in a project: .python-version, else the env's own if"
        " requires-python allows it, else the newest installed Python that does)",
    )
    add_index_options(p)
    add_request_options(p)
    _upgrade(p)
    pip = p.add_mutually_exclusive_group()
    pip.add_argument(
        "--with-pip",
        dest="with_pip",
        action="store_const",
        const=True,
        default=None,
        help="put pip in the env (default: as before; yes for a new env)",
    )
    pip.add_argument(
        "--without-pip",
        dest="with_pip",
        action="store_const",
        const=False,
        help="leave pip out of the env (removing it from an existing one)",
    )

    p = sub.add_parser(
        "export",
        help="copy an environment into an ordinary, self-contained venv",
        description="Write ENV as an ordinary venv at DEST with real copies of every package"
        " (no store references; for machines without envstore, e.g. a container image)."
        " bin/python links to the same base interpreter path.",
    )
    p.add_argument("env", metavar="ENV", help="the environment to copy")
    p.add_argument("dest", metavar="DEST", help="a new (or empty) directory")
    p.add_argument(
        "--relocatable",
        action="store_true",
        help="scripts and activation find the env relative to themselves, so DEST can be moved",
    )
