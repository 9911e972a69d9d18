"""What installing a cached editable wheel needs, read once from the wheel and
kept beside it in ``wheel.json`` (``envstore.store.editables``): its name, version,
Requires-Dist and files, and the Requires-Dist that apply per interpreter and extras.
A sync that takes the wheel from the cache then reads neither the zip nor its
METADATA, nor imports packaging's requirement parser (~30 ms, more than the rest
of a warm sync).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path

from envstore.errors import BuildError
from envstore.model.interpreter import Interpreter
from envstore.model.keys import canonical_name
from envstore.model.members import plain_member
from envstore.store.editables import META_NAME, EditableCache
from envstore.store.hashing import sha256

__all__ = ["EditableMeta", "cached_requirements", "editable_meta", "requirements"]

_NAME = r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?"
_VERSION = r"[A-Za-z0-9][A-Za-z0-9.+!_-]*"

# A file of an editable wheel larger than this is left to pypa/installer to install
# (an editable wheel holds a .pth or an import hook: a few kilobytes).
_MAX_FILE = 1 << 20


def requirements(
    name: str, requires: Sequence[str], extras: Sequence[str], interp: Interpreter
) -> list[str]:
    """The Requires-Dist that apply to ``interp`` with ``extras``, markers dropped. A
    requirement on the project itself (``sample[test]`` in its own extra) adds its
    extras instead."""
    from packaging.requirements import InvalidRequirement, Requirement

    wanted = {canonical_name(e) for e in extras}
    parsed = []
    for text in requires:
        try:
            parsed.append(Requirement(text))
        except InvalidRequirement as exc:
            raise BuildError(f"{name} has an invalid Requires-Dist {text!r}: {exc}") from None
    out: list[str] = []
    changed = True
    while changed:  # self-references may add extras, which may add more
        changed = False
        out = []
        for req in parsed:
            if req.marker is not None and not any(
                req.marker.evaluate({**interp.markers, "extra": e}) for e in ("", *sorted(wanted))
            ):
                continue
            if canonical_name(req.name) == canonical_name(name):
                more = {canonical_name(e) for e in req.extras} - wanted
                if more:
                    wanted |= more
                    changed = True
                continue
            plain = Requirement(str(req))
            plain.marker = None
            out.append(str(plain))
    return list(dict.fromkeys(out))


class EditableMeta:
    """What installing a cached editable wheel needs (see ``store.editables``):
    name, version, Requires-Dist, and its files when envstore installs them itself
    (None: the wheel has more than plain files for site-packages, and pypa/installer
    installs it)."""

    __slots__ = ("data", "files", "name", "requires", "version")

    def __init__(
        self, name: str, version: str, requires: list[str], files: dict[str, bytes] | None
    ) -> None:
        self.name = name
        self.version = version
        self.requires = requires
        self.files = files
        self.data: dict[str, object] = {}  # its wheel.json, as read or written


# What a process has read, by wheel.json's identity: a warm process (tox, an IDE)
# syncs the same project again and again, and checking every file name of the wheel
# again cost ~0.1 ms a sync. A wheel.json written anew (a rebuild, requirements for
# another interpreter) is another file, read again.
_METAS: dict[tuple[object, ...], EditableMeta] = {}


def _meta_key(wheel: Path) -> tuple[object, ...] | None:
    try:
        st = os.stat(f"{os.path.dirname(wheel)}/{META_NAME}", follow_symlinks=False)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return (str(wheel), st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)


def editable_meta(cache: EditableCache, wheel: Path) -> EditableMeta:
    """The wheel's ``EditableMeta``, from its ``wheel.json`` when that is whole and sound,
    else read from the wheel (and written there for the next sync)."""
    key = _meta_key(wheel)
    meta = _METAS.get(key) if key is not None else None
    if meta is None:
        meta = _editable_meta(cache, wheel)
        key = _meta_key(wheel)  # after: it may have written wheel.json
        if key is not None:
            if len(_METAS) >= 64:  # a process syncing many projects: bounded
                _METAS.clear()
            _METAS[key] = meta
    return meta


def _editable_meta(cache: EditableCache, wheel: Path) -> EditableMeta:
    data = cache.read_meta(wheel)
    if data is not None and data.get("wheel") == wheel.name:
        try:
            files, requires = data["files"], data["requires"]
            if not isinstance(requires, list) or not isinstance(data["requirements"], dict):
                raise TypeError("requires and requirements")
            meta = EditableMeta(
                _name(data["name"]),
                _version(data["version"]),
                [_text(r) for r in requires],
                None if files is None else _files(files),
            )
            meta.data = data
            return meta
        except (KeyError, TypeError, ValueError):
            pass  # damaged: read the wheel again
    meta = _read_wheel(wheel)
    meta.data = {
        "wheel": wheel.name,
        "name": meta.name,
        "version": meta.version,
        "requires": meta.requires,
        # Bytes as the code points 0-255: JSON holds any file, no base64 needed.
        "files": None
        if meta.files is None
        else {k: v.decode("latin-1") for k, v in meta.files.items()},
        "requirements": {},
    }
    cache.write_meta(wheel, meta.data)
    return meta


def _name(value: object) -> str:
    """A project name as the core metadata allows it (it becomes a path component:
    the headers directory of an install, the manifest's editable name)."""
    if not isinstance(value, str) or not re.fullmatch(_NAME, value):
        raise ValueError(f"not a project name: {value!r}")
    return value


def _version(value: object) -> str:
    if not isinstance(value, str) or not re.fullmatch(_VERSION, value):
        raise ValueError(f"not a version: {value!r}")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, not {value!r}")
    return value


def _files(value: object) -> dict[str, bytes]:
    """A ``wheel.json``'s files, each name checked as it would be in the wheel."""
    if not isinstance(value, dict):
        raise TypeError("files must be an object")
    out = {}
    for name, data in value.items():
        if plain_member(name) is None or not isinstance(data, str):
            raise ValueError(f"bad file {name!r}")
        out[name] = data.encode("latin-1")
    return out


def _read_wheel(wheel: Path) -> EditableMeta:
    """Name, version, Requires-Dist and (when plain) the files of an editable wheel."""
    import zipfile
    from email.parser import BytesParser

    try:
        with zipfile.ZipFile(wheel) as z:
            names = [n for n in z.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n)]
            if len(names) != 1:
                raise BuildError(f"{wheel} has {len(names)} dist-info/METADATA files, not one")
            msg = BytesParser().parsebytes(z.read(names[0]))
            members = [i for i in z.infolist() if not i.is_dir()]
            files: dict[str, bytes] | None = {}
            for info in members:
                if plain_member(info.filename) is None or info.file_size > _MAX_FILE:
                    files = None
                    break
                files[info.filename] = z.read(info)  # type: ignore[index]
    except (OSError, zipfile.BadZipFile) as exc:
        raise BuildError(f"cannot read the editable wheel {wheel}: {exc}") from None
    name, version = msg.get("Name"), msg.get("Version")
    if not name or not version:
        raise BuildError(f"{wheel}: its METADATA has no Name or Version")
    if not re.fullmatch(_NAME, str(name)) or not re.fullmatch(_VERSION, str(version)):
        raise BuildError(f"{wheel}: its METADATA has an invalid Name or Version")
    if files is not None:
        record = names[0].rsplit("/", 1)[0] + "/RECORD"
        files.pop(record, None)  # written anew with what is installed
    return EditableMeta(
        str(name), str(version), [str(r) for r in msg.get_all("Requires-Dist") or []], files
    )


def cached_requirements(
    cache: EditableCache,
    wheel: Path,
    meta: EditableMeta,
    extras: tuple[str, ...],
    interp: Interpreter,
) -> list[str]:
    """``requirements`` for this wheel, ``extras`` and ``interp``, kept in the wheel's
    ``wheel.json`` per extras and marker environment: packaging's requirement parser
    costs ~30 ms to import, more than the rest of a warm sync."""
    import json

    env = sha256(json.dumps(interp.markers, sort_keys=True).encode()).hexdigest()[:16]
    key = f"{env}:{','.join(extras)}"
    known = meta.data["requirements"]
    assert isinstance(known, dict)  # checked by _meta
    found = known.get(key)
    if isinstance(found, list) and all(isinstance(r, str) for r in found):
        return list(found)
    out = requirements(meta.name, meta.requires, extras, interp)
    known[key] = out
    cache.write_meta(wheel, meta.data)
    return out
