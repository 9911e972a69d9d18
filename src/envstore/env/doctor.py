"""Diagnosing environments: ``envstore doctor``.

Every check only reads (the interpreter facts cache aside): the manifest, the
recorded interpreter's facts (cached by identity, so a healthy env starts no
process), the store's entries and view, the gc root, and ``site-packages``.
Each problem carries its severity and, where one exists, the exact command that
fixes it; every problem is reported, not just the first.

Severities: ``broken`` (the env does not work), ``warning`` (it works, but not
as its manifest says, or a gc may break it), ``note`` (fine; worth knowing).
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from envstore.env.doctor_checks import (
    BROKEN,
    WARNING,
    Problem,
    check_files,
    check_fit,
    check_interpreter,
    check_pip_installed,
)
from envstore.env.doctor_editables import check_editables
from envstore.env.doctor_site import check_site
from envstore.env.doctor_upstream import check_upstreams
from envstore.errors import BadManifestError, StoreError
from envstore.model.interpreter import Interpreter
from envstore.model.manifest import MANIFEST_NAME, Manifest, same_env
from envstore.python.query import FactsCache
from envstore.store.layout import Store
from envstore.store.registry import registered_envs

__all__ = ["Diagnosis", "Problem", "diagnose", "diagnose_all", "same_env"]


@dataclass
class Diagnosis:
    env: str
    python: Interpreter | None = None  # as the manifest records it
    problems: list[Problem] = field(default_factory=list)

    @property
    def status(self) -> str:
        severities = {p.severity for p in self.problems}
        return "broken" if BROKEN in severities else "warning" if WARNING in severities else "ok"

    def to_json(self) -> dict[str, object]:
        return {
            "env": self.env,
            "status": self.status,
            "python": None
            if self.python is None
            else {"path": self.python.path, "version": self.python.version},
            "problems": [p.to_json() for p in self.problems],
        }


def diagnose(
    path: str | os.PathLike[str], *, store: Store | str | os.PathLike[str] | None = None
) -> Diagnosis:
    """Every problem of the env at ``path`` (reads only; may query interpreters)."""
    env = Path(os.path.abspath(path))
    diagnosis = Diagnosis(str(env))
    if not (env / MANIFEST_NAME).exists():
        what = "does not exist" if not env.exists() else f"has no {MANIFEST_NAME}"
        diagnosis.problems.append(
            Problem("not-an-env", BROKEN, f"{env} {what}: not an envstore environment")
        )
        return diagnosis
    try:
        manifest = Manifest.load(env)
    except BadManifestError as exc:
        diagnosis.problems.append(
            Problem(
                "manifest",
                BROKEN,
                str(exc),
                "",
                f"recreate the env: envstore create {shlex.quote(str(env))} --clear ...",
            )
        )
        return diagnosis
    env = Path(same_env(manifest, env))
    diagnosis.env = str(env)
    diagnosis.python = manifest.python
    st = store if isinstance(store, Store) else Store(store or manifest.store)
    cache: FactsCache | None = None
    if st.exists():
        try:
            cache = st.facts_cache(create=False)
        except StoreError:
            cache = None
    diagnosis.problems += check_interpreter(env, manifest, st, cache)
    diagnosis.problems += check_files(env, manifest, st)
    diagnosis.problems += check_fit(env, manifest, st)
    diagnosis.problems += check_pip_installed(env, manifest)
    diagnosis.problems += check_site(env, manifest, st)
    diagnosis.problems += check_editables(env, manifest)
    diagnosis.problems += check_upstreams(env, manifest, st)
    return diagnosis


def diagnose_all(store: Store, gc_command: str = "envstore gc") -> list[Diagnosis]:
    """``diagnose`` for every registered env; a registered env that is gone is one problem."""
    result = []
    for env in sorted(registered_envs(store, strict=False)):
        if not os.path.exists(os.path.join(env, MANIFEST_NAME)):
            result.append(
                Diagnosis(
                    env,
                    None,
                    [
                        Problem(
                            "env-missing",
                            WARNING,
                            f"registered env {env} no longer exists (if it was moved,"
                            " run 'envstore relink' at its new place); the store still"
                            " keeps what it used",
                            gc_command,
                            "drops its registration once gone for the grace period, and"
                            " frees what nothing else uses ('envstore remove' of the old"
                            " path does it now)",
                        )
                    ],
                )
            )
            continue
        result.append(diagnose(env, store=store))
    return result
