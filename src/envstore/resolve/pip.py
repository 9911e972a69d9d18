"""Running pip: the one rule for whether it may run, what to say when it may not,
and the one path by which it downloads wheels into the store's ``wheels/``.

pip runs for three callers: the resolver (what the store cannot satisfy),
exact wheels from a lock, and relink (a wheel of the same or another version
for a new Python). Each asks :func:`pip_may_run` or :func:`pip_may_find`,
names where it looked with :func:`searched`, and fetches with :func:`download`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from envstore.errors import ResolutionError
from envstore.model.interpreter import Interpreter
from envstore.model.keys import EntryKey
from envstore.model.sources import PackageSources, public_url
from envstore.resolve.cache import local_places
from envstore.resolve.forms import local_path
from envstore.resolve.reqfiles import pip_arguments
from envstore.resolve.request import Request, Resolved
from envstore.resolve.store_resolver import entry_with_sha256
from envstore.store import caches
from envstore.store.db import write
from envstore.store.layout import Store

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from typing import Any

    from envstore.store.ingest import Progress

__all__ = [
    "bundled_pip",
    "bundled_pip_key",
    "bundled_wheel_dirs",
    "cannot_fetch",
    "download",
    "from_pip",
    "pip_command",
    "pip_may_find",
    "pip_may_run",
    "run_pip",
    "searched",
    "wheel_url",
]


# -- whether pip may run, and what to say when it may not ---------------------------
def pip_may_run(sources: PackageSources) -> bool:
    """Whether pip may run at all: never with ``--offline`` (the store alone)."""
    return not sources.offline


def pip_may_find(sources: PackageSources, *, listed_local: bool) -> bool:
    """Whether running pip may find a wheel that envstore did not: it may run, and it
    has somewhere left to look, the index or (``--no-index``) the ``--find-links``;
    only their URLs once envstore has listed the directories itself (``listed_local``).

    The resolver asks only :func:`pip_may_run`: there pip chooses, and its own
    configuration (``PIP_FIND_LINKS``, pip.conf) may name places even with
    ``--no-index`` and no ``--find-links``.
    """
    if not pip_may_run(sources):
        return False
    if not sources.no_index:
        return True
    return bool(sources.remote_links() if listed_local else sources.find_links)


def cannot_fetch(wanted: str) -> ResolutionError:
    """The error when the store cannot satisfy ``wanted`` and pip may not run."""
    return ResolutionError(
        f"offline: the store cannot satisfy {wanted} (run once without --offline to fetch them)"
    )


def searched(sources: PackageSources, where: str, untrusted: str = "") -> str:
    """Where envstore looked, for a message saying something was not found there:
    ``where`` (the store's part), the ``--find-links`` (without credentials), then the
    index or why it was not searched. ``untrusted``: the sources a manifest names that
    were not used (relink), as options."""
    shown = sources.recorded()
    links = shown.find_links if pip_may_run(sources) else tuple(sources.local_dirs())
    text = where + (", --find-links " + " ".join(links) if links else "")
    if untrusted:
        return text + (
            f" (not the manifest's own sources, {untrusted}: this store did not"
            " register them with it; say where to look with -f DIR, --index-url URL or"
            " --no-index)"
        )
    if sources.offline or sources.no_index:
        why = "--offline" if sources.offline else "--no-index"
        return text + f" (the index was not searched: {why})"
    extra = "".join(f", {url}" for url in shown.extra_index_urls)
    return text + f" and {shown.index_url or 'the index'}{extra}"


# -- running pip ---------------------------------------------------------------------
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


def download(
    store: Store,
    interp: Interpreter,
    pip_site: Path,
    sources: PackageSources,
    wanted: Sequence[str],
    what: str,
    *,
    build: bool = False,
    hashed: bool = False,
    keep: Callable[[Path], bool] | None = None,
) -> list[Path]:
    """Wheels of ``wanted`` (requirements or URLs, without their dependencies) into the
    store's ``wheels/``; return where each landed. The one download path: pip fills a
    fresh directory in the store's ``tmp/`` (same filesystem), each wheel ``keep``
    accepts is moved into ``wheels/``, the directory goes.

    ``build``: pip may build sdists (``pip wheel``); otherwise wheels only. ``hashed``:
    ``wanted`` are requirement lines with ``--hash``, and pip requires every hash.
    ``what`` completes "pip could not ..." when pip fails.
    """
    work = store.mkdtemp("download")
    try:
        out = work / "wheels"
        if build:
            cmd = ["wheel", "--no-deps", "--quiet", "-w", str(out)]
        else:
            cmd = ["download", "--no-deps", "--only-binary=:all:", "--quiet", "--dest", str(out)]
        cmd += ["--require-hashes"] if hashed else []
        args = list(wanted)
        if hashed:
            reqs = work / "requirements.txt"
            reqs.write_text("".join(line + "\n" for line in wanted))
            args = ["-r", str(reqs)]
        run_pip([*pip_command(interp, pip_site), *cmd, *sources.pip_options(), *args], what)
        kept: list[Path] = []
        store.wheels_dir.mkdir(exist_ok=True)
        for whl in sorted(out.glob("*.whl")):
            if keep is None or keep(whl):
                dest = store.wheels_dir / whl.name
                os.replace(whl, dest)
                kept.append(dest)
        return kept
    finally:
        from envstore.store.fs import rmtree

        rmtree(work)


def from_pip(
    store: Store,
    request: Request,
    interp: Interpreter,
    pip_site: Path,
    progress: Callable[[str], None] | None,
) -> Resolved:
    if progress:
        progress("resolving with pip")
    places = local_places(request, interp)  # stamped before pip reads them
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
                *request.sources.pip_options(),
                *pip_arguments(request, work),
            ],
            "resolve the requirements",
        )
        data: dict[str, Any] = json.loads(report.read_text())
    finally:
        from envstore.store.fs import rmtree

        rmtree(work)
    from packaging.utils import canonicalize_name

    resolved = Resolved()
    remote: dict[str, str] = {}
    hashed: dict[str, tuple[str, str]] = {}  # what the remote cache may have: by sha256
    for item in data.get("install", []):
        name = canonicalize_name(item["metadata"]["name"])
        if item.get("requested"):
            resolved.requested.add(name)
            place = local_path(item["download_info"]["url"])
            if place in places:
                resolved.built[name] = places[place]
        url = _fetchable(item["download_info"])
        known = _stored(store, name, item["download_info"], interp)
        if known is not None:
            resolved.keys[name] = known  # the index's wheel, already unpacked: not fetched
        elif url.startswith("file://") and url.endswith(".whl"):
            from urllib.parse import unquote, urlparse

            resolved.wheels[name] = Path(unquote(urlparse(url).path))
        else:
            remote[name] = url
        if request.remote and known is None:
            from envstore.resolve.remote_first import report_wheel

            found = report_wheel(url, item["download_info"], resolved.wheels.get(name))
            if found is not None:
                hashed[name] = found
    if hashed:
        from envstore.resolve.remote_first import ask_remote

        for hit in ask_remote(store, request, interp, hashed, resolved, progress):
            remote.pop(hit, None)
    if remote:
        if progress:
            progress(f"downloading or building {len(remote)} wheels")
        from envstore.store.wheel import parse_wheel_name

        got = download(
            store,
            interp,
            pip_site,
            request.sources,
            list(remote.values()),
            "download or build the wheels",
            build=True,
        )
        for kept in got:
            name = canonicalize_name(parse_wheel_name(kept.name)[0])
            resolved.wheels[name] = kept
            fetched = wheel_url(remote.get(name, ""), kept.name, request.sources)
            if fetched is not None:
                resolved.urls[name] = fetched
        missing = sorted(set(remote) - set(resolved.wheels))
        if missing:
            raise ResolutionError(f"pip produced no wheel for: {', '.join(missing)}")
    return resolved


def _stored(store: Store, name: str, info: dict[str, Any], interp: Interpreter) -> EntryKey | None:
    """The store entry made from the wheel pip chose, if the index gave its sha256
    (PEP 503's ``#sha256=``, in the report's ``archive_info``) and one was."""
    from envstore.resolve.remote_first import report_sha256

    sha256 = report_sha256(info)
    if sha256 is None or not str(info.get("url", "")).split("#", 1)[0].endswith(".whl"):
        return None
    return entry_with_sha256(store, name, sha256, interp)


def wheel_url(url: str, wheel: str, sources: PackageSources) -> tuple[str, str | None] | None:
    """Where the downloaded ``wheel`` came from, as a lock may name it: only a wheel from
    PyPI (the run's index is PyPI's, the file is ``https://files.pythonhosted.org/...``
    of that very name) gives its URL and ``https://pypi.org/simple``. Any other index's
    URLs may hold a token in their path (``https://pypi.fury.io/TOKEN/acct/``), which
    would be written into entry.json and then into committed locks: None, as for a wheel
    pip built or a URL of another file (a lock then names a local path, or the fix)."""
    from urllib.parse import unquote, urlparse

    from envstore.model.records import web_url

    url = public_url(url.partition("#")[0])
    parsed = urlparse(url)
    pypi = sources.index_url is None or public_url(sources.index_url).rstrip("/") == _PYPI
    if not (pypi and web_url(url) and url.startswith("https://files.pythonhosted.org/")):
        return None
    if unquote(parsed.path).rsplit("/", 1)[-1] != wheel:
        return None
    return (url, _PYPI)


_PYPI = "https://pypi.org/simple"


def _fetchable(info: dict[str, Any]) -> str:
    """What ``pip wheel`` must be given for an item of pip's report (its PEP 610
    ``download_info``): the URL; for a VCS checkout ``vcs+URL@commit`` (the commit pip
    resolved, not the ref: a branch may move between the two runs of pip); and its
    ``#subdirectory=``."""
    url: str = info["url"]
    vcs = info.get("vcs_info")
    if vcs:
        url = f"{vcs['vcs']}+{url}@{vcs['commit_id']}"
    if info.get("subdirectory"):
        url += f"#subdirectory={info['subdirectory']}"
    return url


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
