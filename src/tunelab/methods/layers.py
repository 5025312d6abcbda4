"""Find embeddings, transformer layers (bottom → top) and head of any HF model, by structure.

Freezing and layer-wise learning rates speak in layers, not parameter names, so one rule serves
BERT, RoBERTa, DeBERTa, DistilBERT, MPNet, T5 and Llama-style models alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

from tunelab.errors import ConfigError

_LAYER_LIST_NAMES = ("layer", "layers", "block", "h")


@dataclass
class LayerMap:
    embeddings: list[nn.Parameter] = field(default_factory=list)
    layers: list[list[nn.Parameter]] = field(default_factory=list)  # bottom → top
    top: list[nn.Parameter] = field(
        default_factory=list
    )  # head, pooler, final norms: always trained

    def groups_top_down(self) -> list[list[nn.Parameter]]:
        """Layer groups in ULMFiT unfreezing order: top layer first, embeddings last."""
        return [*reversed(self.layers), self.embeddings]


def layer_map(model: nn.Module) -> LayerMap:
    """Split a model's parameters into embeddings, ordered layers and the rest (head and top)."""
    lists = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.ModuleList)
        and name.split(".")[-1] in _LAYER_LIST_NAMES
        and len(module) > 0
        and len({type(m) for m in module}) == 1
    ]
    if not lists:
        raise ConfigError(
            f"cannot find the transformer layers of {type(model).__name__}; layer-based methods need a "
            "ModuleList named layer/layers/block/h. Use method.name=full or lora."
        )
    # Encoder-decoder models have two lists (encoder, decoder): data flows through them in that order.
    prefixes = [f"{name}." for name, _ in lists]
    result = LayerMap()
    layer_of: dict[int, int] = {}
    for _, module_list in lists:
        for block in module_list:
            index = len(result.layers)
            result.layers.append(list(block.parameters()))
            for parameter in block.parameters():
                layer_of[id(parameter)] = index
    for name, parameter in model.named_parameters():
        if id(parameter) in layer_of or any(name.startswith(p) for p in prefixes):
            continue
        if "embed" in name or name.startswith("shared."):
            result.embeddings.append(parameter)
        else:
            result.top.append(parameter)
    return result


def set_trainable(parameters: list[nn.Parameter], trainable: bool) -> None:
    for parameter in parameters:
        parameter.requires_grad_(trainable)
