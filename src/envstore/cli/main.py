"""The ``envstore`` command: a thin shell over the library.

``main(argv)`` returns an exit code and is what tests call; ``entrypoint()``
is the console script. The one place an EnvstoreError becomes
``envstore: error: ...`` is ``main``. Subcommand modules are imported only
when their command runs, to keep ``envstore create`` cheap to start.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence

from envstore.cli.options import add_index_options, index_options, plural
from envstore.errors import EnvstoreError, StoreError

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from typing import Any

    from envstore.store.layout import Store

__all__ = ["entrypoint", "main"]


class _Reporter:
    """Progress on a terminal (or with -v), silence when piped or with -q."""

    def __init__(self, verbosity: int) -> None:
        self.enabled = verbosity > 0 or (verbosity == 0 and sys.stderr.isatty())

    def __call__(self, message: str) -> None:
        if self.enabled:
            print(f"envstore: {message}", file=sys.stderr, flush=True)


def _cmd_create(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from envstore.env.lifecycle import create_env

    manifest = create_env(
        args.env,
        args.requirements,
        python=args.python,
        store=args.store,
        requirement_files=args.requirement_files,
        **index_options(args),
        upgrade=args.upgrade,
        with_pip=not args.without_pip,
        clear=args.clear,
        prompt=args.prompt,
        lock=args.lock,
        progress=progress,
    )
    if args.verbosity >= 0:
        print(
            f"created {manifest.env} (Python {manifest.python.version},"
            f" {plural(len(manifest.packages), 'package')})"
        )
    return 0


def _cmd_remove(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from envstore.env.remove import remove_env

    for env in args.envs:
        remove_env(env, store=args.store)
        progress(f"removed {os.path.abspath(env)}")
    return 0


def _cmd_show(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from envstore.model.manifest import Manifest

    manifest = Manifest.load(__import__("pathlib").Path(args.env))
    if args.json:
        print(manifest.dumps(), end="")
        return 0
    py = manifest.python
    print(f"env:     {manifest.env}")
    print(f"python:  {py.version} ({py.path}; requested {py.requested or 'default'})")
    print(f"abi:     {py.soabi}")
    print(f"store:   {manifest.store}")
    print("packages:")
    for p in manifest.packages:
        mark = "" if p.requested else "  (dependency)"
        print(f"  {p.name}=={p.version}{mark}")
    return 0


def _cmd_python_list(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from envstore.errors import InterpreterError
    from envstore.python.interpreters import candidates, too_old
    from envstore.python.query import query_interpreter
    from envstore.store.layout import Store

    store = Store(args.store)
    cache = store.facts_cache() if store.exists() else None  # listing makes no store
    rows: list[dict[str, object]] = []
    for path in candidates():
        try:
            facts = query_interpreter(path, cache)
        except InterpreterError as exc:
            rows.append({"path": path, "error": str(exc)})
            continue
        rows.append(
            {
                "path": path,
                "version": facts["version"],
                "abi": facts["soabi"],
                "venv": facts["is_venv"],
            }
        )
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for r in rows:
            venv = "  (venv)" if r.get("venv") else ""
            if r.get("version") and too_old(str(r["version"])):
                venv += "  (too old: envstore needs >= 3.9)"
            what = r.get("error") or f"{r['version']}  {r['abi']}{venv}"
            print(f"{r['path']}  {what}")
    return 0


def _duration(text: str) -> float:
    """``90``, ``90s``, ``10m``, ``2h``, ``1d`` -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], units[text[-1]]) if text and text[-1] in units else (text, 1)
    try:
        seconds = float(number) * unit
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < float("inf"):  # also nan: gc would keep nothing young
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 0, 30s, 10m, 2h)")
    return seconds


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def _cmd_gc(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    import time

    from envstore.store.gc import collect

    plan = collect(_store_or_note(args), grace=args.grace, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for problem in plan.problems:
        print(f"envstore: warning: {problem}", file=sys.stderr)
    for leftover in plan.skipped:
        print(f"envstore: warning: could not remove {leftover}", file=sys.stderr)
    if args.verbosity >= 0:
        for env in plan.dead_envs:
            print(f"{verb} registration of {env} (gone)")
        for env, since in plan.gone_envs:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(since))
            print(
                f"kept {env} (gone since {when}): what it uses stays for the grace period;"
                " if it was moved, run 'envstore relink' at its new place"
            )
        for item in plan.delete:
            print(f"{verb} {item.kind} {item.name} ({_size(item.size)})")
        freed = "would free" if args.dry_run else "freed"
        print(f"{freed} {_size(plan.bytes)} ({len(plan.delete)} items)")
    return 1 if plan.problems else 0


def _cmd_list(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from envstore.store.inventory import list_envs

    envs = list_envs(_store_or_note(args))
    if args.json:
        print(json.dumps([e.to_json() for e in envs], indent=1))
        return 0
    for e in envs:
        print(f"{e.path}  python {e.python or '?'}  {plural(e.packages, 'package')}  {e.status}")
    return 0


def _cmd_store(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from envstore.store.inventory import store_usage

    store = _store_or_note(args)
    usage = store_usage(store)
    if args.json:
        print(json.dumps({"store": str(store.root), **usage.to_json()}, indent=1))
        return 0
    print(f"store:        {store.root}")
    print(f"entries:      {usage.entries} ({usage.unreferenced} unreferenced)")
    print(f"views:        {usage.views}")
    print(f"wheels:       {usage.wheels} (kept to repair or rebuild entries)")
    print(f"environments: {usage.envs}")
    print(f"on disk:      {_size(usage.bytes)}")
    print(f"saved:        {_size(usage.saved)} (vs. every env holding its own copies)")
    return 0


def _store_or_note(args: argparse.Namespace) -> Store:
    """The store named by ``args``; a read of one that does not exist says so (a
    mistyped --store would otherwise look like an empty store)."""
    from envstore.store.layout import Store

    store = Store(args.store)
    if not store.exists() and args.verbosity >= 0:
        print(f"envstore: note: there is no store at {store.root} yet", file=sys.stderr)
    return store


def _cmd_verify(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from envstore.store.layout import Store
    from envstore.store.repair import repair
    from envstore.store.verify import verify

    store = Store(args.store)
    if not store.exists():
        raise StoreError(f"there is no store at {store.root} (pass --store DIR?)")
    found = verify(store, check_contents=args.check_contents or args.repair)
    for problem in found:
        print(problem)
    problems = [p for p in found if not p.note]
    if args.repair and problems:
        damaged = sorted({p.subject for p in problems if not p.subject.startswith("/")})
        for key in repair(store, damaged):
            print(f"repaired {key}")
        problems = [p for p in verify(store, check_contents=True) if not p.note]
        for problem in problems:
            print(f"still: {problem}")
    if args.verbosity >= 0:
        print(f"{plural(len(problems), 'problem')} found" if problems else "no problems found")
    return 1 if problems else 0


def _cmd_rebuild_db(args: argparse.Namespace, progress: Callable[[str], None]) -> int:
    from envstore.store.layout import Store
    from envstore.store.rebuild import rebuild_db

    counts = rebuild_db(Store(args.store))
    if args.verbosity >= 0:
        print(
            f"rebuilt the database: {counts['entries']} entries, {counts['views']} views,"
            f" {counts['envs']} environments ({counts['unreadable']} unreadable manifests)"
        )
    return 0


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's, sized without ``shutil`` (which pulls in bz2 and lzma, ~8 ms):
    argparse makes a formatter for every option it adds, not only to print help."""

    def __init__(self, prog: str) -> None:
        try:
            width = int(os.environ.get("COLUMNS", 0))
        except ValueError:
            width = 0
        if width <= 0:  # as shutil.get_terminal_size: the terminal's, else 80
            try:
                width = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
            except (AttributeError, ValueError, OSError):
                width = 0
        super().__init__(prog, width=(width if width > 0 else 80) - 2)


class _Skipped:
    """Stands in for the parser of a command that is not being run: accepts and drops
    every call (``add_argument``, ``set_defaults``, nested ``add_subparsers``...)."""

    def __getattr__(self, name: str) -> Callable[..., _Skipped]:
        return lambda *args, **kwargs: self


class _Subcommands:
    """argparse's subparsers, with our help formatter; given ``only``, the parser of
    that one command is built and the others are skipped.

    argparse spends ~1 ms per subcommand (a help formatter per option, gettext
    lookups), and ``envstore create`` is a hot path.
    """

    def __init__(
        self, sub: argparse._SubParsersAction[argparse.ArgumentParser], only: str | None
    ) -> None:
        self._sub = sub
        self._only = only
        self.found = False
        # The global options are also taken after the command (envstore create ENV
        # --store DIR), as uv and pip take theirs; unset there unless given.
        self.common = argparse.ArgumentParser(add_help=False)
        self.common.add_argument(
            "--store", metavar="DIR", default=argparse.SUPPRESS, help="the store directory"
        )
        for flag, value in (("-v", 1), ("-q", -1)):  # a group's usage trips on hidden help
            self.common.add_argument(
                flag,
                dest="verbosity",
                action="store_const",
                const=value,
                default=argparse.SUPPRESS,
                help=argparse.SUPPRESS,
            )

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        if self._only is None or name == self._only:
            self.found = True
            return self._sub.add_parser(
                name, formatter_class=_HelpFormatter, parents=[self.common], **kwargs
            )
        return _Skipped()


def _command_of(argv: Sequence[str]) -> str | None:
    """The subcommand ``argv`` runs, when only global options precede it; None when
    unsure (help, an abbreviated or unknown option), which builds every parser."""
    args = iter(argv)
    for arg in args:
        if arg == "--store":
            next(args, None)
        elif arg in ("-v", "--verbose", "-q", "--quiet") or arg.startswith("--store="):
            continue
        else:
            return None if arg.startswith("-") else arg
    return None


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    """The CLI parser; given ``command``, only that subcommand's parser is built
    (for an unknown name, every one, so argparse's error lists them)."""
    parser = argparse.ArgumentParser(
        prog="envstore",
        formatter_class=_HelpFormatter,
        description="Cheap, durable, clean Python environments: every wheel is unpacked once"
        " into a shared store, and environments are thin venvs pointing into it.",
    )
    parser.add_argument(
        "--store",
        metavar="DIR",
        default=None,
        help="the store directory (default: $ENVSTORE_HOME, else $XDG_DATA_HOME/envstore,"
        " else ~/.local/share/envstore)",
    )
    verbosity = parser.add_mutually_exclusive_group()
    verbosity.add_argument(
        "-v",
        "--verbose",
        dest="verbosity",
        action="store_const",
        const=1,
        default=0,
        help="report progress even when not on a terminal",
    )
    verbosity.add_argument(
        "-q",
        "--quiet",
        dest="verbosity",
        action="store_const",
        const=-1,
        help="print nothing but errors",
    )
    sub = _Subcommands(
        parser.add_subparsers(dest="command", metavar="COMMAND", required=True), command
    )

    p = sub.add_parser(
        "create",
        help="create an environment",
        description="Create a virtual environment at ENV whose packages come from the store."
        " Requirements already in the store are used as they are (no pip, works offline);"
        " with --no-index, wheels in --find-links directories are chosen among as pip would"
        " (newest first), without running it; the rest are resolved and downloaded by pip,"
        " unpacked once and shared.",
    )
    p.add_argument("env", metavar="ENV", help="directory of the new environment")
    p.add_argument("requirements", metavar="REQ", nargs="*", help="requirement specifiers")
    p.add_argument(
        "-r",
        "--requirement",
        dest="requirement_files",
        metavar="FILE",
        action="append",
        default=[],
        help="install from a requirements file",
    )
    p.add_argument(
        "-p",
        "--python",
        metavar="PYTHON",
        help="interpreter: a version (3.12, 3.12.1), a command name (python3.12) or"
        " a path (default: the Python running envstore)",
    )
    add_index_options(p)
    p.add_argument(
        "-U",
        "--upgrade",
        action="store_true",
        help="resolve with pip even when the store could satisfy the requirements",
    )
    p.add_argument("--without-pip", action="store_true", help="do not put pip in the env")
    p.add_argument("--clear", action="store_true", help="replace an existing envstore env")
    p.add_argument("--prompt", help="prompt prefix shown when the env is activated")
    p.add_argument(
        "--from",
        dest="lock",
        metavar="LOCK",
        help="exactly the wheels of a lock written by 'envstore lock' (no resolution; each"
        " wheel's sha256 is checked before anything is installed; no REQ with it)",
    )
    p.set_defaults(func=_cmd_create)

    p = sub.add_parser("remove", help="delete environments and release their store references")
    p.add_argument("envs", metavar="ENV", nargs="+")
    p.set_defaults(func=_cmd_remove)

    p = sub.add_parser("show", help="print an environment's interpreter and packages")
    p.add_argument("env", metavar="ENV")
    p.add_argument("--json", action="store_true", help="print the manifest as JSON")
    p.set_defaults(func=_cmd_show)

    p = sub.add_parser(
        "gc",
        help="delete store entries no environment uses",
        description="Drop registrations of environments gone (deleted with rm -rf, moved away"
        " and not relinked) for longer than the grace period, then delete entries and views no"
        " live or recently gone environment uses, and abandoned temporary directories. Keeps"
        " everything if some environment's manifest is unreadable.",
    )
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument(
        "--grace",
        type=_duration,
        default=600.0,
        metavar="DURATION",
        help="keep unused objects younger than this, and what environments gone for less"
        " than this used (default 10m; e.g. 0, 30s, 2h)",
    )
    p.set_defaults(func=_cmd_gc)

    p = sub.add_parser("list", help="list registered environments and their status")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("store", help="entries, space used and space saved")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_store)

    p = sub.add_parser(
        "verify",
        help="check entries, environments and the database; report every problem",
    )
    p.add_argument(
        "--check-contents", action="store_true", help="also hash every file against its RECORD"
    )
    p.add_argument(
        "--repair",
        action="store_true",
        help="re-ingest damaged entries from their wheels (implies --check-contents)",
    )
    p.set_defaults(func=_cmd_verify)

    p = sub.add_parser("rebuild-db", help="rebuild the database from the store and its roots")
    p.set_defaults(func=_cmd_rebuild_db)

    p = sub.add_parser("python", help="interpreters envstore can use")
    psub = p.add_subparsers(dest="python_command", metavar="COMMAND", required=True)
    pl = psub.add_parser(
        "list", help="list the interpreters found on this machine", parents=[sub.common]
    )
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=_cmd_python_list)

    from envstore.cli import frontends as _cmd_frontends
    from envstore.cli import interp as _cmd_interp
    from envstore.cli import portable as _cmd_portable

    _cmd_interp.add_commands(sub)
    _cmd_frontends.add_commands(sub)
    _cmd_portable.add_commands(sub)
    if not sub.found:
        return _parser(None)
    return parser


class _Escaped:
    """A text stream that writes control characters (but newlines and tabs) escaped."""

    def __init__(self, stream: object) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        if not text.isprintable():
            text = "".join(c if c.isprintable() or c in "\n\t" else repr(c)[1:-1] for c in text)
        return self._stream.write(text)  # type: ignore[attr-defined,no-any-return]

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


def main(argv: Sequence[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    parser = _parser(_command_of(argv))
    args, extra = parser.parse_known_args(argv)
    # Requirements may follow options (create ENV --no-index -f DIR pkg), which
    # argparse's subparsers leave over; anything else left over is an error.
    unknown = [a for a in extra if a.startswith("-")]
    if extra and (unknown or args.command not in ("create", "sync")):
        parser.error(f"unrecognized arguments: {' '.join(unknown or extra)}")
    if extra:
        args.requirements = [*args.requirements, *extra]
    progress = _Reporter(args.verbosity)
    # What envstore prints comes partly from files (manifests, the database): a control
    # character in them is shown escaped, never sent to the terminal.
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Escaped(out), _Escaped(err)
    try:
        return _run(args, progress)
    finally:
        sys.stdout, sys.stderr = out, err


def _run(args: argparse.Namespace, progress: _Reporter) -> int:
    try:
        code: int = args.func(args, progress)
    except EnvstoreError as exc:
        print(f"envstore: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (envstore list | head): not an error worth a
        # traceback. Point stdout at devnull so the exit-time flush stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # a permission, a full disk: one line naming the path
        from envstore.errors import describe_os_error

        print(f"envstore: error: {describe_os_error(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:
        sqlite3 = sys.modules.get("sqlite3")  # loaded by any command that reads the store
        if sqlite3 is None or not isinstance(exc, sqlite3.DatabaseError):
            raise
        if isinstance(exc, sqlite3.OperationalError):  # locked, I/O: not the file's fault
            print(f"envstore: error: the store database: {exc}", file=sys.stderr)
        else:
            print(
                f"envstore: error: the store database is damaged ({exc}); run"
                " 'envstore rebuild-db' to rebuild it from the store",
                file=sys.stderr,
            )
        return 1
    except KeyboardInterrupt:
        print("envstore: interrupted", file=sys.stderr)
        return 130
    return code


def entrypoint() -> None:
    sys.exit(main())
