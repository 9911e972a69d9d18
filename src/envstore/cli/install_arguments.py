"""What ``envstore install`` and ``envstore uninstall`` take (issue #22)."""

from __future__ import annotations

from envstore.cli.options import add_editable_option, add_index_options, add_request_options

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from typing import Any

__all__ = ["add_install_commands"]


def add_install_commands(sub: Any) -> None:
    p = sub.add_parser(
        "install",
        help="add or upgrade packages in an existing environment",
        description="Add requirements (any form create takes), -r files and -e projects to"
        " ENV, as 'pip install' does: what ENV holds keeps its version if the new"
        " requirements allow (if not, ENV is resolved again and its packages may move to"
        " newer versions), and the whole set stays consistent. A requirement"
        " naming a project ENV already asks for replaces that requirement. Nothing is"
        " removed; editable projects stay editable. Packages come from the store first,"
        " else from where ENV's wheels came from (unless -f, --index-url or --no-index say"
        " otherwise). ENV is rebuilt beside itself and swapped in: on failure it is left"
        " as it was.",
    )
    p.add_argument("env", metavar="ENV", help="the environment to change")
    p.add_argument(
        "requirements",
        metavar="REQ",
        nargs="*",
        default=[],  # without a default argparse would claim REQ is required
        help="requirement specifiers to add",
    )
    p.add_argument(
        "-r",
        "--requirement",
        dest="requirement_files",
        metavar="FILE",
        action="append",
        default=[],
        help="add the requirements of this file (recorded: read again by later installs)",
    )
    add_editable_option(p)
    add_index_options(p)
    add_request_options(p)
    p.add_argument(
        "-U",
        "--upgrade",
        action="store_true",
        help="upgrade the packages named to the newest version allowed (resolved with pip;"
        " without -U, an installed version that satisfies REQ is kept); the other packages"
        " keep their versions if they can",
    )

    p = sub.add_parser(
        "uninstall",
        help="remove packages from an environment",
        description="Remove the named packages (store packages or editable projects) from"
        " ENV, and the requirements naming them from what ENV records, as 'pip uninstall'"
        " does: their dependencies stay, and a package left requiring a removed one is"
        " named in a warning. Their store entries are released (gc frees what no"
        " environment uses).",
    )
    p.add_argument("env", metavar="ENV", help="the environment to change")
    p.add_argument("names", metavar="NAME", nargs="+", help="names of the packages to remove")
