"""Requirements files as a resolution reads them: what a cache key depends on (their
texts, what they include, the listing of ``--find-links`` directories, the
requirements that name a place), the requirement lines the store resolver reads,
and the copies pip is given when relative paths must be made absolute.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from envstore.errors import ResolutionError
from envstore.resolve.forms import absolute
from envstore.resolve.lines import ARCHIVES, based, editable_of, included, logical_lines
from envstore.resolve.request import Request

__all__ = [
    "ARCHIVES",
    "file_requirements",
    "listing",
    "pip_arguments",
    "requirement_lines",
    "requirement_texts",
]


def listing(d: str) -> list[tuple[str, int, int, int, int]] | None:
    """What pip could take from directory ``d``: (name, size, mtime, ctime, inode) of
    each wheel or archive; None if ``d`` is not a directory (a URL)."""
    # Each file stat'ed relative to the directory's descriptor: one component to look
    # up, not the whole path (~20 wheels: ~10 us of a warm sync). Every file is still
    # stat'ed: a wheel rewritten in place (``pip wheel -w``) leaves the directory's
    # mtime as it was.
    try:
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (OSError, ValueError):
        return None
    out = []
    try:
        with os.scandir(fd) as it:
            for e in it:
                name = e.name
                if not (name.endswith(".whl") or name.lower().endswith(ARCHIVES)):
                    continue  # an env, sources or .git beside the wheels change all the time
                try:
                    st = e.stat()  # through a link, as pip opens it
                    out.append((name, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
                except OSError:  # a dangling link
                    out.append((name, -1, -1, -1, -1))
    except OSError:
        return None
    finally:
        os.close(fd)
    return sorted(out)


def requirement_texts(
    path: str, seen: set[str], places: list[tuple[str, str]] | None = None
) -> list[str]:
    """A requirements file's text, then those of the files it includes, recursively,
    and the listings of local directories it names with -f: a change to any of them
    must miss the resolution cache. ``places`` receives (requirement line, the file's
    directory) for each requirement line, for the stamps of those naming a place."""
    real = os.path.abspath(path)
    if real in seen:
        return []
    seen.add(real)
    text = Path(real).read_text()
    out = [text]
    for line in logical_lines(text):
        if places is not None and not line.startswith("-"):
            places.append((line.split(" --", 1)[0], os.path.dirname(real)))
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
                out += requirement_texts(nested, seen, places)
            except OSError:
                out.append(f"unreadable: {nested}")  # pip will say so
    return out


def requirement_lines(request: Request) -> list[str] | None:
    """Requirement strings, those of files included with ``-r`` too; None when a file
    uses an option only pip understands (constraints, -f, index options, hashes)."""
    if request.constraints:
        return None  # pip's rules (constraints may name URLs, and pin what is not asked)
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
        if editable_of(line) is not None:
            continue  # the request's editables, not resolved here
        if not line.startswith("-"):
            if " --" in line or "\t--" in line:  # per-requirement options (--hash=...)
                return None
            out.append(absolute(line, os.path.dirname(real)))  # a path: from the file
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


def pip_arguments(request: Request, work: Path) -> list[str]:
    """The request as pip's arguments. A requirements file with a relative path (or
    an ``-e`` line, which is not pip's to install) is given to pip as a copy in
    ``work`` with those paths absolute (from the file: see ``lines.based``)."""
    args = [absolute(r) for r in request.requirements]
    done: dict[str, str] = {}
    for f in request.requirement_files:
        args += ["-r", _for_pip(f, work, done)]
    for f in request.constraints:
        args += ["-c", _for_pip(f, work, done)]
    if request.pre:
        args.append("--pre")
    return args


def _for_pip(path: str, work: Path, done: dict[str, str]) -> str:
    """``path``, or the copy of it pip must read instead (see :func:`pip_arguments`)."""
    real = os.path.abspath(path)
    if real in done:
        return done[real]
    done[real] = real  # an include cycle: pip's to report
    try:
        text = Path(real).read_text()
    except (OSError, UnicodeDecodeError):
        return real  # pip says what is wrong with it
    here = os.path.dirname(real)
    out: list[str] = []
    changed = False
    for line in logical_lines(text):
        new = line
        if editable_of(line) is not None:
            changed = True
            continue
        if not line.startswith("-"):
            req, opts, rest = line.partition(" --")
            new = absolute(req, here) + opts + rest
        else:
            found = included(line)
            if len(found) == 1 and found[0][0] in "rc" and "://" not in found[0][1]:
                nested = os.path.join(here, found[0][1])
                given = _for_pip(nested, work, done)
                changed |= given != os.path.abspath(nested)
                new = f"-{found[0][0]} {given}"
            elif len(found) == 1 and found[0][0] == "f" and "://" not in found[0][1]:
                new = f"-f {based(found[0][1], here)}"
        changed |= new != line and not line.startswith("-")
        out.append(new)
    if not changed:
        return real
    copy = work / f"{len(done)}-{os.path.basename(real)}"
    copy.write_text("".join(f"{line}\n" for line in out))
    done[real] = str(copy)
    return str(copy)
