"""Requirements files read line by line, as pip reads them: logical lines, the files
and places a line points at, ``-e`` lines, and where a relative path in a file leads.

Pure text and path functions (no envstore state), so that ``Request`` can find a
file's editable lines when it is made.
"""

from __future__ import annotations

import os
import re

__all__ = [
    "ARCHIVES",
    "based",
    "editable_of",
    "file_editables",
    "included",
    "logical_lines",
]

# What pip takes for an sdist (or another archive it might build).
ARCHIVES = (
    *(".zip", ".tar", ".tgz", ".tbz", ".txz", ".tlz"),
    *(".tar.gz", ".tar.bz2", ".tar.xz", ".tar.lz", ".tar.lzma"),
)


def logical_lines(text: str) -> list[str]:
    """A requirements file's lines as pip reads them: continuations joined, comments
    dropped, ``${VAR}`` expanded."""
    lines: list[str] = []
    buf = ""
    for raw in text.splitlines():
        if raw.endswith("\\"):
            buf += raw[:-1]
            continue
        lines.append(buf + raw)
        buf = ""
    if buf:
        lines.append(buf)
    out = []
    for line in lines:
        # The patterns only where they can match: a warm create reads ~100 plain lines.
        if "#" in line:
            line = re.sub(r"(^|\s+)#.*$", "", line)
        line = line.strip()
        if "${" in line:
            line = re.sub(
                r"\$\{([A-Z0-9_]+)\}", lambda m: os.environ.get(m.group(1), m.group(0)), line
            )
        if line:
            out.append(line)
    return out


def _is_option(name: str, full: str, clash: str) -> bool:
    """``--name`` means ``--full``: itself or an abbreviation optparse accepts (not also
    the start of ``--clash``, pip's other option with that prefix)."""
    return full.startswith(name) and not clash.startswith(name) and len(name) > 1


def _tokens(line: str) -> list[str]:
    import shlex

    try:
        return shlex.split(line)
    except ValueError:
        return line.split()


def included(line: str) -> list[tuple[str, str]]:
    """What a requirements-file line points at, in pip's option syntax: ("r", file) for
    -r and ("c", file) for -c (a file it includes), ("f", place) for -f (where pip
    looks for wheels)."""
    if not line.startswith("-"):
        return []
    tokens = _tokens(line)
    found = []
    for i, tok in enumerate(tokens):
        kind = value = None
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        if tok in ("-r", "-c", "-f"):
            kind, value = tok[1], following
        elif tok[:2] in ("-r", "-c", "-f") and not tok.startswith("--"):
            kind, value = tok[1], tok[2:]
        elif tok.startswith("--"):
            name, eq, attached = tok[2:].partition("=")
            if _is_option(name, "requirement", "require-hashes"):
                kind = "r"
            elif _is_option(name, "constraint", "config-settings"):
                kind = "c"
            elif _is_option(name, "find-links", ""):
                kind = "f"
            value = attached if eq else following
        if kind and value:
            found.append((kind, value))
    return found


def editable_of(line: str) -> str | None:
    """The path or URL of an ``-e``/``--editable`` line, as written; None for any
    other line."""
    if not line.startswith("-") or line.startswith(("-r", "-c", "-f", "-i")):
        return None
    tokens = _tokens(line)
    tok = tokens[0]
    if tok == "-e" or (tok.startswith("--") and _is_option(tok[2:], "editable", "extra-index-url")):
        return tokens[1] if len(tokens) > 1 else None
    if tok.startswith("-e") and not tok.startswith("--"):
        return tok[2:]
    if tok.startswith("--") and "=" in tok:
        name, _, value = tok[2:].partition("=")
        if _is_option(name, "editable", "extra-index-url"):
            return value
    return None


def based(path: str, directory: str) -> str:
    """A relative ``path`` from a file in ``directory`` made absolute: taken from the
    file's directory when it exists there (as uv does, and pip does for -r, -c and
    -f), else from the current directory (where pip itself looks for a bare path)."""
    if os.path.isabs(path):
        return os.path.normpath(path)
    beside = os.path.normpath(os.path.join(directory, path))
    return beside if os.path.exists(beside) else os.path.abspath(path)


def file_editables(files: tuple[str, ...], seen: set[str] | None = None) -> list[tuple[str, str]]:
    """(file, target) of each ``-e`` line in ``files`` and the files they include with
    -r: a local path made absolute by :func:`based`, a URL as written. An unreadable
    file is skipped (reading it for the resolution says why)."""
    seen = set() if seen is None else seen
    found: list[tuple[str, str]] = []
    for f in files:
        real = os.path.abspath(f)
        if real in seen:
            continue
        seen.add(real)
        try:
            with open(real, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError):
            continue
        here = os.path.dirname(real)
        for line in logical_lines(text):
            target = editable_of(line)
            if target is not None:
                found.append((real, target if "://" in target else based(target, here)))
                continue
            nested = [
                os.path.join(here, v) for k, v in included(line) if k == "r" and "://" not in v
            ]
            found += file_editables(tuple(nested), seen)
    return found
