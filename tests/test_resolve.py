"""Resolving ``--no-index --find-links DIR`` without pip: the same choice pip makes."""

from __future__ import annotations

from pathlib import Path

import pytest
import wheelmaker
from conftest import run

import envstore._resolve
from envstore import create_env
from envstore.errors import ResolutionError


class _PipCalled(Exception):
    pass


def _no_pip(*args: object, **kwargs: object) -> None:
    raise _PipCalled


def _tricky_wheelhouse(wh: Path) -> None:
    """Pre-releases, a wheel for a Python that does not exist, extras and markers."""
    build = wheelmaker.build_wheel
    build(wh, "top-pkg", "1.0", requires=["dep-a>=1", "dep-b[fast]", "dep-c; python_version < '3'"])
    build(wh, "dep-a", "1.5")
    build(wh, "dep-a", "2.0b1")  # pre-release: not chosen for ">=1"
    build(wh, "dep-a", "1.9", metadata_extra=["Requires-Python: >=99"])  # not for this Python
    build(
        wh,
        "dep-b",
        "1.0",
        requires=["dep-x; extra == 'fast'"],
        metadata_extra=["Provides-Extra: fast"],
    )
    build(wh, "dep-x", "3.0")
    build(wh, "dep-x", "2.0")
    build(wh, "dep-c", "1.0")  # its marker is false
    build(wh, "dep-y", "1.0", requires=["dep-x>=3"])


def _versions(manifest: envstore.Manifest) -> dict[str, str]:
    return {p.name: p.version for p in manifest.packages}


def test_local_wheels_resolve_without_pip_as_pip_does(
    tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wh = tmp_path / "wh"
    _tricky_wheelhouse(wh)
    opts = dict(store=store, find_links=[str(wh)], no_index=True, with_pip=False)

    with monkeypatch.context() as m:
        m.setattr(envstore._resolve, "_from_pip", _no_pip)
        local = create_env(tmp_path / "local", ["top-pkg"], **opts)  # type: ignore[arg-type]
    # pip itself (upgrade skips the store and the local resolver) chooses the same
    by_pip = create_env(tmp_path / "pip", ["top-pkg"], upgrade=True, **opts)  # type: ignore[arg-type]
    expected = {"top-pkg": "1.0", "dep-a": "1.5", "dep-b": "1.0", "dep-x": "3.0"}
    assert _versions(local) == _versions(by_pip) == expected
    assert {p.name for p in local.packages if p.requested} == {"top-pkg"}
    proc = run(
        [tmp_path / "local" / "bin" / "python", "-c", "import dep_x; print(dep_x.__version__)"]
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "3.0", proc.stderr

    # an explicit pre-release is taken, as pip takes it
    with monkeypatch.context() as m:
        m.setattr(envstore._resolve, "_from_pip", _no_pip)
        pre = create_env(tmp_path / "pre", ["dep-a>=2.0b1"], **opts)  # type: ignore[arg-type]
    assert _versions(pre) == {"dep-a": "2.0b1"}


def test_local_resolution_defers_to_pip_when_pip_might_choose_otherwise(
    tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wh = tmp_path / "wh"
    _tricky_wheelhouse(wh)
    monkeypatch.setattr(envstore._resolve, "_from_pip", _no_pip)
    opts = dict(store=store, find_links=[str(wh)], with_pip=False)
    cases = {
        "the index is on": (["dep-x"], dict(opts)),
        "a conflict (pip may backtrack)": (["dep-x<3", "dep-y"], dict(opts, no_index=True)),
        "nothing fits": (["dep-a>=5"], dict(opts, no_index=True)),
    }
    # an sdist in the directory: pip would weigh building it
    sdist_dir = tmp_path / "with-sdist"
    wheelmaker.build_wheel(sdist_dir, "dep-x", "3.0")
    (sdist_dir / "dep_x-4.0.tar.gz").write_bytes(b"not really an sdist")
    cases["an sdist of the project"] = (
        ["dep-x"],
        dict(opts, no_index=True, find_links=[str(sdist_dir)]),
    )
    for why, (reqs, kw) in cases.items():
        with pytest.raises(_PipCalled):
            create_env(tmp_path / "env", reqs, **kw)  # type: ignore[arg-type]
        assert not (tmp_path / "env").exists(), why


def test_local_resolution_reports_pips_error_offline(tmp_path: Path, store: Path) -> None:
    wh = tmp_path / "wh"
    _tricky_wheelhouse(wh)
    with pytest.raises(ResolutionError, match="dep-a"):
        create_env(
            tmp_path / "env",
            ["dep-a>=5"],
            store=store,
            find_links=[str(wh)],
            no_index=True,
            with_pip=False,
        )
