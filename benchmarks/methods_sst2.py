"""Each adaptation method on the packaged MiniLM, same SST-2 slice and budget, side by side.

    python benchmarks/methods_sst2.py [--rows 2000] [--epochs 2] [--only lora lora-dora ...]
        [--out benchmarks/methods_sst2.json]

Prints trainable-parameter share, dev accuracy/macro-F1 and wall time per method. The learning
rate differs by method family (adapters train few weights and want a larger step); it is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import tunelab
from tunelab.workflows.check import build_checked as build_config

ROOT = Path(__file__).resolve().parents[1]
METHODS = {
    "full": ({}, 1e-4),
    "freeze": ({"freeze": {"embeddings": True, "bottom_layers": 3}}, 1e-4),
    "gradual_unfreeze": (
        {"gradual": {"every_steps": 15}},
        1e-4,
    ),  # all 7 groups open by step 105 of 126
    "llrd": ({"name": "full", "llrd": 0.8}, 1e-4),
    "lora": ({"lora": {"r": 8}}, 1e-3),
    # peft's LoRA variants (method.lora.*), same rank, lr and budget as the lora row
    "lora-dora": ({"name": "lora", "lora": {"r": 8, "use_dora": True}}, 1e-3),
    "lora-rslora": ({"name": "lora", "lora": {"r": 8, "use_rslora": True}}, 1e-3),
    "lora-gaussian": ({"name": "lora", "lora": {"r": 8, "init": "gaussian"}}, 1e-3),
    "lora-pissa": ({"name": "lora", "lora": {"r": 8, "init": "pissa"}}, 1e-3),
    "lora-olora": ({"name": "lora", "lora": {"r": 8, "init": "olora"}}, 1e-3),
    "lora-all-linear": ({"name": "lora", "lora": {"r": 8, "target_modules": "all-linear"}}, 1e-3),
    "ia3": ({}, 3e-3),
    "prefix": ({"virtual_tokens": {"num_virtual_tokens": 20}}, 1e-2),
    "prompt": ({"virtual_tokens": {"num_virtual_tokens": 20}}, 1e-2),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "methods_sst2.json")
    args = parser.parse_args()
    results = []
    for label, (extra, lr) in METHODS.items():
        if args.only and label not in args.only:
            continue
        method = {"name": label, **extra}
        cfg = build_config(
            {
                "data": {
                    "train_file": str(ROOT / "data/sst2/train_sample.tsv"),
                    "test_file": str(ROOT / "data/sst2/dev.tsv"),
                    "max_train_rows": args.rows,
                    "max_length": 64,
                },
                "method": method,
                "train": {"epochs": args.epochs, "lr": lr, "seed": 42, "eval_on_start": False},
                "eval": {"baselines": True},
                "output": {
                    "dir": str(ROOT / "runs" / "bench-methods"),
                    "name": label,
                    "overwrite": True,
                },
            }
        )
        started = time.perf_counter()
        result = tunelab.train(cfg)
        results.append(
            {
                "method": label,
                "lr": lr,
                "trainable_share": result.metrics["parameters"]["trainable_share"],
                "trainable": result.metrics["parameters"]["trainable"],
                "dev_accuracy": result.metrics["test"]["accuracy"],
                "dev_macro_f1": result.metrics["test"]["macro_f1"],
                "majority_accuracy": result.metrics["baselines"]["majority"]["accuracy"],
                "wall_seconds": round(time.perf_counter() - started, 1),
                # the saved model (an adapter converted back to plain LoRA for pissa/olora),
                # reloaded from the run directory and scored again on the same test split
                "reloaded_accuracy": tunelab.evaluate(result.run_dir).get("accuracy"),
            }
        )
    print(
        f"\n{'method':<18}{'lr':>8}{'trainable':>12}{'share':>9}{'dev acc':>9}{'dev F1':>9}{'reload':>9}{'wall s':>8}"
    )
    for r in results:
        print(
            f"{r['method']:<18}{r['lr']:>8.0e}{r['trainable']:>12,}{r['trainable_share']:>9.2%}"
            f"{r['dev_accuracy']:>9.4f}{r['dev_macro_f1']:>9.4f}{r['reloaded_accuracy']:>9.4f}{r['wall_seconds']:>8.1f}"
        )
    args.out.write_text(
        json.dumps({"rows": args.rows, "epochs": args.epochs, "results": results}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
