"""What the commands about the store as a whole and the machine's interpreters take:
``gc``, ``list``, ``store``, ``verify``, ``rebuild-db`` and ``python list``."""

from __future__ import annotations

from envstore.cli.options import duration

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from typing import Any

__all__ = ["add_store_commands"]


def add_store_commands(sub: Any) -> None:
    """gc, list, store, verify, rebuild-db and python list."""
    p = sub.add_parser(
        "gc",
        help="delete store entries no environment uses",
        description="Drop registrations of environments gone (deleted with rm -rf, moved away"
        " and not relinked) for longer than the grace period, then delete entries and views no"
        " live or recently gone environment uses, and abandoned temporary directories. Keeps"
        " everything if some environment's manifest is unreadable.",
    )
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument(
        "--grace",
        type=duration,
        default=600.0,
        metavar="DURATION",
        help="keep unused objects younger than this, and what environments gone for less"
        " than this used (default 10m; e.g. 0, 30s, 2h)",
    )

    p = sub.add_parser(
        "list",
        help="list registered environments and their status",
        description="List every environment the store knows of, with its Python, its number"
        " of packages and its status: ok, missing (deleted or moved; see gc and relink),"
        " base interpreter broken (see relink) or manifest unreadable.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON record per environment")

    p = sub.add_parser(
        "store",
        help="entries, space used and space saved",
        description="Print the store's directory, how many entries, views, wheels and"
        " environments it holds, the space it takes on disk and the space it saves compared"
        " with every environment holding its own copies, and how many entries the"
        " environments use from each upstream store ($ENVSTORE_UPSTREAM; -v lists them).",
    )
    p.add_argument("--json", action="store_true", help="print the same figures as JSON")

    p = sub.add_parser(
        "verify",
        help="check entries, environments and the database; report every problem",
        description="Check every store entry, view and registered environment, and the"
        " database, against each other; print every problem found and exit non-zero when"
        " there is one. --repair mends damaged entries; rebuild-db a damaged database.",
    )
    p.add_argument(
        "--check-contents", action="store_true", help="also hash every file against its RECORD"
    )
    p.add_argument(
        "--repair",
        action="store_true",
        help="re-ingest damaged entries from their wheels (implies --check-contents)",
    )

    sub.add_parser(
        "rebuild-db",
        help="rebuild the database from the store and its roots",
        description="Recreate the store's database from what is on disk (entries, views and"
        " the environments registered as gc roots), built beside the old one and swapped in;"
        " for a database that is lost or damaged (verify says when).",
    )

    _python(sub)


def _python(sub: Any) -> None:
    p = sub.add_parser(
        "python",
        help="interpreters envstore can use",
        description="The Python interpreters envstore finds on this machine (-p/--python"
        " chooses among them).",
    )
    psub = sub.nested(p, dest="subcommand")
    p = psub.add_parser(
        "list",
        help="list the interpreters found on this machine",
        description="List each interpreter found on PATH, in pyenv, asdf, uv and the standard"
        " install locations once (with the other names it was found under), its version and"
        " ABI, and mark the default: the one create uses without --python.",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON record per interpreter (path, other names, version, abi, venv,"
        " default)",
    )
