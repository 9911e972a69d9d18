"""The wheel tags an interpreter accepts, best first (``packaging.tags``)."""

from __future__ import annotations

import sysconfig
from typing import Any

from envstore.model.interpreter import Interpreter


def ranked_tags(interp: Interpreter) -> list[Any]:
    """The wheel tags ``interp`` accepts, most specific first, as pip ranks them
    (computed here, without starting it)."""
    from packaging import tags

    major, minor = (int(x) for x in interp.version.split(".")[:2])
    if interp.platform == sysconfig.get_platform():
        platforms = list(tags.platform_tags())
    else:
        platforms = [interp.platform.replace("-", "_").replace(".", "_")]
    found = list(tags.cpython_tags((major, minor), [interp.abi_tag], platforms))
    found += tags.compatible_tags((major, minor), interp.python_tag, platforms)
    return found


def supported_tags(interp: Interpreter) -> set[Any]:
    """The wheel tags ``interp`` accepts."""
    return set(ranked_tags(interp))
