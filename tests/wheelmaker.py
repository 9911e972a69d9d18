"""Build real wheel files on the fly for tests: correct ones and hostile ones.

Stdlib only, no network.  Layers, from high to low:

* :func:`build_wheel` writes a correct, byte-reproducible ``.whl`` (fixed 1980
  timestamps, unix modes, ZIP_DEFLATED, a correct RECORD).
* :func:`build_extension_wheel` compiles a tiny real C extension with ``gcc``
  for a given CPython and tags the wheel for it (see :func:`interpreter_tag`).
* :func:`wheel_members` / :func:`record_for` / :func:`write_raw_wheel` let a test
  take the members of a good wheel, tweak them (hostile names, modes, duplicates),
  recompute or falsify RECORD, and write exactly those bytes.
* :func:`hostile_wheels` writes a corpus of malformed wheels, one defect each.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import re
import stat
import struct
import subprocess
import tempfile
import warnings
import zipfile
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO

__all__ = [
    "Member",
    "build_extension_wheel",
    "build_wheel",
    "dist_name",
    "expand_tags",
    "hostile_wheels",
    "import_name",
    "interpreter_tag",
    "record_for",
    "wheel_filename",
    "wheel_members",
    "write_raw_wheel",
]

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
HUGE_SIZE = 2**40  # declared uncompressed size of the "oversized-member" entry
HIGH_RATIO_SIZE = 64 * 1024 * 1024  # 64 MiB of zeros, ~64 KB once deflated


@dataclass
class Member:
    """One zip entry.  ``name`` is written verbatim, even if hostile.

    ``mode`` is the unix mode (stored as ``external_attr >> 16``); plain
    permission bits get ``S_IFREG`` added.  A symlink is
    ``stat.S_IFLNK | 0o777`` with ``data`` = the link target.
    """

    name: str
    data: bytes = b""
    mode: int = 0o644
    compress: int = zipfile.ZIP_DEFLATED


def dist_name(name: str) -> str:
    """Wheel-filename escaping: runs of ``-_.`` become ``_`` (case kept)."""
    return re.sub(r"[-_.]+", "_", name)


def import_name(name: str) -> str:
    """PEP 503 normalized name with ``-`` -> ``_``, e.g. ``Foo.Bar`` -> ``foo_bar``."""
    return re.sub(r"[-_.]+", "_", name).lower()


def wheel_filename(name: str, version: str, tag: str = "py3-none-any") -> str:
    return f"{dist_name(name)}-{version}-{tag}.whl"


def expand_tags(tag: str) -> list[str]:
    """``py2.py3-none-any`` -> ``["py2-none-any", "py3-none-any"]``."""
    py, abi, plat = tag.split("-")
    return [f"{p}-{a}-{s}" for p in py.split(".") for a in abi.split(".") for s in plat.split(".")]


def _bytes(content: bytes | str) -> bytes:
    return content.encode() if isinstance(content, str) else content


def _digest(data: bytes, algo: str = "sha256") -> str:
    raw = hashlib.new(algo, data).digest()
    return f"{algo}=" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def record_for(members: Sequence[Member], record_name: str, *, algo: str = "sha256") -> Member:
    """A RECORD member listing every member except ``record_name`` itself.

    One row per member, in order (duplicated names give duplicated rows);
    RECORD's own row is ``record_name,,``.  ``algo`` may be any hashlib name.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for m in members:
        if m.name != record_name:
            writer.writerow([m.name, _digest(m.data, algo), len(m.data)])
    writer.writerow([record_name, "", ""])
    return Member(record_name, buf.getvalue().encode())


def wheel_members(
    name: str,
    version: str = "1.0",
    *,
    files: Mapping[str, bytes | str] | None = None,
    tag: str = "py3-none-any",
    requires: Sequence[str] = (),
    entry_points: Mapping[str, Mapping[str, str]] | None = None,
    data: Mapping[str, bytes | str] | None = None,
    executable: Collection[str] = (),
    root_is_purelib: bool | None = None,
    metadata_extra: Sequence[str] = (),
    wheel_version: str = "1.0",
) -> list[Member]:
    """The members of a correct wheel (see :func:`build_wheel`), RECORD last."""
    dist = dist_name(name)
    info = f"{dist}-{version}.dist-info"
    if files is None:
        files = {f"{import_name(name)}/__init__.py": f"__version__ = {version!r}\n"}
    if root_is_purelib is None:
        root_is_purelib = tag.endswith("-none-any")
    members = [Member(path, _bytes(content)) for path, content in files.items()]
    for path, content in (data or {}).items():
        mode = 0o755 if path.startswith("scripts/") else 0o644
        members.append(Member(f"{dist}-{version}.data/{path}", _bytes(content), mode))
    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {version}",
        *(f"Requires-Dist: {req}" for req in requires),
        *metadata_extra,
    ]
    wheel = [
        f"Wheel-Version: {wheel_version}",
        "Generator: wheelmaker",
        f"Root-Is-Purelib: {'true' if root_is_purelib else 'false'}",
        *(f"Tag: {t}" for t in expand_tags(tag)),
    ]
    members.append(Member(f"{info}/METADATA", "".join(f"{line}\n" for line in metadata).encode()))
    members.append(Member(f"{info}/WHEEL", "".join(f"{line}\n" for line in wheel).encode()))
    if entry_points:
        text = "".join(
            f"[{group}]\n" + "".join(f"{key} = {value}\n" for key, value in eps.items()) + "\n"
            for group, eps in entry_points.items()
        )
        members.append(Member(f"{info}/entry_points.txt", text.encode()))
    for m in members:
        if m.name in executable:
            m.mode = 0o755
    members.append(record_for(members, f"{info}/RECORD"))
    return members


def build_wheel(
    out_dir: Path,
    name: str,
    version: str = "1.0",
    *,
    files: Mapping[str, bytes | str] | None = None,
    tag: str = "py3-none-any",
    requires: Sequence[str] = (),
    entry_points: Mapping[str, Mapping[str, str]] | None = None,
    data: Mapping[str, bytes | str] | None = None,
    executable: Collection[str] = (),
    root_is_purelib: bool | None = None,
    metadata_extra: Sequence[str] = (),
    wheel_version: str = "1.0",
) -> Path:
    """Write ``out_dir/{dist}-{version}-{tag}.whl`` and return its path.

    ``files`` are relative to the wheel root (default: an ``__init__.py``
    with ``__version__``), ``data`` relative to ``{dist}-{version}.data/``
    (``scripts/*`` are executable), ``executable`` lists archive paths to
    chmod 0o755.
    """
    members = wheel_members(
        name,
        version,
        files=files,
        tag=tag,
        requires=requires,
        entry_points=entry_points,
        data=data,
        executable=executable,
        root_is_purelib=root_is_purelib,
        metadata_extra=metadata_extra,
        wheel_version=wheel_version,
    )
    return write_raw_wheel(Path(out_dir) / wheel_filename(name, version, tag), members)


def _zipinfo(m: Member) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(m.name, ZIP_EPOCH)
    info.filename = m.name  # ZipInfo() truncates at NUL; keep hostile names verbatim
    info.create_system = 3  # unix, so readers honour external_attr
    info.external_attr = (m.mode if stat.S_IFMT(m.mode) else stat.S_IFREG | m.mode) << 16
    info.compress_type = m.compress
    return info


def write_raw_wheel(path: Path, members: Sequence[Member]) -> Path:
    """Write exactly ``members`` (duplicates allowed, no RECORD added)."""
    return _write_zip(Path(path), members)


def _write_zip(
    path: Path, members: Sequence[Member], declared_sizes: Mapping[str, int] | None = None
) -> Path:
    """Write a zip; members named in ``declared_sizes`` lie about their size.

    How the lie is made: such a member is written with ``force_zip64=True`` so
    its local header carries a zip64 extra field (id 0x0001: uncompressed then
    compressed size, 8 bytes each).  Setting ``ZipInfo.file_size`` before
    ``close()`` makes zipfile emit a zip64 extra with the fake size in the
    central directory; afterwards :func:`_patch_local_size` overwrites the
    uncompressed size in the local header's extra with ``struct``.  CRC,
    compressed size and data stay real, so the entry still inflates (to the
    small real payload).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    declared = dict(declared_sizes or {})
    patches: list[tuple[int, int]] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name: ..."
        with zipfile.ZipFile(path, "w") as zf:
            for m in members:
                info = _zipinfo(m)
                if m.name in declared:
                    with zf.open(info, "w", force_zip64=True) as dest:
                        dest.write(m.data)
                    info.file_size = declared.pop(m.name)
                    patches.append((info.header_offset, info.file_size))
                else:
                    zf.writestr(info, m.data)
    for offset, size in patches:
        _patch_local_size(path, offset, size)
    return path


def _local_header_lengths(f: BinaryIO, offset: int) -> tuple[int, int]:
    """Name and extra-field lengths of the zip local file header at ``offset``."""
    f.seek(offset)
    header = f.read(30)
    if header[:4] != b"PK\x03\x04":
        raise ValueError(f"no local file header at {offset}")
    name_len, extra_len = struct.unpack_from("<HH", header, 26)
    return name_len, extra_len


def _patch_local_size(path: Path, offset: int, size: int) -> None:
    """Overwrite the uncompressed size in the zip64 extra of the local header at ``offset``."""
    with path.open("r+b") as f:
        name_len, extra_len = _local_header_lengths(f, offset)
        extra_start = offset + 30 + name_len
        f.seek(extra_start)
        extra = f.read(extra_len)
        pos = 0
        while pos + 4 <= len(extra):
            field_id, field_len = struct.unpack_from("<HH", extra, pos)
            if field_id == 0x0001:
                f.seek(extra_start + pos + 4)
                f.write(struct.pack("<Q", size))
                return
            pos += 4 + field_len
    raise ValueError(f"local header at {offset} has no zip64 extra field")


# --------------------------------------------------------------------------- hostile corpus

_EVIL_FILES = {"evil/__init__.py": "def main():\n    return 0\n"}
_PWN = b"raise SystemExit('pwned')\n"


def _evil(files: Mapping[str, bytes | str] | None = None, **kwargs: Any) -> list[Member]:
    return wheel_members("evil", "1.0", files={**_EVIL_FILES, **(files or {})}, **kwargs)


def _with_record(members: list[Member], algo: str = "sha256") -> list[Member]:
    """Replace the (last) RECORD by a freshly computed one."""
    record = next(m for m in reversed(members) if m.name.endswith(".dist-info/RECORD"))
    body = [m for m in members if m is not record]
    return [*body, record_for(body, record.name, algo=algo)]


def _edit_record(
    members: list[Member], append: bytes = b"", old: bytes = b"", new: bytes = b""
) -> list[Member]:
    """Falsify RECORD: ``data.replace(old, new) + append``."""
    return [
        replace(m, data=m.data.replace(old, new) + append)
        if m.name.endswith(".dist-info/RECORD")
        else m
        for m in members
    ]


def hostile_wheels(out_dir: Path) -> list[tuple[str, Path]]:
    """Write one bad wheel per defect; return ``[(id, path), ...]``.

    Every wheel is ``{out_dir}/{id}/evil-1.0-py3-none-any.whl`` (name "evil",
    version 1.0) and is otherwise valid, with a correct RECORD unless RECORD
    is the defect.  All files are < 1 MB on disk.
    """
    init = _EVIL_FILES["evil/__init__.py"].encode()
    init_row = f"{_digest(init)},{len(init)}".encode()
    bad_hash = f"{_digest(_PWN)},{len(init)}".encode()
    bad_size = f"{_digest(init)},{len(init) + 1}".encode()
    ghost = f"evil/ghost.py,{_digest(_PWN)},{len(_PWN)}\n".encode()
    dotdot = {"..evil": "evil:main", "../evil": "evil:main"}
    good = _evil()
    no_record = [m for m in good if not m.name.endswith("RECORD")]
    dup = _with_record([good[0], Member("evil/__init__.py", _PWN), *good[1:]])
    symlink = _evil({"evil/link": "/etc/passwd"})
    for m in symlink:
        if m.name == "evil/link":
            m.mode = stat.S_IFLNK | 0o777
    other = [m for m in wheel_members("other") if m.name.split("/")[-1] in ("METADATA", "WHEEL")]
    unlisted = [good[0], Member("evil/unlisted.py", _PWN), *good[1:]]

    cases: dict[str, list[Member]] = {
        "path-traversal": _evil({"../escape.py": _PWN}),
        "path-traversal-nested": _evil({"evil/../../escape.py": _PWN}),
        "absolute-path": _evil({"/tmp/evil_abs.py": _PWN}),
        "nul-in-name": _evil({"evil/a\x00b.py": _PWN}),
        "control-char-in-name": _evil({"evil/a\nb.py": _PWN}),
        "duplicate-member": dup,
        "symlink-member": symlink,
        "record-missing": no_record,
        "record-unparseable": _edit_record(good, b'\xff\xfe,,,\n"unterminated'),
        "record-hash-mismatch": _edit_record(good, old=init_row, new=bad_hash),
        "record-size-mismatch": _edit_record(good, old=init_row, new=bad_size),
        "record-phantom-file": _edit_record(good, ghost),
        "record-unlisted-file": unlisted,
        "record-md5": _with_record(good, "md5"),
        "record-sha1": _with_record(good, "sha1"),
        "no-dist-info": [Member(k, _bytes(v)) for k, v in _EVIL_FILES.items()],
        "two-dist-info": _with_record([*no_record, *other, good[-1]]),
        "name-mismatch": wheel_members("notevil", "1.0", files=_EVIL_FILES),
        "version-mismatch": wheel_members("evil", "2.0", files=_EVIL_FILES),
        "wheel-version-2": _evil(wheel_version="2.0"),
        "entry-point-slash": _evil(entry_points={"console_scripts": {"bin/evil": "evil:main"}}),
        "entry-point-dotdot": _evil(entry_points={"console_scripts": dotdot}),
        "data-scripts-python": _evil(data={"scripts/python3": "#!python\n" + _PWN.decode()}),
        "bad-data-scheme": _evil(data={"nonsense/x": "x\n"}),
        "high-ratio-member": _evil({"evil/zeros.bin": bytes(HIGH_RATIO_SIZE)}),
        "oversized-member": _evil({"evil/big.bin": bytes(1024)}),
        "corrupt-data": good,  # a byte of evil/__init__.py's data is flipped below
        "file-and-directory": _evil({"evil/mod": "x\n", "evil/mod/inner.py": "x = 1\n"}),
    }
    out_dir = Path(out_dir)
    result = []
    for case_id, members in cases.items():
        path = out_dir / case_id / wheel_filename("evil", "1.0")
        sizes = {"evil/big.bin": HUGE_SIZE} if case_id == "oversized-member" else None
        result.append((case_id, _write_zip(path, members, sizes)))
        if case_id == "corrupt-data":
            _flip_data_byte(path, "evil/__init__.py")
    return result


def _flip_data_byte(path: Path, member: str) -> None:
    """Invert the first byte of ``member``'s stored data: its CRC no longer matches."""
    with zipfile.ZipFile(path) as zf:
        offset = zf.getinfo(member).header_offset
    with path.open("r+b") as f:
        name_len, extra_len = _local_header_lengths(f, offset)
        f.seek(offset + 30 + name_len + extra_len)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))


# --------------------------------------------------------------------------- C extension wheels

_C_SOURCE = r"""
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *answer(PyObject *self, PyObject *unused) { return PyLong_FromLong(42); }

static PyMethodDef methods[] = {
    {"answer", answer, METH_NOARGS, "Return 42."},
    {NULL, NULL, 0, NULL},
};
static PyModuleDef_Slot slots[] = {
#ifdef Py_mod_gil
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_speedup", NULL, 0, methods, slots};

PyMODINIT_FUNC PyInit__speedup(void) { return PyModuleDef_Init(&module); }
"""

_QUERY = (
    "import json, sys, sysconfig; print(json.dumps({"
    "'version': list(sys.version_info[:2]), "
    "'include': sysconfig.get_path('include'), "
    "'ext_suffix': sysconfig.get_config_var('EXT_SUFFIX'), "
    "'platform': sysconfig.get_platform(), "
    "'gil_disabled': bool(sysconfig.get_config_var('Py_GIL_DISABLED'))}))"
)


@cache
def _interpreter_info(python: str) -> dict[str, Any]:
    out = subprocess.run([python, "-c", _QUERY], check=True, capture_output=True, text=True).stdout
    info: dict[str, Any] = json.loads(out)
    return info


def interpreter_tag(python: str | Path) -> str:
    """CPython tag, e.g. ``cp311-cp311-linux_x86_64`` (``cp313-cp313t-...`` if free-threaded)."""
    info = _interpreter_info(str(python))
    major, minor = info["version"]
    plat = str(info["platform"]).replace("-", "_").replace(".", "_")
    abi_suffix = "t" if info["gil_disabled"] else ""
    return f"cp{major}{minor}-cp{major}{minor}{abi_suffix}-{plat}"


def build_extension_wheel(out_dir: Path, name: str, version: str, python: str | Path) -> Path:
    """Wheel a real ``{pkg}/_speedup{EXT_SUFFIX}`` (``answer() -> 42``) compiled for ``python``."""
    info = _interpreter_info(str(python))
    pkg = import_name(name)
    so_name = f"{pkg}/_speedup{info['ext_suffix']}"
    with tempfile.TemporaryDirectory(prefix="wheelmaker-") as tmp:
        src, so = Path(tmp, "_speedup.c"), Path(tmp, "_speedup.so")
        src.write_text(_C_SOURCE)
        cmd = ["gcc", "-shared", "-fPIC", "-O1", f"-I{info['include']}", "-o", str(so), str(src)]
        subprocess.run(cmd, check=True, capture_output=True)
        so_bytes = so.read_bytes()
    return build_wheel(
        out_dir,
        name,
        version,
        files={f"{pkg}/__init__.py": "from ._speedup import answer\n", so_name: so_bytes},
        tag=interpreter_tag(python),
        executable={so_name},
        root_is_purelib=False,
    )
