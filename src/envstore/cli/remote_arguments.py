"""What the remote-cache commands take (issue #26): ``key generate``, ``push`` and
``remote prune`` (``--remote``/``--push`` are with the other sources, in ``options``)."""

from __future__ import annotations

from envstore.cli.options import duration

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from typing import Any

__all__ = ["add_remote_commands"]


def add_remote_commands(sub: Any) -> None:
    p = sub.add_parser(
        "key",
        help="keys that sign a remote cache",
        description="The ed25519 keys that sign what is pushed to a remote cache and that"
        " pullers check (ENVSTORE_SIGNING_KEY, ENVSTORE_TRUSTED_KEYS).",
    )
    ksub = sub.nested(p, dest="subcommand")
    p = ksub.add_parser(
        "generate",
        help="write a new ed25519 key pair",
        description="Write a signing key to SECRET_FILE (mode 0600; give it to pushers only,"
        " never to CI jobs that run untrusted code) and its public key, one line NAME:BASE64,"
        " to PUBLIC_FILE (list it in ENVSTORE_TRUSTED_KEYS where entries are pulled).",
    )
    p.add_argument("name", metavar="NAME", help="the key's name, e.g. ci.example.org-1")
    p.add_argument(
        "secret_file", metavar="SECRET_FILE", help="where the signing key goes (a new file)"
    )
    p.add_argument("public_file", metavar="PUBLIC_FILE", help="where the public key goes")

    p = sub.add_parser(
        "push",
        help="upload environments' entries to the remote cache",
        description="Upload the store entries of each ENV (or of the whole store, --all) that"
        " the remote lacks, signed with $ENVSTORE_SIGNING_KEY.",
    )
    p.add_argument("envs", metavar="ENV", nargs="*", help="environment directories")
    p.add_argument("--all", action="store_true", help="every entry of the store")
    p.add_argument("--remote", metavar="URL", help="the remote (default: $ENVSTORE_REMOTE)")

    p = sub.add_parser(
        "remote",
        help="the remote cache itself",
        description="Maintain the remote cache of store entries (--remote URL or"
        " $ENVSTORE_REMOTE) that push fills and create, sync and relink pull from.",
    )
    rsub = sub.nested(p, dest="subcommand")
    p = rsub.add_parser(
        "prune",
        help="drop objects no push has touched for a while",
        description="Delete the remote's metadata and archives that no push has touched for"
        " DURATION (pushers refresh what they find present), except archives that kept"
        " metadata names. Best run while no push is running.",
    )
    p.add_argument(
        "--older-than",
        dest="older_than",
        metavar="DURATION",
        type=duration,
        required=True,
        help="age since the last push touched an object: 90s, 30m, 12h, 30d",
    )
    p.add_argument("--remote", metavar="URL", help="the remote (default: $ENVSTORE_REMOTE)")
    p.add_argument("--dry-run", action="store_true", help="only print what would be deleted")
