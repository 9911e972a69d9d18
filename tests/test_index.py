"""The store's database seen from the library: a damaged file is a StoreError saying
what to do, never a sqlite3 exception; gc keeps each cache's rows that still hold."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from conftest import CLI

from envstore import create_env
from envstore.errors import EnvstoreError, StoreError


def _damage(db: Path, table: str | None) -> None:
    """Garbage over the whole file (``table`` None), or over the first bytes of the
    root page of ``table`` (a table or index): the header stays readable, the first
    statement that reads that table fails."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        found = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,))
        page = (found.fetchone() or [0])[0]
    finally:
        conn.close()
    if table is None:
        db.write_bytes(os.urandom(db.stat().st_size))
        return
    assert page > 1, table
    with open(db, "r+b") as f:
        f.seek((page - 1) * page_size)
        f.write(b"\xff" * 64)


# What a create from a warm store reads: each fails differently when damaged.
DAMAGED = [
    pytest.param(None, id="garbage-over-the-file"),
    *(
        pytest.param(t, id=t)
        for t in (
            "entries_damaged",
            "views",
            "envs",
            "refs",
            "interpreters",
            "resolutions",
            "bundled_pips",
        )
    ),
]


@pytest.mark.parametrize("table", DAMAGED)
def test_create_env_on_a_damaged_database_raises_store_error(
    store: Path, wheelhouse: Path, tmp_path: Path, table: str | None
) -> None:
    opts = {"store": store, "no_index": True, "find_links": [str(wheelhouse)]}
    create_env(tmp_path / "one", ["solo"], **opts)  # type: ignore[arg-type]
    _damage(store / "envstore.db", table)
    with pytest.raises(EnvstoreError) as caught:
        create_env(tmp_path / "two", ["solo"], **opts)  # type: ignore[arg-type]
    assert isinstance(caught.value, StoreError)
    assert not isinstance(caught.value.__cause__, StoreError)  # raised at the seam
    assert f"the store database {store / 'envstore.db'} is damaged (" in str(caught.value)
    assert "run 'envstore rebuild-db' to rebuild it from the store" in str(caught.value)
    assert not (tmp_path / "two").exists()


def test_the_cli_names_a_damaged_database_in_one_line(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    args = ["--store", store, "create", "--no-index", "-f", wheelhouse, "solo"]
    assert cli(*args[:3], tmp_path / "one", *args[3:]).code == 0
    _damage(store / "envstore.db", "envs")
    res = cli(*args[:3], tmp_path / "two", *args[3:])
    assert res.code == 1 and res.err.count("\n") == 1, res.err
    assert res.err.startswith(f"envstore: error: the store database {store / 'envstore.db'}")
    assert "is damaged (database disk image is malformed)" in res.err
    assert "run 'envstore rebuild-db'" in res.err


def _rows(store: Path, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(store / "envstore.db") as conn:
        return sorted(conn.execute(query).fetchall())


def test_gc_drops_only_the_cache_rows_that_no_longer_hold(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    wh = shutil.copytree(wheelhouse, tmp_path / "wh")
    kept, dropped = tmp_path / "kept", tmp_path / "dropped"
    for env, req in ((kept, "solo"), (dropped, "ns-alpha")):
        res = cli("--store", store, "create", env, "--no-index", "-f", wh, req)
        assert res.code == 0, res.err
    answers = _rows(store, "SELECT key, objects FROM resolutions")
    pip = _rows(store, "SELECT * FROM bundled_pips")
    hashes = dict(_rows(store, "SELECT path, hash FROM wheel_hashes"))
    solo, alpha = str(wh / "solo-0.5-py3-none-any.whl"), str(wh / "ns_alpha-1.0-py3-none-any.whl")
    assert len(answers) == 2 and len(pip) == 1 and {solo, alpha} <= set(hashes)

    shutil.rmtree(dropped)
    os.unlink(alpha)  # its hash can never be asked for again
    assert cli("--store", store, "gc", "--grace", "0").code == 0
    # The resolution naming the deleted ns-alpha entry is dropped; solo's still holds,
    # and so does the pip entry kept by the env that uses it.
    assert [a for a in answers if "ns-alpha" not in str(a[1])] == _rows(
        store, "SELECT key, objects FROM resolutions"
    )
    assert _rows(store, "SELECT * FROM bundled_pips") == pip
    assert dict(_rows(store, "SELECT path, hash FROM wheel_hashes")) == {
        p: h for p, h in hashes.items() if p != alpha
    }

    shutil.rmtree(kept)
    assert cli("--store", store, "gc", "--grace", "0").code == 0
    assert _rows(store, "SELECT * FROM resolutions") == []
    assert _rows(store, "SELECT * FROM bundled_pips") == []


class _FullOnAlter:
    """A connection on which ALTER TABLE fails as on a full disk (the rest works)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        if sql.startswith("ALTER"):
            raise sqlite3.OperationalError("database or disk is full")
        return self._conn.execute(sql, *args)


def test_the_schema_statements_raise_store_error_too(store: Path) -> None:
    """What db.py runs itself (gc adding envs.gone_since to an older database) is
    behind the seam too."""
    from envstore.store.db import connect, ensure_gone_since

    db = store / "envstore.db"
    with sqlite3.connect(db) as old:  # as envstore made it before the column
        old.execute("ALTER TABLE envs DROP COLUMN gone_since")
    old.close()
    conn = connect(db, create=False)
    try:
        with pytest.raises(StoreError, match=r"envstore.db: database or disk is full"):
            ensure_gone_since(_FullOnAlter(conn))  # type: ignore[arg-type]
    finally:
        conn.close()
