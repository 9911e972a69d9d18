"""Why envstore refuses a file others could change (``Store.check_trust``, the per-host
database's directory): one line naming the path and the fix. Imported only to say so.
"""

from __future__ import annotations

import os
import stat

from envstore.errors import StoreError, user_name


def refusal(path: str | os.PathLike[str], st: os.stat_result, root: object) -> StoreError:
    """The error for ``path`` (``st``, its lstat) if it is a symbolic link, another
    user's, or writable by group or others; ``root``: the store (a ``chown -R`` fix)."""
    if stat.S_ISLNK(st.st_mode):
        return StoreError(
            f"refusing to use {path}: it is a symbolic link; the store's files must"
            " be its own (run 'envstore rebuild-db' after removing it)"
        )
    if st.st_uid != os.geteuid():
        owner, me = user_name(st.st_uid), user_name(os.geteuid())
        sudo = (
            f" If it is yours and a command run with sudo made it, give it back:"
            f" sudo chown -R {me} {root}."
            if st.st_uid == 0
            else ""
        )
        return StoreError(
            f"refusing to use {path}: it belongs to {owner}, not to you ({me}), so"
            f" {owner} could change the code your environments run.{sudo} Otherwise"
            " use a store of your own (--store DIR or ENVSTORE_HOME), or set"
            f" ENVSTORE_TRUST_SHARED_STORE=1 if you trust {owner}"
        )
    return StoreError(
        f"refusing to use {path}: it is writable by other users (mode"
        f" {stat.S_IMODE(st.st_mode):o}), so they could change the code your"
        f" environments run. Remove their write permission (chmod go-w {path}),"
        " or set ENVSTORE_TRUST_SHARED_STORE=1 if everyone who can write it is"
        " trusted"
    )
