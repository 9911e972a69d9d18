"""Resolving ``--no-index --find-links DIR`` without pip: the same choice pip makes."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
import wheelmaker
from conftest import envstore_cmd, run

import envstore.resolve.pip
import envstore.resolve.resolver
from envstore import create_env
from envstore.errors import ResolutionError


class _PipCalled(Exception):
    pass


def _no_pip(*args: object, **kwargs: object) -> None:
    raise _PipCalled


def _tricky_wheelhouse(wh: Path) -> None:
    """Pre-releases, a wheel for a Python that does not exist, extras, markers and
    build tags."""
    build = wheelmaker.build_wheel
    reqs = ["dep-a>=1", "dep-b[fast]", "dep-c; python_version < '3'", "dep-z"]
    build(wh, "top-pkg", "1.0", requires=reqs)
    for n in (1, 2, 10):  # the same version with build tags: pip takes the highest
        plain = build(wh, "dep-z", "1.0", files={"dep_z/__init__.py": f"BUILD = {n}\n"})
        plain.rename(wh / f"dep_z-1.0-{n}-py3-none-any.whl")
    build(wh, "dep-a", "1.5")
    build(wh, "dep-a", "2.0b1")  # pre-release: not chosen for ">=1"
    build(wh, "dep-a", "1.9", metadata_extra=["Requires-Python: >=99"])  # not for this Python
    build(
        wh,
        "dep-b",
        "1.0",
        requires=["dep-x; extra == 'fast'"],
        metadata_extra=["Provides-Extra: fast"],
    )
    build(wh, "dep-x", "3.0")
    build(wh, "dep-x", "2.0")
    build(wh, "dep-c", "1.0")  # its marker is false
    build(wh, "dep-y", "1.0", requires=["dep-x>=3"])


def _versions(manifest: envstore.Manifest) -> dict[str, str]:
    return {p.name: p.version for p in manifest.packages}


def test_local_wheels_resolve_without_pip_as_pip_does(
    tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wh = tmp_path / "wh"
    _tricky_wheelhouse(wh)
    opts = dict(store=store, find_links=[str(wh)], no_index=True, with_pip=False)

    with monkeypatch.context() as m:
        m.setattr(envstore.resolve.pip, "from_pip", _no_pip)
        local = create_env(tmp_path / "local", ["top-pkg"], **opts)  # type: ignore[arg-type]
    # pip itself (upgrade skips the store and the local resolver) chooses the same
    by_pip = create_env(tmp_path / "pip", ["top-pkg"], upgrade=True, **opts)  # type: ignore[arg-type]
    expected = {"top-pkg": "1.0", "dep-a": "1.5", "dep-b": "1.0", "dep-x": "3.0", "dep-z": "1.0"}
    assert _versions(local) == _versions(by_pip) == expected
    wheels = {p.name: p.wheel for p in local.packages}
    assert wheels == {p.name: p.wheel for p in by_pip.packages}
    assert wheels["dep-z"] == "dep_z-1.0-10-py3-none-any.whl"
    assert {p.name for p in local.packages if p.requested} == {"top-pkg"}
    proc = run(
        [tmp_path / "local" / "bin" / "python", "-c", "import dep_x; print(dep_x.__version__)"]
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "3.0", proc.stderr

    # an explicit pre-release is taken, as pip takes it
    with monkeypatch.context() as m:
        m.setattr(envstore.resolve.pip, "from_pip", _no_pip)
        pre = create_env(tmp_path / "pre", ["dep-a>=2.0b1"], **opts)  # type: ignore[arg-type]
    assert _versions(pre) == {"dep-a": "2.0b1"}


def test_a_wheel_added_to_the_directory_is_chosen_next_time(
    tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The resolution cache must not hide what pip would now choose.
    wh = tmp_path / "wh"
    wheelmaker.build_wheel(wh, "grows", "1.0")
    opts = dict(store=store, find_links=[str(wh)], no_index=True, with_pip=False)
    monkeypatch.setattr(envstore.resolve.pip, "from_pip", _no_pip)
    first = create_env(tmp_path / "one", ["grows"], **opts)  # type: ignore[arg-type]
    again = create_env(tmp_path / "again", ["grows"], **opts)  # type: ignore[arg-type]
    assert _versions(first) == _versions(again) == {"grows": "1.0"}
    wheelmaker.build_wheel(wh, "grows", "1.1")
    newer = create_env(tmp_path / "two", ["grows"], **opts)  # type: ignore[arg-type]
    assert _versions(newer) == {"grows": "1.1"}
    # Taken away again: the store still has 1.1, but pip could not choose it.
    (wh / "grows-1.1-py3-none-any.whl").unlink()
    back = create_env(tmp_path / "three", ["grows"], **opts)  # type: ignore[arg-type]
    assert _versions(back) == {"grows": "1.0"}


def test_envs_inside_the_wheel_directory_do_not_defeat_the_cache(
    tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # envstore sync .venv -f . : the directory changes with every env made in it.
    wh = tmp_path / "project"
    wheelmaker.build_wheel(wh, "steady", "1.0")
    opts = dict(store=store, find_links=[str(wh)], no_index=True, with_pip=False)
    create_env(wh / ".venv", ["steady"], **opts)  # type: ignore[arg-type]
    (wh / "notes.txt").write_text("edited\n")

    def no_resolving(*args: object, **kwargs: object) -> None:
        raise AssertionError("resolved again instead of from the cache")

    monkeypatch.setattr(envstore.resolve.resolver, "from_store", no_resolving)
    again = create_env(wh / ".venv2", ["steady"], **opts)  # type: ignore[arg-type]
    assert _versions(again) == {"steady": "1.0"}


@pytest.mark.parametrize(
    "line",
    [
        "-r base/pins.txt",
        "-rbase/pins.txt",
        "--requirement=base/pins.txt",
        "--requirement base/pins.txt  # pinned",
        "--requirem base/pins.txt",
        "-c base/pins.txt",
        "--constraint=base/pins.txt",
        "-r \\\n  base/pins.txt",
        "-r ${PINS_DIR}/pins.txt",
        "-r 'base/pins.txt'",
    ],
)
def test_every_way_pip_includes_a_file_is_followed(
    tmp_path: Path, line: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An edit to the included file must change the resolution cache's key.
    monkeypatch.setenv("PINS_DIR", "base")
    (tmp_path / "base").mkdir()
    pins = tmp_path / "base" / "pins.txt"
    req = tmp_path / "requirements.txt"
    req.write_text(line + "\n")
    interp = types.SimpleNamespace(soabi="cpython-311", version="3.11.7", platform="linux")
    request = envstore.resolve.resolver.Request([], requirement_files=[str(req)])
    keys = set()
    for version in ("1.0", "2.0"):
        pins.write_text(f"pinned=={version}\n")
        keys.add(envstore.resolve.resolver.cache_keys(request, interp)[0])  # type: ignore[arg-type]
    assert len(keys) == 2


@pytest.mark.parametrize("line", ["-f wheels", "--find-links=wheels", "-fwheels"])
def test_a_wheel_directory_named_in_a_requirements_file_is_listed(
    tmp_path: Path, line: str
) -> None:
    # requirements.txt says "-f wheels": a wheel added there must miss the cache too.
    (tmp_path / "wheels").mkdir()
    req = tmp_path / "requirements.txt"
    req.write_text(f"{line}\nsteady\n")
    interp = types.SimpleNamespace(soabi="cpython-311", version="3.11.7", platform="linux")
    request = envstore.resolve.resolver.Request([], requirement_files=[str(req)])
    before = envstore.resolve.resolver.cache_keys(request, interp)[0]  # type: ignore[arg-type]
    wheelmaker.build_wheel(tmp_path / "wheels", "steady", "2.0")
    assert envstore.resolve.resolver.cache_keys(request, interp)[0] != before  # type: ignore[arg-type]


def test_a_wheel_directory_in_pip_find_links_is_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "wheels").mkdir()
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "wheels"))
    interp = types.SimpleNamespace(soabi="cpython-311", version="3.11.7", platform="linux")
    request = envstore.resolve.resolver.Request(["steady"])
    before = envstore.resolve.resolver.cache_keys(request, interp)[0]  # type: ignore[arg-type]
    wheelmaker.build_wheel(tmp_path / "wheels", "steady", "2.0")
    assert envstore.resolve.resolver.cache_keys(request, interp)[0] != before  # type: ignore[arg-type]


def test_a_wheel_rebuilt_at_the_same_version_is_taken_as_pip_would(
    tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A developer rebuilds ./wheels/rebuilt-1.0-...whl in place: pip would install the
    # new file; the store's entry of the old file (another hash) must not stand in.
    wh = tmp_path / "wh"
    opts = dict(store=store, find_links=[str(wh)], no_index=True, with_pip=False)
    monkeypatch.setattr(envstore.resolve.pip, "from_pip", _no_pip)
    check = "import rebuilt; print(rebuilt.X)"
    for n, x in enumerate([1, 2, 2, 1]):
        wheelmaker.build_wheel(wh, "rebuilt", "1.0", files={"rebuilt.py": f"X = {x}\n"})
        env = tmp_path / f"env{n}"
        create_env(env, ["rebuilt"], **opts)  # type: ignore[arg-type]
        out = run([env / "bin" / "python", "-c", check])
        assert out.returncode == 0 and out.stdout == f"{x}\n", out.stderr
    # Two files, two entries: the last create found the first file's entry again.
    assert len(list((store / "entries" / "pure" / "rebuilt").iterdir())) == 2


def test_an_edit_to_an_included_requirements_file_is_seen(
    tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # requirements.txt says "-r base/pins.txt"; pins.txt, not requirements.txt, changes.
    wh = tmp_path / "wh"
    for version in ("1.0", "2.0"):
        wheelmaker.build_wheel(wh, "pinned", version)
    (tmp_path / "base").mkdir()
    pins = tmp_path / "base" / "pins.txt"
    req = tmp_path / "requirements.txt"
    req.write_text("-r base/pins.txt\n")
    monkeypatch.setattr(envstore.resolve.pip, "from_pip", _no_pip)  # includes are followed
    opts = dict(store=store, find_links=[str(wh)], no_index=True, with_pip=False)
    for n, version in enumerate(("1.0", "2.0", "1.0")):
        pins.write_text(f"pinned=={version}\n")
        made = create_env(tmp_path / f"env{n}", [], requirement_files=[str(req)], **opts)  # type: ignore[arg-type]
        assert _versions(made) == {"pinned": version}
    # Offline, from the store alone (a new file, so no remembered answer either).
    req.write_text("# dev\n-r base/pins.txt\n")
    made = create_env(
        tmp_path / "offline", [], requirement_files=[str(req)], store=store, offline=True,
        with_pip=False,
    )  # fmt: skip
    assert _versions(made) == {"pinned": "1.0"}
    # Per-requirement options (pip-compile --generate-hashes) are pip's to read.
    (tmp_path / "base" / "hashed.txt").write_text(f"pinned==1.0 --hash=sha256:{'0' * 64}\n")
    req.write_text("-r base/hashed.txt\n")
    with pytest.raises(_PipCalled):
        create_env(tmp_path / "hashed", [], requirement_files=[str(req)], **opts)  # type: ignore[arg-type]
    req.write_text("-r base/missing.txt\n")
    with pytest.raises(ResolutionError, match=r"missing\.txt \(included by .*requirements\.txt"):
        create_env(tmp_path / "e", [], requirement_files=[str(req)], **opts)  # type: ignore[arg-type]


def test_local_resolution_defers_to_pip_when_pip_might_choose_otherwise(
    tmp_path: Path, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wh = tmp_path / "wh"
    _tricky_wheelhouse(wh)
    monkeypatch.setattr(envstore.resolve.pip, "from_pip", _no_pip)
    opts = dict(store=store, find_links=[str(wh)], with_pip=False)
    cases = {
        "the index is on": (["dep-x"], dict(opts)),
        "a conflict (pip may backtrack)": (["dep-x<3", "dep-y"], dict(opts, no_index=True)),
        "nothing fits": (["dep-a>=5"], dict(opts, no_index=True)),
    }
    # an sdist in the directory: pip would weigh building it
    for i, sdist in enumerate(["dep_x-4.0.tar.gz", "dep_x-4.0.tgz", "Dep.X-4.0-1.zip"]):
        d = tmp_path / f"with-sdist-{i}"
        wheelmaker.build_wheel(d, "dep-x", "3.0")
        (d / sdist).write_bytes(b"not really an sdist")
        cases[f"an sdist {sdist}"] = (["dep-x"], dict(opts, no_index=True, find_links=[str(d)]))
    # a wheel whose METADATA says another version: pip skips it
    odd = tmp_path / "odd"
    wheelmaker.build_wheel(odd, "dep-x", "3.0").rename(odd / "dep_x-3.1-py3-none-any.whl")
    cases["metadata unlike the file name"] = (
        ["dep-x"],
        dict(opts, no_index=True, find_links=[str(odd)]),
    )
    for why, (reqs, kw) in cases.items():
        with pytest.raises(_PipCalled):
            create_env(tmp_path / "env", reqs, **kw)  # type: ignore[arg-type]
        assert not (tmp_path / "env").exists(), why
    # pip's own configuration can widen or narrow its choice
    conf = tmp_path / "pip.conf"
    conf.write_text(f"[global]\nfind-links = {tmp_path / 'more'}\n")
    local_only = dict(opts, no_index=True)
    for var, value in (("PIP_CONFIG_FILE", str(conf)), ("PIP_PRE", "1")):
        with monkeypatch.context() as m:
            m.setenv(var, value)
            with pytest.raises(_PipCalled):
                create_env(tmp_path / "env", ["dep-x"], **local_only)  # type: ignore[arg-type]


def test_local_resolution_reports_pips_error_offline(tmp_path: Path, store: Path) -> None:
    wh = tmp_path / "wh"
    _tricky_wheelhouse(wh)
    with pytest.raises(ResolutionError, match="dep-a"):
        create_env(
            tmp_path / "env",
            ["dep-a>=5"],
            store=store,
            find_links=[str(wh)],
            no_index=True,
            with_pip=False,
        )


def test_bytecode_workers_survive_a_flood_of_warnings(tmp_path: Path, store: Path) -> None:
    # ~1 MB of SyntaxWarnings on the workers' stderr: a pipe nobody reads until the
    # end would fill, block the worker, stop it reading paths and block envstore.
    wh = tmp_path / "wh"
    noisy = "".join(f"def f{i}(x):\n    return x is {i + 1}\n" for i in range(200))
    files = {f"noisy/m{i}.py": noisy for i in range(30)}
    wheelmaker.build_wheel(wh, "noisy", "1.0", files={"noisy/__init__.py": "", **files})
    env = tmp_path / "env"
    proc = run(
        [*envstore_cmd(), "--store", store, "-q", "create", env, "--no-index", "-f", wh, "noisy"]
    )
    assert proc.returncode == 0, proc.stderr
    check = "import noisy.m0, sys; print(noisy.m0.__cached__)"
    out = run([env / "bin" / "python", "-c", check], extra_env={"PYTHONDONTWRITEBYTECODE": "1"})
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()).exists()  # compiled into the store at create
