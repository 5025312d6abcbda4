"""Weights that are not numbers: a model with NaN/inf weights (a diverged run) is refused
wherever one is saved, loaded, exported or served: it would answer NaN for everything."""

from __future__ import annotations

import torch

from tunelab.errors import TrainingError


def non_finite_parameters(model: torch.nn.Module, limit: int = 3) -> list[str]:
    """Names of (up to `limit`) parameters holding NaN or inf."""
    bad = []
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if (
                isinstance(tensor, torch.Tensor)
                and torch.is_floating_point(tensor)
                and not bool(torch.isfinite(tensor).all())
            ):
                bad.append(name)
                if len(bad) >= limit:
                    break
    return bad


def refuse_non_finite(model: torch.nn.Module, what: str) -> None:
    bad = non_finite_parameters(model)
    if bad:
        raise TrainingError(
            f"{what} has NaN/inf weights ({', '.join(bad)}): its training diverged, so it is not used. "
            "Train again with a lower train.lr (e.g. a tenth)."
        )


__all__ = ["non_finite_parameters", "refuse_non_finite"]
