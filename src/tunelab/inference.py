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
from tunelab.errors import ConfigError, RunDirError
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

    @classmethod
    def from_run_dir(
        cls, run_dir: str | Path, batch_size: int = 64, load_in: str | None = None
    ) -> Predictor:
        """The run's (or export's) classifier: safetensors, int8 safetensors or ONNX, as found.

        `load_in` ("4bit" or "8bit") quantizes full-precision weights with bitsandbytes on a GPU.
        """
        run_dir = Path(run_dir)
        model_dir = run_dir / "model"
        if not any((model_dir / name).is_file() for name in ("config.json", "adapter_config.json")):
            card = read_json(run_dir / "run_card.json")
            from tunelab.rundir import stale_status

            status = f" (run status: {stale_status(card) or card.get('status')})" if card else ""
            raise RunDirError(
                f"{run_dir} has no trained model in model/{status}. Pass the directory of a finished `tunelab train` run."
            )
        card = read_json(run_dir / "run_card.json") or {}
        labels = LabelMap.load(model_dir / "labels.json")
        tokenizer = load_tokenizer(model_dir, ModelConfig(name=str(model_dir)))
        max_length = int(card.get("max_length", 512))
        from tunelab.deploy.int8 import INT8_FILE, load_int8
        from tunelab.deploy.onnx import ONNX_FILE, OnnxClassifier

        stored_as = next((f for f in (ONNX_FILE, INT8_FILE) if (model_dir / f).is_file()), None)
        if load_in is not None and stored_as is not None:
            raise ConfigError(
                f"{run_dir} is stored as {stored_as}, which bitsandbytes cannot load; "
                "pass a run or an hf/merged export to --load-in."
            )
        if stored_as == ONNX_FILE:
            return OnnxPredictor(
                OnnxClassifier(model_dir / ONNX_FILE), tokenizer, labels, max_length, batch_size
            )
        if stored_as == INT8_FILE:
            model = load_int8(model_dir, AutoModelForSequenceClassification)
            from tunelab.training.guards import refuse_non_finite

            refuse_non_finite(model, str(model_dir))
            return cls(model, tokenizer, labels, max_length, "fp32", batch_size)
        model = _load_model(model_dir, labels, card, load_kwargs=bitsandbytes_kwargs(load_in))
        precision = resolve_precision("auto") if card.get("precision") == "bf16" else "fp32"
        return cls(model, tokenizer, labels, max_length, precision, batch_size)

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
            out[index] = self._scores(batch)
        return out

    def _scores(self, batch: Any) -> np.ndarray:
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

    def _scores(self, batch: Any) -> np.ndarray:
        return self.model.logits(batch)


def _is_int8(model: Any) -> bool:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return any(isinstance(m, DynamicLinear) for m in model.modules())


def bitsandbytes_kwargs(load_in: str | None) -> dict[str, Any]:
    """`from_pretrained` arguments that load the weights in 4 or 8 bits on the GPU (bitsandbytes)."""
    if load_in is None:
        return {}
    if load_in not in ("4bit", "8bit"):
        raise ConfigError(f"--load-in must be 4bit or 8bit; got '{load_in}'.")
    if not torch.cuda.is_available():
        raise ConfigError(
            f"loading in {load_in} needs a CUDA GPU (bitsandbytes); this machine has none. "
            "On CPU, export with --quantize int8 instead."
        )
    from tunelab.methods.quantized import compute_dtype, cuda_problem, quantization_config

    problem = cuda_problem()
    if problem:
        raise ConfigError(problem.replace("method qlora", f"loading in {load_in}"))
    dtype = compute_dtype()
    if load_in == "4bit":
        config = quantization_config(dtype)
    else:
        from transformers import BitsAndBytesConfig

        config = BitsAndBytesConfig(load_in_8bit=True)
    return {"quantization_config": config, "dtype": dtype, "device_map": {"": 0}}


AUTO_CLASS_BY_TASK = {
    "classification": "AutoModelForSequenceClassification",
    "masked_lm": "AutoModelForMaskedLM",
    "causal_lm": "AutoModelForCausalLM",
    "seq2seq": "AutoModelForSeq2SeqLM",
}


def load_run_model(run_dir: str | Path, load_in: str | None = None) -> PreTrainedModel:
    """The trained model of any run (full weights, or an adapter put back onto its base model).

    `load_in` ("4bit"/"8bit") loads the weights through bitsandbytes on a CUDA GPU.
    """
    import transformers

    run_dir = Path(run_dir)
    card = read_json(run_dir / "run_card.json") or {}
    task = card.get("task", "classification")
    labels_file = run_dir / "model" / "labels.json"
    labels = (
        LabelMap.load(labels_file) if task == "classification" and labels_file.is_file() else None
    )
    return _load_model(
        run_dir / "model",
        labels,
        card,
        getattr(transformers, AUTO_CLASS_BY_TASK[task]),
        bitsandbytes_kwargs(load_in),
    )


def _load_model(
    model_dir: Path,
    labels: LabelMap | None,
    card: dict[str, Any],
    auto_class: Any = AutoModelForSequenceClassification,
    load_kwargs: dict[str, Any] | None = None,
) -> PreTrainedModel:
    """A full model directory, or an adapter directory put back onto its base model.

    A model with NaN/inf weights (a diverged run) is refused: it would answer NaN for everything.
    """
    from tunelab.training.guards import refuse_non_finite

    model = _load_weights(model_dir, labels, card, auto_class, load_kwargs)
    refuse_non_finite(model, str(model_dir))
    return model


def _load_weights(
    model_dir: Path,
    labels: LabelMap | None,
    card: dict[str, Any],
    auto_class: Any,
    load_kwargs: dict[str, Any] | None,
) -> PreTrainedModel:
    if not (model_dir / "adapter_config.json").is_file():
        return load_pretrained(
            auto_class, model_dir, ModelConfig(name=str(model_dir)), **(load_kwargs or {})
        )
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
    base = _base_model(auto_class, base_dir, source, head, load_kwargs or {})
    adapter = read_json(model_dir / "adapter_config.json") or {}
    if adapter.get("peft_type") == "PREFIX_TUNING":
        from tunelab.methods.cache_name import accept_past_key_values

        accept_past_key_values(base)
    return PeftModel.from_pretrained(base, model_dir)  # type: ignore[return-value]


def _base_model(
    auto_class: Any,
    base_dir: Path,
    source: str,
    head: dict[str, Any] | None,
    load_kwargs: dict[str, Any],
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
        auto_class,
        base_dir,
        ModelConfig(name=source),
        head,
        ignore_mismatched_sizes=True,
        **load_kwargs,
    )
