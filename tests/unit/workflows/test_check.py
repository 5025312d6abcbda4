"""`tunelab.workflows.check`: what validation sees before any weights load."""

from __future__ import annotations

from pathlib import Path

import pytest

import tunelab
from tunelab.errors import ConfigError
from tunelab.workflows.check import build_checked as build_config


def test_max_length_beyond_the_model_is_refused_before_a_run_directory(tiny_config) -> None:
    raw = tiny_config.to_dict()
    raw["data"]["max_length"] = 100  # the tiny BERT has 64 positions
    with pytest.raises(ConfigError, match=r"data\.max_length must be at most 64"):
        tunelab.train(build_config(raw))
    assert not (Path(tiny_config.output.dir) / "tiny").exists()
