"""In-process `tunelab` calls for the input tests: the real typer app, no subprocess per case.

`outcome` classifies a call the way the issue counts them: success (exit 0), a clean error
(exit 2, exactly one line on stderr, under MAX_LINE characters, no traceback), or anything
else, which is a failure of the test.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

MAX_LINE = 300


@dataclass
class Outcome:
    kind: str  # "ok", "error" (one clean line) or "bad" (traceback, wrong exit, several lines)
    exit_code: int
    stdout: str
    stderr: str
    detail: str = ""

    @property
    def line(self) -> str:
        lines = [line for line in self.stderr.splitlines() if line.strip()]
        return lines[0] if lines else ""


def invoke(*args: str | Path) -> Outcome:
    from tunelab.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=True)
    return classify(result.exit_code, result.stdout, result.stderr, result.exception)


def classify(exit_code: int, stdout: str, stderr: str, exception: BaseException | None) -> Outcome:
    if exception is not None and not isinstance(exception, SystemExit):
        detail = f"{type(exception).__name__}: {str(exception)[:300]}"
        return Outcome("bad", exit_code, stdout, stderr, f"traceback ({detail})")
    if "Traceback" in stderr:
        return Outcome("bad", exit_code, stdout, stderr, "traceback printed")
    if exit_code == 0:
        return Outcome("ok", exit_code, stdout, stderr)
    lines = [line for line in stderr.splitlines() if line.strip()]
    if exit_code != 2:
        return Outcome("bad", exit_code, stdout, stderr, f"exit code {exit_code}")
    if not config_problem_list(lines) and len(lines) != 1:
        return Outcome("bad", exit_code, stdout, stderr, f"{len(lines)} lines on stderr")
    if not lines[0].startswith("error: "):
        return Outcome("bad", exit_code, stdout, stderr, "no 'error: ' line")
    long = [line for line in lines if len(line) >= MAX_LINE]
    if long:
        return Outcome("bad", exit_code, stdout, stderr, f"a line of {len(long[0])} characters")
    return Outcome("error", exit_code, stdout, stderr)


def config_problem_list(lines: list[str]) -> bool:
    """`config validate` reports every problem at once: 'error: N problems in config…:' then
    one '  - …' line per problem (the documented form; each line is still one problem)."""
    return (
        len(lines) > 1
        and " problems in config" in lines[0]
        and all(line.startswith("  - ") for line in lines[1:])
    )


def assert_one_line(outcome: Outcome, *fragments: str) -> str:
    assert outcome.kind == "error", (outcome.detail, outcome.stderr[-2000:])
    for fragment in fragments:
        assert fragment in outcome.line, outcome.line
    return outcome.line


def train_tiny_run(directory: Path, model_dir: Path) -> Path:
    """A finished classification run of the tiny BERT (one epoch, no baselines): seconds on CPU."""
    import tunelab
    from conftest import toy_sentiment
    from tunelab.workflows.check import build_checked as build_config

    data = directory / "toy.csv"
    toy_sentiment(120).to_csv(data, index=False)
    cfg = build_config(
        {
            "data": {"train_file": str(data), "max_length": 16},
            "model": {"name": str(model_dir)},
            "train": {
                "epochs": 1,
                "batch_size": 16,
                "lr": 5e-3,
                "warmup_ratio": 0.0,
                "precision": "fp32",
                "seed": 7,
                "eval_on_start": False,
            },
            "eval": {"baselines": False, "forgetting": False},
            "output": {"dir": str(directory / "runs"), "name": "tiny"},
        }
    )
    return tunelab.train(cfg).run_dir
