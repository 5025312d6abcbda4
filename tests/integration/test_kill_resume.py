"""kill -9 during training and during a checkpoint write, then --resume: the metrics of a run never killed.

The short version of benchmarks/kill_resume.py (its 20-kill tally is in benchmarks/RESULTS.md):
real processes, real SIGKILLs, real `tunelab train --resume`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_two_kills_resume_to_identical_metrics(tmp_path: Path) -> None:
    out = tmp_path / "tally.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "kill_resume.py"),
            "--kills",
            "2",
            "--quick",
            "--seed",
            "3",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.is_file(), done.stderr[-2000:]
    result = json.loads(out.read_text())
    tally = result["tally"]
    assert tally["kills"] == 2, result["cases"]
    assert tally["identical_metrics"] == 2, result["cases"]
    assert done.returncode == 0
    assert any(case["killed_at"] == "checkpoint write" and case["hit"] for case in result["cases"])
