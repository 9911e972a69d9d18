"""CLI options shared by every command that may fetch packages."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    import argparse
    from typing import Any

__all__ = ["add_index_options", "add_request_options", "index_options", "request_options"]


def add_index_options(p: argparse.ArgumentParser) -> None:
    """``--find-links``, ``--index-url``, ``--extra-index-url``, ``--no-index`` and
    ``--offline``, as ``create`` has."""
    p.add_argument(
        "--find-links",
        "-f",
        dest="find_links",
        metavar="DIR",
        action="append",
        default=[],
        help="look for wheels in DIR (passed to pip)",
    )
    p.add_argument("--index-url", "-i", metavar="URL", help="base URL of the package index")
    p.add_argument(
        "--extra-index-url",
        dest="extra_index_urls",
        metavar="URL",
        action="append",
        default=[],
        help="another package index to search besides --index-url (repeatable)",
    )
    p.add_argument("--no-index", action="store_true", help="ignore the package index")
    p.add_argument(
        "--offline", action="store_true", help="use only what the store already has; never run pip"
    )


def index_options(args: argparse.Namespace) -> dict[str, Any]:
    """What ``add_index_options`` parsed, as the library functions' ``sources=``."""
    from envstore.model.sources import PackageSources

    sources = PackageSources(
        args.find_links, args.index_url, args.no_index, args.offline, args.extra_index_urls
    )
    return {"sources": sources}


def add_request_options(p: argparse.ArgumentParser) -> None:
    """``-c/--constraint`` and ``--pre``: which versions a create or sync may choose."""
    p.add_argument(
        "-c",
        "--constraint",
        dest="constraints",
        metavar="FILE",
        action="append",
        default=[],
        help="constrain versions with a constraints file (pip's -c; repeatable)",
    )
    p.add_argument(
        "--pre", action="store_true", help="include pre-release and development versions"
    )


def request_options(args: argparse.Namespace) -> dict[str, Any]:
    """What ``add_request_options`` parsed, as ``create_env``'s and ``sync_env``'s keywords."""
    return {"constraints": args.constraints, "pre": args.pre}
