"""A short recovery fine-tune after pruning, with the pruned weights held at zero.

It is an ordinary `tunelab train` run on the run's own data and settings, started from the
pruned weights, plus a callback that multiplies every pruned weight by its mask after each
optimizer step (projected gradient descent), so the sparsity the export reports is the
sparsity it ships.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from tunelab.deploy.prune import body_linears


class KeepPruned(TrainerCallback):
    """Re-zeroes the weights that were zero when training began, after every step."""

    def __init__(self) -> None:
        self.masks: list[tuple[torch.Tensor, torch.Tensor]] = []

    def on_train_begin(
        self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any
    ) -> None:
        self.masks = [(m.weight, m.weight != 0) for _, m in body_linears(model)]

    def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
        with torch.no_grad():
            for weight, mask in self.masks:
                weight.mul_(mask)


def recover(run_dir: Path, model: Any, tokenizer: Any, epochs: float) -> tuple[Any, dict[str, Any]]:
    """Fine-tune the pruned `model` for `epochs` on the run's training split; returns it and a record."""
    from tunelab.methods import learning_rate
    from tunelab.runs import RunDir, load_run_model
    from tunelab.workflows.check import build_checked
    from tunelab.workflows.train import train

    run = RunDir(run_dir)
    cfg = run.config()
    run.test_split()  # refuses when the data files changed since the run (split hashes)
    with tempfile.TemporaryDirectory(prefix="tunelab-recover-") as scratch:
        start = Path(scratch) / "pruned"
        model.save_pretrained(start)
        tokenizer.save_pretrained(start)
        raw = cfg.to_dict()
        raw["model"]["name"] = str(start)
        raw["model"].pop("vocabulary", None)  # added tokens are in the saved tokenizer already
        if raw["method"]["name"] != "full":  # adapters were merged: the weights are plain now
            raw["method"] = {"name": "full"}
            raw["train"]["lr"] = None  # an adapter's learning rate would wreck full weights
        raw["train"].update(epochs=epochs, max_steps=None, resume=False, eval_on_start=False)
        raw["eval"].update(baselines=False, forgetting=False)
        raw["output"].update(dir=scratch, name="recovery", overwrite=True, tracking="none")
        recovery_cfg = build_checked(raw)
        result = train(recovery_cfg, callbacks=(KeepPruned(),))
        recovered = load_run_model(result.run_dir).eval()
    validation = result.metrics.get("validation", {})
    return recovered, {
        "epochs": epochs,
        "lr": learning_rate(recovery_cfg),
        "validation": {k: v for k, v in validation.items() if isinstance(v, float)},
        "steps": result.metrics.get("training", {}).get("steps"),
        "seconds": round(result.wall_seconds, 1),
    }
