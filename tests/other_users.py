"""Files of another user, made by root for the unprivileged pass (``.ci/unprivileged``).

A user who is not root cannot make files owned by someone else, so root prepares
them before the pass drops its privileges, and ``test_users.py`` finds them through
``ENVSTORE_TEST_OTHERS``:

- ``others/``: a store and an env made by root (another user, to the tester);
- ``sudo-store`` and ``sudo-env``: the tester's own store and env, after one
  ``sudo envstore`` run added root-owned entries, a view and an env to them;
- ``sudo-made-store``: a store the tester owns the directory of, which a ``sudo
  envstore`` run filled first (its database and entries/ belong to root);
- ``wheels/``: the wheels all of them were made from.

Usage (as root): ``python tests/other_users.py DIR USER``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import wheelmaker


def _envstore(*args: str | Path, user: str | None = None, trust: bool = False) -> None:
    cmd = [sys.executable, "-m", "envstore", *map(str, args)]
    if user is not None:
        gid = pwd.getpwnam(user).pw_gid
        cmd = ["setpriv", f"--reuid={user}", f"--regid={gid}", "--clear-groups", "--", *cmd]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYTHON"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    if trust:  # root refuses a store another user owns unless told to trust them
        env["ENVSTORE_TRUST_SHARED_STORE"] = "1"
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)


def main(top: Path, user: str) -> None:
    pw = pwd.getpwnam(user)
    wheels = top / "wheels"
    wheels.mkdir(parents=True)
    for name in ("alpha", "beta", "gamma"):
        wheelmaker.build_wheel(wheels, name, "1.0", files={f"{name}.py": "X = 1\n"})
    opts = ["--without-pip", "--no-index", "-f", wheels]

    # Root's own store and env: another user's, to the tester.
    others = top / "others"
    others.mkdir()
    _envstore("--store", others / "store", "create", others / "env", *opts, "alpha")

    # The tester's store and env; then one run with sudo (and the store trusted, as
    # with sudo -E, or by an envstore from before that check) adds root-owned files to
    # it, and root removes its env again (what it used is now garbage, owned by root).
    mine = top / "mine"
    mine.mkdir()
    os.chown(mine, pw.pw_uid, pw.pw_gid)
    _envstore("--store", mine / "sudo-store", "create", mine / "sudo-env", *opts, "alpha",
              user=user)  # fmt: skip
    _envstore("--store", mine / "sudo-store", "create", mine / "by-root", *opts, "beta",
              trust=True)  # fmt: skip
    shutil.rmtree(mine / "by-root")

    # A store directory the tester made, filled first by a run with sudo.
    made = mine / "sudo-made-store"
    made.mkdir()
    _envstore("--store", made, "create", top / "root-env", *opts, "alpha")
    os.chown(made, pw.pw_uid, pw.pw_gid)
    for path in (top, wheels, others):
        os.chmod(path, 0o755)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
