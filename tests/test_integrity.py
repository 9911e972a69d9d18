"""Integrity: what verify must catch, wheels that must be refused (or installed as pip
would) instead of published and then failing, and errors that must be one line."""

from __future__ import annotations

import json
import os
import py_compile
import stat
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import wheelmaker
from conftest import Result, entries, run

from envstore.cli.main import main
from envstore.store.fs import rmtree

Cmd = Callable[..., Result]

TAG = sys.implementation.cache_tag  # the default interpreter (the one running envstore)
ESCAPES = "\x1b[31mRED\x1b]0;title\x07"


@pytest.fixture
def cmd(capsys: pytest.CaptureFixture[str]) -> Cmd:
    """``envstore`` in-process, like conftest's ``cli``, but an exception escaping ``main``
    becomes exit code -1 with its traceback in ``err`` (what a user would see)."""

    def go(*args: str | os.PathLike[str]) -> Result:
        try:
            code = main([os.fspath(a) for a in args])
        except Exception:
            captured = capsys.readouterr()
            return Result(-1, captured.out, captured.err + traceback.format_exc(limit=-6))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return go


def create(cmd: Cmd, store: Path, env: Path, links: list[Path], *reqs: str) -> Result:
    flags = [x for d in links for x in ("-f", os.fspath(d))]
    return cmd("--store", store, "create", env, "--without-pip", "--no-index", *flags, *reqs)


def verify(cmd: Cmd, store: Path, *flags: str) -> Result:
    return cmd("--store", store, "verify", *flags)


def entry_of(store: Path, name: str) -> Path:
    (found,) = (store / "entries" / "pure" / name).iterdir()
    return found


def py_out(env: Path, code: str) -> str:
    proc = run([env / "bin" / "python", "-c", code])
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@contextmanager
def writable(*paths: Path) -> Iterator[None]:
    """Make read-only store paths writable by their owner for a moment (works as non-root)."""
    modes = [(p, stat.S_IMODE(os.lstat(p).st_mode)) for p in paths]
    for p, mode in modes:
        os.chmod(p, mode | stat.S_IWUSR)
    try:
        yield
    finally:
        for p, mode in modes:
            os.chmod(p, mode)


def add_file(path: Path, data: bytes) -> None:
    """Put a read-only file into a read-only store directory."""
    with writable(path.parent):
        path.write_bytes(data)
        os.chmod(path, 0o444)


def pyc_of(source: str, tmp: Path) -> bytes:
    """An unchecked-hash pyc of ``source`` for this interpreter, as the store has."""
    src = tmp / "pyc-src" / "mod.py"
    src.parent.mkdir(parents=True, exist_ok=True)
    src.write_text(source)
    mode = py_compile.PycInvalidationMode.UNCHECKED_HASH
    out = py_compile.compile(str(src), cfile=str(src) + "c", doraise=True, invalidation_mode=mode)
    return Path(out).read_bytes()


def assert_refused(res: Result, *names: str) -> None:
    """A clean refusal: exit 1, ``envstore: error:`` first (a BadWheelError lists its
    problems on the lines after), no traceback, and each of ``names`` mentioned."""
    assert "Traceback" not in res.err, res.err
    assert res.code == 1, res
    assert res.err.splitlines()[0].startswith("envstore: error:"), res.err
    for name in names:
        assert name in res.err, (name, res.err)


def assert_nothing_left(store: Path, before: list[str]) -> None:
    assert entries(store) == before
    assert os.listdir(store / "tmp") == []


def hostile(tmp_path: Path, name: str, **kwargs: object) -> Path:
    """A wheel in a find-links directory of its own (next to the good ``solo``)."""
    wh = tmp_path / f"wh-{name}"
    wheelmaker.build_wheel(wh, "solo", "0.5", files={"solo.py": "X = 5\n"})
    return wheelmaker.build_wheel(wh, name, "1.0", **kwargs)  # type: ignore[arg-type]


def raw_wheel(tmp_path: Path, filename: str, name: str, files: dict[str, str]) -> Path:
    """A wheel written member by member (names wheelmaker's build_wheel would not give)."""
    wh = tmp_path / f"wh-{name}"
    wheelmaker.build_wheel(wh, "solo", "0.5", files={"solo.py": "X = 5\n"})
    members = wheelmaker.wheel_members(name, "1.0", files=files)
    return wheelmaker.write_raw_wheel(wh / filename, members)


def assert_refused_at_ingest(
    cmd: Cmd, store: Path, tmp_path: Path, wheel: Path, req: str, *names: str
) -> None:
    """Refused naming ``names``, nothing published, and the store still makes a good env
    afterwards."""
    before = entries(store)
    res = create(cmd, store, tmp_path / "env", [wheel.parent], req)
    assert_refused(res, *names)
    assert_nothing_left(store, before)
    assert not (tmp_path / "env").exists()
    good = create(cmd, store, tmp_path / "good", [wheel.parent], "solo")
    assert good.code == 0, good
    assert py_out(tmp_path / "good", "import solo; print(solo.X)") == "5"


def assert_refused_or_installed(
    cmd: Cmd, store: Path, tmp_path: Path, wheel: Path, req: str, *members: str
) -> None:
    """Either refused at ingest (clean error naming the wheel or one of ``members``,
    nothing published) or installed; and a second create of the same requirement
    behaves the same way."""
    before = entries(store)
    outcomes = []
    for attempt in ("first", "second"):
        env = tmp_path / f"env-{attempt}"
        res = create(cmd, store, env, [wheel.parent], req)
        assert "Traceback" not in res.err, res.err
        if res.code == 0:
            py_out(env, "pass")
            outcomes.append("installed")
        else:  # published, then failing every create, is the defect
            assert_nothing_left(store, before)
            assert not env.exists()
            assert_refused(res)
            assert any(n in res.err for n in (wheel.name, *members)), res.err
            outcomes.append("refused")
    assert outcomes[0] == outcomes[1], outcomes


# --------------------------------------------------------------------------- 1. verify


def test_verify_catches_a_replaced_pyc(
    cmd: Cmd, store: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    """1a. Store pycs are unchecked-hash: one compiled from other source is what runs."""
    env = tmp_path / "env"
    assert create(cmd, store, env, [wheelhouse], "solo").code == 0
    (pyc,) = (entry_of(store, "solo") / "site" / "__pycache__").glob(f"solo.{TAG}.pyc")
    with writable(pyc):
        pyc.write_bytes(pyc_of("X = 666\n", tmp_path))
    assert py_out(env, "import solo; print(solo.X)") == "666"  # unchecked: it runs

    res = verify(cmd, store, "--check-contents")
    assert res.code != 0, res
    assert "pure/solo/" in res.out
    again = create(cmd, store, tmp_path / "env2", [wheelhouse], "solo")
    assert_refused(again, "verify --repair")


def _seal_of(store: Path, key: str) -> dict[str, object]:
    import sqlite3

    with sqlite3.connect(store / "envstore.db") as conn:
        (text,) = conn.execute("SELECT seal FROM seals WHERE object = ?", (key,)).fetchone()
    conn.close()
    return dict(json.loads(text))


def _put_seal(store: Path, key: str, seal: dict[str, object]) -> None:
    import sqlite3

    with sqlite3.connect(store / "envstore.db") as conn:
        conn.execute("UPDATE seals SET seal = ? WHERE object = ?", (json.dumps(seal), key))
    conn.close()


def _publish_copy(entry: Path, pyc_source: str | None, tmp: Path) -> None:
    """Swap in a copy of ``entry`` (another directory, as a repair publishes), with its
    ``solo`` pyc compiled from ``pyc_source`` if given."""
    import shutil

    copy = entry.with_name(entry.name + ".new")
    shutil.copytree(entry, copy, symlinks=True)
    if pyc_source is not None:
        (pyc,) = (copy / "site" / "__pycache__").glob(f"solo.{TAG}.pyc")
        with writable(pyc.parent):
            pyc.unlink()
            add_file(pyc, pyc_of(pyc_source, tmp))
            pyc.chmod(0o444)
    entry.rename(entry.with_name(entry.name + ".old"))
    copy.rename(entry)
    rmtree(entry.with_name(entry.name + ".old"))


def test_a_seal_names_the_directory_it_was_taken_of(
    cmd: Cmd, store: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    """An entry published again (another directory: a repair, maybe by another host) is
    sealed as found, not damage; a seal from before seals named their directory is
    compared as before, and names it once it matched."""
    assert create(cmd, store, tmp_path / "env", [wheelhouse], "solo").code == 0
    entry = entry_of(store, "solo")
    key = str(entry.relative_to(store / "entries"))
    assert _seal_of(store, key)["dir"] == os.lstat(entry).st_ino
    # The same files in another directory: the seal names the new one, nothing said.
    _publish_copy(entry, None, tmp_path)
    res = verify(cmd, store, "--check-contents")
    assert res.code == 0 and "note" not in res.out, res.out
    assert _seal_of(store, key)["dir"] == os.lstat(entry).st_ino
    # Other bytecode in another directory: sealed as found now, said in a note.
    _publish_copy(entry, "X = 5\n# compiled again\n", tmp_path)
    res = verify(cmd, store, "--check-contents")
    assert res.code == 0 and "published again since this host sealed it" in res.out, res.out
    assert verify(cmd, store, "--check-contents").out.strip() == "no problems found"
    # A seal from before: compared as before, whatever the directory, ...
    old = _seal_of(store, key)
    del old["dir"]
    _put_seal(store, key, old)
    _publish_copy(entry, "X = 666\n", tmp_path)
    res = verify(cmd, store, "--check-contents")
    assert res.code == 1 and "does not match what was compiled" in res.out, res.out
    # ... and once it matches, it names its directory.
    assert verify(cmd, store, "--check-contents", "--repair").code == 0
    _put_seal(store, key, {k: v for k, v in _seal_of(store, key).items() if k != "dir"})
    assert verify(cmd, store, "--check-contents").code == 0
    assert _seal_of(store, key)["dir"] == os.lstat(entry).st_ino


def test_verify_catches_edited_entry_points(
    cmd: Cmd, store: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    """1b. A console script pointed at other code through entry.json."""
    assert create(cmd, store, tmp_path / "env", [wheelhouse], "hello-app").code == 0
    meta_path = entry_of(store, "hello-app") / "entry.json"
    meta = json.loads(meta_path.read_text())
    meta["entry_points"] = [["hello", "solo", "X", "console"]]
    with writable(meta_path):
        meta_path.write_text(json.dumps(meta, indent=1) + "\n")

    res = verify(cmd, store, "--check-contents")
    assert res.code != 0, res
    assert "pure/hello-app/" in res.out
    # A new view (another package set), so the scripts come from entry.json again.
    again = create(cmd, store, tmp_path / "env2", [wheelhouse], "hello-app", "solo")
    assert_refused(again, "verify --repair")


@pytest.mark.parametrize("where", [pytest.param("outside"), pytest.param("inside-store")])
def test_verify_catches_a_repointed_view_link(
    where: str, cmd: Cmd, store: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    """1c. A view's link re-pointed at other code, outside the store or in another entry."""
    evil_init = "VERSION = 'evil'\n"
    if where == "outside":
        target = tmp_path / "evil" / "dep_one"
        target.mkdir(parents=True)
        (target / "__init__.py").write_text(evil_init)
    else:  # another entry's package of the same name: a link that stays in entries/
        wheel = hostile(tmp_path, "evil-twin", files={"dep_one/__init__.py": evil_init})
        assert create(cmd, store, tmp_path / "twin", [wheel.parent], "evil-twin").code == 0
        target = entry_of(store, "evil-twin") / "site" / "dep_one"
    env = tmp_path / "env"
    assert create(cmd, store, env, [wheelhouse], "dep-one").code == 0
    view = json.loads((env / "envstore.json").read_text())["view"]
    site = store / "views" / view / "site"
    with writable(site):
        (site / "dep_one").unlink()
        os.symlink(target, site / "dep_one")
    check = "import dep_one; print(dep_one.VERSION)"
    assert py_out(env, check) == "evil"

    res = verify(cmd, store, "--check-contents")
    assert res.code != 0, res
    assert view in res.out or "dep_one" in res.out, res.out
    # The same package set, so the same view key: refused, or made with a good view.
    env2 = tmp_path / "env2"
    again = create(cmd, store, env2, [wheelhouse], "dep-one")
    if again.code == 0:
        assert py_out(env2, check) == "1.2"
    else:
        assert_refused(again, "verify --repair")


# --------------------------------------------------------------------------- 2. foreign files


def test_files_a_package_caches_next_to_itself_are_not_damage(
    cmd: Cmd, store: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    """2. numba's ``@njit(cache=True)`` writes ``*.nbi``/``*.nbc`` into ``__pycache__``."""
    assert create(cmd, store, tmp_path / "env", [wheelhouse], "dep-one").code == 0
    pycache = entry_of(store, "dep-one") / "site" / "dep_one" / "__pycache__"
    add_file(pycache / "x.nbi", b"\x80\x04index")
    add_file(pycache / "x.nbc", b"\x80\x04code")

    res = verify(cmd, store, "--check-contents")
    assert res.code == 0, res
    again = create(cmd, store, tmp_path / "env2", [wheelhouse], "dep-one", "solo")
    assert again.code == 0, again


@pytest.mark.parametrize(
    "rel",
    [
        pytest.param("site/dep_one/evil.py", id="py"),
        pytest.param(f"site/dep_one/__pycache__/evil.{TAG}.pyc", id="pyc"),
        pytest.param("site/dep_one/_evil.abi3.so", id="so"),
        pytest.param("site/evil.pth", id="pth"),
        pytest.param("site/dep_one/settings.json", id="data"),
    ],
)
def test_added_code_in_an_entry_is_damage(
    rel: str, cmd: Cmd, store: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    """2. But added code or data is damage (py, so, pth and data are caught already)."""
    assert create(cmd, store, tmp_path / "env", [wheelhouse], "dep-one").code == 0
    data = pyc_of("import os\n", tmp_path) if rel.endswith(".pyc") else b"import os\n"
    add_file(entry_of(store, "dep-one") / rel, data)

    res = verify(cmd, store, "--check-contents")
    assert res.code != 0, res
    assert "pure/dep-one/" in res.out
    assert Path(rel).name in res.out


# --------------------------------------------------------------------------- 3-4. published, then


def test_a_directory_in_data_scripts(cmd: Cmd, store: Path, tmp_path: Path) -> None:
    """3. pip installs ``bin/sub/tool``; envstore published the entry, then failed."""
    wheel = hostile(
        tmp_path,
        "subscripts",
        data={"scripts/sub/tool": "#!python\nprint('tool')\n"},
    )
    assert_refused_or_installed(cmd, store, tmp_path, wheel, "subscripts", "sub/tool")


@pytest.mark.parametrize(
    "files",
    [
        pytest.param({"latin.pth": b"# caf\xe9\n"}, id="latin-1-pth"),
        pytest.param({"evil.pth/x.py": "X = 1\n"}, id="pth-directory"),
    ],
)
def test_an_odd_pth(files: dict[str, bytes | str], cmd: Cmd, store: Path, tmp_path: Path) -> None:
    """4. A .pth that is not UTF-8, or a directory named like one: published, then fails."""
    wheel = hostile(tmp_path, "oddpth", files={"oddpth/__init__.py": "", **files})
    assert_refused_or_installed(
        cmd, store, tmp_path, wheel, "oddpth", *(f.split("/")[0] for f in files)
    )


# --------------------------------------------------------------------------- 6-9. one line


@pytest.mark.parametrize(
    "member",
    [
        pytest.param("longname/" + "a" * 300 + ".py", id="component-over-255-bytes"),
        pytest.param("longname/" + "d/" * 1500 + "x.py", id="1500-nested-directories"),
    ],
)
def test_a_member_the_filesystem_cannot_hold(
    member: str, cmd: Cmd, store: Path, tmp_path: Path
) -> None:
    """6. ENAMETOOLONG, or a RecursionError in makedirs: one line naming the wheel."""
    wheel = raw_wheel(
        tmp_path,
        "longname-1.0-py3-none-any.whl",
        "longname",
        {"longname/__init__.py": "", member: "X = 1\n"},
    )
    assert_refused_at_ingest(cmd, store, tmp_path, wheel, "longname", wheel.name)


@pytest.mark.parametrize("req", [pytest.param("foo-bar"), pytest.param("foo__bar")])
def test_a_wheel_name_pip_accepts_but_packaging_does_not(
    req: str, cmd: Cmd, store: Path, tmp_path: Path
) -> None:
    """7. packaging's InvalidWheelFilename escaped as a traceback."""
    filename = "foo__bar-1.0-py3-none-any.whl"
    wheel = raw_wheel(tmp_path, filename, "foo__bar", {"foo_bar/__init__.py": "X = 1\n"})
    env = tmp_path / "env"
    res = create(cmd, store, env, [wheel.parent], req)
    assert "Traceback" not in res.err, res.err
    if res.code == 0:
        assert py_out(env, "import foo_bar; print(foo_bar.X)") == "1"
    else:
        assert_refused(res, filename)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("mod:main.__call__ if 1 else main", id="expression"),
        pytest.param("mod:main\n    other", id="multi-line"),
    ],
)
def test_an_entry_point_installer_rejects(
    value: str, cmd: Cmd, store: Path, tmp_path: Path
) -> None:
    """8. envstore's check let it through and installer's ``assert`` failed mid-unpack."""
    wheel = hostile(
        tmp_path,
        "epwheel",
        files={"mod.py": "def main():\n    return 0\n"},
        entry_points={"console_scripts": {"epc": value}},
    )
    assert_refused_at_ingest(cmd, store, tmp_path, wheel, "epwheel", "epc")


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(None, id="missing"),
        pytest.param("{", id="not-json"),
        pytest.param("{}", id="empty"),
    ],
)
def test_repair_of_an_entry_without_a_good_entry_json(
    damage: str | None, cmd: Cmd, store: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    """9. A missing entry.json is one line already; a damaged one was a traceback."""
    assert create(cmd, store, tmp_path / "env", [wheelhouse], "solo").code == 0
    entry = entry_of(store, "solo")
    meta = entry / "entry.json"
    if damage is None:
        with writable(entry):
            meta.unlink()
    else:
        with writable(meta):
            meta.write_text(damage)

    res = verify(cmd, store, "--repair")
    assert "Traceback" not in res.err, res.err
    if res.code == 0:
        assert json.loads(meta.read_text())["name"] == "solo"
        assert verify(cmd, store, "--check-contents").code == 0
    else:
        assert res.err.startswith("envstore: error:"), res
        assert len(res.err.splitlines()) == 1, res.err


# --------------------------------------------------------------------------- 10-12. as pip


@pytest.mark.parametrize(
    ("top", "base"),
    [
        pytest.param("zzz-top", "aaa-base", id="dependency-first-by-name"),
        pytest.param("aaa-top", "zzz-base", id="dependent-first-by-name"),
    ],
)
def test_a_file_two_distributions_ship(
    top: str, base: str, cmd: Cmd, store: Path, tmp_path: Path
) -> None:
    """10. pip installs the dependency first, so the dependent's copy of a shared file
    wins; the view took the first in name order."""
    wh = tmp_path / "wh"
    shared = "shared/data.py"
    wheelmaker.build_wheel(wh, base, files={shared: "WHO = 'base'\n", "base_mod.py": ""})
    wheelmaker.build_wheel(wh, top, files={shared: "WHO = 'top'\n"}, requires=[base])
    check = "import shared.data; print(shared.data.WHO)"

    plain = tmp_path / "plain"
    assert run([sys.executable, "-m", "venv", "--without-pip", plain]).returncode == 0
    pip = [sys.executable, "-m", "pip", "--python", plain / "bin" / "python", "install"]
    proc = run([*pip, "--no-index", "-f", wh, top])
    assert proc.returncode == 0, proc.stderr
    assert py_out(plain, check) == "top"  # what pip does

    env = tmp_path / "env"
    res = create(cmd, store, env, [wh], top)
    assert res.code == 0, res
    assert py_out(env, check) == "top"


def test_a_wheel_shipping_00_envstore_pth(cmd: Cmd, store: Path, tmp_path: Path) -> None:
    """11. It was dropped silently: envstore writes its own under that name."""
    wheel = hostile(
        tmp_path,
        "sneaky",
        files={"sneaky/__init__.py": "", "00-envstore.pth": f"{tmp_path}\n"},
    )
    assert_refused_at_ingest(cmd, store, tmp_path, wheel, "sneaky", "00-envstore.pth")


@pytest.mark.parametrize(
    "field", [pytest.param("name"), pytest.param("version"), pytest.param("requested")]
)
def test_show_escapes_control_characters(
    field: str, cmd: Cmd, store: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    """12. A manifest is untrusted data: show must not pass escape sequences through."""
    env = tmp_path / "env"
    assert create(cmd, store, env, [wheelhouse], "solo").code == 0
    manifest = json.loads((env / "envstore.json").read_text())
    if field == "requested":
        manifest["python"]["requested"] = ESCAPES
    else:
        manifest["packages"][0][field] = ESCAPES
    (env / "envstore.json").write_text(json.dumps(manifest, indent=1))

    res = cmd("--store", store, "show", env)
    # A package whose name or version is not its entry's is refused: escaped there too.
    assert res.code == (0 if field == "requested" else 1), res
    assert "RED" in res.out + res.err
    assert "\x1b" not in res.out + res.err
    assert "\x07" not in res.out + res.err


def test_a_pth_that_sorts_before_envstores_own_still_finds_its_package(
    cmd: Cmd, store: Path, tmp_path: Path
) -> None:
    """11. site reads .pth files in name order: one before 00-envstore.pth runs before
    the view is on sys.path, unless it names the view itself."""
    wh = tmp_path / "early-wh"
    wheelmaker.build_wheel(
        wh,
        "early",
        "1.0",
        files={
            "early_hook.py": "import os\nos.environ['EARLY_HOOK'] = 'ran'\n",
            "0-early.pth": "import early_hook\n",
        },
    )
    env = tmp_path / "env"
    assert create(cmd, store, env, [wh], "early").code == 0
    out = run([env / "bin" / "python", "-c", "import os; print(os.environ.get('EARLY_HOOK'))"])
    assert out.stdout == "ran\n" and out.stderr == "", out.stderr  # no "Error processing"
