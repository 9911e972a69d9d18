"""Where packages may come from (issue #20): one PackageSources behind every public
entry point, one rule for whether pip may run, one message saying where envstore
looked, and one path by which pip's wheels reach the store's ``wheels/``."""

from __future__ import annotations

import ast
import dataclasses
import functools
import http.server
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import wheelmaker

import envstore
from envstore import Lock, PackageSources, ResolutionError, create_env, lock_env, sync_env
from envstore.env.relink import relink_env
from envstore.frontends.build import build_project
from envstore.frontends.isolated import IsolatedEnv
from envstore.frontends.run import run_in_env
from envstore.model.manifest import Manifest, Sources
from envstore.model.sources import RecordedSources
from envstore.resolve.pip import download, pip_may_find, pip_may_run, searched

SRC = Path(__file__).resolve().parent.parent / "src" / "envstore"


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


# -- one rule for pip, one message ---------------------------------------------------
@pytest.mark.parametrize(
    ("sources", "may_run", "may_find", "may_find_beyond_local"),
    [
        pytest.param(PackageSources(), True, True, True, id="the-index"),
        pytest.param(PackageSources(offline=True), False, False, False, id="offline"),
        pytest.param(
            PackageSources(["http://h/"], offline=True), False, False, False, id="offline-url"
        ),
        pytest.param(PackageSources(no_index=True), True, False, False, id="no-index-only"),
        pytest.param(PackageSources(["/d"], no_index=True), True, True, False, id="no-index-dir"),
        pytest.param(PackageSources(["http://h/"], no_index=True), True, True, True, id="url"),
    ],
)
def test_the_one_rule_for_running_pip(
    sources: PackageSources, may_run: bool, may_find: bool, may_find_beyond_local: bool
) -> None:
    assert pip_may_run(sources) is may_run
    assert pip_may_find(sources, listed_local=False) is may_find
    assert pip_may_find(sources, listed_local=True) is may_find_beyond_local


def test_where_we_searched_says_why_not_the_index_and_no_secret() -> None:
    secret = PackageSources(["https://u:secret@h/x/", "/d"], "https://u:pw@idx/simple/")
    assert searched(secret, "the store") == (
        "the store, --find-links https://h/x/ /d and https://idx/simple/"
    )
    assert searched(PackageSources(), "the store") == "the store and the index"
    offline = PackageSources(["https://h/x/", "/d"], offline=True)  # the URL was not looked at
    assert searched(offline, "the store") == (
        "the store, --find-links /d (the index was not searched: --offline)"
    )
    no_index = PackageSources(["/d"], no_index=True)
    assert searched(no_index, "the store") == (
        "the store, --find-links /d (the index was not searched: --no-index)"
    )
    untrusted = searched(PackageSources(no_index=True, offline=True), "the store", "-f /x")
    assert "not the manifest's own sources, -f /x" in untrusted


def test_a_lock_offline_says_offline(tmp_path: Path, store: Path, wheelhouse: Path) -> None:
    made = create_env(
        tmp_path / "env", ["solo"], store=store, find_links=[str(wheelhouse)], no_index=True,
        with_pip=False,
    )  # fmt: skip
    lock = _unplaced(lock_env(made.env))
    elsewhere = tmp_path / "other-store"
    with pytest.raises(ResolutionError) as exc:
        create_env(tmp_path / "b", store=elsewhere, lock=lock, sources=PackageSources(offline=True))
    assert "no wheel solo-0.5-py3-none-any.whl with its sha256 in the store" in str(exc.value)
    assert "(the index was not searched: --offline)" in str(exc.value)


def test_only_resolve_pip_runs_pip() -> None:
    """The one download path and the one gate: no other module runs pip."""
    callers = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                f = node.func
                name = f.id if isinstance(f, ast.Name) else getattr(f, "attr", "")
                if name in ("run_pip", "pip_command"):
                    callers.append(str(path.relative_to(SRC)))
    assert sorted(set(callers)) == ["resolve/pip.py"]


# -- one download path ---------------------------------------------------------------
class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Path]]:
    """A --find-links URL on 127.0.0.1 and the directory it serves: a remote wheelhouse
    that only pip can search."""
    d = tmp_path / "served"
    d.mkdir()
    for var in ("http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(d))
    )
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", d
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _kept(store: Path) -> list[str]:
    return sorted(os.listdir(store / "wheels")) if (store / "wheels").is_dir() else []


def _leftovers(store: Path) -> list[str]:
    return sorted(os.listdir(store / "tmp")) if (store / "tmp").is_dir() else []


def test_resolving_with_pip_keeps_its_wheels_in_the_store(
    tmp_path: Path, store: Path, served: tuple[str, Path]
) -> None:
    url, d = served
    wheelmaker.build_wheel(d, "solo", "1.0")
    remote = PackageSources([url], no_index=True)
    made = create_env(tmp_path / "env", ["solo"], store=store, sources=remote, with_pip=False)
    assert [p.name for p in made.packages] == ["solo"]
    assert _kept(store) == ["solo-1.0-py3-none-any.whl"]
    assert _leftovers(store) == []


def test_a_lock_downloads_exactly_its_wheels_into_the_store(
    tmp_path: Path, store: Path, served: tuple[str, Path], wheelhouse: Path
) -> None:
    url, d = served
    made = create_env(
        tmp_path / "env", ["solo"], store=store, find_links=[str(wheelhouse)], no_index=True,
        with_pip=False,
    )  # fmt: skip
    lock = _unplaced(lock_env(made.env))
    (d / "solo-0.5-py3-none-any.whl").write_bytes(
        (wheelhouse / "solo-0.5-py3-none-any.whl").read_bytes()
    )
    other = tmp_path / "other-store"
    remote = PackageSources([url], no_index=True)
    again = create_env(tmp_path / "b", store=other, lock=lock, sources=remote)
    assert again.keys == made.keys
    assert _kept(other) == ["solo-0.5-py3-none-any.whl"] and _leftovers(other) == []
    # Another wheel under the locked name: pip refuses it (--require-hashes), none is kept.
    third = tmp_path / "third-store"
    wheelmaker.build_wheel(d, "solo", "0.5", files={"solo/__init__.py": "OTHER = 1\n"})
    with pytest.raises(ResolutionError, match="pip could not download the locked wheels"):
        create_env(tmp_path / "c", store=third, lock=lock, sources=remote)
    assert _kept(third) == [] and _leftovers(third) == []


def test_the_download_path_moves_only_what_is_kept(store: Path, served: tuple[str, Path]) -> None:
    from envstore.python.interpreters import find_interpreter
    from envstore.resolve.pip import bundled_pip_key
    from envstore.store.layout import Store

    url, d = served
    wheelmaker.build_wheel(d, "solo", "1.0")
    st = Store(store)
    try:
        interp = find_interpreter(None, st.facts_cache())
        site = st.entry_path(bundled_pip_key(st, interp, None)) / "site"
        remote = PackageSources([url], no_index=True)
        what = "download a wheel of solo"
        refused = download(st, interp, site, remote, ["solo==1.0"], what, keep=lambda w: False)
        assert refused == [] and _kept(store) == [] and _leftovers(store) == []
        got = download(st, interp, site, remote, ["solo==1.0"], what)
        assert got == [st.wheels_dir / "solo-1.0-py3-none-any.whl"] and got[0].is_file()
        with pytest.raises(ResolutionError, match="pip could not download a wheel of nothere"):
            download(st, interp, site, remote, ["nothere"], "download a wheel of nothere")
        assert _leftovers(store) == []
    finally:
        st.close()


def _unplaced(lock: Lock) -> Lock:
    """``lock`` without where its wheel files are (as if they were not at hand)."""
    return dataclasses.replace(
        lock, packages=[dataclasses.replace(p, path=None) for p in lock.packages]
    )
