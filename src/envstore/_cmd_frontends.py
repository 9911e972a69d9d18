"""CLI commands added by this module (registered by envstore._cli)."""

from __future__ import annotations

import argparse

__all__ = ["add_commands"]


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register this module's subcommands; each sets ``func(args, progress) -> int``."""
