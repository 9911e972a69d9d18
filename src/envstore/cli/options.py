"""CLI options shared by commands: where packages may come from, editable projects,
what to take from a pyproject.toml."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    import argparse
    from typing import Any

__all__ = [
    "add_editable_option",
    "add_freshness_options",
    "add_index_options",
    "add_project_options",
    "add_project_sync_options",
    "add_remote_options",
    "add_request_options",
    "duration",
    "freshness_options",
    "index_options",
    "max_age",
    "request_options",
]


def duration(text: str) -> float:
    """``90``, ``90s``, ``10m``, ``2h``, ``1d`` -> seconds."""
    from envstore.resolve.freshness import parse_duration

    seconds = parse_duration(text)
    if seconds is None:  # also nan or inf: gc would keep nothing young
        import argparse  # not at the top: the warm create path parses without it

        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 0, 30s, 10m, 2h)")
    return seconds


def max_age(text: str) -> float:
    """``--max-age``: a :func:`duration`, or ``inf``."""
    from envstore.resolve.freshness import parse_duration

    seconds = parse_duration(text, infinite=True)
    if seconds is None:
        import argparse

        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 0, 30s, 10m, 2h, inf)")
    return seconds


def add_remote_options(p: Any) -> None:
    p.add_argument(
        "--remote",
        metavar="URL",
        help="a remote cache of store entries (s3://BUCKET/PREFIX, file:///DIR, https://HOST/P),"
        " asked first for any wheel whose sha256 is known: locked, in pip's report, or"
        " local (default: $ENVSTORE_REMOTE)",
    )
    p.add_argument(
        "--push",
        action="store_true",
        help="upload what was ingested to the remote, signed with $ENVSTORE_SIGNING_KEY"
        " (also: ENVSTORE_PUSH=1)",
    )


def add_index_options(p: argparse.ArgumentParser) -> None:
    """``--find-links``, ``--index-url``, ``--extra-index-url``, ``--no-index``,
    ``--offline`` and the remote cache's ``--remote`` and ``--push``, as ``create`` has:
    every command that may ingest takes them."""
    p.add_argument(
        "--find-links",
        "-f",
        dest="find_links",
        metavar="DIR",
        action="append",
        default=[],
        help="look for wheels in DIR (passed to pip)",
    )
    p.add_argument("--index-url", "-i", metavar="URL", help="base URL of the package index")
    p.add_argument(
        "--extra-index-url",
        dest="extra_index_urls",
        metavar="URL",
        action="append",
        default=[],
        help="another package index to search besides --index-url (repeatable)",
    )
    p.add_argument("--no-index", action="store_true", help="ignore the package index")
    p.add_argument(
        "--offline", action="store_true", help="use only what the store already has; never run pip"
    )
    add_remote_options(p)


def index_options(args: argparse.Namespace) -> dict[str, Any]:
    """What ``add_index_options`` parsed, as the library functions' ``sources=``."""
    from envstore.model.sources import PackageSources

    sources = PackageSources(
        args.find_links,
        args.index_url,
        args.no_index,
        args.offline,
        args.extra_index_urls,
        args.remote,
        args.push or None,  # unset: ENVSTORE_PUSH decides
    )
    return {"sources": sources}


def add_editable_option(p: Any) -> None:
    p.add_argument(
        "-e",
        "--editable",
        dest="editables",
        metavar="PATH",
        action="append",
        default=[],
        help="install the project at PATH editable (PEP 660; PATH[extra,...] for extras);"
        " its dependencies come from the store (repeatable)",
    )


def add_project_options(p: Any) -> None:
    """What to take from a project's pyproject.toml (-r pyproject.toml, --group)."""
    p.add_argument(
        "--extra",
        dest="extras",
        metavar="NAME",
        action="append",
        default=[],
        help="with -r pyproject.toml: the dependencies of this extra too; with --from"
        " LOCK: the packages the lock marks for it (repeatable)",
    )
    p.add_argument(
        "--all-extras",
        action="store_true",
        help="with -r pyproject.toml or --from LOCK: every extra's too",
    )
    p.add_argument(
        "--group",
        dest="groups",
        metavar="[PATH:]NAME",
        action="append",
        default=[],
        help="a PEP 735 dependency group of the pyproject.toml in PATH (default: the current"
        " directory's; in a project sync, the project's); with --from LOCK, a group the"
        " lock declares, instead of its default-groups (repeatable)",
    )


def add_project_sync_options(p: Any) -> None:
    """The options of ``sync`` in a project."""
    project = p.add_argument_group(
        "in a project (no ENV, REQ, -r, -e or --from; or ENV with --project)",
        "sync the project's env to its dependencies, the dev group, the groups and extras"
        " asked for, and the project installed editable",
    )
    project.add_argument(
        "--project",
        metavar="DIR",
        help="the project (default: the nearest pyproject.toml at or above the current directory)",
    )
    project.add_argument("--all-groups", action="store_true", help="every dependency group")
    project.add_argument("--no-dev", action="store_true", help="without the dev group")
    project.add_argument(
        "--locked",
        action="store_true",
        help="from the project's pylock.toml, which must be there, written by 'envstore"
        " lock' from pyproject.toml as it is; without it a stale lock, or one another tool"
        " wrote, is warned about and not used (--from LOCK with ENV: a lock as it is)",
    )
    project.add_argument(
        "--no-install-project",
        action="store_true",
        help="only the project's dependencies, not the project itself",
    )
    project.add_argument(
        "--no-editable",
        action="store_true",
        help="install the project as a wheel (into the store), not editable",
    )


def add_freshness_options(p: Any) -> None:
    """``--max-age`` and ``--refresh``: how old a resolution against the index may be."""
    p.add_argument(
        "--max-age",
        type=max_age,
        metavar="DURATION",
        help="reuse a resolution against the index made at most this long ago (e.g. 0,"
        " 30s, 10m, 2h, inf; default: $ENVSTORE_MAX_AGE, else 10m, what uv keeps an index"
        " page for); older, pip resolves requirements not pinned to one version again;"
        " inf: whatever the store has (for build frontends and CI that want no index)",
    )
    p.add_argument(
        "--refresh",
        action="store_true",
        help="resolve against the index now (--max-age 0); pinned requirements still come"
        " from the store",
    )


def freshness_options(args: argparse.Namespace) -> dict[str, Any]:
    """What ``add_freshness_options`` parsed, as the library's ``max_age=``."""
    return {"max_age": 0.0 if args.refresh else args.max_age}


def add_request_options(p: argparse.ArgumentParser) -> None:
    """``-c/--constraint``, ``--pre`` (which versions a create or sync may choose),
    ``--max-age`` and ``--refresh`` (how current they must be)."""
    p.add_argument(
        "-c",
        "--constraint",
        dest="constraints",
        metavar="FILE",
        action="append",
        default=[],
        help="constrain versions with a constraints file (pip's -c; repeatable)",
    )
    p.add_argument(
        "--pre", action="store_true", help="include pre-release and development versions"
    )
    add_freshness_options(p)


def request_options(args: argparse.Namespace) -> dict[str, Any]:
    """What ``add_request_options`` parsed, as ``create_env``'s and ``sync_env``'s keywords."""
    return {"constraints": args.constraints, "pre": args.pre, **freshness_options(args)}
