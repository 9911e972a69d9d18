"""Installing into an envstore-made tox env: every install is a sync of the env to
all it was asked to hold so far, then the project into its own site-packages.

tox installs in steps (``deps``, ``dependency-groups``, the package's own
dependencies, then the package) and records each step in ``.tox-info.json``;
this installer keeps tox's rules (a requirement removed means recreate) and the
union of the steps in ``envstore-request.json`` beside tox's files, and brings
the env to that union with :func:`envstore.env.lifecycle.sync_env`: one
resolution for all of it, so ``constrain_package_deps`` holds by construction.
A sync makes site-packages anew, so the package (a wheel or a PEP 660 editable
wheel from the package env) is installed after one. tox builds the package every
run; when its wheels install the same files as last run's (their RECORDs) into
an env nobody changed since, the run does nothing. An sdist (``package = sdist``)
is built and installed by the env's pip, as tox's virtualenv runner does it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.requirements import Requirement
from tox.execute.request import StdinSource
from tox.tox_env.errors import Fail, Recreate
from tox.tox_env.package import PathPackage
from tox.tox_env.python.package import EditablePackage, SdistPackage, WheelPackage
from tox.tox_env.python.pip.pip_install import Pip
from tox.tox_env.python.pip.req_file import PythonDeps

from envstore.errors import EnvstoreError
from envstore.plugins.common import env_fingerprint, install_wheel, sources_from_env, wheel_digest

if TYPE_CHECKING:
    from tox.tox_env.python.virtual_env.api import VirtualEnv

__all__ = ["EnvstoreInstaller", "sync_into", "venv_of"]

STATE = "envstore-request.json"
VENV = "venv"  # the envstore env, inside tox's env directory when tox keeps files there
TOX_FILES = (".tox-info.json",)  # tox's own files in the env directory (``tox devenv DIR``)


def venv_of(tox_env: VirtualEnv) -> Path:
    """Where ``tox_env``'s envstore env is: its ``env_dir`` itself (``tox devenv DIR``,
    a configured ``env_dir``), or ``env_dir/venv`` when tox keeps its ``log/`` or
    ``tmp/`` directory inside ``env_dir`` (the default ``.tox/NAME``): an envstore env
    is replaced by a rename of its whole directory, which must not take those along."""
    env_dir = tox_env.env_dir
    for own in (tox_env.env_log_dir, tox_env.env_tmp_dir):
        if own == env_dir or env_dir in own.parents:
            return env_dir / VENV
    return env_dir


_DEFAULT_COMMAND = ["python", "-I", "-m", "pip", "install"]


class EnvstoreInstaller(Pip):
    """tox's pip installer's settings (``pip_pre``, ``constraints``,
    ``constrain_package_deps``, ``list_dependencies_command``), envstore's installs."""

    _env: VirtualEnv

    def install(self, arguments: object, section: str, of_type: str) -> None:
        self._check_install_command()
        if isinstance(arguments, PythonDeps):
            self._install_deps_file(arguments, section, of_type)
        elif isinstance(arguments, Sequence):
            self._install_list(arguments, section, of_type)
        else:
            raise Fail(f"the envstore runner cannot install {arguments!r}; use runner = virtualenv")

    def _check_install_command(self) -> None:
        """A custom ``install_command`` cannot be honoured (envstore installs): refused."""
        args = [str(a) for a in self._env.conf["install_command"].args]
        if args[:5] != _DEFAULT_COMMAND or not set(args[5:]) <= {"{packages}", "--pre"}:
            raise Fail(
                f"install_command = {' '.join(args)} is not used by runner = envstore (envstore"
                " installs the packages); remove it, or use runner = virtualenv for this env"
            )

    def _setting_constraints(self) -> list[str]:
        """The files (or URLs) of the env's ``constraints`` setting."""
        try:
            return [str(line) for line in self.constraints.lines()]
        except ValueError as exc:
            raise Fail(f"{exc} in constraints of {self._env.name}") from None

    def _install_deps_file(self, deps: PythonDeps, section: str, of_type: str) -> None:
        try:
            options, lines = deps.unroll()
        except ValueError as exc:
            raise Fail(f"{exc} in deps of {self._env.name}") from None
        pre, index = _options(options)
        pre = pre or bool(self._env.conf["pip_pre"])
        requirements = [line for line in lines if not line.startswith("-c ")]
        constraints = [line[3:].strip() for line in lines if line.startswith("-c ")]
        constraints += self._setting_constraints()
        new: dict[str, object] = {
            "options": options,
            "requirements": requirements,
            "constraints": constraints,
            "env": self._install_env_vars(),
        }
        with self._env.cache.compare(new, section, of_type) as (eq, old):
            if eq:
                return
            if old is not None:
                if old.get("options") != options or old.get("constraints") != constraints:
                    raise Recreate("changed deps options or constraints")
                if removed := set(old.get("requirements", ())) - set(requirements):
                    raise Recreate(f"requirements removed: {' '.join(sorted(removed))}")
            sync_into(self._env, requirements, constraints, pre=pre, index=index)

    def _install_list(self, arguments: Sequence[object], section: str, of_type: str) -> None:
        requirements: list[str] = []
        packages: list[WheelPackage | EditablePackage | SdistPackage] = []
        for arg in arguments:
            if isinstance(arg, Requirement):
                requirements.append(str(arg))
            elif isinstance(arg, (WheelPackage, EditablePackage, SdistPackage)):
                requirements.extend(str(r) for r in arg.deps)
                packages.append(arg)
            else:
                raise Fail(
                    f"runner = envstore cannot install {arg!r}: package = editable-legacy is not"
                    " supported; use package = editable (PEP 660), wheel, sdist or sdist-wheel"
                )
        requirements.sort()
        req_of_type = f"{of_type}_deps" if packages else of_type
        changed = False
        cache_value = {"req": requirements, "env": self._install_env_vars()}
        with self._env.cache.compare(cache_value, section, req_of_type) as (eq, old):
            if not eq:
                old_req = old["req"] if isinstance(old, dict) else (old or [])
                if removed := set(old_req) - set(requirements):
                    raise Recreate(f"dependencies removed: {', '.join(sorted(removed))}")
                changed = True
        venv = venv_of(self._env)
        wheels = [p for p in packages if not isinstance(p, SdistPackage)]
        if wheels and not changed and _same_install(self._env, venv, wheels):
            return  # the same wheels into the env as the last run left it: nothing to do
        if changed or wheels:  # a sync also clears the wheels a previous run installed
            constraints = self._setting_constraints()
            sync_into(self._env, requirements, constraints, pre=self._env.conf["pip_pre"])
        for pkg in packages:
            if isinstance(pkg, SdistPackage):
                self._install_sdist(venv, pkg)
                continue
            editable = self._env.core["tox_root"] if isinstance(pkg, EditablePackage) else None
            try:
                install_wheel(venv, Path(pkg.path), editable_of=editable)
            except EnvstoreError as exc:
                raise Fail(str(exc)) from None
        if packages:  # what pip installs (an sdist) is not known here: never skipped
            _record_install(self._env, venv, wheels if len(wheels) == len(packages) else [])

    def _install_sdist(self, venv: Path, pkg: SdistPackage) -> None:
        """``package = sdist``: the env's pip builds and installs the sdist (as tox's
        virtualenv runner has pip do), into the env's own site-packages, with
        ``--no-deps`` (its dependencies came from the store in the sync)."""
        index = sdist_index_options(_strings(_read_state(self._env), "index"))
        cmd = [str(venv / "bin" / "python"), "-I", "-m", "pip", "install", "--no-deps"]
        cmd += ["--force-reinstall", *index]
        for key, value in (pkg.config_settings or {}).items():
            cmd += ["--config-settings", f"{key}={value}"]
        outcome = self._env.execute(
            [*cmd, str(pkg.path)], StdinSource.OFF, run_id="install_package"
        )
        outcome.assert_success()


def _same_install(tox_env: VirtualEnv, venv: Path, wheels: Sequence[PathPackage]) -> bool:
    """Whether the last run installed wheels of the same contents (their RECORDs) into
    this env, and the env is still as that run left it (``envstore.env.unchanged``'s
    test, from outside: the same manifest and nothing added to or taken from
    site-packages or bin/)."""
    done = _read_state(tox_env).get("installed")
    return done is not None and done == _install_record(venv, wheels)


def _record_install(tox_env: VirtualEnv, venv: Path, wheels: Sequence[PathPackage]) -> None:
    """Remember what :func:`_same_install` compares (nothing: no wheels)."""
    state = _read_state(tox_env)
    state["installed"] = _install_record(venv, wheels) if wheels else None
    _write_state(tox_env, state)


def _install_record(venv: Path, wheels: Sequence[PathPackage]) -> list[str] | None:
    digests = [wheel_digest(Path(w.path)) for w in wheels]
    env = env_fingerprint(venv)
    if env is None or None in digests:
        return None
    return [env, *(d for d in digests if d is not None)]


def sdist_index_options(saved: list[str]) -> list[str]:
    """The index options saved in the runner's state file (data on disk) as pip's
    arguments: each checked again as a deps list's would be, and its value one argument
    (never more options split out of it)."""
    _, index = _options(saved)
    return sources_from_env({}, index).pip_options()


def _options(options: list[str]) -> tuple[bool, list[str]]:
    """``--pre`` and the index options of a deps list (passed on to pip by envstore);
    any other option is refused, naming it."""
    pre = False
    index: list[str] = []
    for option in options:
        flag = option.split()[0].split("=")[0]
        if flag == "--pre":
            pre = True
        elif flag in {"-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--no-index"}:
            index.append(option)
        else:
            raise Fail(
                f"deps option {option} is not supported by runner = envstore;"
                " give it through PIP_* environment variables or use runner = virtualenv"
            )
    return pre, index


def sync_into(
    tox_env: VirtualEnv,
    requirements: list[str],
    constraints: list[str],
    *,
    pre: bool,
    index: Sequence[str] = (),
) -> None:
    """Bring ``tox_env``'s envstore env to everything it was asked for so far plus
    ``requirements``; make it (with pip only) if it does not exist yet."""
    from envstore.env.lifecycle import create_env, sync_env

    state = _read_state(tox_env)
    wanted = sorted({*_strings(state, "requirements"), *requirements})
    editables = sorted(r[3:].strip() for r in wanted if r.startswith("-e "))
    plain = [r for r in wanted if not r.startswith("-e ")]
    all_constraints = sorted({*_strings(state, "constraints"), *constraints})
    all_index = list(dict.fromkeys([*_strings(state, "index"), *index]))
    pre = pre or bool(state.get("pre"))
    sources = sources_from_env(tox_env.environment_variables, all_index)
    venv = venv_of(tox_env)
    root = tox_env.core["tox_root"]
    with _tox_files_kept(venv, tox_env.env_dir):
        try:
            if not (venv / "pyvenv.cfg").is_file():
                create_env(
                    venv,
                    python=str(tox_env.base_python.extra["executable"]),
                    sources=sources,
                    prompt=f"{root.name}[{tox_env.name}]",
                    clear=True,
                )
            if plain or editables or all_constraints:
                sync_env(
                    venv,
                    plain,
                    sources=sources,
                    constraints=[c if "://" in c else str(root / c) for c in all_constraints],
                    pre=pre,
                    editables=[str(root / e) for e in editables],
                )
        except EnvstoreError as exc:
            raise Fail(f"envstore: {exc}") from None
    state = {"requirements": wanted, "constraints": all_constraints, "index": all_index, "pre": pre}
    _write_state(tox_env, state)  # no "installed": a sync clears what was installed


@contextmanager
def _tox_files_kept(venv: Path, env_dir: Path) -> Iterator[None]:
    """With the envstore env at tox's ``env_dir`` itself (``tox devenv DIR``), tox's own
    files there are set aside while envstore makes or replaces the env (which would
    refuse a directory holding them, or drop them with the old env), then put back."""
    kept: dict[Path, bytes] = {}
    if venv == env_dir:
        for name in TOX_FILES:
            path = env_dir / name
            if path.is_file() and not path.is_symlink():
                kept[path] = path.read_bytes()
                path.unlink()
    try:
        yield
    finally:
        for path, data in kept.items():
            if not path.exists() and path.parent.is_dir():
                path.write_bytes(data)


def _read_state(tox_env: VirtualEnv) -> dict[str, object]:
    """What the runner asked of ``tox_env``'s env so far (a file beside tox's: data)."""
    try:
        state = json.loads((tox_env.env_dir / STATE).read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def _write_state(tox_env: VirtualEnv, state: dict[str, object]) -> None:
    (tox_env.env_dir / STATE).write_text(json.dumps(state, indent=1))


def _strings(state: dict[str, object], key: str) -> list[str]:
    """``state[key]`` when it is a list of strings (the file is data), else nothing."""
    value = state.get(key, [])
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return []
