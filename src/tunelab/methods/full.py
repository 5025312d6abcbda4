"""Full fine-tuning: every weight is trained (the default), except, by default for
classification, a large input word-embedding matrix (method.freeze_word_embeddings): on a small
encoder it is a third to half of the weights, and updating it costs optimizer time without
improving accuracy (measured in benchmarks/train_speed.py)."""

from __future__ import annotations

from transformers import PreTrainedModel

from tunelab.config import RunConfig
from tunelab.methods.base import METHODS, MethodSpec

AUTO_FREEZE_SHARE = 0.2  # below a fifth of the weights the saving is small: train everything


def apply(model: PreTrainedModel, cfg: RunConfig) -> PreTrainedModel:
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    if freezes_word_embeddings(model, cfg):
        model.get_input_embeddings().weight.requires_grad_(False)
    return model


def freezes_word_embeddings(model: PreTrainedModel, cfg: RunConfig) -> bool:
    """method.freeze_word_embeddings resolved for this model."""
    setting = cfg.method.freeze_word_embeddings
    if setting != "auto":
        return bool(setting)
    vocabulary = cfg.model.vocabulary
    if model.get_output_embeddings() is not None or vocabulary.add_tokens or vocabulary.mine:
        return (
            False  # an LM head shares (or mirrors) the matrix; added tokens need their rows trained
        )
    embedding = sum(p.numel() for p in model.get_input_embeddings().parameters())
    return embedding >= AUTO_FREEZE_SHARE * sum(p.numel() for p in model.parameters())


# small (≈20M) encoders tolerate 1e-4; base-size models prefer 2e-5
METHODS.add("full", MethodSpec("full", apply, default_lr=1e-4))
