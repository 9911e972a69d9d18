"""Pulling in forked worker processes (store/remote/workers.py).

Each test runs in a fresh interpreter (a subprocess): the fork path is taken only
by a process with no other thread, and pytest's workers have threads.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from conftest import envstore_cmd, run
from test_remote import moto  # noqa: F401 (a fixture)
from wheelmaker import build_wheel

pytest.importorskip("zstandard")
pytest.importorskip("cryptography")

SPREAD = """
import fcntl, json, os, sys, tempfile, time
from envstore.store.remote.workers import in_processes, processes_for
parent, seen, left = os.getpid(), tempfile.mkdtemp(), []
def work(i):
    if i == int(sys.argv[1]):
        os._exit(3)  # a child killed in the middle of its work
    if sys.argv[2] == "work-raises" and i == 5:
        raise RuntimeError("a surprise")
    open(os.path.join(seen, str(os.getpid())), "w").close()
    for _ in range(500):  # each holds its item until a second child took one
        if len(os.listdir(seen)) >= 2:
            break
        time.sleep(0.02)
    return (i, os.getpid())
if sys.argv[2] == "small-pipe":  # what an unprivileged user's pipes shrink to
    real_pipe = os.pipe
    def pipe():
        r, w = real_pipe()
        fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 4096)
        return r, w
    os.pipe = pipe
try:
    got = list(in_processes(list(range(40 if sys.argv[2] != "small-pipe" else 3000)), work, 2,
                            3, lambda: None, left.append))
except OSError as exc:
    got = type(exc).__name__
print(json.dumps({"got": got, "parent": parent, "n": processes_for(40), "left": left}))
"""


@pytest.mark.parametrize("case", ["all", "a-child-dies", "small-pipe", "work-raises"])
def test_work_is_spread_over_children_and_each_result_comes_once(case: str) -> None:
    dies = 7 if case == "a-child-dies" else -1
    out = run(
        [sys.executable, "-c", SPREAD, str(dies), case],
        extra_env={"ENVSTORE_PULL_PROCESSES": "2"},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    if case == "small-pipe":  # refused before any fork (the caller uses threads): no hang
        assert data["got"] == "BlockingIOError" and data["left"] == []
        return
    indices = [i for i, (_same, _pid) in data["got"]]
    pids = {pid for _i, (_same, pid) in data["got"]}
    assert all(i == same for i, (same, _pid) in data["got"])
    assert len(indices) == len(set(indices))  # each once
    assert data["parent"] not in pids and len(pids) == 2  # done in two children
    assert data["n"] == 2
    assert len(data["left"]) == 2  # each child's leftovers cleaned once it was reaped
    if case == "work-raises":  # that item is a miss; no traceback, the child goes on
        assert sorted(indices) == [i for i in range(40) if i != 5]
        assert "Traceback" not in out.stderr, out.stderr
    elif dies < 0:
        assert sorted(indices) == list(range(40))
    else:  # what the killed child held is missing (a miss: the wheel is used), no hang
        assert dies not in indices and len(indices) >= 40 - 3


PULL = """
import json, os, sys
import envstore.store.remote.workers as w
from envstore.cli.main import main
pids = set()  # of the processes that unpacked what was pulled (tmp/<host>@<pid>-pull-...)
def recorded(real):
    def run(*args, **kwargs):
        for index, result in real(*args, **kwargs):
            pids.add(int(result.work.name.split("@")[1].split("-")[0]))
            yield index, result
    return run
watched = w.in_processes = recorded(w.in_processes)
import envstore.store.remote.pull
pull = sys.modules["envstore.store.remote.pull"]
pull.in_processes = watched
if os.environ.get("KILL_AT"):  # the worker that fetches this one dies
    real_fetch = pull.fetch_entry
    def fetch(store, backend, trusted, want, **kw):
        if want.name == os.environ["KILL_AT"]:
            os._exit(3)
        return real_fetch(store, backend, trusted, want, **kw)
    pull.fetch_entry = fetch
if os.environ.get("STOP_AT_PUBLISH"):  # Ctrl-C while the second entry is published
    import envstore.store.publish as publish
    real_publish, calls = publish.publish_unpacked, []
    def stop(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_publish(*args, **kwargs)
    publish.publish_unpacked = stop
if os.environ.get("CLIENT_LOG"):  # which processes make an S3 client (boto3's, obstore's)
    from envstore.store.remote import s3, s3_reads
    def logged(real, what):
        def make(*args):
            with open(os.environ["CLIENT_LOG"], "a") as f:
                f.write(f"{what}@{os.getpid()} ")
            return real(*args)
        return make
    s3.S3Backend._make_client = logged(s3.S3Backend._make_client, "boto3")
    s3_reads.make_store = logged(s3_reads.make_store, "obstore")
if os.environ.get("NO_FORK"):  # a process limit reached
    def no_fork():
        raise OSError(11, "Resource temporarily unavailable")
    os.fork = no_fork
pull.in_threads = recorded(pull.in_threads)
code = main(sys.argv[1:])
me = os.getpid()
print(json.dumps({"code": code, "children": len(pids - {me}), "parent": me in pids, "pid": me}))
"""


@pytest.mark.parametrize(
    "kind", ["file", "s3", "file-a-worker-dies", "file-no-fork", "file-interrupted"]
)
def test_a_pull_of_many_entries_in_worker_processes(
    tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    """Eight entries pulled by two forked children (each with its own threads; on S3,
    each with its own obstore store, never the parent's) are published, indexed and sealed as from
    threads: the env runs and verify is clean."""
    wheels = tmp_path / "wheels"
    names = [f"pkg{i}" for i in range(8)]
    for name in names:
        build_wheel(wheels, name, "1.0", files={f"{name}/__init__.py": f"X = {name!r}\n"})
    s3 = kind == "s3"
    shared = request.getfixturevalue("moto")[1] if s3 else (tmp_path / "shared").as_uri()
    dies = {"KILL_AT": "pkg3"} if kind == "file-a-worker-dies" else {}
    no_fork = {"NO_FORK": "1"} if kind == "file-no-fork" else {}
    stop = {"STOP_AT_PUBLISH": "1"} if kind == "file-interrupted" else {}
    clients = tmp_path / "clients.log"
    log = {"CLIENT_LOG": str(clients)} if s3 else {}
    es = envstore_cmd()
    secret, public = tmp_path / "ci.key", tmp_path / "ci.pub"
    assert run([*es, "key", "generate", "ci-1", secret, public]).returncode == 0
    keys = {"ENVSTORE_SIGNING_KEY": str(secret), "ENVSTORE_TRUSTED_KEYS": public.read_text()}
    a = run([*es, "--store", tmp_path / "a", "create", tmp_path / "env-a", *names,
             "--without-pip", "--no-index", "-f", wheels, "--remote", shared, "--push"],
            extra_env=keys)  # fmt: skip
    assert a.returncode == 0, a.stderr
    lock = tmp_path / "pylock.toml"
    assert (
        run([*es, "--store", tmp_path / "a", "lock", tmp_path / "env-a", "-o", lock]).returncode
        == 0
    )
    env_b, store_b = tmp_path / "env-b", tmp_path / "b"
    b = run(
        [
            sys.executable,
            "-c",
            PULL,
            "--store",
            store_b,
            "create",
            env_b,
            "--from",
            lock,
            "--no-index",
            "--remote",
            shared,
            *(["-f", wheels] if dies else []),
        ],
        extra_env={**keys, "ENVSTORE_PULL_PROCESSES": "2", **dies, **no_fork, **stop, **log},
    )
    if stop:  # nothing verified or half-unpacked is left behind by the workers
        assert json.loads(b.stdout)["code"] == 130 and "interrupted" in b.stderr, b.stderr
        assert not list((store_b / "tmp").iterdir())
        return
    assert b.stdout.strip(), b.stderr
    got = json.loads(b.stdout.splitlines()[-1])
    # The children that sent entries: both, unless one took them all before the other
    # started (or died with what it held).
    assert b.returncode == 0 and got["code"] == 0 and got["parent"] == bool(no_fork), b.stderr
    assert got["children"] == 0 if no_fork else 1 <= got["children"] <= 2
    if s3:  # no boto3 client (~0.45 s); obstore's store made in each child, after the fork
        made = clients.read_text().split()
        assert made and all(m.startswith("obstore@") for m in made), made
        assert f"obstore@{got['pid']}" not in made and len(set(made)) == len(made), made
    # No process could be forked: the threads of this one did it all, said in one line.
    assert ("cannot start worker processes" in b.stderr) == bool(no_fork), b.stderr
    # A worker killed mid-way: what it held comes from the wheels, said in one line.
    lost = [line for line in b.stderr.splitlines() if "worker process stopped" in line]
    assert len(lost) == (1 if dies else 0), b.stderr
    imports = "; ".join(f"import {n}" for n in names)
    assert run([env_b / "bin" / "python", "-c", imports]).returncode == 0
    verify = run([*es, "--store", store_b, "verify", "--check-contents"])
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert not list((store_b / "tmp").iterdir())
