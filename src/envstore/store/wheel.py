"""Validating a wheel before anything of it is written.

Every check runs and every problem is reported together (like installer's
``validate_record``), so a bad wheel gets one error listing all it got wrong.
Ingest passes ``contents=False`` and leaves the member hashes to the unpacking
(``store.ingest.unpack_wheel``), which reports every mismatch together too.
Stricter than pypa/installer: RECORD rows without a file, md5/sha1 hashes,
symlink members, absurd sizes and compression ratios are refused too.
"""

from __future__ import annotations

import base64
import configparser
import csv
import hashlib
import io
import re
import stat
import zipfile
import zlib
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

from packaging.tags import Tag
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from envstore.errors import BadWheelError
from envstore.model.members import bad_member_name
from envstore.model.wheel import EntryPoint, WheelInfo

__all__ = [
    "MAX_MEMBER_SIZE",
    "MAX_RATIO",
    "MAX_TOTAL_SIZE",
    "WheelInfo",
    "parse_wheel_name",
    "validate_wheel",
]

MAX_MEMBER_SIZE = 2 * 1024**3
MAX_TOTAL_SIZE = 8 * 1024**3
MAX_RATIO = 200  # uncompressed/compressed, checked for members over RATIO_FLOOR bytes
RATIO_FLOOR = 16 * 1024**2
_GOOD_HASHES = {"sha256", "sha384", "sha512", "sha3_256", "sha3_384", "sha3_512", "blake2b"}
_SCHEMES = {"purelib", "platlib", "scripts", "data", "headers"}
# Files of an env that envstore writes and a wheel's scripts or top-level data files
# would land on (reliability promise 16: a wheel cannot impersonate envstore).
_RESERVED = {
    "envstore.json": "the env's manifest",
    "pyvenv.cfg": "the env's pyvenv.cfg",
    ".envstore-scripts": "the env's console-script launcher",
}
_SCRIPT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+-]*$")
_PYTHON_NAME = re.compile(r"^python(\d+(\.\d+)?t?)?(\.exe)?$", re.IGNORECASE)


def _check_record(
    zf: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    dist_info: str,
    problems: list[str],
    contents: bool,
) -> None:
    record_name = f"{dist_info}/RECORD"
    if record_name not in members:
        problems.append(f"{record_name} is missing")
        return
    try:
        text = zf.read(record_name).decode("utf-8")
        rows = list(csv.reader(io.StringIO(text)))
    except (UnicodeDecodeError, csv.Error) as exc:
        problems.append(f"RECORD cannot be parsed: {exc}")
        return
    listed: dict[str, tuple[str, str]] = {}
    for row in rows:
        if not row:
            continue
        if len(row) != 3:
            problems.append(f"RECORD row {row!r} does not have 3 fields")
            continue
        path, hash_, size = row
        if path in listed:
            problems.append(f"RECORD lists {path!r} twice")
        listed[path] = (hash_, size)
    for name, info in members.items():
        if name.endswith("/"):
            continue
        if name not in listed:
            if name.split("/")[-1] not in ("RECORD.jws", "RECORD.p7s") or not name.startswith(
                dist_info + "/"
            ):
                problems.append(f"{name} is not listed in RECORD")
            continue
        if name == record_name:
            continue
        hash_, size = listed[name]
        algo, _, digest = hash_.partition("=")
        if not digest:
            problems.append(f"RECORD has no hash for {name}")
            continue
        if algo not in _GOOD_HASHES:
            problems.append(f"RECORD uses the weak or unknown hash {algo!r} for {name}")
            continue
        if not size.isdigit() or int(size) != info.file_size:
            problems.append(f"RECORD size of {name} is {size!r}, the file has {info.file_size}")
            continue
        if info.file_size > MAX_MEMBER_SIZE or not contents:
            continue  # too large is reported elsewhere: never read it
        h = hashlib.new(algo)
        try:
            with zf.open(info) as stream:
                for chunk in iter(lambda: stream.read(1 << 20), b""):
                    h.update(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            problems.append(f"{name}: a member cannot be inflated: {exc}")
            continue
        actual = base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()
        if actual != digest.rstrip("="):
            problems.append(f"RECORD hash of {name} does not match its contents")
    for path in listed:
        if path not in members and not path.endswith("/"):
            problems.append(f"RECORD lists {path!r}, which is not in the wheel")


def _check_entry_points(text: str, problems: list[str]) -> list[EntryPoint]:
    parser = configparser.ConfigParser(delimiters="=", interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        problems.append(f"entry_points.txt cannot be parsed: {exc}")
        return []
    from installer.utils import parse_entrypoints

    found: list[EntryPoint] = []
    for section, kind in (("console_scripts", "console"), ("gui_scripts", "gui")):
        if not parser.has_section(section):
            continue
        for name, value in parser.items(section):
            one = f"[{section}]\n{name} = " + "\n  ".join(value.splitlines()) + "\n"
            try:  # the rule installer applies when it installs: what it refuses, we refuse
                for _ in parse_entrypoints(one):
                    pass
            except (AssertionError, configparser.Error, ValueError):
                problems.append(f"entry point {name} = {value!r} is one installer refuses")
                continue
            if not _SCRIPT_NAME.match(name) or ".." in name:
                problems.append(f"entry point script name {name!r} is not a plain file name")
                continue
            if _PYTHON_NAME.match(name):
                problems.append(f"entry point script {name!r} would replace the env's python")
                continue
            if name in _RESERVED:
                problems.append(f"entry point script {name!r} would replace {_RESERVED[name]}")
                continue
            target = value.split("[", 1)[0].strip()
            module, _, attr = target.partition(":")
            if not module.strip() or not re.match(r"^[\w.]+$", module.strip()):
                problems.append(f"entry point {name} = {value!r} is not 'module:attr'")
                continue
            found.append(EntryPoint(name, module.strip(), attr.strip(), kind))
    return found


# envstore's own .pth in every env (env.site.PTH_NAME): a wheel's would be lost.
_OWN_PTH = "00-envstore.pth"


def _check_pth(
    zf: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    data_dir: str,
    problems: list[str],
) -> None:
    """The ``.pth`` files at the top of site-packages: site.py reads each as text and
    envstore writes a copy into every env, so each must be a UTF-8 file."""
    tops = [f"{data_dir}/purelib/", f"{data_dir}/platlib/"]
    for name, info in members.items():
        rel = next((name[len(t) :] for t in tops if name.startswith(t)), name)
        top, _, rest = rel.partition("/")
        if not top.endswith(".pth"):  # the wheel's root and purelib/platlib: site's top
            continue
        if rest or info.is_dir():
            problems.append(f"{name}: a directory named like a .pth file")
        elif top == _OWN_PTH:
            problems.append(f"{name} would replace envstore's own {_OWN_PTH}")
        else:
            try:
                zf.read(info).decode("utf-8")
            except UnicodeDecodeError:
                problems.append(f"{name} is not UTF-8 text (site.py could not read it)")
            except (zipfile.BadZipFile, zlib.error, OSError) as exc:
                problems.append(f"{name} cannot be read: {exc}")


def parse_wheel_name(filename: str) -> tuple[NormalizedName, Version, Any, frozenset[Tag]]:
    """``packaging.utils.parse_wheel_filename``, raising BadWheelError."""
    try:
        return parse_wheel_filename(filename)
    except (InvalidWheelFilename, InvalidVersion) as exc:
        raise BadWheelError(
            filename,
            [f"not a valid wheel file name: {exc} (the wheel spec's name rules: rename it)"],
        ) from None


def validate_wheel(path: Path, contents: bool = True) -> WheelInfo:
    """Check everything about the wheel at ``path``; raise BadWheelError listing every problem.

    ``contents=False`` leaves out hashing each member against RECORD, for a caller
    that checks the hashes while unpacking (``store.ingest.unpack_wheel``) and so inflates
    each member once instead of twice.
    """
    label = path.name
    wname, wver, _build, tags = parse_wheel_name(path.name)
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise BadWheelError(label, [f"not a readable zip archive: {exc}"]) from None
    problems: list[str] = []
    with zf:
        infos = zf.infolist()
        members: dict[str, zipfile.ZipInfo] = {}
        total = 0
        for info in infos:
            name = info.filename
            # zipfile cuts names at a NUL byte; orig_filename keeps what the archive says.
            bad = bad_member_name(info.orig_filename)
            if bad:
                problems.append(bad)
            if name in members:
                problems.append(f"member {name!r} appears more than once")
            members[name] = info
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                problems.append(f"member {name!r} is a symbolic link")
            total += info.file_size
            if info.file_size > MAX_MEMBER_SIZE:
                problems.append(f"member {name!r} is too large ({info.file_size} bytes)")
            elif info.file_size > RATIO_FLOOR and info.file_size > MAX_RATIO * max(
                info.compress_size, 1
            ):
                problems.append(
                    f"member {name!r} has an absurd compression ratio"
                    f" ({info.file_size} bytes from {info.compress_size})"
                )
        if total > MAX_TOTAL_SIZE:
            problems.append(f"the wheel unpacks to {total} bytes, over the {MAX_TOTAL_SIZE} limit")
        parents: set[str] = set()
        for name in members:
            i = name.rfind("/")
            while i > 0 and name[:i] not in parents:  # a known parent has its own parents
                parents.add(name[:i])
                i = name.rfind("/", 0, i)
        for name in sorted(n for n in members if not n.endswith("/") and n in parents):
            problems.append(f"member {name!r} is a file, and a directory of other members")
        if problems:
            raise BadWheelError(label, problems)

        tops = {n.split("/", 1)[0] for n in members if "/" in n}
        dist_infos = sorted(t for t in tops if t.endswith(".dist-info"))
        if len(dist_infos) != 1:
            problems.append(f"expected exactly one .dist-info directory, found {dist_infos or 0}")
            raise BadWheelError(label, problems)
        dist_info = dist_infos[0]
        di_name, _, di_version = dist_info[: -len(".dist-info")].rpartition("-")
        if canonicalize_name(di_name) != wname:
            problems.append(f"{dist_info} does not match the file name's project {wname!r}")
        try:
            if Version(di_version) != wver:
                problems.append(f"{dist_info} does not match the file name's version {wver}")
        except InvalidVersion:
            problems.append(f"{dist_info} has an invalid version {di_version!r}")

        root_is_purelib = True
        wheel_file = f"{dist_info}/WHEEL"
        if wheel_file not in members:
            problems.append(f"{wheel_file} is missing")
        else:
            meta = HeaderParser().parsestr(zf.read(wheel_file).decode("utf-8", "replace"))
            wv = (meta.get("Wheel-Version") or "").strip()
            if not re.match(r"^1(\.\d+)?$", wv):
                problems.append(f"Wheel-Version {wv!r} is not supported (only 1.x)")
            root_is_purelib = (meta.get("Root-Is-Purelib") or "").strip().lower() == "true"

        requires: list[str] = []
        extras: list[str] = []
        metadata_file = f"{dist_info}/METADATA"
        if metadata_file not in members:
            problems.append(f"{metadata_file} is missing")
        else:
            meta = HeaderParser().parsestr(zf.read(metadata_file).decode("utf-8", "replace"))
            if canonicalize_name(meta.get("Name") or "") != wname:
                problems.append(f"METADATA Name {meta.get('Name')!r} does not match {wname!r}")
            try:
                if Version(meta.get("Version") or "") != wver:
                    problems.append(f"METADATA Version {meta.get('Version')!r} is not {wver}")
            except InvalidVersion:
                problems.append(f"METADATA Version {meta.get('Version')!r} is invalid")
            requires = [str(r) for r in meta.get_all("Requires-Dist") or []]
            extras = [str(e) for e in meta.get_all("Provides-Extra") or []]

        _check_record(zf, members, dist_info, problems, contents)

        entry_points: list[EntryPoint] = []
        ep_file = f"{dist_info}/entry_points.txt"
        if ep_file in members:
            text = zf.read(ep_file).decode("utf-8", "replace")
            entry_points = _check_entry_points(text, problems)

        data_dir = f"{dist_info[: -len('.dist-info')]}.data"
        skipped: list[str] = []
        for name in members:
            parts = name.split("/")
            if "__pycache__" in parts[:-1]:
                skipped.append(name)
            if parts[0] != data_dir or len(parts) < 2 or name.endswith("/"):
                continue
            if parts[1] not in _SCHEMES:
                problems.append(f"{name} is not in a known .data scheme directory")
            elif parts[1] == "scripts" and _PYTHON_NAME.match(parts[-1]):
                problems.append(f"{name} would replace the env's python")
            elif parts[1] == "scripts" and len(parts) > 3:
                problems.append(
                    f"{name} is in a directory under .data/scripts (scripts go to bin/)"
                )
            elif parts[1] == "scripts" and parts[-1] in _RESERVED:
                problems.append(f"{name} would replace {_RESERVED[parts[-1]]}")
            elif parts[1] == "data" and len(parts) >= 3 and parts[2] in _RESERVED:
                problems.append(f"{name} would replace {_RESERVED[parts[2]]}")

        _check_pth(zf, members, data_dir, problems)

    if problems:
        raise BadWheelError(label, problems)
    return WheelInfo(
        path=path,
        name=wname,
        version=str(wver),
        tags=frozenset(tags),
        dist_info=dist_info,
        data_dir=data_dir,
        root_is_purelib=root_is_purelib,
        requires=requires,
        extras=extras,
        entry_points=entry_points,
        skipped=skipped,
    )
