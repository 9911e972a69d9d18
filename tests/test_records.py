"""entry.json and view.json: one reader (validating) and one writer each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import CLI

from envstore.errors import StoreError
from envstore.model.manifest import Manifest
from envstore.model.records import EntryRecord, ViewRecord
from envstore.store.layout import Store, read_entry_record
from envstore.store.seal import entry_seal
from envstore.store.views import read_view


def test_the_writers_write_what_the_store_holds(
    cli: CLI, wheelhouse: Path, store: Path, tmp_path: Path
) -> None:
    env = tmp_path / "env"
    assert cli("--store", store, "create", env, "--no-index", "-f", wheelhouse, "solo").code == 0
    manifest = Manifest.load(env)
    st = Store(store)
    for key in manifest.keys:
        text = (st.entry_path(key) / "entry.json").read_text()
        assert EntryRecord.from_json(json.loads(text)).dumps() == text
    view = st.view_path(manifest.view)
    assert read_view(view).dumps() == (view / "view.json").read_text()


def _entry(tmp_path: Path, **changes: object) -> Path:
    root = tmp_path / "entries" / "pure" / "x" / "1-0"
    (root / "site").mkdir(parents=True)
    data: dict[str, object] = {
        "key": "pure/x/1-" + "0" * 32,
        "name": "x",
        "version": "1",
        "hash": "xxh3_128:" + "0" * 32,
        "abi": "pure",
        "wheel": "x-1-py3-none-any.whl",
        "dist_info": "x-1.dist-info",
        "entry_points": [],
        "data": [],
        "pth": [],
        "files": 1,
        "size": 1,
        "added": 1.0,
        **changes,
    }
    (root / "entry.json").write_text(json.dumps(data))
    return root


def test_an_entry_record_naming_a_path_is_refused(tmp_path: Path) -> None:
    assert read_entry_record(_entry(tmp_path)).dist_info == "x-1.dist-info"
    bad = _entry(tmp_path / "b", dist_info="../../../../../evil.dist-info")
    with pytest.raises(StoreError, match=r"entry\.json is invalid .*verify --repair"):
        read_entry_record(bad)
    # The seal of such an entry hashes no RECORD outside it.
    outside = tmp_path / "b" / "evil.dist-info"
    outside.mkdir()
    (outside / "RECORD").write_text("planted\n")
    assert (bad / "site" / "../../../../../evil.dist-info/RECORD").resolve() == (outside / "RECORD")
    assert entry_seal(bad)["RECORD"] == ""


@pytest.mark.parametrize(
    "changes",
    [
        {"entry_points": [["../x", "m", "f", "console"]]},
        {"pth": ["a.txt"]},
        {"data": ["lib"]},
        {"files": "many"},
        {"sha256": 5},
    ],
)
def test_malformed_entry_records_are_refused(tmp_path: Path, changes: dict[str, object]) -> None:
    with pytest.raises(StoreError):
        read_entry_record(_entry(tmp_path, **changes))


def test_a_view_record_leading_out_of_the_store_is_refused(tmp_path: Path) -> None:
    entries = str(tmp_path / "entries") + "/"
    ok = {
        "key": "v",
        "cache_tag": "cpython-311",
        "entries": [],
        "scripts": [],
        "data_scripts": [],
        "pth": [["a.pth", entries + "pure/x/1-0/site/a.pth"]],
        "data": [],
        "headers": [],
        "wheels": {},
    }
    assert ViewRecord.from_json(ok, entries).pth[0][0] == "a.pth"
    for bad in (
        {"pth": [["a.pth", "/etc/passwd"]]},
        {"data": [entries + "../../etc"]},
        {"data": [entries + ".."]},  # the store itself: no "/../" in it
        {"data": [entries + "pure/x/1-0/."]},
        {"pth": [["a.txt", entries + "pure/x/1-0/site/a.txt"]]},
        {"scripts": [["../../bin/sh", "m", "f", "console", "x"]]},
    ):
        with pytest.raises(ValueError):
            ViewRecord.from_json({**ok, **bad}, entries)
