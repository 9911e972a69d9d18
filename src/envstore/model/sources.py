"""Where packages may come from, in the two forms envstore has for it.

:class:`PackageSources` is what a caller says for one run: ``--find-links``,
``--index-url``, ``--extra-index-url``, ``--no-index`` and ``--offline``, URLs as given (they may
carry credentials: pip needs them), and the remote cache of store entries
(``--remote``, ``--push``). Every public entry point takes it as ``sources=`` (the
four keywords remain, built into one of these), so every command that may ingest
asks the remote and pushes to it without a keyword of its own.

The remote belongs here because it is one more place packages come from for this
run (as ``--offline`` is a rule for this run), not a property of an env: it is never
recorded (a remote is a cache of entries, not where an env's wheels are; the same
env made with or without one is the same env; its URL is a fleet's setting and may
carry credentials), and it does not count as naming where wheels are
(``says_where``), so relink with only ``--remote`` still looks where the env's
wheels came from.

:class:`RecordedSources` is what an env's manifest keeps of it: where the
env's wheels came from, credentials removed, and no ``offline`` (that says how
one run went, not where the wheels are). ``PackageSources.recorded()`` makes
it; ``RecordedSources.reused()`` turns it back into sources for relink.

Plain classes (see EntryKey): both are on the warm create path.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["PackageSources", "RecordedSources", "public_url", "sources_from"]


def public_url(url: str) -> str:
    """``url`` without what may be a credential, the user part and the query
    (``https://user:secret@host/simple/?private_token=T`` -> ``https://host/simple/``):
    never written to disk. The fragment (``#sha256=...``) stays."""
    if "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    netloc, slash, path = rest.partition("/")
    path, hash_, fragment = path.partition("#")
    path = path.partition("?")[0]
    return f"{scheme}://{netloc.rpartition('@')[2]}{slash}{path}{hash_}{fragment}"


def _is_url(link: str) -> bool:
    return "://" in link


class PackageSources:
    """Where packages may come from for one run.

    ``find_links``: directories (made absolute here, against the current
    directory) or URLs; ``index_url``: the package index instead of pip's
    default; ``extra_index_urls``: more indexes pip searches besides it;
    ``no_index``: no index at all, only ``find_links``; ``offline``: only what
    the store already has, pip never runs. ``remote``: a remote cache of store
    entries asked first (None: ``$ENVSTORE_REMOTE``); ``push``: upload what this run
    ingests to it (None: ``$ENVSTORE_PUSH=1``). The environment is read when used
    (``remote_cache()``, ``pushes()``), so one object serves a library caller who
    sets the variables later.
    """

    __slots__ = (
        "extra_index_urls",
        "find_links",
        "index_url",
        "no_index",
        "offline",
        "push",
        "remote",
    )

    def __init__(
        self,
        find_links: Sequence[str] = (),
        index_url: str | None = None,
        no_index: bool = False,
        offline: bool = False,
        extra_index_urls: Sequence[str] = (),
        remote: str | None = None,
        push: bool | None = None,
    ) -> None:
        if isinstance(find_links, str):  # one directory, not its characters
            raise TypeError("find_links is a sequence of directories or URLs, not a string")
        if isinstance(extra_index_urls, str):
            raise TypeError("extra_index_urls is a sequence of URLs, not a string")
        self.find_links = tuple(d if _is_url(d) else os.path.abspath(d) for d in find_links)
        self.index_url = index_url or None
        self.no_index = bool(no_index)
        self.offline = bool(offline)
        self.extra_index_urls = tuple(extra_index_urls)
        self.remote = remote or None
        self.push = push

    def _fields(self) -> tuple[object, ...]:
        return (
            self.find_links,
            self.index_url,
            self.no_index,
            self.offline,
            self.extra_index_urls,
            self.remote,
            self.push,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PackageSources) and self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        shown = self.recorded()  # never a credential in a traceback or a log
        return (
            f"PackageSources(find_links={shown.find_links!r}, index_url={shown.index_url!r},"
            f" no_index={self.no_index!r}, offline={self.offline!r}"
            + (f", extra_index_urls={shown.extra_index_urls!r}" if self.extra_index_urls else "")
            + (f", remote={public_url(self.remote)!r}" if self.remote else "")
            + (f", push={self.push!r})" if self.push is not None else ")")
        )

    def remote_cache(self) -> str | None:
        """The remote cache to ask first: ``remote``, else ``$ENVSTORE_REMOTE`` (empty: none)."""
        return self.remote or os.environ.get("ENVSTORE_REMOTE") or None

    def pushes(self) -> bool:
        """Whether what this run ingests is uploaded: ``push``, else ``$ENVSTORE_PUSH=1``."""
        return self.push if self.push is not None else os.environ.get("ENVSTORE_PUSH") == "1"

    def says_where(self) -> bool:
        """Whether any place to look was named (``offline`` is not a place)."""
        return bool(self.find_links or self.index_url or self.extra_index_urls or self.no_index)

    def local_dirs(self) -> list[str]:
        """The ``find_links`` that are directories (what envstore can list itself)."""
        return [d for d in self.find_links if not _is_url(d)]

    def remote_links(self) -> list[str]:
        """The ``find_links`` that are URLs (only pip can search them)."""
        return [d for d in self.find_links if _is_url(d)]

    def pip_options(self) -> list[str]:
        """As pip's options, credentials kept: for pip's command line only."""
        opts: list[str] = []
        for d in self.find_links:
            opts += ["--find-links", d]
        if self.index_url:
            opts += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            opts += ["--extra-index-url", url]
        if self.no_index:
            opts.append("--no-index")
        return opts

    def recorded(self) -> RecordedSources:
        """What an env's manifest keeps of these: no credentials, no ``offline``, no remote."""
        return RecordedSources(
            self.find_links, self.index_url, self.no_index, self.extra_index_urls
        )


def sources_from(
    sources: PackageSources | None,
    find_links: Sequence[str] = (),
    index_url: str | None = None,
    no_index: bool = False,
    offline: bool = False,
) -> PackageSources:
    """The one object behind the public functions' ``sources=`` and their four older
    keywords: ``sources`` if given (then none of the keywords may be), else one made
    of the keywords."""
    keywords = bool(find_links) or index_url is not None or no_index or offline
    if sources is None:
        return PackageSources(find_links, index_url, no_index, offline)
    if keywords:
        raise TypeError("give either sources= or find_links/index_url/no_index/offline, not both")
    if not isinstance(sources, PackageSources):
        raise TypeError(f"sources must be a PackageSources, not {type(sources).__name__}")
    return sources


class RecordedSources:
    """Where an env's wheels came from, as given when it was made: ``--find-links``
    (directories absolute), ``--index-url``, ``--extra-index-url`` and ``--no-index``;
    credentials removed. The manifest's ``"sources"``."""

    __slots__ = ("extra_index_urls", "find_links", "index_url", "no_index")

    def __init__(
        self,
        find_links: tuple[str, ...] = (),
        index_url: str | None = None,
        no_index: bool = False,
        extra_index_urls: tuple[str, ...] = (),
    ) -> None:
        self.find_links = tuple(public_url(f) for f in find_links)
        self.index_url = public_url(index_url) if index_url else None
        self.no_index = no_index
        self.extra_index_urls = tuple(public_url(u) for u in extra_index_urls)

    def options(self) -> list[str]:
        """As command-line options of envstore (and pip)."""
        opts: list[str] = []
        for d in self.find_links:
            opts += ["-f", d]
        if self.index_url:
            opts += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            opts += ["--extra-index-url", url]
        if self.no_index:
            opts.append("--no-index")
        return opts

    def reused(
        self, offline: bool = False, remote: str | None = None, push: bool | None = None
    ) -> PackageSources:
        """These places as the sources of a new run (relink looks where the env's wheels
        came from), with that run's own ``offline``, ``remote`` and ``push``."""
        return PackageSources(
            self.find_links,
            self.index_url,
            self.no_index,
            offline,
            self.extra_index_urls,
            remote,
            push,
        )

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "find_links": list(self.find_links),
            "index_url": self.index_url,
            "no_index": self.no_index,
        }
        if self.extra_index_urls:  # absent otherwise: manifests read by older envstores
            data["extra_index_urls"] = list(self.extra_index_urls)
        return data

    @classmethod
    def from_json(cls, data: object) -> RecordedSources:
        if data is None:
            return cls()
        if not isinstance(data, dict):
            raise TypeError("sources is not an object")
        links, index = data.get("find_links", []), data.get("index_url")
        if not isinstance(links, list) or not all(isinstance(f, str) for f in links):
            raise TypeError("sources.find_links is not a list of strings")
        if index is not None and not isinstance(index, str):
            raise TypeError("sources.index_url is not a string")
        extra = data.get("extra_index_urls", [])
        if not isinstance(extra, list) or not all(isinstance(u, str) for u in extra):
            raise TypeError("sources.extra_index_urls is not a list of strings")
        return cls(tuple(links), index, bool(data.get("no_index", False)), tuple(extra))
