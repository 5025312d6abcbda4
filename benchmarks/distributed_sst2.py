"""One process against two (gloo, loopback) on the packaged MiniLM and the bundled SST-2.

    python benchmarks/distributed_sst2.py [--pairs exact shipped] [--max-train-rows N]
        [--epochs E] [--out benchmarks/distributed_sst2.json]

Each pair trains `recipes/sst2-minilm.yaml` twice with the same global batch of 32: once in one
process (batch 32, both cores) and once with `--nproc 2` (batch 16 per process, one core each).
The two runs of a pair go one after the other, each `tunelab train` in its own process tree.

- exact:   fp32 and no dropout, on 4,000 of the training rows for one epoch. Nothing is drawn per process, so the two loss curves must agree
           to float noise (gradients summed over two half batches instead of one batch).
- shipped: the recipe as shipped (bf16 autocast, the model's dropout). Dropout masks are drawn per
           process, so the curves differ step to step by sampling noise; the metrics must agree
           within the noise of two seeds (the paired bootstrap CI of the test-accuracy difference).

For each pair: the loss curves side by side (every logged step), the largest and the median
absolute difference, validation accuracy at each evaluation, test accuracy and macro-F1 of both,
the share of test rows predicted alike, a paired bootstrap 95% CI of the accuracy difference, and
the wall time of each run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "sst2-minilm.yaml"
TUNELAB = [sys.executable, "-m", "tunelab"]
PAIRS: dict[str, list[str]] = {
    # fp32 trains about 3x slower than bf16 here: the exact pair takes 4,000 rows, one epoch.
    "exact": [
        "train.precision=fp32",
        "model.dropout=0.0",
        "data.max_train_rows=4000",
        "train.epochs=1",
    ],
    "shipped": [],
}


def train(work: Path, name: str, nproc: int, extra: list[str]) -> dict[str, Any]:
    """One `tunelab train` of the recipe; its run directory's log, metrics and predictions."""
    batch = 32 // nproc
    args = [
        *TUNELAB,
        "train",
        str(RECIPE),
        f"output.dir={work}",
        f"output.name={name}",
        f"train.batch_size={batch}",
        "eval.forgetting=false",
        *extra,
    ]
    if nproc > 1:
        args += ["--nproc", str(nproc)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    start = time.perf_counter()
    result = subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{name} failed ({result.returncode}): {result.stderr[-2000:]}")
    run_dir = work / name
    log = [json.loads(line) for line in (run_dir / "logs" / "train_log.jsonl").open()]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    card = json.loads((run_dir / "run_card.json").read_text())
    with (run_dir / "test_predictions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    return {
        "nproc": nproc,
        "batch_size": batch,
        "seconds": round(seconds, 1),
        "processes": card.get("processes"),
        "train_loss": [(e["step"], e["loss"]) for e in log if "loss" in e],
        "eval": [(e["step"], e["eval_accuracy"], e["eval_loss"]) for e in log if "eval_loss" in e],
        "test_accuracy": metrics["test"]["accuracy"],
        "test_macro_f1": metrics["test"]["macro_f1"],
        "mean_train_loss": metrics["training"]["train_loss"],
        "train_seconds": metrics["training"]["train_seconds"],
        "examples_per_second": metrics["training"]["examples_per_second"],
        "predictions": rows,
    }


def correct(rows: list[dict[str, str]]) -> np.ndarray:
    return np.array([r["label"] == r["predicted"] for r in rows], dtype=float)


def paired_ci(a: np.ndarray, b: np.ndarray, draws: int = 10_000, seed: int = 0) -> list[float]:
    """95% percentile CI of mean(b) - mean(a), resampling test rows with both runs paired."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(draws, len(a)))
    diffs = b[idx].mean(axis=1) - a[idx].mean(axis=1)
    return [float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))]


def compare(one: dict[str, Any], two: dict[str, Any]) -> dict[str, Any]:
    steps_one = [s for s, _ in one["train_loss"]]
    steps_two = [s for s, _ in two["train_loss"]]
    if steps_one != steps_two:
        raise SystemExit(f"the runs logged different steps: {steps_one[:5]}... {steps_two[:5]}...")
    diffs = [
        abs(a - b) for (_, a), (_, b) in zip(one["train_loss"], two["train_loss"], strict=True)
    ]
    c1, c2 = correct(one["predictions"]), correct(two["predictions"])
    pairs = zip(one["predictions"], two["predictions"], strict=True)
    alike = np.mean(
        [r1["row"] == r2["row"] and r1["predicted"] == r2["predicted"] for r1, r2 in pairs]
    )
    return {
        "logged_steps": len(diffs),
        "train_loss_max_abs_diff": max(diffs),
        "train_loss_median_abs_diff": statistics.median(diffs),
        "mean_train_loss_diff": two["mean_train_loss"] - one["mean_train_loss"],
        "eval_accuracy_max_abs_diff": max(
            abs(a[1] - b[1]) for a, b in zip(one["eval"], two["eval"], strict=True)
        ),
        "test_accuracy_diff": two["test_accuracy"] - one["test_accuracy"],
        "test_accuracy_diff_ci95": paired_ci(c1, c2),
        "test_predictions_alike": float(alike),
        "wall_ratio_two_over_one": two["seconds"] / one["seconds"],
        "train_seconds_ratio_two_over_one": two["train_seconds"] / one["train_seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", nargs="+", choices=list(PAIRS), default=list(PAIRS))
    parser.add_argument("--max-train-rows", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--log-every", type=int, default=10, help="optimizer steps per loss point")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "distributed_sst2.json")
    args = parser.parse_args()
    common: list[str] = [f"train.log_every={args.log_every}"]
    if args.max_train_rows:
        common.append(f"data.max_train_rows={args.max_train_rows}")
    if args.epochs:
        common.append(f"train.epochs={args.epochs}")
    results: dict[str, Any] = {
        "command": " ".join(["python", "benchmarks/distributed_sst2.py", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d"),
        "recipe": str(RECIPE.relative_to(ROOT)),
        "overrides": common,
        "pairs": {},
    }
    with tempfile.TemporaryDirectory(prefix="tunelab-ddp-") as tmp:
        work = Path(tmp)
        for pair in args.pairs:
            extra = [*PAIRS[pair], *common]
            one = train(work, f"{pair}-1", 1, extra)
            two = train(work, f"{pair}-2", 2, extra)
            summary = compare(one, two)
            for run in (one, two):
                run.pop("predictions")
            results["pairs"][pair] = {"overrides": extra, "one": one, "two": two, **summary}
            print(pair, json.dumps(summary, indent=1), flush=True)
            args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
