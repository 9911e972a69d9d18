"""Lock files: the exact wheels of an environment, as a PEP 751 ``pylock.toml``.

A lock names every package's wheel file, its sha256 (what pip's
``--require-hashes`` and every PEP 751 installer check) and where the file is
(``path``, relative to the lock file, or ``url``), plus the interpreter the set
was resolved for (``requires-python`` and ``environments``). envstore writes it
from an env's manifest and the store's ``entry.json`` files alone (the env's
interpreter is never started) and validates it with ``packaging.pylock``;
what PEP 751 has no field for goes into ``[tool.envstore]``::

    lock-version = "1.0"
    environments = ["implementation_name == 'cpython' and python_version == '3.12'
                     and sys_platform == 'linux' and platform_machine == 'x86_64'"]
    requires-python = "==3.12.*"
    created-by = "envstore"

    [[packages]]
    name = "requests"
    version = "2.32.3"
    [[packages.wheels]]
    name = "requests-2.32.3-py3-none-any.whl"
    path = "wheels/requests-2.32.3-py3-none-any.whl"
    hashes = {sha256 = "<64 hex>"}

    [tool.envstore]
    version = "0.1.0"          # of envstore
    requirements = ["requests"]
    requested = ["requests"]
    python = {implementation = "cpython", version = "3.12.1", abi_tag = "cp312", ...}

A ``Lock`` read from a file (``Lock.load``) keeps the validated
``packaging.pylock.Pylock``; which of its packages an env gets is chosen for
the target interpreter (``envstore.resolve.exact.select_locked``). The JSON
locks of envstore before PEP 751 are refused with the way to re-lock.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envstore.errors import LockError

__all__ = [
    "LOCK_VERSION",
    "Lock",
    "LockedDirectory",
    "LockedPackage",
    "LockedPython",
    "requirement_line",
]

LOCK_VERSION = "1.0"  # PEP 751's lock-version
SHA256 = re.compile(r"^[0-9a-f]{64}$")
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
    # "wheel"; "sdist" (an sdist or source archive: ``wheel`` is its file name, pip
    # builds it); "vcs" (``url`` is pip's ``git+URL@commit``, no file, no hash)
    kind: str = "wheel"

    def pip_line(self) -> str:
        """``name==version --hash=sha256:...`` as pip's ``--require-hashes`` wants it
        (``name @ URL --hash=...`` when the lock names the wheel's http(s) URL)."""
        if self.url and self.url.startswith(("https://", "http://")):
            return requirement_line(f"{self.name} @ {self.url} --hash=sha256:{self.sha256}")
        return requirement_line(f"{self.name}=={self.version} --hash=sha256:{self.sha256}")


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


@dataclass
class Lock:
    """A lock: ``python`` and ``packages`` when made by envstore; ``pylock`` (and
    ``source``, the file it was read from) when read from a ``pylock.toml``, whose
    packages are chosen for an interpreter later (``python`` then comes from its
    ``[tool.envstore]`` table, if envstore wrote it)."""

    python: LockedPython | None
    packages: list[LockedPackage]
    requirements: list[str] = field(default_factory=list)
    pylock: Any = None  # packaging.pylock.Pylock, read from ``source``
    source: Path | None = None
    # PEP 751 extras, dependency-groups and default-groups a project lock declares, and
    # its source trees (the project itself); chosen ones when read (``select_locked``).
    extras: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    default_groups: list[str] = field(default_factory=list)
    directories: list[LockedDirectory] = field(default_factory=list)
    tool: dict[str, Any] = field(default_factory=dict)  # more of [tool.envstore]

    def to_pylock(self, base: Path | None = None) -> Any:
        """The validated ``packaging.pylock.Pylock`` of this lock; local ``path``s are
        made relative to ``base`` (the lock file's directory) where possible. Raises
        LockError naming every wheel whose file is known neither by path nor URL."""
        if self.pylock is not None:
            return self.pylock
        from packaging.markers import Marker
        from packaging.pylock import (
            Package,
            PackageDirectory,
            PackageWheel,
            Pylock,
            PylockValidationError,
        )
        from packaging.specifiers import SpecifierSet
        from packaging.utils import canonicalize_name
        from packaging.version import Version

        from envstore._version import __version__

        unknown = [p for p in self.packages if not (p.path or p.url)]
        if unknown:
            pins = " ".join(f"{p.name}=={p.version}" for p in unknown)
            raise LockError(
                "cannot write a pylock.toml: where these wheels can be fetched from is not"
                " known (from an index other than PyPI, whose URLs are not recorded; stored"
                " before envstore recorded download URLs; or from a directory they have"
                " left): "
                + ", ".join(p.wheel for p in unknown)
                + "; put the wheel files into a directory ('pip download --no-deps"
                f" --only-binary=:all: -d DIR {pins}') and pass it to 'envstore lock ENV -f"
                " DIR', or write '--format requirements' (hashes only)"
            )
        packages = [
            Package(
                name=canonicalize_name(p.name),
                version=Version(p.version),
                index=p.index,
                marker=Marker(p.marker) if p.marker else None,
                wheels=[
                    PackageWheel(
                        name=p.wheel,
                        path=_relative(p.path, base) if p.path else None,
                        url=None if p.path else p.url,
                        hashes={"sha256": p.sha256},
                    )
                ],
            )
            for p in self.packages
        ]
        packages += [
            Package(
                name=canonicalize_name(d.name),
                marker=Marker(d.marker) if d.marker else None,
                directory=PackageDirectory(path=_relative(d.path, base), editable=d.editable),
            )
            for d in self.directories
        ]
        tool: dict[str, Any] = {
            **self.tool,
            "version": __version__,
            "requirements": list(self.requirements),
            "requested": [p.name for p in self.packages if p.requested],
        }
        py = self.python
        if py is not None:
            tool["python"] = py.to_json()
        made = Pylock(
            lock_version=Version(LOCK_VERSION),
            environments=[Marker(py.environment())] if py else None,
            requires_python=SpecifierSet(f"=={py.minor}.*") if py else None,
            created_by="envstore",
            extras=[canonicalize_name(e) for e in self.extras] or None,
            dependency_groups=[canonicalize_name(g) for g in self.groups] or None,
            default_groups=[canonicalize_name(g) for g in self.default_groups] or None,
            packages=packages,
            tool={"envstore": tool},
        )
        try:
            made.validate()
        except PylockValidationError as exc:  # a bug of ours, said plainly
            raise LockError(f"cannot write a valid pylock.toml: {exc}") from None
        return made

    def dumps(self, base: Path | None = None) -> str:
        """The lock as ``pylock.toml`` text (see ``to_pylock``)."""
        import tomli_w

        return str(tomli_w.dumps(dict(self.to_pylock(base).to_dict())))

    def pip_requirements(self) -> str:
        """The lock as a pip requirements file (``pip install --no-deps --require-hashes -r``)."""
        py = self.python
        head = (
            f"# envstore lock for Python {py.version} ({py.abi_tag}, {py.platform})\n" if py else ""
        )
        return head + "".join(p.pip_line() + "\n" for p in self.packages)

    def save(self, path: str | os.PathLike[str], *, pip_requirements: bool = False) -> None:
        """Write the lock to ``path`` atomically: a reader sees the old file or the whole
        new one, never half of it. ``pylock.toml`` (paths relative to its directory), or
        with ``pip_requirements`` the pip requirements file of ``pip_requirements()``."""
        path = Path(os.path.abspath(path))
        text = self.pip_requirements() if pip_requirements else self.dumps(path.parent)
        # Same directory: same file system. The directory may be a cloned repository that
        # planted links: the temporary file is made new (never opened through a link, never
        # an existing file) under a name not guessed in advance.
        tmp = path.parent / f".{path.name}.{os.getpid()}.{os.urandom(8).hex()}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(tmp, flags, 0o666)  # the umask applies, as to any file the user writes
        try:
            with open(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Lock:
        """A ``pylock.toml`` (PEP 751, lock-version 1.x), validated; its packages are
        chosen later, for an interpreter."""
        source = Path(os.path.abspath(path))
        try:
            raw = source.read_bytes()
        except OSError as exc:
            raise LockError(f"cannot read lock file {path}: {exc.strerror or exc}") from None
        from envstore.model.lock_text import old_json_message, toml_data

        if raw.lstrip().startswith(b"{"):
            raise LockError(old_json_message(path, raw))
        data = toml_data(path, raw)
        from packaging.pylock import Pylock, PylockUnsupportedVersionError, PylockValidationError

        try:
            pylock = Pylock.from_dict(data)
        except PylockUnsupportedVersionError:
            raise LockError(
                f"{path}: lock-version {data.get('lock-version')!r} is not supported (envstore"
                " reads PEP 751 lock-version 1.x); write the lock again with a tool of that"
                " version"
            ) from None
        except PylockValidationError as exc:
            raise LockError(f"{path} is not a valid pylock.toml: {exc}") from None
        tool = (pylock.tool or {}).get("envstore")
        tool = tool if isinstance(tool, dict) else {}
        requirements = tool.get("requirements")
        if not (isinstance(requirements, list) and all(isinstance(r, str) for r in requirements)):
            requirements = []
        return cls(
            python=LockedPython.from_json(tool.get("python")),
            packages=[],
            requirements=requirements,
            pylock=pylock,
            source=source,
        )

    def recorded(self, name: str) -> str | None:
        """A string ``[tool.envstore]`` records under ``name`` (``inputs``: the digest of
        the project inputs a project lock was made from), if it does."""
        tool = (self.pylock.tool or {}).get("envstore") if self.pylock is not None else None
        value = tool.get(name) if isinstance(tool, dict) else self.tool.get(name)
        return value if isinstance(value, str) else None

    def requested(self) -> set[str] | None:
        """The names the lock says were asked for (``[tool.envstore] requested``), if it
        says."""
        tool = (self.pylock.tool or {}).get("envstore") if self.pylock is not None else None
        names = tool.get("requested") if isinstance(tool, dict) else None
        if isinstance(names, list) and all(isinstance(n, str) for n in names):
            return set(names)
        return None


def _relative(path: str, base: Path | None) -> str:
    if base is None or not os.path.isabs(path):
        return path
    try:
        return Path(os.path.relpath(path, base)).as_posix()
    except ValueError:  # another drive (Windows)
        return path
