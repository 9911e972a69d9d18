"""``EntryKey``, the name of a store entry, and the plain-name rule for names read from disk."""

from __future__ import annotations

import re

PURE = "pure"


_KEY_PATTERN = (
    r"(?P<abi>[A-Za-z0-9_][A-Za-z0-9_.-]*)/(?P<name>[a-z0-9][a-z0-9-]*)"
    r"/(?P<version>[A-Za-z0-9.+!_-]+)-(?P<hash>[0-9a-f]{32})\Z"
)


class EntryKey:
    """Identifies an entry: ABI subtree (``pure`` or a SOABI), normalized name, version, hash.

    A plain class, like the other records on the create path: importing
    dataclasses (and the inspect module it pulls in) costs every CLI start
    ~20 ms on this machine, a fifth of a warm create.
    """

    __slots__ = ("_text", "abi", "hash", "name", "version")

    def __init__(self, abi: str, name: str, version: str, hash: str) -> None:
        self.abi = abi
        self.name = name
        self.version = version
        self.hash = hash  # xxh3_128 of the wheel file, 32 hex digits
        # str(key), made once: a sync asks for it ~170 times (paths, rows, refs). A key
        # is a value (hashed by its fields); nothing assigns them after this.
        self._text = f"{abi}/{name}/{version}-{hash}"

    def _fields(self) -> tuple[str, str, str, str]:
        return (self.abi, self.name, self.version, self.hash)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EntryKey) and self._fields() == other._fields()

    def __lt__(self, other: EntryKey) -> bool:
        return self._fields() < other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return f"EntryKey({str(self)!r})"

    def __str__(self) -> str:
        return self._text

    @classmethod
    def parse(cls, text: str) -> EntryKey:
        """A key read from a file (a manifest, the database): each part is a plain name,
        so ``entry_path`` stays a child of ``entries/`` (store-layout.md, "Entries")."""
        found = _key_re().match(text) if isinstance(text, str) else None
        if found is None or found["version"] in (".", ".."):
            raise ValueError(f"not an entry key: {text!r}")
        return cls(found["abi"], found["name"], found["version"], found["hash"])


def _key_re() -> re.Pattern[str]:
    global _KEY
    if _KEY is None:
        _KEY = re.compile(_KEY_PATTERN)
    return _KEY


_KEY: re.Pattern[str] | None = None


def canonical_name(name: str) -> str:
    """A project name normalized as PEP 503 says (``Foo_Bar.baz`` -> ``foo-bar-baz``),
    without importing ``packaging`` (the warm create path does not)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def plain_name(name: object) -> bool:
    """A single path component: no separator, NUL or control character, not . or .."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and "/" not in name
        and name.isprintable()
    )
