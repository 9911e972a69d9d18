"""Lock files: the exact wheels of an environment, to rebuild it elsewhere.

A lock names every package's wheel file and its sha256 (the hash pip's
``--require-hashes`` checks), plus the interpreter the set was resolved for.
It is written from an env's manifest and the store's ``entry.json`` files
alone: the env's interpreter is never started (it may be gone).

Format (JSON, ``lock-version`` 1; see store-layout.md, "Lock files")::

    {"lock-version": 1, "created-by": "envstore 0.1.0",
     "python": {"implementation": "cpython", "version": "3.12.1", "abi_tag": "cp312",
                "soabi": "cpython-312-x86_64-linux-gnu", "platform": "linux-x86_64"},
     "requirements": ["requests"],
     "packages": [{"name": "requests", "version": "2.32.3",
                   "wheel": "requests-2.32.3-py3-none-any.whl",
                   "hash": "sha256:<64 hex>", "requested": true}, ...]}
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from envstore.errors import LockError

__all__ = ["LOCK_VERSION", "Lock", "LockedPackage", "LockedPython"]

LOCK_VERSION = 1
_SHA256 = re.compile(r"^sha256:[0-9a-f]{64}$")
_WHEEL = re.compile(r"^[A-Za-z0-9_.+!-]+\.whl$")


@dataclass(frozen=True)
class LockedPackage:
    """One package of a lock: exactly this wheel file, with this sha256."""

    name: str  # normalized (PEP 503)
    version: str
    wheel: str  # file name, no directory
    sha256: str  # 64 hex digits
    requested: bool

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "version": self.version,
            "wheel": self.wheel,
            "hash": f"sha256:{self.sha256}",
            "requested": self.requested,
        }

    def pip_line(self) -> str:
        """``name==version --hash=sha256:...`` as pip's ``--require-hashes`` wants it."""
        return f"{self.name}=={self.version} --hash=sha256:{self.sha256}"


@dataclass(frozen=True)
class LockedPython:
    """What the lock was resolved for; a rebuild needs the same implementation and minor."""

    implementation: str
    version: str
    abi_tag: str
    soabi: str
    platform: str

    @property
    def minor(self) -> str:
        return ".".join(self.version.split(".")[:2])

    def to_json(self) -> dict[str, str]:
        return {
            "implementation": self.implementation,
            "version": self.version,
            "abi_tag": self.abi_tag,
            "soabi": self.soabi,
            "platform": self.platform,
        }


@dataclass
class Lock:
    python: LockedPython
    packages: list[LockedPackage]
    requirements: list[str] = field(default_factory=list)
    version: int = LOCK_VERSION

    def to_json(self) -> dict[str, object]:
        from envstore._version import __version__

        return {
            "lock-version": self.version,
            "created-by": f"envstore {__version__}",
            "python": self.python.to_json(),
            "requirements": self.requirements,
            "packages": [p.to_json() for p in self.packages],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1) + "\n"

    def pip_requirements(self) -> str:
        """The lock as a pip requirements file (``pip install --no-deps --require-hashes -r``)."""
        head = (
            f"# envstore lock for Python {self.python.version} ({self.python.abi_tag},"
            f" {self.python.platform})\n"
        )
        return head + "".join(p.pip_line() + "\n" for p in self.packages)

    def save(self, path: str | os.PathLike[str], *, pip_requirements: bool = False) -> None:
        """Write the lock to ``path`` atomically: a reader sees the old file or the whole
        new one, never half of it. JSON (what ``sync --from`` reads), or with
        ``pip_requirements`` the pip requirements file of ``pip_requirements()``."""
        path = Path(path)
        text = self.pip_requirements() if pip_requirements else self.dumps()
        tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"  # same directory: same file system
        try:
            tmp.write_text(text)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    @classmethod
    def from_json(cls, data: object, source: str) -> Lock:
        def bad(why: str) -> LockError:
            return LockError(f"{source}: {why}")

        if not isinstance(data, dict) or not isinstance(data.get("lock-version"), int):
            raise bad("not an envstore lock (no lock-version)")
        version = data["lock-version"]
        if version > LOCK_VERSION:
            raise bad(f"lock version {version} is newer than this envstore understands")
        try:
            py = data["python"]
            python = LockedPython(
                implementation=str(py["implementation"]),
                version=str(py["version"]),
                abi_tag=str(py["abi_tag"]),
                soabi=str(py["soabi"]),
                platform=str(py["platform"]),
            )
            packages = []
            for p in data["packages"]:
                digest = str(p["hash"])
                wheel = str(p["wheel"])
                if not _SHA256.match(digest):
                    raise bad(f"package {p['name']}: hash {digest!r} is not sha256:<64 hex>")
                if not _WHEEL.match(wheel) or wheel.startswith("."):
                    raise bad(f"package {p['name']}: {wheel!r} is not a wheel file name")
                packages.append(
                    LockedPackage(
                        name=str(p["name"]),
                        version=str(p["version"]),
                        wheel=wheel,
                        sha256=digest.split(":", 1)[1],
                        requested=bool(p.get("requested", False)),
                    )
                )
            requirements = [str(r) for r in data.get("requirements", [])]
        except (KeyError, TypeError, AttributeError) as exc:
            raise bad(f"invalid lock ({exc!r})") from None
        names = [p.name for p in packages]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise bad(f"packages listed twice: {', '.join(dupes)}")
        return cls(python, packages, requirements, version)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Lock:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise LockError(f"cannot read lock file {path}: {exc}") from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise LockError(f"{path} is not valid JSON ({exc})") from None
        return cls.from_json(data, str(path))
