"""The forms a requirement takes, as pip and uv accept them.

``name[extras] specifiers ; marker`` (PEP 508) is the only form the store resolver
reads itself. The others name a place, and pip builds or fetches what is there:

* ``name @ URL`` (PEP 508 direct reference): ``file://``, ``http(s)://``, ``git+...``;
* a bare URL (``https://host/x-1.0-py3-none-any.whl``, ``git+file:///repo@main``);
* a local path: a wheel, an sdist, or a project directory (``.``, ``./proj[extra]``),
  relative to the current directory (on the command line) or to the requirements
  file that names it (see ``lines.based``).

Classifying is a few string tests, no packaging import: it runs on every create.
"""

from __future__ import annotations

import os
import re

from envstore.resolve.lines import ARCHIVES, based

__all__ = ["Form", "absolute", "classify", "direct_name", "local_path"]

# Patterns, compiled by re (and cached there) only when a text could match: a plain
# ``name>=1`` has no "@", no "://" and no "]" at its end, and a warm create would
# otherwise compile all three (~0.4 ms) for nothing.
_DIRECT = r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*@\s*(\S+)"
_URL = r"^[A-Za-z][A-Za-z0-9+.-]*://"
_EXTRAS = r"^(.*?)(\[[^\]]*\])?$"


class Form:
    """What a requirement text names (a plain class: see EntryKey).

    ``kind``: ``"name"`` (PEP 508 without a URL), ``"url"`` (``name @ URL`` or a bare
    URL) or ``"path"`` (a local file or directory). ``target``: the URL, or the path
    made absolute. ``extras``: ``"[a,b]"`` as written after a bare path or URL."""

    __slots__ = ("extras", "kind", "target", "text")

    def __init__(self, text: str, kind: str, target: str = "", extras: str = "") -> None:
        self.text = text
        self.kind = kind
        self.target = target
        self.extras = extras

    def __repr__(self) -> str:
        return f"Form({self.kind!r}, {self.target or self.text!r})"


def _split_marker(text: str, url: bool) -> tuple[str, str]:
    """(the requirement, ``; marker`` or "") as pip splits a bare path or URL: at
    ``"; "`` after a URL (a URL may hold ``;``), at ``";"`` after a path."""
    sep = "; " if url else ";"
    head, found, tail = text.partition(sep)
    return head.strip(), (f" ; {tail.strip()}" if found else "")


def _looks_like_path(text: str) -> bool:
    """As pip: a path separator in it or a leading dot; or a wheel or an archive's name
    (pip then takes it as a file if there is one)."""
    if "/" in text or (os.altsep and os.altsep in text) or text.startswith("."):
        return True
    low = text.lower()
    return (low.endswith(".whl") or low.endswith(ARCHIVES)) and os.path.isfile(text)


def direct_name(text: str) -> str | None:
    """The project name of a ``name @ URL`` requirement, as written; None for any other."""
    m = re.match(_DIRECT, text) if "@" in text else None
    return m.group(1) if m else None


def classify(text: str, base: str | None = None) -> Form:
    """The form of requirement ``text``; a relative path is taken from ``base`` (the
    directory of the requirements file naming it) or the current directory. A name or
    a URL is the text's alone: remembered per process (a warm sync classifies the
    same ~20 lines, ~3 us each); a path (the cwd, the files there) never is."""
    known = _FORMS.get(text)
    if known is not None:
        return known
    form = _classify(text, base)
    if form.kind == "url" or (form.kind == "name" and not _names_a_file(text)):
        if len(_FORMS) >= 4096:  # bounded: a process resolving many requests
            _FORMS.clear()
        _FORMS[text] = form
    return form


# classify's answers that depend on the text alone, by the text.
_FORMS: dict[str, Form] = {}


def _names_a_file(text: str) -> bool:
    """Whether ``text`` ends like a wheel's or an archive's name: a name only while no
    such file is there (``_looks_like_path``), so not remembered."""
    low = _split_marker(text.strip(), url=False)[0].lower()
    return ".whl" in low or any(a in low for a in ARCHIVES)


def _classify(text: str, base: str | None) -> Form:
    text = text.strip()
    m = re.match(_DIRECT, text) if "@" in text else None
    if m:
        return Form(text, "url", _split_marker(m.group(3), url=True)[0])
    if ("://" in text and re.match(_URL, text)) or text.startswith("file:"):
        head, _ = _split_marker(text, url=True)
        return Form(text, "url", head.split()[0])
    head, _ = _split_marker(text, url=False)
    if head.endswith("]") or "\n" in head:  # else the whole head, as the pattern says
        path, extras = re.match(_EXTRAS, head).groups()  # type: ignore[union-attr]
    else:
        path, extras = head, None
    if path and " " not in path and _looks_like_path(path):
        where = based(path, base) if base is not None else os.path.abspath(path)
        return Form(text, "path", where, extras or "")
    return Form(text, "name")


def absolute(text: str, base: str | None = None, form: Form | None = None) -> str:
    """``text`` with a relative local path in it made absolute (extras and marker
    kept): what pip must see when it runs elsewhere than where the path was written.
    ``form``: ``classify(text, base)``, when the caller has it."""
    form = form or classify(text, base)
    if form.kind != "path":
        return text
    _, marker = _split_marker(text.strip(), url=False)
    return form.target + form.extras + marker


def local_path(url: str) -> str | None:
    """The local path of a ``file:`` URL (fragment and query dropped), else None."""
    if not url.startswith("file:"):
        return None
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        return None
    return os.path.abspath(unquote(parts.path))
