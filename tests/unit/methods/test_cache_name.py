"""Prefix tuning on transformers >= 5.24, where forward's `past_key_values` became `cache`."""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from tunelab.methods.cache_name import accept_past_key_values


class NewName(nn.Module):
    def forward(self, input_ids: Any = None, cache: Any = None, **kwargs: Any) -> Any:
        return cache


class OldName(nn.Module):
    def forward(self, input_ids: Any = None, past_key_values: Any = None) -> Any:
        return past_key_values


class Classifier(nn.Module):  # a head over a backbone, as peft's classifier path sees it
    def __init__(self) -> None:
        super().__init__()
        self.backbone = NewName()

    def forward(self, input_ids: Any = None, **kwargs: Any) -> Any:
        return self.backbone(input_ids, **kwargs)


def test_a_cache_only_forward_takes_the_old_name_and_hands_it_on() -> None:
    model = Classifier()
    assert "past_key_values" not in inspect.signature(model.backbone.forward).parameters
    assert accept_past_key_values(model) == 1  # the backbone; the head takes neither name
    assert "past_key_values" in inspect.signature(model.backbone.forward).parameters
    assert model.backbone(1, past_key_values="prefix") == "prefix"
    assert model.backbone(1, cache="direct") == "direct"


def test_models_that_have_the_old_name_are_left_alone() -> None:
    model = OldName()
    forward = model.forward
    assert accept_past_key_values(model) == 0
    assert model.forward == forward
