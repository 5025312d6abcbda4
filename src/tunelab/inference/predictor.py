"""Batch scoring of texts with a classifier, shared by train, evaluate, predict and serve (one code path).

Loading a run's classifier from disk is `tunelab.runs.load_predictor`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from tunelab.data.labels import LabelMap
from tunelab.evaluation.metrics import softmax
from tunelab.models.precision import autocast


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
        if getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False):
            self.model = model.eval()  # bitsandbytes placed it on the GPU already
        else:
            device = "cuda" if torch.cuda.is_available() and not _is_int8(model) else "cpu"
            self.model = model.to(device).eval()  # type: ignore[arg-type]
        self.tokenizer = tokenizer
        self.labels = labels
        self.max_length = max_length
        self.precision = precision
        self.batch_size = batch_size

    @torch.inference_mode()
    def logits(self, texts: list[str]) -> np.ndarray:
        encoded = self.tokenizer(texts, truncation=True, max_length=self.max_length)
        ids = encoded["input_ids"]
        order = np.argsort([len(x) for x in ids], kind="stable")
        out = np.zeros((len(texts), len(self.labels.names)), dtype=np.float32)
        for start in range(0, len(texts), self.batch_size):
            index = order[start : start + self.batch_size]
            batch = self.tokenizer.pad(
                {k: [encoded[k][i] for i in index] for k in encoded}, return_tensors="np"
            )
            out[index] = self.scores(batch)
        return out

    def scores(self, batch: Any) -> np.ndarray:
        """Logits of one padded batch (numpy arrays in, numpy out)."""
        device = next(self.model.parameters()).device
        with autocast(self.precision, device.type):
            result = self.model(**{k: torch.from_numpy(v).to(device) for k, v in batch.items()})
        return result.logits.float().cpu().numpy()

    def predict(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(label ids, probabilities) for each text."""
        probabilities = softmax(self.logits(texts))
        return probabilities.argmax(-1), probabilities


class OnnxPredictor(Predictor):
    """The same batching and outputs, with ONNX Runtime doing the forward pass."""

    def __init__(
        self,
        session: Any,
        tokenizer: PreTrainedTokenizerBase,
        labels: LabelMap,
        max_length: int,
        batch_size: int = 64,
    ) -> None:
        self.model = session
        self.tokenizer, self.labels = tokenizer, labels
        self.max_length, self.batch_size = max_length, batch_size
        self.precision = "fp32"

    def scores(self, batch: Any) -> np.ndarray:
        return self.model.logits(batch)


def _is_int8(model: Any) -> bool:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return any(isinstance(m, DynamicLinear) for m in model.modules())


__all__ = ["OnnxPredictor", "Predictor"]
