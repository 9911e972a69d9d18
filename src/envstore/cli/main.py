"""The ``envstore`` command: a thin shell over the library.

``main(argv)`` returns an exit code and is what tests call; ``entrypoint()`` is
the console script. ``main`` parses (``envstore.cli.parser``), imports the module
of the command run and only it (``COMMANDS``), and is the one place an error
becomes ``envstore: error: ...`` and an exit code.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Sequence

from envstore.cli.fastpath import parse_plain
from envstore.cli.output import Escaped, Reporter, error
from envstore.errors import EnvstoreError

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

__all__ = ["COMMANDS", "entrypoint", "main"]

# Each command's function, ``(args, progress) -> exit code``, as "module:function":
# a command imports its module when it runs, so ``create`` pays for no other.
# A nested command is named with its parent: "python list".
COMMANDS = {
    "create": "envstore.cli.envs:create",
    "remove": "envstore.cli.envs:remove",
    "show": "envstore.cli.envs:show",
    "list": "envstore.cli.envs:list_",
    "gc": "envstore.cli.store:gc",
    "store": "envstore.cli.store:usage",
    "verify": "envstore.cli.store:verify",
    "rebuild-db": "envstore.cli.store:rebuild_db",
    "python list": "envstore.cli.python:list_",
    "doctor": "envstore.cli.interp:doctor",
    "relink": "envstore.cli.interp:relink",
    "run": "envstore.cli.frontends:run",
    "build": "envstore.cli.frontends:build",
    "lock": "envstore.cli.portable:lock",
    "sync": "envstore.cli.portable:sync",
    "export": "envstore.cli.portable:export",
    "install": "envstore.cli.install:install",
    "uninstall": "envstore.cli.install:uninstall",
    "key generate": "envstore.cli.remote:key_generate",
    "push": "envstore.cli.remote:push",
    "remote prune": "envstore.cli.remote:prune",
}


def command(args: argparse.Namespace) -> Callable[[argparse.Namespace, Reporter], int]:
    """The function that runs the command ``args`` names, its module imported now."""
    name = (
        f"{args.command} {args.subcommand}" if getattr(args, "subcommand", None) else args.command
    )
    module, _, function = COMMANDS[name].partition(":")
    found: Callable[[argparse.Namespace, Reporter], int] = getattr(
        __import__(module, fromlist=[function]), function
    )
    return found


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_plain(argv)  # a plain create or sync: no argparse on the hot path
    if args is None:
        from envstore.cli.parser import parse

        args = parse(argv)
    progress = Reporter(args.verbosity)
    # What envstore prints comes partly from files (manifests, the database): a control
    # character in them is shown escaped, never sent to the terminal.
    out, err = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = Escaped(out), Escaped(err)
    try:
        return _run(args, progress)
    finally:
        sys.stdout, sys.stderr = out, err


def _run(args: argparse.Namespace, progress: Reporter) -> int:
    """The command run; every error it raises that a user can act on becomes one line."""
    try:
        run = command(args)
        if _collecting_after_start:
            # What start-up made (modules, the parser) lives until exit: kept out of
            # every later collection instead of scanned by each.
            gc.freeze()
            gc.enable()
        return run(args, progress)
    except EnvstoreError as exc:
        error(str(exc))
        return 1
    except BrokenPipeError:
        # The reader went away (envstore list | head): not an error worth a
        # traceback. Point stdout at devnull so the exit-time flush stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except OSError as exc:  # a permission, a full disk: one line naming the path
        from envstore.errors import describe_os_error

        error(describe_os_error(exc))
        return 1
    except KeyboardInterrupt:
        print("envstore: interrupted", file=sys.stderr)
        return 130


def entrypoint() -> None:
    # No garbage collection while the CLI starts: importing and building the parser
    # make only objects that live until exit, and the collections their allocations
    # trigger cost a warm create a few percent. Collection resumes once the command's
    # module is imported (see _run).
    global _collecting_after_start
    gc.disable()
    _collecting_after_start = True
    from envstore.store.db import track_connections

    track_connections()
    _leave(main())


def _leave(code: int) -> None:
    """Exit with ``code``. When nothing is left for the interpreter's finalization to do
    but tear down its modules (no atexit callback, no other thread), do what matters
    of it (close the store's databases, flush the output) and skip the rest: ~4 ms of
    every command, a tenth of a warm create (#20)."""
    import atexit

    threading = sys.modules.get("threading")
    callbacks = getattr(atexit, "_ncallbacks", lambda: 1)()  # CPython's; else exit as usual
    if callbacks or (threading is not None and threading.active_count() > 1):
        sys.exit(code)
    from envstore.store.db import close_tracked

    try:
        close_tracked()
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except BaseException:  # as the interpreter would report it
        sys.exit(code)
    os._exit(code)


_collecting_after_start = False
