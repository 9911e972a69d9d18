"""``envstore build``: PEP 517 builds through pypa/build, in envstore environments.

The flow is ``python -m build``'s: each distribution is built in its own
isolated env holding ``build-system.requires`` plus what the backend's
``get_requires_for_build_*`` hook asks for; by default an sdist is built and
the wheel is built from that sdist (which proves the sdist is complete).
pypa/build is an optional dependency (the ``build`` extra), imported only here.
"""

from __future__ import annotations

import os
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, Protocol

from envstore.errors import BuildError
from envstore.frontends.isolated import IsolatedEnv
from envstore.model.sources import PackageSources, sources_from
from envstore.store.layout import Store

__all__ = ["Distribution", "Runner", "build_project", "require_build"]

Distribution = Literal["sdist", "wheel"]


class Runner(Protocol):
    """Runs a backend hook subprocess (pyproject_hooks' runner signature)."""

    def __call__(
        self,
        cmd: Sequence[str],
        cwd: str | None = None,
        extra_environ: Mapping[str, str] | None = None,
    ) -> None: ...


def require_build() -> None:
    """Raise BuildError unless pypa/build can be imported."""
    try:
        import build  # noqa: F401
    except ImportError:
        raise BuildError(
            "envstore build needs pypa/build, which is not installed;"
            " install it with: pip install 'envstore[build]'"
        ) from None


def _describe(exc: Exception) -> str:
    """The message of a pypa/build exception, with the tail of captured backend output."""
    message = str(exc)
    inner = getattr(exc, "exception", None)
    if isinstance(inner, subprocess.CalledProcessError) and inner.output:
        out = inner.output
        if isinstance(out, bytes):
            out = out.decode(errors="replace")
        lines = [ln for ln in out.strip().splitlines() if ln.strip()]
        if lines:
            message += "\n" + "\n".join(f"  {ln}" for ln in lines[-15:])
    elif inner is not None and not isinstance(inner, subprocess.CalledProcessError):
        message += f": {inner}"
    return message


@contextmanager
def _build_errors() -> Iterator[None]:
    import build

    try:
        yield
    except (build.BuildException, build.BuildBackendException) as exc:
        raise BuildError(_describe(exc)) from exc


def _extract_sdist(sdist: Path, dest: Path) -> Path:
    """Unpack ``sdist`` into ``dest`` safely; return its single top-level directory."""
    try:
        with tarfile.open(sdist) as tar:
            members = tar.getmembers()
            tops = {m.name.split("/", 1)[0] for m in members if m.name.strip("/")}
            if len(tops) != 1:
                raise BuildError(f"{sdist.name} must hold one top directory, has {sorted(tops)}")
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, filter="data")
            else:  # Python < 3.10.12: check by hand what the data filter would refuse
                for m in members:
                    parts = m.name.split("/")
                    if m.name.startswith("/") or ".." in parts or not (m.isfile() or m.isdir()):
                        raise BuildError(f"{sdist.name} has an unsafe member {m.name!r}")
                tar.extractall(dest)
    except (OSError, tarfile.TarError) as exc:
        raise BuildError(f"cannot unpack the sdist {sdist}: {exc}") from exc
    return dest / tops.pop()


def _build_one(
    srcdir: Path,
    distribution: Distribution,
    outdir: Path,
    *,
    new_env: Callable[[], IsolatedEnv],
    config_settings: Mapping[str, str | list[str]] | None,
    runner: Runner | None,
    progress: Callable[[str], None] | None,
) -> Path:
    import build
    import pyproject_hooks

    with _build_errors(), new_env() as env:
        builder = build.ProjectBuilder.from_isolated_env(
            env, srcdir, runner=runner or pyproject_hooks.quiet_subprocess_runner
        )
        requires = builder.build_system_requires
        if progress:
            progress(f"{distribution}: installing {', '.join(sorted(requires)) or 'nothing'}")
        env.install(requires)
        extra = builder.get_requires_for_build(distribution, config_settings)
        if progress and extra - requires:
            progress(f"{distribution}: installing {', '.join(sorted(extra))} (from the backend)")
        env.install(extra)
        if progress:
            progress(f"building {distribution} of {srcdir}")
        return Path(builder.build(distribution, outdir, config_settings))


def build_project(
    srcdir: str | os.PathLike[str] = ".",
    outdir: str | os.PathLike[str] | None = None,
    distributions: Sequence[Distribution] = (),
    *,
    python: str | None = None,
    store: Store | str | os.PathLike[str] | None = None,
    sources: PackageSources | None = None,
    find_links: Sequence[str] = (),
    index_url: str | None = None,
    no_index: bool = False,
    offline: bool = False,
    config_settings: Mapping[str, str | list[str]] | None = None,
    runner: Runner | None = None,
    progress: Callable[[str], None] | None = None,
    max_age: float | None = None,
) -> list[Path]:
    """Build ``srcdir`` into ``outdir`` (default ``<srcdir>/dist``); return the artifacts.

    With no ``distributions`` an sdist is built, then a wheel from it (as
    ``python -m build`` does); otherwise each one named is built from
    ``srcdir``. ``runner`` runs the backend hooks (pyproject_hooks' signature);
    the default captures their output and puts its tail into the BuildError
    raised when a hook fails. ``sources`` (or its four keywords, not both) and
    ``max_age`` as for :func:`envstore.create_env`: the build environments of one
    request start pip at most once within ``max_age``.
    """
    where = sources_from(sources, find_links, index_url, no_index, offline)
    require_build()
    src = Path(os.path.abspath(srcdir))
    out = Path(os.path.abspath(outdir)) if outdir is not None else src / "dist"
    owned_store = not isinstance(store, Store)
    st = store if isinstance(store, Store) else Store(store)

    def new_env() -> IsolatedEnv:
        return IsolatedEnv(
            python=python,
            store=st,
            sources=where,
            progress=progress,
            max_age=max_age,
        )

    def one(where: Path, distribution: Distribution) -> Path:
        return _build_one(
            where,
            distribution,
            out,
            new_env=new_env,
            config_settings=config_settings,
            runner=runner,
            progress=progress,
        )

    try:
        if distributions:
            return [one(src, d) for d in dict.fromkeys(distributions)]
        sdist = one(src, "sdist")
        with tempfile.TemporaryDirectory(prefix="envstore-sdist-") as tmp:
            return [sdist, one(_extract_sdist(sdist, Path(tmp)), "wheel")]
    finally:
        if owned_store:
            st.close()
