"""Dynamic int8 for PyTorch: Linear weights stored as int8 with per-channel scales.

Weights are quantized once (per output channel, symmetric); activations are quantized per
batch at run time by `torch.ao`'s dynamic Linear. The int8 weights and their scales go into a
plain safetensors file (no pickle): `load_int8` rebuilds the model from its config, swaps the
Linear layers for dynamic int8 ones and puts the stored values back.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

INT8_FILE = "model.int8.safetensors"
SCALE_SUFFIX = ".weight_scale"


def quantize_dynamic_int8(model: Any) -> Any:
    """A copy of `model` (fp32) whose Linear layers run int8 matmuls; the original is left as it is."""
    import copy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notice; the eager API still works
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        return quantize_dynamic(
            copy.deepcopy(model).float().eval(),
            {torch.nn.Linear: per_channel_dynamic_qconfig},
            dtype=torch.qint8,
        )


def _int8_linears(model: Any) -> dict[str, Any]:
    from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear

    return {name: m for name, m in model.named_modules() if isinstance(m, DynamicLinear)}


def int8_tensors(quantized: Any) -> dict[str, torch.Tensor]:
    """Every tensor of the quantized model: int8 weights + float scales for Linear, the rest as is."""
    linears = _int8_linears(quantized)
    tensors: dict[str, torch.Tensor] = {}
    for name, value in quantized.state_dict().items():
        if isinstance(value, torch.Tensor) and not any(
            name.startswith(f"{layer}.") for layer in linears
        ):
            tensors[name] = value.detach().contiguous()
    for layer, module in linears.items():
        weight, bias = module._weight_bias()
        tensors[f"{layer}.weight"] = weight.int_repr().contiguous()
        tensors[f"{layer}{SCALE_SUFFIX}"] = weight.q_per_channel_scales().double().contiguous()
        if bias is not None:
            tensors[f"{layer}.bias"] = bias.detach().contiguous()
    # tied weights (e.g. an LM head sharing the embedding) are one tensor; safetensors wants copies
    return {k: v.clone() for k, v in tensors.items()}


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
    linear_names = set(_int8_linears(quantize_dynamic_int8(skeleton)))  # exactly what gets swapped
    quantized_keys = {k for k in stored if k.rsplit(".", 1)[0] in linear_names}
    missing, unexpected = skeleton.load_state_dict(
        {k: v for k, v in stored.items() if k not in quantized_keys}, strict=False
    )
    missing = [k for k in missing if k.rsplit(".", 1)[0] not in linear_names]
    model = quantize_dynamic_int8(skeleton)
    linears = _int8_linears(model)
    for layer, module in linears.items():
        if f"{layer}.weight" not in stored:
            missing.append(f"{layer}.weight")
            continue
        scales = stored[f"{layer}{SCALE_SUFFIX}"].double()
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
