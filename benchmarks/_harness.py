"""Helpers shared by the envstore benchmark scripts (stdlib only).

Everything here is tool-agnostic: hermetic environments for subprocesses,
timing (single runs and alternating A B A B ... runs), medians and ratios,
disk usage without double counting hard links, result records and their
JSON / markdown rendering.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PY311 = Path("/root/.pyenv/versions/3.11.7/bin/python3")
DEFAULT_DATA = Path.home() / ".cache" / "envstore-bench"

# Variables that would make a run depend on this machine's configuration.
_DROP_PREFIXES = ("PIP_", "UV_")
_DROP_NAMES = {
    "PYTHONDONTWRITEBYTECODE",  # set on this machine; would distort import timings
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONUSERBASE",
    "VIRTUAL_ENV",
    "ENVSTORE_HOME",
    "CONDA_PREFIX",
}


def data_dir(cli_value: str | None) -> Path:
    """``--data`` beats ``$ENVSTORE_BENCH_DATA`` beats ``~/.cache/envstore-bench``."""
    raw = cli_value or os.environ.get("ENVSTORE_BENCH_DATA")
    return Path(raw).expanduser().resolve() if raw else DEFAULT_DATA


def hermetic_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``os.environ`` without PIP_*/UV_*/PYTHON* knobs, pip config off."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_DROP_PREFIXES) and k not in _DROP_NAMES
    }
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["UV_NO_CONFIG"] = "1"
    env["UV_PYTHON_DOWNLOADS"] = "never"
    if extra:
        env.update(extra)
    return env


class Skipped(Exception):
    """A tool cannot take part (e.g. the tool venv is absent); message is kept as is."""


class CommandFailed(RuntimeError):
    """A subprocess exited non-zero (or could not be started)."""

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = list(argv)
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"{shlex.join(self.argv)} exited {returncode}: {tail(stderr)}")


def tail(text: str, lines: int = 4, chars: int = 600) -> str:
    """Last few meaningful lines of ``text``, flattened to one line."""
    kept = [ln.strip() for ln in text.strip().splitlines()]
    kept = [ln for ln in kept if ln and not set(ln) <= set("^~ ")][-lines:]
    return " | ".join(kept)[-chars:]


def run(
    argv: Sequence[str | os.PathLike[str]],
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float | None = 3600,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (hermetic env unless given); raise CommandFailed on error."""
    args = [os.fspath(a) for a in argv]
    try:
        proc = subprocess.run(
            args,
            env=dict(env) if env is not None else hermetic_env(),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CommandFailed(args, -1, str(exc)) from exc
    if proc.returncode != 0:
        raise CommandFailed(args, proc.returncode, proc.stderr + proc.stdout)
    return proc


def rmtree(path: str | os.PathLike[str]) -> None:
    shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------
# timing

Action = Sequence[str | os.PathLike[str]] | Callable[[], Any]


def _do(action: Action | None) -> Any:
    if action is None:
        return None
    if callable(action):
        return action()
    return run(action)


def timeit(
    cmd_or_callable: Action,
    setup: Action | None = None,
    teardown: Action | None = None,
) -> float:
    """Wall time of one run of ``cmd_or_callable``; setup/teardown are untimed.

    A callable that returns a float reports its own (e.g. in-process) time,
    which is then used instead of the wall time around it.
    """
    _do(setup)
    try:
        start = time.perf_counter()
        value = _do(cmd_or_callable)
        elapsed = time.perf_counter() - start
    except BaseException:
        try:  # clean up, but report the action's error, not the teardown's
            _do(teardown)
        except Exception:
            pass
        raise
    _do(teardown)
    return float(value) if isinstance(value, float) else elapsed


@dataclass
class Trial:
    """One tool's way of doing the measured thing."""

    action: Action
    setup: Action | None = None
    teardown: Action | None = None


@dataclass
class Samples:
    times: list[float] = field(default_factory=list)
    error: str | None = None


def alternate(pairs: Sequence[tuple[str, Trial]], reps: int, warmup: int = 0) -> dict[str, Samples]:
    """Run the trials interleaved (A B C A B C ...) ``reps`` times.

    Interleaving spreads slow drifts of a noisy machine over all tools.  A
    tool that fails once is recorded as failed (stderr tail) and skipped from
    then on; the other tools go on.
    """
    out = {name: Samples() for name, _ in pairs}
    for rnd in range(warmup + reps):
        for name, trial in pairs:
            samples = out[name]
            if samples.error is not None:
                continue
            try:
                t = timeit(trial.action, trial.setup, trial.teardown)
            except Skipped as exc:
                samples.error = str(exc)
                continue
            except CommandFailed as exc:
                samples.error = f"failed: {tail(exc.stderr) or exc}"
                continue
            except Exception as exc:  # one tool must not abort the run
                samples.error = f"failed: {type(exc).__name__}: {exc}"
                continue
            if rnd >= warmup:
                samples.times.append(t)
    return out


def median(values: Iterable[float]) -> float | None:
    vals = list(values)
    return statistics.median(vals) if vals else None


def ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference <= 0:
        return None
    return value / reference


# --------------------------------------------------------------------------
# disk usage


@dataclass
class DiskUsage:
    bytes: int = 0  # apparent size (st_size)
    blocks_bytes: int = 0  # allocated (st_blocks * 512)
    inodes: int = 0

    def __sub__(self, other: DiskUsage) -> DiskUsage:
        return DiskUsage(
            self.bytes - other.bytes,
            self.blocks_bytes - other.blocks_bytes,
            self.inodes - other.inodes,
        )


def disk_usage(roots: Iterable[str | os.PathLike[str]]) -> DiskUsage:
    """Bytes and inodes under ``roots``, each inode counted once.

    Hard links are recognised by (st_dev, st_ino) across all roots; symlinks
    are not followed (the link itself counts as one inode of its lstat size).
    Directories count as inodes too.
    """
    seen: set[tuple[int, int]] = set()
    usage = DiskUsage()
    stack = [os.fspath(r) for r in roots]
    while stack:
        path = stack.pop()
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        key = (st.st_dev, st.st_ino)
        if key in seen:
            continue
        seen.add(key)
        usage.bytes += st.st_size
        usage.blocks_bytes += st.st_blocks * 512
        usage.inodes += 1
        if os.path.isdir(path) and not os.path.islink(path):
            try:
                with os.scandir(path) as it:
                    stack.extend(entry.path for entry in it)
            except OSError:
                pass
    return usage


# --------------------------------------------------------------------------
# results


@dataclass
class TimingResult:
    section: str
    workload: str
    tool: str
    times: list[float]
    group: str = ""
    error: str | None = None
    unit: str = "s"
    note: str = ""
    ratio: float | None = None  # median / median of the group's envstore row

    @property
    def median(self) -> float | None:
        return median(self.times)

    @property
    def n(self) -> int:
        return len(self.times)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(kind="timing", median=self.median, n=self.n)
        return d


@dataclass
class SizeResult:
    section: str
    workload: str
    tool: str
    env: DiskUsage | None = None
    store_growth: DiskUsage | None = None
    added: DiskUsage | None = None
    error: str | None = None
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["kind"] = "size"
        return d


Result = TimingResult | SizeResult


def timing_results(
    section: str, workload: str, samples: Mapping[str, Samples], group: str = "", unit: str = "s"
) -> list[TimingResult]:
    return [
        TimingResult(section, workload, tool, s.times, group=group, error=s.error, unit=unit)
        for tool, s in samples.items()
    ]


def fill_ratios(results: Sequence[Result]) -> None:
    """Set ``ratio`` = median / median of the envstore row of the same group."""
    refs: dict[tuple[str, str, str], float | None] = {}
    for r in results:
        if isinstance(r, TimingResult) and r.tool.startswith("envstore"):
            refs.setdefault((r.section, r.workload, r.group), r.median)
    for r in results:
        if isinstance(r, TimingResult):
            r.ratio = ratio(r.median, refs.get((r.section, r.workload, r.group)))


def _fmt(value: float | None, unit: str = "s") -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:.1f}"
    if unit == "inodes":
        return f"{value:.0f}"
    return f"{value:.3f}" if value < 10 else f"{value:.2f}"


def _fmt_size(u: DiskUsage | None) -> tuple[str, str]:
    if u is None:
        return "-", "-"
    return f"{u.blocks_bytes / 1e6:.2f}", str(u.inodes)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_tables(sections: Mapping[str, Sequence[Result]]) -> str:
    """One markdown table per section."""
    out: list[str] = []
    for name, results in sections.items():
        out.append(f"## {name}\n")
        if not results:
            out.append("_no results_\n")
            continue
        if all(isinstance(r, SizeResult) for r in results):
            out.append(
                "| workload | tool | env MB | env inodes | store/cache growth MB "
                "| growth inodes | added MB | added inodes | note |"
            )
            out.append("|---|---|---:|---:|---:|---:|---:|---:|---|")
            for r in results:
                assert isinstance(r, SizeResult)
                if r.error:
                    out.append(f"| {r.workload} | {r.tool} | {_cell(r.error)} |||||||")
                    continue
                cells = [*_fmt_size(r.env), *_fmt_size(r.store_growth), *_fmt_size(r.added)]
                out.append(f"| {r.workload} | {r.tool} | {' | '.join(cells)} | {_cell(r.note)} |")
        else:
            out.append("| workload | what | tool | median | ratio vs envstore | n |")
            out.append("|---|---|---|---:|---:|---:|")
            for r in results:
                if isinstance(r, SizeResult):
                    continue
                unit = "" if r.unit == "s" else f" {r.unit}"
                med = _cell(r.error) if r.error and not r.times else _fmt(r.median, r.unit) + unit
                rat = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
                what = r.group or "-"
                out.append(f"| {r.workload} | {what} | {r.tool} | {med} | {rat} | {r.n} |")
        out.append("")
    return "\n".join(out)


def write_results(
    out_dir: Path, meta: Mapping[str, Any], sections: Mapping[str, Sequence[Result]]
) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    for results in sections.values():
        fill_ratios(results)
    payload = {
        "meta": dict(meta),
        "sections": {k: [r.to_json() for r in v] for k, v in sections.items()},
    }
    json_path = out_dir / "latest.json"
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    header = ["# envstore benchmark results", ""]
    header += [f"- **{k}**: {_cell(str(v))}" for k, v in meta.items()]
    header += [
        "",
        "Times are medians in seconds unless noted; ratio = tool median / envstore "
        "median in the same row group (>1 means envstore is faster).",
        "",
    ]
    md_path = out_dir / "latest.md"
    md_path.write_text("\n".join(header) + markdown_tables(sections) + "\n")
    return json_path, md_path
