"""The checks ``envstore doctor`` runs on an env; each returns its problems with
their severity and the command that fixes them.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from envstore.env.site import pth_line
from envstore.errors import InterpreterError, StoreError
from envstore.model.interpreter import Interpreter
from envstore.model.manifest import MANIFEST_NAME, Manifest
from envstore.python.interpreters import FactsCache, installed, recorded_interpreter
from envstore.python.links import pinned
from envstore.store.fs import on_shared_storage
from envstore.store.layout import Store

BROKEN = "broken"


WARNING = "warning"


NOTE = "note"


@dataclass(frozen=True)
class Problem:
    code: str  # e.g. "base-missing", "base-abi", "base-patch", "entries-missing", "shadowed"
    severity: str  # BROKEN, WARNING or NOTE
    message: str
    fix: str = ""  # a command line; "" when no command fixes it
    detail: str = ""  # what the fix does, or what else to know

    def to_json(self) -> dict[str, str]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "fix": self.fix,
            "detail": self.detail,
        }


def relink_cmd(env: Path, *extra: str) -> str:
    return shlex.join(["envstore", "relink", str(env), *extra])


def check_interpreter(
    env: Path, manifest: Manifest, store: Store, cache: FactsCache | None
) -> list[Problem]:
    from envstore.env.staleness import choose_interpreter, stale_packages

    old = manifest.python
    problems: list[Problem] = []
    try:  # judged from the file system and the store's cache: see recorded_interpreter
        now: Interpreter | None = recorded_interpreter(old.path, old.requested, cache)
        trouble = ""
    except InterpreterError as exc:
        now = None
        gone = not os.path.exists(old.path)
        trouble = "is gone (moved or removed)" if gone else f"cannot be used ({exc})"
    if now is not None and now.soabi == old.soabi:
        problems += check_home(env, old, now)
        pin = pinned(now)
        if pin.path != old.path:
            problems.append(
                Problem(
                    "base-unpinned",
                    WARNING,
                    f"the env records {old.path}, which a new Python {old.minor.split('.')[0]}"
                    " minor or an alternatives switch re-points (the env then breaks);"
                    f" {pin.path} is the same file by its minor version",
                    relink_cmd(env),
                    f"records {pin.path} instead",
                )
            )
        if now.version != old.version:
            problems.append(
                Problem(
                    "base-patch",
                    NOTE,
                    f"the base interpreter {old.path} is now Python {now.version} (the env"
                    f" was made with {old.version}); same ABI ({old.soabi}), so the env works",
                    relink_cmd(env),
                    "records the new version in pyvenv.cfg and the manifest",
                )
            )
        return problems
    if now is not None:
        trouble = (
            f"is now Python {now.version} ({now.soabi}); the env was built for"
            f" {old.version} ({old.soabi}), so its packages and site-packages do not fit"
        )
        code = "base-abi"
    else:
        code = "base-missing"
    message = f"the base interpreter {old.path} {trouble}"
    choice = choose_interpreter(manifest, cache)
    new = choice.interp
    if new is not None and new.soabi == old.soabi:
        fix = relink_cmd(env)
        detail = f"relinks to {new.path} (Python {new.version}, same ABI): no package work"
    elif new is not None:
        fix = relink_cmd(env, "--python", new.path)
        from envstore.python.tags import supported_tags

        accepted = {str(t) for t in supported_tags(new)}
        stale = stale_packages(store, manifest, new, accepted)
        detail = (
            f"no Python with the ABI {old.soabi} is left; this moves the env to Python"
            f" {new.version}: pure packages are reused"
        )
        if stale:
            names = ", ".join(f"{p.name} {p.version}" for p in manifest.packages if p.name in stale)
            detail += (
                f"; {names} need wheels for {new.abi_tag} (from the store, --find-links DIR"
                " or the index)"
            )
    else:
        others = sorted(installed(cache), key=lambda i: [int(x) for x in i.minor.split(".")])
        fix = ""
        detail = f"{choice.why}: install Python {old.minor} again and run {relink_cmd(env)}"
        if others:  # the newest: never a downgrade while a same-or-newer minor exists
            move = relink_cmd(env, "--python", others[-1].path)
            detail += f", or move the env to another version: {move}"
            fix = move  # works as given
            new = new or others[-1]
    if store.shared and on_shared_storage(env):
        problems.append(other_hosts_problem(env, manifest, trouble, new))
        return problems
    problems.append(Problem(code, BROKEN, message, fix, detail))
    return problems


def other_hosts_problem(
    env: Path, manifest: Manifest, trouble: str, here: Interpreter | None
) -> Problem:
    """An env on shared storage whose Python this host lacks (or has as another ABI):
    it is other hosts' env, and a relink here would break it for them."""
    from envstore.store.fs import host_name

    old = manifest.python
    python = ["-p", here.minor] if here is not None else []
    create = shlex.join(
        ["envstore", "create", f"{env}-{host_name()}", *python, *manifest.requirements]
    )
    return Problem(
        "base-other-hosts",
        BROKEN,
        f"{env} belongs to Python {old.minor} on other hosts (here {old.path} {trouble})",
        create,
        "makes a separate env for this host; relinking this one to this host's Python"
        f" ({relink_cmd(env, '--for-this-host')}) would break it on the other hosts",
    )


def check_pip_installed(env: Path, manifest: Manifest) -> list[Problem]:
    """Packages pip installed into the env's own site-packages for another Python (their
    wheels' ABI tags): after a minor move their compiled code no longer loads, and some
    (pyyaml) fall back to pure Python without a word."""
    from envstore.env.staleness import abi_tags_of

    py = manifest.python
    stale = []
    for name, version, abis in abi_tags_of(env / py.purelib):
        if abis and not abis & {py.abi_tag, "abi3", "none"}:
            stale.append(f"{name.replace('_', '-').lower()}=={version}")
    if not stale:
        return []
    python = str(env / "bin" / "python")
    return [
        Problem(
            "pip-installed-abi",
            WARNING,
            f"installed with pip for another Python, their compiled code does not load on"
            f" Python {py.minor}: {', '.join(stale)}",
            shlex.join([python, "-m", "pip", "install", "--force-reinstall", "--no-deps", *stale]),
            "reinstalls them for this Python",
        )
    ]


def check_fit(env: Path, manifest: Manifest, store: Store) -> list[Problem]:
    """Packages that cannot run on the env's Python (their Requires-Python, or a pip too
    old for it), from metadata: nothing is run."""
    from envstore.resolve.fit import misfit

    found = []
    for p in manifest.packages:
        if store.has_entry(p.key):
            why = misfit(store, p.name, p.key, manifest.python)
            if why is not None:
                found.append(f"{p.name} {p.version}: {why}")
    if not found:
        return []
    return [
        Problem(
            "python-fit",
            BROKEN,
            f"packages that cannot run on Python {manifest.python.version}: " + "; ".join(found),
            relink_cmd(env),
            "replaces them with the newest versions that run there (pip: the Python's own)",
        )
    ]


def check_home(env: Path, old: Interpreter, now: Interpreter) -> list[Problem]:
    """pyvenv.cfg's ``home`` must still lead CPython to this interpreter's stdlib: a
    relocatable install behind a link (home = its prefix's bin/) replaced by a new patch
    release leaves a home whose stdlib is gone, or another install's. From the file
    system only."""
    from envstore.env.venv import home_stdlib, read_pyvenv_cfg

    home = read_pyvenv_cfg(env).get("home")
    if not home:
        return []
    # lib/python3.12, or lib64/python3.12 where platlibdir is lib64 (Fedora, SUSE)
    found = home_stdlib(home, os.path.join(*Path(now.stdlib).parts[-2:]))
    try:
        same = found is not None and os.path.samefile(found, now.stdlib)
    except OSError:
        same = False
    if same:
        return []
    where = "no standard library" if found is None else f"another install's ({found})"
    return [
        Problem(
            "home-stale",
            BROKEN,
            f"pyvenv.cfg's home ({home}) leads to {where}, not that of {old.path} (Python"
            f" {now.version}): the install it named was moved or replaced, so the env's"
            " python cannot start or runs on the wrong standard library",
            relink_cmd(env),
            "records the home of the install there now",
        )
    ]


def check_files(env: Path, manifest: Manifest, store: Store) -> list[Problem]:
    from envstore.store.registry import root_name

    problems: list[Problem] = []
    py = manifest.python
    try:
        link = os.readlink(env / "bin" / "python")
    except OSError:
        link = ""
    if link != py.path:
        no_python = not os.path.lexists(env / "bin" / "python")
        where = "nothing" if no_python else (link or "itself (a file, not a link)")
        problems.append(
            Problem(
                "links",
                BROKEN if no_python else WARNING,  # no bin/python: nothing in the env runs
                f"bin/python points at {where}, not the recorded {py.path}",
                relink_cmd(env),
            )
        )
    if manifest.env != str(env):
        problems.append(
            Problem(
                "env-moved",
                BROKEN,
                f"this env was made at {manifest.env} and moved or copied here; its scripts"
                " and activation still name the old place",
                relink_cmd(env),
                "regenerates them for this place and registers it",
            )
        )
    missing = [p for p in manifest.packages if not store.has_entry(p.key)]
    if missing:
        problems.append(
            Problem(
                "entries-missing",
                BROKEN,
                "missing from the store "
                + str(store.root)
                + ": "
                + ", ".join(f"{p.name} {p.version}" for p in missing),
                relink_cmd(env),
                "rebuilds them from the store's wheels/, --find-links DIR or the index",
            )
        )
    view_site = store.view_path(manifest.view) / "site"
    if not (store.view_path(manifest.view) / "view.json").exists():
        problems.append(
            Problem(
                "view-missing",
                BROKEN,
                f"the env's view {view_site} is missing from the store",
                relink_cmd(env),
            )
        )
    else:
        from envstore.env.scripts import LAUNCHER, launcher_intact
        from envstore.store.views import read_view

        try:
            view = read_view(store.view_path(manifest.view))
        except (OSError, ValueError, StoreError):
            view = None
        if view is not None and manifest.env == str(env) and not launcher_intact(env, view, py):
            problems.append(
                Problem(
                    "scripts",
                    BROKEN,
                    f"bin/{LAUNCHER}, the file behind the env's console scripts, is not what"
                    " envstore wrote (an installer or an edit changed it); every console"
                    " script runs what it holds now",
                    relink_cmd(env),
                    "writes it again",
                )
            )
    try:
        pth = (env / py.purelib / "00-envstore.pth").read_bytes().strip()
    except OSError:
        pth = b""
    if pth != pth_line(view_site):
        problems.append(
            Problem(
                "pth",
                BROKEN,
                f"{py.purelib}/00-envstore.pth does not name the env's view {view_site}",
                relink_cmd(env),
            )
        )
    root = store.roots_dir / root_name(env, store)
    try:
        registered = os.readlink(root) == str(env / MANIFEST_NAME)
    except OSError:
        registered = False
    if not registered:
        problems.append(
            Problem(
                "unregistered",
                WARNING,
                f"the env is not registered in the store {store.root}: gc may delete the"
                " entries it uses",
                relink_cmd(env),
                "registers it",
            )
        )
    return problems
