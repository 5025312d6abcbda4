"""How much memory training will take, printed before it starts and checked against the peak after.

The estimate adds what the run allocates beyond the loaded weights: gradients of the trainable
parameters, AdamW's two moments, and the activations of the longest batch, from the per-layer
formula of Korthikanti et al. 2022 (*Reducing Activation Recomputation in Large Transformer
Models*): s·b·h·(34 + 5·a·s/h) bytes per layer in 16-bit, twice that in fp32, and only each
layer's input (2·s·b·h) with gradient checkpointing, plus one layer recomputed. Language-model
heads add their logits (about five fp32 copies of b·s·V in the loss and its gradient).

It is a guide, not a bound: on CPU, autocast keeps parts of the activations in fp32 and the
allocator keeps freed memory. In benchmarks/sft_speed.py the measured growth was 1.04-1.75x the
estimate (gradient checkpointing furthest off), and 0.83x with packing, whose rows the estimate
does not shrink (benchmarks/RESULTS.md has the table). For a small classifier the fixed costs
dominate: the demo's MiniLM run estimated 410 MB and grew 1,315 MB (tokenized data, oneDNN
kernel caches and allocator slack are outside the model arithmetic).

The measured side is the growth of the process's peak memory over its size just before the
model was loaded (CPU: peak RSS; CUDA: max_memory_allocated), so the runtime itself (Python,
torch, tokenizers) is not counted.
"""

from __future__ import annotations

import resource
from typing import Any

import torch

MB = 1024 * 1024


def current_rss_mb() -> float:
    """Resident set size now (Linux /proc; falls back to the peak elsewhere)."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        return pages * resource.getpagesize() / MB
    except OSError:
        return peak_rss_mb()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def estimate(
    model: torch.nn.Module,
    batch_size: int,
    sequence_length: int,
    precision: str,
    checkpointing: bool,
    lm_head: bool,
) -> dict[str, float]:
    """Megabytes of weights, gradients, optimizer state and activations for this run."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    gradients = sum(p.numel() * p.element_size() for p in trainable)
    optimizer = sum(2 * p.numel() * 4 for p in trainable)  # AdamW: exp_avg, exp_avg_sq (fp32)
    config = getattr(model, "config", None)
    layers, hidden, heads, vocab = _shape(config)
    s, b = sequence_length, batch_size
    per_layer = s * b * hidden * (34 + 5 * heads * s / max(hidden, 1))
    if precision == "fp32":
        per_layer *= 2
    activations = layers * 2 * s * b * hidden + per_layer if checkpointing else layers * per_layer
    if lm_head:
        # The loss materializes about five fp32 copies of the b·s·V logits: the upcast logits, the
        # shifted copy, log-softmax, and the gradients of both (measured on SmolLM2, where at
        # vocab 49,152 they outweigh the 30 layers' activations under checkpointing).
        activations += 5 * b * s * vocab * 4
    parts = {
        "weights": weights,
        "gradients": gradients,
        "optimizer": optimizer,
        "activations": activations,
    }
    return {
        **{k: v / MB for k, v in parts.items()},
        "training_total": sum(v for k, v in parts.items() if k != "weights") / MB,
        "total": sum(parts.values()) / MB,
    }


def _shape(config: Any) -> tuple[int, int, int, int]:
    """(layers, hidden, heads, vocab) of a transformers config, encoder-decoders summed."""
    if config is None:
        return 0, 0, 1, 0
    sub = [getattr(config, name, None) for name in ("encoder", "decoder")]
    if all(c is not None for c in sub):
        shapes = [_shape(c) for c in sub]
        return (
            sum(s[0] for s in shapes),
            max(s[1] for s in shapes),
            max(s[2] for s in shapes),
            max(s[3] for s in shapes),
        )
    text = getattr(config, "text_config", None) or config

    def first(*names: str, default: int) -> int:
        return int(next((v for n in names if (v := getattr(text, n, None))), default))

    return (
        first("num_hidden_layers", "num_layers", default=0),
        first("hidden_size", "d_model", default=0),
        first("num_attention_heads", "num_heads", default=1),
        first("vocab_size", default=0),
    )


class PeakMemory:
    """Peak memory growth of this process (or of the GPU) from a starting point."""

    def __init__(self) -> None:
        self.cuda = torch.cuda.is_available()
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated() / MB
        else:
            self.start = current_rss_mb()

    def growth_mb(self) -> float:
        if self.cuda:
            return torch.cuda.max_memory_allocated() / MB - self.start
        return peak_rss_mb() - self.start

    def describe(self) -> str:
        return "CUDA max_memory_allocated" if self.cuda else "peak RSS"
