"""CLI options shared by every command that may fetch packages."""

from __future__ import annotations

import argparse

__all__ = ["add_index_options"]


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
