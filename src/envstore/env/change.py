"""Changing an existing env in place (``envstore install`` and ``uninstall``): opening
it for the change, reading what it records, and saying what changed.

An env is changed only when its manifest is exactly the one its store registered
(envstore wrote it from the user's own command): its recorded requirements, sources
and editable projects may then be re-read, fetched from and built. A manifest
edited or copied since is data from disk (store-layout.md, "Files are untrusted
data") and is refused. Changes of one env take turns (a lock file per env in the
store's ``locks/``): two installs at once would each keep only their own package.
The env itself is rebuilt beside the old one and swapped in, as ``sync`` does.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from envstore.env.editable import EditableSpec, prepare_editables
from envstore.env.editable_install import PreparedEditable
from envstore.env.lifecycle import _prompt_of
from envstore.env.make import is_envstore_env
from envstore.env.relink import _registered_as_is
from envstore.errors import EnvError, InterpreterError
from envstore.model.interpreter import Interpreter
from envstore.model.keys import canonical_name
from envstore.model.manifest import MANIFEST_NAME, EditablePackage, Manifest, same_env
from envstore.model.sources import PackageSources
from envstore.python.interpreters import recorded_interpreter
from envstore.resolve.request import Request
from envstore.store.layout import Store
from envstore.store.locks import file_lock

__all__ = [
    "EnvChange",
    "OpenEnv",
    "changes",
    "changing",
    "keep_editables",
    "recorded_request",
    "requirement_name",
]


@dataclass
class EnvChange:
    """What an install or uninstall did: the new manifest, what it added and removed
    (``"name version"``; an upgrade is both) and warnings for the user."""

    manifest: Manifest
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class OpenEnv:
    """An env opened for a change: its path (as its manifest spells it), manifest,
    store, interpreter and prompt, and what it held before (name -> version)."""

    final: Path
    manifest: Manifest
    store: Store
    interp: Interpreter
    prompt: str | None
    before: dict[str, str]

    def sources(self, given: PackageSources) -> PackageSources:
        """``given`` if it names a place, else where the env's wheels came from."""
        if given.says_where():
            return given
        return self.manifest.sources.reused(given.offline, given.remote, given.push)


@contextmanager
def changing(
    path: str | os.PathLike[str], store: Store | str | os.PathLike[str] | None
) -> Iterator[OpenEnv]:
    """Open the env at ``path`` for a change, holding its turn until the block ends."""
    from envstore.env.project import env_names

    final = Path(os.path.abspath(path))
    if not is_envstore_env(final):
        raise EnvError(
            f"{final} is not an envstore environment; make it with 'envstore create {final} ...'"
        )
    manifest = Manifest.load(final)
    st = store if isinstance(store, Store) else Store(store or manifest.store)
    st.ensure(named_by=None if store else str(final / MANIFEST_NAME))
    turn = hashlib.sha256(os.fsencode(final)).hexdigest()[:32]
    with file_lock(st.locks_dir / f"change-{turn}.lock"):
        manifest = Manifest.load(final)  # as it is now that this change has its turn
        if same_env(manifest, final) != manifest.env:
            raise EnvError(
                f"{final} was moved here from {manifest.env}; run 'envstore relink {final}' first"
            )
        final = Path(manifest.env)
        if not _registered_as_is(st, manifest):
            raise EnvError(
                f"the manifest of {final} is not the one envstore registered in {st.root}"
                f" (changed or copied since); re-create the env with 'envstore sync {final}"
                " REQ...'"
            )
        was = manifest.python
        try:  # a path from the env's files: run only if envstore finds it by itself
            interp = recorded_interpreter(was.path, was.requested, st.facts_cache())
        except InterpreterError as exc:
            raise InterpreterError(f"{exc}; run 'envstore relink {final}' first") from None
        if interp.soabi != was.soabi:
            raise InterpreterError(
                f"the Python of {final} is now {interp.version} ({interp.soabi}), not"
                f" {was.version}; run 'envstore relink {final}' first"
            )
        yield OpenEnv(final, manifest, st, interp, _prompt_of(final), env_names(final))


def changes(opened: OpenEnv, made: Manifest, warnings: Sequence[str] = ()) -> EnvChange:
    """What the change did to ``opened`` (also what pip had put into its site-packages,
    which a rebuilt env no longer has)."""
    from envstore.env.project import env_names

    before, after = opened.before, env_names(opened.final)
    return EnvChange(
        made,
        added=[f"{n} {v}" for n, v in sorted(after.items()) if before.get(n) != v],
        removed=[f"{n} {v}" for n, v in sorted(before.items()) if after.get(n) != v],
        warnings=list(warnings),
    )


def recorded_request(tokens: Sequence[str], sources: PackageSources) -> Request:
    """The requirements an env records (``-r FILE``, ``-c FILE`` and ``--pre`` as
    ``Request.pip_requirements`` writes them) as a request."""
    requirements: list[str] = []
    files: list[str] = []
    constraints: list[str] = []
    pre = False
    it = iter(tokens)
    for token in it:
        if token in ("-r", "-c"):
            target = next(it, None)
            if target is None or not target.startswith("/"):
                raise EnvError(f"the recorded requirements end in {token!r} with no file")
            (files if token == "-r" else constraints).append(target)
        elif token == "--pre":
            pre = True
        elif token.startswith("-"):
            raise EnvError(f"the recorded requirements hold {token!r}, which envstore never writes")
        else:
            requirements.append(token)
    return Request(
        tuple(requirements), tuple(files), sources, constraints=tuple(constraints), pre=pre
    )


_DIRECT_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*@")


def requirement_name(text: str, store: Store, interp: Interpreter) -> str | None:
    """The (normalized) project a requirement names: from ``name ...`` or ``name @ URL``;
    for a local project or archive, from the entry it was built into; else None."""
    from envstore.resolve.cache import built_entry
    from envstore.resolve.forms import classify

    form = classify(text)
    if form.kind == "name":
        from packaging.requirements import InvalidRequirement, Requirement

        try:
            return canonical_name(Requirement(text).name)
        except InvalidRequirement:
            return None  # the resolver says what is wrong with it
    m = _DIRECT_NAME.match(text)
    if m:
        return canonical_name(m.group(1))
    key = built_entry(store, form, interp)
    return key.name if key is not None else None


def keep_editables(
    opened: OpenEnv,
    kept: Sequence[EditablePackage],
    sources: PackageSources,
    progress: Callable[[str], None] | None = None,
) -> list[PreparedEditable]:
    """The env's editable projects ``kept``, ready to install again: their cached
    editable wheels (built again only if a project's pyproject.toml, setup.py or
    setup.cfg changed, as a re-create would)."""
    specs = []
    for e in kept:
        path = Path(e.path)
        if not any((path / k).is_file() for k in ("pyproject.toml", "setup.py")):
            raise EnvError(
                f"the editable project {e.name} of {opened.final} is gone from {path};"
                f" 'envstore uninstall {opened.final} {e.name}' drops it from the env"
            )
        specs.append(EditableSpec(path, e.extras))
    if not specs:
        return []
    return prepare_editables(
        opened.store,
        specs,
        opened.interp,
        sources,
        progress=progress,
    )
