"""The store's two record files, typed: an entry's ``entry.json`` and a view's ``view.json``.

Each has one reader (``from_json``, which validates) and one writer
(``dumps``). Both files come from disk and are untrusted data: every field that
becomes a file name is a plain name, and every path a view gives lies in its
store's ``entries/`` (store-layout.md, "Entries" and "Views"), so nothing built
from them leaves the entry, the view or the env. Plain classes with
``__slots__``: a warm create reads a view and, through it, every entry's record,
and importing dataclasses would cost it ~20 ms.
"""

from __future__ import annotations

import json

from envstore.model.keys import plain_name

__all__ = ["ENTRY_LAYOUT", "EntryRecord", "ViewRecord", "web_url"]

# entry.json's "layout": 2 added "url" and "index" (layout 1 entries have neither; both
# are optional, so an envstore that knows only layout 1 reads layout 2 as before).
ENTRY_LAYOUT = 2

_DATA_DIRS = ("scripts", "data", "headers")


def web_url(value: object) -> bool:
    """Whether ``value`` is an http(s) URL with no whitespace, control character or
    ``$``: a URL a lock may name (it becomes one line of a requirements file pip reads,
    and pip expands ``${NAME}`` there from the environment)."""
    return (
        isinstance(value, str)
        and value.startswith(("https://", "http://"))
        and "$" not in value
        and all(c.isprintable() and not c.isspace() for c in value)
    )


def _strings(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{what} is not a list of strings")
    return list(value)


def _rows(value: object, width: int, what: str) -> list[list[str]]:
    if not isinstance(value, list) or not all(
        isinstance(row, list) and len(row) == width and all(isinstance(v, str) for v in row)
        for row in value
    ):
        raise ValueError(f"{what} is not a list of {width} strings each")
    return [list(row) for row in value]


class EntryRecord:
    """``entry.json``: what an entry holds and where it came from.

    ``sha256``, ``origin``, ``requires`` and ``extras`` are absent from entries
    made by early versions (None or empty here); ``url`` and ``index`` (where a
    downloaded wheel came from, for locks) from entries of layout 1, before
    ``ENTRY_LAYOUT`` 2 added them.
    """

    __slots__ = (
        "abi",
        "added",
        "data",
        "dist_info",
        "entry_points",
        "extras",
        "files",
        "hash",
        "index",
        "key",
        "name",
        "origin",
        "pth",
        "requires",
        "sha256",
        "size",
        "tags",
        "url",
        "version",
        "wheel",
    )

    def __init__(
        self,
        *,
        key: str,
        name: str,
        version: str,
        hash: str,
        abi: str,
        wheel: str,
        dist_info: str,
        entry_points: list[list[str]],
        data: list[str],
        pth: list[str],
        files: int,
        size: int,
        added: float,
        sha256: str | None = None,
        origin: str | None = None,
        tags: list[str] | None = None,
        requires: list[str] | None = None,
        extras: list[str] | None = None,
        url: str | None = None,
        index: str | None = None,
    ) -> None:
        self.key = key
        self.name = name
        self.version = version
        self.hash = hash  # "xxh3_128:<32 hex digits>"
        self.abi = abi
        self.wheel = wheel  # the wheel's file name
        self.sha256 = sha256  # of the wheel, for locks (pip's --require-hashes)
        self.origin = origin  # where the wheel was when it was ingested
        self.url = url  # the http(s) URL pip downloaded the wheel from (no credentials)
        self.index = index  # the package index that URL was found on (PEP 503 base URL)
        self.tags = tags or []
        self.dist_info = dist_info
        self.requires = requires or []  # Requires-Dist lines, markers included
        self.extras = extras or []
        self.entry_points = entry_points  # [name, module, attr, "console" or "gui"]
        self.data = data  # which of scripts, data, headers the wheel's .data has
        self.pth = pth  # the .pth files at the top of site/
        self.files = files
        self.size = size
        self.added = added

    def to_json(self) -> dict[str, object]:
        return {
            "layout": ENTRY_LAYOUT,
            "key": self.key,
            "name": self.name,
            "version": self.version,
            "hash": self.hash,
            "abi": self.abi,
            "wheel": self.wheel,
            "sha256": self.sha256,
            "origin": self.origin,
            "url": self.url,
            "index": self.index,
            "tags": self.tags,
            "dist_info": self.dist_info,
            "requires": self.requires,
            "extras": self.extras,
            "entry_points": self.entry_points,
            "data": self.data,
            "pth": self.pth,
            "files": self.files,
            "size": self.size,
            "added": self.added,
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1) + "\n"

    @classmethod
    def from_json(cls, data: object) -> EntryRecord:
        """ValueError (saying what is wrong) unless ``data`` is a valid entry.json."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        try:
            fields = {k: data[k] for k in ("key", "name", "version", "hash", "abi")}
            wheel, dist_info = data["wheel"], data["dist_info"]
            entry_points = _rows(data["entry_points"], 4, "entry_points")
            pth = _strings(data["pth"], "pth")
            dirs = _strings(data["data"], "data")
            files, size, added = data["files"], data["size"], data["added"]
        except KeyError as exc:
            raise ValueError(f"missing field {exc}") from None
        if not all(isinstance(v, str) for v in fields.values()):
            raise ValueError("key, name, version, hash and abi must be strings")
        if not all(isinstance(n, (int, float)) for n in (files, size, added)):
            raise ValueError("files, size and added must be numbers")
        names = [wheel, dist_info, *pth, *(ep[0] for ep in entry_points)]
        if not all(plain_name(n) for n in names):
            raise ValueError("a field names a path where a plain file name belongs")
        if not str(dist_info).endswith(".dist-info") or not all(n.endswith(".pth") for n in pth):
            raise ValueError("dist_info or pth names the wrong kind of file")
        if not set(dirs) <= set(_DATA_DIRS):
            raise ValueError(f"data may only list {', '.join(_DATA_DIRS)}")
        optional: dict[str, object] = {}
        for name in ("sha256", "origin"):
            value = data.get(name)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{name} is not a string")
            optional[name] = value
        for name in ("url", "index"):
            value = optional[name] = data.get(name)
            if value is not None and not web_url(value):
                raise ValueError(f"{name} is not a plain http(s) URL")
        for name in ("tags", "requires", "extras"):
            value = data.get(name)
            optional[name] = None if value is None else _strings(value, name)
        return cls(
            **fields,
            wheel=wheel,
            dist_info=dist_info,
            entry_points=entry_points,
            data=dirs,
            pth=pth,
            files=int(files),
            size=int(size),
            added=float(added),
            **optional,  # type: ignore[arg-type]
        )


class ViewRecord:
    """``view.json``: what a view's envs need beyond its ``site/`` links.

    Rows: ``scripts`` [name, module, attr, section, dist]; ``pth``,
    ``data_scripts`` [file name, path in an entry]; ``headers`` [dist, path in an
    entry]; ``data`` [path in an entry]; ``wheels`` {entry key: wheel file name}.
    """

    __slots__ = (
        "cache_tag",
        "data",
        "data_scripts",
        "entries",
        "headers",
        "key",
        "pth",
        "scripts",
        "wheels",
    )

    def __init__(
        self,
        *,
        key: str,
        cache_tag: str,
        entries: list[str],
        scripts: list[list[str]],
        data_scripts: list[list[str]],
        pth: list[list[str]],
        data: list[str],
        headers: list[list[str]],
        wheels: dict[str, str],
    ) -> None:
        self.key = key
        self.cache_tag = cache_tag
        self.entries = entries
        self.scripts = scripts
        self.data_scripts = data_scripts
        self.pth = pth
        self.data = data
        self.headers = headers
        self.wheels = wheels

    def to_json(self) -> dict[str, object]:
        return {
            "layout": 1,
            "key": self.key,
            "cache_tag": self.cache_tag,
            "entries": self.entries,
            "scripts": self.scripts,
            "data_scripts": self.data_scripts,
            "pth": self.pth,
            "data": self.data,
            "headers": self.headers,
            "wheels": self.wheels,
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1) + "\n"

    @classmethod
    def from_json(cls, data: object, entries_dir: str | tuple[str, ...]) -> ViewRecord:
        """ValueError unless ``data`` is a valid view.json whose every path lies in
        ``entries_dir`` (the store's ``entries/``, with its trailing slash; or any of
        several: a store's and its upstreams')."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        try:
            key, cache_tag = data["key"], data["cache_tag"]
            record = cls(
                key=key if isinstance(key, str) else "",
                cache_tag=cache_tag if isinstance(cache_tag, str) else "",
                entries=_strings(data["entries"], "entries"),
                scripts=_rows(data["scripts"], 5, "scripts"),
                data_scripts=_rows(data["data_scripts"], 2, "data_scripts"),
                pth=_rows(data["pth"], 2, "pth"),
                data=_strings(data["data"], "data"),
                headers=_rows(data["headers"], 2, "headers"),
                wheels=data.get("wheels") or {},
            )
        except KeyError as exc:
            raise ValueError(f"missing field {exc}") from None
        wheels = record.wheels
        if not isinstance(wheels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in wheels.items()
        ):
            raise ValueError("wheels is not an object of strings")
        rows = (record.pth, record.data_scripts, record.headers)
        names = [row[0] for kind in rows for row in kind]
        names += [row[0] for row in record.scripts]
        sources = [row[1] for kind in rows for row in kind] + record.data
        if not all(plain_name(n) for n in names) or not all(
            p.startswith(entries_dir) and not {".", ".."} & set(p.split("/")) for p in sources
        ):
            raise ValueError("a name or path in it leads elsewhere")
        if not all(row[0].endswith(".pth") for row in record.pth):
            raise ValueError("a pth row names something other than a .pth file")
        return record
