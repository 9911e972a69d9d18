"""envstore.resolve.pip"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path

from envstore.errors import (
    ResolutionError,
)
from envstore.model.interpreter import Interpreter
from envstore.model.keys import EntryKey
from envstore.resolve.request import Request, Resolved
from envstore.store import caches
from envstore.store.db import write
from envstore.store.layout import Store

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from typing import Any

    from envstore.store.ingest import Progress


def pip_command(interp: Interpreter, pip_site: Path) -> list[str]:
    code = (
        "import sys; sys.path.insert(0, sys.argv.pop(1)); "
        "from pip._internal.cli.main import main; sys.exit(main())"
    )
    return [interp.path, "-I", "-c", code, str(pip_site)]


def run_pip(cmd: list[str], what: str) -> None:
    import subprocess  # only when pip runs: a warm create never does

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        detail = "\n".join(lines[-12:]) or proc.stdout.strip()[-800:]
        raise ResolutionError(f"pip could not {what}:\n{detail}")


def from_pip(
    store: Store,
    request: Request,
    interp: Interpreter,
    pip_site: Path,
    progress: Callable[[str], None] | None,
) -> Resolved:
    if progress:
        progress("resolving with pip")
    work = store.mkdtemp("resolve")
    try:
        report = work / "report.json"
        run_pip(
            [
                *pip_command(interp, pip_site),
                "install",
                "--dry-run",
                "--ignore-installed",
                "--quiet",
                "--report",
                str(report),
                *request.pip_options(),
                *request.pip_requirements(),
            ],
            "resolve the requirements",
        )
        data: dict[str, Any] = json.loads(report.read_text())
        resolved = Resolved()
        remote: dict[str, str] = {}
        for item in data.get("install", []):
            from packaging.utils import canonicalize_name

            name = canonicalize_name(item["metadata"]["name"])
            if item.get("requested"):
                resolved.requested.add(name)
            url: str = item["download_info"]["url"]
            if url.startswith("file://") and url.endswith(".whl"):
                from urllib.parse import unquote, urlparse

                resolved.wheels[name] = Path(unquote(urlparse(url).path))
            else:
                remote[name] = url
        if remote:
            if progress:
                progress(f"downloading or building {len(remote)} wheels")
            out = work / "wheels"
            run_pip(
                [
                    *pip_command(interp, pip_site),
                    "wheel",
                    "--no-deps",
                    "--quiet",
                    "-w",
                    str(out),
                    *request.pip_options(),
                    *remote.values(),
                ],
                "download or build the wheels",
            )
            store.wheels_dir.mkdir(exist_ok=True)
            from packaging.utils import canonicalize_name

            from envstore.store.wheel import parse_wheel_name

            for whl in out.glob("*.whl"):
                name = canonicalize_name(parse_wheel_name(whl.name)[0])
                kept = store.wheels_dir / whl.name
                os.replace(whl, kept)
                resolved.wheels[name] = kept
            missing = sorted(set(remote) - set(resolved.wheels))
            if missing:
                raise ResolutionError(f"pip produced no wheel for: {', '.join(missing)}")
        return resolved
    finally:
        from envstore.store.fs import rmtree

        rmtree(work)


def bundled_wheel_dirs(interp: Interpreter) -> list[Path]:
    """Where wheels ship with interpreters: ensurepip's bundle, Debian's python-wheels.
    The running Python's stdlib is where ``os`` is (not sysconfig: ~4 ms to import and
    expand, on every create)."""
    dirs = [Path(interp.stdlib) / "ensurepip" / "_bundled", Path("/usr/share/python-wheels")]
    own = getattr(os, "__file__", None)  # None in a frozen app
    if own:
        dirs.append(Path(os.path.dirname(own)) / "ensurepip" / "_bundled")
    return dirs


def bundled_pip(interp: Interpreter) -> Path | None:
    """A pip wheel available offline: the interpreter's ensurepip bundle, Debian's
    python-wheels, or the bundle of the Python running envstore (pip supports
    every CPython envstore targets)."""

    # Runs on every create: a numeric sort, not packaging (~20 ms to import), and a
    # listing, not glob (a pattern compiled per call).
    def version(name: str) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", name.split("-")[1]))

    for place in bundled_wheel_dirs(interp):
        try:
            names = os.listdir(place)
        except OSError:
            continue
        wheels = [n for n in names if n.startswith("pip-") and n.endswith(".whl")]
        if wheels:
            return place / max(wheels, key=version)
    return None


def bundled_pip_key(store: Store, interp: Interpreter, progress: Progress | None) -> EntryKey:
    wheel = bundled_pip(interp)
    if wheel is None:
        raise ResolutionError(
            f"{interp.path} has no bundled pip (ensurepip); use --without-pip, or name pip"
            " in the requirements"
        )
    # Hashing the wheel costs an import of the ingest machinery; remember the
    # answer per wheel file identity so a warm create skips it.
    st = wheel.stat()
    ident = f"{st.st_size}:{st.st_mtime_ns}"
    known = caches.bundled_pip(store.db(), str(wheel), ident, interp.cache_tag)
    if known is not None:
        key = EntryKey.parse(known)
        if store.has_entry(key, interp.cache_tag):
            return key
    from envstore.store.ingest import ingest_wheels

    key = ingest_wheels(store, [wheel], interp, progress)[wheel]
    with write(store.db()) as conn:
        caches.put_bundled_pip(conn, str(wheel), ident, interp.cache_tag, str(key))
    return key
