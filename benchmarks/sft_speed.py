"""Causal-LM (instruction SFT) speed and memory on the packaged SmolLM2-135M-Instruct.

    python benchmarks/sft_speed.py [--steps 8] [--variants lora lora+packing ...]
        [--out benchmarks/sft_speed.json]

Each variant is `tunelab train recipes/sft-smollm2-lora.yaml` with a few overrides, built by the
same code (prepare_training) and run for `--steps` optimizer steps of 8 GSM8K examples (max
length 512), each in its own process so its peak RSS is its own. The first step is warm-up and
not timed. Reported: real (non-pad) tokens/s, the share of padding, median step time, model
FLOP utilization against the bf16 matmul peak measured in this run, peak RSS, and tunelab's
memory estimate next to the measured growth.

Variants: lora, lora+packing, lora+checkpointing, full, full+checkpointing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "sft-smollm2-lora.yaml"
VARIANTS: dict[str, list[str]] = {
    "lora": [],
    "lora+packing": ["task.packing=true"],
    "lora+checkpointing": ["train.gradient_checkpointing=true"],
    "full": ["method.name=full", "train.lr=2e-5"],
    "full+checkpointing": [
        "method.name=full",
        "train.lr=2e-5",
        "train.gradient_checkpointing=true",
    ],
}


def train_flops_per_token(config: Any, sequence: float, full: bool) -> float:
    """Matmul FLOPs per token of a Llama-style decoder: dense layers, attention and the LM head.

    Forward: 2 FLOPs per weight per token, and 4·H·s per layer for attention scores and values.
    Backward: activation gradients cost one forward more; weight gradients another, but only for
    trained weights (full fine-tuning; LoRA's adapters are negligible).
    """
    h, layers = config.hidden_size, config.num_hidden_layers
    kv = h * config.num_key_value_heads // config.num_attention_heads
    per_layer = h * h * 2 + h * kv * 2 + 3 * h * config.intermediate_size
    forward = 2 * (layers * per_layer + h * config.vocab_size) + layers * 4 * h * sequence
    return forward * (3 if full else 2)


def run_variant(name: str, steps: int) -> dict[str, Any]:
    import torch
    from transformers import TrainerCallback

    from tunelab.config import load_config
    from tunelab.workflows.train import prepare_training

    overrides = [
        *VARIANTS[name],
        f"train.max_steps={steps}",
        "data.max_length=512",
        "train.eval_on_start=false",
        "train.precision=auto",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load_config(RECIPE, [*overrides, f"output.dir={tmp}"])
        session = prepare_training(cfg)
        trainer = session.trainer
        collate = trainer.data_collator
        counts = {"real": 0, "padded": 0, "rows": 0}
        step_real: list[int] = []

        def counting(features: list[Any]) -> Any:
            batch = collate(features)
            real = sum(len(f["input_ids"]) for f in features)
            counts["real"] += real
            counts["padded"] += int(batch["input_ids"].numel())
            step_real.append(real)
            return batch

        trainer.data_collator = counting
        times: list[float] = []

        class StepClock(TrainerCallback):
            def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                self.started = time.perf_counter()

            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                times.append(time.perf_counter() - self.started)

        trainer.add_callback(StepClock())
        trainer.train()
        memory = session.memory.growth_mb()
        estimate = session.card["memory_estimate_mb"]
    timed, tokens = times[1:], step_real[1 : len(times)]
    sequence = counts["real"] / max(1, counts["padded"]) * 512
    flops = train_flops_per_token(
        session.model.config if hasattr(session.model, "config") else None,
        sequence,
        full=name.startswith("full"),
    )
    return {
        "variant": name,
        "precision": session.precision,
        "threads": torch.get_num_threads(),
        "steps_timed": len(timed),
        "median_step_seconds": statistics.median(timed),
        "real_tokens_per_second": sum(tokens) / sum(timed),
        "padding_share": 1 - counts["real"] / counts["padded"],
        "model_gflops_per_second": flops * sum(tokens) / sum(timed) / 1e9,
        "trainable_parameters": session.parameters["trainable"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "memory_estimate_mb": estimate["total"],
        "memory_measured_growth_mb": memory,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "sft_speed.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.worker_out.write_text(json.dumps(run_variant(args.worker, args.steps)))
        return
    sys.path.insert(0, str(Path(__file__).parent))
    from train_speed import matmul_peak

    peak = matmul_peak("bfloat16")
    rows = []
    for name in args.variants:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
            path = Path(out.name)
        print(f"== {name}", flush=True)
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--worker",
                name,
                "--worker-out",
                str(path),
                "--steps",
                str(args.steps),
            ],
            check=True,
        )
        row = json.loads(path.read_text())
        path.unlink()
        row["flop_utilization"] = row["model_gflops_per_second"] / peak
        rows.append(row)
    result = {"date": time.strftime("%Y-%m-%d"), "bf16_matmul_peak_gflops": peak, "rows": rows}
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\nbf16 matmul peak {peak:.0f} GFLOP/s")
    print(
        "| variant | step s (median) | real tokens/s | padding | model GFLOP/s | FLOP util. | peak RSS MB | memory estimate MB | measured growth MB |"
    )
    print("|---|" + "---:|" * 8)
    for r in rows:
        print(
            f"| {r['variant']} | {r['median_step_seconds']:.2f} | {r['real_tokens_per_second']:.0f} | {r['padding_share']:.1%} "
            f"| {r['model_gflops_per_second']:.1f} | {r['flop_utilization']:.1%} | {r['peak_rss_mb']:.0f} "
            f"| {r['memory_estimate_mb']:.0f} | {r['memory_measured_growth_mb']:.0f} |"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
