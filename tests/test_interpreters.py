"""Interpreter discovery: which path an env records, venv detection, the facts cache.

Fake install layouts are symlinks to the real CPythons on this machine; CPython
resolves argv[0]'s symlinks to find its prefix, so each fake path really runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import CLI, PYTHONS, python_params, run

from envstore.env.venv import venv_home
from envstore.python import interpreters as _interpreters
from envstore.python import links as _links
from envstore.python import query as _query
from envstore.python.interpreters import candidates, describe, find_interpreter, find_same_abi
from envstore.python.query import query_interpreter
from envstore.store.caches import InterpreterFacts
from envstore.store.layout import Store

AVAILABLE = [p for p in PYTHONS.values() if p]
pytestmark = pytest.mark.skipif(not AVAILABLE, reason="no CPython found on this machine")


def _real() -> str:
    """One real interpreter executable (not a symlink chain we made)."""
    return os.path.realpath(AVAILABLE[-1])


def _minor(python: str) -> str:
    out = run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
    return out.stdout.strip()


def _link(path: Path, target: str | Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        path.unlink()
    os.symlink(target, path)
    return path


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[InterpreterFacts]:
    st = Store(tmp_path / "store")
    st.ensure()
    yield st.facts_cache()
    st.close()


@pytest.fixture
def search(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The directories candidates() searches: empty until a test adds some."""
    dirs: list[str] = []
    monkeypatch.setattr(_interpreters, "_search_dirs", lambda: list(dirs))
    return dirs


def test_real_interpreter_path_is_kept_as_given(cache: InterpreterFacts) -> None:
    for python in AVAILABLE:
        interp = find_interpreter(python, cache)
        assert interp.path == python  # e.g. pyenv's versions/3.12.1/...: a patch path, kept
        assert interp.requested == python
        assert interp.minor == _minor(python)
        assert interp.soabi.startswith(f"cpython-{interp.minor.replace('.', '')}")


def test_same_directory_symlink_is_pinned_to_the_minor(tmp_path: Path) -> None:
    real = _real()
    minor = _minor(real)
    usr_bin = tmp_path / "usr" / "bin"
    _link(usr_bin / f"python{minor}", real)
    _link(usr_bin / "python3", f"python{minor}")
    interp = find_interpreter(str(usr_bin / "python3"))
    assert interp.path == str(usr_bin / f"python{minor}")
    assert interp.resolved == real
    assert interp.requested == str(usr_bin / "python3")
    # A link into another directory is not followed: it is what the user chose.
    other = _link(tmp_path / "bin" / "mypython", real)
    assert find_interpreter(str(other)).path == str(other)


def _homebrew(root: Path, real: str, version: str) -> Path:
    """A Homebrew-like keg: Cellar/python@X.Y/<version>/{bin,lib} with opt/ and bin/ links."""
    minor = _minor(real)
    stdlib = run([real, "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"])
    keg = root / "Cellar" / f"python@{minor}" / version
    _link(keg / "bin" / f"python{minor}", real)
    _link(keg / "bin" / "python3", f"python{minor}")
    _link(keg / "lib" / f"python{minor}", stdlib.stdout.strip())
    _link(root / "opt" / f"python@{minor}", f"../Cellar/python@{minor}/{version}")
    _link(root / "bin" / f"python{minor}", f"../Cellar/python@{minor}/{version}/bin/python{minor}")
    _link(root / "bin" / "python3", f"../Cellar/python@{minor}/{version}/bin/python3")
    return keg


def test_homebrew_cellar_paths_become_opt(tmp_path: Path) -> None:
    real = _real()
    minor = _minor(real)
    root = tmp_path / "homebrew"
    keg = _homebrew(root, real, "9.9.1")
    opt = root / "opt" / f"python@{minor}" / "bin" / f"python{minor}"
    for given in (
        root / "bin" / f"python{minor}",
        root / "bin" / "python3",
        keg / "bin" / f"python{minor}",
        opt,
    ):
        assert find_interpreter(str(given)).path == str(opt), given
    # Its stdlib is reachable from opt/.../bin, so that is pyvenv.cfg's home, as venv does.
    assert venv_home(find_interpreter(str(opt))) == str(opt.parent)


@pytest.mark.parametrize("python", python_params())
def test_venvs_are_replaced_by_their_base(python: str, tmp_path: Path) -> None:
    """Under ``-I -S`` sys.prefix never shows a venv, on any version: check pyvenv.cfg."""
    base = find_interpreter(python).path
    outer = tmp_path / "outer"
    subprocess.run([python, "-m", "venv", "--without-pip", outer], check=True)
    copies = tmp_path / "copies"
    subprocess.run([python, "-m", "venv", "--without-pip", "--copies", copies], check=True)
    # A venv made from a venv by hand (virtualenv and 3.9's venv do this).
    inner = tmp_path / "inner"
    _link(inner / "bin" / "python", outer / "bin" / "python")
    (inner / "pyvenv.cfg").write_text(f"home = {outer / 'bin'}\n")
    # A symlink to a venv's python, outside the venv (not a venv for CPython).
    sym = _link(tmp_path / "elsewhere" / "python", outer / "bin" / "python")

    assert query_interpreter(str(outer / "bin" / "python"))["is_venv"] is True
    for given in (outer, copies, inner):
        assert find_interpreter(str(given / "bin" / "python")).path == base, given
    assert find_interpreter(str(sym)).path == base


def test_wrapper_script_is_replaced_and_never_cached(
    tmp_path: Path, cache: InterpreterFacts
) -> None:
    real = _real()
    wrapper = tmp_path / "shims" / "python"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    assert find_interpreter(str(wrapper), cache).path == find_interpreter(real).path
    cached = {row[0] for row in cache.conn.execute("SELECT path FROM interpreters")}
    assert str(wrapper) not in cached  # a shim's target changes without the shim changing
    assert real in cached


def test_facts_are_cached_by_identity(
    tmp_path: Path, cache: InterpreterFacts, monkeypatch: pytest.MonkeyPatch
) -> None:
    if len(AVAILABLE) < 2:
        pytest.skip("needs two CPython versions")
    started: list[str] = []
    real_query = _query._run_query
    monkeypatch.setattr(_query, "_run_query", lambda p: started.append(p) or real_query(p))
    link = _link(tmp_path / "bin" / "python3", AVAILABLE[0])
    first = query_interpreter(str(link), cache)
    assert query_interpreter(str(link), cache) == first
    assert started == [str(link)]  # the second ask started nothing
    _link(link, AVAILABLE[-1])  # the distro re-points python3
    assert query_interpreter(str(link), cache)["version"] != first["version"]
    assert len(started) == 2


class _DictFacts(_query.FactsCache):
    """A facts cache that is no store's: envstore.python takes any."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, dict[str, object]]] = {}

    def get(self, path: str, identity: str) -> dict[str, object] | None:
        row = self.rows.get(path)
        return row[1] if row and row[0] == identity else None

    def put(self, path: str, identity: str, facts: dict[str, object]) -> None:
        self.rows[path] = (identity, facts)

    def known(self, path: str) -> bool:
        return path in self.rows


def test_the_facts_cache_is_handed_in_and_python_knows_no_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[str] = []
    real_query = _query._run_query
    monkeypatch.setattr(_query, "_run_query", lambda p: started.append(p) or real_query(p))
    cache = _DictFacts()
    real = _real()
    assert find_interpreter(real, cache).path == real
    assert cache.known(real) and started == [real]
    assert find_interpreter(real, cache).path == real
    assert started == [real]  # answered by the cache handed in
    code = (
        "import sys, envstore.python.interpreters;"
        " print(sorted({'sqlite3', 'envstore.store'} & set(sys.modules)))"
    )
    out = run([sys.executable, "-c", code])
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr


def test_identity_follows_a_moved_install(tmp_path: Path) -> None:
    """A rename keeps inode, size and mtime; the facts (stdlib, prefix) still change."""
    real = _real()
    prefix = tmp_path / "a"
    (prefix / "bin").mkdir(parents=True)
    try:
        os.link(real, prefix / "bin" / "python3")
    except OSError:
        pytest.skip("cannot hard-link the interpreter here")
    link = _link(tmp_path / "bin" / "python3", prefix / "bin" / "python3")
    before = _links.identity(str(link))
    os.rename(prefix, tmp_path / "b")
    _link(link, tmp_path / "b" / "bin" / "python3")
    assert _links.identity(str(link)) not in (None, before)


def test_version_and_command_requests(
    tmp_path: Path, cache: InterpreterFacts, search: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = _real()
    minor = _minor(real)
    bindir = tmp_path / "bin"
    _link(bindir / f"python{minor}", real)
    search.append(str(bindir))
    for request in (minor, f"cpython{minor}", f"py{minor}"):
        interp = find_interpreter(request, cache)
        assert (interp.path, interp.requested) == (str(bindir / f"python{minor}"), request)
    # A command name is what the shell would run.
    monkeypatch.setenv("PATH", str(bindir))
    assert find_interpreter(f"python{minor}", cache).path == str(bindir / f"python{minor}")
    with pytest.raises(_interpreters.InterpreterError, match=r"2\.7"):
        find_interpreter("2.7", cache)


def test_candidates_and_same_abi_search(
    tmp_path: Path, cache: InterpreterFacts, search: list[str]
) -> None:
    real = _real()
    minor = _minor(real)
    shims = tmp_path / "shims"
    _link(shims / "python3", real)
    found = tmp_path / "found"
    _link(found / f"python{minor}", real)
    _link(found / "python3-config", real)  # not an interpreter name
    search += [str(shims), str(found)]
    assert candidates() == [str(found / f"python{minor}")]
    soabi = find_interpreter(real, cache).soabi
    same = find_same_abi(soabi, cache)
    assert same is not None and same.path == str(found / f"python{minor}")
    assert find_same_abi("cpython-00-nowhere", cache) is None


def test_a_python_added_to_a_searched_directory_is_found_next_time(
    tmp_path: Path, search: list[str]
) -> None:
    """candidates() keeps a directory's names per process while its mtime is the same:
    a new interpreter there is listed at once, a removed one is gone."""
    real = _real()
    found = tmp_path / "found"
    _link(found / "python3.97", real)
    search.append(str(found))
    assert candidates() == [str(found / "python3.97")]
    os.utime(found, ns=(0, 0))  # a later change must show even where mtimes are coarse
    _link(found / "python3.98", real)
    assert candidates() == [str(found / "python3.98"), str(found / "python3.97")]
    (found / "python3.97").unlink()
    assert candidates() == [str(found / "python3.98")]


def test_the_newest_python_is_described_alone(
    tmp_path: Path, cache: InterpreterFacts, search: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """newest_installed ranks interpreters by their cached facts and describes (follows
    links, pins the path: the costly part) only until one is accepted: a project sync in
    a warm process (an IDE, tox) pays for one interpreter, not every one installed."""
    real = _real()
    minor = _minor(real)
    for d in ("a", "b", "c"):
        _link(tmp_path / d / f"python{minor}", real)
        search.append(str(tmp_path / d))
    described: list[str] = []
    describe_ = _interpreters.describe

    def counting(requested: str, path: str, c: object = None) -> object:
        described.append(path)
        return describe_(requested, path, c)  # type: ignore[arg-type]

    monkeypatch.setattr(_interpreters, "describe", counting)
    newest = _interpreters.newest_installed(lambda i: True, cache)
    assert newest is not None and newest.path == str(tmp_path / "a" / f"python{minor}")
    assert described == [str(tmp_path / "a" / f"python{minor}")]


def test_python_list_marks_venvs(cli: CLI, tmp_path: Path, search: list[str]) -> None:
    real = _real()
    venv = tmp_path / "venv"
    subprocess.run([real, "-m", "venv", "--without-pip", venv], check=True)
    search.append(str(venv / "bin"))
    res = cli("python", "list", "--json", "--store", tmp_path / "store")
    assert res.code == 0, res.err
    rows = {path: r for r in json.loads(res.out) for path in (r["path"], *r["also"])}
    assert rows[str(venv / "bin" / "python3")]["venv"] is True
    assert not (tmp_path / "store").exists()  # listing interpreters makes no store


def test_describe_refuses_a_venv_whose_base_is_gone(tmp_path: Path) -> None:
    real = _real()
    minor = _minor(real)
    base = _link(tmp_path / "base" / f"python{minor}", real)
    venv = tmp_path / "venv"
    _link(venv / "bin" / "python", base)
    (venv / "pyvenv.cfg").write_text(f"home = {base.parent}\n")
    assert describe("", str(venv / "bin" / "python")).path == str(base)
    base.unlink()
    with pytest.raises(_interpreters.InterpreterError):
        describe("", str(venv / "bin" / "python"))


def test_venv_home_is_where_the_stdlib_can_be_found(tmp_path: Path) -> None:
    """CPython looks for the stdlib from ``home`` upwards; a directory of symlinks
    (``~/.local/bin/python3.12`` into a relocatable install) has none."""
    real = _real()
    link = _link(tmp_path / "bin" / "python3", real)
    assert venv_home(find_interpreter(str(link))) == os.path.dirname(real)
    assert venv_home(find_interpreter(real)) == os.path.dirname(real)
