"""What an export costs and saves against its run: weight size, speed and test-split accuracy.

Both models are loaded the way `tunelab predict` loads them (the run with its training
precision, the export as stored), so the figures are the ones a user of either would see.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from tunelab.errors import TunelabError
from tunelab.tasks import TASKS, task_spec

WEIGHT_SUFFIXES = (".safetensors", ".onnx", ".onnx.data")


def weights_mb(model_dir: Path) -> float:
    return (
        sum(f.stat().st_size for f in model_dir.iterdir() if f.name.endswith(WEIGHT_SUFFIXES)) / 1e6
    )


def measure_against_run(run_dir: Path, export_dir: Path, repeats: int = 3) -> dict[str, Any]:
    """Sizes always; speed and accuracy on the run's test split for classification runs."""
    from tunelab.runs import RunDir, load_predictor
    from tunelab.tasks.classification import score_split

    card = RunDir(run_dir).card_or_empty()
    result: dict[str, Any] = {
        "size_mb": {
            "run": weights_mb(run_dir / "model"),
            "export": weights_mb(export_dir / "model"),
            "run_is_adapter_only": (run_dir / "model" / "adapter_config.json").is_file(),
        }
    }
    task = card.get("task", "classification")
    if task not in TASKS or task_spec(task).output != "labels":
        result["accuracy"] = {
            "skipped": f"speed and accuracy are measured for classification runs, not {card.get('task')}"
        }
        return result
    try:
        test = RunDir(run_dir).test_split()
    except TunelabError as exc:
        result["accuracy"] = {"skipped": str(exc).splitlines()[0]}
        return result
    texts = test["text"].astype(str).tolist()
    run_predictor, export_predictor = (
        load_predictor(run_dir),
        load_predictor(export_dir),
    )
    before, after = score_split(run_predictor, test), score_split(export_predictor, test)
    keys = ("accuracy", "macro_f1")
    result["accuracy"] = {
        "rows": len(test),
        "run": {k: before[k] for k in keys},
        "export": {k: after[k] for k in keys},
        "change": {k: after[k] - before[k] for k in keys},
    }
    run_speed = _texts_per_second(run_predictor, texts, repeats)
    export_speed = _texts_per_second(export_predictor, texts, repeats)
    result["speed"] = {
        "texts": len(texts),
        "repeats": repeats,
        "statistic": "median",
        "run_precision": run_predictor.precision,
        "run_device": _device(run_predictor),
        "export_device": _device(export_predictor),
        "run_texts_per_s": run_speed,
        "export_texts_per_s": export_speed,
        "ratio": export_speed / run_speed,
    }
    if run_predictor.precision != "fp32":  # the same model in fp32: what ONNX and int8 replace
        run_predictor.precision = "fp32"
        result["speed"]["run_fp32_texts_per_s"] = _texts_per_second(run_predictor, texts, repeats)
    return result


def _device(predictor: Any) -> str:
    parameters = getattr(predictor.model, "parameters", None)
    return next(parameters()).device.type if parameters else "cpu"  # ONNX Runtime: CPU provider


def _texts_per_second(predictor: Any, texts: list[str], repeats: int) -> float:
    predictor.logits(texts[:64])  # warm-up: first-call allocations and kernel selection
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        predictor.logits(texts)
        seconds.append(time.perf_counter() - start)
    return len(texts) / statistics.median(seconds)
