"""Where packages may come from (issue #20): one PackageSources behind every public
entry point."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

import envstore
from envstore import PackageSources, create_env, sync_env
from envstore.env.relink import relink_env
from envstore.frontends.build import build_project
from envstore.frontends.isolated import IsolatedEnv
from envstore.frontends.run import run_in_env
from envstore.model.manifest import Manifest, Sources
from envstore.model.sources import RecordedSources


# -- one object ----------------------------------------------------------------------
def test_the_options_object_is_public() -> None:
    assert "PackageSources" in envstore.__all__ and "PackageSources" in dir(envstore)
    assert envstore.PackageSources is PackageSources
    # The manifest's old name for its recorded form stays.
    assert Sources is RecordedSources


ENTRY_POINTS: dict[str, Callable[[Path, PackageSources], object]] = {
    "create_env": lambda d, s: create_env(d / "e", ["x"], store=d / "st", sources=s, offline=True),
    "sync_env": lambda d, s: sync_env(d / "e", ["x"], store=d / "st", sources=s, no_index=True),
    "relink_env": lambda d, s: relink_env(d / "env", store=d / "st", sources=s, find_links=["w"]),
    "IsolatedEnv": lambda d, s: IsolatedEnv(d / "env", store=d / "st", sources=s, offline=True),
    "run_in_env": lambda d, s: run_in_env(["true"], store=d / "st", sources=s, index_url="http://x/"),
    "build_project": lambda d, s: build_project(d, store=d / "st", sources=s, offline=True),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_every_entry_point_refuses_sources_and_the_old_keywords_together(
    name: str, tmp_path: Path
) -> None:
    with pytest.raises(TypeError, match="either sources= or find_links"):
        ENTRY_POINTS[name](tmp_path, PackageSources())
    assert sorted(os.listdir(tmp_path)) == []  # refused before anything was made


def test_sources_and_keywords_make_the_same_env(
    tmp_path: Path, store: Path, wheelhouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(wheelhouse.parent)
    wh = wheelhouse.name  # relative: made absolute where the sources are made
    by_keywords = create_env(
        tmp_path / "a", ["solo"], store=store, find_links=[wh], no_index=True, with_pip=False
    )
    sources = PackageSources(find_links=[wh], no_index=True)
    monkeypatch.chdir(tmp_path)  # later: the directory was resolved already
    by_object = create_env(tmp_path / "b", ["solo"], store=store, sources=sources, with_pip=False)
    assert by_object.keys == by_keywords.keys
    for made in (by_keywords, by_object):
        recorded = Manifest.load(Path(made.env)).sources
        assert recorded.to_json() == {
            "find_links": [str(wheelhouse)],
            "index_url": None,
            "no_index": True,
        }


def test_a_string_is_not_a_list_of_find_links(tmp_path: Path, wheelhouse: Path) -> None:
    with pytest.raises(TypeError, match="not a string"):
        PackageSources(str(wheelhouse))
    with pytest.raises(TypeError, match="not a string"):
        create_env(tmp_path / "env", ["solo"], find_links=str(wheelhouse), no_index=True)  # type: ignore[arg-type]
    assert not (tmp_path / "env").exists()


def test_the_recorded_form_has_no_credentials_and_no_offline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    live = PackageSources(
        find_links=["https://u:secret@host/wh/?token=t", "rel"],
        index_url="https://u:pw@idx/simple/",
        offline=True,
    )
    assert live.find_links == ("https://u:secret@host/wh/?token=t", str(tmp_path / "rel"))
    assert "--index-url" in live.pip_options() and "https://u:pw@idx/simple/" in live.pip_options()
    assert "secret" not in repr(live) and "pw" not in repr(live)
    recorded = live.recorded()
    assert recorded.to_json() == {
        "find_links": ["https://host/wh/", str(tmp_path / "rel")],
        "index_url": "https://idx/simple/",
        "no_index": False,
    }
    again = recorded.reused(offline=True)
    assert again == PackageSources(["https://host/wh/", "rel"], "https://idx/simple/", offline=True)
    assert not PackageSources(offline=True).says_where() and again.says_where()
