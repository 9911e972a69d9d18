"""CLI options shared by every command that may fetch packages."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    import argparse
    from typing import Any

__all__ = ["add_index_options", "index_options"]


def add_index_options(p: argparse.ArgumentParser) -> None:
    """``--find-links``, ``--index-url``, ``--no-index`` and ``--offline``, as ``create`` has."""
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
    p.add_argument("--no-index", action="store_true", help="ignore the package index")
    p.add_argument(
        "--offline", action="store_true", help="use only what the store already has; never run pip"
    )


def index_options(args: argparse.Namespace) -> dict[str, Any]:
    """What ``add_index_options`` parsed, as the library functions' ``sources=``."""
    from envstore.model.sources import PackageSources

    sources = PackageSources(args.find_links, args.index_url, args.no_index, args.offline)
    return {"sources": sources}
