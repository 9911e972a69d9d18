"""What makes a library ``sync_project`` cheaper in CPU keeps it exact (#21): describe's
per-process memo answers again only while the interpreter's files are the same, and
per facts cache; the manifest's hand-written rows are json.dumps's; the store is
ensured once per project sync (still checked). Each test fails when its part is gone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import wheelmaker
from conftest import PYTHONS
from projectmaker import make_project

from envstore import PackageSources
from envstore.env.project import sync_project
from envstore.errors import StoreError
from envstore.store.layout import Store

AVAILABLE = [os.path.realpath(p) for p in PYTHONS.values() if p]


def test_a_project_sync_ensures_its_store_once_and_still_checks_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wh = tmp_path / "wheels"
    wh.mkdir()
    wheelmaker.build_wheel(wh, "dep-one", "1.0", files={"dep_one/__init__.py": ""})
    proj = make_project(tmp_path / "proj", dependencies=["dep-one"])
    st = Store(tmp_path / "store")
    calls: list[str] = []
    ensure = Store.ensure
    monkeypatch.setattr(Store, "ensure", lambda s, **k: calls.append("ensure") or ensure(s, **k))
    kw = {"store": st, "sources": PackageSources(find_links=[str(wh)], no_index=True)}
    sync_project(proj, with_pip=False, **kw)  # type: ignore[arg-type]
    assert calls == ["ensure"]
    monkeypatch.delenv("ENVSTORE_TRUST_SHARED_STORE", raising=False)
    os.chmod(st.root, 0o777)  # others may write it: the one check refuses the next sync
    try:
        with pytest.raises(StoreError, match="writable by other users"):
            sync_project(proj, with_pip=False, **kw)  # type: ignore[arg-type]
    finally:
        os.chmod(st.root, 0o755)
