"""The classification task on architectures it must handle (a decoder with no pad id, …)."""

from __future__ import annotations

from pathlib import Path

import tunelab
from tunelab.workflows.check import build_checked as build_config


def test_decoder_without_pad_id_in_its_config_still_classifies(
    tiny_config, tmp_path: Path, tiny_llama_builder
) -> None:
    model_dir = tiny_llama_builder(tmp_path / "no-pad-llama", pad_token_id=None)
    raw = tiny_config.to_dict()
    raw["model"]["name"] = str(model_dir)
    raw["train"]["epochs"] = 1
    raw["output"]["name"] = "no-pad"
    result = tunelab.train(
        build_config(raw)
    )  # batches > 1 need the pad id to find each row's last token
    assert result.metrics["test"]["rows"] == 24
