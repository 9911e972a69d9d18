"""Reference tracking and cleanup: gc, list, store, verify, repair, rebuild-db."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
import wheelmaker
from conftest import CLI, entries, envstore_cmd, hermetic_environ, run

from envstore.env.remove import remove_env
from envstore.store.db import SCHEMA_VERSION
from envstore.store.fs import rmtree
from envstore.store.gc import collect, tree_size
from envstore.store.layout import Store


@pytest.fixture(scope="module")
def many_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve small independent distributions, p00 .. p11."""
    wh = tmp_path_factory.mktemp("many")
    for i in range(12):
        wheelmaker.build_wheel(
            wh, f"p{i:02d}", "1.0", files={f"p{i:02d}/__init__.py": f"N = {i}\n" + "#" * 500 * i}
        )
    return wh


def _create(cli: CLI, store: Path, env: Path, wh: Path, *reqs: str) -> None:
    res = cli("--store", store, "create", env, "--no-index", "-f", wh, "--without-pip", *reqs)
    assert res.code == 0, res.err


def _refs(store: Path) -> set[tuple[str, str]]:
    with sqlite3.connect(store / "envstore.db") as conn:
        return set(conn.execute("SELECT env, object FROM refs"))


def test_gc_removes_exactly_what_only_deleted_envs_used(
    cli: CLI, many_wheels: Path, tmp_path: Path, store: Path
) -> None:
    # One pip resolution for all twelve; the envs below then resolve from the store.
    _create(cli, store, tmp_path / "seed", many_wheels, *[f"p{i:02d}" for i in range(12)])
    assert cli("--store", store, "remove", tmp_path / "seed").code == 0
    # A dozen envs over overlapping sets: env i holds p(i), p(i+1) and p00.
    envs = {}
    for i in range(12):
        reqs = sorted({"p00", f"p{i:02d}", f"p{(i + 1) % 12:02d}"})
        envs[i] = (tmp_path / f"env{i}", reqs)
        _create(cli, store, envs[i][0], many_wheels, *reqs)
    deleted = list(range(0, 12, 2))
    kept = [i for i in range(12) if i not in deleted]
    used_by_kept = {r for i in kept for r in envs[i][1]}
    only_deleted = {r for i in deleted for r in envs[i][1]} - used_by_kept
    # pip's entry was ingested to resolve (the envs are --without-pip): unused too.
    unused = {e for e in entries(store) if e.split("/")[1] in only_deleted | {"pip"}}
    expected_bytes = sum(tree_size(store / "entries" / e) for e in unused)
    for i in deleted:
        shutil.rmtree(envs[i][0])

    before = entries(store)
    plan = collect(Store(store), grace=0, dry_run=True)
    assert entries(store) == before  # a dry run changes nothing
    assert {i.name for i in plan.delete if i.kind == "entry"} == unused
    assert sum(i.size for i in plan.delete if i.kind == "entry") == expected_bytes
    assert sorted(plan.dead_envs) == sorted(str(envs[i][0]) for i in deleted)
    dry = cli("--store", store, "gc", "--grace", "0", "--dry-run")
    assert dry.code == 0 and "would free" in dry.out
    res = cli("--store", store, "gc", "--grace", "0")
    assert res.code == 0, res.err
    assert {e.split("/")[1] for e in entries(store)} == used_by_kept
    summary = json.loads(cli("--store", store, "store", "--json").out)
    assert summary["entries"] == len(used_by_kept) and summary["envs"] == len(kept)
    assert summary["unreferenced"] == 0
    for i in kept:
        out = run([envs[i][0] / "bin" / "python", "-c", f"import {', '.join(envs[i][1])}"])
        assert out.returncode == 0, out.stderr
    listed = json.loads(cli("--store", store, "list", "--json").out)
    assert sorted(e["path"] for e in listed) == sorted(str(envs[i][0]) for i in kept)


def test_gc_keeps_what_a_live_envs_view_links_to(
    cli: CLI, many_wheels: Path, tmp_path: Path, store: Path
) -> None:
    env = tmp_path / "env"
    _create(cli, store, env, many_wheels, "p01", "p02")
    # A manifest edited by hand to list fewer packages than its view links to.
    data = json.loads((env / "envstore.json").read_text())
    data["packages"] = [p for p in data["packages"] if p["name"] != "p02"]
    (env / "envstore.json").write_text(json.dumps(data))
    assert cli("--store", store, "gc", "--grace", "0").code == 0
    assert {"p01", "p02"} <= _names(store)
    assert run([env / "bin" / "python", "-c", "import p01, p02"]).returncode == 0


def test_a_new_env_at_a_moved_envs_path_leaves_it_the_grace_period(
    cli: CLI, many_wheels: Path, tmp_path: Path, store: Path
) -> None:
    env, backup = tmp_path / ".venv", tmp_path / ".venv-old"
    _create(cli, store, env, many_wheels, "p10")
    _age(store, 3600)
    env.rename(backup)  # kept as a backup, not relinked yet
    _create(cli, store, env, many_wheels, "p11")  # a new env takes over the path
    res = cli("--store", store, "gc")
    assert res.code == 0 and "(earlier env, replaced" in res.out, res.out
    assert "p10" in _names(store)
    assert cli("--store", store, "relink", backup).code == 0
    assert run([backup / "bin" / "python", "-c", "import p10"]).returncode == 0
    assert run([env / "bin" / "python", "-c", "import p11"]).returncode == 0


def test_a_create_that_loses_the_race_for_its_path_leaves_the_winner_registered(
    cli: CLI, many_wheels: Path, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import envstore.env.make as envs

    env = tmp_path / "env"
    register = envs.register_env

    def other_create_wins(
        st: Store, manifest: object, final: Path, *args: object, **kwargs: object
    ) -> None:
        register(st, manifest, final, *args, **kwargs)  # type: ignore[arg-type]
        if final == env and not env.exists():  # both registered; the other renames first
            other = [*envstore_cmd(), "--store", store, "create", env, "--no-index"]
            done = run([*other, "-f", many_wheels, "--without-pip", "p05"])
            assert done.returncode == 0, done.stderr

    monkeypatch.setattr(envs, "register_env", other_create_wins)
    res = cli("--store", store, "create", env, "--no-index", "-f", many_wheels, "p04")
    assert res.code == 1 and "created by another process meanwhile" in res.err
    monkeypatch.undo()
    winner = json.loads((env / "envstore.json").read_text())
    assert [p["name"] for p in winner["packages"]] == ["p05"]
    objects = {p["key"] for p in winner["packages"]} | {f"view/{winner['view']}"}
    assert {o for e, o in _refs(store) if e == str(env)} == objects


def test_replacing_an_env_keeps_its_store_or_moves_it_whole(
    cli: CLI, many_wheels: Path, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, other = tmp_path / "env", tmp_path / "other"
    _create(cli, store, env, many_wheels, "p03")
    args = ["--no-index", "-f", many_wheels, "--without-pip"]
    monkeypatch.setenv("ENVSTORE_HOME", str(other))  # the default store is another one now
    res = cli("create", env, "--clear", *args, "p04")
    assert res.code == 0, res.err
    assert json.loads((env / "envstore.json").read_text())["store"] == str(store)
    assert not other.exists()
    # Named on purpose: the env moves to that store, and the first one lets go of it.
    for cmd in (["create", env, "--clear"], ["sync", env]):
        res = cli("--store", other, *cmd, *args, "p05")
        assert res.code == 0, res.err
        assert json.loads((env / "envstore.json").read_text())["store"] == str(other)
        assert str(env) not in {e for e, _ in _refs(store)}
        assert json.loads(cli("--store", store, "list", "--json").out) == []
        cli("--store", store, "create", env, "--clear", *args, "p03")  # back, for sync
    # The same store by another name (a symlink): it stays registered there.
    link = tmp_path / "store-link"
    link.symlink_to(store)
    for cmd in (["create", env, "--clear"], ["sync", env]):
        assert cli("--store", link, *cmd, *args, "p06").code == 0
        assert {e for e, _ in _refs(store)} == {str(env)}
    # Its store deleted since: not made again at the old path; the default one is used.
    assert cli("--store", other, "create", env, "--clear", *args, "p05").code == 0
    rmtree(other)  # a store: read-only entries and views
    monkeypatch.setenv("ENVSTORE_HOME", str(tmp_path / "third"))
    assert cli("create", env, "--clear", *args, "p04").code == 0
    assert json.loads((env / "envstore.json").read_text())["store"] == str(tmp_path / "third")
    assert not other.exists()


def test_gc_leaves_a_temp_dir_still_being_written_to_the_next_gc(
    cli: CLI, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import envstore.store.gc as gc

    left = store / "tmp" / "999999999-entry-x-abc"  # its process is gone
    left.mkdir(parents=True)
    rmtree = gc.rmtree

    def still_written(path: Path) -> int:  # a dead create's compile worker adds a file
        if path == left:
            raise OSError(39, "Directory not empty")
        return rmtree(path)

    monkeypatch.setattr(gc, "rmtree", still_written)
    res = cli("--store", store, "gc", "--grace", "0")
    assert res.code == 0 and f"could not remove {left}" in res.err and left.exists()
    monkeypatch.undo()
    assert cli("--store", store, "gc", "--grace", "0").code == 0 and not left.exists()


def test_global_options_also_follow_the_command(
    cli: CLI, many_wheels: Path, tmp_path: Path, store: Path
) -> None:
    env = tmp_path / "env"
    res = cli("create", env, "--no-index", "-f", many_wheels, "--without-pip", "p02",
              "--store", store, "-q")  # fmt: skip
    assert res.code == 0 and res.out == "", res.err
    assert json.loads((env / "envstore.json").read_text())["store"] == str(store)
    listed = cli("list", "--store", store, "--json")
    assert [e["path"] for e in json.loads(listed.out)] == [str(env)]
    assert cli("--store", store, "list", "--json").out == listed.out


def test_a_reader_that_goes_away_is_not_an_error_worth_a_traceback(
    cli: CLI, many_wheels: Path, tmp_path: Path, store: Path
) -> None:
    for i in range(3):
        _create(cli, store, tmp_path / f"env{i}", many_wheels, "p01")
    cmd = " ".join(shlex.quote(str(c)) for c in [*envstore_cmd(), "--store", store, "list"])
    res = subprocess.run(
        f"{cmd} | true",
        shell=True,
        capture_output=True,
        text=True,
        env=hermetic_environ({"PYTHONUNBUFFERED": "1"}),  # each line written as printed
    )
    assert "Traceback" not in res.stderr, res.stderr


def test_reading_a_store_that_does_not_exist_says_so(cli: CLI, tmp_path: Path) -> None:
    typo = tmp_path / "no-such-store"
    for cmd in (["list"], ["store"], ["gc"]):
        res = cli("--store", typo, *cmd)
        assert res.code == 0 and f"there is no store at {typo}" in res.err
    res = cli("--store", typo, "verify")
    assert res.code == 1 and f"there is no store at {typo}" in res.err
    assert not typo.exists()


def test_gc_grace_period_and_dry_run(
    cli: CLI, many_wheels: Path, tmp_path: Path, store: Path
) -> None:
    env = tmp_path / "env"
    _create(cli, store, env, many_wheels, "p01")
    shutil.rmtree(env)
    before = entries(store)
    assert cli("--store", store, "gc").code == 0  # default grace: entries are fresh
    assert entries(store) == before
    dry = cli("--store", store, "gc", "--grace", "0", "--dry-run")
    assert "would remove entry pure/p01/" in dry.out and "would free" in dry.out
    assert entries(store) == before
    for bad in ("nan", "-1", "inf", "10x"):  # not a grace period: refused, nothing deleted
        with pytest.raises(SystemExit):
            cli("--store", store, "gc", "--grace", bad)
    assert entries(store) == before
    assert cli("--store", store, "gc", "--grace", "0").code == 0
    assert entries(store) == []
    assert json.loads(cli("--store", store, "list", "--json").out) == []


def _age(store: Path, seconds: float) -> None:
    """Let ``seconds`` pass for gc: entries, views and gone envs become that much older."""
    with sqlite3.connect(store / "envstore.db") as conn:
        conn.execute("UPDATE entries SET added = added - ?", (seconds,))
        conn.execute("UPDATE views SET added = added - ?", (seconds,))
        conn.execute("UPDATE envs SET gone_since = gone_since - ?", (seconds,))


def _gone_since(store: Path) -> dict[str, float | None]:
    with sqlite3.connect(store / "envstore.db") as conn:
        return dict(conn.execute("SELECT path, gone_since FROM envs"))


def _names(store: Path) -> set[str]:
    return {e.split("/")[1] for e in entries(store)}


def test_gc_keeps_what_a_moved_env_uses_until_it_is_relinked(
    cli: CLI, many_wheels: Path, tmp_path: Path, store: Path
) -> None:
    env, moved = tmp_path / "env", tmp_path / "moved"
    _create(cli, store, env, many_wheels, "p03")
    _age(store, 3600)  # its entries are long past the grace period
    env.rename(moved)
    res = cli("--store", store, "gc")
    assert res.code == 0, res.err
    assert f"kept {env} (gone since" in res.out and "envstore relink" in res.out
    assert "p03" in _names(store)
    works = run([moved / "bin" / "python", "-c", "import p03"])
    assert works.returncode == 0, works.stderr
    since = _gone_since(store)[str(env)]
    assert since is not None
    assert cli("--store", store, "gc").code == 0  # the clock is not restarted
    assert _gone_since(store)[str(env)] == since

    moved.rename(env)  # back again: no longer gone
    res = cli("--store", store, "gc")
    assert res.code == 0 and "kept" not in res.out
    assert _gone_since(store) == {str(env): None}

    env.rename(moved)
    assert cli("--store", store, "relink", moved).code == 0
    _age(store, 3600)
    assert cli("--store", store, "gc").code == 0
    assert "p03" in _names(store)
    listed = json.loads(cli("--store", store, "list", "--json").out)
    assert [e["path"] for e in listed] == [str(moved)]
    works = run([moved / "bin" / "python", "-c", "import p03"])
    assert works.returncode == 0, works.stderr


def test_gc_frees_what_a_deleted_env_used_once_gone_for_the_grace_period(
    cli: CLI, many_wheels: Path, tmp_path: Path, store: Path
) -> None:
    env = tmp_path / "env"
    _create(cli, store, env, many_wheels, "p04")
    _age(store, 3600)
    shutil.rmtree(env)
    dry = cli("--store", store, "gc", "--dry-run")
    assert dry.code == 0 and f"kept {env}" in dry.out
    assert _gone_since(store) == {str(env): None}  # a dry run records nothing
    assert cli("--store", store, "gc").code == 0
    assert "p04" in _names(store)
    _age(store, 590)
    assert cli("--store", store, "gc").code == 0
    assert "p04" in _names(store)
    _age(store, 20)
    res = cli("--store", store, "gc")
    assert res.code == 0, res.err
    assert f"removed registration of {env} (gone)" in res.out
    assert "p04" not in _names(store)
    assert json.loads(cli("--store", store, "list", "--json").out) == []


def test_remove_releases_an_env_already_deleted_without_waiting(
    cli: CLI, many_wheels: Path, tmp_path: Path, store: Path
) -> None:
    env = tmp_path / "env"
    _create(cli, store, env, many_wheels, "p06")
    _age(store, 3600)
    shutil.rmtree(env)
    res = cli("--store", store, "remove", env)
    assert res.code == 0, res.err
    assert json.loads(cli("--store", store, "list", "--json").out) == []
    assert cli("--store", store, "gc").code == 0
    assert "p06" not in _names(store)
    unknown = cli("--store", store, "remove", tmp_path / "never-was")
    assert unknown.code == 1 and "has no env there" in unknown.err


HOLD_LOCK = (
    "import sys\n"
    "from pathlib import Path\n"
    "from envstore.store.locks import file_lock\n"
    "with file_lock(Path(sys.argv[1]), shared=sys.argv[2] == 'shared'):\n"
    "    print('held', flush=True)\n"
    "    sys.stdin.read()\n"  # until the test lets go
)


@contextmanager
def _held(path: Path, mode: str) -> Iterator[None]:
    """Another process holds a lock on ``path`` (``shared`` or ``exclusive``)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdin is not None and holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "held"
        yield
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
        holder.stdout.close()


def test_remove_of_a_missing_env_waits_for_a_create_of_it_in_flight(
    cli: CLI, many_wheels: Path, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env, in_flight = tmp_path / "env", tmp_path / ".env.envstore-tmp-1"
    _create(cli, store, env, many_wheels, "p08")
    # A create between registering the env and renaming it into place: registered,
    # not at its path yet, the gc lock held shared.
    env.rename(in_flight)
    monkeypatch.setenv("ENVSTORE_LOCK_TIMEOUT", "1")
    with _held(store / "locks" / "gc.lock", "shared"):
        res = cli("--store", store, "remove", env)
        assert res.code == 1 and "timed out" in res.err
        assert {e for e, _ in _refs(store)} == {str(env)}  # still registered
    in_flight.rename(env)  # the create finished
    assert cli("--store", store, "remove", env).code == 0
    assert not env.exists() and _refs(store) == set()


def test_remove_of_a_missing_env_made_while_it_waited_removes_it(
    cli: CLI, many_wheels: Path, tmp_path: Path, store: Path
) -> None:
    env, in_flight = tmp_path / "env", tmp_path / ".env.envstore-tmp-1"
    _create(cli, store, env, many_wheels, "p08")
    env.rename(in_flight)

    class CreateFinishesFirst(Store):
        """The create in flight renames the env into place before remove gets the lock."""

        def gc_lock(self, *, shared: bool) -> AbstractContextManager[None]:
            if in_flight.exists():
                in_flight.rename(env)
            return super().gc_lock(shared=shared)

    remove_env(env, store=CreateFinishesFirst(store))
    # Not a live env left unregistered (for gc to take its entries): removed whole.
    assert not env.exists() and not in_flight.exists() and _refs(store) == set()


def test_remove_waits_for_a_relink_or_swap_of_the_env(
    cli: CLI, many_wheels: Path, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = tmp_path / "env"
    _create(cli, store, env, many_wheels, "p09")
    monkeypatch.setenv("ENVSTORE_LOCK_TIMEOUT", "1")
    with _held(env / ".envstore-lock", "exclusive"):  # what relink, create --clear, sync hold
        res = cli("--store", store, "remove", env)
        assert res.code == 1 and "timed out" in res.err and str(env) in res.err
        assert (env / "envstore.json").exists() and _refs(store)
    assert cli("--store", store, "remove", env).code == 0
    assert not env.exists() and _refs(store) == set()


def test_a_database_from_before_gone_since_gets_it_and_stays_readable_by_older_envstores(
    cli: CLI, many_wheels: Path, tmp_path: Path, store: Path
) -> None:
    env = tmp_path / "env"
    _create(cli, store, env, many_wheels, "p05")
    with sqlite3.connect(store / "envstore.db") as conn:  # as envstore made it before
        conn.execute("ALTER TABLE envs DROP COLUMN gone_since")
    shutil.rmtree(env)
    dry = cli("--store", store, "gc", "--dry-run")
    assert dry.code == 0 and f"kept {env}" in dry.out
    res = cli("--store", store, "gc")
    assert res.code == 0, res.err
    assert f"kept {env}" in res.out
    with sqlite3.connect(store / "envstore.db") as conn:
        # The column bumped no schema version: an envstore of the same schema opens it.
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT gone_since FROM envs").fetchone()[0] is not None


def test_unreadable_manifest_makes_gc_keep_everything(
    cli: CLI, many_wheels: Path, tmp_path: Path, store: Path
) -> None:
    good, bad = tmp_path / "good", tmp_path / "bad"
    _create(cli, store, good, many_wheels, "p01")
    _create(cli, store, bad, many_wheels, "p02")
    shutil.rmtree(good)
    (bad / "envstore.json").write_text('{"version": 1, "packages": [')  # truncated
    res = cli("--store", store, "gc", "--grace", "0")
    assert res.code == 1
    assert str(bad) in res.err and "keeping" in res.err
    assert {e.split("/")[1] for e in entries(store)} == {"p01", "p02", "pip"}
    listed = {
        e["path"]: e["status"] for e in json.loads(cli("--store", store, "list", "--json").out)
    }
    assert listed == {str(bad): "manifest unreadable"}  # the gone env's registration was dropped


def test_rebuild_db_restores_references(
    cli: CLI, many_wheels: Path, tmp_path: Path, store: Path
) -> None:
    for i in range(3):
        _create(cli, store, tmp_path / f"env{i}", many_wheels, f"p{i:02d}", "p11")
    before = _refs(store)
    for name in ("envstore.db", "envstore.db-wal", "envstore.db-shm"):
        (store / name).unlink(missing_ok=True)
    refused = cli("--store", store, "gc", "--grace", "0")
    assert refused.code == 1 and "rebuild-db" in refused.err
    assert len(entries(store)) == 5  # four packages and the pip used to resolve
    rebuilt = cli("--store", store, "rebuild-db")
    assert rebuilt.code == 0, rebuilt.err
    assert _refs(store) == before
    assert cli("--store", store, "gc", "--grace", "0").code == 0
    assert len(entries(store)) == 4  # nothing live was deleted (only the unused pip)

    for name in ("envstore.db-wal", "envstore.db-shm"):
        (store / name).unlink(missing_ok=True)
    (store / "envstore.db").write_bytes(b"this is not a database" * 100)
    corrupt = cli("--store", store, "gc", "--grace", "0")
    assert corrupt.code == 1 and "rebuild-db" in corrupt.err
    assert cli("--store", store, "rebuild-db").code == 0
    assert _refs(store) == before


def test_verify_reports_each_tampering_and_repair_fixes_it(
    cli: CLI, many_wheels: Path, tmp_path: Path, store: Path
) -> None:
    _create(cli, store, tmp_path / "env", many_wheels, "p03", "p04", "p05")
    assert cli("--store", store, "verify", "--check-contents").code == 0
    pure = store / "entries" / "pure"
    flipped = next((pure / "p03").iterdir()) / "site" / "p03" / "__init__.py"
    deleted = next((pure / "p04").iterdir()) / "site" / "p04" / "__init__.py"
    added_dir = next((pure / "p05").iterdir()) / "site" / "p05"
    for d in (flipped.parent, deleted.parent, added_dir):
        os.chmod(d, 0o755)
    os.chmod(flipped, 0o644)
    data = bytearray(flipped.read_bytes())
    data[0] ^= 0x01
    flipped.write_bytes(bytes(data))
    deleted.unlink()
    (added_dir / "planted.py").write_text("evil = 1\n")
    for d in (flipped.parent, deleted.parent, added_dir):
        os.chmod(d, 0o555)
    os.chmod(flipped, 0o444)
    os.chmod(added_dir / "planted.py", 0o444)

    res = cli("--store", store, "verify", "--check-contents")
    assert res.code == 1
    assert "p03/__init__.py does not match its RECORD hash" in res.out
    assert "missing file site/p04/__init__.py" in res.out
    assert "unexpected file site/p05/planted.py" in res.out
    # A damaged entry is never linked into a new env until repaired.
    refused = cli("--store", store, "create", tmp_path / "new", "--offline", "p03")
    assert refused.code == 1 and "damaged" in refused.err
    repaired = cli("--store", store, "verify", "--repair")
    assert repaired.code == 0, repaired.out + repaired.err
    assert cli("--store", store, "verify", "--check-contents").code == 0
    out = run([tmp_path / "env" / "bin" / "python", "-c", "import p03, p04, p05; print(p04.N)"])
    assert out.returncode == 0 and out.stdout.strip() == "4", out.stderr


def test_remove_releases_references_and_refuses_non_env(
    cli: CLI, many_wheels: Path, tmp_path: Path, store: Path
) -> None:
    env = tmp_path / "env"
    _create(cli, store, env, many_wheels, "p06")
    assert cli("--store", store, "remove", env).code == 0
    assert not env.exists() and _refs(store) == set()
    assert list((store / "roots").iterdir()) == []
    plain = tmp_path / "plain"
    plain.mkdir()
    res = cli("--store", store, "remove", plain)
    assert res.code == 1 and "not an envstore environment" in res.err and plain.exists()


WORKER = r"""
import os, sys, random, subprocess
from envstore import create_env, remove_env, EnvstoreError
store, wh, base, seed = sys.argv[1:5]
rng = random.Random(int(seed))
ok = []
for n in range(6):
    env = os.path.join(base, f"w{seed}-{n}")
    reqs = sorted(rng.sample([f"p{i:02d}" for i in range(12)], 3))
    try:
        create_env(env, reqs, store=store, find_links=[wh], no_index=True, with_pip=False)
    except EnvstoreError as exc:
        print("FAILED", env, exc, file=sys.stderr)
        continue
    if rng.random() < 0.4:
        remove_env(env, store=store)
    else:
        ok.append(env + "=" + ",".join(reqs))
print("\n".join(ok))
"""


def test_concurrent_creates_removes_and_gc(many_wheels: Path, tmp_path: Path, store: Path) -> None:
    env = hermetic_environ({"ENVSTORE_LOCK_TIMEOUT": "60"})
    # Warm the store first so the workers race on references, not on pip.
    warm = subprocess.run(
        [
            *envstore_cmd(),
            "--store",
            store,
            "create",
            tmp_path / "warm",
            "--no-index",
            "-f",
            many_wheels,
            "--without-pip",
            *[f"p{i:02d}" for i in range(12)],
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert warm.returncode == 0, warm.stderr
    subprocess.run(
        [*envstore_cmd(), "--store", store, "remove", tmp_path / "warm"], env=env, check=True
    )
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, store, many_wheels, tmp_path, str(seed)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(3)
    ]
    gcs = 0
    while any(w.poll() is None for w in workers):
        gc = subprocess.run(
            [*envstore_cmd(), "-q", "--store", store, "gc", "--grace", "0"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert gc.returncode == 0, gc.stderr
        gcs += 1
        time.sleep(0.05)
    assert gcs >= 1
    survivors = []
    for w in workers:
        out, err = w.communicate()
        assert w.returncode == 0, err
        assert "FAILED" not in err, err
        survivors += [line.split("=") for line in out.split() if line]
    assert survivors
    for path, reqs in survivors:
        res = run([Path(path) / "bin" / "python", "-c", f"import {reqs}"])
        assert res.returncode == 0, (path, res.stderr)
    check = run([*envstore_cmd(), "--store", store, "verify", "--check-contents"])
    assert check.returncode == 0, check.stdout + check.stderr
    for path, _ in survivors:
        shutil.rmtree(path)
    final = run([*envstore_cmd(), "--store", store, "gc", "--grace", "0"])
    assert final.returncode == 0, final.stderr
    assert entries(store) == []
    assert list((store / "views").iterdir()) == []
    assert list((store / "tmp").iterdir()) == []
