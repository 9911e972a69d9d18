"""Whether a Python version satisfies a ``requires-python`` specifier, without
importing packaging for the plain specs projects write."""

from __future__ import annotations

import re

__all__ = ["fits_requires_python"]


def fits_requires_python(spec: str, version: str) -> bool:
    """Whether a Python of ``version`` satisfies the ``requires-python`` ``spec`` (an
    invalid spec raises packaging's InvalidSpecifier). Pre-releases count, and a
    development build's ``3.14.0a1+``, which is no PEP 440 version, as ``3.14.0a1``."""
    simple = _fits_simply(spec, version)
    if simple is not None:
        return simple
    from packaging.specifiers import SpecifierSet

    return SpecifierSet(spec).contains(version.rstrip("+"), prereleases=True)


_CLAUSE = r"\s*(>=|<=|<|>|==|!=)\s*(\d+(?:\.\d+)*)\s*"
_RELEASE = r"\d+(?:\.\d+)*"


def _fits_simply(spec: str, version: str) -> bool | None:
    """``fits_requires_python`` without packaging (~5 ms to import) for what projects
    write (``>=3.10``, ``>=3.9,<4``, none) and a final release: PEP 440's ordering of
    release numbers, shorter ones padded with zeros. None for anything else (``~=``,
    ``==3.*``, a pre-release): packaging decides."""
    if not re.fullmatch(_RELEASE, version):
        return None
    clauses = [re.fullmatch(_CLAUSE, c) for c in spec.split(",")] if spec.strip() else []
    if not all(clauses):
        return None
    have = [int(x) for x in version.split(".")]
    for m in clauses:
        op, want = m.group(1), [int(x) for x in m.group(2).split(".")]  # type: ignore[union-attr]
        width = max(len(have), len(want))
        a, b = have + [0] * (width - len(have)), want + [0] * (width - len(want))
        if not {">=": a >= b, "<=": a <= b, "<": a < b, ">": a > b, "==": a == b, "!=": a != b}[op]:
            return False
    return True
