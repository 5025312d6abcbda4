"""The shape of an adaptation method: one `MethodSpec` bundles everything tunelab knows about it.

A method module builds its spec and adds it to METHODS (`METHODS.add(spec.name, spec)`); no
code outside that module asks for a method by name. What a spec carries:

- `apply(model, cfg) -> model`: makes the right weights trainable (or wraps them in PEFT);
- `default_lr`: its peak learning rate when train.lr is not set (methods that train fewer
  weights need larger steps; measured on MiniLM/SST-2, benchmarks/RESULTS.md);
- `adapter_only`: it saves an adapter, not the whole model (so it cannot carry new vocabulary);
- `quantized_base`: it trains on a base loaded in 4 bits (a merged export is full precision);
- `settings`: the `method.<key>` section that configures it, if any;
- `load_kwargs(cfg)`: extra `from_pretrained` arguments (4-bit loading for qlora);
- `callbacks(model, trainer, cfg)`: TrainerCallbacks it needs during training;
- `checks(cfg)`: problems with a config that only this method can see (a CUDA GPU for qlora).
- `one_process_only`: why the method cannot train in several processes, or None when it can;
- `save(model, directory)`: writes the trained model (or adapter); `save_pretrained` unless the
  method must convert what it saves (PiSSA/OLoRA adapters, back to plain LoRA).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab.registry import Registry

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from tunelab.config import RunConfig

Apply = Callable[["PreTrainedModel", "RunConfig"], "PreTrainedModel"]


def _no_kwargs(cfg: RunConfig) -> dict[str, Any]:
    return {}


def _no_callbacks(model: Any, trainer: Any, cfg: RunConfig) -> list[Any]:
    return []


def _no_problems(cfg: RunConfig) -> list[str]:
    return []


def _save_pretrained(model: Any, directory: Path) -> None:
    model.save_pretrained(directory)


@dataclass(frozen=True)
class MethodSpec:
    name: str
    apply: Apply
    default_lr: float
    adapter_only: bool = False
    quantized_base: bool = False  # trained on a base loaded in 4 bits (a merge is full precision)
    settings: str | None = None
    load_kwargs: Callable[[RunConfig], dict[str, Any]] = _no_kwargs
    callbacks: Callable[[Any, Any, RunConfig], list[Any]] = _no_callbacks
    checks: Callable[[RunConfig], list[str]] = _no_problems
    save: Callable[[Any, Path], None] = _save_pretrained
    one_process_only: str | None = None

    def __call__(self, model: PreTrainedModel, cfg: RunConfig) -> PreTrainedModel:
        return self.apply(model, cfg)


METHODS: Registry[MethodSpec] = Registry("method", "method.name")


def method_for(cfg: RunConfig) -> MethodSpec:
    return METHODS.get(cfg.method.name)


def learning_rate(cfg: RunConfig) -> float:
    """train.lr when set, else the method's default."""
    if cfg.train.lr is not None:
        return cfg.train.lr
    return METHODS.get(cfg.method.name).default_lr if cfg.method.name in METHODS else 1e-4


def adapter_only_methods() -> frozenset[str]:
    return frozenset(name for name, spec in METHODS.items() if spec.adapter_only)


def count_parameters(model: PreTrainedModel) -> dict[str, int | float]:
    """Trainable vs total parameters, printed and recorded by every run."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "trainable": trainable,
        "total": total,
        "trainable_share": trainable / total if total else 0.0,
    }
