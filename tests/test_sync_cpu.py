"""What makes a library ``sync_project`` cheaper in CPU keeps it exact (#21): describe's
per-process memo answers again only while the interpreter's files are the same, and
per facts cache; the manifest's hand-written rows are json.dumps's; the store is
ensured once per project sync (still checked). Each test fails when its part is gone."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
import wheelmaker
from conftest import PYTHONS
from projectmaker import make_project

from envstore import PackageSources
from envstore.env import make as _make
from envstore.env.project import sync_project
from envstore.errors import StoreError
from envstore.model.interpreter import Interpreter
from envstore.model.keys import EntryKey
from envstore.model.manifest import EditablePackage, Manifest, Package
from envstore.model.sources import RecordedSources
from envstore.python import described as _described
from envstore.python.interpreters import find_interpreter
from envstore.resolve import project as _project
from envstore.resolve.reqfiles import listing
from envstore.store import index as _index
from envstore.store.caches import InterpreterFacts
from envstore.store.layout import Store

AVAILABLE = [os.path.realpath(p) for p in PYTHONS.values() if p]


def _cache(root: Path) -> InterpreterFacts:
    st = Store(root)
    st.ensure()
    return st.facts_cache()


def _runs(python: str) -> bool:
    out = subprocess.run([python, "-I", "-S", "-c", "pass"], capture_output=True, check=False)
    return out.returncode == 0


def test_describe_memo_notices_an_interpreter_replaced_at_the_same_path(tmp_path: Path) -> None:
    """Same path, same link chain (none), another file: the memo's key is the file's
    identity, so the second describe sees the other version."""
    versions = {}
    for real in AVAILABLE:
        versions.setdefault(find_interpreter(real).version, real)
    if len(versions) < 2:
        pytest.skip("needs two CPython versions")
    (old_version, old), (new_version, new) = list(versions.items())[:2]
    exe = tmp_path / "bin" / "mypython"  # not python3: a sibling python3.X may come
    exe.parent.mkdir()
    shutil.copy2(old, exe)
    if not _runs(str(exe)):
        pytest.skip("a copied interpreter does not run here")
    cache = _cache(tmp_path / "store")
    assert find_interpreter(str(exe), cache).version == old_version
    assert find_interpreter(str(exe), cache).version == old_version
    assert any(key[1] == str(exe) for key in _described._DESCRIBED)  # from the memo
    shutil.copy2(new, tmp_path / "new")
    os.replace(tmp_path / "new", exe)  # an upgrade in place: a new file at the path
    assert find_interpreter(str(exe), cache).version == new_version


def test_describe_memo_notices_a_link_repointed(tmp_path: Path) -> None:
    if len({find_interpreter(p).version for p in AVAILABLE}) < 2:
        pytest.skip("needs two CPython versions")
    a, b = next((a, b) for a in AVAILABLE for b in AVAILABLE if a != b)
    link = tmp_path / "bin" / "py"
    link.parent.mkdir()
    os.symlink(a, link)
    cache = _cache(tmp_path / "store")
    first = find_interpreter(str(link), cache)
    link.unlink()
    os.symlink(b, link)
    assert find_interpreter(str(link), cache).resolved == b != first.resolved


def test_describe_memo_notices_a_middle_hop_repointed(tmp_path: Path) -> None:
    """bin/mypy -> pyA -> the interpreter, then bin/mypy -> pyB -> the same file: the
    file's identity is unchanged, only the chain differs, and the answer names pyB."""
    if not AVAILABLE:
        pytest.skip("no CPython found")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("pyA", "pyB"):
        os.symlink(AVAILABLE[0], bin_dir / name)
    os.symlink("pyA", bin_dir / "mypy")
    cache = _cache(tmp_path / "store")
    first = find_interpreter(str(bin_dir / "mypy"), cache)
    assert find_interpreter(str(bin_dir / "mypy"), cache).path == first.path  # remembered
    (bin_dir / "mypy").unlink()
    os.symlink("pyB", bin_dir / "mypy")
    again = find_interpreter(str(bin_dir / "mypy"), cache)
    assert first.path.endswith("pyA") and again.path.endswith("pyB")


def test_describe_memo_answers_without_asking_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not AVAILABLE:
        pytest.skip("no CPython found")
    real = AVAILABLE[0]
    link = tmp_path / "bin" / "mypython"  # not python3: a sibling python3.X may come
    link.parent.mkdir()
    os.symlink(real, link)
    cache = _cache(tmp_path / "store")
    first = find_interpreter(str(link), cache)
    asked: list[str] = []
    query = _described.query_interpreter
    monkeypatch.setattr(
        _described, "query_interpreter", lambda p, c=None, i=None: asked.append(p) or query(p, c, i)
    )
    again = find_interpreter(str(link), cache)
    assert again == first and again is not first and asked == []
    # Another store's cache is another scope: described there (so it knows the path).
    other = _cache(tmp_path / "other")
    assert find_interpreter(str(link), other) == first
    assert asked and other.known(str(link))


def _reference_dumps(m: Manifest) -> str:
    """Manifest.dumps as it was before its rows were written by hand."""
    data = m.to_json()
    packages = data.pop("packages")
    lines = [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in data.items()]
    rows = ",\n".join(f"  {json.dumps(p)}" for p in packages)  # type: ignore[attr-defined]
    lines.append(f' "packages": [\n{rows}\n ]' if rows else ' "packages": []')
    return "{\n" + ",\n".join(lines) + "\n}\n"


def test_manifest_rows_are_what_json_dumps_writes() -> None:
    odd = 'é "quoted" \\ back\tslash \x01 ☃ \U0001f40d'
    python = Interpreter(
        "3.11", "/usr/bin/python3.11", "/usr/bin/python3.11", "3.11.7", "cpython",
        "cpython-311", "cpython-311-x86_64-linux-gnu", "cp311", "linux-x86_64",
        "/usr/lib/python3.11", "lib/python3.11/site-packages", {"os_name": "posix"},
    )  # fmt: skip
    keys = [EntryKey("pure", "a-b", "1.0+local", "0" * 32), EntryKey("pure", "c", "2", "f" * 32)]
    packages = [
        Package("a-b", "1.0+local", keys[0], f"a_b-{odd}.whl", True),
        Package("c", "2", keys[1], "", False),
    ]
    for pkgs in (packages, []):
        m = Manifest(
            env=f"/envs/{odd}",
            store="/store",
            python=python,
            view="0" * 32,
            packages=pkgs,
            requirements=[odd, "c>=2"],
            created=1765000000.123456,
            sources=RecordedSources(find_links=[f"/wh/{odd}"]),
            editables=[EditablePackage("p", "0.1", f"/src/{odd}", ("x",), "p.whl", "ab")],
        )
        assert m.dumps() == _reference_dumps(m)
        assert json.loads(m.dumps()) == m.to_json()


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


def _owns_by_realpath(st: Store, path: Path) -> bool:
    """Store.owns as it was: two realpaths."""
    rel = os.path.relpath(path.parent, st.root)
    if rel == ".." or rel.startswith("../"):
        return False
    real_root = os.path.realpath(st.root)
    return os.path.realpath(path.parent) == os.path.normpath(os.path.join(real_root, rel))


def test_store_owns_answers_as_the_realpath_rule(tmp_path: Path) -> None:
    """One lstat per component below the root, the same answers as comparing real
    paths: the root reached through a link is fine, a link below it is not."""
    (tmp_path / "data" / "store" / "entries" / "pure").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "data", tmp_path / "home")  # ~/.local/share -> /data/...
    st = Store(tmp_path / "home" / "store")
    root = st.root
    os.symlink(tmp_path / "outside", root / "editables")  # a link out of the store
    os.symlink(root / "entries", root / "views")  # a link inside it
    (root / "file").write_text("")
    cases = [
        root / "x",
        root / "entries" / "x",
        root / "entries" / "pure" / "x",
        root / "entries" / "missing" / "deeper" / "x",
        root / "editables" / "x",
        root / "editables" / "k" / "x",
        root / "views" / "pure" / "x",
        root / "file" / "x",
        root / "entries" / ".." / "editables" / "x",
        root.parent / "x",
        tmp_path / "outside" / "x",
        Path("/x"),
    ]
    answers = [(c, st.owns(c)) for c in cases]
    assert answers == [(c, _owns_by_realpath(st, c)) for c in cases]
    assert [ok for _, ok in answers[:8]] == [True, True, True, True, False, False, False, True]


def _synced(tmp_path: Path, **groups: list[str]) -> tuple[Path, Store, dict[str, object]]:
    """A project (dev group: ``groups``), its find-links directory of wheels dep-one and
    dep-two, a store; the sync keywords."""
    wh = tmp_path / "wheels"
    wh.mkdir()
    for name in ("dep-one", "dep-two"):
        module = name.replace("-", "_")
        wheelmaker.build_wheel(wh, name, "1.0", files={f"{module}/__init__.py": ""})
    proj = make_project(tmp_path / "proj", groups=groups or {"dev": ["dep-one"]})
    st = Store(tmp_path / "store")
    kw = {"store": st, "sources": PackageSources(find_links=[str(wh)], no_index=True)}
    return proj, st, kw


def test_a_pyproject_edited_between_syncs_is_read_again_at_the_same_size_and_mtime(
    tmp_path: Path,
) -> None:
    """What a process parsed is kept by the digest of the bytes, read every sync: an
    edit within the filesystem's timestamp granularity, keeping the size, is seen."""
    proj, _st, kw = _synced(tmp_path)
    first = sync_project(proj, with_pip=False, **kw)  # type: ignore[arg-type]
    assert [p.name for p in first.manifest.packages] == ["dep-one"]
    pyproject = proj / "pyproject.toml"
    before = os.stat(pyproject)
    pyproject.write_text(pyproject.read_text().replace('"dep-one"', '"dep-two"'))
    os.utime(pyproject, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(pyproject).st_size == before.st_size
    shutil.rmtree(proj / ".venv")
    again = sync_project(proj, with_pip=False, **kw)  # type: ignore[arg-type]
    assert [p.name for p in again.manifest.packages] == ["dep-two"]
    assert any(key[0] == str(pyproject) for key in _project._READ)  # the memo was used


def test_a_resync_registers_the_same_refs_rows_in_one_statement_per_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """put_env's multi-row INSERT (chunks of _ROWS, two here) writes exactly the rows,
    in order, that one INSERT per object did."""
    monkeypatch.setattr(_index, "_ROWS", 2)
    proj, st, kw = _synced(tmp_path, dev=["dep-one", "dep-two"])
    made = sync_project(proj, with_pip=False, **kw).manifest  # type: ignore[arg-type]
    env = str(proj / ".venv")
    rows = st.db().execute("SELECT object FROM refs WHERE env = ? ORDER BY rowid", (env,))
    objects = _index.env_objects(made)
    assert len(objects) == 4 and [r[0] for r in rows] == objects


def test_a_database_without_gone_since_reached_through_a_new_connection_gets_it(
    tmp_path: Path,
) -> None:
    """ensure_gone_since runs once per connection: a store's database replaced by one
    without the column (an older envstore's) is checked again through the new
    connection, so retiring a registration (which sets gone_since) still works."""
    proj, st, kw = _synced(tmp_path)
    sync_project(proj, with_pip=False, **kw)  # type: ignore[arg-type]
    shutil.rmtree(proj / ".venv")
    sync_project(proj, with_pip=False, **kw)  # retires the registration: column checked
    assert any(c is st.db() for c in _make._GONE_SINCE.values())
    st.close()
    conn = sqlite3.connect(st.db_path)
    conn.execute("ALTER TABLE envs DROP COLUMN gone_since")
    conn.commit()
    conn.close()
    shutil.rmtree(proj / ".venv")
    sync_project(proj, with_pip=False, **kw)  # type: ignore[arg-type]
    gone = st.db().execute("SELECT gone_since FROM envs WHERE path LIKE '%earlier env%'")
    assert all(row[0] is not None for row in gone)


def test_find_links_listing_sees_a_wheel_rewritten_in_place_and_one_added(
    tmp_path: Path,
) -> None:
    """Every file is stat'ed (the directory's mtime does not change when a wheel is
    rewritten in place, as ``pip wheel -w`` does)."""
    wh = tmp_path / "wheels"
    wh.mkdir()
    wheel = wheelmaker.build_wheel(wh, "dep-one", "1.0", files={"dep_one/__init__.py": ""})
    (wh / "notes.txt").write_text("not a wheel")
    first = listing(str(wh))
    assert first is not None and [row[0] for row in first] == [wheel.name]
    d = os.stat(wh)
    with open(wheel, "r+b") as f:  # in place: same inode, the directory untouched
        f.write(b"PK")
    os.utime(wh, ns=(d.st_atime_ns, d.st_mtime_ns))
    assert listing(str(wh)) != first
    second = listing(str(wh))
    wheelmaker.build_wheel(wh, "dep-two", "1.0", files={"dep_two/__init__.py": ""})
    assert len(listing(str(wh)) or []) == 2 and listing(str(wh)) != second
    assert listing(str(wheel)) is None and listing("https://example.invalid/wheels") is None


def test_an_editable_rebuilt_with_a_new_script_is_installed_from_a_new_plan(
    tmp_path: Path,
) -> None:
    """The files an editable install writes are planned once per files dict (the
    editable cache's, per wheel.json): a rebuild that adds a console script is
    another dict, planned again, and the script is there."""
    proj, _st, kw = _synced(tmp_path)
    sync_project(proj, with_pip=False, **kw)  # type: ignore[arg-type]
    shutil.rmtree(proj / ".venv")
    sync_project(proj, with_pip=False, **kw)  # type: ignore[arg-type]  # planned before
    assert not (proj / ".venv" / "bin" / "sample-tool").exists()
    make_project(proj, groups={"dev": ["dep-one"]}, scripts={"sample-tool": "sample:main"})
    with open(proj / "pyproject.toml", "a") as f:
        f.write("# a script added\n")  # a cache key changed: the wheel is built again
    shutil.rmtree(proj / ".venv")
    sync_project(proj, with_pip=False, **kw)  # type: ignore[arg-type]
    assert (proj / ".venv" / "bin" / "sample-tool").is_file()
    record = next((proj / ".venv").glob("lib/python*/site-packages/sample-0.1.dist-info/RECORD"))
    assert "../../../bin/sample-tool,sha256=" in record.read_text()


def _refs(st: Store, env: str) -> set[str]:
    rows = st.db().execute("SELECT object FROM refs WHERE env = ?", (env,))
    return {row[0] for row in rows}


def test_an_env_made_again_keeps_exactly_its_refs_and_the_retired_one_its_own(
    tmp_path: Path,
) -> None:
    """retire_env copies the references to the retired name and put_env keeps the rows
    that are exactly the new env's: made again the same, or with other packages, the
    env's rows are its objects and the retired registration keeps the old ones."""
    proj, st, kw = _synced(tmp_path)
    env = str(proj / ".venv")
    first = sync_project(proj, with_pip=False, **kw).manifest  # type: ignore[arg-type]
    old = set(_index.env_objects(first))
    shutil.rmtree(proj / ".venv")
    sync_project(proj, with_pip=False, **kw)  # type: ignore[arg-type]
    assert _refs(st, env) == old
    pyproject = proj / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"dep-one"', '"dep-two"'))
    shutil.rmtree(proj / ".venv")
    again = sync_project(proj, with_pip=False, **kw).manifest  # type: ignore[arg-type]
    new = set(_index.env_objects(again))
    assert new != old and _refs(st, env) == new
    retired = [p for p in _index.env_paths(st.db()) if p.startswith(f"{env} (earlier env")]
    assert retired and set().union(*(_refs(st, p) for p in retired)) >= old
    sync_project(proj, with_pip=False, **kw)  # replaced in place (not retired): the same
    assert _refs(st, env) == new


def test_a_project_sync_takes_the_gc_lock_once_and_registers_under_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """make_env, called with the gc lock held by its caller (editables prepared under
    it), does not take it again; the env is still registered while it is held (gc
    cannot take it exclusively then)."""
    from envstore.store import layout as _layout
    from envstore.store import registry as _registry
    from envstore.store.locks import lock_fd

    proj, st, kw = _synced(tmp_path)
    sync_project(proj, with_pip=False, **kw)  # type: ignore[arg-type]
    taken: list[str] = []
    lock = _layout.file_lock
    monkeypatch.setattr(_layout, "file_lock", lambda p, **k: taken.append(str(p)) or lock(p, **k))
    held: list[bool] = []
    register = _registry.register_env

    def registering(*args: object, **kwargs: object) -> None:
        fd = os.open(st.locks_dir / "gc.lock", os.O_RDWR)
        try:  # what gc would take: refused while a create holds it shared
            held.append(not lock_fd(fd, shared=False))
        finally:
            os.close(fd)
        register(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(_make, "register_env", registering)
    shutil.rmtree(proj / ".venv")
    sync_project(proj, with_pip=False, **kw)  # type: ignore[arg-type]
    assert [p for p in taken if p.endswith("gc.lock")] == [str(st.locks_dir / "gc.lock")]
    assert held == [True]


def test_classify_remembers_names_and_urls_but_not_what_a_file_decides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wheel's file name is a requirement name until such a file is there (as pip
    takes it): that answer is never remembered; a plain name is."""
    from envstore.resolve import forms as _forms

    monkeypatch.chdir(tmp_path)
    assert _forms.classify("dep_one-1.0-py3-none-any.whl").kind == "name"
    assert _forms.classify("requests>=2").kind == "name"
    assert "requests>=2" in _forms._FORMS
    wheelmaker.build_wheel(tmp_path, "dep-one", "1.0", files={"dep_one/__init__.py": ""})
    form = _forms.classify("dep_one-1.0-py3-none-any.whl")
    assert form.kind == "path" and form.target == str(tmp_path / "dep_one-1.0-py3-none-any.whl")


def test_real_path_answers_as_realpath(tmp_path: Path) -> None:
    """links.real_path (the kernel's answer through /proc) is os.path.realpath's for
    what an interpreter path may be: a file, links to it (relative, absolute, through
    a linked directory, with ..), and a link to a link."""
    from envstore.python.links import real_path

    (tmp_path / "opt" / "py" / "bin").mkdir(parents=True)
    exe = tmp_path / "opt" / "py" / "bin" / "python3.11"
    exe.write_text("")
    os.symlink("python3.11", tmp_path / "opt" / "py" / "bin" / "python3")
    os.symlink(tmp_path / "opt" / "py", tmp_path / "current")  # a directory link
    (tmp_path / "bin").mkdir()
    os.symlink("../current/bin/python3", tmp_path / "bin" / "py")
    os.symlink(tmp_path / "bin" / "py", tmp_path / "bin" / "py2")
    cases = [
        exe,
        tmp_path / "opt" / "py" / "bin" / "python3",
        tmp_path / "current" / "bin" / "python3",
        tmp_path / "bin" / "py",
        tmp_path / "bin" / "py2",
        tmp_path / "current" / "bin" / ".." / "bin" / "python3",
    ]
    for case in cases:
        assert real_path(str(case)) == os.path.realpath(case) == str(exe.resolve())
    gone = tmp_path / "bin" / "missing"
    assert real_path(str(gone)) == os.path.realpath(gone)


def test_a_view_with_other_scripts_gets_its_own_launcher(tmp_path: Path) -> None:
    """The console scripts and launcher text are kept per view object (and shebang): a
    sync in the same process to another view lists that view's scripts."""
    from envstore.env.scripts import LAUNCHER

    wh = tmp_path / "wheels"
    wh.mkdir()
    for name in ("dep-one", "dep-two"):
        module = name.replace("-", "_")
        wheelmaker.build_wheel(
            wh,
            name,
            "1.0",
            files={f"{module}/__init__.py": "def main(): pass\n"},
            entry_points={"console_scripts": {f"{name}-tool": f"{module}:main"}},
        )
    proj = make_project(tmp_path / "proj", groups={"dev": ["dep-one"]})
    kw = {"store": Store(tmp_path / "store")}
    kw["sources"] = PackageSources(find_links=[str(wh)], no_index=True)  # type: ignore[assignment]
    sync_project(proj, with_pip=False, **kw)  # type: ignore[arg-type]
    launcher = proj / ".venv" / "bin" / LAUNCHER
    assert "dep-one-tool" in launcher.read_text()
    pyproject = proj / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"dep-one"', '"dep-two"'))
    shutil.rmtree(proj / ".venv")
    sync_project(proj, with_pip=False, **kw)  # type: ignore[arg-type]
    text = launcher.read_text()
    assert "dep-two-tool" in text and "dep-one-tool" not in text
    assert os.readlink(proj / ".venv" / "bin" / "dep-two-tool") == LAUNCHER


def test_has_entry_answers_where_faccessat2_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Older container seccomp profiles refuse faccessat2 (os.access with effective
    ids) with EPERM: an entry there is still found (by a stat)."""
    proj, st, kw = _synced(tmp_path)
    done = sync_project(proj, with_pip=False, **kw)  # type: ignore[arg-type]
    key = done.manifest.packages[0].key

    def refused(*args: object, **kwargs: object) -> bool:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "access", refused)
    assert st.has_entry(EntryKey.parse(str(key)))


def test_a_project_extra_named_in_a_group_survives_a_second_sync_in_one_process(
    tmp_path: Path,
) -> None:
    """The group's requirements handed to a sync are its own copy: the record kept per
    process is not edited by it (the project's own extra, moved out of the group, was
    lost by the next sync when the record could not be written: a TOML date)."""
    wheels = tmp_path / "wheels"
    for name in ("dep-one", "test-dep"):
        wheelmaker.build_wheel(wheels, name, "1.0", files={f"{name.replace('-', '_')}/x.py": ""})
    proj = make_project(tmp_path / "proj", optional_dependencies={"test": ["test-dep"]},
                        groups={"dev": ["sample[test]", "dep-one"]})  # fmt: skip
    with open(proj / "pyproject.toml", "a") as f:
        f.write("\n[tool.x]\nreleased = 2024-01-01\n")  # no JSON for it: no cache record
    kw = {"store": Store(tmp_path / "store"), "with_pip": False,
          "sources": PackageSources(find_links=[str(wheels)], no_index=True)}  # fmt: skip
    names = []
    for _ in range(2):
        done = sync_project(proj, **kw)  # type: ignore[arg-type]
        names.append(sorted(p.name for p in done.manifest.packages))
        shutil.rmtree(proj / ".venv")
    assert names == [["dep-one", "test-dep"]] * 2


def test_the_second_sync_in_a_process_takes_the_parsed_pyproject_from_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first sync writes the project's cache record twice (parsed, then its dev
    group added): what the process remembers names the second write, so the next sync
    neither parses the TOML nor reads the record back."""
    from envstore.store.editables import EditableCache

    proj, _st, kw = _synced(tmp_path)
    sync_project(proj, with_pip=False, **kw)  # type: ignore[arg-type]
    reads: list[object] = []
    real = EditableCache.read_project

    def counted(self: EditableCache, project: Path) -> object:
        reads.append(project)
        return real(self, project)

    monkeypatch.setattr(EditableCache, "read_project", counted)
    shutil.rmtree(proj / ".venv")
    again = sync_project(proj, with_pip=False, **kw)  # type: ignore[arg-type]
    assert [p.name for p in again.manifest.packages] == ["dep-one"]
    assert reads == []
