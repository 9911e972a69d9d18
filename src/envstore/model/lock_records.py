"""The records of a lock: its packages (``LockedPackage``), source trees
(``LockedDirectory``) and interpreters (``LockedPython``), and the checks of the names
and lines a lock hands on (file names, sha256, pip's requirement lines)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from envstore.errors import LockError

__all__ = [
    "FULL_COMMIT",
    "LOCK_VERSION",
    "SHA256",
    "SOURCE_NAME",
    "WHEEL_NAME",
    "LockedDirectory",
    "LockedPackage",
    "LockedPython",
    "relative_parts",
    "requirement_line",
]

LOCK_VERSION = "1.0"  # PEP 751's lock-version
SHA256 = re.compile(r"[0-9a-f]{64}\Z")  # with .match: no trailing newline either
# A full commit hash (a branch or tag name moves): git's SHA-1 or SHA-256, hg's.
FULL_COMMIT = {"git": re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}"), "hg": re.compile(r"[0-9a-f]{40}")}
WHEEL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+!-]*\.whl$")
SOURCE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+!-]*\.(tar\.gz|tgz|tar\.bz2|tar\.xz|zip)$")


@dataclass(frozen=True)
class LockedPackage:
    """One package of a lock: exactly this wheel file, with this sha256, and where the
    file is when known (``path``: absolute, or relative to the lock file; ``url``)."""

    name: str  # normalized (PEP 503)
    version: str
    wheel: str  # file name, no directory
    sha256: str  # 64 hex digits
    requested: bool
    path: str | None = None
    url: str | None = None
    index: str | None = None  # the package index (PEP 503 base URL) the wheel is on
    marker: str | None = None  # PEP 751: when it is installed (extras, dependency groups)
    # "wheel"; "sdist" or "archive" (an sdist or other source archive: ``wheel`` is
    # its file name, pip builds it); "vcs" (``url`` is pip's ``git+URL@commit``, no
    # file, no hash); "directory" (a source tree at ``path`` installed as a wheel pip
    # builds: no version, no hash)
    kind: str = "wheel"
    subdirectory: str | None = None  # an archive's project, below its top (plain parts)

    def pip_line(self) -> str:
        """``name==version --hash=sha256:...`` as pip's ``--require-hashes`` wants it
        (``name @ URL --hash=...`` when the lock names the wheel's http(s) URL)."""
        if self.url and self.url.startswith(("https://", "http://")):
            return requirement_line(f"{self.name} @ {self.url} --hash=sha256:{self.sha256}")
        return requirement_line(f"{self.name}=={self.version} --hash=sha256:{self.sha256}")


def relative_parts(path: str) -> bool:
    """``path`` is empty or plain relative components (letters, digits, ``_.+-``): not
    absolute, no ``..``, nothing pip's URL fragment would read as more (a lock's or a
    requirement's ``subdirectory``)."""
    return not path or all(
        re.fullmatch(r"[\w.+-]+", part) and part != ".." for part in path.split("/")
    )


def requirement_line(line: str) -> str:
    """``line``, checked as one line of a requirements file handed to pip: pip reads
    ``${NAME}`` there as an environment variable (before it checks any hash), and a line
    break or control character as more lines. A lock's URLs are refused before this; it
    is the last check, so LockError names the line and the fix."""
    if "$" in line or not all(c.isprintable() for c in line):
        raise LockError(
            f"refusing to hand pip the requirement line {line!r}: a '$' (pip expands"
            " ${NAME} from the environment) or a control character is not a plain URL;"
            " lock again from a plain source"
        )
    return line


@dataclass(frozen=True)
class LockedDirectory:
    """A package of a lock that is a source tree (PEP 751 ``directory``): a project,
    installed editable when ``editable``; ``path`` absolute, or relative to the lock."""

    name: str
    path: str
    editable: bool
    marker: str | None = None


@dataclass(frozen=True)
class LockedPython:
    """What the lock was resolved for; a rebuild needs the same implementation and minor."""

    implementation: str
    version: str
    abi_tag: str
    soabi: str
    platform: str
    sys_platform: str = ""
    machine: str = ""  # platform_machine

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
            "sys_platform": self.sys_platform,
            "platform_machine": self.machine,
        }

    def environment(self) -> str:
        """The PEP 751 ``environments`` marker this lock was made for."""
        parts = [
            f"implementation_name == '{self.implementation}'",
            f"python_version == '{self.minor}'",
        ]
        if self.sys_platform:
            parts.append(f"sys_platform == '{self.sys_platform}'")
        if self.machine:
            parts.append(f"platform_machine == '{self.machine}'")
        return " and ".join(parts)

    @classmethod
    def from_json(cls, data: object) -> LockedPython | None:
        """The lock's record of its Python, or None when it is not one: the version is
        data from a file, and a Python of its minor version is searched for (a path or a
        program name there would be run)."""
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            return None
        if not re.fullmatch(r"\d+\.\d+\.\d+[a-z0-9.+]*", data.get("version", "")):
            return None
        if not re.fullmatch(r"[a-z][a-z0-9_]*", data.get("implementation", "")):
            return None
        try:
            return cls(
                data["implementation"],
                data["version"],
                data["abi_tag"],
                data["soabi"],
                data["platform"],
                data.get("sys_platform", ""),
                data.get("platform_machine", ""),
            )
        except KeyError:
            return None
