"""The ``Interpreter`` record: a base interpreter as an environment records it.

A record only: finding and asking interpreters is ``envstore.python``'s.
"""

from __future__ import annotations

_INTERPRETER_FIELDS = (
    "requested",  # what the user asked for ("" for the default; paths made absolute)
    "path",  # the path the env links to (see the module docstring)
    "resolved",  # fully resolved path, for explaining decisions later
    "version",  # "3.11.7"
    "implementation",  # "cpython"
    "cache_tag",  # "cpython-311"
    "soabi",  # "cpython-311-x86_64-linux-gnu": names the ABI subtree
    "abi_tag",  # "cp311", "cp313t"
    "platform",  # sysconfig.get_platform()
    "stdlib",
    "purelib",  # site-packages relative to an env root, e.g. lib/python3.11/site-packages
)


class Interpreter:
    """A base interpreter as an environment records it (a plain class: see EntryKey).

    Equal when every field but ``markers`` is equal.
    """

    __slots__ = (*_INTERPRETER_FIELDS, "markers")

    def __init__(
        self,
        requested: str,
        path: str,
        resolved: str,
        version: str,
        implementation: str,
        cache_tag: str,
        soabi: str,
        abi_tag: str,
        platform: str,
        stdlib: str,
        purelib: str,
        markers: dict[str, str],
    ) -> None:
        self.requested = requested
        self.path = path
        self.resolved = resolved
        self.version = version
        self.implementation = implementation
        self.cache_tag = cache_tag
        self.soabi = soabi
        self.abi_tag = abi_tag
        self.platform = platform
        self.stdlib = stdlib
        self.purelib = purelib
        self.markers = markers

    def _fields(self) -> tuple[str, ...]:
        return tuple(getattr(self, f) for f in _INTERPRETER_FIELDS)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Interpreter) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return f"Interpreter(path={self.path!r}, version={self.version!r}, soabi={self.soabi!r})"

    def replace(self, **changes: str) -> Interpreter:
        """A copy with some string fields changed (and a markers dict of its own)."""
        data = {f: getattr(self, f) for f in _INTERPRETER_FIELDS}
        data.update(changes)
        return Interpreter(**data, markers=dict(self.markers))

    @property
    def minor(self) -> str:
        """``3.11``."""
        return ".".join(self.version.split(".")[:2])

    @property
    def python_tag(self) -> str:
        """``cp311``."""
        major, minor = self.version.split(".")[:2]
        return f"cp{major}{minor}"

    def to_json(self) -> dict[str, object]:
        return {
            "requested": self.requested,
            "path": self.path,
            "resolved": self.resolved,
            "version": self.version,
            "implementation": self.implementation,
            "cache_tag": self.cache_tag,
            "soabi": self.soabi,
            "abi_tag": self.abi_tag,
            "platform": self.platform,
            "stdlib": self.stdlib,
            "purelib": self.purelib,
            "markers": self.markers,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Interpreter:
        fields = {k: str(data[k]) for k in _INTERPRETER_FIELDS}
        markers = data.get("markers") or {}
        return cls(**fields, markers=dict(markers))  # type: ignore[call-overload]
