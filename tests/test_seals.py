"""Seals on a store made before them (database schema 1): migrated, sealed as found,
then checked like any other."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from conftest import CLI

from envstore.store import rebuild as _rebuild
from envstore.store.db import SCHEMA_VERSION, sql


def _as_schema_1(store: Path) -> None:
    """What envstore made before seals: no seal columns, user_version 1."""
    with sqlite3.connect(store / "envstore.db") as conn:
        conn.execute("DROP TABLE seals")
        conn.execute("DROP INDEX entries_damaged")
        conn.execute("ALTER TABLE views DROP COLUMN damaged")
        conn.execute("PRAGMA user_version = 1")


def test_a_store_from_before_seals_is_migrated_then_sealed_as_found(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    env = tmp_path / "env"
    args = ["--without-pip", "--no-index", "-f", wheelhouse, "solo"]
    assert cli("--store", store, "create", env, *args).code == 0
    _as_schema_1(store)

    # Any command migrates it; a create from it still works.
    assert cli("--store", store, "create", tmp_path / "env2", *args).code == 0
    with sqlite3.connect(store / "envstore.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT count(*) FROM seals").fetchone() == (0,)

    first = cli("--store", store, "verify", "--check-contents")
    assert first.code == 0, first.out
    assert "sealed as found now" in first.out and "no problems found" in first.out
    second = cli("--store", store, "verify", "--check-contents")
    assert second.code == 0 and "sealed as found" not in second.out

    # Sealed now: changed bytecode is found like in any store made with seals.
    (pyc,) = (store / "entries" / "pure" / "solo").glob("*/site/__pycache__/solo.*.pyc")
    os.chmod(pyc.parent, 0o755)
    pyc.chmod(0o644)
    pyc.write_bytes(pyc.read_bytes()[:16] + b"tampered")
    pyc.chmod(0o444)
    os.chmod(pyc.parent, 0o555)
    res = cli("--store", store, "verify", "--check-contents")
    assert res.code == 1 and "does not match what was compiled" in res.out


def test_an_older_envstore_meeting_a_newer_database_says_so(cli: CLI, store: Path) -> None:
    with sqlite3.connect(store / "envstore.db") as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    res = cli("--store", store, "list")
    assert res.code == 1 and "newer than this envstore understands" in res.err
    assert "upgrade envstore" in res.err


def test_rebuild_db_on_a_full_disk_keeps_the_old_database(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = tmp_path / "env"
    assert cli("--store", store, "create", env, "--without-pip", "--no-index", "-f", wheelhouse,
               "solo").code == 0  # fmt: skip
    before = _rows(store)

    def full(*args: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    # Fails midway, as a full disk does: SQLite's error, converted where the store meets it.
    monkeypatch.setattr(_rebuild.index, "add_entry", sql(full))
    res = cli("--store", store, "rebuild-db")
    assert res.code == 1 and "disk is full" in res.err and "Traceback" not in res.err
    assert _rows(store) == before  # not an empty database
    monkeypatch.undo()
    assert cli("--store", store, "rebuild-db").code == 0
    assert cli("--store", store, "create", tmp_path / "env2", "--without-pip", "--no-index",
               "-f", wheelhouse, "solo").code == 0  # fmt: skip


def _rows(store: Path) -> list[object]:
    with sqlite3.connect(store / "envstore.db") as conn:
        return [
            conn.execute("SELECT key FROM entries ORDER BY key").fetchall(),
            conn.execute("SELECT path FROM envs ORDER BY path").fetchall(),
        ]


def test_a_file_changed_together_with_its_record_row_is_found(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    import base64
    import hashlib

    assert cli("--store", store, "create", tmp_path / "env", "--without-pip", "--no-index",
               "-f", wheelhouse, "dep-one").code == 0  # fmt: skip
    (entry,) = (store / "entries" / "pure" / "dep-one").iterdir()
    site = entry / "site"
    pth, (record,) = site / "dep-one.pth", site.glob("*.dist-info/RECORD")
    new = b"import os; os.environ['TAMPERED'] = '1'\n"
    digest = base64.urlsafe_b64encode(hashlib.sha256(new).digest()).rstrip(b"=").decode()
    rows = [
        f"dep-one.pth,sha256={digest},{len(new)}" if row.startswith("dep-one.pth,") else row
        for row in record.read_text().splitlines()
    ]
    for path in (site, record.parent):
        os.chmod(path, 0o755)
    for path, data in ((pth, new), (record, ("\n".join(rows) + "\n").encode())):
        path.chmod(0o644)
        path.write_bytes(data)
        path.chmod(0o444)
    for path in (site, record.parent):
        os.chmod(path, 0o555)
    res = cli("--store", store, "verify", "--check-contents")
    assert res.code == 1 and "RECORD was changed" in res.out, res.out


def test_a_store_with_seals_in_columns_is_migrated_keeping_them(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    """Schema 2 kept each seal in its entry's (or view's) row."""
    env = tmp_path / "env"
    args = ["--without-pip", "--no-index", "-f", wheelhouse, "solo"]
    assert cli("--store", store, "create", env, *args).code == 0
    with sqlite3.connect(store / "envstore.db") as conn:
        conn.execute("ALTER TABLE entries ADD COLUMN seal TEXT")
        conn.execute("ALTER TABLE views ADD COLUMN seal TEXT")
        conn.execute("UPDATE entries SET seal = (SELECT seal FROM seals WHERE object = key)")
        conn.execute(
            "UPDATE views SET seal = (SELECT seal FROM seals WHERE object = 'view/' || key)"
        )
        conn.execute("DROP TABLE seals")
        conn.execute("DROP INDEX entries_damaged")
        conn.execute("PRAGMA user_version = 2")
    res = cli("--store", store, "verify", "--check-contents")
    assert res.code == 0 and "sealed as found" not in res.out, res.out  # kept, not re-sealed
    with sqlite3.connect(store / "envstore.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_rebuild_db_keeps_the_seals_and_damage_the_old_database_knew(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    assert cli("--store", store, "create", tmp_path / "env", "--without-pip", "--no-index",
               "-f", wheelhouse, "solo").code == 0  # fmt: skip
    (pyc,) = (store / "entries" / "pure" / "solo").glob("*/site/__pycache__/solo.*.pyc")
    os.chmod(pyc.parent, 0o755)
    pyc.chmod(0o644)
    pyc.write_bytes(pyc.read_bytes()[:16] + b"tampered")
    pyc.chmod(0o444)
    os.chmod(pyc.parent, 0o555)
    assert cli("--store", store, "verify", "--check-contents").code == 1
    assert cli("--store", store, "rebuild-db").code == 0
    # Not "sealed as found": the seal of what was compiled survived the rebuild.
    res = cli("--store", store, "verify", "--check-contents")
    assert res.code == 1 and "does not match what was compiled" in res.out, res.out


def test_an_entry_left_writable_by_a_killed_compile_is_finished_not_damaged(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    from envstore.store.fs import make_writable_dirs

    args = ["--without-pip", "--no-index", "-f", wheelhouse, "solo"]
    assert cli("--store", store, "create", tmp_path / "env", *args).code == 0
    (entry,) = (store / "entries" / "pure" / "solo").iterdir()
    # What a SIGKILL in ensure_compiled leaves: writable directories, part of another
    # Python's bytecode, no compiled-<tag> marker for it.
    make_writable_dirs(entry)
    half = entry / "site" / "__pycache__" / "solo.cpython-399.pyc"
    half.write_bytes(b"half written")
    res = cli("--store", store, "verify", "--check-contents")
    assert res.code == 0 and "made read-only" in res.out, res.out
    assert not half.exists() and not os.stat(entry).st_mode & 0o222
    assert cli("--store", store, "create", tmp_path / "env2", *args).code == 0
