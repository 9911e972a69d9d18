"""Installing into an envstore-made tox env: every install is a sync of the env to
all it was asked to hold so far, then the project's wheel into its own site-packages.

tox installs in steps (``deps``, ``dependency-groups``, the package's own
dependencies, then the package) and records each step in ``.tox-info.json``;
this installer keeps tox's rules (a requirement removed means recreate) and the
union of the steps in ``envstore-request.json`` beside tox's files, and brings
the env to that union with :func:`envstore.env.lifecycle.sync_env`: one
resolution for all of it, so ``constrain_package_deps`` holds by construction.
A sync makes site-packages anew, so the package (a wheel or a PEP 660 editable
wheel from the package env) is installed after one, every run, as tox's pip
installer reinstalls it every run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.requirements import Requirement
from tox.tox_env.errors import Fail, Recreate
from tox.tox_env.python.package import EditablePackage, WheelPackage
from tox.tox_env.python.pip.pip_install import Pip
from tox.tox_env.python.pip.req_file import PythonDeps

from envstore.errors import EnvstoreError
from envstore.plugins.common import install_wheel, sources_from_env

if TYPE_CHECKING:
    from tox.tox_env.python.virtual_env.api import VirtualEnv

__all__ = ["VENV", "EnvstoreInstaller", "sync_into"]

STATE = "envstore-request.json"
VENV = "venv"  # the envstore env, inside tox's env directory
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
        wheels: list[WheelPackage | EditablePackage] = []
        for arg in arguments:
            if isinstance(arg, Requirement):
                requirements.append(str(arg))
            elif isinstance(arg, (WheelPackage, EditablePackage)):
                requirements.extend(str(r) for r in arg.deps)
                wheels.append(arg)
            else:
                raise Fail(
                    f"runner = envstore cannot install {arg!r}: package = sdist and"
                    " editable-legacy are not supported; use package = sdist-wheel (the"
                    " default: a wheel built from the sdist), wheel or editable"
                )
        requirements.sort()
        req_of_type = f"{of_type}_deps" if wheels else of_type
        changed = False
        cache_value = {"req": requirements, "env": self._install_env_vars()}
        with self._env.cache.compare(cache_value, section, req_of_type) as (eq, old):
            if not eq:
                old_req = old["req"] if isinstance(old, dict) else (old or [])
                if removed := set(old_req) - set(requirements):
                    raise Recreate(f"dependencies removed: {', '.join(sorted(removed))}")
                changed = True
        if changed or wheels:  # a sync also clears the package a previous run installed
            constraints = self._setting_constraints()
            sync_into(self._env, requirements, constraints, pre=self._env.conf["pip_pre"])
        for pkg in wheels:
            editable = self._env.core["tox_root"] if isinstance(pkg, EditablePackage) else None
            try:
                install_wheel(self._env.env_dir / VENV, Path(pkg.path), editable_of=editable)
            except EnvstoreError as exc:
                raise Fail(str(exc)) from None


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

    state_file = tox_env.env_dir / STATE
    try:
        state = json.loads(state_file.read_text())
        if not isinstance(state, dict):
            state = {}
    except (OSError, ValueError):
        state = {}
    wanted = sorted({*_strings(state, "requirements"), *requirements})
    editables = sorted(r[3:].strip() for r in wanted if r.startswith("-e "))
    plain = [r for r in wanted if not r.startswith("-e ")]
    all_constraints = sorted({*_strings(state, "constraints"), *constraints})
    all_index = list(dict.fromkeys([*_strings(state, "index"), *index]))
    pre = pre or bool(state.get("pre"))
    sources = sources_from_env(tox_env.environment_variables, all_index)
    venv = tox_env.env_dir / VENV
    root = tox_env.core["tox_root"]
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
    state_file.write_text(json.dumps(state, indent=1))


def _strings(state: dict[str, object], key: str) -> list[str]:
    """``state[key]`` when it is a list of strings (the file is data), else nothing."""
    value = state.get(key, [])
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return []
