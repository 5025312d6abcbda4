"""Forgetting for a finished run: the base model vs the fine-tuned backbone on general text.

Decoders are scored by CLM perplexity, encoders by MLM pseudo-perplexity, each under the base
model's own LM head. Where that cannot be measured honestly (a base checkpoint without a trained
MLM head, like the packaged sentence-embedding MiniLM; seq2seq models; prompt/prefix adapters,
which leave the backbone untouched by construction) the result says so instead of a number,
and encoders fall back to embedding drift: how far the mean-pooled sentence embeddings of the
general text moved (cosine similarity base vs fine-tuned).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
from transformers import AutoConfig, PreTrainedModel

from tunelab.console import say
from tunelab.errors import ModelError
from tunelab.evaluation.forgetting import Kind, forgetting_report, measure, read_general_text
from tunelab.models import load_pretrained, model_dir_for

DEFAULT_TEXT = (
    Path(__file__).resolve().parents[3] / "data" / "general_text" / "wikitext2_sample.txt"
)
NOT_MERGEABLE = ("PREFIX_TUNING", "PROMPT_TUNING")


def measure_forgetting(session: Any, trained: PreTrainedModel) -> dict[str, Any]:
    cfg = session.cfg
    path = Path(cfg.eval.forgetting_text) if cfg.eval.forgetting_text else DEFAULT_TEXT
    if not path.is_file():
        return _skipped(f"no general text at {path}; set eval.forgetting_text to a .txt file")
    base_dir = model_dir_for(cfg.model)
    config = AutoConfig.from_pretrained(base_dir)
    if getattr(config, "is_encoder_decoder", False) or getattr(
        trained.config, "is_encoder_decoder", False
    ):  # a T5-style base, or an encoder pair (bert2bert) built from an encoder
        return _skipped("seq2seq models have no single LM head to score general text")
    adapter = _adapter(trained)
    if adapter in NOT_MERGEABLE:
        return _skipped(
            f"{adapter} leaves every base weight unchanged, so the backbone cannot forget"
        )
    backbone = copy.deepcopy(trained).merge_and_unload() if adapter else trained  # type: ignore[operator]
    texts = read_general_text(path, cfg.eval.forgetting_passages)
    kind: Kind = "mlm" if session.tokenizer.mask_token is not None else "clm"
    settings = {"precision": session.precision, "batch_size": cfg.train.eval_batch_size // 4 or 1}
    say(
        f"forgetting: {kind} perplexity of the base model and of the fine-tuned backbone on {path.name}"
    )
    try:
        before = measure(base_dir, cfg.model, session.tokenizer, texts, kind, **settings)
        after = measure(
            base_dir, cfg.model, session.tokenizer, texts, kind, finetuned=backbone, **settings
        )
    except ModelError as exc:
        if kind != "mlm":
            return _skipped(str(exc))
        return _embedding_drift(session, backbone, base_dir, texts, str(exc), path)
    report = forgetting_report(
        before["perplexity"], after["perplexity"], cfg.eval.forgetting_threshold
    )
    if report["warning"]:
        say(f"warning: {report['warning']}")
    measure_name = "MLM pseudo-perplexity" if kind == "mlm" else "CLM perplexity"
    return {
        "measured": True,
        "measure": measure_name,
        "text": path.name,
        "tokens": after["tokens"],
        **report,
    }


def _embedding_drift(
    session: Any,
    backbone: PreTrainedModel,
    base_dir: Path,
    texts: list[str],
    reason: str,
    path: Path,
) -> dict[str, Any]:
    """Cosine similarity of base vs fine-tuned mean-pooled embeddings of the general text."""
    from transformers import AutoModel

    from tunelab.evaluation.baselines import mean_pooled_embeddings

    cfg = session.cfg
    base = load_pretrained(AutoModel, base_dir, cfg.model)
    tuned = getattr(backbone, backbone.base_model_prefix, backbone)
    args = (
        session.tokenizer,
        texts,
        cfg.data.max_length,
        cfg.train.eval_batch_size,
        session.precision,
    )
    a, b = mean_pooled_embeddings(base, *args), mean_pooled_embeddings(tuned, *args)
    cosine = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return {
        "measured": False,
        "reason": f"perplexity not measurable: {reason}",
        "measure": "embedding drift (cosine similarity base vs fine-tuned, 1 = unchanged)",
        "text": path.name,
        "embedding_cosine_mean": float(cosine.mean()),
        "embedding_cosine_min": float(cosine.min()),
    }


def _adapter(model: PreTrainedModel) -> str | None:
    config = getattr(model, "peft_config", None)
    return str(next(iter(config.values())).peft_type.value) if config else None


def _skipped(reason: str) -> dict[str, Any]:
    say(f"forgetting: {reason}")
    return {"measured": False, "reason": f"perplexity not measured: {reason}"}
