"""A project's ``pylock.toml``: the digest of the inputs it was made from, and whether
``envstore sync`` in the project may use it.

``envstore lock`` in a project (``envstore.env.lock_project``) records in
``[tool.envstore] inputs`` the sha256 of what it locked from ``pyproject.toml``: the
project's name, ``requires-python``, dependencies, extras and dependency groups (as
parsed: a comment or a reordered table does not make the lock stale). A sync uses a
lock whose digest matches; a stale one is warned about and the project resolved as if
there were none (``--locked``: refused, as ``uv sync --locked`` does). So is a lock
another tool wrote (``pip lock``: no digest), which may lack the project's groups and
newer dependencies: ``sync ENV --from pylock.toml`` installs it as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from envstore.errors import ProjectError
from envstore.model.lock import Lock
from envstore.resolve.project import Project

__all__ = ["LOCK_NAME", "inputs_digest", "project_lock", "syncing"]

LOCK_NAME = "pylock.toml"  # PEP 751's name, in the project's root


def inputs_digest(project: Project) -> str:
    """``sha256:<hex>`` of what a project lock is made from (see the module docstring)."""
    import hashlib
    import json

    data = {
        "name": project.name,
        "requires-python": project.requires_python,
        "dependencies": list(project.dependencies),
        "optional-dependencies": {k: list(v) for k, v in project.optional.items()},
        "dependency-groups": {k: list(v) for k, v in project.groups.items()},
    }
    text = json.dumps(data, sort_keys=True, default=dict)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def project_lock(
    project: Project, *, locked: bool, editable: bool, warn: Callable[[str], None] | None
) -> Lock | None:
    """The project's ``pylock.toml`` if a sync should use it: there, and made by
    ``envstore lock`` from the project's inputs as they are now. A stale lock, or one
    another tool wrote (no digest), is reported to ``warn`` (None: the sync resolves
    without it); with ``locked`` a missing, stale or other tool's lock is a ProjectError.
    The project is installed editable from a lock (``editable``: False, as a wheel, is
    resolved without it)."""
    path = project.root / LOCK_NAME
    if not editable and path.is_file():
        if locked:
            raise ProjectError(
                f"--locked: the project is installed editable from {path}; drop --no-editable"
            )
        if warn is not None:
            warn(f"{path} not used: --no-editable builds the project, which a lock does not")
        return None
    pyproject = project.root / "pyproject.toml"
    if not path.is_file():
        if locked:
            raise ProjectError(
                f"--locked: {project.root} has no {LOCK_NAME}; write it with 'envstore lock'"
                f" in {project.root}"
            )
        return None
    lock = Lock.load(path)
    recorded = lock.recorded("inputs")
    if recorded is None:
        other = (
            f"{path} was not written by 'envstore lock' (no [tool.envstore] inputs digest:"
            " it may lack the project's groups and newer dependencies)"
        )
        if locked:
            raise ProjectError(
                f"--locked: {other}; lock with 'envstore lock' in {project.root}, or install it"
                f" as it is with 'envstore sync ENV --from {path}'"
            )
        if warn is not None:
            warn(f"{other}, not used; resolving from pyproject.toml")
        return None
    if recorded == inputs_digest(project):
        return lock
    stale = f"{path} is stale: {pyproject} changed since it was locked"
    if locked:
        raise ProjectError(f"--locked: {stale}; lock again with 'envstore lock' in {project.root}")
    if warn is not None:
        warn(f"{stale}; resolving from pyproject.toml ('envstore lock' updates the lock)")
    return None


def syncing(lock: Lock, groups: Sequence[str]) -> Lock:
    """``lock`` as a project sync uses it: without its source trees (the project is
    installed as the sync is asked), with ``groups`` (the sync's choice of dependency
    groups, none included) as its default groups."""
    from dataclasses import replace

    from packaging.utils import canonicalize_name

    pylock = lock.pylock
    packages = [p for p in pylock.packages if p.directory is None]
    chosen = [canonicalize_name(g) for g in groups]
    return replace(lock, pylock=replace(pylock, packages=packages, default_groups=chosen or None))
