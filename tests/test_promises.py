"""The promises of shared/guides/reliability.md that other test files do not cover."""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import wheelmaker
from conftest import CLI, PYTHONS, entries, envstore_cmd, hermetic_environ, run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envstore.errors import BadWheelError, EnvstoreError, IncompatibleWheelError
from envstore.model.manifest import MANIFEST_VERSION
from envstore.python.interpreters import find_interpreter
from envstore.store.ingest import ingest_wheels, unpack_wheel
from envstore.store.layout import Store
from envstore.store.wheel import validate_wheel

# What each hostile wheel's error must say.
HOSTILE = {
    "path-traversal": "escapes",
    "path-traversal-nested": "escapes",
    "absolute-path": "absolute path",
    "nul-in-name": "control character",
    "control-char-in-name": "control character",
    "duplicate-member": "more than once",
    "symlink-member": "symbolic link",
    "record-missing": "RECORD is missing",
    "record-unparseable": "RECORD",
    "record-hash-mismatch": "does not match its contents",
    "record-size-mismatch": "RECORD size",
    "record-phantom-file": "which is not in the wheel",
    "record-unlisted-file": "not listed in RECORD",
    "record-md5": "weak or unknown hash 'md5'",
    "record-sha1": "weak or unknown hash 'sha1'",
    "no-dist-info": "exactly one .dist-info",
    "two-dist-info": "exactly one .dist-info",
    "name-mismatch": "does not match",
    "version-mismatch": "does not match the file name's version",
    "wheel-version-2": "Wheel-Version '2.0'",
    "entry-point-slash": "not a plain file name",
    "entry-point-dotdot": "not a plain file name",
    "data-scripts-python": "would replace the env's python",
    "bad-data-scheme": "not in a known .data scheme",
    "high-ratio-member": "compression ratio",
    "oversized-member": "too large",
    "corrupt-data": "cannot be inflated",
    "file-and-directory": "a file, and a directory",
}


def _snapshot(path: Path, skip: str = "") -> list[str]:
    """Every name under ``path``, except top-level names starting with ``skip``."""
    found = (str(p.relative_to(path)) for p in path.rglob("*"))
    return sorted(f for f in found if not (skip and f.split("/")[0].startswith(skip)))


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return dict(wheelmaker.hostile_wheels(tmp_path_factory.mktemp("hostile")))


def test_hostile_corpus_is_complete(hostile: dict[str, Path]) -> None:
    assert set(hostile) == set(HOSTILE)


@pytest.mark.parametrize("ident", sorted(HOSTILE))
def test_hostile_wheel_is_refused_and_nothing_lands(
    ident: str, hostile: dict[str, Path], store: Path, tmp_path: Path
) -> None:
    st_ = Store(store)
    st_.ensure()
    interp = find_interpreter(None, st_.facts_cache())
    before = _snapshot(store)
    outside = _snapshot(tmp_path, skip="store")
    with pytest.raises(BadWheelError) as info:
        ingest_wheels(st_, [hostile[ident]], interp)
    assert HOSTILE[ident] in str(info.value)
    assert hostile[ident].name in str(info.value)
    assert _snapshot(store) == before
    assert _snapshot(tmp_path, skip="store") == outside
    assert not Path("/tmp/evil_abs.py").exists()


@pytest.mark.parametrize("ident", ["record-hash-mismatch", "corrupt-data"])
def test_contents_are_checked_before_or_while_unpacking(
    ident: str, hostile: dict[str, Path], tmp_path: Path
) -> None:
    """validate_wheel hashes every member; with contents=False (ingest) unpack_wheel does,
    inflating each member once, and refuses the same wheels with the same words."""
    with pytest.raises(BadWheelError, match=HOSTILE[ident]):
        validate_wheel(hostile[ident])
    info = validate_wheel(hostile[ident], contents=False)
    with pytest.raises(BadWheelError, match=HOSTILE[ident]):
        unpack_wheel(info, tmp_path / "entry")


def test_a_dying_compile_worker_is_an_error_and_nothing_lands(
    monkeypatch: pytest.MonkeyPatch, store: Path, tmp_path: Path
) -> None:
    """A compile worker that dies (a broken interpreter) fails the ingest with what it
    said, and leaves no entry and no temp directory behind."""
    from envstore.store import bytecode as _bytecode

    monkeypatch.setattr(_bytecode, "_WORKER", "import sys; print('boom', file=sys.stderr); exit(3)")
    files = {f"many/m{i}.py": f"X = {i}\n" for i in range(40)}
    wheel = wheelmaker.build_wheel(tmp_path / "wh", "many", "1.0", files=files)
    st_ = Store(store)
    st_.ensure()
    interp = find_interpreter(None, st_.facts_cache())
    before = entries(store)
    with pytest.raises(EnvstoreError, match=r"compiling bytecode with .* failed: boom"):
        ingest_wheels(st_, [wheel], interp)
    assert entries(store) == before
    assert not any(e.startswith("pure/many/") for e in entries(store))
    assert os.listdir(st_.tmp_dir) == []


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    names=st.lists(
        st.text(alphabet="ab./\\\x00\n_-", min_size=1, max_size=12), min_size=0, max_size=4
    ),
    drop_record=st.booleans(),
    corrupt=st.integers(min_value=-1, max_value=6),
)
def test_fuzzed_wheels_are_refused_or_unpack_inside_and_match_record(
    names: list[str], drop_record: bool, corrupt: int, tmp_path: Path
) -> None:
    work = Path(tempfile.mkdtemp(dir=tmp_path))
    members = wheelmaker.wheel_members("fuzz", "1.0")
    members += [wheelmaker.Member(f"fuzz/{n}", b"x = 1\n") for n in names]
    record_name = "fuzz-1.0.dist-info/RECORD"
    body = [m for m in members if m.name != record_name]
    record = wheelmaker.record_for(body, record_name)
    if 0 <= corrupt < len(body):  # RECORD was written before the member changed
        body[corrupt] = wheelmaker.Member(body[corrupt].name, body[corrupt].data + b"#")
    members = body if drop_record else [*body, record]
    wheel = wheelmaker.write_raw_wheel(work / "fuzz-1.0-py3-none-any.whl", members)
    dest = work / "entry"
    try:
        info = validate_wheel(wheel)
    except BadWheelError:
        return
    unpack_wheel(info, dest)
    inside = os.path.realpath(dest)
    for path in work.rglob("*"):
        assert path == wheel or os.path.realpath(path).startswith(inside)
        assert not path.is_symlink()
    with open(dest / "site" / "fuzz-1.0.dist-info" / "RECORD", newline="") as f:
        rows = [r for r in csv.reader(f) if r and r[1]]
    assert rows
    for rel, digest, size in rows:
        data = (dest / "site" / rel).read_bytes()
        assert len(data) == int(size)
        algo, _, value = digest.partition("=")
        actual = base64.urlsafe_b64encode(hashlib.new(algo, data).digest()).rstrip(b"=")
        assert actual.decode() == value


def test_wheel_for_another_abi_is_refused_before_unpacking(
    cli: CLI, store: Path, tmp_path: Path
) -> None:
    wh = tmp_path / "wh"
    wh.mkdir()
    wheelmaker.build_wheel(wh, "other-abi", "1.0", tag="cp27-cp27mu-linux_x86_64")
    st_ = Store(store)
    st_.ensure()
    before = entries(store)
    with pytest.raises(IncompatibleWheelError, match="does not fit"):
        ingest_wheels(st_, [next(wh.iterdir())], find_interpreter(None, st_.facts_cache()))
    assert entries(store) == before and not list((store / "tmp").iterdir())


def test_manifest_naming_another_abis_entry_is_refused(
    cli: CLI, wheelhouse: Path, store: Path, tmp_path: Path
) -> None:
    env = tmp_path / "env"
    assert cli("--store", store, "create", env, "--no-index", "-f", wheelhouse, "solo").code == 0
    data = json.loads((env / "envstore.json").read_text())
    data["packages"][0]["key"] = data["packages"][0]["key"].replace("pure/", "cpython-399-x/", 1)
    (env / "envstore.json").write_text(json.dumps(data))
    res = cli("show", env)
    assert res.code == 1 and "built for ABI cpython-399-x" in res.err
    gc = cli("--store", store, "gc", "--grace", "0")
    assert gc.code == 1 and str(env) in gc.err  # fails closed
    assert "pure/solo/" in " ".join(entries(store))


def test_lock_wait_is_bounded_and_names_the_lock(
    wheelhouse: Path, store: Path, tmp_path: Path
) -> None:
    holder_code = (
        "import os, sys, time\n"
        "from pathlib import Path\n"
        "from envstore.store.locks import file_lock\n"
        "os.makedirs(os.path.dirname(sys.argv[1]), exist_ok=True)\n"
        "with file_lock(Path(sys.argv[1])):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(300)\n"
    )
    lock = store / "locks" / "gc.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", holder_code, str(lock)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        cmd = [
            *envstore_cmd(),
            "--store",
            store,
            "create",
            tmp_path / "env",
            "--no-index",
            "-f",
            wheelhouse,
            "solo",
        ]
        env = hermetic_environ({"ENVSTORE_LOCK_TIMEOUT": "1"})
        blocked = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert blocked.returncode == 1
        assert str(lock) in blocked.stderr and "timed out after 1s" in blocked.stderr
        assert not (tmp_path / "env").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    # The killed holder's lock died with it: the next process proceeds.
    ok = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert ok.returncode == 0, ok.stderr


DB_WRITER = r"""
import sys
from pathlib import Path
from envstore.store.db import connect, write
conn = connect(Path(sys.argv[1]), create=True)
for i in range(100):
    with write(conn):
        conn.execute("INSERT OR REPLACE INTO resolutions (key, objects, created) VALUES (?, ?, ?)",
                     (f"{sys.argv[2]}-{i}", "[]", 0.0))
        conn.execute("SELECT COUNT(*) FROM resolutions").fetchone()
print("done")
"""


def test_concurrent_database_writers_never_see_locked(tmp_path: Path) -> None:
    db = tmp_path / "envstore.db"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", DB_WRITER, str(db), str(n)],
            env=hermetic_environ(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0 and "locked" not in err, err
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM resolutions").fetchone()[0] == 400


def test_envs_work_on_a_fully_read_only_store(
    cli: CLI, wheelhouse: Path, store: Path, tmp_path: Path
) -> None:
    env = tmp_path / "env"
    res = cli("--store", store, "create", env, "--no-index", "-f", wheelhouse, "hello-app", "solo")
    assert res.code == 0, res.err
    for dirpath, dirnames, filenames in os.walk(store):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                os.chmod(p, stat.S_IMODE(os.lstat(p).st_mode) & ~0o222)
    os.chmod(store, 0o555)
    try:
        before = _snapshot(store, skip="envstore.db")
        out = run([env / "bin" / "python", "-c", "import hello_app, dep_one, solo"])
        assert out.returncode == 0, out.stderr
        assert run([env / "bin" / "hello"]).returncode == 3
        assert run([env / "bin" / "python", "-m", "pip", "list"]).returncode == 0
        # Nothing compiled or written at import time. (The database files are left
        # out: this process's own connection from the in-process create may be
        # closed, checkpointing its WAL, whenever the garbage collector runs.)
        assert _snapshot(store, skip="envstore.db") == before
    finally:
        for dirpath, dirnames, _ in os.walk(store):
            for name in dirnames:
                p = os.path.join(dirpath, name)
                if not os.path.islink(p):
                    os.chmod(p, 0o755)
        os.chmod(store, 0o755)


def test_gc_remove_and_repair_never_follow_planted_symlinks(
    cli: CLI, wheelhouse: Path, store: Path, tmp_path: Path
) -> None:
    canary = tmp_path / "canary"
    canary.mkdir()
    (canary / "precious.txt").write_text("keep me")
    env = tmp_path / "env"
    assert cli("--store", store, "create", env, "--no-index", "-f", wheelhouse, "solo").code == 0
    solo = next((store / "entries" / "pure" / "solo").iterdir())
    os.chmod(solo / "site", 0o755)
    os.symlink(canary, solo / "site" / "planted")
    os.chmod(solo / "site", 0o555)
    os.symlink(canary, store / "tmp" / "999999-planted")
    os.symlink(canary, store / "entries" / "pure" / "planted")
    os.symlink(canary, store / "views" / "planted")
    os.symlink(canary / "precious.txt", store / "roots" / "planted")
    verify = cli("--store", store, "verify", "--repair")
    assert "planted" in verify.out
    assert cli("--store", store, "remove", env).code == 0
    assert cli("--store", store, "gc", "--grace", "0").code == 0
    assert (canary / "precious.txt").read_text() == "keep me"
    assert sorted(p.name for p in canary.iterdir()) == ["precious.txt"]


def test_store_writable_by_others_is_refused_unless_trusted(
    cli: CLI, wheelhouse: Path, store: Path, tmp_path: Path
) -> None:
    os.chmod(store, 0o777)
    res = cli("--store", store, "create", tmp_path / "env", "--no-index", "-f", wheelhouse, "solo")
    assert res.code == 1 and "writable by other users" in res.err and "chmod go-w" in res.err
    gc = cli("--store", store, "gc")
    assert gc.code == 1 and "writable by other users" in gc.err
    os.environ["ENVSTORE_TRUST_SHARED_STORE"] = "1"
    try:
        ok = cli(
            "--store", store, "create", tmp_path / "env", "--no-index", "-f", wheelhouse, "solo"
        )
        assert ok.code == 0, ok.err
    finally:
        del os.environ["ENVSTORE_TRUST_SHARED_STORE"]
        os.chmod(store, 0o755)


# --- Mutation-tested additions (issue #8): each test below fails when the named
# mechanism is broken; see the closing note for the experiment behind each.

INGEST = r"""
import sys
from pathlib import Path
from envstore.store.ingest import ingest_wheels
from envstore.python.interpreters import find_interpreter
from envstore.store.layout import Store
st = Store(sys.argv[1])
keys = ingest_wheels(st, [Path(p) for p in sys.argv[2:]], find_interpreter(None, st.facts_cache()))
print(" ".join(str(k) for k in keys.values()))
"""


def test_publish_race_loser_drops_its_copy_and_never_replaces_the_winner(
    wheelhouse: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheels = [*wheelhouse.glob("solo-*.whl"), *wheelhouse.glob("ns_alpha-*.whl")]
    assert len(wheels) == 2
    st_ = Store(store)
    st_.ensure()
    interp = find_interpreter(None, st_.facts_cache())
    winner: dict[str, int] = {}

    def another_process_publishes_first(name: str) -> None:
        # Our copies are unpacked in tmp/ and not yet renamed: another process
        # ingests the same wheels now and wins every publish.
        if name != "ingest-unpacked":
            return
        out = run([sys.executable, "-c", INGEST, store, *wheels])
        assert out.returncode == 0, out.stderr
        for key in out.stdout.split():
            winner[key] = os.lstat(store / "entries" / key).st_ino

    monkeypatch.setattr("envstore.store.ingest.crash_point", another_process_publishes_first)
    keys = ingest_wheels(st_, wheels, interp)
    assert sorted(winner) == sorted(str(k) for k in keys.values())
    for key, inode in winner.items():  # published entries are never replaced
        assert os.lstat(store / "entries" / key).st_ino == inode
    assert [e for e in entries(store) if not e.startswith("pure/pip/")] == sorted(winner)
    assert list((store / "tmp").iterdir()) == []  # the loser's copies are gone
    check = run([*envstore_cmd(), "--store", store, "verify", "--check-contents"])
    assert check.returncode == 0, check.stdout + check.stderr


def test_gc_cannot_collect_entries_a_create_has_chosen(
    cli: CLI, wheelhouse: Path, store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import envstore.env.make

    real = envstore.env.make.ensure_view
    gcs: list[subprocess.CompletedProcess[str]] = []

    def gc_between_choosing_and_registering(*args: object, **kwargs: object) -> object:
        gc = [*envstore_cmd(), "--store", store, "gc", "--grace", "0"]
        gcs.append(run(gc, extra_env={"ENVSTORE_LOCK_TIMEOUT": "1"}))
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(envstore.env.make, "ensure_view", gc_between_choosing_and_registering)
    env = tmp_path / "env"
    res = cli("--store", store, "create", env, "--no-index", "-f", wheelhouse, "solo", "ns-alpha")
    assert res.code == 0, res.err
    assert len(gcs) == 1
    assert gcs[0].returncode == 1 and str(store / "locks" / "gc.lock") in gcs[0].stderr
    out = run([env / "bin" / "python", "-c", "import solo, nsp.alpha"])
    assert out.returncode == 0, out.stderr
    check = run([*envstore_cmd(), "--store", store, "verify", "--check-contents"])
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("bit", [0o020, 0o002], ids=["group", "others"])
@pytest.mark.parametrize("part", ["root", "entries", "envstore.db"])
def test_every_store_part_writable_by_group_or_others_is_refused(
    part: str, bit: int, cli: CLI, store: Path
) -> None:
    path = store if part == "root" else store / part
    mode = stat.S_IMODE(path.stat().st_mode)
    os.chmod(path, mode | bit)
    try:
        res = cli("--store", store, "gc")
        assert res.code == 1 and f"refusing to use {path}: it is writable by other" in res.err
    finally:
        os.chmod(path, mode)
    assert cli("--store", store, "gc").code == 0


@pytest.mark.root_only
@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_store_owned_by_another_user_is_refused(cli: CLI, store: Path) -> None:
    os.chown(store / "entries", 65534, -1)
    try:
        res = cli("--store", store, "gc")
        assert res.code == 1 and f"refusing to use {store / 'entries'}" in res.err
        assert "belongs to nobody, not to you (root)" in res.err
        assert "chmod" not in res.err  # a mode change cannot fix who owns it
    finally:
        os.chown(store / "entries", 0, -1)


def test_gc_after_every_env_is_gone_leaves_no_entries_and_no_rows(
    cli: CLI, wheelhouse: Path, store: Path, tmp_path: Path
) -> None:
    for name, reqs in (("a", ["hello-app"]), ("b", ["solo", "ns-alpha"])):
        res = cli(
            "--store", store, "create", tmp_path / name, "--no-index", "-f", wheelhouse, *reqs
        )
        assert res.code == 0, res.err
    assert cli("--store", store, "remove", tmp_path / "a").code == 0
    shutil.rmtree(tmp_path / "b")  # gone without telling envstore
    res = cli("--store", store, "gc", "--grace", "0")
    assert res.code == 0, res.err
    assert list((store / "entries").glob("*/*")) == []
    for sub in ("views", "roots", "tmp"):
        assert list((store / sub).iterdir()) == [], sub
    conn = sqlite3.connect(store / "envstore.db")
    try:
        for table in ("entries", "views", "envs", "refs"):
            assert conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == 0, table
    finally:
        conn.close()


def test_verify_reports_mode_change_and_truncation_and_repair_touches_nothing_else(
    cli: CLI, wheelhouse: Path, store: Path, tmp_path: Path
) -> None:
    env = tmp_path / "env"
    res = cli("--store", store, "create", env, "--no-index", "-f", wheelhouse, "solo", "ns-alpha")
    assert res.code == 0, res.err
    solo = next((store / "entries" / "pure" / "solo").iterdir())
    alpha = next((store / "entries" / "pure" / "ns-alpha").iterdir())
    untouched = [e for e in (store / "entries" / "pure").glob("*/*") if e not in (solo, alpha)]
    assert untouched  # pip
    inodes = {e: os.lstat(e).st_ino for e in untouched}
    os.chmod(solo / "site" / "solo.py", 0o644)  # mode change only
    truncated = alpha / "site" / "nsp" / "alpha" / "__init__.py"
    os.chmod(truncated, 0o644)
    truncated.write_bytes(b"")
    os.chmod(truncated, 0o444)
    res = cli("--store", store, "verify", "--check-contents")
    assert res.code == 1
    assert "site/solo.py is writable (mode 644)" in res.out
    assert "site/nsp/alpha/__init__.py" in res.out
    assert not any(str(e.relative_to(store / "entries")) in res.out for e in untouched)
    repaired = cli("--store", store, "verify", "--repair")
    assert repaired.code == 0, repaired.out + repaired.err
    assert {e: os.lstat(e).st_ino for e in untouched} == inodes  # other entries untouched
    assert cli("--store", store, "verify", "--check-contents").code == 0
    out = run([env / "bin" / "python", "-c", "import solo, nsp.alpha; print(nsp.alpha.A)"])
    assert out.returncode == 0 and out.stdout.strip() == "1", out.stderr


def test_gc_refuses_a_database_with_a_damaged_page(
    cli: CLI, wheelhouse: Path, store: Path, tmp_path: Path
) -> None:
    env = tmp_path / "env"
    assert cli("--store", store, "create", env, "--no-index", "-f", wheelhouse, "solo").code == 0
    shutil.rmtree(env)  # its entries are garbage now: a gc that runs deletes them
    db = store / "envstore.db"
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        (page,) = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'interpreters'"
        ).fetchone()
    finally:
        conn.close()
    assert page > 1  # the header page (user_version) stays readable
    with open(db, "r+b") as f:  # a table gc never reads: only quick_check can notice
        f.seek((page - 1) * page_size)
        f.write(b"\xff" * 64)
    before = entries(store)
    res = cli("--store", store, "gc", "--grace", "0")
    assert res.code == 1 and "damaged" in res.err and "rebuild-db" in res.err
    assert entries(store) == before


def _damage_table(db: Path, table: str) -> None:
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        (page,) = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,))
    finally:
        conn.close()
    with open(db, "r+b") as f:
        f.seek((page[0] - 1) * page_size)
        f.write(b"\xff" * 64)


def test_a_damaged_or_emptied_database_is_named_with_the_way_out(
    wheelhouse: Path, store: Path, tmp_path: Path
) -> None:
    env, moved = tmp_path / "env", tmp_path / "moved"
    es = [*envstore_cmd(), "--store", store]
    made = run([*es, "create", env, "--no-index", "-f", wheelhouse, "solo"])
    assert made.returncode == 0, made.stderr
    db = store / "envstore.db"
    _damage_table(db, "entries")  # a table verify and gc read
    for cmd in (["verify"], ["gc"]):
        res = run([*es, *cmd])
        assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
        assert "damaged" in res.stderr and "rebuild-db" in res.stderr
    # A create reads only the index of damaged entries: it works, or names the damage.
    res = run([*es, "create", tmp_path / "e2", "--no-index", "-f", wheelhouse, "solo"])
    assert "Traceback" not in res.stderr, res.stderr
    assert res.returncode == 0 or ("damaged" in res.stderr and "rebuild-db" in res.stderr)
    # Emptied to zero bytes: not a new, empty database whose gc would forget the
    # moved env and delete what it uses.
    for f in store.glob("envstore.db*"):
        f.unlink()
    db.write_bytes(b"")
    env.rename(moved)
    for cmd in (["gc", "--grace", "0"], ["list"]):
        res = run([*es, *cmd])
        assert res.returncode == 1 and "is empty" in res.stderr and "rebuild-db" in res.stderr
    assert "pure/solo/" in " ".join(entries(store))
    assert run([*es, "rebuild-db"]).returncode == 0
    assert run([*es, "relink", moved, "--offline"]).returncode == 0
    assert run([moved / "bin" / "python", "-c", "import solo"]).returncode == 0


WORKER_PARENT = """
import os, signal, sys, types
from envstore.store.bytecode import Worker
worker = Worker(types.SimpleNamespace(path=sys.executable))
for path in sys.argv[1:]:
    worker.send(path)
print(worker.proc.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _exited(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_compile_workers_stop_when_envstore_is_killed(tmp_path: Path) -> None:
    if not os.path.isdir("/proc"):
        pytest.skip("needs /proc")
    src = tmp_path / "src"
    src.mkdir()
    first = src / "first.py"
    os.mkfifo(first)  # the worker blocks reading it until the test writes
    mods = [src / f"m{i}.py" for i in range(20)]
    for m in mods:
        m.write_text("X = 1\n")
    res = run([sys.executable, "-c", WORKER_PARENT, first, *mods], cwd=tmp_path)
    assert res.returncode == -signal.SIGKILL, res.stderr
    worker = int(res.stdout)
    deadline = time.monotonic() + 60
    while not _exited(worker) and time.monotonic() < deadline:
        try:  # unblock it if it waits on the first file: its parent is gone by now
            fd = os.open(first, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # not reading it (yet, or any more)
            time.sleep(0.05)
            continue
        os.write(fd, b"A = 0\n")
        os.close(fd)
        break
    while not _exited(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _exited(worker)
    compiled = [p.name for p in src.glob("__pycache__/m*.pyc")]
    assert compiled == []  # nothing after its parent died


def test_future_version_manifest_is_refused_and_gc_keeps_everything(
    cli: CLI, wheelhouse: Path, store: Path, tmp_path: Path
) -> None:
    env = tmp_path / "env"
    assert cli("--store", store, "create", env, "--no-index", "-f", wheelhouse, "solo").code == 0
    data = json.loads((env / "envstore.json").read_text())
    data["version"] = MANIFEST_VERSION + 1
    (env / "envstore.json").write_text(json.dumps(data))
    shown = cli("show", env)
    assert shown.code == 1 and f"manifest version {MANIFEST_VERSION + 1} is newer" in shown.err
    gc = cli("--store", store, "gc", "--grace", "0")
    assert gc.code == 1 and str(env) in gc.err
    assert "pure/solo/" in " ".join(entries(store))


def test_bytecode_for_a_second_interpreter_leaves_the_entry_read_only(
    cli: CLI, wheelhouse: Path, store: Path, tmp_path: Path
) -> None:
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    other = next((p for m, p in PYTHONS.items() if p and m != here), None)
    if other is None:
        pytest.skip("needs a second Python minor version")
    first = cli(
        "--store",
        store,
        "create",
        tmp_path / "a",
        "--no-index",
        "-f",
        wheelhouse,
        "--without-pip",
        "solo",
    )
    assert first.code == 0, first.err
    res = cli(
        "--store",
        store,
        "create",
        tmp_path / "b",
        "-p",
        other,
        "--offline",
        "--without-pip",
        "solo",
    )
    assert res.code == 0, res.err
    solo = next((store / "entries" / "pure" / "solo").iterdir())
    assert len(list(solo.glob("compiled-*"))) == 2  # bytecode was added in place
    check = cli("--store", store, "verify", "--check-contents")
    assert check.code == 0, check.out
    assert run([tmp_path / "b" / "bin" / "python", "-c", "import solo"]).returncode == 0


def test_a_reader_in_a_transaction_never_blocks_writers(tmp_path: Path) -> None:
    from envstore.store.db import connect

    db = tmp_path / "envstore.db"
    reader = connect(db, create=True)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM resolutions").fetchone()  # holds a read snapshot
        writer = subprocess.run(
            [sys.executable, "-c", DB_WRITER, str(db), "w"],
            env=hermetic_environ(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert writer.returncode == 0 and "locked" not in writer.stderr, writer.stderr
        reader.execute("COMMIT")
    finally:
        reader.close()


def test_killed_envstore_holding_the_gc_lock_never_blocks_the_next(
    cli: CLI, wheelhouse: Path, store: Path, tmp_path: Path
) -> None:
    gc = [*envstore_cmd(), "--store", store, "gc", "--grace", "0"]
    killed = run(gc, extra_env={"ENVSTORE_CRASH_AT": "gc-planned"})  # dies holding gc.lock
    assert killed.returncode == -signal.SIGKILL
    after = run(gc, extra_env={"ENVSTORE_LOCK_TIMEOUT": "1"})
    assert after.returncode == 0, after.stderr


def _contents(root: Path) -> dict[str, tuple[int, str]]:
    """Mode and sha256 of every file under ``root``."""
    out = {}
    for p in root.rglob("*"):
        if p.is_file() and not p.is_symlink():
            digest = hashlib.sha256(p.read_bytes()).hexdigest()
            out[str(p.relative_to(root))] = (p.stat().st_mode, digest)
    return out


def _runnable_by_anyone(path: str) -> bool:
    """``path`` and every directory above it can be reached and run by other users."""
    p = Path(path)
    return all(os.stat(d).st_mode & 0o001 for d in [p, *p.parents])


@pytest.mark.root_only
@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="runs a child as another user"
)
def test_an_unprivileged_user_cannot_change_the_store_through_an_env(
    cli: CLI, wheelhouse: Path, store: Path
) -> None:
    # The suite runs as root here, which read-only modes do not stop: the env's user
    # is played by "nobody", owning the env and the store as a normal user would.
    py = next(
        (p for p in [*PYTHONS.values(), "/usr/bin/python3"] if p and _runnable_by_anyone(p)),
        None,
    )
    if py is None:
        pytest.skip("no Python that other users can run")
    base = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        base.chmod(0o755)
        shutil.copytree(store, base / "store", symlinks=True)
        env, newer = base / "env", base / "newer"
        made = cli(
            "--store", base / "store", "create", env, "-p", py, "--no-index", "-f", wheelhouse,
            "solo",
        )  # fmt: skip
        assert made.code == 0, made.err
        wheelmaker.build_wheel(newer, "solo", "0.6", files={"solo.py": "X = 6\n"})
        for dirpath, dirnames, filenames in os.walk(base):
            for name in [".", *dirnames, *filenames]:
                os.chown(os.path.join(dirpath, name), 65534, 65534, follow_symlinks=False)
        entry = next((base / "store" / "entries" / "pure" / "solo").iterdir())
        before = _snapshot(base / "store", skip="envstore.db")
        contents = _contents(base / "store" / "entries")

        def as_nobody(*cmd: str | os.PathLike[str]) -> subprocess.CompletedProcess[str]:
            environ = hermetic_environ({"HOME": str(base), "PIP_NO_CACHE_DIR": "1"})
            return subprocess.run(
                [os.fspath(c) for c in cmd], capture_output=True, text=True, env=environ,
                user=65534, group=65534, extra_groups=[], cwd=base, timeout=300, check=False,
            )  # fmt: skip

        python = env / "bin" / "python"
        assert as_nobody(python, "-c", "import solo; print(solo.X)").stdout == "5\n"
        write = as_nobody(python, "-c", f"open({str(entry / 'site' / 'solo.py')!r}, 'a')")
        assert write.returncode != 0 and "PermissionError" in write.stderr
        pip = as_nobody(python, "-m", "pip", "install", "--no-index", "-f", newer, "solo==0.6")
        assert pip.returncode == 0, pip.stdout + pip.stderr
        assert as_nobody(python, "-c", "import solo; print(solo.X)").stdout == "6\n"
        assert _snapshot(base / "store", skip="envstore.db") == before
        assert _contents(base / "store" / "entries") == contents
    finally:
        shutil.rmtree(base)  # as root: read-only directories are no obstacle


def test_verify_never_checks_a_file_outside_the_entry_that_its_record_names(
    cli: CLI, wheelhouse: Path, store: Path, tmp_path: Path
) -> None:
    """A RECORD row with an absolute path names a file of the host, not of the entry:
    verify reports it as leaving the entry (it hashed that file, and passed when the
    row matched it)."""
    import base64
    import hashlib

    env = tmp_path / "env"
    assert cli("--store", store, "create", env, "--no-index", "-f", wheelhouse, "solo").code == 0
    outside = tmp_path / "host-file"
    outside.write_bytes(b"host\n")
    digest = base64.urlsafe_b64encode(hashlib.sha256(b"host\n").digest()).rstrip(b"=").decode()
    solo = next((store / "entries" / "pure" / "solo").iterdir())
    record = next((solo / "site").glob("*.dist-info")) / "RECORD"
    os.chmod(record.parent, 0o755)
    os.chmod(record, 0o644)
    with open(record, "a") as f:
        f.write(f"{outside},sha256={digest},5\n")
    os.chmod(record, 0o444)
    os.chmod(record.parent, 0o555)
    res = cli("--store", store, "verify", "--check-contents")
    assert res.code == 1
    assert f"RECORD path '{outside}' leaves the entry" in res.out, res.out
