"""Exact resume: a run killed mid-way and resumed ends where an uninterrupted run ends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tunelab
from tunelab.errors import ConfigError
from tunelab.runs import load_predictor
from tunelab.training.callbacks import ConciseProgress
from tunelab.workflows.check import build_checked as build_config

TEXTS = [
    "the movie was superb",
    "dull plot",
    "really very boring acting is sad",
    "love the fun film",
]


class Crash(RuntimeError):
    pass


def train_until_crash(monkeypatch: pytest.MonkeyPatch, cfg, step: int) -> None:
    """Train `cfg` and cut the power right after optimizer step `step` (then restore the callback)."""
    original = ConciseProgress.on_step_end

    def crash(self, args, state, control, **kwargs):
        original(self, args, state, control, **kwargs)
        if state.global_step == step:
            raise Crash("simulated power cut")

    monkeypatch.setattr(ConciseProgress, "on_step_end", crash)
    with pytest.raises(Crash):
        tunelab.train(cfg)
    monkeypatch.setattr(ConciseProgress, "on_step_end", original)


def config(tiny_config, name: str, method: str, **train):
    raw = tiny_config.to_dict()
    raw["method"] = {
        "name": method,
        **({"gradual": {"every_steps": 3}} if method == "gradual_unfreeze" else {}),
    }
    raw["train"].update(
        epochs=2,
        eval_every="steps",
        eval_steps=4,
        eval_on_start=False,
        lr=1e-2 if method in ("lora", "ia3", "prefix", "prompt") else 5e-3,
    )
    raw["train"].update(train)
    raw["output"]["name"] = name
    return build_config(raw)


@pytest.mark.parametrize(
    "method", ["full", "freeze", "gradual_unfreeze", "lora", "ia3", "prefix", "prompt"]
)
def test_killed_then_resumed_equals_uninterrupted(
    tiny_config, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    straight = tunelab.train(config(tiny_config, f"straight-{method}", method))

    original = ConciseProgress.on_step_end
    train_until_crash(monkeypatch, config(tiny_config, f"crashed-{method}", method), step=10)
    steps_run: list[int] = []

    def count_steps(self, args, state, control, **kwargs):
        steps_run.append(state.global_step)
        original(self, args, state, control, **kwargs)

    monkeypatch.setattr(ConciseProgress, "on_step_end", count_steps)
    resumed = tunelab.train(config(tiny_config, f"crashed-{method}", method, resume=True))
    assert steps_run == list(range(9, 25)), "must continue from checkpoint-8, not start over"
    assert resumed.metrics["training"]["steps"] == straight.metrics["training"]["steps"] == 24
    np.testing.assert_allclose(
        [loss for _, loss in resumed.metrics["training"]["loss_curve"]],
        [loss for _, loss in straight.metrics["training"]["loss_curve"]],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        load_predictor(resumed.run_dir).logits(TEXTS),
        load_predictor(straight.run_dir).logits(TEXTS),
        rtol=1e-5,
        atol=1e-6,
    )


def test_resume_without_checkpoints_is_a_clear_error(tiny_config) -> None:
    with pytest.raises(ConfigError, match="no complete checkpoint to resume"):
        tunelab.train(config(tiny_config, "never-ran", "full", resume=True))


def test_resume_refuses_a_changed_config(tiny_config, monkeypatch: pytest.MonkeyPatch) -> None:
    train_until_crash(monkeypatch, config(tiny_config, "changed", "full"), step=5)
    card = (Path(tiny_config.output.dir) / "changed" / "run_card.json").read_text()
    assert '"status": "failed"' in card
    with pytest.raises(
        ConfigError, match=r"config differs from the interrupted run's \(train.lr: 0.005 → 0.001\)"
    ):
        tunelab.train(config(tiny_config, "changed", "full", resume=True, lr=1e-3))
