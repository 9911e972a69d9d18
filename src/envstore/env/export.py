"""Exporting an env as an ordinary, self-contained venv: ``envstore export``.

The export holds real copies of every package's files (nothing points into
the store, and no file names it), console scripts, ``.data`` scripts, data
and headers where an installer puts them, a RECORD per distribution that
names them (so ``pip list`` and ``pip uninstall`` work), and the store's
bytecode: rewritten by the target interpreter so each ``.pyc`` names its
copied source, and made checked-hash so an edited source is recompiled (the
store's are unchecked, which is only right for immutable files).

``relocatable``: scripts start through a ``/bin/sh`` line that runs the
``python`` beside them, and ``activate`` (bash, zsh) and ``activate.fish``
find the env from their own location, so the directory can be moved or
copied into an image. ``bin/python`` links to the base interpreter by its
absolute path either way: the target machine needs that Python there.

The export is built in a sibling temp directory and renamed into place.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from envstore.errors import EnvError, EnvstoreError, InterpreterError
from envstore.model.manifest import MANIFEST_NAME, Manifest
from envstore.model.records import ViewRecord
from envstore.python.interpreters import recorded_interpreter
from envstore.store.fs import rmtree, temp_tag
from envstore.store.layout import Store
from envstore.store.views import precedence

__all__ = ["ExportResult", "export_env"]

# Runs in the env's interpreter (marshal is version-specific): copy each pyc,
# pointing its code objects at the copied source, checked-hash if it was unchecked.
_FIX_PYC = r"""
import marshal, sys
def fix(code, filename):
    consts = tuple(fix(c, filename) if isinstance(c, type(code)) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)
jobs = sys.stdin.buffer.read().decode("utf-8", "surrogateescape").split("\0")
for i in range(0, len(jobs) - 2, 3):
    src, dst, source = jobs[i:i + 3]
    with open(src, "rb") as f:
        data = f.read()
    flags = int.from_bytes(data[4:8], "little")
    if flags & 1:
        flags |= 2
    code = fix(marshal.loads(data[16:]), source)
    with open(dst, "wb") as f:
        f.write(data[:4] + flags.to_bytes(4, "little") + data[8:16] + marshal.dumps(code))
"""

RELOCATABLE_SHEBANG = (
    '#!/bin/sh\n\'\'\'exec\' "$(dirname -- "$(realpath -- "$0")")"/python "$0" "$@"\n\' \'\'\'\n'
)


@dataclass
class ExportResult:
    dest: str
    packages: int
    files: int
    notes: list[str] = field(default_factory=list)


def _record_hash(path: Path) -> tuple[str, str]:
    data = path.read_bytes()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}", str(len(data))


class _Copier:
    """Copies entries into the export, first file wins (as the view links them)."""

    def __init__(self, cache_tag: str) -> None:
        self.cache_tag = cache_tag
        self.files = 0
        self.pycs: list[tuple[str, str, str]] = []  # store pyc, export pyc, final source

    def tree(self, src: Path, dst: Path, final_dst: Path) -> list[str]:
        """Copy ``src`` into ``dst`` (to be at ``final_dst``); the paths copied, relative."""
        copied: list[str] = []
        for dirpath, _dirnames, filenames in os.walk(src):
            rel_dir = os.path.relpath(dirpath, src)
            out_dir = dst / rel_dir
            out_dir.mkdir(parents=True, exist_ok=True)
            for name in sorted(filenames):
                rel = os.path.normpath(os.path.join(rel_dir, name))
                source, target = Path(dirpath) / name, out_dir / name
                if target.exists() or target.is_symlink():
                    continue
                if name.endswith(".pyc"):
                    if f".{self.cache_tag}." not in name or Path(dirpath).name != "__pycache__":
                        continue
                    py = name.split(".", 1)[0] + ".py"
                    final_py = final_dst / os.path.dirname(rel_dir) / py
                    self.pycs.append((str(source), str(target), str(final_py)))
                else:
                    shutil.copyfile(source, target)
                    os.chmod(target, 0o755 if os.stat(source).st_mode & 0o111 else 0o644)
                self.files += 1
                copied.append(rel)
        return copied


def _rewrite_record(
    dist_info: Path, site: Path, root: Path, data_map: dict[str, str], extra: list[Path]
) -> None:
    """RECORD relative to the export's site-packages: ``../data/<scheme>/`` rows moved to
    where the export put them, rehashed when the file changed; generated scripts and
    the bytecode added."""
    record = dist_info / "RECORD"
    rows = [r for r in csv.reader(io.StringIO(record.read_text(encoding="utf-8"))) if r]
    out: list[list[str]] = []
    for row in rows:
        path = row[0]
        for prefix, replacement in data_map.items():
            if path.startswith(prefix):
                target = root / replacement / path[len(prefix) :]
                path = os.path.relpath(target, site)
                if target.is_file():
                    row = [path, *_record_hash(target)]
                break
        out.append([path, *row[1:]])
        if path.endswith(".py") and not path.startswith(".."):
            pyc = site / os.path.dirname(path) / "__pycache__"
            stem = os.path.basename(path)[:-3]
            for f in sorted(pyc.glob(f"{stem}.*.pyc")) if pyc.is_dir() else []:
                out.append([os.path.relpath(f, site), "", ""])
    for f in extra:
        out.append([os.path.relpath(f, site), *_record_hash(f)])
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(out)
    record.write_text(text.getvalue(), encoding="utf-8")


def export_env(
    path: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    relocatable: bool = False,
    store: Store | str | os.PathLike[str] | None = None,
) -> ExportResult:
    """Write the env at ``path`` as an ordinary venv at ``dest`` (see the module docstring)."""
    from envstore.env.activation import write_activation_scripts
    from envstore.env.scripts import script_name, write_scripts
    from envstore.env.venv import shebang, write_interpreter_links

    src = Path(os.path.abspath(path))
    manifest = Manifest.load(src)
    if manifest.editables:
        names = ", ".join(f"{e.name} ({e.path})" for e in manifest.editables)
        raise EnvError(
            f"cannot export {src}: it has editable projects ({names}), which point into"
            " their source directories; export an env with the projects installed as wheels"
        )
    final = Path(os.path.abspath(dest))
    if final.is_symlink() or (final.exists() and (not final.is_dir() or any(final.iterdir()))):
        raise EnvError(f"{final} exists and is not an empty directory")
    st = store if isinstance(store, Store) else Store(store or manifest.store)
    st.ensure(named_by=None if store else str(src / MANIFEST_NAME))
    was = manifest.python
    try:  # it runs the env's Python: only one envstore finds by itself
        interp = recorded_interpreter(was.path, was.requested, st.facts_cache())
    except InterpreterError as exc:
        raise EnvError(
            f"cannot export {src}: its Python {was.version} cannot be used ({exc});"
            f" an export links to it. Repair the env first: envstore relink"
            f" {shlex.quote(str(src))}"
        ) from None
    if interp.soabi != was.soabi:
        raise EnvError(
            f"cannot export {src}: its Python {was.path} is now {interp.version}; repair the"
            f" env first: envstore relink {shlex.quote(str(src))}"
        )
    notes: list[str] = []
    own_site = src / interp.purelib
    pip_installed = (
        sorted(p.name for p in own_site.glob("*.dist-info")) if own_site.is_dir() else []
    )
    if pip_installed:
        notes.append(
            "not exported (installed into the env with pip, not from the store): "
            + ", ".join(pip_installed)
        )
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.envstore-export-{temp_tag()}"
    rmtree(tmp)
    tmp.mkdir()
    try:
        with st.gc_lock(shared=True):
            missing = [
                f"{p.name} {p.version}" for p in manifest.packages if not st.has_entry(p.key)
            ]
            if missing:
                raise EnvError(
                    f"cannot export {src}: missing from the store: {', '.join(missing)};"
                    f" run envstore relink {shlex.quote(str(src))}"
                )
            copier = _Copier(interp.cache_tag)
            view, records = _fill(tmp, final, manifest, st, copier)
            _fix_pycs(interp.path, copier.pycs)
        (tmp / "bin").mkdir(exist_ok=True)
        # What recreates this venv without envstore (as python -m venv records it).
        command = shlex.join([interp.path, "-m", "venv", str(final)])
        write_interpreter_links(tmp, interp, command, envstore_marker=False)
        write_activation_scripts(
            tmp, interp, final, final.name, check=False, relocatable=relocatable
        )
        bang = RELOCATABLE_SHEBANG if relocatable else shebang(str(final / "bin" / "python"))
        site = tmp / interp.purelib
        write_scripts(tmp, final, view, interp, bang=bang, launcher=False)
        owners: dict[str, list[Path]] = {}
        for row in view.scripts:
            name = script_name(row[0], row[4], interp)
            owners.setdefault(row[4], []).append(tmp / "bin" / name)
        for dist_info, dist, data_map in records:
            _rewrite_record(site / dist_info, site, tmp, data_map, owners.get(dist, []))
        if final.is_dir():
            final.rmdir()
        os.rename(tmp, final)
    finally:
        rmtree(tmp)
    return ExportResult(str(final), len(manifest.packages), copier.files, notes)


_Records = list[tuple[str, str, dict[str, str]]]


def _fill(
    tmp: Path, final: Path, manifest: Manifest, st: Store, copier: _Copier
) -> tuple[ViewRecord, _Records]:
    """Copy every entry into ``tmp``. Returns the scripts to write (as a view lists them)
    and, per distribution, (dist-info, name, where its ``../data/<scheme>/`` rows went)."""
    interp = manifest.python  # its fields as recorded: checked by Manifest.from_json
    site = tmp / interp.purelib
    final_site = final / interp.purelib
    site.mkdir(parents=True)
    (tmp / "bin").mkdir()
    (tmp / "include").mkdir()
    if not (tmp / "lib64").exists():
        os.symlink("lib", tmp / "lib64")
    scripts: list[list[str]] = []
    data_scripts: list[list[str]] = []
    records: _Records = []
    metas = {key: st.entry_record(key) for key in manifest.keys}
    # First copy wins, in the order the view links them (pip's: a package over its deps).
    for key in precedence(list(metas), {k: m.requires for k, m in metas.items()}):
        root = st.entry_dir(key)
        meta = metas[key]
        copier.tree(root / "site", site, final_site)
        for name, module, attr, section in meta.entry_points:
            scripts.append([name, module, attr, section, key.name])
        data_map: dict[str, str] = {}
        if "scripts" in meta.data:
            for name in sorted(os.listdir(root / "data" / "scripts")):
                data_scripts.append([name, str(root / "data" / "scripts" / name)])
            data_map["../data/scripts/"] = "bin/"
        if "data" in meta.data:
            copier.tree(root / "data" / "data", tmp, final)
            data_map["../data/data/"] = ""
        if "headers" in meta.data:
            inc = Path("include") / "site" / f"python{interp.minor}" / key.name
            copier.tree(root / "data" / "headers", tmp / inc, final / inc)
            data_map["../data/headers/"] = f"{inc}/"
        records.append((meta.dist_info, key.name, data_map))
    view = ViewRecord(
        key="",
        cache_tag="",
        entries=[str(k) for k in manifest.keys],
        scripts=scripts,
        data_scripts=data_scripts,
        pth=[],
        data=[],
        headers=[],
        wheels={},
    )
    return view, records


def _fix_pycs(python: str, jobs: list[tuple[str, str, str]]) -> None:
    if not jobs:
        return
    payload = "\0".join(part for job in jobs for part in job).encode("utf-8", "surrogateescape")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    proc = subprocess.run(
        [python, "-I", "-S", "-c", _FIX_PYC],
        input=payload,
        env=env,
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise EnvstoreError(
            f"copying bytecode with {python} failed: {proc.stderr.decode(errors='replace')[-500:]}"
        )
