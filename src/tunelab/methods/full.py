"""Full fine-tuning: every weight is trained (the default)."""

from __future__ import annotations

from transformers import PreTrainedModel

from tunelab.config import RunConfig
from tunelab.methods import METHODS


@METHODS.register("full")
def apply(model: PreTrainedModel, cfg: RunConfig) -> PreTrainedModel:
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    return model
