"""Repairing an environment after its base interpreter changed: ``envstore relink``.

An environment is its manifest, so a repair rebuilds the few files that depend
on the interpreter instead of reinstalling anything:

* **Same ABI** (a patch upgrade, a moved install, another install of the same
  minor version): rewrite ``bin/python*``, ``pyvenv.cfg``, the activation
  scripts and the manifest. No package work, no network.
* **Another ABI** (a minor upgrade, or ``--python`` names one): pure entries are
  reused (bytecode added for the new interpreter); ABI-tagged packages are
  re-resolved at the same versions (the store, ``<store>/wheels``,
  ``--find-links``, then the index); a view is made for the new cache tag,
  ``site-packages`` moves to the new ``lib/python3.Y``, scripts are regenerated.

Entries missing from the store are rebuilt the same way, and a moved env gets
scripts and activation for its new path and is registered there (a copy is
registered beside its original; a move drops the old place's registration).
Store work comes first and only adds: if a package has no compatible wheel,
the env has not been touched. The env is then changed by a few renames and
replaces, undone in reverse order if one fails, and re-registered so the
database references follow.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envstore._crash import crash_point
from envstore.env.venv import (
    LAUNCHER,
    PTH_NAME,
    check_env_dirs,
    launcher_intact,
    pth_line,
    read_pyvenv_cfg,
    script_names,
    venv_home,
    write_activation_scripts,
    write_data_links,
    write_file,
    write_interpreter_links,
    write_scripts,
    write_site,
)
from envstore.errors import EnvError, InterpreterError, ResolutionError, StoreError
from envstore.model.interpreter import Interpreter
from envstore.model.keys import PURE, EntryKey
from envstore.model.manifest import MANIFEST_NAME, Manifest, Package
from envstore.python.interpreters import (
    find_interpreter,
    find_same_abi,
    pinned,
    recorded_interpreter,
    recorded_request,
)
from envstore.resolve.resolver import Request
from envstore.store.layout import Store, rmtree
from envstore.store.views import read_view

__all__ = [
    "Choice",
    "RelinkResult",
    "abi_tags_of",
    "choose_interpreter",
    "relink_env",
    "stale_packages",
]

Progress = Callable[[str], None]

_INTERPRETER_LINK = re.compile(r"^python(\d+(\.\d+t?)?)?$")
_ACTIVATION = {"activate", "activate.fish", "activate.csh", "activate.nu", "Activate.ps1"}


@dataclass(frozen=True)
class Choice:
    """The interpreter a relink would use, and why (``interp`` None: nothing usable)."""

    interp: Interpreter | None
    why: str


@dataclass
class RelinkResult:
    env: str
    old: Interpreter
    new: Interpreter
    kind: str  # "unchanged", "same-abi" or "abi-change"
    why: str
    reused: int = 0
    rebuilt: list[str] = field(default_factory=list)  # "name version" of new entries
    from_store: list[str] = field(default_factory=list)  # "name version" already stored
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def choose_interpreter(
    manifest: Manifest, db: sqlite3.Connection | None, python: str | None = None
) -> Choice:
    """The interpreter to relink ``manifest``'s env to.

    ``python`` wins. Otherwise, in order: the recorded path if it still has the
    env's ABI; what the env was created with (``-p``) if it now names an
    interpreter of that ABI; any interpreter of that ABI on this machine; what
    ``-p`` names now, if it is another ABI (``python3`` moved to 3.12).
    """
    old = manifest.python
    if python:
        return Choice(find_interpreter(python, db), f"--python {python}")
    try:
        current = recorded_interpreter(old.path, old.requested, db)
    except InterpreterError:
        current = None
    if current is not None and current.soabi == old.soabi:
        pin = pinned(current)  # an env recorded before plain python3 links were pinned
        if pin.path != current.path:
            return Choice(pin, f"pins {old.path} to {pin.path}, the same file by its minor")
        return Choice(current, f"the recorded {old.path} still has the ABI {old.soabi}")
    asked = old.requested or "the default Python"
    try:
        again: Interpreter | None = recorded_request(old.requested, db)
    except InterpreterError:
        again = None
    if again is not None and again.soabi == old.soabi:
        return Choice(again, f"{asked} now names {again.path}, with the same ABI")
    same = find_same_abi(old.soabi, db)
    if same is not None:
        return Choice(
            same.replace(requested=old.requested),
            f"{same.path} has the same ABI ({old.soabi})",
        )
    if again is not None:
        return Choice(
            again,
            f"no Python with the ABI {old.soabi} is left; {asked} now names"
            f" Python {again.version} ({again.path})",
        )
    return Choice(None, f"no Python {old.minor} with the ABI {old.soabi} was found")


# -- packages -------------------------------------------------------------------


def _entry_meta(store: Store, key: EntryKey) -> dict[str, object] | None:
    try:
        meta: dict[str, object] = json.loads((store.entry_path(key) / "entry.json").read_text())
    except (OSError, ValueError):
        return None
    return meta


def _fits(tags: object, accepted: set[str]) -> bool:
    return isinstance(tags, list) and any(str(t) in accepted for t in tags)


def stale_packages(
    store: Store, manifest: Manifest, new: Interpreter, accepted: set[str] | None = None
) -> dict[str, str]:
    """The packages of ``manifest`` that ``new`` cannot use as they are -> why. A reason
    that starts with ``VERSION_CHANGE`` means no wheel of the same version can run there."""
    from envstore.resolve.fit import misfit

    stale: dict[str, str] = {}
    for p in manifest.packages:
        meta = _entry_meta(store, p.key)
        if meta is None:
            stale[p.name] = "its store entry is missing"
        elif p.key.abi != PURE and p.key.abi != new.soabi:
            stale[p.name] = f"it is built for {p.key.abi}"
        elif accepted is not None and not _fits(meta.get("tags"), accepted):
            stale[p.name] = f"its wheel tags do not fit Python {new.version}"
        else:
            why = misfit(store, p.name, p.key, new)
            if why is not None:
                stale[p.name] = f"{VERSION_CHANGE}{why}"
    return stale


# Marks a stale reason that no wheel of the package's version can cure.
VERSION_CHANGE = "(another version needed) "


class _Sources(Request):
    """Where relink may look for wheels: create's options, plus what relink needs to know."""

    untrusted = ""  # sources a manifest names that the store did not register with it

    def local_dirs(self, store: Store) -> list[Path]:
        return [store.wheels_dir, *(Path(d) for d in self.find_links if "://" not in d)]

    def mayrun_pip(self) -> bool:
        if self.offline:
            return False
        return not self.no_index or any("://" in d for d in self.find_links)

    def searched(self) -> str:
        where = "the store, its wheels/"
        if self.find_links:
            where += ", --find-links " + " ".join(self.find_links)
        if self.untrusted:
            return where + (
                f" (not the manifest's own sources, {self.untrusted}: this store did not"
                " register them with it; say where to look with -f DIR, --index-url URL or"
                " --no-index)"
            )
        if not self.mayrun_pip():
            why = "--offline" if self.offline else "--no-index"
            return where + f" (the index was not searched: {why})"
        return where + (f" and {self.index_url}" if self.index_url else " and the index")


def _same_version(a: str, b: str) -> bool:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def _from_store(store: Store, p: Package, new: Interpreter, accepted: set[str]) -> EntryKey | None:
    """An entry of the same name and version that ``new`` can use, the same wheel first."""
    found: list[EntryKey] = []
    for key in _entries_named(store, p.name, new):
        meta = _entry_meta(store, key)
        if meta and _same_version(key.version, p.version) and _fits(meta.get("tags"), accepted):
            found.append(key)
    found.sort(key=lambda k: k.hash != p.key.hash)
    return found[0] if found else None


def _wheel_rank(path: Path, p: Package, new: Interpreter, accepted: set[str]) -> int | None:
    """How well the wheel file fits (lower is better); None if it is not this package
    at this version or does not fit ``new``."""
    from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

    try:
        name, version, _, tags = parse_wheel_filename(path.name)
    except InvalidWheelFilename:
        return None
    if canonicalize_name(name) != p.name or not _same_version(str(version), p.version):
        return None
    fitting = [t for t in tags if str(t) in accepted]
    if not fitting:
        return None
    return min(0 if t.abi == new.abi_tag else 1 if t.abi == "abi3" else 2 for t in fitting)


def _from_files(
    store: Store, p: Package, new: Interpreter, accepted: set[str], sources: _Sources
) -> Path | None:
    files: list[Path] = []
    meta = _entry_meta(store, p.key)
    if meta is not None and isinstance(meta.get("origin"), str):
        files.append(Path(str(meta["origin"])))
    for d in sources.local_dirs(store):
        try:
            files += [d / n for n in sorted(os.listdir(d)) if n.endswith(".whl")]
        except OSError:
            continue
    ranked = []
    for f in files:
        rank = _wheel_rank(f, p, new, accepted)
        if rank is not None and f.is_file():
            ranked.append((rank, f.name != p.wheel, str(f), f))
    return min(ranked)[3] if ranked else None


def _download(
    store: Store,
    p: Package,
    new: Interpreter,
    sources: _Sources,
    pip_site: Path,
    version: str | None = None,
) -> Path:
    """A wheel of exactly ``p``'s version for ``new`` (``version=""``: the newest pip
    finds that runs there), from the index (pip, no sdists)."""
    from envstore.resolve.resolver import pip_command, run_pip

    wanted = f"{p.name}=={p.version}" if version is None else p.name + version
    work = store.mkdtemp("relink-download")
    try:
        run_pip(
            [
                *pip_command(new, pip_site),
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--quiet",
                "--dest",
                str(work),
                *sources.pip_options(),
                wanted,
            ],
            f"download a wheel of {wanted}",
        )
        wheels = sorted(work.glob("*.whl"))
        if not wheels:
            raise ResolutionError(f"pip downloaded no wheel of {p.name} {p.version}")
        store.wheels_dir.mkdir(exist_ok=True)
        kept = store.wheels_dir / wheels[0].name
        os.replace(wheels[0], kept)
        return kept
    finally:
        rmtree(work)


def _pip_site(
    store: Store, manifest: Manifest, new: Interpreter, progress: Progress | None
) -> Path:
    for p in manifest.packages:
        if p.name == "pip" and p.key.abi == PURE and _entry_meta(store, p.key) is not None:
            return store.entry_path(p.key) / "site"
    from envstore.env.lifecycle import _pip_key

    return store.entry_path(_pip_key(store, new, progress)) / "site"


def _resolve_packages(
    store: Store,
    manifest: Manifest,
    new: Interpreter,
    stale: dict[str, str],
    sources: _Sources,
    progress: Progress | None,
) -> tuple[dict[str, EntryKey], list[str]]:
    """Every package's entry for ``new`` (name -> key) and the "name version" rebuilt.

    Raises ResolutionError listing every package that has no usable wheel.
    """
    from envstore.store.ingest import ensure_compiled, ingest_wheels, supported_tags

    accepted = {str(t) for t in supported_tags(new)}
    keys = {p.name: p.key for p in manifest.packages if p.name not in stale}
    wheels: dict[str, Path] = {}
    failures: list[str] = []
    for p in manifest.packages:
        if p.name not in stale:
            continue
        if stale[p.name].startswith(VERSION_CHANGE):
            found = _other_version(store, manifest, p, new, accepted, sources, progress)
            if isinstance(found, str):
                failures.append(f"{p.name} {p.version} ({stale[p.name]}): {found}")
            else:
                keys[p.name] = found
            continue
        key = _from_store(store, p, new, accepted)
        if key is not None:
            keys[p.name] = key
            continue
        wheel = _from_files(store, p, new, accepted, sources)
        if wheel is None and sources.mayrun_pip():
            if progress:
                progress(f"downloading {p.name} {p.version} for Python {new.version}")
            try:
                wheel = _download(store, p, new, sources, _pip_site(store, manifest, new, progress))
            except ResolutionError as exc:
                failures.append(f"{p.name} {p.version} ({stale[p.name]}): {exc}")
                continue
        if wheel is None:
            failures.append(
                f"{p.name} {p.version} ({stale[p.name]}): no wheel for"
                f" {new.abi_tag}/{new.platform} in {sources.searched()}"
            )
            continue
        wheels[p.name] = wheel
    if failures:
        recreate = ["envstore", "create", manifest.env, "--clear", "-p", new.path]
        recreate += sources.pip_options()  # those in use: never a crafted manifest's
        raise ResolutionError(
            f"cannot relink {manifest.env} to Python {new.version} ({new.soabi});"
            " nothing was changed. No usable wheel at the same version for:\n  - "
            + "\n  - ".join(failures)
            + "\nPass --find-links DIR with wheels for this Python, or recreate the env"
            " with versions that support it: " + shlex.join(recreate + manifest.requirements)
        )
    if wheels:
        ingested = ingest_wheels(store, list(wheels.values()), new, progress)
        for name, wheel in wheels.items():
            keys[name] = ingested[wheel]
    ensure_compiled(store, [k for k in keys.values() if k.abi == PURE], new)
    was = {p.name: p.version for p in manifest.packages}
    changed = sorted(
        f"{n} {k.version}" if k.version == was[n] else f"{n} {was[n]} -> {k.version}"
        for n, k in keys.items()
        if n in stale
    )
    return keys, changed


def _other_version(
    store: Store,
    manifest: Manifest,
    p: Package,
    new: Interpreter,
    accepted: set[str],
    sources: _Sources,
    progress: Progress | None,
) -> EntryKey | str:
    """The newest version of ``p`` that runs on ``new`` (its version cannot) and that
    the env allows: what the user's requirements (files included) and the env's other
    packages ask of it, no pre-release unless it was one, and its own requirements met
    by the env. For pip the target's own bundled pip first; then the store; then pip
    (which honours Requires-Python) with those bounds. A string says why there is none."""
    from envstore.resolve.fit import misfit, unmet, wanted

    packages = {q.name: q.key for q in manifest.packages}
    spec = wanted(store, manifest.requirements, packages, p.name, new)
    pre = _version(p.version).is_prerelease

    def why_not(key: EntryKey) -> str | None:
        unfit = misfit(store, p.name, key, new)
        if unfit:
            return unfit
        version = _version(key.version)
        if version.is_prerelease and not pre:
            return f"{key.version} is a pre-release"
        if not spec.contains(version, prereleases=True):
            return f"the env asks for {p.name}{spec}"
        return unmet(store, key, {**packages, p.name: key}, new)

    if p.name == "pip":
        from envstore.env.lifecycle import _pip_key

        try:
            key = _pip_key(store, new, progress)
        except ResolutionError:
            pass
        else:
            if why_not(key) is None:
                return key

    found, last_why = [], f"the env asks for {p.name}{spec}" if spec else ""
    for key in _entries_named(store, p.name, new):
        meta = _entry_meta(store, key)
        if meta and _fits(meta.get("tags"), accepted):
            why = why_not(key)
            if why is None:
                found.append(key)
            else:
                last_why = why
    if found:
        return max(found, key=lambda k: _version(k.version))
    if sources.offline or (sources.no_index and not sources.find_links):
        return f"no version that runs there in {sources.searched()}" + (
            f" ({last_why})" if last_why else ""
        )
    if progress:  # pip chooses (from --find-links only, with --no-index): it reads
        progress(f"finding a {p.name} for Python {new.version}")  # Requires-Python
    from envstore.store.ingest import ingest_wheels

    site = _pip_site(store, manifest, new, progress)
    bounds, why = str(spec), ""
    for _ in range(5):  # pip knows nothing of the env's other packages: exclude, retry
        try:
            wheel = _download(store, p, new, sources, site, bounds)
        except ResolutionError as exc:
            return str(exc) + (f" (earlier: {why})" if why else "")
        key = ingest_wheels(store, [wheel], new, progress)[wheel]
        found_why = why_not(key)
        if found_why is None:
            return key
        why = f"{wheel.name}: {found_why}"
        bounds = ",".join(b for b in (bounds, f"!={key.version}") if b)
    return why


def _version(text: str) -> Any:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text)
    except InvalidVersion:
        return Version("0")


def _dependency_notes(
    final: Path, store: Store, keys: dict[str, EntryKey], old: Interpreter, new: Interpreter
) -> list[str]:
    """Dependencies that become required on ``new`` (markers) and are not in the env."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    notes = []
    for name, key in sorted(keys.items()):
        meta = _entry_meta(store, key) or {}
        requires = meta.get("requires")
        for text in requires if isinstance(requires, list) else []:
            try:
                req = Requirement(str(text))
            except InvalidRequirement:
                continue
            if req.marker is None or canonicalize_name(req.name) in keys:
                continue
            if req.marker.evaluate(dict(new.markers, extra="")) and not req.marker.evaluate(
                dict(old.markers, extra="")
            ):
                install = shlex.join(
                    [str(final / "bin" / "python"), "-m", "pip", "install", str(req)]
                )
                notes.append(
                    f"{name} needs {req} on Python {new.minor}, which this env does not have;"
                    f" install it: {install}"
                )
    return notes


def abi_tags_of(site: Path) -> list[tuple[str, str, set[str]]]:
    """(name, version, ABI tags of its wheel) of each distribution pip installed into
    ``site`` (an env's own site-packages)."""
    found = []
    for info in sorted(site.glob("*.dist-info")):
        try:
            text = (info / "WHEEL").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        tags = [ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("Tag:")]
        abis = {t.split("-")[1] for t in tags if t.count("-") == 2}
        name, _, version = info.name[: -len(".dist-info")].partition("-")
        found.append((name, version, abis))
    return found


def _foreign_abi_dists(site: Path, new: Interpreter) -> list[str]:
    """Distributions pip installed into site-packages for another Python's ABI (as
    doctor's pip-installed-abi judges them: abi3 runs on any)."""
    return [
        f"{n} {v}"
        for n, v, abis in abi_tags_of(site)
        if abis and not abis & {new.abi_tag, "abi3", "none"}
    ]


# -- changing the env -----------------------------------------------------------


class _Journal:
    """Undo steps for the changes made to an env, run in reverse if a later one fails."""

    def __init__(self) -> None:
        self._undo: list[Callable[[], None]] = []

    def rename(self, src: Path, dst: Path) -> None:
        os.rename(src, dst)
        self._undo.append(lambda: os.rename(dst, src))

    def replace(self, tmp: Path, dst: Path) -> None:
        """``os.replace(tmp, dst)``, keeping the old ``dst`` to put back."""
        old = dst.read_bytes() if dst.is_file() else None
        os.replace(tmp, dst)

        def undo() -> None:
            if old is None:
                dst.unlink()
            else:
                dst.write_bytes(old)

        self._undo.append(undo)

    def snapshot_pth(self, site: Path) -> None:
        before = {p.name: p.read_bytes() for p in site.glob("*.pth")}

        def undo() -> None:
            for p in site.glob("*.pth"):
                if p.name not in before:
                    p.unlink()
            for name, data in before.items():
                (site / name).write_bytes(data)

        self._undo.append(undo)

    def rollback(self) -> None:
        for step in reversed(self._undo):
            try:
                step()
            except OSError:
                pass


def _copy_user_bin(src: Path, dst: Path, drop: set[str]) -> None:
    """Copy ``bin/`` minus what envstore regenerates (the user's own scripts stay)."""
    import shutil

    dst.mkdir()
    for entry in os.scandir(src):
        if entry.name in drop:
            continue
        target = dst / entry.name
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), target)
        elif entry.is_dir():
            shutil.copytree(entry.path, target, symlinks=True)
        else:
            shutil.copy2(entry.path, target)


def _prune_store_links(top: Path, entries_dir: Path, keep: set[str]) -> None:
    """Remove symlinks under ``top`` into store entries that are not in ``keep``."""
    prefix = str(entries_dir) + os.sep
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                continue
            target = os.readlink(path)
            if target.startswith(prefix):
                key = "/".join(target[len(prefix) :].split(os.sep)[:3])
                if key not in keep:
                    os.unlink(path)


def _view_list(view: dict[str, object] | None, name: str) -> list[Any]:
    value = (view or {}).get(name)
    return list(value) if isinstance(value, list) else []


def _prompt(cfg: dict[str, str]) -> str | None:
    value = cfg.get("prompt")
    if not value:
        return None
    if value[0] in "'\"":
        import ast

        try:
            return str(ast.literal_eval(value))
        except (ValueError, SyntaxError):
            return value
    return value


def _apply(
    final: Path,
    store: Store,
    old_manifest: Manifest,
    new_manifest: Manifest,
    view: dict[str, object],
    regenerate_scripts: bool,
) -> None:
    old, new = old_manifest.python, new_manifest.python
    cfg = read_pyvenv_cfg(final)
    command = cfg.get("command") or shlex.join(["envstore", "create", str(final)])
    prompt = _prompt(cfg)
    try:
        old_view: dict[str, object] | None = read_view(store.view_path(old_manifest.view))
    except (OSError, ValueError, StoreError):
        old_view = None
    old_site, new_site = final / old.purelib, final / new.purelib
    check_env_dirs(final, old.purelib, new.purelib)
    data_tops = {"include"}
    for d in _view_list(old_view, "data") + _view_list(view, "data"):
        data_tops.update(os.listdir(d) if os.path.isdir(d) else [])
    stage = final / f".envstore-relink-{os.getpid()}"
    rmtree(stage)
    stage.mkdir()
    from envstore.store.registry import register_env

    # Until the manifest names the new objects, the env may use either set (a
    # relink killed midway): reference both, and gc keeps both.
    old_objects = [str(k) for k in old_manifest.keys] + [f"view/{old_manifest.view}"]
    register_env(store, new_manifest, final, also=old_objects)
    journal = _Journal()
    had_bin = (final / "bin").is_dir()  # a link to a directory counts, as before
    regenerate_scripts = regenerate_scripts or not had_bin  # bin/ deleted: make it anew
    try:
        # Build the new bin/ beside the old one, then swap the two.
        if had_bin:
            drop = {n for n in os.listdir(final / "bin") if _INTERPRETER_LINK.match(n)}
            drop |= _ACTIVATION
            if regenerate_scripts and old_view is not None:
                drop |= set(script_names(old_view, old)) | {LAUNCHER}
            _copy_user_bin(final / "bin", stage / "bin", drop)
        else:
            (stage / "bin").mkdir()
        write_interpreter_links(stage, new, command, prompt=prompt)
        write_activation_scripts(stage, new, final, prompt or final.name)
        if regenerate_scripts:
            write_scripts(stage, final, view, new)

        if old_site != new_site:
            if old_site.is_dir():
                new_site.parent.mkdir(parents=True, exist_ok=True)
                journal.rename(old_site, new_site)
            else:
                new_site.mkdir(parents=True, exist_ok=True)
        new_site.mkdir(parents=True, exist_ok=True)
        journal.snapshot_pth(new_site)
        owned = {str(item[0]) for item in _view_list(old_view, "pth")}
        for name in owned - {PTH_NAME}:
            (new_site / name).unlink(missing_ok=True)
        write_site(new_site, store.view_path(new_manifest.view) / "site", view)

        if os.path.lexists(final / "bin"):  # also a dangling link or a file: aside
            journal.rename(final / "bin", stage / "bin.old")
        journal.rename(stage / "bin", final / "bin")
        journal.replace(stage / "pyvenv.cfg", final / "pyvenv.cfg")

        if old.minor != new.minor:
            old_inc = final / "include" / "site" / f"python{old.minor}"
            new_inc = final / "include" / "site" / f"python{new.minor}"
            if old_inc.is_dir() and not new_inc.exists():
                journal.rename(old_inc, new_inc)
        keep = {str(k) for k in new_manifest.keys}
        for top in sorted(data_tops):
            if (final / top).is_dir() and not (final / top).is_symlink():
                _prune_store_links(final / top, store.entries_dir, keep)
        write_data_links(final, view, new)
        crash_point("relink-switched")

        tmp = final / f".{MANIFEST_NAME}.{os.getpid()}.tmp"
        text = new_manifest.dumps()
        write_file(str(tmp), text.encode())  # never through a link planted there
        journal.replace(tmp, final / MANIFEST_NAME)
        register_env(store, new_manifest, final, text)
    except BaseException:
        journal.rollback()
        try:
            register_env(store, old_manifest, final)  # as it was, with the old manifest
        except Exception:
            pass  # the union registered above stays: gc keeps more, never less
        raise
    finally:
        rmtree(stage)
    if old_site != new_site:
        for d in (old_site.parent, final / "include" / "site" / f"python{old.minor}"):
            try:
                d.rmdir()  # only if empty
            except OSError:
                pass


def _stored_keys(store: Store, manifest: Manifest, new: Interpreter) -> list[EntryKey]:
    """The entries of the env's package names the store holds now, for ``new``."""
    return [k for p in manifest.packages for k in _entries_named(store, p.name, new)]


def _entries_named(store: Store, name: str, new: Interpreter) -> list[EntryKey]:
    """Every entry of the project ``name`` that ``new`` may see: its ABI's, and pure."""
    found = []
    for abi in (new.soabi, PURE):
        try:
            names = os.listdir(store.entries_dir / abi / name)
        except OSError:
            continue
        for n in sorted(names):
            try:
                found.append(EntryKey.parse(f"{abi}/{name}/{n}"))
            except ValueError:
                continue
    return found


def _registered_as_is(store: Store, manifest: Manifest, final: Path) -> bool:
    """Whether ``store`` registered this env's manifest with exactly the text it has now."""
    import xxhash

    try:
        text = (final / MANIFEST_NAME).read_text()
        row = (
            store.db()
            .execute("SELECT manifest_digest FROM envs WHERE path = ?", (manifest.env,))
            .fetchone()
        )
    except (OSError, UnicodeDecodeError):
        return False
    return row is not None and row[0] == xxhash.xxh3_64_hexdigest(text.encode())


def _unchanged(final: Path, store: Store, manifest: Manifest, new: Interpreter) -> bool:
    """Whether the env already is exactly what a relink to ``new`` would write."""
    from envstore.store.registry import root_name

    old = manifest.python
    # Equal interpreters, markers aside: platform_release changes with every kernel
    # update, which is no reason to rewrite an env doctor calls ok.
    if new.replace(requested="") != old.replace(requested=""):
        return False
    cfg = read_pyvenv_cfg(final)
    site = final / old.purelib
    try:
        pth = (site / PTH_NAME).read_bytes().strip()
        link = os.readlink(final / "bin" / "python")
        root = os.readlink(store.roots_dir / root_name(final))
    except OSError:
        return False
    return (
        manifest.env == str(final)
        and link == new.path
        and cfg.get("home") == venv_home(new)
        and cfg.get("version") == new.version
        and pth == pth_line(store.view_path(manifest.view) / "site")
        and (store.view_path(manifest.view) / "view.json").exists()
        and root == str(final / MANIFEST_NAME)
        and _launcher_ok(final, store.view_path(manifest.view), new)
    )


def _launcher_ok(final: Path, view_path: Path, new: Interpreter) -> bool:
    try:
        return launcher_intact(final, read_view(view_path), new)
    except (OSError, ValueError, StoreError):
        return False


def relink_env(
    path: str | os.PathLike[str],
    *,
    python: str | None = None,
    store: Store | str | os.PathLike[str] | None = None,
    find_links: Sequence[str] = (),
    index_url: str | None = None,
    no_index: bool = False,
    offline: bool = False,
    progress: Progress | None = None,
) -> RelinkResult:
    """Point the env at ``path`` to a working interpreter (see the module docstring)."""
    final = Path(os.path.abspath(path))
    if not (final / MANIFEST_NAME).exists():
        raise EnvError(f"{final} is not an envstore environment (no {MANIFEST_NAME})")
    # One relink of an env at a time: both would swap bin/ and site-packages (and
    # create --clear and sync take turns with it). The lock is the env directory
    # itself (a lock file per env would pile up).
    from envstore.store.locks import env_lock

    with env_lock(final):
        return _relink_locked(
            final, python, store, find_links, index_url, no_index, offline, progress
        )


def _relink_locked(
    final: Path,
    python: str | None,
    store: Store | str | os.PathLike[str] | None,
    find_links: Sequence[str],
    index_url: str | None,
    no_index: bool,
    offline: bool,
    progress: Progress | None,
) -> RelinkResult:
    started = time.monotonic()
    untrusted = ""
    manifest = Manifest.load(final)
    from envstore.model.manifest import same_env

    final = Path(same_env(manifest, final))
    st = store if isinstance(store, Store) else Store(store or manifest.store)
    st.ensure(named_by=None if store else str(final / MANIFEST_NAME))
    links = tuple(os.path.abspath(d) if "://" not in d else d for d in find_links)
    if not (links or index_url or no_index):
        # None given: where the env's wheels came from, if this store registered the
        # manifest as it is (a crafted one never chooses where relink looks).
        recorded = manifest.sources
        if _registered_as_is(st, manifest, final):
            links, index_url = recorded.find_links, recorded.index_url
            no_index = recorded.no_index
        elif recorded.options():  # not trusted, and no reason to think the index is fine
            untrusted = shlex.join(recorded.options())
            offline = no_index = True  # the store and its wheels/ only
    sources = _Sources(find_links=links, index_url=index_url, no_index=no_index, offline=offline)
    sources.untrusted = untrusted
    old = manifest.python
    choice = choose_interpreter(manifest, st.db(), python)
    if choice.interp is None:
        from envstore.python.interpreters import installed

        found = sorted(installed(st.db()), key=lambda i: [int(x) for x in i.minor.split(".")])
        move = (
            f", or move the env to Python {found[-1].version}: "
            + shlex.join(["envstore", "relink", str(final), "--python", found[-1].path])
            if found
            else ""
        )
        raise InterpreterError(
            f"cannot relink {final}: {choice.why}. Install Python {old.minor} again and rerun"
            f" 'envstore relink {final}'{move}"
        )
    new = choice.interp
    # What the env was made with (-p python3) stays its request, also after --python
    # names the interpreter for this repair: the next relink follows python3 again.
    new = new.replace(requested=old.requested)
    same_abi = new.soabi == old.soabi and new.cache_tag == old.cache_tag
    with st.gc_lock(shared=True):
        if same_abi:
            stale = stale_packages(st, manifest, new)
            if not stale and _unchanged(final, st, manifest, new):
                return RelinkResult(
                    str(final), old, new, "unchanged", choice.why, len(manifest.packages)
                )
        else:
            from envstore.store.ingest import supported_tags

            accepted = {str(t) for t in supported_tags(new)}
            stale = stale_packages(st, manifest, new, accepted)
        known = set(_stored_keys(st, manifest, new))
        keys, rebuilt = (
            _resolve_packages(st, manifest, new, stale, sources, progress)
            if stale or not same_abi
            else ({p.name: p.key for p in manifest.packages}, [])
        )
        from envstore.store.views import ensure_view

        vkey, vpath = ensure_view(st, list(keys.values()), new)
        view = read_view(vpath)
        wheels: dict[str, str] = view.get("wheels", {})  # type: ignore[assignment]
        old_packages = {p.name: p for p in manifest.packages}
        new_manifest = Manifest(
            env=str(final),
            store=str(st.root),
            python=new,
            view=vkey,
            packages=[
                Package(name, k.version, k, wheels.get(str(k), ""), old_packages[name].requested)
                for name, k in sorted(keys.items())
            ],
            requirements=manifest.requirements,
            created=manifest.created,
            sources=manifest.sources,
        )
        moved = manifest.env != str(final)
        regenerate = (
            not same_abi or vkey != manifest.view or moved or not launcher_intact(final, view, new)
        )
        _apply(final, st, manifest, new_manifest, view, regenerate)
        if moved and not os.path.exists(os.path.join(manifest.env, MANIFEST_NAME)):
            # Moved, not copied: the old place's registration follows the env here.
            from envstore.store.registry import unregister_env

            unregister_env(st, Path(manifest.env))
    # Which of the replaced packages were in the store already, and which were built
    # from wheels just now (relink used to call them all "rebuilt").
    stored_before = {str(k) for k in keys.values() if k in known}
    result = RelinkResult(
        str(final),
        old,
        new,
        "same-abi" if same_abi else "abi-change",
        choice.why,
        reused=len(keys) - len(rebuilt),
        rebuilt=[r for r in rebuilt if str(keys[r.split()[0]]) not in stored_before],
        from_store=[r for r in rebuilt if str(keys[r.split()[0]]) in stored_before],
    )
    if not same_abi:
        result.notes += _dependency_notes(final, st, keys, old, new)
        foreign = _foreign_abi_dists(final / new.purelib, new)
        if foreign:
            result.notes.append(
                "pip installed these into site-packages for the old Python; reinstall them: "
                + ", ".join(foreign)
            )
    result.seconds = time.monotonic() - started
    return result
