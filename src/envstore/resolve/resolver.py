"""From requirements to a set of store entries and wheels to ingest.

Order of attempts (store first, like an installer that finds a requirement
already satisfied):

1. the resolution cache: the same requirements (requirement files and what
   they include), options, local find-links listings and interpreter resolved
   before, every entry still present: no parsing, no pip;
2. the store resolver: every requirement (and, transitively, every
   Requires-Dist) satisfied by entries already in the store, highest version
   first, no backtracking;
3. pip, run by the target interpreter so markers are its own:
   ``pip install --dry-run --ignore-installed --report``, then ``pip wheel
   --no-deps`` for what is not a local wheel (downloads wheels, builds sdists).

``upgrade`` skips 1 and 2. ``offline`` forbids 3.

A request with ``locked`` wheels (from a lock file) never resolves: each
named wheel is taken as it is, from a store entry with the same sha256 or a
file of that name whose sha256 matches (``--find-links`` directories, the
store's ``wheels/``, the interpreter's bundled wheels), else downloaded by pip
with ``--require-hashes``. Every problem is reported before anything is
ingested.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from envstore.errors import ResolutionError
from envstore.model.interpreter import Interpreter
from envstore.model.keys import PURE, EntryKey
from envstore.store.layout import Store

TYPE_CHECKING = False  # not typing's: importing typing costs every CLI start ~5 ms
if TYPE_CHECKING:
    import sqlite3
    from typing import Any

    from envstore.model.lock import LockedPackage

__all__ = [
    "Request",
    "Resolved",
    "bundled_wheel_dirs",
    "cache_get",
    "cache_put",
    "pip_command",
    "resolve",
    "run_pip",
]


class Request:
    """What to put in an environment, and where pip may look for it (a plain class:
    see EntryKey)."""

    def __init__(
        self,
        requirements: tuple[str, ...] = (),
        requirement_files: tuple[str, ...] = (),
        find_links: tuple[str, ...] = (),
        index_url: str | None = None,
        no_index: bool = False,
        offline: bool = False,
        upgrade: bool = False,
        locked: tuple[LockedPackage, ...] = (),  # exactly these wheels: no resolution
    ) -> None:
        self.requirements = requirements
        self.requirement_files = requirement_files
        self.find_links = find_links
        self.index_url = index_url
        self.no_index = no_index
        self.offline = offline
        self.upgrade = upgrade
        self.locked = locked

    def __repr__(self) -> str:
        return f"Request({self.pip_requirements()!r}, options={self.pip_options()!r})"

    def pip_options(self) -> list[str]:
        opts: list[str] = []
        for d in self.find_links:
            opts += ["--find-links", d]
        if self.index_url:
            opts += ["--index-url", self.index_url]
        if self.no_index:
            opts.append("--no-index")
        return opts

    def pip_requirements(self) -> list[str]:
        args = list(self.requirements)
        for f in self.requirement_files:
            args += ["-r", f]
        return args


class Resolved:
    """The outcome of a resolution (a plain class: see EntryKey)."""

    def __init__(self, requested: set[str] | None = None) -> None:
        self.keys: dict[str, EntryKey] = {}  # name -> existing entry
        self.wheels: dict[str, Path] = {}  # name -> wheel to ingest
        self.requested: set[str] = requested or set()
        self.from_cache = False
        self.cache_key: str | None = None  # what to remember it under (computed once)


def _cache_key(request: Request, interp: Interpreter) -> str:
    import xxhash

    files: list[str] = []
    seen: set[str] = set()
    for f in request.requirement_files:
        try:
            files += _requirement_texts(f, seen)
        except OSError as exc:
            raise ResolutionError(f"cannot read requirements file {f}: {exc}") from None
    # What a local --find-links directory holds (names, sizes, mtimes): a wheel
    # added, removed or rebuilt there changes pip's choice, so the cached one is stale.
    # (PIP_FIND_LINKS too: pip, when it runs, looks there as well.)
    more = os.environ.get("PIP_FIND_LINKS", "").split()
    links = [[os.path.abspath(d), _listing(d)] for d in [*request.find_links, *more]]
    blob = json.dumps(
        [
            sorted(request.requirements),
            files,
            links,
            request.index_url,
            request.no_index,
            interp.soabi,
            interp.version,
            interp.platform,
        ]
    )
    return str(xxhash.xxh3_128_hexdigest(blob.encode()))


def _listing(d: str) -> list[tuple[str, int, int, int, int]] | None:
    """What pip could take from directory ``d``: (name, size, mtime, ctime, inode) of
    each wheel or archive; None if ``d`` is not a directory (a URL)."""
    try:
        with os.scandir(d) as it:
            entries = list(it)
    except (OSError, ValueError):
        return None
    out = []
    for e in entries:
        if not (e.name.endswith(".whl") or e.name.lower().endswith(_ARCHIVES)):
            continue  # an env, sources or .git beside the wheels change all the time
        try:
            st = e.stat()
            out.append((e.name, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
        except OSError:  # a dangling link
            out.append((e.name, -1, -1, -1, -1))
    return sorted(out)


def _logical_lines(text: str) -> list[str]:
    """A requirements file's lines as pip reads them: continuations joined, comments
    dropped, ``${VAR}`` expanded."""
    lines: list[str] = []
    buf = ""
    for raw in text.splitlines():
        if raw.endswith("\\"):
            buf += raw[:-1]
            continue
        lines.append(buf + raw)
        buf = ""
    if buf:
        lines.append(buf)
    out = []
    for line in lines:
        line = re.sub(r"(^|\s+)#.*$", "", line).strip()
        line = re.sub(r"\$\{([A-Z0-9_]+)\}", lambda m: os.environ.get(m.group(1), m.group(0)), line)
        if line:
            out.append(line)
    return out


def _is_option(name: str, full: str, clash: str) -> bool:
    """``--name`` means ``--full``: itself or an abbreviation optparse accepts (not also
    the start of ``--clash``, pip's other option with that prefix)."""
    return full.startswith(name) and not clash.startswith(name) and len(name) > 1


def _included(line: str) -> list[tuple[str, str]]:
    """What a requirements-file line points at, in pip's option syntax: ("r", file) for
    -r and ("c", file) for -c (a file it includes), ("f", place) for -f (where pip
    looks for wheels)."""
    import shlex

    if not line.startswith("-"):
        return []
    try:
        tokens = shlex.split(line)
    except ValueError:
        tokens = line.split()
    found = []
    for i, tok in enumerate(tokens):
        kind = value = None
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        if tok in ("-r", "-c", "-f"):
            kind, value = tok[1], following
        elif tok[:2] in ("-r", "-c", "-f") and not tok.startswith("--"):
            kind, value = tok[1], tok[2:]
        elif tok.startswith("--"):
            name, eq, attached = tok[2:].partition("=")
            if _is_option(name, "requirement", "require-hashes"):
                kind = "r"
            elif _is_option(name, "constraint", "config-settings"):
                kind = "c"
            elif _is_option(name, "find-links", ""):
                kind = "f"
            value = attached if eq else following
        if kind and value:
            found.append((kind, value))
    return found


def _requirement_texts(path: str, seen: set[str]) -> list[str]:
    """A requirements file's text, then those of the files it includes, recursively,
    and the listings of local directories it names with -f: a change to any of them
    must miss the resolution cache."""
    real = os.path.abspath(path)
    if real in seen:
        return []
    seen.add(real)
    text = Path(real).read_text()
    out = [text]
    for line in _logical_lines(text):
        for kind, name in _included(line):
            if "://" in name:
                out.append(name)  # a URL: what pip fetches is not ours to stamp
                continue
            nested = os.path.join(os.path.dirname(real), name)
            if kind == "f":  # pip takes it relative to the file when it exists there
                place = nested if os.path.exists(nested) else name
                out.append(json.dumps([place, _listing(place)]))
                continue
            try:
                out += _requirement_texts(nested, seen)
            except OSError:
                out.append(f"unreadable: {nested}")  # pip will say so
    return out


def cache_get(store: Store, key: str) -> Any:
    """What the ``resolutions`` table (the store's cache of answers) holds under ``key``,
    decoded; None if nothing."""
    row = store.db().execute("SELECT objects FROM resolutions WHERE key = ?", (key,)).fetchone()
    return None if row is None else json.loads(row[0])


def cache_put(conn: sqlite3.Connection, key: str, value: object) -> None:
    """Remember ``value`` under ``key`` in ``resolutions``; inside a write transaction."""
    conn.execute(
        "INSERT OR REPLACE INTO resolutions (key, objects, created) VALUES (?, ?, ?)",
        (key, json.dumps(value), time.time()),
    )


def _from_cache(store: Store, cache_key: str) -> Resolved | None:
    items = cache_get(store, cache_key)
    if items is None:
        return None
    resolved = Resolved()
    for item in items:
        key = EntryKey.parse(item["key"])
        if not store.has_entry(key):
            return None
        resolved.keys[key.name] = key
        if item["requested"]:
            resolved.requested.add(key.name)
    return resolved


def remember(
    store: Store,
    resolved: Resolved,
    keys: dict[str, EntryKey],
    ingested: dict[Path, EntryKey] | None = None,
) -> None:
    """Cache ``resolved``'s outcome (``keys``, every entry chosen) under the key computed
    when it was resolved, and which store entry each ``ingested`` wheel file became."""
    from envstore.store.db import write

    items = [{"key": str(k), "requested": n in resolved.requested} for n, k in sorted(keys.items())]
    conn = store.db()
    with write(conn):
        if resolved.cache_key is not None:
            cache_put(conn, resolved.cache_key, items)
        for wheel, key in (ingested or {}).items():
            stamp = _file_stamp(wheel)
            if stamp is not None:
                cache_put(conn, stamp, [key.hash])


def _file_stamp(path: Path) -> str | None:
    """A resolution-cache key for the hash of the file at ``path`` as it is now."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    ident = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    return f"wheel-hash:{os.path.abspath(path)}:{':'.join(map(str, ident))}"


def _wheel_hash(store: Store, path: Path) -> str:
    """xxh3-128 of a wheel file (what its store entry would be keyed by), remembered
    per file identity: a warm create that misses the resolution cache hashes nothing."""
    from envstore.store.db import write
    from envstore.store.ingest import hash_file

    stamp = _file_stamp(path)
    known = cache_get(store, stamp) if stamp is not None else None
    if known is not None:
        return str(known[0])
    digest = hash_file(path)
    if stamp is not None:
        with write(store.db()) as conn:
            cache_put(conn, stamp, [digest])
    return digest


def _requirement_lines(request: Request) -> list[str] | None:
    """Requirement strings, those of files included with ``-r`` too; None when a file
    uses an option only pip understands (constraints, -f, index options, hashes)."""
    lines = list(request.requirements)
    seen: set[str] = set()
    for f in request.requirement_files:
        more = _file_requirements(f, seen)
        if more is None:
            return None
        lines += more
    return lines


def _file_requirements(path: str, seen: set[str]) -> list[str] | None:
    real = os.path.abspath(path)
    if real in seen:
        return []
    seen.add(real)
    out: list[str] = []
    for line in _logical_lines(Path(real).read_text()):
        if not line.startswith("-"):
            if " --" in line or "\t--" in line:  # per-requirement options (--hash=...)
                return None
            out.append(line)
            continue
        found = _included(line)
        if len(found) != 1 or found[0][0] != "r" or "://" in found[0][1] or len(line.split()) > 2:
            return None
        nested = os.path.join(os.path.dirname(real), found[0][1])  # as pip: by the file
        try:
            more = _file_requirements(nested, seen)
        except OSError as exc:
            raise ResolutionError(
                f"cannot read requirements file {nested} (included by {real}): {exc.strerror}"
            ) from None
        if more is None:
            return None
        out += more
    return out


def _store_candidates(store: Store, name: str, interp: Interpreter) -> list[EntryKey]:
    found: list[EntryKey] = []
    for abi in (PURE, interp.soabi):
        d = store.entries_dir / abi / name
        try:
            names = os.listdir(d)
        except OSError:
            continue
        for n in names:
            version, _, digest = n.rpartition("-")
            if (d / n / "entry.json").exists():
                found.append(EntryKey(abi, name, version, digest))
    return found


# pip settings that change what it may choose from a directory of wheels.
_PIP_CHOICE_SETTINGS = {"find-links", "pre", "constraint", "no-binary", "only-binary"}
# What pip takes for an sdist (or another archive it might build).
_ARCHIVES = (
    *(".zip", ".tar", ".tgz", ".tbz", ".txz", ".tlz"),
    *(".tar.gz", ".tar.bz2", ".tar.xz", ".tar.lz", ".tar.lzma"),
)


def _pip_config_changes_choice(interp: Interpreter) -> bool:
    """Whether pip's environment or config files set something that changes its choice
    (more find-links, pre-releases, constraints, binary rules): pip would see them."""
    if any(os.environ.get("PIP_" + k.upper().replace("-", "_")) for k in _PIP_CHOICE_SETTINGS):
        return True
    given = os.environ.get("PIP_CONFIG_FILE")
    if given == os.devnull:
        return False  # pip then loads no configuration file at all
    home = os.path.expanduser("~")
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config")
    files = [
        os.path.join(d, "pip", "pip.conf")
        for d in os.environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":")
    ]
    files += ["/etc/pip.conf", os.path.join(home, ".pip", "pip.conf")]
    files += [
        os.path.join(xdg, "pip", "pip.conf"),
        os.path.join(interp.stdlib, "..", "..", "pip.conf"),
    ]
    files += [given] if given else []
    import configparser

    for f in files:
        if not os.path.isfile(f):
            continue
        parser = configparser.RawConfigParser()
        try:
            parser.read(f, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError):
            return True
        for section in parser.sections():
            if {k.replace("_", "-") for k in parser[section]} & _PIP_CHOICE_SETTINGS:
                return True
    return False


class _LocalWheels:
    """With ``--no-index``, the wheels in the local ``--find-links`` directories: the
    complete list of what pip could choose from, so choosing among them is what pip
    would do when nothing conflicts. ``archives``: projects that might have an sdist
    there (every name an archive's file name could mean), which pip might build."""

    def __init__(self, dirs: list[str], interp: Interpreter) -> None:
        from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

        from envstore.store.ingest import ranked_tags

        rank = {t: i for i, t in enumerate(ranked_tags(interp))}
        self.interp = interp
        # name -> (version, tag rank, build tag, path)
        self.wheels: dict[str, list[tuple[Any, int, Any, Path]]] = {}
        self.archives: set[str] = set()
        self._meta: dict[Path, Any] = {}
        for d in dirs:
            for fname in sorted(os.listdir(d)):
                if fname.endswith(".whl"):
                    try:
                        name, version, build, tags = parse_wheel_filename(fname)
                    except InvalidWheelFilename:
                        continue
                    fits = [rank[t] for t in tags if t in rank]
                    if fits:
                        item = (version, min(fits), build, Path(d) / fname)
                        self.wheels.setdefault(str(name), []).append(item)
                elif fname.lower().endswith(_ARCHIVES):
                    parts = fname.split("-")
                    for i in range(1, len(parts)):
                        self.archives.add(canonicalize_name("-".join(parts[:i])))

    @classmethod
    def of(cls, request: Request, interp: Interpreter) -> _LocalWheels | None:
        """None unless the index is off, every --find-links is a local directory and
        pip's configuration adds nothing that changes its choice."""
        dirs = list(request.find_links)
        if not request.no_index or not dirs or not all(os.path.isdir(d) for d in dirs):
            return None
        if _pip_config_changes_choice(interp):
            return None
        return cls(dirs, interp)

    def metadata(self, wheel: Path) -> Any:
        """The wheel's METADATA headers; None if it has none (ingest will say why)."""
        if wheel not in self._meta:
            import zipfile
            from email.parser import BytesHeaderParser

            found = None
            try:
                with zipfile.ZipFile(wheel) as zf:
                    for n in zf.namelist():
                        top, _, rest = n.partition("/")
                        if top.endswith(".dist-info") and rest == "METADATA":
                            found = BytesHeaderParser().parsebytes(zf.read(n))
                            break
            except (OSError, zipfile.BadZipFile):
                pass
            self._meta[wheel] = found
        return self._meta[wheel]

    def plain(self, wheel: Path, name: str, version: Any) -> bool:
        """METADATA names the project and version of the file name, with a valid
        Requires-Python if any: else pip's versions differ in what they do with it."""
        from packaging.specifiers import InvalidSpecifier, SpecifierSet
        from packaging.utils import canonicalize_name
        from packaging.version import InvalidVersion, Version

        meta = self.metadata(wheel)
        try:
            SpecifierSet(meta.get("Requires-Python") or "")
            return (
                canonicalize_name(meta.get("Name", "")) == name
                and Version(meta.get("Version", "")) == version
            )
        except (AttributeError, InvalidVersion, InvalidSpecifier):  # no METADATA: None
            return False

    def fits_python(self, wheel: Path) -> bool:
        """``Requires-Python`` admits the interpreter's release (as pip: 3.14.0rc1 is 3.14.0)."""
        from packaging.specifiers import SpecifierSet
        from packaging.version import Version

        wanted = self.metadata(wheel).get("Requires-Python")
        release = ".".join(map(str, Version(self.interp.version).release[:3]))
        return not wanted or SpecifierSet(wanted).contains(release, prereleases=True)

    def requires(self, wheel: Path) -> list[str]:
        return list(self.metadata(wheel).get_all("Requires-Dist") or [])


def _from_store(store: Store, request: Request, interp: Interpreter) -> Resolved | None:
    """Resolve from store entries and, with ``--no-index``, local ``--find-links`` wheels:
    highest version first, no backtracking. None (pip decides) wherever pip might
    choose otherwise: a conflict, a URL requirement, a pip-only option, a project with
    an sdist there, a pre-release nobody asked for by name, odd metadata."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version

    lines = _requirement_lines(request)
    if lines is None:
        return None
    try:
        queue = [(Requirement(line), "") for line in lines]
    except InvalidRequirement as exc:
        raise ResolutionError(f"invalid requirement: {exc}") from None
    local = _LocalWheels.of(request, interp)
    resolved = Resolved()
    chosen: dict[str, Version] = {}
    requires: dict[str, list[Requirement]] = {}
    pending = list(queue)
    requested_names = {canonicalize_name(r.name) for r, _ in queue}
    while pending:
        req, extra = pending.pop(0)
        if req.url:
            return None
        env = dict(interp.markers, extra=extra)
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = canonicalize_name(req.name)
        if name in chosen:
            # pip merges the specifiers; one naming a pre-release may admit a newer one
            if req.specifier.prereleases or not req.specifier.contains(
                chosen[name], prereleases=True
            ):
                return None
        else:
            if local is not None and name in local.archives:
                return None
            entries: list[tuple[Version, EntryKey]] = []
            for cand in _store_candidates(store, name, interp):
                try:
                    entries.append((Version(cand.version), cand))
                except InvalidVersion:
                    continue
            # With local directories and no index, what they hold is what pip could
            # choose from: their wheels are the candidates, and a wheel a store entry
            # was made from (same hash; one rebuilt at the same version is not) is
            # taken from the store. Otherwise the store's entries are (store first).
            candidates: list[tuple[Version, int, Any, EntryKey | Path]]
            if local is not None:
                candidates = [(v, r, b, path) for v, r, b, path in local.wheels.get(name, [])]
            else:
                candidates = [(v, 0, (), key) for v, key in entries]
            stored = {(v, key.hash): key for v, key in entries}
            # Highest version first; at a tie the wheel with the most specific tag,
            # then the highest build tag.
            ranked = sorted(candidates, key=lambda c: (c[0], -c[1], c[2]), reverse=True)
            for version, _rank, _build, found in ranked:
                # pip's pre-release rules changed between its versions: take a
                # pre-release only when the specifier names one
                if not req.specifier.contains(version) or (
                    version.is_prerelease and not req.specifier.prereleases
                ):
                    continue
                if isinstance(found, EntryKey):
                    resolved.keys[name] = found
                    meta = json.loads((store.entry_path(found) / "entry.json").read_text())
                    deps = meta["requires"]
                elif local is not None and local.plain(found, name, version):
                    if not local.fits_python(found):
                        continue
                    same = stored.get((version, _wheel_hash(store, found)))
                    if same is not None:
                        resolved.keys[name] = same
                    else:
                        resolved.wheels[name] = found
                    deps = local.requires(found)
                else:
                    return None
                try:
                    requires[name] = [Requirement(dep) for dep in deps]
                except InvalidRequirement:
                    return None  # pip reports it
                chosen[name] = version
                break
            else:
                return None
            pending += [(dep, "") for dep in requires[name]]
        for ex in req.extras:
            pending += [(dep, canonicalize_name(ex)) for dep in requires[name]]
    resolved.requested = {str(n) for n in requested_names}
    return resolved


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


def _from_pip(
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
        from envstore.store.layout import rmtree

        rmtree(work)


def resolve(
    store: Store,
    request: Request,
    interp: Interpreter,
    pip_site: Callable[[], Path],
    progress: Callable[[str], None] | None = None,
) -> Resolved:
    """Resolve ``request`` for ``interp``; see the module docstring for the order."""
    if request.locked:
        return _from_lock(store, request, interp, pip_site, progress)
    # Computed once, before anything is fetched: what is remembered under it is the
    # answer to the files as they were read.
    key = _cache_key(request, interp)
    resolved = None
    if not request.upgrade:
        resolved = _from_cache(store, key)
        if resolved is None:
            resolved = _from_store(store, request, interp)
        else:
            resolved.from_cache = True
        if resolved is not None:
            store.check_not_damaged(list(resolved.keys.values()))
    if resolved is None:
        if request.offline:
            raise ResolutionError(
                "offline: the store cannot satisfy "
                + (" ".join(request.pip_requirements()) or "the requirements")
                + " (run once without --offline to fetch them)"
            )
        resolved = _from_pip(store, request, interp, pip_site(), progress)
    resolved.cache_key = key
    return resolved


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


# -- exact wheels from a lock ------------------------------------------------------


def _entry_with_sha256(store: Store, p: LockedPackage, interp: Interpreter) -> EntryKey | None:
    """A store entry made from exactly ``p``'s wheel (same sha256), usable by ``interp``."""
    for key in _store_candidates(store, p.name, interp):
        try:
            meta = json.loads((store.entry_path(key) / "entry.json").read_text())
        except (OSError, ValueError):
            continue
        if meta.get("sha256") == p.sha256:
            return key
    return None


def _download_locked(
    store: Store,
    request: Request,
    interp: Interpreter,
    missing: list[LockedPackage],
    pip_site: Path,
    work: Path,
) -> dict[str, Path]:
    """pip downloads exactly the locked wheels (``--require-hashes``, no deps, no sdists)."""
    reqs = work / "locked.txt"
    reqs.write_text("".join(p.pip_line() + "\n" for p in missing))
    out = work / "wheels"
    run_pip(
        [
            *pip_command(interp, pip_site),
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--require-hashes",
            "--quiet",
            "--dest",
            str(out),
            *request.pip_options(),
            "-r",
            str(reqs),
        ],
        "download the locked wheels",
    )
    from envstore.store.ingest import sha256_file

    by_hash = {sha256_file(w): w for w in out.glob("*.whl")}
    store.wheels_dir.mkdir(exist_ok=True)
    found: dict[str, Path] = {}
    for p in missing:
        wheel = by_hash.get(p.sha256)
        if wheel is not None:
            kept = store.wheels_dir / wheel.name
            os.replace(wheel, kept)
            found[p.name] = kept
    return found


def _from_lock(
    store: Store,
    request: Request,
    interp: Interpreter,
    pip_site: Callable[[], Path],
    progress: Callable[[str], None] | None,
) -> Resolved:
    """Exactly the locked wheels, each checked against its sha256 before anything is
    ingested; raises ResolutionError naming every wheel that is missing, does not fit
    ``interp`` or does not match its hash."""
    from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
    from packaging.version import Version

    from envstore.store.ingest import sha256_file, supported_tags

    accepted = supported_tags(interp)
    dirs = [Path(d) for d in request.find_links if "://" not in d]
    dirs += [store.wheels_dir, *bundled_wheel_dirs(interp)]
    resolved = Resolved(requested={p.name for p in request.locked if p.requested})
    problems: list[str] = []
    missing: list[LockedPackage] = []
    for p in request.locked:
        what = f"{p.name} {p.version} ({p.wheel})"
        try:
            name, version, _, tags = parse_wheel_filename(p.wheel)
            same = canonicalize_name(name) == p.name and version == Version(p.version)
        except (InvalidWheelFilename, ValueError):
            same = False
        if not same:
            problems.append(f"{what}: not a wheel file name of {p.name} {p.version}")
            continue
        if not tags & accepted:
            problems.append(
                f"{what}: the locked wheel does not fit this Python ({interp.version},"
                f" {interp.abi_tag}, {interp.platform}); there is no wheel for this platform"
                " in the lock"
            )
            continue
        key = _entry_with_sha256(store, p, interp)
        if key is not None:
            resolved.keys[p.name] = key
            continue
        files = [d / p.wheel for d in dirs if (d / p.wheel).is_file()]
        if not files:
            missing.append(p)
            continue
        digests = {f: sha256_file(f) for f in files}
        match = next((f for f, h in digests.items() if h == p.sha256), None)
        if match is None:
            problems += [
                f"{what}: hash mismatch: {f} has sha256:{h}, the lock says sha256:{p.sha256}"
                for f, h in digests.items()
            ]
            continue
        resolved.wheels[p.name] = match
    may_download = not request.offline and (
        not request.no_index or any("://" in d for d in request.find_links)
    )
    if missing and may_download and not problems:
        if progress:
            progress(f"downloading {len(missing)} locked wheels")
        work = store.mkdtemp("lock-download")
        try:
            got = _download_locked(store, request, interp, missing, pip_site(), work)
        finally:
            from envstore.store.layout import rmtree

            rmtree(work)
        resolved.wheels.update(got)
        missing = [p for p in missing if p.name not in got]
    local = [d for d in request.find_links if "://" not in d]
    where = "the store" + (f", --find-links {' '.join(local)}" if local else "")
    if not may_download:
        where += " (the index was not searched: --no-index or --offline)"
    for p in missing:
        problems.append(f"{p.name} {p.version}: no wheel {p.wheel} with its sha256 in {where}")
    if problems:
        raise ResolutionError(
            "cannot create the environment from the lock; nothing was installed:\n  - "
            + "\n  - ".join(problems)
        )
    store.check_not_damaged(list(resolved.keys.values()))
    return resolved
