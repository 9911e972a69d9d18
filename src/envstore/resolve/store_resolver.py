"""Resolving from the store alone (and, with ``--no-index``, from ``--find-links``
directories, choosing as pip would): no pip process on a warm create.
"""

from __future__ import annotations

import os
from pathlib import Path

from envstore.errors import ResolutionError
from envstore.model.interpreter import Interpreter
from envstore.model.keys import PURE, EntryKey
from envstore.resolve.cache import built_entry, wheel_hash
from envstore.resolve.forms import classify
from envstore.resolve.freshness import exact_pin
from envstore.resolve.reqfiles import ARCHIVES, requirement_lines
from envstore.resolve.request import Request, Resolved
from envstore.store.layout import Store

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from typing import Any


def store_candidates(store: Store, name: str, interp: Interpreter) -> list[EntryKey]:
    found: list[EntryKey] = []
    for abi in (PURE, interp.soabi):
        for n in store.entry_versions(abi, name):  # here, then in upstreams
            version, _, digest = n.rpartition("-")
            key = EntryKey(abi, name, version, digest)
            if store.has_entry(key):
                found.append(key)
    return found


def entry_with_sha256(store: Store, name: str, sha256: str, interp: Interpreter) -> EntryKey | None:
    """A store entry of ``name`` made from exactly the wheel with ``sha256``, usable by
    ``interp``: that wheel need not be fetched again."""
    for key in store_candidates(store, name, interp):
        record = store.entry_record_or_none(key)
        if record is not None and record.sha256 == sha256:
            return key
    return None


# pip settings that change what it may choose from a directory of wheels.
_PIP_CHOICE_SETTINGS = {"find-links", "pre", "constraint", "no-binary", "only-binary"}


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

        from envstore.python.tags import ranked_tags

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
                elif fname.lower().endswith(ARCHIVES):
                    parts = fname.split("-")
                    for i in range(1, len(parts)):
                        self.archives.add(canonicalize_name("-".join(parts[:i])))

    @classmethod
    def of(cls, request: Request, interp: Interpreter) -> _LocalWheels | None:
        """None unless the index is off, every --find-links is a local directory and
        pip's configuration adds nothing that changes its choice."""
        dirs = list(request.sources.find_links)
        if not request.sources.no_index or not dirs or not all(os.path.isdir(d) for d in dirs):
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


def from_store(store: Store, request: Request, interp: Interpreter) -> Resolved | None:
    """Resolve from store entries and, with ``--no-index``, local ``--find-links`` wheels:
    highest version first, no backtracking. None (pip decides) wherever pip might
    choose otherwise: a conflict, a URL requirement, a pip-only option, a project with
    an sdist there, a pre-release nobody asked for by name, odd metadata.

    ``pinned`` on the answer: every package chosen had a requirement that admits one
    version only (``==1.2.3``), or is a local project's unchanged build: an index could
    not have changed the choice."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import InvalidVersion, Version

    lines = requirement_lines(request)
    if lines is None:
        return None
    # A local project or archive built before and unchanged since (its stamp) is its
    # entry; any other place (a URL, a path not built yet) is pip's to build or fetch.
    pinned: dict[str, EntryKey] = {}
    for i, line in enumerate(lines):
        form = classify(line)
        if form.kind == "name":
            continue
        key = built_entry(store, form, interp) if ";" not in line else None
        if key is None:
            return None
        pinned[key.name] = key
        lines[i] = f"{key.name}{form.extras}"
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
    exact = set(pinned)  # names some applying requirement pins to one version
    while pending:
        req, extra = pending.pop(0)
        if req.url:
            return None
        env = dict(interp.markers, extra=extra)
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = canonicalize_name(req.name)
        if exact_pin(req.specifier):
            exact.add(name)
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
            for cand in store_candidates(store, name, interp):
                try:
                    entries.append((Version(cand.version), cand))
                except InvalidVersion:
                    continue
            # With local directories and no index, what they hold is what pip could
            # choose from: their wheels are the candidates, and a wheel a store entry
            # was made from (same hash; one rebuilt at the same version is not) is
            # taken from the store. Otherwise the store's entries are (store first).
            candidates: list[tuple[Version, int, Any, EntryKey | Path]]
            if name in pinned:
                candidates = [(Version(pinned[name].version), 0, (), pinned[name])]
            elif local is not None:
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
                if not req.specifier.contains(version, prereleases=True) or (
                    version.is_prerelease and not (req.specifier.prereleases or request.pre)
                ):
                    continue
                if isinstance(found, EntryKey):
                    resolved.keys[name] = found
                    deps = store.entry_record(found).requires
                elif local is not None and local.plain(found, name, version):
                    if not local.fits_python(found):
                        continue
                    same = stored.get((version, wheel_hash(store, found)))
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
    resolved.pinned = all(n in exact for n in chosen)
    return resolved
