"""Ordinary users (reliability promise 13): what a user who is not root may not do is
one line naming the path and its owner, never a traceback.

Files of another user can only be made by root: ``.ci/unprivileged`` makes them
(``tests/other_users.py``) and names their directory in ``ENVSTORE_TEST_OTHERS``;
without it (the root pass) those tests skip.
"""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest
from conftest import CLI, Result, run

from envstore.store.fs import rmtree

OTHERS = os.environ.get("ENVSTORE_TEST_OTHERS")
need_others = pytest.mark.skipif(
    OTHERS is None or os.geteuid() == 0,
    reason="needs another user's files: run by .ci/unprivileged",
)
ME = pwd.getpwuid(os.geteuid()).pw_name


def _one_line_error(res: Result, *needles: str) -> None:
    assert res.code == 1, (res.out, res.err)
    assert "Traceback" not in res.err and res.err.startswith("envstore: error: "), res.err
    assert len(res.err.strip().splitlines()) == 1, res.err
    for needle in needles:
        assert needle in res.err, res.err


@need_others
@pytest.mark.parametrize("command", ["rebuild-db", "gc", "verify", "list"])
def test_another_users_store_is_refused_naming_its_owner(cli: CLI, command: str) -> None:
    store = Path(str(OTHERS)) / "others" / "store"
    res = cli("--store", store, command)
    _one_line_error(res, str(store), "belongs to root", "a store of your own")
    assert "chmod" not in res.err  # a mode change cannot fix who owns it


@need_others
def test_export_and_remove_of_another_users_env(cli: CLI, tmp_path: Path) -> None:
    env = Path(str(OTHERS)) / "others" / "env"
    exported = cli("export", env, tmp_path / "copy")
    _one_line_error(exported, "belongs to root")
    assert not (tmp_path / "copy").exists()
    removed = cli("remove", env)
    _one_line_error(removed, str(env), "belongs to root")
    assert (env / "envstore.json").is_file()


@need_others
def test_create_in_another_users_directory(cli: CLI, store: Path) -> None:
    target = Path(str(OTHERS)) / "others" / "new-env"
    wheels = Path(str(OTHERS)) / "wheels"
    res = cli("--store", store, "create", target, "--without-pip", "--no-index", "-f", wheels,
              "alpha")  # fmt: skip
    _one_line_error(res, str(target.parent), "belongs to root")
    assert not target.exists()


@need_others
def test_what_sudo_left_in_your_store_is_named_with_the_fix(cli: CLI) -> None:
    mine = Path(str(OTHERS)) / "mine"
    # Entries and a view of an env made with sudo (and deleted since) belong to root.
    res = cli("--store", mine / "sudo-store", "gc", "--grace", "0")
    _one_line_error(res, "belongs to root", f"sudo chown -R {ME} {mine / 'sudo-store'}")
    # A store that sudo filled first: its database and entries/ belong to root.
    res = cli("--store", mine / "sudo-made-store", "list")
    _one_line_error(res, "belongs to root", f"sudo chown -R {ME} {mine / 'sudo-made-store'}")
    # The env made without sudo still works.
    assert run([mine / "sudo-env" / "bin" / "python", "-c", "import alpha"]).returncode == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write any directory")
def test_create_under_a_directory_you_cannot_write(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    res = cli("--store", store, "create", locked / "env", "--without-pip", "--no-index",
              "-f", wheelhouse, "solo")  # fmt: skip
    _one_line_error(res, "permission denied", str(locked))
    assert os.listdir(locked) == []


def test_export_from_a_store_whose_locks_dir_was_deleted(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    env = tmp_path / "env"
    made = cli("--store", store, "create", env, "--without-pip", "--no-index", "-f", wheelhouse,
               "solo")  # fmt: skip
    assert made.code == 0, made.err
    rmtree(store / "locks")
    res = cli("export", env, tmp_path / "copy")
    assert res.code == 0, res.err
    assert run([tmp_path / "copy" / "bin" / "python", "-c", "import solo"]).returncode == 0


@pytest.mark.skipif(os.geteuid() == 0, reason="root may remove anything")
def test_remove_your_own_env_from_a_sticky_directory_of_another_user(
    cli: CLI, store: Path, wheelhouse: Path
) -> None:
    import uuid

    # /tmp belongs to root and is sticky: its users may remove what they own there.
    env = Path("/tmp") / f"envstore-test-{uuid.uuid4().hex}"
    try:
        made = cli("--store", store, "create", env, "--without-pip", "--no-index",
                   "-f", wheelhouse, "solo")  # fmt: skip
        assert made.code == 0, made.err
        res = cli("--store", store, "remove", env)
        assert res.code == 0, res.err
        assert not env.exists()
    finally:
        rmtree(env)
