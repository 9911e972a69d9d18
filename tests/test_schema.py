"""The database schema across envstore versions: a store made at schema 3 (one
``resolutions`` table holding three caches) is migrated to schema 4 (a table per
cache) and keeps working; an envstore of schema 3 meeting the migrated database
says it is newer and to upgrade, instead of failing obscurely.

Schema 3 is made by the database module of the envstore that wrote it, kept
verbatim in ``envstore_schema3.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import sys
from pathlib import Path

import envstore_schema3
import pytest
from conftest import CLI, entries

from envstore.errors import StoreError
from envstore.store.db import SCHEMA_VERSION

OLD_TABLES = ("entries", "views", "envs", "refs", "seals", "interpreters", "resolutions")


def _as_schema_3(store: Path) -> None:
    """Replace the store's database by the one schema 3 would have: its tables made by
    schema 3's code, the same rows, and the wheel hashes and bundled pip back in
    ``resolutions`` under the prefixed keys schema 3 wrote."""
    db = store / "envstore.db"
    old = store / "v3.db"
    envstore_schema3.connect(old, create=True).close()
    with sqlite3.connect(old) as conn:
        conn.execute("ATTACH DATABASE ? AS now", (str(db),))
        for table in OLD_TABLES:
            conn.execute(f"INSERT INTO main.{table} SELECT * FROM now.{table}")
        for path, ident, digest, created in conn.execute("SELECT * FROM now.wheel_hashes"):
            conn.execute(
                "INSERT INTO main.resolutions VALUES (?, ?, ?)",
                (f"wheel-hash:{path}:{ident}", json.dumps([digest]), created),
            )
        for wheel, tag, ident, entry, created in conn.execute("SELECT * FROM now.bundled_pips"):
            conn.execute(
                "INSERT INTO main.resolutions VALUES (?, ?, ?)",
                (f"bundled-pip:{wheel}:{ident}:{tag}", json.dumps([entry]), created),
            )
    conn.close()
    for f in store.glob("envstore.db*"):
        f.unlink()
    os.replace(old, db)


def _keys(store: Path, table: str, column: str = "key") -> list[str]:
    with sqlite3.connect(store / "envstore.db") as conn:
        return sorted(r[0] for r in conn.execute(f"SELECT {column} FROM {table}"))


@pytest.fixture
def schema3_store(cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path) -> Path:
    """A store with one env (pip in it: the bundled-pip cache is used) made by schema 3."""
    wh = shutil.copytree(wheelhouse, tmp_path / "wh")
    res = cli("--store", store, "create", tmp_path / "env", "--no-index", "-f", wh, "hello-app")
    assert res.code == 0, res.err
    _as_schema_3(store)
    with sqlite3.connect(store / "envstore.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
        assert "wheel_hashes" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    return store


def test_a_schema_3_store_is_migrated_and_keeps_working(
    cli: CLI, schema3_store: Path, tmp_path: Path
) -> None:
    store = schema3_store
    old_rows = _keys(store, "resolutions")
    answers = [k for k in old_rows if not k.startswith(("wheel-hash:", "bundled-pip:"))]
    assert len(answers) == 1 and len(old_rows) > 3  # one resolution, wheel hashes, pip

    # Any command migrates it; the same request is answered from the kept resolution.
    wh = tmp_path / "wh"
    again = cli("--store", store, "create", tmp_path / "env2", "--no-index", "-f", wh, "hello-app")
    assert again.code == 0, again.err
    with sqlite3.connect(store / "envstore.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    assert _keys(store, "resolutions") == answers  # the other caches' rows are out of it
    assert len(_keys(store, "bundled_pips", "entry")) == 1  # remembered anew
    other = cli("--store", store, "create", tmp_path / "env3", "--no-index", "-f", wh, "solo")
    assert other.code == 0, other.err
    assert str(wh / "solo-0.5-py3-none-any.whl") in _keys(store, "wheel_hashes", "path")

    check = cli("--store", store, "verify", "--check-contents")
    assert check.code == 0, check.out
    assert cli("--store", store, "gc", "--grace", "0").code == 0
    for env in ("env", "env2", "env3"):
        shutil.rmtree(tmp_path / env)
    assert cli("--store", store, "gc", "--grace", "0").code == 0
    assert entries(store) == []
    assert cli("--store", store, "verify").code == 0


def test_an_envstore_of_schema_3_meeting_the_migrated_database_says_upgrade(
    cli: CLI, schema3_store: Path
) -> None:
    store = schema3_store
    assert cli("--store", store, "list").code == 0  # migrated to 4
    with pytest.raises(StoreError, match=r"schema 4, newer than this envstore understands \(3\)"):
        envstore_schema3.connect(store / "envstore.db", create=False)
    with pytest.raises(StoreError, match="upgrade envstore"):
        envstore_schema3.connect(store / "envstore.db", create=True)


def test_the_newer_database_message_reaches_the_cli(cli: CLI, store: Path) -> None:
    """What an older envstore's CLI does with the message above (this one playing it)."""
    with sqlite3.connect(store / "envstore.db") as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    for cmd in (["list"], ["gc"], ["verify"]):
        res = cli("--store", store, *cmd)
        assert res.code == 1 and "newer than this envstore understands" in res.err, cmd
        assert "upgrade envstore" in res.err and res.err.count("\n") == 1


def test_no_sqlite_utils_plugin_runs_on_the_store_database(tmp_path: Path) -> None:
    """Any installed package may register a sqlite-utils plugin (an entry point; its
    hooks get the connection): none is loaded when the store's database is made."""
    from conftest import run

    site = tmp_path / "site"
    dist = site / "evil_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: evil-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[sqlite_utils]\nevil = evil_plugin\n")
    marker = tmp_path / "loaded"
    (site / "evil_plugin.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from pathlib import Path; from envstore.store.db import connect;"
        "connect(Path(sys.argv[2]), create=True).close()"
    )
    res = run([sys.executable, "-c", code, site, tmp_path / "envstore.db"])
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "envstore.db").is_file() and not marker.exists()
