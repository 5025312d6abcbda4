"""ULMFiT gradual unfreezing: train the head first, then one more layer group from the top."""

from __future__ import annotations

from typing import Any

from transformers import PreTrainedModel, TrainerCallback

from tunelab.config import RunConfig
from tunelab.methods.base import METHODS, MethodSpec
from tunelab.methods.layers import LayerMap, layer_map, set_trainable


def apply(model: PreTrainedModel, cfg: RunConfig) -> PreTrainedModel:
    layers = layer_map(model)
    set_trainable(list(model.parameters()), False)
    set_trainable(layers.top, True)
    return model


class GradualUnfreezing(TrainerCallback):
    """Unfreezes group k (top layer first, embeddings last) at step k·every_steps or epoch k.

    The optimizer already holds every parameter (training/optimizer.py), so a group starts to
    update on the first step after it is unfrozen and never before. The schedule depends only on
    the step, so a resumed run unfreezes exactly what the interrupted one had.
    """

    def __init__(self, layers: LayerMap, every_steps: int | None, steps_per_epoch: int) -> None:
        self.groups = layers.groups_top_down()
        self.every = every_steps or max(1, steps_per_epoch)
        self.unfrozen = 0

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        wanted = min(len(self.groups), state.global_step // self.every)
        while self.unfrozen < wanted:
            set_trainable(self.groups[self.unfrozen], True)
            self.unfrozen += 1


def callbacks(model: PreTrainedModel, trainer: Any, cfg: RunConfig) -> list[TrainerCallback]:
    steps_per_epoch = len(trainer.get_train_dataloader()) // cfg.train.grad_accum
    return [GradualUnfreezing(layer_map(model), cfg.method.gradual.every_steps, steps_per_epoch)]


METHODS.add(
    "gradual_unfreeze",
    MethodSpec(
        "gradual_unfreeze",
        apply,
        default_lr=1e-4,
        settings="gradual",
        callbacks=callbacks,
        # DDP fixes the set of synchronised weights when it wraps the model; weights unfrozen
        # later would train apart on each process.
        one_process_only="it unfreezes weights during the run, and DDP synchronises only the weights "
        "that trained when it wrapped the model",
    ),
)
