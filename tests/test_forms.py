"""Every requirement form pip and uv accept, on the command line, in requirements files
and through ``create_env``: what pip builds is stored like any other wheel (#21)."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import wheelmaker
from conftest import CLI
from projectmaker import builds, make_project

from envstore import create_env
from envstore.manifest import Manifest


@pytest.fixture
def wh(tmp_path: Path) -> Path:
    """The project's dependency, and a package with a pre-release."""
    d = tmp_path / "wh"
    wheelmaker.build_wheel(d, "dep-one", "1.0", files={"dep_one/__init__.py": "V = '1.0'\n"})
    wheelmaker.build_wheel(d, "dep-one", "2.0", files={"dep_one/__init__.py": "V = '2.0'\n"})
    wheelmaker.build_wheel(d, "dep-one", "3.0b1", files={"dep_one/__init__.py": "V = '3.0b1'\n"})
    wheelmaker.build_wheel(d, "extra-dep", "1.0", files={"extra_dep.py": "E = 1\n"})
    return d


def project(root: Path, version: str = "0.1", source: str | None = None) -> Path:
    return make_project(
        root,
        "sample",
        version,
        dependencies=["dep-one<3"],
        optional_dependencies={"more": ["extra-dep"]},
        source=source,
    )


def py(env: Path, code: str) -> str:
    proc = subprocess.run(
        [env / "bin" / "python", "-c", code], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def sample_of(env: Path) -> str:
    return py(env, "import sample, dep_one; print(sample.VERSION, dep_one.V)")


def offline_opts(store: Path, wh: Path) -> list[str]:
    return ["--store", str(store), "--no-index", "-f", str(wh)]


def built(tmp_path: Path, root: Path, kind: str) -> Path:
    """A wheel or sdist of the project at ``root`` (built by its backend, in-process)."""
    out = tmp_path / "dist"
    out.mkdir(exist_ok=True)
    code = (
        "import sys; sys.path.insert(0, '_backend'); import envstore_test_backend as b;"
        f" print(b.build_{kind}({str(out)!r}))"
    )
    proc = subprocess.run(
        ["python3", "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    (root / "_backend" / "builds.log").unlink()
    return out / proc.stdout.strip()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory served over HTTP from 127.0.0.1: (directory, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


# -- the forms ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "form",
    [
        pytest.param("./proj", id="relative-dir"),
        pytest.param("proj/", id="relative-dir-trailing-slash"),
        pytest.param("{proj}", id="absolute-dir"),
        pytest.param("./proj[more]", id="dir-with-extra"),
        pytest.param("sample @ file://{proj}", id="name-at-file-url"),
        pytest.param("sample[more] @ file://{proj}", id="name-extra-at-file-url"),
        pytest.param("file://{proj}", id="bare-file-url"),
        pytest.param("{wheel_rel}", id="relative-wheel"),
        pytest.param("{wheel}", id="absolute-wheel"),
        pytest.param("sample @ file://{wheel}", id="name-at-wheel-url"),
        pytest.param("{sdist_rel}", id="relative-sdist"),
        pytest.param("file://{sdist}", id="bare-sdist-url"),
    ],
)
def test_a_form_on_the_command_line(
    form: str, tmp_path: Path, store: Path, wh: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = project(tmp_path / "proj")
    wheel = built(tmp_path, proj, "wheel")
    sdist = built(tmp_path, proj, "sdist")
    monkeypatch.chdir(tmp_path)
    req = form.format(
        proj=proj,
        wheel=wheel,
        sdist=sdist,
        wheel_rel=os.path.relpath(wheel),
        sdist_rel=os.path.relpath(sdist),
    )
    got = cli("create", "env", req, *offline_opts(store, wh), "--without-pip")
    assert got.code == 0, got.err
    assert sample_of(tmp_path / "env") == "0.1 2.0"
    if "more" in form:
        assert py(tmp_path / "env", "import extra_dep; print(extra_dep.E)") == "1"


def test_the_current_directory_is_a_project(
    tmp_path: Path, store: Path, wh: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = project(tmp_path / "proj")
    monkeypatch.chdir(proj)
    got = cli("create", tmp_path / "env", ".", *offline_opts(store, wh), "--without-pip")
    assert got.code == 0, got.err
    assert sample_of(tmp_path / "env") == "0.1 2.0"


def test_forms_in_a_requirements_file_are_taken_from_the_file(
    tmp_path: Path, store: Path, wh: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Relative paths in a requirements file lead from the file (as uv reads them;
    pip takes bare paths from the current directory, pip#8765), also in a file it
    includes, and the file is read from elsewhere."""
    base = tmp_path / "repo"
    project(base / "proj")
    other = make_project(base / "libs" / "other", "other-lib", "0.3")
    wheelmaker.build_wheel(base / "wheels", "solo", "0.5", files={"solo.py": "X = 5\n"})
    (base / "libs" / "more.txt").write_text("./other\n")
    (base / "requirements.txt").write_text(
        "./proj[more]\n-r libs/more.txt\nwheels/solo-0.5-py3-none-any.whl\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    got = cli(
        "create", "env", "-r", base / "requirements.txt", *offline_opts(store, wh), "--without-pip"
    )
    assert got.code == 0, got.err
    env = elsewhere / "env"
    assert sample_of(env) == "0.1 2.0"
    assert py(env, "import other_lib, solo, extra_dep; print(other_lib.VERSION, solo.X)") == "0.3 5"
    assert builds(other)  # built from its directory, not found elsewhere


def test_forms_through_the_library(
    tmp_path: Path, store: Path, wh: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = project(tmp_path / "proj")
    wheel = built(tmp_path, proj, "wheel")
    monkeypatch.chdir(tmp_path)
    opts = dict(store=store, find_links=[str(wh)], no_index=True, with_pip=False)
    m = create_env(tmp_path / "e1", ["./proj[more]"], **opts)  # type: ignore[arg-type]
    assert {p.name for p in m.packages} == {"sample", "dep-one", "extra-dep"}
    assert [p.name for p in m.packages if p.requested] == ["sample"]
    create_env(tmp_path / "e2", [f"sample @ {wheel.as_uri()}"], **opts)  # type: ignore[arg-type]
    assert sample_of(tmp_path / "e2") == "0.1 2.0"


def test_http_urls_to_wheels_and_sdists(
    tmp_path: Path, store: Path, wh: Path, cli: CLI, served: tuple[Path, str]
) -> None:
    root, url = served
    proj = project(tmp_path / "proj")
    wheel = built(tmp_path, proj, "wheel")
    sdist = built(tmp_path, proj, "sdist")
    for f in (wheel, sdist):
        (root / f.name).write_bytes(f.read_bytes())
    for i, req in enumerate(
        [f"{url}/{wheel.name}", f"sample @ {url}/{sdist.name}", f"{url}/{sdist.name}"]
    ):
        env = tmp_path / f"env{i}"
        got = cli("create", env, req, *offline_opts(store, wh), "--without-pip")
        assert got.code == 0, got.err
        assert sample_of(env) == "0.1 2.0"


# -- git ----------------------------------------------------------------------------
def git(repo: Path, *args: str) -> str:
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.invalid",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.invalid",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_CONFIG_NOSYSTEM="1",
    )
    proc = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True
    )
    return proc.stdout.strip()


def pip_runs(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every pip command envstore runs from now on (the CLI runs in-process)."""
    import envstore.resolve.pip as pip

    calls: list[list[str]] = []
    real = pip.run_pip

    def counted(cmd: list[str], what: str) -> None:
        calls.append(cmd)
        real(cmd, what)

    monkeypatch.setattr(pip, "run_pip", counted)
    return calls


def test_git_urls_follow_the_commit(
    tmp_path: Path, store: Path, wh: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``git+file://`` at a branch: the same commit is served from the store (no build),
    a new commit on the branch is built; ``@<commit>`` pins it."""
    repo = project(tmp_path / "repo")
    (repo / ".gitignore").write_text("builds.log\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "one")
    first = git(repo, "rev-parse", "HEAD")
    log = repo / "_backend" / "builds.log"
    opts = [*offline_opts(store, wh), "--without-pip"]
    # pip < 24 takes no empty host in a PEP 508 URL other than file: (packaging 21)
    named = f"sample @ git+file://localhost{repo}"

    def create(env: str, req: str) -> str:
        got = cli("create", tmp_path / env, req, *opts)
        assert got.code == 0, got.err
        return sample_of(tmp_path / env)

    assert create("e1", f"{named}@main") == "0.1 2.0"
    assert not log.exists()  # pip builds a clone, never the working tree
    assert create("e2", f"git+{repo.as_uri()}") == "0.1 2.0"
    runs = pip_runs(monkeypatch)
    assert create("e3", f"{named}@main") == "0.1 2.0"
    assert runs == []  # the same commit: from the resolution cache
    (repo / "src" / "sample" / "__init__.py").write_text("VERSION = 'edited'\n")
    git(repo, "commit", "-q", "-am", "two")
    assert create("e4", f"{named}@main").startswith("edited")
    assert runs  # a new commit: pip built it
    assert create("e5", f"{named}@{first}") == "0.1 2.0"
    assert list(store.glob("wheels/sample-0.1-*.whl"))  # stored like any other wheel


@pytest.mark.skipif(shutil.which("git") is None, reason="no git")
def test_a_remote_git_ref_is_remembered_for_offline_and_max_age_inf(
    tmp_path: Path, store: Path, wh: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A remote ``git+git://...@main`` (a git daemon on 127.0.0.1): online, the commit
    ``main`` names is asked for; with ``--offline`` or ``--max-age inf`` the repository
    is not asked and the last answer for ``main`` serves, even with the server gone."""
    import socket

    served = tmp_path / "served"
    repo = project(served / "repo")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "one")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    daemon = subprocess.Popen(
        ["git", "daemon", "--export-all", "--reuseaddr", f"--base-path={served}",
         "--listen=127.0.0.1", f"--port={port}", str(served)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    req = f"sample @ git+git://127.0.0.1:{port}/repo@main"
    opts = [*offline_opts(store, wh), "--without-pip"]
    try:
        for _ in range(100):  # until it answers
            if subprocess.run(["git", "ls-remote", f"git://127.0.0.1:{port}/repo"],
                              capture_output=True, check=False).returncode == 0:  # fmt: skip
                break
            time.sleep(0.1)
        got = cli("create", tmp_path / "online", req, *opts)
        assert got.code == 0, got.err
    finally:
        daemon.terminate()
        daemon.wait()
    runs = pip_runs(monkeypatch)
    for name, more in (("offline", ["--offline"]), ("inf", ["--max-age", "inf"])):
        got = cli("create", tmp_path / name, req, *opts, *more)
        assert got.code == 0, got.err
        assert sample_of(tmp_path / name) == "0.1 2.0"
    assert runs == []
    got = cli("create", tmp_path / "asked", req, *opts)  # online: the server is asked
    assert got.code != 0


# -- not served stale ---------------------------------------------------------------
def test_a_local_project_is_rebuilt_when_its_key_files_change(
    tmp_path: Path, store: Path, wh: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rule (resolve/stamps.py): a project directory is rebuilt when pyproject.toml,
    setup.py or setup.cfg changed; with nothing changed no backend runs."""
    proj = project(tmp_path / "proj")
    opts = [*offline_opts(store, wh), "--without-pip"]
    monkeypatch.chdir(tmp_path)
    for i, form in enumerate(("./proj", f"sample @ {proj.as_uri()}")):
        project(proj, f"{i}.1")  # each form from a state not built before
        name = f"e{i}"
        assert cli("create", f"{name}-1", form, *opts).code == 0
        assert sample_of(tmp_path / f"{name}-1") == f"{i}.1 2.0"
        done = len(builds(proj))
        assert cli("create", f"{name}-2", form, *opts).code == 0
        assert len(builds(proj)) == done  # nothing changed: no backend run
        project(proj, f"{i}.2", source="VERSION = 'edited'\n")  # pyproject.toml changes
        assert cli("create", f"{name}-3", form, *opts).code == 0
        assert sample_of(tmp_path / f"{name}-3") == "edited 2.0"
        assert len(builds(proj)) > done


def test_a_source_edit_alone_is_seen_when_the_project_lists_it(
    tmp_path: Path, store: Path, wh: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same version, only a module edited: rebuilt when ``cache-keys`` names it, served
    from the store when it does not (the rule's stated limit)."""
    proj = project(tmp_path / "proj")
    pyproject = proj / "pyproject.toml"
    monkeypatch.chdir(tmp_path)
    opts = [*offline_opts(store, wh), "--without-pip"]
    module = proj / "src" / "sample" / "__init__.py"
    assert cli("create", "e1", "./proj", *opts).code == 0
    module.write_text("VERSION = 'unlisted edit'\n")
    assert cli("create", "e2", "./proj", *opts).code == 0
    assert sample_of(tmp_path / "e2") == "0.1 2.0"  # the limit: not a key file
    text = pyproject.read_text() + '\n[tool.envstore]\ncache-keys = [{ file = "src/**/*.py" }]\n'
    pyproject.write_text(text)
    assert cli("create", "e3", "./proj", *opts).code == 0
    assert sample_of(tmp_path / "e3") == "unlisted edit 2.0"
    done = len(builds(proj))
    module.write_text("VERSION = 'listed edit'\n")
    assert cli("create", "e4", "./proj", *opts).code == 0
    assert sample_of(tmp_path / "e4") == "listed edit 2.0"
    assert len(builds(proj)) > done
    after = len(builds(proj))
    assert cli("create", "e5", "./proj", *opts).code == 0  # nothing changed since
    assert len(builds(proj)) == after


def test_a_local_wheel_rebuilt_in_place_is_taken_again(
    tmp_path: Path, store: Path, wh: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = project(tmp_path / "proj")
    wheel = built(tmp_path, proj, "wheel")
    monkeypatch.chdir(tmp_path)
    opts = [*offline_opts(store, wh), "--without-pip"]
    assert cli("create", "e1", wheel, *opts).code == 0
    project(proj, "0.1", source="VERSION = 'rebuilt'\n")
    assert built(tmp_path, proj, "wheel") == wheel
    assert cli("create", "e2", wheel, *opts).code == 0
    assert sample_of(tmp_path / "e2") == "rebuilt 2.0"


def test_an_http_archive_that_can_change_is_never_served_from_the_cache(
    tmp_path: Path, store: Path, wh: Path, cli: CLI, served: tuple[Path, str]
) -> None:
    root, url = served
    proj = project(tmp_path / "proj")
    sdist = built(tmp_path, proj, "sdist")
    (root / "main.tar.gz").write_bytes(sdist.read_bytes())
    opts = [*offline_opts(store, wh), "--without-pip"]
    assert cli("create", tmp_path / "e1", f"sample @ {url}/main.tar.gz", *opts).code == 0
    project(proj, "0.1", source="VERSION = 'changed upstream'\n")
    (root / "main.tar.gz").write_bytes(built(tmp_path, proj, "sdist").read_bytes())
    assert cli("create", tmp_path / "e2", f"sample @ {url}/main.tar.gz", *opts).code == 0
    assert sample_of(tmp_path / "e2") == "changed upstream 2.0"


# -- options: constraints, pre-releases, more indexes --------------------------------
def test_constraints_on_the_command_line_in_files_and_the_library(
    tmp_path: Path, store: Path, wh: Path, cli: CLI
) -> None:
    c = tmp_path / "constraints.txt"
    c.write_text("dep-one<2\n")
    opts = [*offline_opts(store, wh), "--without-pip"]
    assert cli("create", tmp_path / "e0", "dep-one", *opts).code == 0
    assert py(tmp_path / "e0", "import dep_one; print(dep_one.V)") == "2.0"
    got = cli("create", tmp_path / "e1", "dep-one", "-c", c, *opts)
    assert got.code == 0, got.err
    assert py(tmp_path / "e1", "import dep_one; print(dep_one.V)") == "1.0"
    reqs = tmp_path / "reqs.txt"
    reqs.write_text("-c constraints.txt\ndep-one\n")
    assert cli("create", tmp_path / "e2", "-r", reqs, *opts).code == 0
    assert py(tmp_path / "e2", "import dep_one; print(dep_one.V)") == "1.0"
    m = create_env(
        tmp_path / "e3",
        ["dep-one"],
        constraints=[str(c)],
        store=store,
        find_links=[str(wh)],
        no_index=True,
        with_pip=False,
    )
    assert [p.version for p in m.packages] == ["1.0"]
    assert "-c" in m.requirements  # what re-creates it
    c.write_text("dep-one<1.5\ndep-one!=1.0\n")  # an edit is seen: nothing fits now
    got = cli("create", tmp_path / "e4", "dep-one", "--constraint", c, *opts)
    assert got.code == 1 and "dep-one" in got.err


def test_pre_releases_only_with_pre(tmp_path: Path, store: Path, wh: Path, cli: CLI) -> None:
    opts = [*offline_opts(store, wh), "--without-pip"]
    assert cli("create", tmp_path / "e1", "dep-one", *opts).code == 0
    assert py(tmp_path / "e1", "import dep_one; print(dep_one.V)") == "2.0"
    got = cli("create", tmp_path / "e2", "dep-one", "--pre", *opts)
    assert got.code == 0, got.err
    assert py(tmp_path / "e2", "import dep_one; print(dep_one.V)") == "3.0b1"
    # The store alone (offline) answers as pip would with --pre, and without it
    for flag, want in (["--pre"], "3.0b1"), ([], "2.0"):
        got = cli("create", tmp_path / f"off{flag}", "dep-one", *flag, "--offline",
                  "--store", store, "--without-pip")  # fmt: skip
        assert got.code == 0, got.err
        assert py(tmp_path / f"off{flag}", "import dep_one; print(dep_one.V)") == want
    m = create_env(tmp_path / "e3", ["dep-one"], pre=True, store=store, offline=True,
                   with_pip=False)  # fmt: skip
    assert [p.version for p in m.packages] == ["3.0b1"]


def _simple_index(root: Path, wheels: list[Path]) -> None:
    """A PEP 503 index of ``wheels`` at ``root``."""
    for whl in wheels:
        name = whl.name.split("-")[0].replace("_", "-").lower()
        d = root / name
        d.mkdir(parents=True, exist_ok=True)
        (d / whl.name).write_bytes(whl.read_bytes())
        links = "".join(f'<a href="{w.name}">{w.name}</a>\n' for w in sorted(d.glob("*.whl")))
        (d / "index.html").write_text(f"<html><body>\n{links}</body></html>\n")


def test_an_extra_index_url_is_searched(
    tmp_path: Path, store: Path, wh: Path, cli: CLI, served: tuple[Path, str]
) -> None:
    root, url = served
    _simple_index(root / "main", [wh / "dep_one-1.0-py3-none-any.whl"])
    _simple_index(root / "extra", [wheelmaker.build_wheel(tmp_path / "x", "only-extra", "1.0")])
    opts = ["--store", store, "--without-pip", "--index-url", f"{url}/main/"]
    got = cli("create", tmp_path / "e0", "only-extra", *opts)
    assert got.code == 1
    got = cli("create", tmp_path / "e1", "only-extra", *opts, "--extra-index-url", f"{url}/extra/")
    assert got.code == 0, got.err
    from envstore.model.manifest import Manifest

    m = Manifest.load(tmp_path / "e1")
    assert m.sources.extra_index_urls == (f"{url}/extra/",)
    m = create_env(
        tmp_path / "e2",
        ["only-extra", "dep-one"],
        store=store,
        with_pip=False,
        sources=__import__("envstore").PackageSources(
            index_url=f"{url}/main/", extra_index_urls=[f"{url}/extra/"]
        ),
    )
    assert {p.name for p in m.packages} == {"only-extra", "dep-one"}


# -- editable lines in requirements files -------------------------------------------
def test_editable_lines_in_a_file_are_installed_editable_not_frozen_into_the_store(
    tmp_path: Path, store: Path, wh: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = project(tmp_path / "repo" / "proj")
    reqs = tmp_path / "repo" / "requirements.txt"
    reqs.write_text("dep-one\n-e ./proj\n")
    monkeypatch.chdir(tmp_path)
    got = cli("create", "env", "-r", reqs, *offline_opts(store, wh), "--without-pip")
    assert got.code == 0, got.err
    m = Manifest.load(tmp_path / "env")
    assert [(e.name, str(e.path)) for e in m.editables] == [("sample", str(proj))]
    assert {p.name for p in m.packages} == {"dep-one"}  # the project is not in the store
    assert builds(proj) == ["editable"]
    (proj / "src" / "sample" / "__init__.py").write_text("VERSION = 'edited'\n")
    assert py(tmp_path / "env", "import sample; print(sample.VERSION)") == "edited"


def test_editable_lines_reach_the_request_apart(tmp_path: Path) -> None:
    from envstore.resolve.reqfiles import pip_arguments, requirement_lines
    from envstore.resolve.request import Request

    (tmp_path / "a" / "proj").mkdir(parents=True)
    (tmp_path / "a" / "nested.txt").write_text("--editable=proj\nsolo\n")
    top = tmp_path / "top.txt"
    top.write_text("-e a/proj\n-r a/nested.txt\n-e git+https://example.invalid/x.git#egg=x\n")
    request = Request(requirement_files=(str(top),), editables=("/given",))
    proj = str(tmp_path / "a" / "proj")
    assert request.editables == ("/given", proj, proj, "git+https://example.invalid/x.git#egg=x")
    assert request.editable_origins[proj] == str(top)
    assert requirement_lines(request) == ["solo"]  # never an ordinary requirement
    work = tmp_path / "work"
    work.mkdir()
    args = pip_arguments(request, work)
    given = "".join(Path(a).read_text() for a in work.iterdir())
    assert "-e" not in given and "--editable" not in given and args[0] == "-r"


def test_sync_takes_the_forms_and_options(
    tmp_path: Path, store: Path, wh: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = project(tmp_path / "proj")
    c = tmp_path / "c.txt"
    c.write_text("dep-one<2\n")
    monkeypatch.chdir(proj)
    opts = [*offline_opts(store, wh), "--without-pip"]
    got = cli("sync", tmp_path / "env", ".", "-c", c, *opts)
    assert got.code == 0, got.err
    assert sample_of(tmp_path / "env") == "0.1 1.0"
    runs = pip_runs(monkeypatch)
    monkeypatch.chdir(tmp_path)  # the same project, said from elsewhere: the cache
    assert cli("sync", tmp_path / "env", "./proj", "-c", c, *opts).code == 0
    assert runs == []
    got = cli("sync", tmp_path / "env", "dep-one", "--pre", *opts)
    assert got.code == 0, got.err
    assert py(tmp_path / "env", "import dep_one; print(dep_one.V)") == "3.0b1"


def test_an_unchanged_project_is_served_from_the_store_in_any_request(
    tmp_path: Path, store: Path, wh: Path, cli: CLI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a project built into is remembered under its stamp: another request naming
    it (another form, other requirements, a requirements file) runs neither pip nor
    the backend until the stamp changes."""
    proj = project(tmp_path / "proj")
    monkeypatch.chdir(tmp_path)
    opts = [*offline_opts(store, wh), "--without-pip"]
    assert cli("create", "e1", "./proj", *opts).code == 0
    done = builds(proj)
    runs = pip_runs(monkeypatch)
    reqs = tmp_path / "sub" / "requirements.txt"
    reqs.parent.mkdir()
    reqs.write_text("../proj[more]\n")
    for i, args in enumerate(
        [["./proj", "extra-dep"], [f"sample @ {proj.as_uri()}", "dep-one<2"], ["-r", reqs]]
    ):
        got = cli("create", f"e{i + 2}", *args, *opts)
        assert got.code == 0, got.err
        assert sample_of(tmp_path / f"e{i + 2}").startswith("0.1")
    assert runs == [] and builds(proj) == done
    project(proj, "0.2")
    assert cli("create", "e9", "./proj", "extra-dep", *opts).code == 0
    assert sample_of(tmp_path / "e9") == "0.2 2.0" and runs
