"""Pick the numeric precision a run actually uses, and say why."""

from __future__ import annotations

import torch

from tunelab.errors import ConfigError


def cpu_supports_bf16() -> bool:
    """True on CPUs with native bf16 matmul (AVX512-BF16 or AMX), where autocast pays off."""
    try:
        return (
            bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
            and torch.backends.cpu.get_cpu_capability() != "DEFAULT"
        )
    except (AttributeError, RuntimeError):
        return False


def resolve_precision(choice: str) -> str:
    """'auto' → bf16 where the hardware has it, else fp32. fp16 needs CUDA."""
    cuda = torch.cuda.is_available()
    if choice == "auto":
        if cuda:
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if cpu_supports_bf16() else "fp32"
    if choice == "fp16" and not cuda:
        raise ConfigError(
            "train.precision=fp16 needs a CUDA GPU; this machine has none. Use train.precision=bf16 or fp32."
        )
    return choice


def autocast(precision: str, device: str | None = None) -> torch.autocast:
    """The autocast context for inference in a run's precision (a no-op for fp32)."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    return torch.autocast(device_type=device, dtype=dtype, enabled=precision in ("bf16", "fp16"))
