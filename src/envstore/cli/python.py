"""``envstore python list``: the interpreters envstore can use."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

__all__ = ["list_"]


def list_(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from envstore.errors import InterpreterError
    from envstore.python.interpreters import (
        candidates,
        distinct,
        find_interpreter,
        same_interpreter,
        too_old,
    )
    from envstore.python.query import query_interpreter
    from envstore.store.layout import Store

    store = Store(args.store)
    cache = store.facts_cache() if store.exists() else None  # listing makes no store
    try:  # the one create uses without --python
        default: str | None = find_interpreter(None, cache).path
    except InterpreterError:
        default = None
    groups = distinct(candidates())
    if default is not None and not any(same_interpreter(default, g[0]) for g in groups):
        groups.insert(0, [default])  # not where the search looks: listed all the same
    rows: list[dict[str, object]] = []
    lines: list[str] = []
    for path, *also in groups:
        row: dict[str, object] = {"path": path, "also": also}
        is_default = default is not None and same_interpreter(default, path)
        try:
            facts = query_interpreter(path, cache)
        except InterpreterError as exc:
            row["error"] = what = str(exc)
        else:
            row.update(version=facts["version"], abi=facts["soabi"], venv=facts["is_venv"])
            what = f"{facts['version']}  {facts['soabi']}"
            if facts["is_venv"]:
                what += "  (venv)"
            if too_old(str(facts["version"])):
                what += "  (too old: envstore needs >= 3.9)"
        row["default"] = is_default
        rows.append(row)
        what += "  (default)" if is_default else ""
        what += f"  (also {', '.join(also)})" if also else ""
        lines.append(f"{path}  {what}")
    if args.json:
        print(json.dumps(rows, indent=1))
    elif lines:
        print("\n".join(lines))
    return 0
