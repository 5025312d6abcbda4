"""4-bit loading for QLoRA: NF4 weights via bitsandbytes, which needs a CUDA GPU.

The quantization happens while the weights load, so the method has to reach into
`from_pretrained`: tasks pass `load_kwargs(cfg)` to it, and the `qlora` method then
prepares the quantized model for training and adds LoRA on top.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import torch


def cuda_problem() -> str | None:
    """Why 4-bit loading cannot run here, as one line, or None when it can."""
    if not torch.cuda.is_available():
        return (
            "method qlora needs a CUDA GPU (4-bit NF4 via bitsandbytes); this machine has none. "
            "Use method.name=lora on CPU."
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        return (
            "method qlora needs the bitsandbytes package. Install it: pip install 'tunelab[gpu]'."
        )
    return None


def compute_dtype() -> torch.dtype:
    """bf16 where the GPU has it (Ampere and later), else fp16."""
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def quantization_config(dtype: torch.dtype) -> Any:
    """The QLoRA paper's setting: NF4 with double quantization, matmuls in `dtype`."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=dtype,
    )
