"""``Request`` (what a create asks for) and ``Resolved`` (the entries it gets)."""

from __future__ import annotations

from pathlib import Path

from envstore.model.keys import EntryKey

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from envstore.model.lock import LockedPackage


class Request:
    """What to put in an environment, and where pip may look for it (a plain class:
    see EntryKey)."""

    def __init__(
        self,
        requirements: tuple[str, ...] = (),
        requirement_files: tuple[str, ...] = (),
        find_links: tuple[str, ...] = (),
        index_url: str | None = None,
        no_index: bool = False,
        offline: bool = False,
        upgrade: bool = False,
        locked: tuple[LockedPackage, ...] = (),  # exactly these wheels: no resolution
    ) -> None:
        self.requirements = requirements
        self.requirement_files = requirement_files
        self.find_links = find_links
        self.index_url = index_url
        self.no_index = no_index
        self.offline = offline
        self.upgrade = upgrade
        self.locked = locked

    def __repr__(self) -> str:
        return f"Request({self.pip_requirements()!r}, options={self.pip_options()!r})"

    def pip_options(self) -> list[str]:
        opts: list[str] = []
        for d in self.find_links:
            opts += ["--find-links", d]
        if self.index_url:
            opts += ["--index-url", self.index_url]
        if self.no_index:
            opts.append("--no-index")
        return opts

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
