"""The environment manifest, ``envstore.json`` at the env root.

It is the complete description of an environment: the interpreter (as asked,
as recorded, as resolved, version and ABI) and every package with its store
key. Parsed once into types at the edge; anything malformed, truncated or from
a newer envstore raises BadManifestError (and gc then keeps everything).
"""

from __future__ import annotations

import json
import os
from json.encoder import encode_basestring_ascii as _enc  # json.dumps(str), no set-up
from pathlib import Path

from envstore.errors import BadManifestError
from envstore.model.interpreter import Interpreter
from envstore.model.keys import EntryKey
from envstore.model.manifest_rows import package_row
from envstore.model.sources import RecordedSources, public_url

# The name this module has always exported for the manifest's "sources".
Sources = RecordedSources

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "MANIFEST_NAME",
    "MANIFEST_VERSION",
    "EditablePackage",
    "Manifest",
    "Outcome",
    "Package",
    "RecordedSources",
    "Sources",
    "public_requirement",
    "public_url",
]

MANIFEST_NAME = "envstore.json"
# 2: "sources", where the env's wheels came from (a version 1 manifest has none).
# 3: "editables", projects installed editable into the env's own site-packages (a
#    version 2 manifest has none). An envstore that reads only version 2 refuses it.
MANIFEST_VERSION = 3


def public_requirement(text: str) -> str:
    """A requirement line with every URL in it made public (``name @ https://u:p@...``)."""
    if "://" not in text:  # no URL: as it is (a sync's ~20 lines, a regex each)
        return text
    import re

    return re.sub(r"[A-Za-z][A-Za-z0-9+.-]*://\S+", lambda m: public_url(m.group(0)), text)


class Package:
    """One package of an env (a plain class: see EntryKey)."""

    __slots__ = ("key", "name", "requested", "version", "wheel")

    def __init__(self, name: str, version: str, key: EntryKey, wheel: str, requested: bool) -> None:
        self.name = name
        self.version = version
        self.key = key
        self.wheel = wheel
        self.requested = requested

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Package) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"Package({self.name!r}, {self.version!r}, {str(self.key)!r})"

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "version": self.version,
            "hash": f"xxh3_128:{self.key.hash}",
            "key": str(self.key),
            "wheel": self.wheel,
            "requested": self.requested,
        }


class EditablePackage:
    """A project installed editable (PEP 660) into the env's own site-packages, not the
    store: its name and version, the project directory, the extras asked for, the
    editable wheel it was installed from and the project's stamp when that wheel was
    built (``envstore.env.editable.project_stamp``; "" in manifests from before it was
    recorded), which doctor compares with the project now (a plain class: see EntryKey)."""

    __slots__ = ("extras", "name", "path", "stamp", "version", "wheel")

    def __init__(
        self,
        name: str,
        version: str,
        path: str,
        extras: tuple[str, ...],
        wheel: str,
        stamp: str = "",
    ) -> None:
        self.name = name
        self.version = version
        self.path = path
        self.extras = extras
        self.wheel = wheel
        self.stamp = stamp

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EditablePackage) and self.to_json() == other.to_json()

    def __hash__(self) -> int:
        return hash((self.name, self.path))

    def __repr__(self) -> str:
        return f"EditablePackage({self.name!r}, {self.version!r}, {self.path!r})"

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "version": self.version,
            "path": self.path,
            "extras": list(self.extras),
            "wheel": self.wheel,
            "stamp": self.stamp,
        }

    @classmethod
    def from_json(cls, data: object) -> EditablePackage:
        """Validated: the path is data from disk (shown, never built from: a command
        that builds a project is given its directory by the user)."""
        if not isinstance(data, dict):
            raise TypeError(f"an editable must be an object, not {data!r}")
        path = data["path"]
        if not isinstance(path, str) or not path.startswith("/") or "\0" in path:
            raise ValueError(f"editable path must be an absolute path, not {path!r}")
        extras = data.get("extras", [])
        if not isinstance(extras, list):
            raise TypeError(f"editable extras must be a list, not {extras!r}")
        stamp = data.get("stamp", "")
        if not isinstance(stamp, str) or stamp.strip("0123456789abcdef"):
            raise ValueError(f"editable stamp must be hex digits, not {stamp!r}")
        return cls(
            str(data["name"]),
            str(data["version"]),
            path,
            tuple(map(str, extras)),
            str(data["wheel"]),
            stamp,
        )


def _check_paths(
    data: dict[str, object], python: Interpreter, bad: Callable[[str], BadManifestError]
) -> None:
    """The fields commands turn into paths, checked before any is used: a manifest is
    data from disk (a cloned repository's ``.venv``), never a way to name a place
    outside the env or the store (store-layout.md, "Files are untrusted data")."""
    for name in ("env", "store"):
        value = data[name]
        if not isinstance(value, str) or not value.startswith("/") or "\0" in value:
            raise bad(f"{name} must be an absolute path, not {value!r}")
    view = data["view"]
    if not isinstance(view, str) or len(view) != 32 or view.strip("0123456789abcdef"):
        raise bad(f"view must be a view key (32 hex digits), not {view!r}")
    abiflag = "t" if python.abi_tag.endswith(("t", "td")) else ""
    purelib = f"lib/python{python.minor}{abiflag}/site-packages"
    if python.purelib != purelib:
        raise bad(f"python.purelib must be {purelib!r}, not {python.purelib!r}")
    for name in ("path", "stdlib"):
        value = getattr(python, name)
        if not value.startswith("/") or "\0" in value:
            raise bad(f"python.{name} must be an absolute path, not {value!r}")


class Outcome:
    """How a create or sync went, never saved: how many packages came from the store as
    they were and how many were fetched (downloaded, built or unpacked anew), whether
    pip resolved, and what was said of the index (consulted or not, and why)."""

    def __init__(self, from_store: int, fetched: int, pip_resolved: bool, index: str) -> None:
        self.from_store = from_store
        self.fetched = fetched
        self.pip_resolved = pip_resolved
        self.index = index

    def summary(self) -> str:
        """``3 from the store, 2 fetched; resolved by pip``."""
        parts = [f"{self.from_store} from the store"]
        if self.fetched:
            parts.append(f"{self.fetched} fetched")
        return ", ".join(parts) + ("; resolved by pip" if self.pip_resolved else "")


class Manifest:
    """An env's manifest (a plain class: see EntryKey). ``outcome``: how the create that
    made it went (None for one loaded from disk)."""

    def __init__(
        self,
        env: str,
        store: str,
        python: Interpreter,
        view: str,
        packages: list[Package],
        requirements: list[str] | None = None,
        created: float = 0.0,
        version: int = MANIFEST_VERSION,
        sources: RecordedSources | None = None,
        editables: list[EditablePackage] | None = None,
    ) -> None:
        self.env = env
        self.store = store
        self.python = python
        self.view = view
        self.packages = packages
        self.requirements = requirements or []
        self.created = created
        self.version = version
        self.sources = sources or RecordedSources()
        self.editables = editables or []
        self.outcome: Outcome | None = None
        # The file's text when loaded from disk (None otherwise): what a check of the
        # registered digest must hash, not a second read that may differ.
        self.text: str | None = None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Manifest) and self.to_json() == other.to_json()

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it replaced

    def __repr__(self) -> str:
        return f"Manifest(env={self.env!r}, packages={len(self.packages)})"

    @property
    def keys(self) -> list[EntryKey]:
        return [p.key for p in self.packages]

    def to_json(self) -> dict[str, object]:
        data = dict(self.to_json_head())
        data["packages"] = [p.to_json() for p in self.packages]
        return data

    def to_json_head(self) -> list[tuple[str, object]]:
        """``to_json``'s fields before ``"packages"`` (the last), in order."""
        return [
            ("version", self.version),
            ("env", self.env),
            ("store", self.store),
            ("created", self.created),
            ("python", self.python.to_json()),
            ("requirements", self.requirements),
            ("sources", self.sources.to_json()),
            ("view", self.view),
            ("editables", [e.to_json() for e in self.editables]),
        ]

    def dumps(self) -> str:
        """A line per field and per package. (``indent=`` would make json use its
        pure-Python encoder: ~7 ms for jupyterlab's 91 packages, here ~1 ms.) A string
        goes through json's own C string encoder, a package's row as json.dumps would
        write it (a test holds them equal), once per process (``package_row``)."""
        data = self.to_json_head()
        lines = [f" {_enc(k)}: {_enc(v) if type(v) is str else json.dumps(v)}" for k, v in data]
        rows = ",\n".join(
            package_row(p.name, p.version, p.key.hash, str(p.key), p.wheel, p.requested)
            for p in self.packages
        )
        lines.append(f' "packages": [\n{rows}\n ]' if rows else ' "packages": []')
        return "{\n" + ",\n".join(lines) + "\n}\n"

    def save(self, env: Path) -> str:
        """Write ``env/envstore.json`` into a new env's directory (published whole, by a
        rename, by the caller); return the text written."""
        text = self.dumps()
        path = f"{env}/{MANIFEST_NAME}"
        # Never through whatever is there (a link a wheel's data files made): replace it.
        if os.path.lexists(path):
            os.unlink(path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:  # bare writes: a text file object's set-up costs an fstat, an ioctl, two lseeks
            data = memoryview(text.encode("utf-8"))
            while data:
                data = data[os.write(fd, data) :]
        finally:
            os.close(fd)
        return text

    @classmethod
    def from_json(cls, data: object, source: str) -> Manifest:
        def bad(why: str) -> BadManifestError:
            return BadManifestError(f"{source}: {why}")

        if not isinstance(data, dict):
            raise bad("not a JSON object")
        version = data.get("version")
        if not isinstance(version, int):
            raise bad("no manifest version")
        if version > MANIFEST_VERSION:
            raise bad(f"manifest version {version} is newer than this envstore understands")
        try:
            python = Interpreter.from_json(data["python"])
            packages = [
                Package(
                    name=str(p["name"]),
                    version=str(p["version"]),
                    key=EntryKey.parse(p["key"]),
                    wheel=str(p["wheel"]),
                    requested=bool(p["requested"]),
                )
                for p in data["packages"]
            ]
            _check_paths(data, python, bad)
            for pkg in packages:
                if (pkg.name, pkg.version) != (pkg.key.name, pkg.key.version):
                    raise bad(
                        f"package {pkg.name!r} {pkg.version!r} does not match its store entry"
                        f" {pkg.key}"
                    )
                if pkg.key.abi not in ("pure", python.soabi):
                    raise bad(
                        f"package {pkg.name} uses store entry {pkg.key} built for ABI"
                        f" {pkg.key.abi}, but the env's interpreter is {python.soabi}"
                    )
            return cls(
                env=str(data["env"]),
                store=str(data["store"]),
                python=python,
                view=str(data["view"]),
                packages=packages,
                requirements=[str(r) for r in data.get("requirements", [])],
                created=float(data.get("created", 0.0)),
                version=MANIFEST_VERSION,  # read as this version; saved as this version
                sources=RecordedSources.from_json(data.get("sources")),
                editables=[EditablePackage.from_json(e) for e in data.get("editables", [])],
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise bad(f"invalid manifest ({exc!r})") from None

    @classmethod
    def load(cls, path: Path) -> Manifest:
        """Read ``path`` (a manifest file or an env directory)."""
        if os.path.isdir(path):
            path = path / MANIFEST_NAME
        try:
            text = _read_regular(path)
        except FileNotFoundError:
            raise BadManifestError(f"{path} does not exist (not an envstore environment)") from None
        except OSError as exc:
            raise BadManifestError(f"{path} cannot be read: {exc}") from None
        except ValueError as exc:  # not a regular file, too big, not UTF-8
            raise BadManifestError(f"{path} cannot be read: {exc}") from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise BadManifestError(f"{path} is not valid JSON ({exc})") from None
        manifest = cls.from_json(data, str(path))
        manifest.text = text
        return manifest


def same_env(manifest: Manifest, env: Path) -> str:
    """The manifest's own spelling of ``env``'s path when both name one directory (a
    symlinked parent, /tmp vs /private/tmp), so that is not taken for a move."""
    if manifest.env != str(env):
        try:
            if os.path.samefile(manifest.env, env):
                return manifest.env
        except OSError:
            pass
    return str(env)


_MANIFEST_LIMIT = 64 << 20  # far above any env's manifest (big's 91 packages: ~30 KB)


def _read_regular(path: Path) -> str:
    """The text of ``path`` if it is a regular file (a FIFO planted as a cloned repo's
    ``envstore.json`` is never waited on; a device or a huge file is never read whole)."""
    import stat

    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file")
        if st.st_size > _MANIFEST_LIMIT:
            raise ValueError(f"larger than {_MANIFEST_LIMIT} bytes")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks).decode("utf-8")
    finally:
        os.close(fd)
