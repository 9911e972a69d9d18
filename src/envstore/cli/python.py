"""``envstore python list``: the interpreters envstore can use."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

__all__ = ["list_"]


def list_(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from envstore.errors import InterpreterError
    from envstore.python.interpreters import candidates, too_old
    from envstore.python.query import query_interpreter
    from envstore.store.layout import Store

    store = Store(args.store)
    cache = store.facts_cache() if store.exists() else None  # listing makes no store
    rows: list[dict[str, object]] = []
    for path in candidates():
        try:
            facts = query_interpreter(path, cache)
        except InterpreterError as exc:
            rows.append({"path": path, "error": str(exc)})
            continue
        rows.append(
            {
                "path": path,
                "version": facts["version"],
                "abi": facts["soabi"],
                "venv": facts["is_venv"],
            }
        )
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for r in rows:
            venv = "  (venv)" if r.get("venv") else ""
            if r.get("version") and too_old(str(r["version"])):
                venv += "  (too old: envstore needs >= 3.9)"
            what = r.get("error") or f"{r['version']}  {r['abi']}{venv}"
            print(f"{r['path']}  {what}")
    return 0
