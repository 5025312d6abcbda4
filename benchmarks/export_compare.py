"""Size, test accuracy and speed of a classification run's exports: hf, int8, ONNX, ONNX+int8, pruned.

    python benchmarks/export_compare.py [--run runs/sst2-minilm] [--repeats 5]

Each variant is written with `tunelab.workflows.export.export_run` (what `tunelab export` runs),
which measures the export and the run side by side in the same process: weight-file size, test
accuracy on the run's own test split and texts/s over those texts (median of --repeats passes).
The run is timed as `tunelab predict` runs it (bf16 autocast where the CPU has native bf16)
and also in fp32; ratios are against those timings of the same call, so the machine's noise
between variants does not enter them.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {  # name: (format, quantize, prune)
    "hf": ("hf", None, None),
    "hf + int8": ("hf", "int8", None),
    "onnx": ("onnx", None, None),
    "onnx + int8": ("onnx", "int8", None),
    "hf + prune 0.3": ("hf", None, 0.3),
    "onnx + int8 + prune 0.3": ("onnx", "int8", 0.3),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / "sst2-minilm")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "export_compare.json")
    args = parser.parse_args()

    import torch

    from tunelab.deploy import measure
    from tunelab.workflows.export import export_run

    original = measure.measure_against_run
    results: dict[str, Any] = {
        "run": str(args.run),
        "cpu_threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "variants": {},
    }
    with tempfile.TemporaryDirectory() as scratch:
        for name, (fmt, quantize, prune) in VARIANTS.items():
            measure.measure_against_run = lambda run, export: original(run, export, args.repeats)
            record = export_run(
                args.run, Path(scratch) / name.replace(" ", ""), fmt, quantize, prune
            )
            results["variants"][name] = record["measured"] | {
                k: record.get(k) for k in ("onnx", "int8", "pruning")
            }
    measure.measure_against_run = original
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


def table(results: dict[str, Any]) -> str:
    lines = [
        "| variant | weights MB | test acc. | change | macro-F1 | texts/s | x run (bf16) | x run (fp32) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    first = next(iter(results["variants"].values()))
    accuracy, speed = first["accuracy"], first["speed"]
    lines.append(
        f"| the run (bf16 autocast) | {first['size_mb']['run']:.1f} | {accuracy['run']['accuracy']:.4f} | | "
        f"{accuracy['run']['macro_f1']:.4f} | {speed['run_texts_per_s']:.0f} | 1.00 | |"
    )
    for name, m in results["variants"].items():
        a, s = m["accuracy"], m["speed"]
        fp32 = s.get("run_fp32_texts_per_s")
        versus_fp32 = f"{s['export_texts_per_s'] / fp32:.2f}" if fp32 else ""
        lines.append(
            f"| {name} | {m['size_mb']['export']:.1f} | {a['export']['accuracy']:.4f} | {a['change']['accuracy']:+.4f} | "
            f"{a['export']['macro_f1']:.4f} | {s['export_texts_per_s']:.0f} | {s['ratio']:.2f} | {versus_fp32} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
