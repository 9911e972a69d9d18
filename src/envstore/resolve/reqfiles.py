"""Requirements files: logical lines, includes (``-r``), options, and the listing
of ``--find-links`` directories that a resolution's cache key depends on.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from envstore.errors import ResolutionError
from envstore.resolve.request import Request


def listing(d: str) -> list[tuple[str, int, int, int, int]] | None:
    """What pip could take from directory ``d``: (name, size, mtime, ctime, inode) of
    each wheel or archive; None if ``d`` is not a directory (a URL)."""
    try:
        with os.scandir(d) as it:
            entries = list(it)
    except (OSError, ValueError):
        return None
    out = []
    for e in entries:
        if not (e.name.endswith(".whl") or e.name.lower().endswith(ARCHIVES)):
            continue  # an env, sources or .git beside the wheels change all the time
        try:
            st = e.stat()
            out.append((e.name, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
        except OSError:  # a dangling link
            out.append((e.name, -1, -1, -1, -1))
    return sorted(out)


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
        line = re.sub(r"(^|\s+)#.*$", "", line).strip()
        line = re.sub(r"\$\{([A-Z0-9_]+)\}", lambda m: os.environ.get(m.group(1), m.group(0)), line)
        if line:
            out.append(line)
    return out


def _is_option(name: str, full: str, clash: str) -> bool:
    """``--name`` means ``--full``: itself or an abbreviation optparse accepts (not also
    the start of ``--clash``, pip's other option with that prefix)."""
    return full.startswith(name) and not clash.startswith(name) and len(name) > 1


def included(line: str) -> list[tuple[str, str]]:
    """What a requirements-file line points at, in pip's option syntax: ("r", file) for
    -r and ("c", file) for -c (a file it includes), ("f", place) for -f (where pip
    looks for wheels)."""
    import shlex

    if not line.startswith("-"):
        return []
    try:
        tokens = shlex.split(line)
    except ValueError:
        tokens = line.split()
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


def requirement_texts(path: str, seen: set[str]) -> list[str]:
    """A requirements file's text, then those of the files it includes, recursively,
    and the listings of local directories it names with -f: a change to any of them
    must miss the resolution cache."""
    real = os.path.abspath(path)
    if real in seen:
        return []
    seen.add(real)
    text = Path(real).read_text()
    out = [text]
    for line in logical_lines(text):
        for kind, name in included(line):
            if "://" in name:
                out.append(name)  # a URL: what pip fetches is not ours to stamp
                continue
            nested = os.path.join(os.path.dirname(real), name)
            if kind == "f":  # pip takes it relative to the file when it exists there
                place = nested if os.path.exists(nested) else name
                out.append(json.dumps([place, listing(place)]))
                continue
            try:
                out += requirement_texts(nested, seen)
            except OSError:
                out.append(f"unreadable: {nested}")  # pip will say so
    return out


def requirement_lines(request: Request) -> list[str] | None:
    """Requirement strings, those of files included with ``-r`` too; None when a file
    uses an option only pip understands (constraints, -f, index options, hashes)."""
    lines = list(request.requirements)
    seen: set[str] = set()
    for f in request.requirement_files:
        more = file_requirements(f, seen)
        if more is None:
            return None
        lines += more
    return lines


def file_requirements(path: str, seen: set[str]) -> list[str] | None:
    real = os.path.abspath(path)
    if real in seen:
        return []
    seen.add(real)
    out: list[str] = []
    for line in logical_lines(Path(real).read_text()):
        if not line.startswith("-"):
            if " --" in line or "\t--" in line:  # per-requirement options (--hash=...)
                return None
            out.append(line)
            continue
        found = included(line)
        if len(found) != 1 or found[0][0] != "r" or "://" in found[0][1] or len(line.split()) > 2:
            return None
        nested = os.path.join(os.path.dirname(real), found[0][1])  # as pip: by the file
        try:
            more = file_requirements(nested, seen)
        except OSError as exc:
            raise ResolutionError(
                f"cannot read requirements file {nested} (included by {real}): {exc.strerror}"
            ) from None
        if more is None:
            return None
        out += more
    return out


# What pip takes for an sdist (or another archive it might build).
ARCHIVES = (
    *(".zip", ".tar", ".tgz", ".tbz", ".txz", ".tlz"),
    *(".tar.gz", ".tar.bz2", ".tar.xz", ".tar.lz", ".tar.lzma"),
)
