"""``envstore run script.py``: a PEP 723 script in a throwaway environment.

A script may declare what it needs in an inline metadata block (the PyPA
"inline script metadata" specification, PEP 723)::

    # /// script
    # requires-python = ">=3.11"
    # dependencies = ["rich", "httpx>=0.27"]
    # ///

The block is found with the specification's regular expression and read as
TOML. Its ``dependencies`` go into a throwaway env served from the store (as
``envstore run --with`` does), on an interpreter that satisfies
``requires-python``: ``--python`` if given (an error if it does not fit), else
the default interpreter, else the newest installed one that fits. A script
without a block runs with no extra packages.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from envstore.errors import InterpreterError, ProjectError
from envstore.model.interpreter import Interpreter
from envstore.model.sources import PackageSources, sources_from
from envstore.model.toml import loads
from envstore.store.layout import Store

__all__ = ["ScriptMetadata", "choose_python", "parse_script_metadata", "run_script"]

# The specification's own expression (the text wins where they differ: see below).
_BLOCK = re.compile(r"(?m)^# /// (?P<type>[a-zA-Z0-9-]+)$\s(?P<content>(^#(| .*)$\s)+)^# ///$")
_OPENER = re.compile(r"(?m)^# /// script$")


@dataclass(frozen=True)
class ScriptMetadata:
    """What a script's ``script`` block asks for (empty when it has none)."""

    dependencies: tuple[str, ...] = ()
    requires_python: str | None = None


def parse_script_metadata(text: str, where: str) -> ScriptMetadata:
    """The ``script`` block of the source ``text`` (``where`` names it in errors)."""
    blocks = [m for m in _BLOCK.finditer(text) if m.group("type") == "script"]
    if not blocks:
        return ScriptMetadata()
    # The expression is greedy: a second block right after the first is swallowed into
    # it, so an opener inside a block's content is a second block too (the specification
    # lets tools refuse a start line between a start and an end line).
    if len(blocks) > 1 or _OPENER.search(blocks[0].group("content")):
        raise ProjectError(
            f"{where} has more than one '# /// script' metadata block; keep one (PEP 723)"
        )
    content = "".join(
        line[2:] if line.startswith("# ") else line[1:]
        for line in blocks[0].group("content").splitlines(keepends=True)
    )
    try:
        data = loads(content)
    except ValueError as exc:  # tomllib.TOMLDecodeError
        raise ProjectError(f"{where}: the '# /// script' block is not valid TOML: {exc}") from None
    deps = data.get("dependencies", [])
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise ProjectError(
            f"{where}: 'dependencies' in the '# /// script' block must be a list of strings"
        )
    from packaging.requirements import InvalidRequirement, Requirement

    for dep in deps:
        try:
            Requirement(dep)
        except InvalidRequirement as exc:
            why = str(exc).splitlines()[0]  # packaging adds the text and a caret
            raise ProjectError(f"{where}: invalid dependency {dep!r}: {why}") from None
    spec = data.get("requires-python")
    if spec is not None:
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        try:
            if not isinstance(spec, str):
                raise InvalidSpecifier(repr(spec))
            SpecifierSet(spec)
        except InvalidSpecifier:
            raise ProjectError(f"{where}: invalid requires-python {spec!r}") from None
    return ScriptMetadata(tuple(deps), spec)


def read_script_metadata(path: str) -> ScriptMetadata:
    """The ``script`` block of the file at ``path`` (read as UTF-8, as the spec allows)."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            text = f.read()
    except FileNotFoundError:
        raise ProjectError(f"no script at {path}") from None
    except IsADirectoryError:
        raise ProjectError(f"{path} is a directory, not a script") from None
    except OSError as exc:
        raise ProjectError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ProjectError(f"{path} is not UTF-8 text: {exc.reason}") from None
    return parse_script_metadata(text, path)


def _fits(spec: str, interp: Interpreter) -> bool:
    from envstore.python.requires_python import fits_requires_python

    return fits_requires_python(spec, interp.version)


def choose_python(
    meta: ScriptMetadata, script: str, python: str | None, store: Store
) -> str | None:
    """The ``-p`` to run ``script`` with: ``python`` if it satisfies the script's
    ``requires-python``, else the default interpreter's (None) if it does, else the
    newest installed one that does."""
    spec = meta.requires_python
    if spec is None:
        return python
    from envstore.python.interpreters import find_interpreter, installed, newest_installed

    cache = store.facts_cache()
    if python:
        interp = find_interpreter(python, cache)
        if not _fits(spec, interp):
            raise InterpreterError(
                f"{script} requires Python {spec}, but --python {python} is Python {interp.version}"
            )
        return python
    if _fits(spec, find_interpreter(None, cache)):
        return None
    newest = newest_installed(lambda i: _fits(spec, i), cache)
    if newest is None:
        seen = ", ".join(sorted({i.version for i in installed(cache)})) or "none"
        raise InterpreterError(
            f"{script} requires Python {spec}, and no installed Python satisfies it"
            f" (found: {seen}); install one, or pass --python"
        )
    return newest.path


def run_script(
    script: str,
    args: Sequence[str] = (),
    requirements: Sequence[str] = (),
    *,
    python: str | None = None,
    store: Store | str | os.PathLike[str] | None = None,
    requirement_files: Sequence[str] = (),
    sources: PackageSources | None = None,
    find_links: Sequence[str] = (),
    index_url: str | None = None,
    no_index: bool = False,
    offline: bool = False,
    progress: Callable[[str], None] | None = None,
) -> int:
    """Run the PEP 723 script ``script`` with ``args`` in a throwaway env holding its
    ``dependencies`` and ``requirements``; return its exit code (see the module docstring).
    """
    from envstore.frontends.run import run_in_env

    meta = read_script_metadata(script)
    st = store if isinstance(store, Store) else Store(store)
    try:
        st.ensure()
        chosen = choose_python(meta, script, python, st)
        return run_in_env(
            ["python", script, *args],
            [*meta.dependencies, *requirements],
            python=chosen,
            store=st,
            requirement_files=requirement_files,
            sources=sources_from(sources, find_links, index_url, no_index, offline),
            progress=progress,
        )
    finally:
        if st is not store:
            st.close()
