"""Test-only crash points: ``ENVSTORE_CRASH_AT=<name>`` makes the process SIGKILL
itself when it reaches that step, to prove every step is crash-consistent.

Every name passed to ``crash_point`` must be listed in CRASH_POINTS; the test
suite has one test per listed point and fails if a point has none.
"""

from __future__ import annotations

import os

__all__ = ["CRASH_POINTS", "crash_point"]

CRASH_POINTS = (
    "ingest-unpacked",  # entries unpacked and compiled in tmp/, nothing published
    "ingest-published",  # entries renamed into place, database not yet told
    "view-built",  # a view filled in tmp/, not yet published
    "create-registered",  # env root + database rows written, env still in its temp dir
    "gc-planned",  # gc holds the exclusive lock and has a plan, nothing deleted
    "gc-deleting",  # gc deleted its first item, the rest and the database remain
    "remove-deleted",  # env directory deleted, root and database rows remain
    "relink-switched",  # bin/, site-packages and data links on the new Python; old manifest
    "repair-unpacked",  # fresh copy of a damaged entry in tmp/, not swapped in
)


def crash_point(name: str) -> None:
    if os.environ.get("ENVSTORE_CRASH_AT") == name:
        import signal  # here, not at the top: every create passes through

        os.kill(os.getpid(), signal.SIGKILL)
