"""Load what a run directory holds: its model (full weights, an adapter on its base, int8 or
ONNX), a classifier to score texts with, a generator to write text with.

One path for train, evaluate, predict, generate, export and serve.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, PreTrainedModel

from tunelab.config import ModelConfig
from tunelab.data import chat_format
from tunelab.data.labels import LabelMap
from tunelab.errors import ConfigError, RunDirError
from tunelab.inference.generator import Generator
from tunelab.inference.int8 import INT8_FILE, load_int8
from tunelab.inference.onnx import ONNX_FILE, OnnxClassifier
from tunelab.inference.predictor import OnnxPredictor, Predictor
from tunelab.io import read_json
from tunelab.models import load_pretrained, load_tokenizer, resolve_model_dir
from tunelab.models.precision import resolve_precision
from tunelab.models.weights import refuse_non_finite
from tunelab.runs.directory import RunDir
from tunelab.tasks import TASKS, task_spec


def load_predictor(
    run_dir: str | Path, batch_size: int = 64, load_in: str | None = None
) -> Predictor:
    """The run's (or export's) classifier: safetensors, int8 safetensors or ONNX, as found.

    `load_in` ("4bit" or "8bit") quantizes full-precision weights with bitsandbytes on a GPU.
    """
    run = RunDir(run_dir)
    run_dir = run.path
    model_dir = run.require_model()
    card = run.card_or_empty()
    labels = LabelMap.load(model_dir / "labels.json")
    tokenizer = load_tokenizer(model_dir, ModelConfig(name=str(model_dir)))
    max_length = int(card.get("max_length", 512))

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
        refuse_non_finite(model, str(model_dir))
        return Predictor(model, tokenizer, labels, max_length, "fp32", batch_size)
    model = _load_model(model_dir, labels, card, load_kwargs=bitsandbytes_kwargs(load_in))
    precision = resolve_precision("auto") if card.get("precision") == "bf16" else "fp32"
    return Predictor(model, tokenizer, labels, max_length, precision, batch_size)


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


def load_run_model(run_dir: str | Path, load_in: str | None = None) -> PreTrainedModel:
    """The trained model of any run (full weights, or an adapter put back onto its base model).

    `load_in` ("4bit"/"8bit") loads the weights through bitsandbytes on a CUDA GPU.
    """

    run = RunDir(run_dir)
    card = run.card_or_empty()
    spec = task_spec(card.get("task", "classification"))
    labels_file = run.model_dir / "labels.json"
    labels = (
        LabelMap.load(labels_file) if spec.output == "labels" and labels_file.is_file() else None
    )
    return _load_model(
        run.model_dir,
        labels,
        card,
        spec.auto_class(),
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
    # the snapshot trained on; else the same id at the recorded commit (a hub id), or the source
    revision = card["model"].get("commit") or card["model"].get("revision")
    base_dir = (
        recorded
        if (recorded / "config.json").is_file()
        else resolve_model_dir(source, revision=revision)
    )
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


def load_generator(run_dir: str | Path, load_in: str | None = None) -> Generator:
    """The run's text generator: seq2seq and instruction-tuned causal_lm runs (or their exports)."""
    run = RunDir(run_dir)
    card = run.card_or_empty()
    task = str(card.get("task"))
    chat = (run.model_dir / chat_format.PROMPT_FILE).is_file()
    if task not in TASKS or task_spec(task).answers_with(chat) != "text":
        raise RunDirError(
            f"{run.path} is a {task} run without a generation prompt format; `tunelab generate` serves "
            "seq2seq and instruction-tuned causal_lm runs."
        )
    cfg = run.config()
    tokenizer = load_tokenizer(run.model_dir, ModelConfig(name=str(run.model_dir)))
    if chat:
        chat_format.check_saved_template(run.model_dir, tokenizer)
    model = load_run_model(run.path, load_in).eval()
    precision = resolve_precision("auto") if card.get("precision") == "bf16" else "fp32"
    return Generator(model, tokenizer, cfg, chat, precision)


__all__ = ["bitsandbytes_kwargs", "load_generator", "load_predictor", "load_run_model"]
