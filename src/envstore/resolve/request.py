"""``Request`` (what a create asks for) and ``Resolved`` (the entries it gets)."""

from __future__ import annotations

from pathlib import Path

from envstore.model.keys import EntryKey
from envstore.model.sources import PackageSources
from envstore.resolve.lines import file_editables

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from envstore.model.lock import LockedPackage


class Request:
    """What to put in an environment, and where it may come from (a plain class:
    see EntryKey).

    ``constraints`` (``-c`` files) and ``pre`` (``--pre``) belong here, not in
    ``PackageSources``: they say which versions the env may hold, as requirements
    do (relink, which looks only at where wheels come from, never reads them),
    and what they say is part of the resolution cache's key like a ``-r`` file.

    ``editables``: projects to install editable (absolute paths, or VCS URLs), never
    resolved as ordinary requirements: those given, then the ``-e`` lines of the
    requirement files (``editable_origins`` says which file named each).
    """

    def __init__(
        self,
        requirements: tuple[str, ...] = (),
        requirement_files: tuple[str, ...] = (),
        sources: PackageSources | None = None,
        upgrade: bool = False,
        locked: tuple[LockedPackage, ...] = (),  # exactly these wheels: no resolution
        constraints: tuple[str, ...] = (),
        pre: bool = False,
        editables: tuple[str, ...] = (),
        max_age: float | None = None,
    ) -> None:
        self.requirements = requirements
        self.requirement_files = requirement_files
        self.sources = sources if sources is not None else PackageSources()
        self.upgrade = upgrade
        self.locked = locked
        self.constraints = constraints
        self.pre = pre
        # How old a resolution against the index may be and still answer (seconds;
        # None: $ENVSTORE_MAX_AGE, else the default): ``envstore.resolve.freshness``.
        self.max_age = max_age
        self.editable_origins: dict[str, str] = {}
        found = list(editables)
        for origin, target in file_editables(requirement_files):
            found.append(target)
            self.editable_origins.setdefault(target, origin)
        self.editables = tuple(found)

    @property
    def remote(self) -> str | None:
        """The remote cache of entries asked first (``sources.remote_cache()``)."""
        return self.sources.remote_cache()

    @property
    def push(self) -> bool:
        """Whether what this request ingests is uploaded to ``remote``."""
        return self.sources.pushes()

    def __repr__(self) -> str:
        return f"Request({self.pip_requirements()!r}, sources={self.sources!r})"

    def installing_editables(self, requirements: tuple[str, ...]) -> Request:
        """This request once its caller has taken over its editables: without them
        (so it resolves) and with ``requirements``, their dependencies, added."""
        new = Request(
            requirements=(*self.requirements, *requirements),
            requirement_files=self.requirement_files,
            sources=self.sources,
            upgrade=self.upgrade,
            locked=self.locked,
            constraints=self.constraints,
            pre=self.pre,
            max_age=self.max_age,
        )
        new.editables = ()
        new.editable_origins = {}
        return new

    def pip_requirements(self) -> list[str]:
        args = list(self.requirements)
        for f in self.requirement_files:
            args += ["-r", f]
        for f in self.constraints:
            args += ["-c", f]
        if self.pre:
            args.append("--pre")
        return args


class Resolved:
    """The outcome of a resolution (a plain class: see EntryKey)."""

    def __init__(self, requested: set[str] | None = None) -> None:
        self.keys: dict[str, EntryKey] = {}  # name -> existing entry
        self.wheels: dict[str, Path] = {}  # name -> wheel to ingest
        # name -> (URL, index) a wheel of ``wheels`` was downloaded from (for locks)
        self.urls: dict[str, tuple[str, str | None]] = {}
        self.requested: set[str] = requested or set()
        self.from_cache = False
        self.cache_key: str | None = None  # what to remember it under (computed once)
        self.alias_key: str | None = None  # and under this too (cache.cache_keys)
        self.built: dict[str, str] = {}  # name -> key of what a local place built into
        # Every package chosen was pinned to one version (the store resolver says).
        self.pinned = False
        # When the index was asked for this answer (time.time(); 0: never, or unknown).
        self.resolved_at = 0.0
        # Whether the index was consulted, and why (shown with -v): see resolver.
        self.index_note = ""
