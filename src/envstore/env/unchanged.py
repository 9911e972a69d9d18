"""Whether a sync would rebuild an env into what it already is.

``envstore sync`` makes an env hold exactly what is asked; when it already does,
building it again beside itself and exchanging the two is ~10 ms of writes (and
a new inode for every file an editor or shell holds open). ``unchanged`` is the
check ``make_env`` runs first: the manifest it would write equals the one there
(creation time aside: the interpreter, view, packages, requirements, sources and
editables with their stamps), the store has that exact manifest registered, and
the files that tools change behind envstore's back are as envstore left them:
site-packages holds nothing it did not write (``pip install`` into the env) and
every console script it wrote is there (``pip uninstall`` of a shadowing copy).

Not checked, by design (``envstore doctor`` checks them): the contents of the
generated files (activation scripts, the launcher, pyvenv.cfg).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from envstore.env.scripts import script_names
from envstore.env.site import PTH_NAME
from envstore.errors import BadManifestError
from envstore.model.interpreter import Interpreter
from envstore.model.manifest import MANIFEST_NAME, Manifest
from envstore.store import index
from envstore.store.layout import Store
from envstore.store.registry import root_name

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from collections.abc import Sequence

    from envstore.env.editable_install import PreparedEditable
    from envstore.model.records import ViewRecord

__all__ = ["unchanged"]


def unchanged(
    st: Store,
    final: Path,
    manifest: Manifest,
    view: ViewRecord,
    interp: Interpreter,
    editables: Sequence[PreparedEditable],
) -> Manifest | None:
    """The manifest of the env at ``final`` when it already is what ``manifest`` (and
    ``view``, ``editables``) describe, else None (the caller builds it anew)."""
    path = final / MANIFEST_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with open(fd, "rb") as f:
            text = f.read()
        old = Manifest.from_json(json.loads(text), str(path))
    except (OSError, ValueError, BadManifestError):
        return None
    want, have = manifest.to_json(), old.to_json()
    want.pop("created")
    have.pop("created")
    if want != have or not _registered(st, final, text):
        return None
    site = final / interp.purelib
    expected = {PTH_NAME, "__pycache__", *(name for name, _source in view.pth)}
    scripts = script_names(view, interp)
    for e in editables:
        if e.files is None:  # installed by pypa/installer: its files are not known here
            return None
        expected.update(name.split("/", 1)[0] for name in e.files)
        scripts += e.scripts()
    try:
        if not set(os.listdir(site)) <= expected:
            return None
    except OSError:
        return None
    if not all(os.path.lexists(final / "bin" / name) for name in scripts):
        return None
    return old


def _registered(st: Store, final: Path, text: bytes) -> bool:
    """Whether the store has ``final`` registered with exactly the manifest ``text``."""
    import xxhash

    name = root_name(final, st)
    if not (st.roots_dir / name).is_symlink() or not st.db_path.exists():
        return False
    if "@" in name:  # a shared store: tell other hosts this env lives (once a day)
        from envstore.store.hostroots import refresh

        refresh(st.root, [name])
    return index.env_digest(st.db(), str(final)) == xxhash.xxh3_64_hexdigest(text)
