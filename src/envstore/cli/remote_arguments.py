"""What the remote-cache commands and options take (issue #26): ``key generate``,
``push``, and ``--remote``/``--push`` on the commands that may ingest."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from typing import Any

__all__ = ["add_remote_commands", "add_remote_options"]


def add_remote_options(p: Any) -> None:
    p.add_argument(
        "--remote",
        metavar="URL",
        help="a remote cache of store entries (s3://BUCKET/PREFIX, file:///DIR, https://HOST/P),"
        " asked first for locked wheels (default: $ENVSTORE_REMOTE)",
    )
    p.add_argument(
        "--push",
        action="store_true",
        help="upload what was ingested to the remote, signed with $ENVSTORE_SIGNING_KEY"
        " (also: ENVSTORE_PUSH=1)",
    )


def add_remote_commands(sub: Any) -> None:
    p = sub.add_parser("key", help="keys that sign a remote cache")
    ksub = sub.nested(p, dest="subcommand")
    p = ksub.add_parser(
        "generate",
        help="write a new ed25519 key pair",
        description="Write a signing key to SECRET_FILE (mode 0600; give it to pushers only,"
        " never to CI jobs that run untrusted code) and its public key, one line NAME:BASE64,"
        " to PUBLIC_FILE (list it in ENVSTORE_TRUSTED_KEYS where entries are pulled).",
    )
    p.add_argument("name", metavar="NAME", help="the key's name, e.g. ci.example.org-1")
    p.add_argument("secret_file", metavar="SECRET_FILE")
    p.add_argument("public_file", metavar="PUBLIC_FILE")

    p = sub.add_parser(
        "push",
        help="upload environments' entries to the remote cache",
        description="Upload the store entries of each ENV (or of the whole store, --all) that"
        " the remote lacks, signed with $ENVSTORE_SIGNING_KEY.",
    )
    p.add_argument("envs", metavar="ENV", nargs="*", help="environment directories")
    p.add_argument("--all", action="store_true", help="every entry of the store")
    p.add_argument("--remote", metavar="URL", help="the remote (default: $ENVSTORE_REMOTE)")
