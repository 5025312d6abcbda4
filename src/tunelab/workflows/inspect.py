"""`tunelab data inspect`: the data report (counts, duplicates, leakage, lengths, warnings)
without training."""

from __future__ import annotations

from typing import Any

from tunelab.config import RunConfig
from tunelab.data.inspect import build_report
from tunelab.errors import ModelError
from tunelab.models import load_tokenizer, model_dir_for
from tunelab.tasks import task_for
from tunelab.workflows.check import check


def inspect_data(cfg: RunConfig) -> dict[str, Any]:
    """The data report of `tunelab data inspect`: counts, duplicates, leakage, lengths, warnings."""
    cfg = check(cfg)
    data = task_for(cfg).prepare_data(cfg)
    try:
        tokenizer = load_tokenizer(model_dir_for(cfg.model), cfg.model)
    except ModelError:
        tokenizer = None  # lengths in words only; the report says which tokenizer was used
    return build_report(data, tokenizer, cfg.data.max_length)


__all__ = ["inspect_data"]
