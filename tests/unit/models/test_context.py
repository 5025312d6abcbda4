"""model.rope_scaling: transformers' linear / dynamic / YaRN scaling written into the config,
checked against the model, trained with and saved; the context shown and recorded."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification

from conftest import FILLER, NEGATIVE, POSITIVE
from tunelab.config import ModelConfig, RopeScalingConfig
from tunelab.errors import ConfigError
from tunelab.models import load_pretrained
from tunelab.models.context import apply_rope_scaling, context_of, rope_problem
from tunelab.workflows.check import build_checked


def _model_cfg(directory: Path, **rope: object) -> ModelConfig:
    return ModelConfig(
        name=str(directory), rope_scaling=RopeScalingConfig(**rope) if rope else None
    )


@pytest.mark.parametrize("kind", ["linear", "dynamic", "yarn"])
def test_each_scaling_is_transformers_own_and_runs_past_the_native_context(
    tiny_llama_dir: Path, kind: str
) -> None:
    cfg = _model_cfg(tiny_llama_dir, type=kind, factor=4)
    native = AutoConfig.from_pretrained(tiny_llama_dir)
    assert native.max_position_embeddings == 64 and rope_problem(native, cfg) is None
    model = load_pretrained(AutoModelForSequenceClassification, tiny_llama_dir, cfg)
    rotary = model.model.rotary_emb
    assert rotary.rope_type == kind
    if kind == "linear":  # position interpolation: every frequency divided by the factor
        plain = load_pretrained(
            AutoModelForSequenceClassification, tiny_llama_dir, _model_cfg(tiny_llama_dir)
        )
        assert torch.allclose(rotary.inv_freq * 4, plain.model.rotary_emb.inv_freq)
    expected = 64 if kind == "dynamic" else 256  # dynamic rescales from the native length itself
    assert model.config.max_position_embeddings == expected
    if kind == "yarn":
        assert model.config.rope_parameters["original_max_position_embeddings"] == 64
    with torch.no_grad():
        logits = model(input_ids=torch.randint(5, 20, (1, 200))).logits
    assert torch.isfinite(logits).all()
    assert context_of(native, cfg.rope_scaling).effective == 256


def test_a_model_without_rotary_positions_is_refused_in_one_line(
    tiny_bert_dir: Path, toy_csv: Path
) -> None:
    with pytest.raises(ConfigError) as caught:
        build_checked(
            {
                "data": {"train_file": str(toy_csv), "max_length": 16},
                "model": {
                    "name": str(tiny_bert_dir),
                    "rope_scaling": {"type": "linear", "factor": 2},
                },
            }
        )
    assert "has no rotary position embeddings to scale" in str(caught.value)
    assert "\n" not in str(caught.value).split(": ", 1)[1]


def test_max_length_past_the_context_names_rope_scaling_and_is_allowed_with_it(
    tiny_llama_dir: Path, toy_csv: Path
) -> None:
    raw = {
        "data": {"train_file": str(toy_csv), "max_length": 200},
        "model": {"name": str(tiny_llama_dir)},
    }
    with pytest.raises(ConfigError, match=re.escape("at most 64") + ".*or set model.rope_scaling"):
        build_checked(raw)
    raw["model"]["rope_scaling"] = {"type": "yarn", "factor": 4}
    assert build_checked(raw).model.rope_scaling is not None
    raw["data"]["max_length"] = 300
    with pytest.raises(ConfigError, match=re.escape("at most 256") + ".*with model.rope_scaling"):
        build_checked(raw)


def test_a_model_scaled_already_and_misplaced_options_are_refused(
    tiny_llama_dir: Path, tmp_path: Path
) -> None:
    scaled_dir = tmp_path / "scaled"
    model = load_pretrained(
        AutoModelForSequenceClassification,
        tiny_llama_dir,
        _model_cfg(tiny_llama_dir, type="linear", factor=2),
    )
    model.save_pretrained(scaled_dir)
    saved = AutoConfig.from_pretrained(scaled_dir)
    assert saved.rope_parameters["rope_type"] == "linear"  # the scaling travels with the model
    problem = rope_problem(saved, _model_cfg(scaled_dir, type="linear", factor=2))
    assert problem is not None and "already uses linear rope scaling" in problem
    native = AutoConfig.from_pretrained(tiny_llama_dir)
    problem = rope_problem(
        native,
        _model_cfg(tiny_llama_dir, type="linear", factor=2, original_max_position_embeddings=32),
    )
    assert problem is not None and "applies to type yarn" in problem


def test_per_layer_rope_parameters_scale_the_full_attention_layers_only() -> None:
    from transformers import Gemma3TextConfig

    config = Gemma3TextConfig(
        vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, head_dim=8, max_position_embeddings=128,
    )  # fmt: skip
    apply_rope_scaling(config, RopeScalingConfig(type="linear", factor=8))
    assert config.rope_parameters["full_attention"]["rope_type"] == "linear"
    assert config.rope_parameters["full_attention"]["factor"] == 8.0
    assert config.rope_parameters["sliding_attention"]["rope_type"] == "default"
    assert config.max_position_embeddings == 1024


def test_a_run_trains_past_the_native_context_and_records_it(
    tiny_llama_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Texts of ~100 tokens on a 64-position model: refused without scaling, trained with it."""
    import random

    from tunelab.workflows.train import train

    rng = random.Random(0)
    rows = []
    for i in range(64):
        words = [rng.choice(FILLER) for _ in range(95)]
        words.insert(rng.randrange(96), rng.choice(POSITIVE if i % 2 else NEGATIVE))
        rows.append({"text": " ".join(words), "label": "pos" if i % 2 else "neg"})
    data = tmp_path / "long.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = build_checked(
        {
            "data": {"train_file": str(data), "max_length": 128},
            "model": {"name": str(tiny_llama_dir), "rope_scaling": {"type": "linear", "factor": 2}},
            "train": {"epochs": 1, "batch_size": 8, "precision": "fp32", "lr": 1e-3},
            "eval": {"baselines": False},
            "output": {"dir": str(tmp_path / "runs"), "name": "long"},
        }
    )
    result = train(cfg)
    out = capsys.readouterr().out + capsys.readouterr().err
    assert "context: 128 tokens (native 64, rope linear x2)" in out
    run = Path(result.run_dir)
    card = json.loads((run / "run_card.json").read_text())
    assert card["context"] == {"native": 64, "effective": 128, "scaling": "linear x2"}
    assert card["data"]["splits"]["train"]["rows"] > 0
    saved = AutoConfig.from_pretrained(run / "model")
    assert saved.rope_parameters["rope_type"] == "linear" and saved.max_position_embeddings == 128
