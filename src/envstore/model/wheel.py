"""What wheel validation learns of a wheel: ``WheelInfo`` and its ``EntryPoint`` rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from packaging.tags import Tag
from packaging.utils import (
    NormalizedName,
)


@dataclass(frozen=True)
class EntryPoint:
    name: str
    module: str
    attr: str
    section: str  # "console" or "gui"


@dataclass
class WheelInfo:
    """What validation learned about a wheel, used to unpack and describe it."""

    path: Path
    name: NormalizedName
    version: str
    tags: frozenset[Tag]
    dist_info: str
    data_dir: str
    root_is_purelib: bool
    requires: list[str] = field(default_factory=list)
    extras: list[str] = field(default_factory=list)
    entry_points: list[EntryPoint] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # __pycache__ members, not unpacked

    @property
    def pure(self) -> bool:
        return all(t.abi == "none" and t.platform == "any" for t in self.tags)
