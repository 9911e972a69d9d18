"""What the CLI prints besides each command's own lines: progress, errors, warnings
and notes on stderr, sizes and counts, and the escaping of what comes from files."""

from __future__ import annotations

import sys

__all__ = ["Escaped", "Reporter", "error", "note", "outcome", "plural", "size", "warning"]

TYPE_CHECKING = False  # not typing's: see envstore/__init__.py
if TYPE_CHECKING:
    from envstore.model.manifest import Manifest


class Reporter:
    """Progress on a terminal (or with -v), silence when piped or with -q. A message
    the library starts with ``warning: `` is printed always (a fallback worth knowing)."""

    def __init__(self, verbosity: int) -> None:
        self.enabled = verbosity > 0 or (verbosity == 0 and sys.stderr.isatty())

    def __call__(self, message: str) -> None:
        if self.enabled or message.startswith("warning: "):
            print(f"envstore: {message}", file=sys.stderr, flush=True)


class Escaped:
    """A text stream that writes control characters (but newlines and tabs) escaped."""

    def __init__(self, stream: object) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        if not text.isprintable():
            text = "".join(c if c.isprintable() or c in "\n\t" else repr(c)[1:-1] for c in text)
        return self._stream.write(text)  # type: ignore[attr-defined,no-any-return]

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


def error(message: str) -> None:
    """``envstore: error: ...`` on stderr: the one way the CLI reports a failure."""
    print(f"envstore: error: {message}", file=sys.stderr)


def warning(message: str) -> None:
    print(f"envstore: warning: {message}", file=sys.stderr)


def note(message: str) -> None:
    print(f"envstore: note: {message}", file=sys.stderr)


def plural(n: int, word: str) -> str:
    """``1 package``, ``2 packages``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def outcome(manifest: Manifest) -> str:
    """``: 3 from the store, 2 fetched; resolved by pip`` for a create's line (empty
    when the library did not say)."""
    return f": {manifest.outcome.summary()}" if manifest.outcome is not None else ""


def size(n: float) -> str:
    """Bytes as people read them: ``512 B``, ``1.5 kB``, ``2.0 GB`` (powers of 1000)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"
