"""Roots in a store several hosts share: placeholders ``<hash>@_unknown`` (a store that
becomes shared), who claims them, and what a database built from disk trusts (#27).

Hosts are simulated as in test_shared.py (``ENVSTORE_TEST_HOST``, own cache directory).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from conftest import CLI, entries
from test_shared import _host, _roots

MAKE = ("--no-index", "-f")
LONG_AGO = time.time() - 1000 * 86400


def _age_roots(store: Path) -> None:
    """Every root last seen long ago (instead of waiting: no timed assertions)."""
    for name in _roots(store):
        os.utime(store / "roots" / name, (LONG_AGO, LONG_AGO), follow_symlinks=False)


def _digest(store: Path, env: Path) -> str | None:
    from envstore.store import index, layout

    st = layout.Store(store)
    try:
        return index.env_digest(st.db(), str(env))
    finally:
        st.close()


def _text_digest(env: Path) -> str:
    import xxhash

    return str(xxhash.xxh3_64_hexdigest((env / "envstore.json").read_bytes()))


def test_a_shared_env_the_recording_host_cannot_see_is_claimed_by_a_host_that_does(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The login node records shared mode without /lustre mounted: the env there goes to
    a placeholder. A node that sees it on shared storage claims it as every host's root;
    an unclaimed placeholder is never dropped for its age (kept and reported)."""
    monkeypatch.setenv("ENVSTORE_SHARED_PATHS", str(tmp_path / "proj"))
    _host(monkeypatch, tmp_path, "server")
    monkeypatch.setenv("ENVSTORE_SHARED", "0")
    env, other = tmp_path / "proj" / "env", tmp_path / "proj" / "other"
    assert cli("--store", store, "create", env, *MAKE, wheelhouse, "hello-app").code == 0
    assert cli("--store", store, "create", other, *MAKE, wheelhouse, "solo").code == 0
    (tmp_path / "proj").rename(tmp_path / "proj-unmounted")  # not mounted on the login node
    _host(monkeypatch, tmp_path, "login")
    assert cli("--store", store, "gc", "--grace", "0").code == 0
    assert [r.partition("@")[2] for r in _roots(store)] == ["_unknown", "_unknown"]
    (tmp_path / "proj-unmounted").rename(tmp_path / "proj")
    (other / "envstore.json").unlink()  # gone meanwhile: its placeholder stays unclaimed
    _age_roots(store)  # ~3 years later, nobody has refreshed them
    monkeypatch.setenv("ENVSTORE_HOST_ROOT_DAYS", "1")
    _host(monkeypatch, tmp_path, "node1")  # sees env on shared storage: claims it
    res = cli("--store", store, "gc", "--grace", "0")
    assert res.code == 0, res.err
    assert f"kept {other} on host _unknown" in res.out, res.out
    roots = _roots(store)
    assert len(roots) == 2 and sum(r.endswith("@_unknown") for r in roots) == 1, roots
    _age_roots(store)
    _host(monkeypatch, tmp_path, "node2")
    res = cli("--store", store, "gc", "--grace", "0")
    assert res.code == 0 and f"kept {other} on host _unknown" in res.out, res.out
    assert "hello-app" in " ".join(entries(store)), "a live shared env's entries deleted"
    assert "solo" in " ".join(entries(store))  # a placeholder's: kept, never aged out
    assert _roots(store) == roots


def test_every_host_with_a_live_env_at_a_placeholders_path_claims_it(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CI hosts each have /tmp/venv with the same packages: each claims a root of its
    own, and the placeholder stays for the rest; a claimed env records no trusted
    sources, in the claiming host's database made by the migration too."""
    _host(monkeypatch, tmp_path, "ci1")
    monkeypatch.setenv("ENVSTORE_SHARED", "0")
    env = tmp_path / "venv"  # local disk on every host
    assert cli("--store", store, "create", env, *MAKE, wheelhouse, "hello-app").code == 0
    monkeypatch.setenv("ENVSTORE_SHARED", "1")  # ci1 records shared mode, claims at once
    assert cli("--store", store, "list").code == 0
    assert [r.partition("@")[2] for r in _roots(store)] == ["_unknown", "ci1"]
    assert _digest(store, env) == ""  # claimed: found on disk, not registered so
    _host(monkeypatch, tmp_path, "ci2")
    assert cli("--store", store, "gc", "--grace", "0").code == 0
    assert [r.partition("@")[2] for r in _roots(store)] == ["_unknown", "ci1", "ci2"]
    assert _digest(store, env) == ""
    # ci1's env goes: its root is dropped, ci2's keeps what it uses.
    (env / "envstore.json").rename(tmp_path / "saved.json")
    _host(monkeypatch, tmp_path, "ci1")
    assert cli("--store", store, "gc", "--grace", "0").code == 0
    assert [r.partition("@")[2] for r in _roots(store)] == ["_unknown", "ci2"]
    assert "hello-app" in " ".join(entries(store))


@pytest.mark.parametrize(
    ("name", "want"), [("_unknown", "x_unknown"), ("?unknown", "x_unknown"), ("_x", "_x")]
)
def test_no_host_takes_a_placeholders_name(
    name: str, want: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the placeholder's own name is changed: a host named ``_x`` keeps its name
    (renaming it would make its own local roots another host's)."""
    from envstore.store.fs import host_name
    from envstore.store.hostroots import UNKNOWN_HOST

    monkeypatch.setenv("ENVSTORE_TEST_HOST", name)
    got = host_name()
    assert got != UNKNOWN_HOST and got == want


def test_a_rebuilt_database_trusts_sources_only_as_the_envs_own_refs_vouch(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crafted manifest lists another env's entry to borrow its origin: not trusted."""
    import wheelmaker

    (store / "envstore.db").unlink()
    monkeypatch.setenv("ENVSTORE_SHARED_PATHS", str(tmp_path / "home"))
    env, other = tmp_path / "home" / "env", tmp_path / "home" / "other"
    _host(monkeypatch, tmp_path, "alpha")
    assert (
        cli("--store", store, "create", env, "--without-pip", *MAKE, wheelhouse, "solo").code == 0
    )
    evil = tmp_path / "tmpdl"
    wheelmaker.build_wheel(evil, "zzother", "1.0", files={"zzother.py": ""})
    assert cli("--store", store, "create", other, "--without-pip", *MAKE, evil, "zzother").code == 0
    _host(monkeypatch, tmp_path, "beta")  # untouched: its refs vouch for it
    assert _digest(store, env) == _text_digest(env)
    data = json.loads((env / "envstore.json").read_text())
    odata = json.loads((other / "envstore.json").read_text())
    data["packages"].append({**odata["packages"][0], "requested": False})
    (env / "envstore.json").write_text(json.dumps(data))
    _host(monkeypatch, tmp_path, "gamma")  # names what envstore never registered for it
    assert _digest(store, env) == ""
    data["sources"]["find_links"] = [str(evil)]  # and borrows that entry's origin
    (env / "envstore.json").write_text(json.dumps(data))
    _host(monkeypatch, tmp_path, "delta")
    assert _digest(store, env) == ""


def test_rebuild_db_trusts_no_sources_without_refs(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path
) -> None:
    """A store in local mode has no refs files: a manifest found by rebuild-db (its old
    digest lost, or "") is trusted for none of its sources."""
    env = tmp_path / "env"
    assert (
        cli("--store", store, "create", env, "--without-pip", *MAKE, wheelhouse, "solo").code == 0
    )
    assert _digest(store, env) == _text_digest(env)
    assert cli("--store", store, "rebuild-db").code == 0
    assert _digest(store, env) == _text_digest(env)  # the old database's digest, kept
    (store / "envstore.db").unlink()
    assert cli("--store", store, "rebuild-db").code == 0
    assert _digest(store, env) == ""
    assert cli("--store", store, "rebuild-db").code == 0  # an old "" stays ""
    assert _digest(store, env) == ""


def test_a_placeholder_is_claimed_only_under_its_envs_own_name(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A root is named by its env's path: a placeholder named otherwise (crafted, or a
    copy) never becomes a root of that env."""
    from envstore.store.placeholders import claim_roots

    (store / "envstore.db").unlink()
    monkeypatch.setenv("ENVSTORE_SHARED_PATHS", str(tmp_path / "home"))
    _host(monkeypatch, tmp_path, "alpha")
    env = tmp_path / "home" / "env"
    assert (
        cli("--store", store, "create", env, "--without-pip", *MAKE, wheelhouse, "solo").code == 0
    )
    [bare] = _roots(store)
    (store / "roots" / bare).rename(store / "roots" / "0123456789abcdef@_unknown")
    assert claim_roots(store) == [] and _roots(store) == ["0123456789abcdef@_unknown"]
    (store / "roots" / "0123456789abcdef@_unknown").rename(store / "roots" / f"{bare}@_unknown")
    [claim] = claim_roots(store)
    assert (claim.env, claim.root) == (str(env), bare) and _roots(store) == [bare]


def test_a_placeholder_this_user_cannot_read_does_not_stop_gc(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A placeholder whose env is another user's (its manifest unreadable: EACCES) is
    not this host's to claim: gc goes on, and keeps it."""
    from envstore.store import placeholders

    monkeypatch.setenv("ENVSTORE_SHARED_PATHS", str(tmp_path / "proj"))
    _host(monkeypatch, tmp_path, "server")
    monkeypatch.setenv("ENVSTORE_SHARED", "0")
    env = tmp_path / "proj" / "env"
    assert cli("--store", store, "create", env, *MAKE, wheelhouse, "hello-app").code == 0
    (tmp_path / "proj").rename(tmp_path / "proj-unmounted")
    _host(monkeypatch, tmp_path, "login")
    assert cli("--store", store, "gc", "--grace", "0").code == 0
    (tmp_path / "proj-unmounted").rename(tmp_path / "proj")

    def unreadable(path: object) -> object:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(placeholders.Manifest, "load", unreadable)
    _host(monkeypatch, tmp_path, "node1")
    res = cli("--store", store, "gc", "--grace", "0")
    assert res.code == 0, res.err
    assert [r.partition("@")[2] for r in _roots(store)] == ["_unknown"]
    assert "hello-app" in " ".join(entries(store))


def test_a_mark_that_is_not_a_small_file_is_no_mark(tmp_path: Path) -> None:
    """marked() reads marks as marks() does: a directory (or link) planted at a mark's
    name refuses nothing; writing a mark over it fails without leaving a temporary."""
    from envstore.store import hostroots

    root = tmp_path / "store"
    (root / "state" / "damaged").mkdir(parents=True)
    name = "view/" + "a" * 32
    (root / "state" / "damaged" / name.replace("/", "~")).mkdir()
    assert not hostroots.marked(root, "damaged", name)
    assert hostroots.marks(root, "damaged") == {}
    with pytest.raises(OSError):
        hostroots.put_mark(root, "damaged", name)
    assert sorted(os.listdir(root / "state" / "damaged")) == [name.replace("/", "~")]
    hostroots.put_mark(root, "damaged", "view/" + "b" * 32)
    assert hostroots.marked(root, "damaged", "view/" + "b" * 32)


def test_a_placeholder_naming_no_manifest_is_not_read(tmp_path: Path) -> None:
    """A crafted ``<hash>@_unknown`` whose link names a FIFO (not an env's manifest) is
    skipped, never opened: gc would otherwise wait on it forever."""
    import subprocess
    import sys

    import xxhash

    store = tmp_path / "store"
    (store / "roots").mkdir(parents=True)
    fifo = tmp_path / "env" / "pipe"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    name = f"{xxhash.xxh3_64_hexdigest(str(fifo.parent).encode())}@_unknown"
    os.symlink(fifo, store / "roots" / name)
    code = (
        "from pathlib import Path; from envstore.store.placeholders import claim_roots;"
        f" print(claim_roots(Path({str(store)!r})))"
    )
    # A hang is the failure here; the timeout only ends it.
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert got.returncode == 0 and got.stdout.strip() == "[]", got.stderr


def test_a_stray_link_in_roots_is_no_placeholder(tmp_path: Path) -> None:
    """A link in ``roots/`` whose name is no root's (no env's path hash) is left as it
    is when the store becomes shared: made a placeholder, it had no refs file, so no
    host could claim it and gc kept it forever."""
    from envstore.store.placeholders import migrate_roots

    store = tmp_path / "store"
    (store / "roots").mkdir(parents=True)
    (store / "state" / "refs").mkdir(parents=True)
    env = tmp_path / "env"
    env.mkdir()
    (env / "envstore.json").write_text("{}")
    os.symlink(env / "envstore.json", store / "roots" / "stray")
    migrate_roots(store, {str(env): ["pure/solo/0.5-" + "a" * 32]})
    assert sorted(os.listdir(store / "roots")) == ["stray"]
