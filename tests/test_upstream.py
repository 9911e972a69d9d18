"""Read-only upstream stores (``ENVSTORE_UPSTREAM``; store-layout.md, "Upstream stores").

The upstream is an ordinary store made by "the admin" (here: the same user, or root),
then made read-only with ``chmod -R a-w``. In the unprivileged pass (``.ci/unprivileged``)
that makes every write into it fail, so a write envstore attempted would be an error;
root bypasses file modes, so every test also compares a snapshot of the upstream
(every path, its mode, size, mtime and inode) before and after.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import wheelmaker
from conftest import CLI, PYTHONS, entries, envstore_cmd, run

Tamper = Callable[[Path, Path], None]  # (the upstream's root, a canary outside it)


@dataclass
class Site:
    root: Path
    wheels: Path
    canary: Path


def _set_writable(root: Path, writable: bool) -> None:
    for top, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            path = os.path.join(top, name)
            mode = stat.S_IMODE(os.lstat(path).st_mode)
            if not os.path.islink(path):
                os.chmod(path, mode | 0o200 if writable else mode & ~0o222)
    mode = stat.S_IMODE(os.lstat(root).st_mode)
    os.chmod(root, mode | 0o200 if writable else mode & ~0o222)


def _snapshot(root: Path) -> dict[str, tuple[int, int, int, int]]:
    found = {}
    for top, dirs, files in os.walk(root):
        for name in [".", *dirs, *files]:
            st = os.lstat(os.path.join(top, name))
            found[os.path.relpath(os.path.join(top, name), root)] = (
                st.st_mode,
                st.st_size,
                st.st_mtime_ns,
                st.st_ino,
            )
    return found


def _entry(root: Path, name: str) -> Path:
    (found,) = (root / "entries" / "pure" / name).iterdir()
    return found


@pytest.fixture
def make_site(
    tmp_path: Path, _template_store: Path, cli: CLI
) -> Iterator[Callable[[Tamper | None], Site]]:
    made: list[Path] = []

    def make(tamper: Tamper | None = None) -> Site:
        wheels = tmp_path / "wheels"
        wheelmaker.build_wheel(
            wheels,
            "alpha",
            "1.0",
            files={"alpha.py": "def main():\n    print('alpha runs')\n"},
            requires=["beta"],
            entry_points={"console_scripts": {"alpha-cli": "alpha:main"}},
            data={"data/share/alpha/hello.txt": "hello\n"},
        )
        wheelmaker.build_wheel(wheels, "beta", "2.0", files={"beta/__init__.py": "B = 2\n"})
        root = tmp_path / "site"
        shutil.copytree(_template_store, root, symlinks=True)  # pip, already ingested
        # A process of its own, as an admin's would be: nothing of it stays open here.
        res = run([*envstore_cmd(), "--store", root, "create", tmp_path / "admin-env",
                   "--without-pip", "--no-index", "-f", wheels, "alpha"])  # fmt: skip
        assert res.returncode == 0, res.stderr
        canary = tmp_path / "canary"
        canary.mkdir()
        (canary / "keep.txt").write_text("keep\n")
        if tamper is not None:
            tamper(root, canary)
        _set_writable(root, False)
        made.append(root)
        if os.geteuid() != 0:  # the unprivileged pass: the upstream really is read-only
            assert not os.access(root / "entries", os.W_OK)
        return Site(root, wheels, canary)

    yield make
    for root in made:
        for place in (root, root.with_name("site-moved")):
            if place.exists():
                _set_writable(place, True)


@pytest.fixture
def site(make_site: Callable[[Tamper | None], Site]) -> Site:
    return make_site(None)


def _create(cli: CLI, mine: Path, env: Path, site: Site, *extra: str) -> str:
    res = cli("--store", mine, "create", env, "--without-pip", "--no-index", "-f", site.wheels,
              *extra, "alpha")  # fmt: skip
    assert res.code == 0, res.err
    return res.out


def _imported_from(env: Path) -> str:
    got = run([env / "bin" / "python", "-c", "import alpha, beta; print(alpha.__file__)"])
    assert got.returncode == 0, got.stderr
    return os.path.realpath(got.stdout.strip())


def test_envs_use_upstream_entries_in_place_and_gc_and_verify_leave_it(
    cli: CLI, site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A listed store that does not exist (yet) is no error: it holds nothing.
    monkeypatch.setenv("ENVSTORE_UPSTREAM", f"{tmp_path / 'nowhere'}{os.pathsep}{site.root}")
    before = _snapshot(site.root)
    mine, env = tmp_path / "mine", tmp_path / "env"
    assert "2 from the store" in _create(cli, mine, env, site)
    # No entry files in the user's store: only its view (and store.json, the database).
    assert entries(mine) == []
    assert not any(p.is_file() for p in (mine / "entries").rglob("*"))
    assert _imported_from(env).startswith(os.path.realpath(site.root / "entries") + "/")
    script = run([env / "bin" / "alpha-cli"])
    assert script.returncode == 0 and "alpha runs" in script.stdout, script.stderr
    usage = cli("--store", mine, "store", "-v")
    assert f"upstream {site.root}: 2 entries used by envs" in usage.out, usage.out
    assert str(_entry(site.root, "beta").relative_to(site.root / "entries")) in usage.out
    checked = cli("--store", mine, "verify", "--check-contents")
    assert checked.code == 0, checked.out + checked.err
    doctor = cli("--store", mine, "doctor", env)
    assert doctor.code == 0 and ": ok" in doctor.out, doctor.out

    shutil.rmtree(env)
    collected = cli("--store", mine, "gc", "--grace", "0")
    assert collected.code == 0, collected.err
    assert not any((mine / "views").iterdir())
    assert _snapshot(site.root) == before


def test_verify_checks_upstream_entries_read_only(
    cli: CLI, make_site: Callable[[Tamper | None], Site], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    def edit_alpha(root: Path, canary: Path) -> None:
        module = _entry(root, "alpha") / "site" / "alpha.py"
        os.chmod(module, 0o644)
        module.write_text("print('changed')\n")

    site = make_site(edit_alpha)
    monkeypatch.setenv("ENVSTORE_UPSTREAM", str(site.root))
    before = _snapshot(site.root)
    mine = tmp_path / "mine"
    _create(cli, mine, tmp_path / "env", site)
    res = cli("--store", mine, "verify", "--check-contents")
    assert res.code == 1
    assert f"(upstream {site.root})" in res.out + res.err
    assert "site/alpha.py has 17 bytes, RECORD says" in res.out + res.err
    assert _snapshot(site.root) == before  # nothing flagged, repaired or sealed there


def test_a_gone_upstream_is_diagnosed_and_relink_pulls_the_entries_in(
    cli: CLI, site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVSTORE_UPSTREAM", str(site.root))
    mine, env = tmp_path / "mine", tmp_path / "env"
    _create(cli, mine, env, site)
    # Unlisted, still there: the env works; doctor says what happened.
    monkeypatch.delenv("ENVSTORE_UPSTREAM")
    res = cli("--store", mine, "doctor", env)
    assert f"upstream store {site.root}, which is no longer listed" in res.out, res.out
    monkeypatch.setenv("ENVSTORE_UPSTREAM", str(site.root))
    # Gone (unmounted, removed): the env is broken, doctor names it and the fix.
    moved = site.root.with_name("site-moved")
    site.root.rename(moved)  # same parent: no write permission on it needed
    res = cli("--store", mine, "doctor", env)
    assert res.code == 1
    assert f"upstream store {site.root}, which is gone" in res.out, res.out
    assert f"envstore relink {env}" in res.out
    fixed = cli("--store", mine, "relink", env)
    assert fixed.code == 0, fixed.err
    assert sorted(e.split("/")[1] for e in entries(mine)) == ["alpha", "beta"]
    assert _imported_from(env).startswith(os.path.realpath(mine / "entries") + "/")
    assert cli("--store", mine, "doctor", env).code == 0
    assert (env / "share" / "alpha" / "hello.txt").read_text() == "hello\n"  # data, relinked
    moved.rename(site.root)


def _other_python() -> str | None:
    default = (
        f"{sys.version_info[0]}.{sys.version_info[1]}"  # envstore's default: the Python running it
    )
    return next((p for m, p in PYTHONS.items() if p and m != default), None)


def test_another_python_gets_a_copy_in_the_users_store(
    cli: CLI, site: Site, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = _other_python()
    if other is None:
        pytest.skip("needs a second Python minor version")
    monkeypatch.setenv("ENVSTORE_UPSTREAM", str(site.root))
    before = _snapshot(site.root)
    mine, env = tmp_path / "mine", tmp_path / "env"
    _create(cli, mine, env, site, "-p", other)
    # Bytecode cannot be added to the read-only upstream: the entries were copied.
    assert sorted(e.split("/")[1] for e in entries(mine)) == ["alpha", "beta"]
    assert _imported_from(env).startswith(os.path.realpath(mine / "entries") + "/")
    assert cli("--store", mine, "verify", "--check-contents").code == 0
    assert _snapshot(site.root) == before
    usage = json.loads(cli("--store", mine, "store", "--json").out)
    assert usage["entries"] == 2 and usage["upstream"] == {}


def _link_entry_out(root: Path, canary: Path) -> None:
    entry = _entry(root, "beta")
    shutil.copytree(entry, canary / "beta-copy")
    _set_writable(entry, True)
    shutil.rmtree(entry)
    entry.symlink_to(canary / "beta-copy")


def _bad_entry_json(root: Path, canary: Path) -> None:
    record = _entry(root, "beta") / "entry.json"
    os.chmod(record, 0o644)
    data = json.loads(record.read_text())
    record.write_text(json.dumps({**data, "key": str(_entry(root, "alpha").relative_to(root))}))


def _link_in_site(root: Path, canary: Path) -> None:
    site = _entry(root, "beta") / "site"
    os.chmod(site, 0o755)
    (site / "planted").symlink_to(canary)


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(_link_entry_out, id="entry-links-out"),
        pytest.param(_bad_entry_json, id="entry-json-names-another-key"),
        pytest.param(_link_in_site, id="link-in-site"),
    ],
)
def test_a_crafted_upstream_entry_is_not_used(
    cli: CLI, make_site: Callable[[Tamper | None], Site], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, tamper: Tamper,
) -> None:  # fmt: skip
    site = make_site(tamper)
    monkeypatch.setenv("ENVSTORE_UPSTREAM", str(site.root))
    canary_before = _snapshot(site.canary)
    mine, env = tmp_path / "mine", tmp_path / "env"
    _create(cli, mine, env, site)
    # beta is unpacked into the user's store from its wheel; alpha is used in place.
    assert [e.split("/")[1] for e in entries(mine)] == ["beta"]
    view_links = [os.readlink(p) for p in (mine / "views").glob("*/site/*") if p.is_symlink()]
    assert view_links and not any(str(site.canary) in link for link in view_links)
    assert _snapshot(site.canary) == canary_before
    assert _imported_from(env).startswith(os.path.realpath(site.root / "entries") + "/")


def test_the_own_store_under_another_name_is_no_upstream(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path
) -> None:
    link = tmp_path / "store-link"
    link.symlink_to(store)
    env = tmp_path / "env"
    res = cli("--store", link, "create", env, "--without-pip", "--no-index", "-f", wheelhouse,
              "solo")  # fmt: skip
    assert res.code == 0, res.err
    assert "upstream" not in cli("--store", store, "doctor", env).out


def test_a_relative_upstream_is_refused(
    cli: CLI, store: Path, wheelhouse: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative ENVSTORE_UPSTREAM would trust what the current directory (a cloned
    repo) holds under that name: refused, naming the variable."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ENVSTORE_UPSTREAM", "site-store")
    res = cli("--store", store, "create", tmp_path / "env", "--without-pip", "--no-index",
              "-f", wheelhouse, "solo")  # fmt: skip
    assert res.code != 0
    assert "ENVSTORE_UPSTREAM lists 'site-store', which is not an absolute path" in res.err
