"""A model's context length, and `model.rope_scaling` to train past it.

The scaling itself is transformers' (`modeling_rope_utils`: linear position interpolation,
dynamic NTK, YaRN); this module only writes the model config's `rope_parameters` as transformers
names them, checks that the model has rotary positions to scale, and says what context results.
The scaled config is saved with the trained model, so inference reads the same positions.

- linear and yarn raise `max_position_embeddings` to native * factor (yarn keeps the native
  length as `original_max_position_embeddings`, its reference for the frequency bands);
- dynamic keeps `max_position_embeddings` native: transformers rescales the base from the length
  of each input past it, so the native value is its reference; tunelab allows inputs up to
  native * factor.
- Models whose rope parameters are per layer type (Gemma 3: sliding and full attention) get the
  scaling on the full-attention layers only, as Gemma 3's own long-context configs do; sliding
  windows never see positions past their window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tunelab.config import ModelConfig, RopeScalingConfig

FULL_ATTENTION = "full_attention"
ALREADY_SCALED = ("linear", "dynamic", "yarn", "llama3", "longrope")


@dataclass(frozen=True)
class Context:
    """What the model reads: its native position limit and the one tunelab trains with."""

    native: int | None  # None: the config states no limit (e.g. some T5 variants)
    effective: int | None
    scaling: str | None  # "yarn x4.0", or None when unscaled

    def describe(self) -> str:
        if self.effective is None:
            return "context: no position limit in the model config"
        if self.scaling is None:
            return f"context: {self.effective:,} tokens"
        return f"context: {self.effective:,} tokens (native {self.native:,}, rope {self.scaling})"


def context_of(model_config: Any, rope: RopeScalingConfig | None) -> Context:
    native = getattr(model_config, "max_position_embeddings", None)
    native = native if isinstance(native, int) else None
    if rope is None or native is None:
        return Context(native, native, None)
    reference = (
        rope.original_max_position_embeddings
        if rope.type == "yarn" and rope.original_max_position_embeddings
        else native
    )
    return Context(native, int(reference * rope.factor), f"{rope.type} x{rope.factor:g}")


def rope_problem(model_config: Any, cfg: ModelConfig) -> str | None:
    """Why `model.rope_scaling` cannot apply to this model, or None when it can (or is unset)."""
    rope = cfg.rope_scaling
    if rope is None:
        return None
    kind = getattr(model_config, "model_type", "this model")
    parameters = getattr(model_config, "rope_parameters", None)
    if not isinstance(parameters, dict) or not parameters:
        return (
            f"model.rope_scaling: {cfg.name} ({kind}) has no rotary position embeddings to scale "
            "(its positions are learned or absolute). Remove model.rope_scaling, or use a RoPE decoder (Llama, Qwen, Gemma, SmolLM)."
        )
    if not isinstance(getattr(model_config, "max_position_embeddings", None), int):
        return f"model.rope_scaling: {cfg.name} ({kind}) states no max_position_embeddings to scale from. Remove model.rope_scaling."
    for layer_parameters in _targets(parameters):
        present = layer_parameters.get("rope_type", "default")
        if present in ALREADY_SCALED:
            return (
                f"model.rope_scaling: {cfg.name} already uses {present} rope scaling "
                f"(factor {layer_parameters.get('factor', '?')}); scaling it again changes what it was trained with. "
                "Remove model.rope_scaling."
            )
    native = model_config.max_position_embeddings
    if rope.original_max_position_embeddings and rope.type != "yarn":
        return f"model.rope_scaling.original_max_position_embeddings applies to type yarn; got type {rope.type}. Remove it."
    if rope.original_max_position_embeddings and rope.original_max_position_embeddings > native:
        return (
            f"model.rope_scaling.original_max_position_embeddings must be at most the model's {native:,}; "
            f"got {rope.original_max_position_embeddings:,}."
        )
    return None


def apply_rope_scaling(model_config: Any, rope: RopeScalingConfig | None) -> None:
    """Write the scaling into a loaded config, as transformers names it (checked by rope_problem)."""
    if rope is None:
        return
    native = model_config.max_position_embeddings
    context = context_of(model_config, rope)
    for layer_parameters in _targets(model_config.rope_parameters):
        layer_parameters.update(rope_type=rope.type, factor=float(rope.factor))
        if rope.type == "yarn":
            layer_parameters["original_max_position_embeddings"] = (
                rope.original_max_position_embeddings or native
            )
    if rope.type in ("linear", "yarn") and context.effective is not None:
        model_config.max_position_embeddings = context.effective
    model_config.validate_rope()


def _targets(parameters: dict[str, Any]) -> list[dict[str, Any]]:
    """The rope parameter dicts scaled: the one dict, or the full-attention layers' (else every layer type's)."""
    if "rope_type" in parameters or "rope_theta" in parameters:
        return [parameters]
    nested = [v for v in parameters.values() if isinstance(v, dict)]
    if FULL_ATTENTION in parameters and isinstance(parameters[FULL_ATTENTION], dict):
        return [parameters[FULL_ATTENTION]]
    return nested


__all__ = ["Context", "apply_rope_scaling", "context_of", "rope_problem"]
