"""Full fine-tuning: every weight is trained (the default), except, for classification, the
input word-embedding matrix (method.freeze_word_embeddings, auto): on a small encoder it is a
third to half of the weights, and its update costs optimizer time without improving accuracy
(measured in benchmarks/train_speed.py)."""

from __future__ import annotations

from transformers import PreTrainedModel

from tunelab.config import RunConfig
from tunelab.methods import METHODS


@METHODS.register("full")
def apply(model: PreTrainedModel, cfg: RunConfig) -> PreTrainedModel:
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    if cfg.word_embeddings_frozen():
        model.get_input_embeddings().weight.requires_grad_(False)
    return model
