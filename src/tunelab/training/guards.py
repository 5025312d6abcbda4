"""Divergence guards: a run whose loss, gradients or weights turn NaN/inf stops, and is never a result.

Policy: stop, not roll back. The first optimizer step whose loss or gradients are not finite ends
the run with one line naming the step and what to change (a lower train.lr, or train.max_grad_norm);
the step is not applied, nothing from it is saved, and the run card says failed. The last complete
checkpoint (written before the step) is left as it is. Rolling back with a lower learning rate
would silently change the recipe the user asked for; a stop they can see and act on does not.
Models with non-finite weights are refused wherever one is saved, loaded, exported or served.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from transformers import TrainerCallback

from tunelab.errors import TrainingError
from tunelab.models.weights import non_finite_parameters, refuse_non_finite


def _diverged(step: int, what: str, value: str, lr: float) -> TrainingError:
    return TrainingError(
        f"training diverged at step {step}: the {what} is {value}. Nothing of this step was saved; "
        f"train again with a lower train.lr (it was {lr:g}; try {lr / 10:g})."
    )


class FiniteGuard(TrainerCallback):
    """Checks each optimizer step before it is applied: the gradients, then (on log) the loss."""

    def __init__(self, check_gradients: bool = True) -> None:
        self.check_gradients = check_gradients  # off under fp16's GradScaler, which skips inf steps

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        model = kwargs.get("model")
        if not self.check_gradients or model is None:
            return
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if grads and not bool(torch.stack([g.isfinite().all() for g in grads]).all()):
            raise _diverged(state.global_step + 1, "gradient", "NaN/inf", args.learning_rate)

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        for key in ("loss", "grad_norm", "eval_loss"):
            value = (logs or {}).get(key)
            if isinstance(value, float) and not math.isfinite(value):
                raise _diverged(
                    state.global_step, key.replace("_", " "), str(value), args.learning_rate
                )


class FiniteLoss:
    """Trainer mixin: the loss of every micro-batch is checked as it is computed (before backward's step)."""

    def training_step(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        loss = super().training_step(*args, **kwargs)  # type: ignore[misc]
        if not bool(torch.isfinite(loss.detach()).all()):
            raise _diverged(
                self.state.global_step + 1,  # type: ignore[attr-defined]
                "loss",
                str(loss.item()),
                self.args.learning_rate,  # type: ignore[attr-defined]
            )
        return loss


__all__ = ["FiniteGuard", "FiniteLoss", "non_finite_parameters", "refuse_non_finite"]
