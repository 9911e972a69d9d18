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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envstore.errors import LockError
from envstore.model.lock_records import (
    LOCK_VERSION,
    LockedDirectory,
    LockedPackage,
    LockedPython,
    requirement_line,
)

__all__ = [
    "LOCK_VERSION",
    "Lock",
    "LockedDirectory",
    "LockedPackage",
    "LockedPython",
    "requirement_line",
]


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
    # A lock made for several interpreters (``python`` None): one each, by minor version
    # (``envstore.model.lock_merge``); [tool.envstore] pythons when read.
    targets: list[LockedPython] = field(default_factory=list)

    def pythons(self) -> list[LockedPython]:
        """The interpreters the lock was made for: ``python``, else ``targets``."""
        return [self.python] if self.python is not None else list(self.targets)

    def to_pylock(self, base: Path | None = None) -> Any:
        """The validated ``packaging.pylock.Pylock`` of this lock; local ``path``s are
        made relative to ``base`` (the lock file's directory) where possible. Raises
        LockError naming every wheel whose file is known neither by path nor URL."""
        if self.pylock is not None:
            return self.pylock
        from envstore.model.lock_pylock import build_pylock

        return build_pylock(self, base)

    def dumps(self, base: Path | None = None) -> str:
        """The lock as ``pylock.toml`` text (see ``to_pylock``)."""
        import tomli_w

        return str(tomli_w.dumps(dict(self.to_pylock(base).to_dict())))

    def pip_requirements(self) -> str:
        """The lock as a pip requirements file (``pip install --no-deps --require-hashes -r``).
        LockError if it holds what such a file cannot say with a hash (a VCS commit, a
        source directory, an archive's subdirectory)."""
        odd = [f"{p.name} ({p.kind})" for p in self.packages if not _hashed_line(p)]
        odd += [f"{d.name} (directory)" for d in self.directories]
        if odd:
            raise LockError(
                f"a pip requirements file cannot hold {', '.join(odd)} with a hash;"
                " write pylock.toml (the default --format) instead"
            )
        py = self.python
        if py is None and self.targets:  # several Pythons: each version with its marker
            return _pip_requirements_for(self.targets, self.packages)
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
        several = tool.get("pythons")
        targets = (
            [LockedPython.from_json(t) for t in several or ()] if isinstance(several, list) else []
        )
        return cls(
            python=LockedPython.from_json(tool.get("python")),
            packages=[],
            requirements=requirements,
            pylock=pylock,
            source=source,
            targets=[t for t in targets if t is not None],
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


def _hashed_line(p: LockedPackage) -> bool:
    """Whether ``p`` is a ``name==version --hash=...`` line: a wheel, or a source archive
    whose project is at its top."""
    return bool(p.sha256) and (
        p.kind == "wheel" or (p.kind in ("sdist", "archive") and not p.subdirectory)
    )


def _pip_requirements_for(pythons: list[LockedPython], packages: list[LockedPackage]) -> str:
    """A requirements file of a lock of several ``pythons``: one line per version, with
    the hash of each of its wheels and its marker (the Pythons it is for)."""
    which = ", ".join(py.minor for py in pythons)
    head = f"# envstore lock for Python {which} ({pythons[0].platform})\n"
    grouped: dict[tuple[str, str], list[LockedPackage]] = {}
    for p in packages:
        grouped.setdefault((p.name, p.version), []).append(p)
    lines = []
    for (name, version), same in grouped.items():
        marker = f" ; {same[0].marker}" if same[0].marker else ""
        hashes = "".join(f" --hash=sha256:{h}" for h in dict.fromkeys(p.sha256 for p in same))
        lines.append(requirement_line(f"{name}=={version}{marker}{hashes}") + "\n")
    return head + "".join(lines)
