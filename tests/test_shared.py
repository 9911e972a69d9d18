"""One store on a shared filesystem, used by several hosts at once (issue #27).

Real NFS cannot be mounted here (no kernel NFS client): hosts are simulated by
processes with their own host name (``ENVSTORE_TEST_HOST``) and their own local
database directory (``XDG_CACHE_HOME``), on one store directory forced into the
shared mode (``ENVSTORE_SHARED=1``).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import CLI

from envstore.errors import StoreError
from envstore.store import locks
from envstore.store.fs import store_temp_abandoned, temp_abandoned
from envstore.store.hostroots import drop_mark, marks, put_mark


def test_lock_code_locks_only_regular_files_opened_read_write(tmp_path: Path) -> None:
    lock = tmp_path / "a.lock"
    lock.write_text("")
    ro = os.open(lock, os.O_RDONLY)
    directory = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for fd in (ro, directory):
            with pytest.raises(StoreError, match="not a read-write file"):
                locks.lock_fd(fd, shared=True)
    finally:
        os.close(ro)
        os.close(directory)
    with pytest.raises(StoreError, match="is a directory"):
        with locks.file_lock(tmp_path):
            pass


def test_every_lock_a_command_takes_is_on_a_read_write_file(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[int, int]] = []
    real = locks.lock_fd

    def spy(fd: int, *, shared: bool) -> bool:
        seen.append((os.fstat(fd).st_mode, fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE))
        return real(fd, shared=shared)

    monkeypatch.setattr(locks, "lock_fd", spy)
    env = tmp_path / "env"
    opts = ("--store", store)
    assert cli(*opts, "create", env, "--no-index", "-f", wheelhouse, "solo").code == 0
    assert cli(*opts, "create", "--clear", env, "--no-index", "-f", wheelhouse, "solo").code == 0
    assert cli("relink", env).code == 0
    assert cli(*opts, "gc").code == 0
    assert cli(*opts, "remove", env).code == 0
    assert len(seen) >= 5
    import stat

    assert all(stat.S_ISREG(mode) and acc == os.O_RDWR for mode, acc in seen), seen


def test_two_threads_of_one_process_exclude_each_other(tmp_path: Path) -> None:
    lock = tmp_path / "gc.lock"
    inside = 0
    most = 0
    guard = threading.Lock()

    def worker() -> None:
        nonlocal inside, most
        for _ in range(20):
            with locks.file_lock(lock):
                with guard:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.001)
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert most == 1
    # And a shared holder in one thread keeps out an exclusive one in another.
    with locks.file_lock(lock, shared=True):
        with locks.file_lock(lock, shared=True, timeout=0):
            pass  # shared with shared: fine
        with pytest.raises(locks.LockTimeoutError, match="exclusive lock"):
            with locks.file_lock(lock, timeout=0.05):
                pass


def test_temporaries_of_another_host_are_kept_until_old(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENVSTORE_TEST_HOST", "alpha")
    dead = 2**22 + 12345  # beyond any pid_max default: no such process here
    assert not os.path.exists(f"/proc/{dead}")
    assert temp_abandoned(f"alpha@{dead}", 5.0)  # ours, its process gone
    assert not temp_abandoned(f"alpha@{os.getpid()}", 5.0)  # ours, running
    assert not temp_abandoned(f"beta@{dead}", 5.0)  # another host's: its pid means nothing
    assert temp_abandoned(f"beta@{dead}", 2 * 86400)  # ... until it is old
    assert temp_abandoned(str(dead), 5.0)  # a name from before host names: ours
    assert store_temp_abandoned(f"alpha@{dead}-entry-x-abc", 5.0)
    assert not store_temp_abandoned(f"be-ta.example@{dead}-entry-x-abc", 5.0)
    assert store_temp_abandoned(f"{dead}-entry-x-abc", 5.0)


def test_gc_keeps_another_hosts_fresh_temporaries(
    cli: CLI, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVSTORE_TEST_HOST", "alpha")
    dead = 2**22 + 12345
    tmp = store / "tmp"
    ours, theirs, old = (tmp / f"{h}@{dead}-entry-x-abc" for h in ("alpha", "beta", "gamma"))
    for d in (ours, theirs, old):
        d.mkdir()
    os.utime(old, (time.time() - 3 * 86400,) * 2)
    assert cli("--store", store, "gc").code == 0
    assert theirs.is_dir()
    assert not ours.exists() and not old.exists()


def test_an_export_leaves_another_hosts_temporary_of_the_same_pid(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    """An export's temporary beside its destination carries the host: another host's
    export to the same shared place by a process of the same pid is not removed."""
    env = tmp_path / "env"
    made = cli("--store", store, "create", env, "--without-pip", "--no-index", "-f", wheelhouse,
               "solo")  # fmt: skip
    assert made.code == 0, made.err
    theirs = tmp_path / f".out.envstore-export-{os.getpid()}"  # made by a same-pid process
    theirs.mkdir()
    (theirs / "busy").write_text("another host is writing here\n")
    assert cli("--store", store, "export", env, tmp_path / "out").code == 0
    assert (theirs / "busy").is_file()


MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:40 / /home rw,relatime shared:2 - nfs4 srv:/export/home rw,vers=4.2
31 30 0:41 / /home/u/scratch rw shared:3 - lustre 10.0.0.1@tcp:/fs rw
32 22 0:42 / /mnt/my\\040disk rw shared:4 - fuse.sshfs u@h:/ rw
33 22 0:43 / /mnt/local rw shared:5 - fuse.encfs /x rw
34 22 0:44 / /srv rw shared:6 - tmpfs tmpfs rw
35 34 0:45 / /srv rw shared:7 - cifs //h/s rw
"""


@pytest.mark.parametrize(
    ("path", "fstype", "network"),
    [
        ("/home/u/.local/share/envstore", "nfs4", True),
        ("/home/u/scratch/store", "lustre", True),  # the deepest mount wins
        ("/homeless", "ext4", False),  # a prefix of a name is not a parent
        ("/mnt/my disk/store", "fuse.sshfs", True),  # mountinfo's \040 is a space
        ("/mnt/local/store", "fuse.encfs", False),  # a local FUSE filesystem
        ("/srv/store", "cifs", True),  # mounted over /srv: the later line is on top
        ("/var/store", "ext4", False),
    ],
)
def test_mountinfo_names_the_filesystem_under_a_store(
    path: str, fstype: str, network: bool
) -> None:
    from envstore.store.fs import is_network_fs, mount_type

    assert mount_type(path, MOUNTINFO) == fstype
    assert is_network_fs(fstype) is network


def test_shared_mode_is_detected_and_forced_either_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from envstore.store import layout

    monkeypatch.delenv("ENVSTORE_SHARED", raising=False)
    assert layout.Store(tmp_path / "s").shared is False  # tmp_path: a local filesystem
    from envstore.store import fs

    monkeypatch.setattr(fs, "mount_type", lambda path: "nfs4")
    monkeypatch.setattr(os, "major", lambda dev: 0)  # not on a local block device
    assert layout.Store(tmp_path / "s").shared is True
    monkeypatch.setenv("ENVSTORE_SHARED", "0")
    assert layout.Store(tmp_path / "s").shared is False
    monkeypatch.setenv("ENVSTORE_SHARED", "1")
    monkeypatch.setattr(fs, "mount_type", lambda path: "ext4")
    assert layout.Store(tmp_path / "s").shared is True


def _host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str) -> dict[str, str]:
    """Be host ``name`` from now on (in this process), with its own local databases;
    the same settings as a dict, for a subprocess."""
    settings = {
        "ENVSTORE_SHARED": "1",
        "ENVSTORE_TEST_HOST": name,
        "XDG_CACHE_HOME": str(tmp_path / f"cache-{name}"),
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    return settings


def _host_dbs(tmp_path: Path, name: str) -> list[Path]:
    return sorted((tmp_path / f"cache-{name}" / "envstore" / "db").glob(f"{name}-*/envstore.db"))


def test_each_host_keeps_its_own_database_built_from_the_shared_store(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from conftest import run

    (store / "envstore.db").unlink()  # the template's: a shared store has none of its own
    monkeypatch.setenv("ENVSTORE_SHARED_PATHS", str(tmp_path / "home"))
    _host(monkeypatch, tmp_path, "alpha")
    env = tmp_path / "home" / "env"  # on shared storage: every host's
    made = cli("--store", store, "create", env, "--no-index", "-f", wheelhouse, "hello-app")
    assert made.code == 0, made.err
    assert not (store / "envstore.db").exists()
    [alpha_db] = _host_dbs(tmp_path, "alpha")
    beta = _host(monkeypatch, tmp_path, "beta")
    listed = json.loads(cli("--store", store, "list", "--json").out)
    assert [e["path"] for e in listed] == [str(env)]  # beta's database, built from roots
    assert len(_host_dbs(tmp_path, "beta")) == 1
    assert cli("--store", store, "gc", "--grace", "0").code == 0
    assert run([env / "bin" / "hello"], extra_env=beta).returncode == 3  # intact
    # A lost database (a wiped cache, a new node) is built again from the store.
    _host(monkeypatch, tmp_path, "alpha")
    alpha_db.unlink()
    listed = json.loads(cli("--store", store, "list", "--json").out)
    assert [e["path"] for e in listed] == [str(env)]
    assert alpha_db.exists()


def test_concurrent_creates_and_gcs_from_two_hosts_keep_every_live_env(
    wheelhouse: Path, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    from conftest import entries, envstore_cmd, hermetic_environ, run

    (store / "envstore.db").unlink()
    hosts = {h: _host(monkeypatch, tmp_path, h) for h in ("alpha", "beta")}
    base = [*envstore_cmd(), "--store", str(store)]
    make = ["--no-index", "-f", str(wheelhouse), "--without-pip"]
    jobs = []
    for round_ in range(2):
        for h, reqs in (("alpha", ["hello-app", "solo"]), ("beta", ["hello-app", "ns-alpha"])):
            env = tmp_path / f"{h}-{round_}"
            jobs.append((h, [*base, "create", str(env), *make, *reqs]))
            jobs.append((h, [*base, "gc", "--grace", "0"]))
    procs = [
        subprocess.Popen(
            cmd, env=hermetic_environ(hosts[h]), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for h, cmd in jobs
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()
    for h in hosts:  # and one more gc from each host, after all
        assert run([*base, "gc", "--grace", "0"], extra_env=hosts[h]).returncode == 0
    for h in hosts:
        for round_ in range(2):
            env = tmp_path / f"{h}-{round_}"
            assert run([env / "bin" / "hello"], extra_env=hosts[h]).returncode == 3
    keys = entries(store)
    names = [k.rsplit("-", 1)[0] for k in keys]  # abi/name/version
    assert len(names) == len(set(names)) and any("hello-app" in k for k in keys)
    assert os.listdir(store / "tmp") == []
    verified = run([*base, "verify"], extra_env=hosts["beta"])
    assert verified.returncode == 0, verified.stdout + verified.stderr


def _roots(store: Path) -> list[str]:
    return sorted(os.listdir(store / "roots"))


def test_a_root_of_another_hosts_local_env_survives_gc_until_its_age_limit(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import entries

    (store / "envstore.db").unlink()
    make = ("--no-index", "-f", wheelhouse, "--without-pip")
    _host(monkeypatch, tmp_path, "alpha")
    env = tmp_path / "venv"  # on alpha's local disk
    assert cli("--store", store, "create", env, *make, "hello-app").code == 0
    [root] = _roots(store)
    assert root.endswith("@alpha") and (store / "state" / "refs" / root).is_file()
    _host(monkeypatch, tmp_path, "beta")
    # beta's own /tmp/venv is another env: a root of its own.
    shutil.rmtree(env)
    assert cli("--store", store, "create", env, *make, "solo").code == 0
    assert [r.rpartition("@")[2] for r in _roots(store)] == sorted(["alpha", "beta"])
    shutil.rmtree(env)  # beta's env is gone; alpha's is on alpha's disk, unseen here
    res = cli("--store", store, "gc", "--grace", "0")
    assert res.code == 0, res.err
    assert f"kept {env} on host alpha" in res.out
    assert [r.rpartition("@")[2] for r in _roots(store)] == ["alpha"]
    kept = " ".join(entries(store))
    assert "hello-app" in kept and "dep-one" in kept and "/solo/" not in kept
    # Not seen by alpha for longer than the limit: dropped, with what it used.
    old = time.time() - 91 * 86400
    os.utime(store / "roots" / root, (old, old), follow_symlinks=False)
    res = cli("--store", store, "gc", "--grace", "0")
    assert res.code == 0, res.err
    assert f"removed registration of {env} on host alpha" in res.out
    assert _roots(store) == [] and "hello-app" not in " ".join(entries(store))
    assert not (store / "state" / "refs" / root).exists()


def test_an_env_on_shared_storage_is_one_env_for_every_host(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import run

    (store / "envstore.db").unlink()
    monkeypatch.setenv("ENVSTORE_SHARED_PATHS", str(tmp_path / "home"))
    env = tmp_path / "home" / "venv"
    alpha = _host(monkeypatch, tmp_path, "alpha")
    made = cli("--store", store, "create", env, "--no-index", "-f", wheelhouse, "hello-app")
    assert made.code == 0, made.err
    [root] = _roots(store)
    assert "@" not in root  # shared storage: no host in its name
    beta = _host(monkeypatch, tmp_path, "beta")
    assert run([env / "bin" / "hello"], extra_env=beta).returncode == 3  # works on beta
    assert cli("--store", store, "gc", "--grace", "0").code == 0
    assert run([env / "bin" / "hello"], extra_env=alpha).returncode == 3
    shutil.rmtree(env)  # gone for every host: beta's gc may judge it
    assert cli("--store", store, "gc", "--grace", "0").code == 0
    assert _roots(store) == []


def test_a_layout_1_store_is_migrated_to_host_keyed_roots(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from conftest import entries

    # A store as layout 1 made it: plain roots, no state/, store.json says 1.
    monkeypatch.setenv("ENVSTORE_SHARED", "0")
    env = tmp_path / "venv"
    assert (
        cli("--store", store, "create", env, "--no-index", "-f", wheelhouse, "hello-app").code == 0
    )
    [plain] = _roots(store)
    shutil.rmtree(store / "state")
    (store / "store.json").write_text(json.dumps({"layout": 1}) + "\n")
    _host(monkeypatch, tmp_path, "alpha")  # the store's filesystem is now shared
    assert cli("--store", store, "list").code == 0
    # Its layout 1 database is set aside: an older envstore's gc (it never checks the
    # layout) stops at "database missing" instead of collecting other hosts' entries.
    assert not (store / "envstore.db").exists() and (store / "envstore.db.layout1").is_file()
    # The migrating command used the database the next ones use (store.json's inode,
    # part of its identity, changed with the migration): one database, not two.
    assert cli("--store", store, "list").code == 0
    assert len(_host_dbs(tmp_path, "alpha")) == 1
    assert json.loads((store / "store.json").read_text()) == {"layout": 3, "shared": True}
    # alpha claims its env; the placeholder stays for other hosts with one at that path.
    assert _roots(store) == [f"{plain}@_unknown", f"{plain}@alpha"]
    assert (store / "state" / "refs").is_dir()
    _host(monkeypatch, tmp_path, "beta")
    res = cli("--store", store, "gc", "--grace", "0")
    assert res.code == 0 and f"kept {env} on host alpha" in res.out
    assert "hello-app" in " ".join(entries(store))
    # An envstore of layout 1 refuses the migrated store; one from the future too.
    (store / "store.json").write_text(json.dumps({"layout": 4}) + "\n")
    res = cli("--store", store, "list")
    assert res.code == 1 and "has layout 4; this envstore uses 3" in res.err


def test_gone_clocks_and_damage_marks_are_seen_by_every_host(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import entries

    (store / "envstore.db").unlink()
    monkeypatch.setenv("ENVSTORE_SHARED_PATHS", str(tmp_path / "home"))
    make = ("--no-index", "-f", wheelhouse, "--without-pip")
    env, other = tmp_path / "home" / "env", tmp_path / "home" / "other"
    _host(monkeypatch, tmp_path, "alpha")
    assert cli("--store", store, "create", env, *make, "hello-app").code == 0
    _host(monkeypatch, tmp_path, "beta")
    assert cli("--store", store, "create", other, *make, "ns-alpha").code == 0  # its database
    # Damage beta's verify finds in a view is refused by alpha's create (alpha's
    # database never had that view's rows).
    [view] = [v for v in (store / "views").iterdir() if "ns-alpha" in (v / "view.json").read_text()]
    os.chmod(view / "site", 0o755)
    (view / "site" / "planted.py").write_text("import os\n")
    assert cli("--store", store, "verify", "--check-contents").code != 0
    assert os.listdir(store / "state" / "damaged") == [f"view~{view.name}"]
    _host(monkeypatch, tmp_path, "alpha")
    res = cli("--store", store, "create", tmp_path / "home" / "fourth", *make, "ns-alpha")
    assert res.code == 1 and "damaged store view" in res.err, res.err
    res = cli("--store", store, "verify")  # alpha holds no seal of that view: cannot judge
    assert res.code == 1 and "this verify cannot judge it" in res.out, res.out
    assert os.listdir(store / "state" / "damaged") == [f"view~{view.name}"]  # so it stays
    _host(monkeypatch, tmp_path, "beta")
    assert cli("--store", store, "verify", "--check-contents", "--repair").code == 0
    assert os.listdir(store / "state" / "damaged") == []
    # alpha's gc finds env gone (moved?) and starts its clock: beta's gc keeps what it
    # used for the grace period too, though beta's database never had its rows.
    shutil.rmtree(env)
    _host(monkeypatch, tmp_path, "alpha")
    assert cli("--store", store, "gc").code == 0
    assert len(os.listdir(store / "state" / "gone")) == 1
    _host(monkeypatch, tmp_path, "beta")
    for db in _host_dbs(tmp_path, "beta"):
        db.unlink()  # built again now: env is gone, so it has no rows for it
    res = cli("--store", store, "gc")
    assert res.code == 0 and "gone since" in res.out, res.out
    assert "hello-app" in " ".join(entries(store))
    # Damage alpha's verify finds is refused by beta's create (beta's database is older).
    entry = next((store / "entries" / "pure" / "ns-alpha").iterdir())
    os.chmod(entry / "site", 0o755)
    (entry / "site" / "planted.py").write_text("import os\n")
    _host(monkeypatch, tmp_path, "alpha")
    assert cli("--store", store, "verify", "--check-contents").code != 0
    assert os.listdir(store / "state" / "damaged") == [
        str(entry.relative_to(store / "entries")).replace("/", "~")
    ]
    _host(monkeypatch, tmp_path, "beta")
    res = cli("--store", store, "create", tmp_path / "home" / "third", *make, "ns-alpha")
    assert res.code == 1 and "damaged store entries" in res.err
    _host(monkeypatch, tmp_path, "alpha")
    assert cli("--store", store, "verify", "--check-contents", "--repair").code == 0
    assert os.listdir(store / "state" / "damaged") == []


def test_a_shared_env_whose_python_this_host_lacks_is_left_to_the_other_hosts(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    (store / "envstore.db").unlink()
    monkeypatch.setenv("ENVSTORE_SHARED_PATHS", str(tmp_path / "home"))
    env = tmp_path / "home" / "env"
    _host(monkeypatch, tmp_path, "alpha")
    made = cli("--store", store, "create", env, "--no-index", "-f", wheelhouse, "solo")
    assert made.code == 0, made.err
    # On beta, the Python the env records is not there (alpha's module install).
    data = json.loads((env / "envstore.json").read_text())
    data["python"]["path"] = data["python"]["resolved"] = "/opt/alpha-only/bin/python3"
    (env / "envstore.json").write_text(json.dumps(data))
    minor = data["python"]["version"].rsplit(".", 1)[0]
    _host(monkeypatch, tmp_path, "beta")
    res = cli("--store", store, "doctor", "--json", env)
    [report] = json.loads(res.out)
    problems = {p["code"]: p for p in report["problems"]}
    assert res.code == 1 and "base-other-hosts" in problems, problems
    assert f"belongs to Python {minor} on other hosts" in problems["base-other-hosts"]["message"]
    assert problems["base-other-hosts"]["fix"].startswith(f"envstore create {env}-beta")
    refused = cli("--store", store, "relink", env)
    assert refused.code == 1 and "pass --for-this-host" in refused.err
    assert json.loads((env / "envstore.json").read_text()) == data  # untouched
    forced = cli("--store", store, "relink", env, "--for-this-host")
    assert forced.code == 0, forced.err
    assert (
        json.loads((env / "envstore.json").read_text())["python"]["path"] != data["python"]["path"]
    )


def test_state_links_out_of_the_store_are_refused_and_never_followed(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from envstore.store import hostroots

    (store / "envstore.db").unlink()
    _host(monkeypatch, tmp_path, "alpha")
    make = ("--no-index", "-f", wheelhouse, "--without-pip")
    assert cli("--store", store, "create", tmp_path / "env", *make, "hello-app").code == 0
    assert all((store / "state" / k).is_dir() for k in ("refs", "gone", "damaged"))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep\n")
    for kind in ("refs", "gone", "damaged"):
        shutil.rmtree(store / "state" / kind)
        (store / "state" / kind).symlink_to(outside)
    (store / "roots" / "precious").symlink_to("/nonexistent/envstore.json")
    for command in (("verify",), ("gc", "--grace", "0")):
        res = cli("--store", store, *command)
        assert res.code == 1 and "state/refs is a symbolic link" in res.err, res.err
    # Past the layout check (a link planted meanwhile): nothing read, written or
    # deleted through it, and only a root's name or a damaged object names a file.
    with pytest.raises(StoreError, match="not a directory of the store's own"):
        hostroots.forget(store, "0123456789abcdef@alpha")
    with pytest.raises(StoreError, match="not a directory of the store's own"):
        hostroots.put_mark(store, "gone", "0123456789abcdef", "1.0")
    for kind in ("refs", "gone", "damaged"):
        (store / "state" / kind).unlink()
        (store / "state" / kind).mkdir()
    (store / "state" / "gone" / "precious").symlink_to(outside / "precious")
    hostroots.forget(store, "precious")
    hostroots.set_damaged(store, ["../x"])
    assert hostroots.marks(store, "gone") == {} and hostroots.marks(store, "damaged") == {}
    assert os.listdir(outside) == ["precious"] and (outside / "precious").read_text() == "keep\n"


def test_a_migration_checks_the_layout_before_taking_its_lock(
    cli: CLI, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    shutil.rmtree(store / "state")
    (store / "store.json").write_text(json.dumps({"layout": 1}) + "\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.rmtree(store / "locks")
    (store / "locks").symlink_to(outside)
    res = cli("--store", store, "list")
    assert res.code == 1 and "locks is a symbolic link" in res.err, res.err
    assert os.listdir(outside) == []  # no gc.lock made through the link


def test_shared_mode_is_recorded_in_the_store_and_kept_by_every_host(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    make = ("--no-index", "-f", wheelhouse, "--without-pip")
    # A store of layout 2 (the previous version: no "shared"), used locally: layout 3.
    (store / "store.json").write_text(json.dumps({"layout": 2}) + "\n")
    monkeypatch.setenv("ENVSTORE_SHARED", "0")
    assert cli("--store", store, "list").code == 0
    assert json.loads((store / "store.json").read_text()) == {"layout": 3}
    # The first host in shared mode records it (and sets the store's database aside).
    alpha = _host(monkeypatch, tmp_path, "alpha")
    assert cli("--store", store, "list").code == 0
    assert json.loads((store / "store.json").read_text()) == {"layout": 3, "shared": True}
    assert not (store / "envstore.db").exists()
    # The file server sees the store on its local disk: shared mode all the same, so
    # its local env's root is keyed by its host, and alpha's gc leaves it alone.
    _host(monkeypatch, tmp_path, "server")
    monkeypatch.delenv("ENVSTORE_SHARED")
    env = tmp_path / "local" / "env"
    assert cli("--store", store, "create", env, *make, "hello-app").code == 0
    [root] = _roots(store)
    assert root.endswith("@server") and (store / "state" / "refs" / root).is_file()
    monkeypatch.setenv("ENVSTORE_SHARED", "0")
    res = cli("--store", store, "list")
    assert res.code == 1 and "records the store as shared" in res.err, res.err
    for key, value in alpha.items():
        monkeypatch.setenv(key, value)
    res = cli("--store", store, "gc", "--grace", "0")
    assert res.code == 0 and f"kept {env} on host server" in res.out, res.out


def test_roots_a_host_made_in_local_mode_stay_its_own_when_another_records_shared(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file server used the store first, in local mode: its roots carry no host. A
    client recording shared mode cannot see the server's local env: that root goes to an
    unknown host (kept, with what the store's database said it uses), not to the
    client's gc; the server's gc claims it. An env the client sees on shared storage stays
    one for every host."""
    from conftest import entries, run

    make = ("--no-index", "-f", wheelhouse, "--without-pip")
    monkeypatch.setenv("ENVSTORE_SHARED_PATHS", str(tmp_path / "home"))
    server = _host(monkeypatch, tmp_path, "server")
    monkeypatch.setenv("ENVSTORE_SHARED", "0")  # the server sees its own disk
    local, home = tmp_path / "scratch" / "env", tmp_path / "home" / "env"
    assert cli("--store", store, "create", local, *make, "hello-app").code == 0
    assert cli("--store", store, "create", home, *make, "solo").code == 0
    assert all("@" not in r for r in _roots(store))
    long_ago = time.time() - 100 * 86400  # registered long before the store was shared
    for name in _roots(store):
        os.utime(store / "roots" / name, (long_ago, long_ago), follow_symlinks=False)
    (tmp_path / "scratch").rename(tmp_path / "server-disk")  # not on the client
    _host(monkeypatch, tmp_path, "client")  # sees the store on NFS: records shared mode
    res = cli("--store", store, "gc", "--grace", "0")
    assert res.code == 0, res.err
    assert f"kept {local} on host _unknown" in res.out, res.out
    assert "hello-app" in " ".join(entries(store))
    assert sum("@" not in r for r in _roots(store)) == 1  # home's: shared storage
    (tmp_path / "server-disk").rename(tmp_path / "scratch")
    assert run([local / "bin" / "hello"], extra_env=server).returncode == 3
    # The server (shared mode now, from store.json) claims its root with its next gc.
    _host(monkeypatch, tmp_path, "server")
    monkeypatch.delenv("ENVSTORE_SHARED")
    assert cli("--store", store, "gc", "--grace", "0").code == 0
    assert sorted(r.partition("@")[2] for r in _roots(store)) == ["", "_unknown", "server"]
    _host(monkeypatch, tmp_path, "client")
    res = cli("--store", store, "gc", "--grace", "0")
    assert res.code == 0 and f"kept {local} on host server" in res.out, res.out
    assert run([local / "bin" / "hello"], extra_env=server).returncode == 3


def test_a_database_built_from_the_store_trusts_sources_its_entries_vouch_for(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host's database built from disk has no manifest digests: an env's recorded
    sources count as registered when the store's entries came from there (their
    entry.json's origin), so relink on that host looks there; a place no entry names
    (a crafted manifest) is still never searched."""
    import json

    import wheelmaker

    from envstore.store.fs import rmtree

    (store / "envstore.db").unlink()
    monkeypatch.setenv("ENVSTORE_SHARED_PATHS", str(tmp_path / "home"))
    env = tmp_path / "home" / "env"
    _host(monkeypatch, tmp_path, "alpha")
    made = cli("--store", store, "create", env, "--without-pip", "--no-index", "-f", wheelhouse,
               "solo")  # fmt: skip
    assert made.code == 0, made.err
    for crafted in (False, True):
        if crafted:
            wheelmaker.build_wheel(tmp_path / "crafted", "solo", "0.5", files={"solo.py": ""})
            data = json.loads((env / "envstore.json").read_text())
            data["sources"]["find_links"] = [str(tmp_path / "crafted")]
            (env / "envstore.json").write_text(json.dumps(data))
        _host(monkeypatch, tmp_path, f"beta{int(crafted)}")
        assert cli("--store", store, "list").code == 0  # its database, built from the store
        rmtree(next((store / "entries" / "pure" / "solo").iterdir()))  # relink must fetch it
        res = cli("--store", store, "relink", env, "--offline")
        if crafted:
            assert res.code == 1 and "did not register them" in res.err, res.err
        else:
            assert res.code == 0, res.err


def test_a_moved_env_gets_its_grace_on_a_host_that_never_registered_it(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from conftest import entries

    (store / "envstore.db").unlink()
    monkeypatch.setenv("ENVSTORE_SHARED_PATHS", str(tmp_path / "home"))
    make = ("--no-index", "-f", wheelhouse, "--without-pip")
    env = tmp_path / "home" / "env"
    _host(monkeypatch, tmp_path, "alpha")
    assert cli("--store", store, "create", env, *make, "hello-app").code == 0
    shutil.rmtree(env)  # moved; beta's database (built now) never had its rows
    _host(monkeypatch, tmp_path, "beta")
    res = cli("--store", store, "gc")
    assert res.code == 0 and "gone since" in res.out, res.out
    assert "hello-app" in " ".join(entries(store))
    assert len(os.listdir(store / "state" / "gone")) == 1  # the clock every host sees


def test_a_database_directory_others_could_change_is_refused(
    cli: CLI, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _host(monkeypatch, tmp_path, "alpha")
    base = tmp_path / "dbs"
    base.mkdir()
    monkeypatch.setenv("ENVSTORE_DB_DIR", str(base))
    os.chmod(base, 0o777)  # a /tmp-like directory: anyone could rename files there
    res = cli("--store", store, "list")
    assert res.code == 1 and "writable by other users (mode 777)" in res.err, res.err
    assert "per-host database directory" in res.err and "XDG_RUNTIME_DIR" in res.err
    os.chmod(base, 0o700)
    assert cli("--store", store, "list").code == 0
    [leaf] = os.listdir(base)
    os.chmod(base / leaf, 0o775)  # made earlier, or by someone else: its mode is checked
    res = cli("--store", store, "list")
    assert res.code == 1 and f"{base / leaf}: it is writable" in res.err, res.err
    os.chmod(base / leaf, 0o700)
    link = tmp_path / "dblink"
    link.symlink_to(base)
    monkeypatch.setenv("ENVSTORE_DB_DIR", str(link))
    res = cli("--store", store, "list")
    assert res.code == 1 and "it is a symbolic link" in res.err, res.err


@pytest.mark.root_only
def test_a_database_directory_of_another_user_is_refused(
    cli: CLI, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _host(monkeypatch, tmp_path, "alpha")
    base = tmp_path / "dbs"
    base.mkdir(mode=0o755)
    os.chown(base, 65534, -1)  # squatted by "nobody" (as /tmp/$USER could be)
    monkeypatch.setenv("ENVSTORE_DB_DIR", str(base))
    res = cli("--store", store, "list")
    assert res.code == 1 and "it belongs to nobody, not to you" in res.err, res.err
    assert os.listdir(base) == []


def _tamper(pyc: Path) -> None:
    """Change a store pyc in place (its directory stays the one sealed)."""
    os.chmod(pyc.parent, 0o755)
    pyc.chmod(0o644)
    pyc.write_bytes(pyc.read_bytes()[:16] + b"tampered")
    pyc.chmod(0o444)
    os.chmod(pyc.parent, 0o555)


def test_a_repair_on_one_host_is_not_damage_on_another(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Seals are per host: a repair re-publishes the entry (its bytecode compiled anew),
    which another host's seal must not take for damage; an edit in place still is."""
    from conftest import run

    (store / "envstore.db").unlink()
    monkeypatch.setenv("ENVSTORE_SHARED_PATHS", str(tmp_path / "home"))
    make = ("--no-index", "-f", wheelhouse, "--without-pip", "solo")
    env, other = tmp_path / "home" / "env", tmp_path / "home" / "other"
    alpha = _host(monkeypatch, tmp_path, "alpha")
    assert cli("--store", store, "create", env, *make).code == 0
    beta = _host(monkeypatch, tmp_path, "beta")
    assert cli("--store", store, "create", other, *make).code == 0
    sealed = cli("--store", store, "verify", "--check-contents")  # beta's seal of it
    assert sealed.code == 0 and "sealed as found now" in sealed.out, sealed.out
    (pyc,) = (store / "entries" / "pure" / "solo").glob("*/site/__pycache__/solo.*.pyc")
    _tamper(pyc)
    _host(monkeypatch, tmp_path, "alpha")
    found = cli("--store", store, "verify", "--check-contents", "--repair")
    assert found.code == 0 and "does not match what was compiled" in found.out, found.out
    assert os.listdir(store / "state" / "damaged") == []
    _host(monkeypatch, tmp_path, "beta")
    key = str(pyc.relative_to(store / "entries")).split("/site/")[0]
    put_mark(store, "damaged", key)  # as if a host that sealed the new copy found damage
    res = cli("--store", store, "verify", "--check-contents")  # cannot judge, never seals
    assert res.code == 1 and "published again since this host sealed it" in res.out, res.out
    assert list(marks(store, "damaged")) == [key]
    drop_mark(store, "damaged", key)
    again = cli("--store", store, "verify", "--check-contents")  # sealed as found now
    assert again.code == 0 and "published again since this host" in again.out, again.out
    again = cli("--store", store, "verify", "--check-contents")
    assert again.code == 0 and "published again" not in again.out, again.out
    code = "import solo; print(solo.X)"
    for name, host in (("alpha", alpha), ("beta", beta)):
        _host(monkeypatch, tmp_path, name)
        made = cli("--store", store, "create", tmp_path / "home" / f"new-{name}", *make)
        assert made.code == 0, made.err
        got = run(
            [tmp_path / "home" / f"new-{name}" / "bin" / "python", "-c", code], extra_env=host
        )
        assert got.stdout.strip() == "5", got
    # An edit in place of what beta sealed after the repair is still found by beta.
    (pyc,) = (store / "entries" / "pure" / "solo").glob("*/site/__pycache__/solo.*.pyc")
    _tamper(pyc)
    res = cli("--store", store, "verify", "--check-contents")
    assert res.code == 1 and "does not match what was compiled" in res.out, res.out
    assert len(os.listdir(store / "state" / "damaged")) == 1


def _compile_for_another_python(store: Path, entry: Path, tag: str) -> None:
    """What this host's ``ensure_compiled`` leaves for a Python of cache tag ``tag``
    (its bytecode, resealed in this host's database, then the marker): this machine
    has one Python, so its pycs stand in for the other's."""
    from envstore.model.keys import EntryKey
    from envstore.store.fs import make_readonly, make_writable_dirs
    from envstore.store.layout import Store
    from envstore.store.publish import _reseal

    key = EntryKey.parse(str(entry.relative_to(store / "entries")))
    st = Store(store)
    make_writable_dirs(entry)
    try:
        for pyc in list(entry.glob("site/**/__pycache__/*.pyc")):
            module = pyc.name.partition(".")[0]
            shutil.copyfile(pyc, pyc.with_name(f"{module}.{tag}.pyc"))
        _reseal(st, key)
        (entry / f"compiled-{tag}").touch()
    finally:
        make_readonly(entry)
        st.close()


def test_bytecode_another_hosts_python_added_is_not_damage(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hosts of a cluster run other Python minors: bytecode one host's Python added to a
    shared entry (with its marker) is sealed as found by another host; bytecode added or
    changed for a Python it sealed is still damage."""
    (store / "envstore.db").unlink()
    make = ("--no-index", "-f", wheelhouse, "--without-pip", "solo")
    _host(monkeypatch, tmp_path, "beta")
    assert cli("--store", store, "create", tmp_path / "b", *make).code == 0
    assert cli("--store", store, "verify", "--check-contents").code == 0  # beta's seal
    _host(monkeypatch, tmp_path, "alpha")
    assert cli("--store", store, "create", tmp_path / "a", *make).code == 0
    (entry,) = (store / "entries" / "pure" / "solo").iterdir()
    _compile_for_another_python(store, entry, "cpython-399")
    assert cli("--store", store, "verify", "--check-contents").code == 0  # alpha sealed it
    # Then a third host's compile for yet another Python is killed half way (its
    # marker unwritten, the entry left writable).
    pycache = entry / "site" / "__pycache__"
    os.chmod(entry, 0o755)
    os.chmod(pycache, 0o755)
    shutil.copyfile(pycache / "solo.cpython-399.pyc", pycache / "solo.cpython-398.pyc")
    # (And a host of that Python found damage in its bytecode, which beta cannot judge.)
    key = str(entry.relative_to(store / "entries"))
    put_mark(store, "damaged", key)
    _host(monkeypatch, tmp_path, "beta")
    res = cli("--store", store, "verify", "--check-contents")
    assert res.code == 1, res.out
    assert "holds bytecode for cpython-399, which this host never sealed" in res.out
    assert "left writable by a process killed" in res.out
    assert list(marks(store, "damaged")) == [key]  # kept
    drop_mark(store, "damaged", key)
    res = cli("--store", store, "verify", "--check-contents")
    assert res.code == 0 and "bytecode for cpython-399 was added" in res.out, res.out
    assert sorted(p.name for p in pycache.iterdir()) == [
        f"solo.{t}.pyc" for t in sorted((sys.implementation.cache_tag, "cpython-399"))
    ]
    assert os.listdir(store / "state" / "damaged") == []
    assert "cpython-399" not in cli("--store", store, "verify", "--check-contents").out
    # Added for a Python beta sealed, or for one no envstore compiled for (no marker):
    # damage (an interpreter loads a pyc without asking for a marker).
    os.chmod(pycache, 0o755)
    for tag in (sys.implementation.cache_tag, "cpython-398"):
        shutil.copyfile(pycache / "solo.cpython-399.pyc", pycache / f"planted.{tag}.pyc")
        os.chmod(pycache / f"planted.{tag}.pyc", 0o444)
    os.chmod(pycache, 0o555)
    res = cli("--store", store, "verify", "--check-contents")
    assert res.code == 1, res.out
    assert res.out.count("was added after the entry was sealed") == 2, res.out


def _plant(view: Path) -> None:
    """Add a module to a store view (a files-only change its seal finds)."""
    os.chmod(view / "site", 0o755)
    (view / "site" / "planted.py").write_text("import os\n")
    os.chmod(view / "site", 0o555)


def test_a_host_that_never_saw_an_object_whole_never_clears_its_damage_mark(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new node (its database built from the store, no seals) must not seal a marked
    view or entry as found and then count that seal as having judged it: the mark
    stays (reported as damage it cannot judge) until a repair, which any host can do."""
    (store / "envstore.db").unlink()
    make = ("--no-index", "-f", wheelhouse, "--without-pip", "solo", "ns-alpha")
    _host(monkeypatch, tmp_path, "beta")
    assert cli("--store", store, "create", tmp_path / "b", *make).code == 0  # beta's seals
    (view,) = (store / "views").iterdir()
    (pyc,) = (store / "entries" / "pure" / "solo").glob("*/site/__pycache__/solo.*.pyc")
    _plant(view)
    _tamper(pyc)
    assert cli("--store", store, "verify", "--check-contents").code == 1
    key = str(pyc.relative_to(store / "entries")).split("/site/")[0]
    both = sorted([key, f"view/{view.name}"])
    assert sorted(marks(store, "damaged")) == both
    _host(monkeypatch, tmp_path, "gamma")  # a new node
    for _ in range(2):
        res = cli("--store", store, "verify", "--check-contents")
        assert res.code == 1 and res.out.count("this verify cannot judge it") == 2, res.out
        assert sorted(marks(store, "damaged")) == both, res.out
    res = cli("--store", store, "create", tmp_path / "g", *make)
    assert res.code == 1 and "damaged store" in res.err, res.err
    assert cli("--store", store, "verify", "--check-contents", "--repair").code == 0
    assert marks(store, "damaged") == {}
    assert cli("--store", store, "create", tmp_path / "g", *make).code == 0


def test_a_repair_on_another_host_frees_what_this_host_found_damaged(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host that found damage first refuses it by its own database's flag too; a
    repair on another host (the mark gone, the entry published again, the view whole
    again) frees it without a verify here. A mark deleted by hand frees nothing."""
    (store / "envstore.db").unlink()
    make = ("--no-index", "-f", wheelhouse, "--without-pip", "solo")
    _host(monkeypatch, tmp_path, "alpha")
    assert cli("--store", store, "create", tmp_path / "a", *make).code == 0
    _host(monkeypatch, tmp_path, "beta")
    assert cli("--store", store, "create", tmp_path / "b", *make, "ns-alpha").code == 0
    assert cli("--store", store, "verify", "--check-contents").code == 0  # beta's seal
    (pyc,) = (store / "entries" / "pure" / "solo").glob("*/site/__pycache__/solo.*.pyc")
    views = (store / "views").iterdir()
    (view,) = [v for v in views if "ns-alpha" in (v / "view.json").read_text()]
    _tamper(pyc)
    _plant(view)
    assert cli("--store", store, "verify", "--check-contents").code == 1
    assert len(marks(store, "damaged")) == 2
    _host(monkeypatch, tmp_path, "alpha")  # holds the entry's seal; not the view's
    res = cli("--store", store, "verify", "--check-contents", "--repair")
    assert res.code == 0 and res.out.count("repaired") == 2, res.out
    assert marks(store, "damaged") == {}
    _host(monkeypatch, tmp_path, "beta")  # no verify since
    res = cli("--store", store, "create", tmp_path / "b2", *make, "ns-alpha")
    assert res.code == 0, res.err
    # Damage beta finds stays refused by beta when only its mark is deleted.
    assert cli("--store", store, "verify", "--check-contents").code == 0  # the new copy
    _plant(view)
    assert cli("--store", store, "verify", "--check-contents").code == 1
    drop_mark(store, "damaged", f"view/{view.name}")
    res = cli("--store", store, "create", tmp_path / "b3", *make, "ns-alpha")
    assert res.code == 1 and "damaged store view" in res.err, res.err
    (pyc,) = (store / "entries" / "pure" / "solo").glob("*/site/__pycache__/solo.*.pyc")
    _tamper(pyc)
    assert cli("--store", store, "verify", "--check-contents").code == 1
    for obj in list(marks(store, "damaged")):
        drop_mark(store, "damaged", obj)
    res = cli("--store", store, "create", tmp_path / "b4", *make)
    assert res.code == 1 and "damaged store entries" in res.err, res.err
