"""``Request`` (what a create asks for) and ``Resolved`` (the entries it gets)."""

from __future__ import annotations

from pathlib import Path

from envstore.model.keys import EntryKey
from envstore.model.sources import PackageSources

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from envstore.model.lock import LockedPackage


class Request:
    """What to put in an environment, and where it may come from (a plain class:
    see EntryKey)."""

    def __init__(
        self,
        requirements: tuple[str, ...] = (),
        requirement_files: tuple[str, ...] = (),
        sources: PackageSources | None = None,
        upgrade: bool = False,
        locked: tuple[LockedPackage, ...] = (),  # exactly these wheels: no resolution
        remote: str | None = None,  # a remote cache of entries (store.remote), asked first
        push: bool = False,  # upload what this request ingests to ``remote``
    ) -> None:
        self.requirements = requirements
        self.requirement_files = requirement_files
        self.sources = sources if sources is not None else PackageSources()
        self.upgrade = upgrade
        self.locked = locked
        self.remote = remote
        self.push = push

    def __repr__(self) -> str:
        return f"Request({self.pip_requirements()!r}, sources={self.sources!r})"

    def pip_requirements(self) -> list[str]:
        args = list(self.requirements)
        for f in self.requirement_files:
            args += ["-r", f]
        return args


class Resolved:
    """The outcome of a resolution (a plain class: see EntryKey)."""

    def __init__(self, requested: set[str] | None = None) -> None:
        self.keys: dict[str, EntryKey] = {}  # name -> existing entry
        self.wheels: dict[str, Path] = {}  # name -> wheel to ingest
        self.requested: set[str] = requested or set()
        self.from_cache = False
        self.cache_key: str | None = None  # what to remember it under (computed once)
