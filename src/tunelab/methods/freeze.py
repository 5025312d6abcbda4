"""Layer freezing: keep general knowledge in the lower layers, adapt the top (fights forgetting)."""

from __future__ import annotations

from transformers import PreTrainedModel

from tunelab.config import RunConfig
from tunelab.methods.base import METHODS, MethodSpec
from tunelab.methods.layers import layer_map, set_trainable


def apply(model: PreTrainedModel, cfg: RunConfig) -> PreTrainedModel:
    settings = cfg.method.freeze
    layers = layer_map(model)
    set_trainable(list(model.parameters()), True)
    if settings.embeddings:
        set_trainable(layers.embeddings, False)
    count = len(layers.layers)
    frozen = (
        count - settings.train_top_layers
        if settings.train_top_layers is not None
        else settings.bottom_layers
    )
    for block in layers.layers[: max(0, min(frozen, count))]:
        set_trainable(block, False)
    return model


METHODS.add("freeze", MethodSpec("freeze", apply, default_lr=1e-4, settings="freeze"))
