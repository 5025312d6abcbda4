"""A training file bigger than memory: peak RSS and time of data preparation and tokenization.

    python benchmarks/large_data.py --rows 5000000                    # the table in RESULTS.md
    python benchmarks/large_data.py --rows 1000000 --modes pandas mapped   # both paths side by side

A seeded generator writes a CSV training file (`text,label`; about 210 bytes a row, so 5M rows
are about 1 GB) with 1% exact repeats, a few texts under two labels, and small validation and
test files of which a few rows copy train rows (leaks the check must find). Each mode then runs
in its own child process, so its peak RSS (`ru_maxrss`) is its own:

- `pandas`: `data.memory_mapped=false`, the in-memory path every file took before;
- `mapped`: `data.memory_mapped=true`, the file read through memory-mapped Arrow (datasets).

A child runs what `tunelab train` runs before the first step: `task.prepare_data` (read, clean,
dedup, split, leakage check), the data report, and `task.tokenize` with the packaged MiniLM
tokenizer. It reports the rows kept, the leaks and duplicates found, the time of each stage and
its peak RSS: `peak_rss_mb` (VmHWM, which counts the pages of the memory-mapped Arrow files
read, reclaimable by the kernel) and `peak_anon_mb` (RssAnon sampled every 0.1 s: the memory the
process itself allocated), each also net of the libraries and tokenizer loaded before any data
(`data_*`). A second `mapped` run reads the caches the first one wrote (tokenization keyed by
content), which is what a rerun or the other ranks of a multi-process run see.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WORDS = [
    "".join(random.Random(i).choice("abcdefghijklmnopqrstuvwxyz") for _ in range(3 + i % 6))
    for i in range(4000)
]
POSITIVE = ["good", "great", "superb", "lovely", "fine", "enjoyable"]
NEGATIVE = ["bad", "awful", "dull", "poor", "boring", "tedious"]


def sentence(rng: random.Random) -> tuple[str, str]:
    words = rng.choices(WORDS, k=rng.randint(20, 50))
    label = rng.random() < 0.5
    for _ in range(3):
        words[rng.randrange(len(words))] = rng.choice(POSITIVE if label else NEGATIVE)
    return " ".join(words), "positive" if label else "negative"


def generate(folder: Path, rows: int, seed: int = 0) -> dict[str, Path]:
    """train.csv with `rows` rows (1% exact repeats, 20 texts under both labels), and 5,000-row
    validation and test files of which 25 rows each copy a train row."""
    import csv

    rng = random.Random(seed)
    kept: list[tuple[str, str]] = []  # a reservoir of train rows to repeat and to leak
    paths = {name: folder / f"{name}.csv" for name in ("train", "validation", "test")}
    with paths["train"].open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i in range(rows):
            if kept and rng.random() < 0.01:
                text, label = rng.choice(kept)
                if i % 50_000 == 7:  # a few texts repeated under the other label: conflicts
                    label = "negative" if label == "positive" else "positive"
            else:
                text, label = sentence(rng)
                if len(kept) < 10_000:
                    kept.append((text, label))
                elif rng.random() < 0.001:
                    kept[rng.randrange(len(kept))] = (text, label)
            writer.writerow([text, label])
    for name in ("validation", "test"):
        with paths[name].open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            for i in range(5_000):
                writer.writerow(rng.choice(kept) if i % 200 == 0 else sentence(rng))
    return paths


CHILD = r"""
import json, resource, sys, time
from pathlib import Path
from tunelab.config import load_config
from tunelab.tasks import task_for
from tunelab.models import load_tokenizer, model_dir_for
from tunelab.data.inspect import build_report

import threading

def status_mb(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024

def rss_mb():
    return status_mb("VmRSS")

peak_anon = [0.0]  # RssAnon: memory the process allocated, not pages of files it has mapped

def sample():
    while True:
        peak_anon[0] = max(peak_anon[0], status_mb("RssAnon"))
        time.sleep(0.1)

threading.Thread(target=sample, daemon=True).start()

config, mode = sys.argv[1], sys.argv[2]
cfg = load_config(config, [f"data.memory_mapped={'true' if mode == 'mapped' else 'false'}"])
task = task_for(cfg)
tokenizer = load_tokenizer(model_dir_for(cfg.model), cfg.model)
times = {"base_rss_mb": rss_mb()}  # the libraries and the tokenizer, before any data
base_anon = status_mb("RssAnon")
start = time.perf_counter()
data = task.prepare_data(cfg)
times["prepare_s"] = time.perf_counter() - start
times["rss_after_prepare_mb"] = rss_mb()
start = time.perf_counter()
report = build_report(data, tokenizer, cfg.data.max_length)
times["report_s"] = time.perf_counter() - start
start = time.perf_counter()
encoded = task.tokenize(tokenizer, data, cfg)
times["tokenize_s"] = time.perf_counter() - start
train_file = report["files"][cfg.data.train_file]
print(json.dumps({
    **times,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "peak_rss_workers_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    "peak_anon_mb": peak_anon[0],
    "base_anon_mb": base_anon,
    "train_rows_in": train_file["rows_in"],
    "train_rows": len(encoded["train"]),
    "exact_duplicates_dropped": train_file["dropped"].get("exact_duplicate", 0),
    "conflicting_rows_dropped": train_file["dropped"].get("conflicting_labels", 0),
    "leaked_rows": report["leakage"]["leaked_rows"],
    "leaked_exact": report["leakage"]["test"]["exact"] + report["leakage"]["validation"]["exact"],
    "tokens_first_train_row": len(encoded["train"][0]["input_ids"]),
}))
"""


def run_mode(config: Path, mode: str, env: dict[str, str]) -> dict[str, Any]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(config), mode],
        capture_output=True,
        text=True,
        env=env,
    )
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return {"mode": mode, "failed": " | ".join(tail), "wall_s": time.perf_counter() - start}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"mode": mode, **result, "wall_s": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--modes", nargs="+", default=["mapped", "mapped"])
    parser.add_argument(
        "--work", type=Path, help="keep the generated files here (default: a temp folder)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "large_data.json")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="tunelab-large-"))
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    paths = {n: work / f"{n}.csv" for n in ("train", "validation", "test")}
    marker = work / f"rows-{args.rows}"
    if not marker.exists():
        paths = generate(work, args.rows)
        marker.touch()
    generated_s = time.perf_counter() - start
    config = work / "config.yaml"
    config.write_text(
        "data:\n"
        f"  train_file: {paths['train']}\n  validation_file: {paths['validation']}\n"
        f"  test_file: {paths['test']}\n  max_length: 128\n"
        f"output:\n  dir: {work / 'runs'}\n",
        encoding="utf-8",
    )
    env = {**os.environ, "HF_DATASETS_CACHE": str(work / "datasets-cache"), "HF_HUB_OFFLINE": "1"}
    size_mb = paths["train"].stat().st_size / 2**20
    print(
        f"train file {size_mb:,.0f} MB, {args.rows:,} rows (generated in {generated_s:.0f} s)",
        flush=True,
    )
    results = []
    for mode in args.modes:
        result = run_mode(config, mode, env)
        if "peak_rss_mb" in result:
            result["data_rss_mb"] = result["peak_rss_mb"] - result["base_rss_mb"]
            result["data_rss_over_file"] = result["data_rss_mb"] / size_mb
            result["data_anon_mb"] = result["peak_anon_mb"] - result["base_anon_mb"]
            result["data_anon_over_file"] = result["data_anon_mb"] / size_mb
        print(json.dumps(result), flush=True)
        results.append(result)
    record = {
        "rows": args.rows,
        "train_file_mb": size_mb,
        "machine_cpus": os.cpu_count(),
        "results": results,
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
