"""Fresh by default: with an index in play, a request not pinned to one version is
resolved against the index unless the same request was within ``--max-age``; pinned
requests, ``--offline`` and ``--no-index`` directories never need it (issue #23).

The index is a PEP 503 tree served by ``http.server`` on 127.0.0.1, counting requests.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import sqlite3
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import wheelmaker
from conftest import CLI

from envstore import IsolatedEnv, PackageSources
from envstore.manifest import Manifest
from envstore.resolve.freshness import DEFAULT_MAX_AGE, hash_pinned, parse_duration


class Index:
    """A simple index at ``url``; ``requests``: the paths asked for, in order."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        index = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                index.requests.append(self.path)
                super().do_GET()

        handler = functools.partial(Handler, directory=str(root))
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.running = True

    def add(self, name: str, version: str, requires: tuple[str, ...] = ()) -> None:
        """Build a wheel of ``name`` ``version`` and list it with its sha256 and its
        metadata file (PEP 658, as PyPI serves it: pip resolves without the wheel)."""
        d = self.root / "simple" / name
        d.mkdir(parents=True, exist_ok=True)
        made = wheelmaker.build_wheel(d, name, version, requires=requires)
        with zipfile.ZipFile(made) as zf:
            meta = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
            Path(f"{made}.metadata").write_bytes(zf.read(meta))
        links = ""
        for whl in sorted(d.glob("*.whl")):
            digest = hashlib.sha256(whl.read_bytes()).hexdigest()
            meta_digest = hashlib.sha256(Path(f"{whl}.metadata").read_bytes()).hexdigest()
            links += (
                f'<a href="{whl.name}#sha256={digest}"'
                f' data-dist-info-metadata="sha256={meta_digest}"'
                f' data-core-metadata="sha256={meta_digest}">{whl.name}</a>\n'
            )
        (d / "index.html").write_text(f"<html><body>\n{links}</body></html>\n")

    def stop(self) -> None:
        if self.running:
            self.server.shutdown()
            self.server.server_close()
            self.running = False


@pytest.fixture
def index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Index]:
    monkeypatch.setenv("PIP_RETRIES", "0")  # a stopped index fails at once
    monkeypatch.setenv("PIP_TIMEOUT", "5")
    monkeypatch.delenv("ENVSTORE_MAX_AGE", raising=False)
    served = Index(tmp_path / "www")
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture
def pip_runs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The pip commands envstore runs from now on (see :func:`_resolving`)."""
    import envstore.resolve.pip as pip

    calls: list[list[str]] = []
    real = pip.run_pip

    def counted(cmd: list[str], what: str) -> None:
        calls.append(cmd)
        real(cmd, what)

    monkeypatch.setattr(pip, "run_pip", counted)
    return calls


def _resolving(runs: list[list[str]]) -> int:
    """How many of ``runs`` resolved (``pip install --dry-run``)."""
    return sum(1 for cmd in runs if "--dry-run" in cmd)


def _version(env: Path, name: str = "fresh-pkg") -> str:
    return next(p.version for p in Manifest.load(env).packages if p.name == name)


def _age_rows(store: Path, seconds: float) -> None:
    """Make every cached resolution ``seconds`` older."""
    conn = sqlite3.connect(store / "envstore.db")
    with conn:
        conn.execute("UPDATE resolutions SET created = created - ? WHERE created > 0", (seconds,))
    conn.close()


def test_within_the_window_the_store_answers_then_the_index_does(
    tmp_path: Path, store: Path, cli: CLI, index: Index, pip_runs: list[list[str]]
) -> None:
    index.add("fresh-pkg", "1.0")
    opts = ["--store", store, "--without-pip", "--index-url", index.url]
    got = cli("create", tmp_path / "e1", "fresh-pkg", *opts)
    assert got.code == 0, got.err
    assert _version(tmp_path / "e1") == "1.0" and _resolving(pip_runs) == 1
    assert "1 package: 0 from the store, 1 fetched; resolved by pip)" in got.out

    index.add("fresh-pkg", "2.0")
    asked = len(index.requests)
    got = cli("-v", "create", tmp_path / "e2", "fresh-pkg", *opts)
    assert got.code == 0, got.err
    assert _version(tmp_path / "e2") == "1.0"  # within the window: no pip, no index
    assert _resolving(pip_runs) == 1 and len(index.requests) == asked
    assert "1 package: 1 from the store)" in got.out
    assert "index not consulted: fresh cache: resolved" in got.err

    got = cli("-v", "create", tmp_path / "e3", "fresh-pkg", *opts, "--max-age", "0")
    assert got.code == 0, got.err
    assert _version(tmp_path / "e3") == "2.0" and _resolving(pip_runs) == 2
    assert "index consulted: refresh (max-age 0)" in got.err

    index.add("fresh-pkg", "3.0")
    got = cli("create", tmp_path / "e4", "fresh-pkg", *opts, "--refresh")
    assert got.code == 0, got.err
    assert _version(tmp_path / "e4") == "3.0" and _resolving(pip_runs) == 3

    # Once the window has passed, the index is asked again; a wheel the store already
    # has (same sha256 on the index) is not downloaded again.
    _age_rows(store, DEFAULT_MAX_AGE + 60)
    before = len(pip_runs)
    got = cli("-v", "create", tmp_path / "e5", "fresh-pkg", *opts)
    assert got.code == 0, got.err
    assert _version(tmp_path / "e5") == "3.0" and _resolving(pip_runs) == 4
    assert "index consulted: window expired: resolved" in got.err
    assert [c for c in pip_runs[before:] if "--dry-run" not in c] == []  # no pip wheel
    assert "1 package: 1 from the store; resolved by pip)" in got.out

    # --max-age inf: whatever the store has, as before the policy.
    _age_rows(store, DEFAULT_MAX_AGE + 60)
    index.add("fresh-pkg", "4.0")
    got = cli("create", tmp_path / "e6", "fresh-pkg", *opts, "--max-age", "inf")
    assert got.code == 0, got.err
    assert _version(tmp_path / "e6") == "3.0" and _resolving(pip_runs) == 4


def test_pinned_requests_and_offline_never_need_the_index(
    tmp_path: Path,
    store: Path,
    cli: CLI,
    index: Index,
    pip_runs: list[list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    index.add("fresh-pkg", "1.0")
    index.add("fresh-app", "1.0", requires=("fresh-pkg>=1",))
    opts = ["--store", store, "--without-pip", "--index-url", index.url]
    assert cli("create", tmp_path / "e1", "fresh-pkg==1.0", "fresh-app", *opts).code == 0
    index.add("fresh-pkg", "2.0")

    # --offline: the index is never contacted, whatever the window says.
    asked = len(index.requests)
    got = cli("create", tmp_path / "off", "fresh-pkg", *opts, "--offline", "--max-age", "0")
    assert got.code == 0, got.err
    assert _version(tmp_path / "off") == "1.0" and len(index.requests) == asked

    index.stop()
    runs = _resolving(pip_runs)
    got = cli("-v", "create", tmp_path / "e2", "fresh-pkg==1.0", *opts, "--refresh")
    assert got.code == 0, got.err
    assert _version(tmp_path / "e2") == "1.0" and _resolving(pip_runs) == runs
    assert "index not consulted: pinned" in got.err

    # Pinned at the top but not below: its dependency's newest version is the index's.
    got = cli("create", tmp_path / "e3", "fresh-app==1.0", *opts, "--refresh")
    assert got.code == 1 and "pip could not resolve" in got.err
    assert _resolving(pip_runs) == runs + 1

    # An offline answer is not a fresh one: the same request online asks the index.
    monkeypatch.setenv("ENVSTORE_MAX_AGE", "1h")
    assert cli("create", tmp_path / "e4", "fresh-app", *opts, "--offline").code == 0
    got = cli("create", tmp_path / "e5", "fresh-app", *opts)
    assert got.code == 1 and "pip could not resolve" in got.err


def test_no_index_directories_decide_and_the_variable_sets_the_window(
    tmp_path: Path,
    store: Path,
    cli: CLI,
    pip_runs: list[list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wh = tmp_path / "wh"
    wheelmaker.build_wheel(wh, "fresh-pkg", "1.0")
    opts = ["--store", store, "--without-pip", "--no-index", "-f", wh]
    monkeypatch.setenv("ENVSTORE_MAX_AGE", "0")
    for n in range(2):
        got = cli("-v", "create", tmp_path / f"e{n}", "fresh-pkg", *opts)
        assert got.code == 0, got.err
        assert "--no-index: the --find-links directories decide" in got.err
    assert pip_runs == []  # the directories decide: no index, however old the answer
    monkeypatch.setenv("ENVSTORE_MAX_AGE", "soon")
    got = cli("create", tmp_path / "bad", "fresh-pkg", "--store", store, "--index-url", "x")
    assert got.code == 1
    assert got.err.strip() == (
        "envstore: error: $ENVSTORE_MAX_AGE is not a duration: 'soon'"
        " (e.g. 0, 30s, 10m, 2h, inf); fix or unset it"
    )
    with pytest.raises(SystemExit) as exc:
        cli("create", tmp_path / "bad", "fresh-pkg", "--max-age", "-1")
    assert exc.value.code == 2


def test_a_build_frontend_starts_pip_once_per_request(
    tmp_path: Path, store: Path, index: Index, pip_runs: list[list[str]]
) -> None:
    index.add("fresh-pkg", "1.0")
    index.add("fresh-tool", "1.0")
    sources = PackageSources(index_url=index.url)
    for requirements in (["fresh-pkg"], ["fresh-tool"], ["fresh-pkg"], ["fresh-tool"]) * 2:
        with IsolatedEnv(requirements=requirements, store=store, sources=sources) as env:
            assert env.manifest.packages
    assert _resolving(pip_runs) == 2  # one per distinct request
    with IsolatedEnv(requirements=["fresh-pkg"], store=store, sources=sources, max_age=0):
        pass
    assert _resolving(pip_runs) == 3


def test_durations_and_hash_pins(tmp_path: Path) -> None:
    assert parse_duration("10m") == 600 and parse_duration("90") == 90
    assert parse_duration("inf") is None and parse_duration("inf", infinite=True) == float("inf")
    assert parse_duration("-1s") is None and parse_duration("nan") is None
    hashed = tmp_path / "req.txt"
    hashed.write_text("a==1.0 \\\n    --hash=sha256:00\nb==2.0 --hash=sha256:11\n")
    assert hash_pinned((), (str(hashed),))
    loose = tmp_path / "loose.txt"
    loose.write_text("a==1.0 --hash=sha256:00\nb>=2.0 --hash=sha256:11\n")
    assert not hash_pinned((), (str(loose),))
    assert not hash_pinned(("a==1.0",), (str(hashed),))


def test_an_editable_projects_build_env_has_the_window(
    tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The throwaway env an editable project is built in resolves with the create's
    ``max_age`` (``--max-age inf`` must keep a frontend off the index there too)."""
    from projectmaker import make_project

    import envstore.env.editable as editable
    from envstore import create_env

    seen: list[float | None] = []

    def make_env(*args: object, **kwargs: object) -> None:
        seen.append(args[2].max_age)  # type: ignore[attr-defined]
        raise RuntimeError("recorded")

    monkeypatch.setattr(editable, "make_env", make_env)
    proj = make_project(tmp_path / "proj")
    with pytest.raises(RuntimeError, match="recorded"):
        create_env(tmp_path / "e", store=store, editables=[str(proj)], max_age=float("inf"))
    assert seen == [float("inf")]
