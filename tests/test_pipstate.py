"""pip and uv inside an env (#22): what they put into site-packages is part of the env's
state (show, list, lock, sync), doctor notices what they broke or duplicated, and
neither can change the store through the env."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import stat
import sys
from pathlib import Path

import pytest
import tomli
import wheelmaker
from conftest import CLI, run

from envstore.env.pipstate import site_dists


def _create(cli: CLI, store: Path, env: Path, *args: str | Path) -> None:
    made = cli("--store", store, "create", env, "--no-index", *args)
    assert made.code == 0, made.err


def _pip(env: Path, *args: str | Path) -> str:
    done = run([env / "bin" / "python", "-m", "pip", *args])
    assert done.returncode == 0, done.stderr
    return done.stdout


def _problems(cli: CLI, env: Path) -> dict[str, dict[str, str]]:
    res = cli("doctor", "--json", env)
    [report] = json.loads(res.out)
    return {p["code"]: p for p in report["problems"]}


def _uv() -> str:
    found = shutil.which("uv", path=os.path.dirname(sys.executable)) or shutil.which("uv")
    if found is None:
        pytest.skip("uv is not installed (pip install -e '.[test]')")
    return found


def _uv_env(tmp_path: Path, uv: str) -> dict[str, str]:
    return {
        "UV_NO_CONFIG": "1",
        "UV_CACHE_DIR": str(tmp_path / "uv-cache"),
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_OFFLINE": "1",
        "PATH": f"{os.path.dirname(uv)}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def _snapshot(store: Path) -> dict[str, tuple[int, str]]:
    """Every file, link and directory of the store's entries and views: mode and content."""
    found = {}
    for top in ("entries", "views"):
        for dirpath, dirs, files in os.walk(store / top):
            for name in dirs + files:
                path = os.path.join(dirpath, name)
                st = os.lstat(path)
                if stat.S_ISREG(st.st_mode):
                    what = hashlib.sha256(Path(path).read_bytes()).hexdigest()
                elif stat.S_ISLNK(st.st_mode):
                    what = os.readlink(path)
                else:
                    what = ""
                found[path] = (st.st_mode, what)
    return found


def test_pip_installed_packages_are_shown_listed_locked_and_named_by_sync(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path
) -> None:
    wh = tmp_path / "wh"
    wh.mkdir()
    wheel = wheelmaker.build_wheel(wh, "extra-tool", "1.0", files={"extra_tool.py": "X = 1\n"})
    env = tmp_path / "env"
    _create(cli, store, env, "-f", wheelhouse, "solo")
    _pip(env, "install", "-q", "--no-index", "-f", wh, "extra-tool")

    shown = cli("show", env)
    assert shown.code == 0, shown.err
    assert "installed into site-packages, not from the store:" in shown.out
    assert "  extra-tool==1.0  (by pip)" in shown.out
    data = json.loads(cli("show", env, "--json").out)
    [extra] = data["site-packages"]
    assert (extra["name"], extra["version"], extra["installer"]) == ("extra-tool", "1.0", "pip")
    listed = json.loads(cli("--store", store, "list", "--json").out)
    [mine] = [e for e in listed if e["path"] == str(env)]
    assert [d["name"] for d in mine["site-packages"]] == ["extra-tool"]
    assert "(+1 pip/uv)" in cli("--store", store, "list").out

    # Not a wheel the store holds: the lock would rebuild another env, so it refuses.
    refused = cli("lock", env, "-o", "-")
    assert refused.code == 1
    assert "extra-tool 1.0 (installed by pip)" in refused.err
    assert f"envstore install {env} extra-tool==1.0" in refused.err
    # Once the store holds that very wheel, the lock names it.
    _create(cli, store, tmp_path / "other", "-f", wh, "--without-pip", "extra-tool")
    locked = cli("lock", env, "-o", "-")
    assert locked.code == 0, locked.err
    lock = tomli.loads(locked.out)
    packages = {p["name"]: p for p in lock["packages"]}
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert packages["extra-tool"]["wheels"][0]["hashes"] == {"sha256": digest}
    assert "extra-tool" in lock["tool"]["envstore"]["requested"] and "solo" in packages

    # As pip -e records an editable project (PEP 610): a source directory, not a wheel.
    info = env / data["python"]["purelib"] / extra["dist_info"]
    url = (tmp_path / "proj").as_uri()
    (info / "direct_url.json").write_text(json.dumps({"url": url, "dir_info": {"editable": True}}))
    assert f"(by pip, editable: {url})" in cli("show", env).out
    assert "editable" in cli("lock", env, "-o", "-").err

    synced = cli("sync", env, "--no-index", "-f", wheelhouse, "solo")
    assert synced.code == 0, synced.err
    assert f" - extra-tool 1.0 (installed by pip, editable: {url})" in synced.out
    assert "site-packages" not in cli("show", env).out


def test_a_pip_install_uninstall_cycle_is_reported_and_relink_restores_the_scripts(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path
) -> None:
    wh = tmp_path / "wh"
    wh.mkdir()
    wheelmaker.build_wheel(
        wh,
        "hello-app",
        "2.0",
        files={"hello_app/__init__.py": "def main():\n    return 0\n"},
        entry_points={"console_scripts": {"hello": "hello_app:main"}},
    )
    env = tmp_path / "env"
    _create(cli, store, env, "-f", wheelhouse, "hello-app")
    _pip(env, "install", "-q", "--no-index", "-f", wh, "hello-app==2.0")
    _pip(env, "uninstall", "-y", "hello-app")
    assert not os.path.lexists(env / "bin" / "hello")  # the store's hello-app 1.0 is back

    problems = _problems(cli, env)
    assert set(problems) == {"scripts-missing"}
    assert problems["scripts-missing"]["message"].endswith(": hello")
    fix = shlex.split(problems["scripts-missing"]["fix"])
    assert fix == ["envstore", "relink", str(env)]
    fixed = cli(*fix[1:])
    assert fixed.code == 0, fixed.err
    hello = run([env / "bin" / "hello"])
    assert hello.returncode == 3 and "hello from" in hello.stdout  # 1.0's, from the store
    assert run([env / "bin" / "hello-data"]).returncode == 0
    assert _problems(cli, env) == {}


def test_uv_duplicates_are_reported_and_removed_and_uninstalls_leave_the_store_alone(
    cli: CLI, wheelhouse: Path, tmp_path: Path, store: Path
) -> None:
    uv = _uv()
    uv_env = _uv_env(tmp_path, uv)
    env = tmp_path / "env"
    _create(cli, store, env, "-f", wheelhouse, "hello-app", "solo")
    py = env / "bin" / "python"
    lock_before = cli("lock", env, "-o", "-").out
    before = _snapshot(store)

    # uv looks only in site-packages: it sees nothing, and installs again what the
    # store already serves.
    listed = run([uv, "pip", "list", "--python", py], extra_env=uv_env)
    assert listed.returncode == 0 and "solo" not in listed.stdout
    uv_install = [uv, "pip", "install", "--python", py, "--no-index", "--find-links", wheelhouse]
    added = run([*uv_install, "solo", "hello-app"], extra_env=uv_env)
    assert added.returncode == 0, added.stderr
    assert "  solo==0.5  (by uv)" in cli("show", env).out
    problems = _problems(cli, env)
    assert set(problems) == {"duplicate"}
    assert "solo 0.5 (installed by uv)" in problems["duplicate"]["message"]
    assert "hello-app 1.0 (installed by uv)" in problems["duplicate"]["message"]
    fix = problems["duplicate"]["fix"]
    assert fix.startswith(f"uv pip uninstall --python {py} ") and " solo" in fix
    relocked = cli("lock", env, "-o", "-")
    assert relocked.out == lock_before, relocked.err  # the same wheels, from the store

    removed = run(shlex.split(fix), extra_env=uv_env)
    assert removed.returncode == 0, removed.stderr
    purelib = json.loads(cli("show", env, "--json").out)["python"]["purelib"]
    assert site_dists(env / purelib) == []
    problems = _problems(cli, env)
    assert set(problems) == {"scripts-missing"}  # uv's hello replaced envstore's, then went
    assert cli("relink", env).code == 0
    assert _problems(cli, env) == {}

    # Uninstalling a store package: uv finds nothing, pip refuses and says so (exit 0);
    # whoever runs them (root too), the store's files stay as they were.
    gone = run([uv, "pip", "uninstall", "--python", py, "solo"], extra_env=uv_env)
    assert "not installed" in gone.stderr
    pip_out = run([py, "-m", "pip", "uninstall", "-y", "solo"])
    assert pip_out.returncode == 0
    assert "outside environment" in pip_out.stdout
    assert "No files were found to uninstall" in pip_out.stdout + pip_out.stderr
    assert run([py, "-c", "import solo"]).returncode == 0
    assert _snapshot(store) == before


def test_site_dists_reads_site_packages_as_untrusted_data(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    site.mkdir()

    def dist(dirname: str, **files: str | bytes) -> Path:
        info = site / dirname
        info.mkdir()
        for name, text in files.items():
            (info / name.replace("_json", ".json")).write_bytes(
                text if isinstance(text, bytes) else text.encode()
            )
        return info

    dist("Good_Pkg-1.0.dist-info", INSTALLER="uv\n", REQUESTED="")
    dist("junk_installer-2.0.dist-info", INSTALLER="pip; rm -rf /\n")
    dist("big_installer-1.0.dist-info", INSTALLER=b"p" * 100_000)
    dist("notaversion-abc-def.dist-info")
    dist("badversion-1..0.dist-info")
    dist(
        "weird_url-1.0.dist-info",
        direct_url_json='{"url": "a\\nb", "dir_info": {"editable": true}}',
    )
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "INSTALLER").write_text("pip\n")
    (outside / "direct_url.json").write_text('{"url": "file:///x", "dir_info": {"editable": true}}')
    linked = dist("linked_files-1.0.dist-info")
    os.symlink(outside / "INSTALLER", linked / "INSTALLER")
    os.symlink(outside / "direct_url.json", linked / "direct_url.json")
    os.symlink(outside, site / "linked_dir-1.0.dist-info")
    (site / "afile-1.0.dist-info").write_text("")

    found = {d.name: d for d in site_dists(site)}
    assert sorted(found) == [
        "big-installer",
        "good-pkg",
        "junk-installer",
        "linked-files",
        "weird-url",
    ]
    assert (found["good-pkg"].installer, found["good-pkg"].requested) == ("uv", True)
    assert found["junk-installer"].installer == ""
    assert found["big-installer"].installer == ""
    assert found["linked-files"].installer == "" and found["linked-files"].editable == ""
    assert found["weird-url"].editable == "?"
    assert "unknown installer" in found["junk-installer"].describe()

    os.symlink(site, tmp_path / "site-link")
    assert site_dists(tmp_path / "site-link") == []
