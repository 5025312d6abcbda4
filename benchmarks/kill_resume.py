"""kill -9 at random moments (checkpoint writes included), then --resume: same metrics as a run never killed?

    python benchmarks/kill_resume.py --kills 20            # the tally in RESULTS.md
    python benchmarks/kill_resume.py --kills 2 --quick     # what tests/integration/test_kill_resume.py runs

One reference run trains uninterrupted. Then, for each case, a fresh run of the same config is
started as its own process (`tunelab train`) and killed with SIGKILL: every other case at a
uniformly random moment of its training, the rest at the moment a new `checkpoint-N/` folder
appears without its completion record (so while the Trainer is writing it). The killed run is
resumed with `tunelab train --resume` (or started again with output.overwrite when no checkpoint
was complete yet) until it finishes, and its metrics.json is compared with the reference: the loss
curve, the train loss, the validation curve and the test metrics, floats within 1e-6 relative.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import build_tiny_bert, toy_sentiment  # noqa: E402  (the test suite's toy data and vocabulary)

TUNELAB = [sys.executable, "-c", "from tunelab.cli import main; main()"]


def build(work: Path, quick: bool) -> Path:
    """A small BERT built from a config, learnable toy data, and the run config."""
    model_dir = build_tiny_bert(work / "model", hidden_size=32)
    toy_sentiment(320 if quick else 640).to_csv(work / "toy.csv", index=False)
    config = {
        "data": {"train_file": str(work / "toy.csv"), "max_length": 16},
        "model": {"name": str(model_dir)},
        "train": {
            "epochs": 2 if quick else 3,
            "batch_size": 16,
            "lr": 3e-3,
            "warmup_ratio": 0.0,
            "precision": "fp32",
            "log_every": 1,
            "eval_every": "steps",
            "eval_steps": 4,
            "eval_on_start": False,
            "seed": 7,
            "threads": 1,
        },
        "output": {"dir": str(work / "runs")},
    }
    path = work / "config.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def train(config: Path, name: str, *extra: str) -> subprocess.Popen[bytes]:
    """`tunelab train` in its own process; its stderr goes to a file beside the runs."""
    log = config.parent / f"{name}-{time.monotonic_ns()}.stderr"
    process = subprocess.Popen(
        [*TUNELAB, "train", str(config), f"output.name={name}", *extra],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        env={**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"},
    )
    process.log = log  # type: ignore[attr-defined]
    return process


def finish(process: subprocess.Popen[bytes]) -> tuple[int, str]:
    """Wait for the process; its exit code and the last line it wrote on stderr."""
    process.wait(timeout=900)
    lines = process.log.read_text(errors="replace").strip().splitlines()  # type: ignore[attr-defined]
    return process.returncode, lines[-1] if lines else ""


def kill_during_checkpoint(
    process: subprocess.Popen[bytes], run_dir: Path, deadline: float, skip: int
) -> bool:
    """SIGKILL as soon as a checkpoint folder (after the first `skip`) exists without its record."""
    seen: set[str] = set()
    while time.monotonic() < deadline and process.poll() is None:
        for checkpoint in (run_dir / "checkpoints").glob("checkpoint-*"):
            if checkpoint.name in seen:
                continue
            if len(seen) >= skip and not (checkpoint / "tunelab_checkpoint.json").exists():
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
                return True
            seen.add(checkpoint.name)
        time.sleep(0.0005)
    return False


def kill_at_random(
    process: subprocess.Popen[bytes], run_dir: Path, rng: random.Random, span: float
) -> float:
    """SIGKILL at a uniformly random moment after the first logged step."""
    log = run_dir / "logs" / "train_log.jsonl"
    while not log.exists() and process.poll() is None:
        time.sleep(0.01)
    delay = rng.uniform(0, span)
    time.sleep(delay)
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    return delay


def compared(reference: dict[str, Any], run: dict[str, Any]) -> list[str]:
    """The differences that matter (empty when identical within 1e-6 relative)."""
    problems: list[str] = []

    def walk(a: Any, b: Any, where: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            if a.keys() != b.keys():
                problems.append(f"{where}: keys differ")
                return
            for key in a:
                walk(a[key], b[key], f"{where}.{key}")
        elif isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                problems.append(f"{where}: {len(a)} vs {len(b)} entries")
                return
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(x, y, f"{where}[{i}]")
        elif where.endswith(("runtime", "per_second")):
            return  # wall-clock figures of each evaluation: not part of the result
        elif isinstance(a, float) and isinstance(b, float):
            if abs(a - b) > 1e-6 * max(abs(a), abs(b), 1e-9):
                problems.append(f"{where}: {a} vs {b}")
        elif a != b:
            problems.append(f"{where}: {a!r} vs {b!r}")

    for key in ("loss_curve", "train_loss", "validation_curve", "steps", "best_checkpoint"):
        walk(reference["training"][key], run["training"][key], f"training.{key}")
    walk(reference["test"], run["test"], "test")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a smaller run (the test's version)")
    parser.add_argument("--out", type=Path, default=None, help="write the tally here as JSON")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory(prefix="tunelab-kill-") as tmp:
        work = Path(tmp)
        config = build(work, args.quick)
        started = time.monotonic()
        code, last = finish(train(config, "reference"))
        assert code == 0, f"the reference run failed: {last}"
        reference_seconds = time.monotonic() - started
        reference = json.loads((work / "runs" / "reference" / "metrics.json").read_text())
        train_seconds = reference["training"]["train_seconds"]
        saves = [e["step"] for e in reference["training"]["validation_curve"]]
        cases = []
        for case in range(args.kills):
            name = f"killed-{case}"
            run_dir = work / "runs" / name
            mode = "checkpoint write" if case % 2 else "random moment"
            process = train(config, name)
            if mode == "checkpoint write":
                skip = rng.randrange(len(saves))  # which save to cut: the first, the last, between
                hit = kill_during_checkpoint(process, run_dir, time.monotonic() + 600, skip)
                delay = None
            else:
                span = train_seconds
                delay = kill_at_random(process, run_dir, rng, span)
                while process.returncode != -signal.SIGKILL and span > 0.5:
                    span /= 2  # it finished first: a fresh run, killed within a shorter window
                    shutil.rmtree(run_dir)  # the benchmark's own finished run
                    process = train(config, name)
                    delay = kill_at_random(process, run_dir, rng, span)
                hit = process.returncode == -signal.SIGKILL
            killed = process.returncode == -signal.SIGKILL
            card = json.loads((run_dir / "run_card.json").read_text()) if run_dir.exists() else {}
            folders = sorted(
                (run_dir / "checkpoints").glob("checkpoint-*"), key=lambda p: int(p.name[11:])
            )
            complete = [p.name for p in folders if (p / "tunelab_checkpoint.json").exists()]
            partial = [p.name for p in folders if not (p / "tunelab_checkpoint.json").exists()]
            if not killed or card.get("status") == "completed":
                code, last = (0, "") if card.get("status") == "completed" else finish(process)
                how = "finished before the kill landed"
            elif complete:
                code, last = finish(train(config, name, "--resume"))
                how = "resumed"
            else:
                code, last = finish(train(config, name, "output.overwrite=true"))
                how = "restarted (no complete checkpoint yet)"
            metrics_file = run_dir / "metrics.json"
            problems = (
                compared(reference, json.loads(metrics_file.read_text()))
                if code == 0 and metrics_file.is_file()
                else [f"exit {code}: {last}"]
            )
            cases.append(
                {
                    "case": case,
                    "killed_at": mode,
                    "killed": killed,
                    "mid_checkpoint_write": bool(partial) and killed,
                    "delay_s": round(delay, 3) if delay is not None else None,
                    "status_after_kill": card.get("status"),
                    "complete_checkpoints": complete,
                    "partial_checkpoints": partial,
                    "then": how,
                    "identical": not problems,
                    "differences": problems[:5],
                    "hit": hit,
                }
            )
            print(
                f"case {case:2d}: killed at a {mode:16s} -> partial {partial or '-'}, complete up to "
                f"{complete[-1] if complete else '-'}; {how}; "
                f"{'identical' if not problems else 'DIFFERENT: ' + '; '.join(problems[:2])}",
                flush=True,
            )
        identical = sum(c["identical"] for c in cases)
        tally = {
            "kills": sum(c["killed"] for c in cases),
            "during_checkpoint_writes": sum(c["mid_checkpoint_write"] for c in cases),
            "resumed": sum(c["then"] == "resumed" for c in cases),
            "identical_metrics": identical,
            "cases": len(cases),
            "reference_run_seconds": round(reference_seconds, 1),
            "reference_train_seconds": train_seconds,
            "steps": reference["training"]["steps"],
            "reference_test_accuracy": reference["test"].get("accuracy"),
        }
        print(json.dumps(tally))
        if args.out:
            args.out.write_text(json.dumps({"tally": tally, "cases": cases}, indent=2) + "\n")
        sys.exit(0 if identical == len(cases) else 1)


if __name__ == "__main__":
    main()
