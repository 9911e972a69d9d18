"""The benchmark harness runs end to end on its tiny synthetic workload.

No timings are asserted (speed is the benchmarks' job, not the suite's): this
only proves that every section still runs against the current envstore and
writes its results, so a change cannot silently break the measurements.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from conftest import run

REPO = Path(__file__).resolve().parent.parent


def test_benchmark_smoke_run_measures_every_section(tmp_path: Path) -> None:
    out = tmp_path / "results"
    res = run(
        [
            sys.executable,
            REPO / "benchmarks" / "run.py",
            "--smoke",
            "--reps",
            "1",
            "--living-reps",
            "1",
            "--out",
            out,
            "--data",
            tmp_path / "data",  # no tool venv here: pip and uv rows are skipped
            "--envstore",
            f"{sys.executable} -m envstore",
        ],
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    sections = json.loads((out / "latest.json").read_text())["sections"]
    assert set(sections) >= {"create-warm", "create-cold", "footprint", "living", "gc", "build"}
    mine = [r for rows in sections.values() for r in rows if r["tool"].startswith("envstore")]
    assert {r["section"] for r in mine} >= set(sections) - {"harness"}
    broken = [r for r in mine if r.get("error")]
    assert not broken, broken
    assert all(r["n"] >= 1 for r in mine if r["kind"] == "timing")
    assert "| envstore |" in (out / "latest.md").read_text()
