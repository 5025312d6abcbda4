"""Batch inference for classification runs, shared by train, evaluate, predict (one code path)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import (
    AutoModelForSequenceClassification,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from tunelab.config import ModelConfig
from tunelab.data.labels import LabelMap
from tunelab.errors import RunDirError
from tunelab.evaluation.metrics import softmax
from tunelab.io import read_json
from tunelab.models import load_pretrained, load_tokenizer, resolve_model_dir
from tunelab.training.precision import autocast, resolve_precision


class Predictor:
    """Scores texts in length-sorted batches (little padding), returns results in input order."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        labels: LabelMap,
        max_length: int,
        precision: str = "fp32",
        batch_size: int = 64,
    ) -> None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = model.to(device).eval()  # type: ignore[arg-type]
        self.tokenizer = tokenizer
        self.labels = labels
        self.max_length = max_length
        self.precision = precision
        self.batch_size = batch_size

    @classmethod
    def from_run_dir(cls, run_dir: str | Path, batch_size: int = 64) -> Predictor:
        run_dir = Path(run_dir)
        model_dir = run_dir / "model"
        if not any((model_dir / name).is_file() for name in ("config.json", "adapter_config.json")):
            card = read_json(run_dir / "run_card.json")
            status = f" (run status: {card.get('status')})" if card else ""
            raise RunDirError(
                f"{run_dir} has no trained model in model/{status}. Pass the directory of a finished `tunelab train` run."
            )
        card = read_json(run_dir / "run_card.json") or {}
        labels = LabelMap.load(model_dir / "labels.json")
        model = _load_model(model_dir, labels, card)
        tokenizer = load_tokenizer(model_dir, ModelConfig(name=str(model_dir)))
        precision = resolve_precision("auto") if card.get("precision") == "bf16" else "fp32"
        return cls(
            model, tokenizer, labels, int(card.get("max_length", 512)), precision, batch_size
        )

    @torch.inference_mode()
    def logits(self, texts: list[str]) -> np.ndarray:
        encoded = self.tokenizer(texts, truncation=True, max_length=self.max_length)
        ids = encoded["input_ids"]
        order = np.argsort([len(x) for x in ids], kind="stable")
        out = np.zeros((len(texts), self.model.config.num_labels), dtype=np.float32)
        device = next(self.model.parameters()).device
        for start in range(0, len(texts), self.batch_size):
            index = order[start : start + self.batch_size]
            batch = self.tokenizer.pad(
                {k: [encoded[k][i] for i in index] for k in encoded}, return_tensors="pt"
            )
            with autocast(self.precision, device.type):
                result = self.model(**{k: v.to(device) for k, v in batch.items()})
            out[index] = result.logits.float().cpu().numpy()
        return out

    def predict(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(label ids, probabilities) for each text."""
        probabilities = softmax(self.logits(texts))
        return probabilities.argmax(-1), probabilities


AUTO_CLASS_BY_TASK = {
    "classification": "AutoModelForSequenceClassification",
    "masked_lm": "AutoModelForMaskedLM",
    "causal_lm": "AutoModelForCausalLM",
    "seq2seq": "AutoModelForSeq2SeqLM",
}


def load_run_model(run_dir: str | Path) -> PreTrainedModel:
    """The trained model of any run (full weights, or an adapter put back onto its base model)."""
    import transformers

    run_dir = Path(run_dir)
    card = read_json(run_dir / "run_card.json") or {}
    task = card.get("task", "classification")
    labels_file = run_dir / "model" / "labels.json"
    labels = (
        LabelMap.load(labels_file) if task == "classification" and labels_file.is_file() else None
    )
    return _load_model(
        run_dir / "model", labels, card, getattr(transformers, AUTO_CLASS_BY_TASK[task])
    )


def _load_model(
    model_dir: Path,
    labels: LabelMap | None,
    card: dict[str, Any],
    auto_class: Any = AutoModelForSequenceClassification,
) -> PreTrainedModel:
    """A full model directory, or an adapter directory put back onto its base model."""
    if not (model_dir / "adapter_config.json").is_file():
        return load_pretrained(auto_class, model_dir, ModelConfig(name=str(model_dir)))
    from peft import PeftModel

    source = card.get("model", {}).get("source")
    if not source:
        raise RunDirError(
            f"{model_dir} holds an adapter, but run_card.json does not name its base model. Re-run training."
        )
    recorded = Path(card.get("model", {}).get("resolved_dir") or "")
    base_dir = recorded if (recorded / "config.json").is_file() else resolve_model_dir(source)
    head = (
        {"num_labels": len(labels.names), "id2label": labels.id2label, "label2id": labels.label2id}
        if labels
        else None
    )
    base = _base_model(auto_class, base_dir, source, head)
    return PeftModel.from_pretrained(base, model_dir)  # type: ignore[return-value]


def _base_model(
    auto_class: Any, base_dir: Path, source: str, head: dict[str, Any] | None
) -> PreTrainedModel:
    """The base an adapter was trained on: for seq2seq from an encoder, the same encoder pair."""
    from transformers import AutoConfig

    if auto_class.__name__ == "AutoModelForSeq2SeqLM" and not getattr(
        AutoConfig.from_pretrained(base_dir), "is_encoder_decoder", False
    ):
        from tunelab.config import RunConfig
        from tunelab.tasks.seq2seq import encoder_pair

        return encoder_pair(base_dir, RunConfig(model=ModelConfig(name=source)))
    return load_pretrained(
        auto_class, base_dir, ModelConfig(name=source), head, ignore_mismatched_sizes=True
    )
