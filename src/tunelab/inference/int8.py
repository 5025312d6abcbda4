"""Dynamic int8 for PyTorch: Linear weights as int8, embedding tables as uint8, with their scales.

Linear weights are quantized once (per output channel, symmetric); activations are quantized
per batch at run time by `torch.ao`'s dynamic Linear. Embedding tables are quantized per row
(scale and offset per row), which is what shrinks a small encoder most: MiniLM's word
embeddings are half its weights. The integers and their scales go into a plain safetensors
file (no pickle): `load_int8` rebuilds the model from its config, swaps in the quantized
modules and puts the stored values back.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

INT8_FILE = "model.int8.safetensors"
SCALE_SUFFIX = ".weight_scale"
ZERO_POINT_SUFFIX = ".weight_zero_point"


def quantize_dynamic_int8(model: Any) -> Any:
    """A copy of `model` (fp32) with int8 Linear layers and embeddings; the original is left as is."""
    import copy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notice; the eager API still works
        from torch.ao.quantization import (
            float_qparams_weight_only_qconfig,
            per_channel_dynamic_qconfig,
            quantize_dynamic,
        )

        return quantize_dynamic(
            copy.deepcopy(model).float().eval(),
            {
                torch.nn.Linear: per_channel_dynamic_qconfig,
                torch.nn.Embedding: float_qparams_weight_only_qconfig,
            },
            dtype=torch.qint8,
        )


def _int8_linears(model: Any) -> dict[str, Any]:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return {name: m for name, m in model.named_modules() if isinstance(m, DynamicLinear)}


def _int8_embeddings(model: Any) -> dict[str, Any]:
    from torch.ao.nn.quantized import Embedding as QuantizedEmbedding

    return {name: m for name, m in model.named_modules() if isinstance(m, QuantizedEmbedding)}


def int8_tensors(quantized: Any) -> dict[str, torch.Tensor]:
    """Every tensor of the quantized model: integers + scales where quantized, the rest as is."""
    linears, embeddings = _int8_linears(quantized), _int8_embeddings(quantized)
    swapped = (*linears, *embeddings)
    tensors: dict[str, torch.Tensor] = {}
    for name, value in quantized.state_dict().items():
        if isinstance(value, torch.Tensor) and not any(
            name.startswith(f"{layer}.") for layer in swapped
        ):
            tensors[name] = value.detach()
    for layer, module in linears.items():
        weight, bias = module._weight_bias()
        tensors[f"{layer}.weight"] = weight.int_repr()
        tensors[f"{layer}{SCALE_SUFFIX}"] = weight.q_per_channel_scales().double()
        if bias is not None:
            tensors[f"{layer}.bias"] = bias.detach()
    for layer, module in embeddings.items():
        weight = module.weight()
        tensors[f"{layer}.weight"] = weight.int_repr()
        tensors[f"{layer}{SCALE_SUFFIX}"] = weight.q_per_channel_scales()
        tensors[f"{layer}{ZERO_POINT_SUFFIX}"] = weight.q_per_channel_zero_points()
    # tied weights are one tensor; safetensors wants separate, contiguous copies
    return {k: v.contiguous().clone() for k, v in tensors.items()}


def save_int8(quantized: Any, directory: Path) -> int:
    """Write the int8 model; returns how many Linear layers are int8 (refuses a model with none)."""
    layers = len(_int8_linears(quantized))
    head = 1 if getattr(quantized, "classifier", getattr(quantized, "score", None)) else 0
    if layers <= head:
        from tunelab.errors import ModelError

        raise ModelError(
            f"{type(quantized).__name__} has no torch Linear layers in its body to quantize (GPT-2 style "
            "models use Conv1D). Use --format onnx --quantize int8."
        )
    save_file(
        int8_tensors(quantized),
        str(directory / INT8_FILE),
        metadata={"format": "pt", "quantization": "int8"},
    )
    quantized.config.save_pretrained(directory)
    return layers


def load_int8(directory: Path, auto_class: Any) -> Any:
    """The int8 model `save_int8` wrote, ready for inference on CPU."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(directory)
    skeleton = auto_class.from_config(config)  # random values, all replaced below
    stored = load_file(str(directory / INT8_FILE))
    probe = quantize_dynamic_int8(skeleton)
    swapped = {*_int8_linears(probe), *_int8_embeddings(probe)}  # exactly what gets quantized
    missing, unexpected = skeleton.load_state_dict(
        {k: v for k, v in stored.items() if k.rsplit(".", 1)[0] not in swapped}, strict=False
    )
    missing = [k for k in missing if k.rsplit(".", 1)[0] not in swapped]
    model = quantize_dynamic_int8(skeleton)
    for layer, module in {**_int8_linears(model), **_int8_embeddings(model)}.items():
        if f"{layer}.weight" not in stored:
            missing.append(f"{layer}.weight")
            continue
        scales = stored[f"{layer}{SCALE_SUFFIX}"]
        if f"{layer}{ZERO_POINT_SUFFIX}" in stored:  # an embedding table: per-row scale and offset
            weight = torch._make_per_channel_quantized_tensor(
                stored[f"{layer}.weight"], scales, stored[f"{layer}{ZERO_POINT_SUFFIX}"], 0
            )
            module.set_weight(weight)
        else:
            weight = torch._make_per_channel_quantized_tensor(
                stored[f"{layer}.weight"], scales, torch.zeros_like(scales, dtype=torch.long), 0
            )
            module.set_weight_bias(weight, stored.get(f"{layer}.bias"))
    if missing or unexpected:
        from tunelab.errors import ModelError

        raise ModelError(
            f"{directory / INT8_FILE} does not match its config.json ({len(missing)} tensors missing, "
            f"{len(unexpected)} unexpected). Re-export the run."
        )
    return model.eval()
