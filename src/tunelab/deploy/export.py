"""`tunelab export`: a run's model as a standalone directory, checked against the run itself.

`hf` copies the model as it is (full weights, or adapter plus the base it needs);
`merged` folds LoRA/IA3 adapters into the base weights so no `peft` is needed to load it.
The export is laid out like a run directory (`model/`, `run_card.json`), so `tunelab predict`
and `tunelab evaluate` take it as they take a run.
Every export compares its outputs with the run's model on a probe batch and records the
largest difference in `export.json`; above the tolerance it fails and writes nothing.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel

from tunelab.config import ModelConfig
from tunelab.errors import ConfigError, RunDirError
from tunelab.inference import load_run_model
from tunelab.io import atomic_directory, atomic_write_json
from tunelab.models import load_tokenizer

FORMATS = ("hf", "merged")
PARITY_TOLERANCE = 1e-4  # fp32 merging reorders sums; anything above this is a real difference
PROBE_TEXTS = (
    "The service was quick and the food was excellent.",
    "I would not recommend this to anyone.",
    "Results are expected next quarter, according to the report.",
    "ok",
)
MERGEABLE = ("LORA", "IA3")


def export_run(run_dir: str | Path, out_dir: str | Path, fmt: str = "merged") -> dict[str, Any]:
    """Write the export into `out_dir` (new or replaced whole); returns what export.json records."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if fmt not in FORMATS:
        raise ConfigError(f"export format '{fmt}' is unknown; choose one of {', '.join(FORMATS)}.")
    if out_dir.resolve() == run_dir.resolve() or run_dir.resolve() in out_dir.resolve().parents:
        raise ConfigError(
            f"export directory {out_dir} is inside the run {run_dir}; pick a directory outside it."
        )
    model = load_run_model(run_dir).eval()
    tokenizer = load_tokenizer(run_dir / "model", ModelConfig(name=str(run_dir / "model")))
    probe = tokenizer(list(PROBE_TEXTS), padding=True, return_tensors="pt")
    reference = _outputs(model, probe)

    adapter = _adapter_type(model)
    if fmt == "merged":
        if adapter is None:
            raise RunDirError(
                f"{run_dir} holds a fully fine-tuned model, which has nothing to merge. Use --format hf."
            )
        if adapter not in MERGEABLE:
            raise RunDirError(
                f"{run_dir} holds a {adapter} adapter, which has no weights to merge (virtual tokens). Use --format hf."
            )
        model = model.merge_and_unload()
    difference = float((_outputs(model, probe) - reference).abs().max())
    if difference > PARITY_TOLERANCE:
        raise RunDirError(
            f"the {fmt} export differs from the run's model by {difference:.2e} (tolerance {PARITY_TOLERANCE:g}); nothing was written."
        )
    record = {
        "run": str(run_dir.resolve()),
        "format": fmt,
        "adapter": adapter,
        "probe_texts": len(PROBE_TEXTS),
        "max_abs_difference": difference,
        "tolerance": PARITY_TOLERANCE,
    }
    with atomic_directory(
        out_dir
    ) as tmp:  # laid out like a run: predict and evaluate take it as one
        model.save_pretrained(tmp / "model")
        tokenizer.save_pretrained(tmp / "model")
        if (run_dir / "model" / "labels.json").is_file():
            shutil.copy2(run_dir / "model" / "labels.json", tmp / "model" / "labels.json")
        card = json.loads((run_dir / "run_card.json").read_text(encoding="utf-8"))
        atomic_write_json(tmp / "run_card.json", {**card, "export": record})
        atomic_write_json(tmp / "export.json", record)
    return record


def _adapter_type(model: PreTrainedModel) -> str | None:
    config = getattr(model, "peft_config", None)
    if not config:
        return None
    return str(next(iter(config.values())).peft_type.value)


@torch.inference_mode()
def _outputs(model: PreTrainedModel, batch: Any) -> torch.Tensor:
    device = next(model.parameters()).device
    inputs = {k: v.to(device) for k, v in batch.items()}
    if getattr(model.config, "is_encoder_decoder", False):  # the decoder reads the probe too
        inputs["decoder_input_ids"] = inputs["input_ids"]
    return model(**inputs).logits.float().cpu()
