"""Config values reach the Trainer; precision, dropout and early stopping behave as documented."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

import tunelab
from tunelab.config import ModelConfig
from tunelab.errors import ConfigError
from tunelab.models.precision import cpu_supports_bf16, resolve_precision
from tunelab.training.trainer import training_arguments
from tunelab.workflows.check import build_checked as build_config


def test_train_section_maps_onto_training_arguments(tiny_config, tmp_path: Path) -> None:
    raw = tiny_config.to_dict()
    raw["train"].update(
        scheduler="cosine",
        warmup_ratio=0.2,
        grad_accum=4,
        weight_decay=0.05,
        eval_every="steps",
        eval_steps=10,
        best_metric="accuracy",
        max_steps=30,
    )
    args = training_arguments(build_config(raw), tmp_path, "fp32")
    assert args.lr_scheduler_type == "cosine"
    assert args.warmup_steps == 0.2
    assert args.gradient_accumulation_steps == 4
    assert args.weight_decay == 0.05
    assert args.eval_strategy == "steps" and args.eval_steps == 10 and args.save_steps == 10
    assert args.metric_for_best_model == "accuracy" and args.load_best_model_at_end
    assert args.max_steps == 30
    assert args.train_sampling_strategy == "group_by_length"
    assert not args.bf16 and not args.fp16


def test_precision_auto_follows_the_hardware() -> None:
    expected = "bf16" if cpu_supports_bf16() else "fp32"
    if torch.cuda.is_available():
        pytest.skip("auto picks the GPU's precision on a CUDA machine")
    assert resolve_precision("auto") == expected
    assert resolve_precision("fp32") == "fp32"
    with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
        resolve_precision("fp16")


def test_dropout_override_reaches_every_dropout_in_the_config(tiny_bert_dir: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    from tunelab.models import load_pretrained

    cfg = ModelConfig(name=str(tiny_bert_dir), dropout=0.3)
    model = load_pretrained(AutoModelForSequenceClassification, tiny_bert_dir, cfg)
    assert model.config.hidden_dropout_prob == 0.3
    assert model.config.attention_probs_dropout_prob == 0.3
    assert model.bert.encoder.layer[0].output.dropout.p == 0.3


def test_early_stopping_ends_the_run_before_its_budget(tiny_config) -> None:
    raw = tiny_config.to_dict()
    raw["train"].update(epochs=30, eval_every="steps", eval_steps=3, early_stopping_patience=2)
    raw["output"]["name"] = "early"
    result = tunelab.train(build_config(raw))
    budget = 30 * 12  # 30 epochs of 192 rows in batches of 16
    assert result.metrics["training"]["steps"] < budget
    curve = result.metrics["training"]["validation_curve"]
    assert curve[0]["step"] == 0
    best = max(point["macro_f1"] for point in curve)
    assert result.metrics["training"]["best_validation_metric"]["macro_f1"] == best


@pytest.mark.skipif(not cpu_supports_bf16(), reason="this CPU has no native bf16 (AVX512-BF16/AMX)")
def test_bf16_autocast_run_on_cpu(tiny_config) -> None:
    raw = tiny_config.to_dict()
    raw["train"].update(precision="bf16", epochs=1)
    raw["output"]["name"] = "bf16"
    result = tunelab.train(build_config(raw))
    card = (result.run_dir / "run_card.json").read_text()
    assert '"precision": "bf16"' in card
    assert result.metrics["training"]["steps"] == 12


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; none on this machine")
def test_bf16_training_on_cuda(tiny_config) -> None:
    raw = tiny_config.to_dict()
    raw["train"].update(precision="auto", epochs=2)
    raw["output"]["name"] = "cuda"
    result = tunelab.train(build_config(raw))
    assert '"cuda": true' in (result.run_dir / "run_card.json").read_text()
    losses = [loss for _, loss in result.metrics["training"]["loss_curve"]]
    assert losses[-1] < losses[0]


def test_gradient_checkpointing_trains_the_same_as_without(tiny_config) -> None:
    """Recomputing activations must not change the result (dropout RNG is replayed)."""
    from tunelab.workflows.train import prepare_training

    losses = []
    for checkpointing in (False, True):
        raw = tiny_config.to_dict()
        raw["train"].update(max_steps=3, gradient_checkpointing=checkpointing, precision="fp32")
        raw["output"]["name"] = f"gc-{checkpointing}"
        session = prepare_training(build_config(raw))
        assert session.trainer.args.activation_checkpointing is checkpointing
        losses.append(session.trainer.train().training_loss)
        assert session.trainer.model.is_activation_checkpointing is checkpointing
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


def test_gradient_accumulation_matches_the_larger_batch_on_token_normalized_loss(
    tmp_path: Path, tiny_chat_llama_dir: Path, opposites_jsonl: Path
) -> None:
    """batch 8 == batch 4 x 2 accumulation: the loss is divided by the label tokens of the whole
    accumulated batch, not averaged per micro-batch (a known pitfall when micro-batches hold
    different numbers of label tokens, as these do)."""
    from tunelab.workflows.train import prepare_training

    def trained(batch_size: int, accumulation: int) -> tuple[dict[str, torch.Tensor], list[int]]:
        cfg = build_config(
            {
                "data": {"train_file": str(opposites_jsonl), "max_length": 64},
                "model": {"name": str(tiny_chat_llama_dir)},
                "task": {"type": "causal_lm"},
                "train": {
                    "batch_size": batch_size,
                    "grad_accum": accumulation,
                    "max_steps": 4,
                    "lr": 5e-3,
                    "warmup_ratio": 0.0,
                    "precision": "fp32",
                    "group_by_length": False,
                    "eval_on_start": False,
                    "seed": 3,
                },
                "eval": {"forgetting": False, "generate_rows": 1},
                "output": {"dir": str(tmp_path / "runs"), "name": f"b{batch_size}x{accumulation}"},
            }
        )
        session = prepare_training(cfg)
        first = next(iter(session.trainer.get_train_dataloader()))
        label_tokens = [int((row != -100).sum()) for row in first["labels"]]
        session.trainer.train()
        weights = {k: v.detach().clone() for k, v in session.trainer.model.state_dict().items()}
        return weights, label_tokens

    whole, rows = trained(8, 1)
    accumulated, _ = trained(4, 2)
    assert sum(rows[:4]) != sum(rows[4:])  # the two micro-batches hold different token counts
    start = AutoModelForCausalLM.from_pretrained(tiny_chat_llama_dir).state_dict()
    assert max((whole[k] - start[k]).abs().max().item() for k in start) > 1e-3  # it trained
    assert max((whole[k] - accumulated[k]).abs().max().item() for k in whole) < 1e-5
