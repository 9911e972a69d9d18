"""Switching an env to another interpreter in place, with a journal that undoes
every step if one fails.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable
from pathlib import Path

from envstore._crash import crash_point
from envstore.env.activation import write_activation_scripts
from envstore.env.scripts import LAUNCHER, script_names, write_scripts
from envstore.env.site import PTH_NAME, write_data_links, write_site
from envstore.env.venv import (
    check_env_dirs,
    read_pyvenv_cfg,
    shebang,
    write_env_markers,
    write_file,
    write_interpreter_links,
)
from envstore.errors import StoreError
from envstore.model.manifest import MANIFEST_NAME, Manifest
from envstore.store.fs import rmtree, temp_tag
from envstore.store.layout import Store
from envstore.store.views import read_view

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from envstore.model.records import ViewRecord

_INTERPRETER_LINK = re.compile(r"^python(\d+(\.\d+t?)?)?$")


_ACTIVATION = {"activate", "activate.fish", "activate.csh", "activate.nu", "Activate.ps1"}


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


def _copy_user_bin(src: Path, dst: Path, drop: set[str], moved: tuple[str, str] | None) -> None:
    """Copy ``bin/`` minus what envstore regenerates (the user's own scripts stay).
    ``moved``: the env's old and new paths; a script whose shebang names a Python of
    its old ``bin/`` (an editable project's console scripts, what pip installed) gets
    the same Python of the new one."""
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
            if moved is not None and entry.is_file():
                _rebang(target, *moved)


def _rebang(script: Path, old_env: str, new_env: str) -> None:
    """Rewrite ``#!<old_env>/bin/pythonX.Y`` at the top of ``script`` (a copy of
    the user's, written by this relink) to name ``<new_env>/bin/pythonX.Y``."""
    with open(script, "rb") as f:
        head = f.readline(4096)
        if not head.startswith(f"#!{old_env}/bin/".encode()):
            return
        rest = f.read()
    name = head[len(f"#!{old_env}/bin/") :].rstrip(b"\r\n").decode(errors="replace")
    if not _INTERPRETER_LINK.match(name):
        return
    mode = os.stat(script).st_mode
    write_file(str(script), shebang(f"{new_env}/bin/{name}").encode() + rest)
    os.chmod(script, mode & 0o7777)


def _prune_store_links(top: Path, entries_dir: Path, keep: set[str]) -> None:
    """Remove symlinks under ``top`` into store entries that are not in ``keep``, and
    those into an upstream store's entries (gone, or another store: the new view's data
    links are written again after this)."""
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
            elif _upstream_link(target):
                os.unlink(path)


def _upstream_link(target: str) -> bool:
    head, sep, _ = target.partition(f"{os.sep}entries{os.sep}")
    return bool(sep and head) and (
        not os.path.exists(target) or os.path.isfile(os.path.join(head, "store.json"))
    )


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


def apply_switch(
    final: Path,
    store: Store,
    old_manifest: Manifest,
    new_manifest: Manifest,
    view: ViewRecord,
    regenerate_scripts: bool,
) -> None:
    old, new = old_manifest.python, new_manifest.python
    cfg = read_pyvenv_cfg(final)
    command = cfg.get("command") or shlex.join(["envstore", "create", str(final)])
    prompt = _prompt(cfg)
    try:
        old_view: ViewRecord | None = read_view(store.view_path(old_manifest.view))
    except (OSError, ValueError, StoreError):
        old_view = None
    old_site, new_site = final / old.purelib, final / new.purelib
    check_env_dirs(final, old.purelib, new.purelib)
    data_tops = {"include"}
    for data_dir in (old_view.data if old_view else []) + view.data:
        data_tops.update(os.listdir(data_dir) if os.path.isdir(data_dir) else [])
    stage = final / f".envstore-relink-{temp_tag()}"
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
            moved = (old_manifest.env, str(final)) if old_manifest.env != str(final) else None
            _copy_user_bin(final / "bin", stage / "bin", drop, moved)
        else:
            (stage / "bin").mkdir()
        write_interpreter_links(stage, new, command, prompt=prompt, markers=False)
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
        owned = {row[0] for row in old_view.pth} if old_view else set()
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

        tmp = final / f".{MANIFEST_NAME}.{temp_tag()}.tmp"
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
    # An env made before envstore wrote them gets them now; one of the user's stays.
    write_env_markers(final, only_missing=True)
    if old_site != new_site:
        for d in (old_site.parent, final / "include" / "site" / f"python{old.minor}"):
            try:
                d.rmdir()  # only if empty
            except OSError:
                pass
