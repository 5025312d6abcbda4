"""AdamW over every parameter, with layer-wise LR decay (LLRD) when configured.

Every parameter is in the optimizer, frozen ones too: AdamW skips a parameter without a gradient
(no update, no weight decay, no state), so gradual unfreezing needs no optimizer rebuild.
"""

from __future__ import annotations

import torch
from torch import nn

from tunelab.methods.layers import layer_map

NO_DECAY = ("bias", "norm", "layernorm", "ln_")


def _decays(name: str) -> bool:
    return not any(key in name.lower() for key in NO_DECAY)


def build_optimizer(
    model: nn.Module, lr: float, weight_decay: float, llrd: float | None
) -> torch.optim.Optimizer:
    """Param groups by (LR scale, decay or not); the LR scale is llrd^(distance from the top)."""
    scale = {id(p): 1.0 for p in model.parameters()}
    if llrd is not None:
        layers = layer_map(model)
        depth = len(layers.layers)
        for index, block in enumerate(layers.layers):
            for parameter in block:
                scale[id(parameter)] = llrd ** (depth - index)
        for parameter in layers.embeddings:
            scale[id(parameter)] = llrd ** (depth + 1)
    groups: dict[tuple[float, bool], list[nn.Parameter]] = {}
    for name, parameter in model.named_parameters():
        groups.setdefault((scale[id(parameter)], _decays(name)), []).append(parameter)
    param_groups = [
        {"params": params, "lr": lr * s, "weight_decay": weight_decay if decay else 0.0}
        for (s, decay), params in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1]))
    ]
    # fused: one kernel for all parameters (as the Trainer's own default, adamw_torch_fused)
    return torch.optim.AdamW(param_groups, lr=lr, weight_decay=weight_decay, fused=True)
