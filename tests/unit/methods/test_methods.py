"""The method contract, one table for every method x architecture (PEFT-style).

For each: the trainable share is what the method promises; one optimizer step changes the
trainable parameters and leaves the frozen ones alone; save → load gives identical outputs;
mergeable adapters give the same outputs merged and unmerged.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import TrainerCallback

import tunelab
from tunelab.errors import ConfigError
from tunelab.methods import METHODS, count_parameters
from tunelab.methods.layers import layer_map
from tunelab.runs import load_predictor, load_run_model
from tunelab.workflows.check import build_checked as build_config
from tunelab.workflows.train import (
    prepare_training,  # the steps train() runs, stopped before fitting
)

CASES = ("bert-classification", "llama-classification", "llama-causal_lm")
# method → (extra config, expected trainable share bounds)
METHOD_TABLE = {
    "full": ({}, (1.0, 1.0)),
    "freeze": ({"freeze": {"embeddings": True, "bottom_layers": 1}}, (0.05, 0.95)),
    "gradual_unfreeze": ({}, (0.0, 0.5)),
    "lora": ({"lora": {"r": 4}}, (0.0, 0.5)),
    "ia3": ({}, (0.0, 0.5)),
    "prefix": ({"virtual_tokens": {"num_virtual_tokens": 4}}, (0.0, 0.9)),
    "prompt": ({"virtual_tokens": {"num_virtual_tokens": 4}}, (0.0, 0.5)),
}


class Case:
    """One row family of the matrix: a tiny model and a task, able to build a run config."""

    def __init__(self, name: str, model_dir: Path, tiny_config, corpus: Path) -> None:
        self.name, self.model_dir = name, model_dir
        self.task = name.split("-", 1)[1]
        self.tiny_config, self.corpus = tiny_config, corpus

    def config(self, method: str, extra: dict, run_name: str | None = None, **train):
        raw = self.tiny_config.to_dict()
        raw["model"]["name"] = str(self.model_dir)
        raw["method"] = {"name": method, **extra}
        raw["train"].update(train)
        raw["output"]["name"] = run_name or f"{method}-{self.name}"
        if self.task == "causal_lm":
            raw["task"] = {"type": "causal_lm"}
            raw["data"] = {"train_file": str(self.corpus), "max_length": 16}
        return build_config(raw)


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


@pytest.fixture(params=CASES)
def case(
    request, tiny_bert_dir: Path, tiny_llama_dir: Path, tiny_config, tmp_path: Path, toy_rows
) -> Case:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(toy_rows(200)["text"]) + "\n")
    model_dir = tiny_bert_dir if request.param.startswith("bert") else tiny_llama_dir
    return Case(request.param, model_dir, tiny_config, corpus)


def build(tiny_config, model_dir: Path, method: str, extra: dict, run_name=None, **train):
    """A classification config on one tiny model (for the method-specific tests below)."""
    case = Case("x-classification", model_dir, tiny_config, Path())
    return case.config(method, extra, run_name, **train)


def test_every_method_is_in_the_table() -> None:
    assert set(METHODS) - {"qlora"} == set(METHOD_TABLE)


@pytest.mark.parametrize("method", list(METHOD_TABLE))
def test_one_step_changes_trainable_and_only_trainable(case: Case, method: str) -> None:
    extra, (low, high) = METHOD_TABLE[method]
    cfg = case.config(method, extra, max_steps=1, eval_on_start=False)
    session = prepare_training(cfg)
    trainer, model = session.trainer, session.model
    share = count_parameters(model)["trainable_share"]
    assert low <= share <= high, share
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    before = snapshot(model)
    trainer.train()
    after = snapshot(model)
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed, "one optimizer step must change something"
    assert changed <= trainable, f"frozen parameters changed: {sorted(changed - trainable)[:5]}"


def assert_reloaded_perplexity(cfg, result) -> None:
    """The reloaded causal LM scores the test blocks exactly as the run reported."""
    model = load_run_model(result.run_dir).eval()
    ids = lm_test_blocks(cfg, result.run_dir)
    with torch.no_grad():
        perplexity = math.exp(model(input_ids=ids, labels=ids).loss.item())
    assert perplexity == pytest.approx(result.metrics["test"]["perplexity_after"], rel=1e-4)


TEXTS = ["the movie was superb", "dull plot", "really very boring acting is sad"]


def lm_test_blocks(cfg, run_dir: Path) -> torch.Tensor:
    """The test split's token blocks, rebuilt from the config exactly as training built them."""
    from transformers import AutoTokenizer

    from tunelab.data.blocks import group_into_blocks
    from tunelab.tasks.language_model import prepare_corpus

    data = prepare_corpus(cfg.data, cfg.train.seed)
    tokenizer = AutoTokenizer.from_pretrained(run_dir / "model")
    blocks = group_into_blocks(tokenizer, data.splits["test"]["text"].tolist(), cfg.data.max_length)
    return torch.tensor(blocks["input_ids"])


@pytest.mark.parametrize("method", ["full", "lora", "ia3", "prefix", "prompt", "freeze"])
def test_save_then_load_gives_identical_outputs(case: Case, method: str) -> None:
    extra, _ = METHOD_TABLE[method]
    cfg = case.config(method, extra, epochs=1, eval_on_start=False)
    result = tunelab.train(cfg)
    if method in ("lora", "ia3", "prefix", "prompt"):
        saved = {p.name for p in (result.run_dir / "model").iterdir()}
        assert "adapter_model.safetensors" in saved and "model.safetensors" not in saved
    if case.task == "classification":
        reloaded = load_predictor(result.run_dir)
        again = load_predictor(result.run_dir)
        np.testing.assert_array_equal(reloaded.logits(TEXTS), again.logits(TEXTS))
        report = tunelab.evaluate(result.run_dir)
        assert report["confusion_matrix"] == result.metrics["test"]["confusion_matrix"]
        return
    assert_reloaded_perplexity(cfg, result)


@pytest.mark.parametrize("method", ["lora", "ia3"])
def test_merged_equals_unmerged(case: Case, method: str) -> None:
    extra, _ = METHOD_TABLE[method]
    cfg = case.config(method, extra, epochs=1, eval_on_start=False)
    result = tunelab.train(cfg)
    if case.task == "classification":
        predictor = load_predictor(result.run_dir)
        unmerged = predictor.logits(TEXTS)
        predictor.model = predictor.model.merge_and_unload()
        np.testing.assert_allclose(predictor.logits(TEXTS), unmerged, atol=1e-4)
        return
    model = load_run_model(result.run_dir).eval()
    ids = lm_test_blocks(cfg, result.run_dir)
    with torch.no_grad():
        unmerged_logits = model(input_ids=ids).logits
        merged_logits = model.merge_and_unload()(input_ids=ids).logits
    torch.testing.assert_close(merged_logits, unmerged_logits, atol=1e-4, rtol=1e-4)


def test_gradual_unfreezing_updates_a_layer_only_after_it_is_unfrozen(
    tiny_config, tiny_bert_dir: Path
) -> None:
    cfg = build(
        tiny_config,
        tiny_bert_dir,
        "gradual_unfreeze",
        {"gradual": {"every_steps": 2}},
        max_steps=6,
        eval_on_start=False,
        warmup_ratio=0.0,
    )
    session = prepare_training(cfg)
    trainer, model = session.trainer, session.model
    layers = layer_map(model)
    top_layer, bottom_layer = layers.layers[-1][0], layers.layers[0][0]
    history = []

    class Watch(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            history.append(
                (state.global_step, top_layer.detach().clone(), bottom_layer.detach().clone())
            )

    start_top, start_bottom = top_layer.detach().clone(), bottom_layer.detach().clone()
    trainer.add_callback(Watch())
    trainer.train()
    steps = {step: (top, bottom) for step, top, bottom in history}
    # Groups unfreeze at steps 2, 4, 6 (top layer, bottom layer, embeddings) with every_steps=2.
    assert torch.equal(steps[2][0], start_top)  # step 1-2: top layer still frozen
    assert not torch.equal(steps[3][0], start_top)  # step 3 trains the unfrozen top layer
    assert torch.equal(steps[4][1], start_bottom)  # bottom layer frozen through step 4
    assert not torch.equal(steps[5][1], start_bottom)


def test_llrd_gives_lower_layers_smaller_learning_rates(tiny_config, tiny_bert_dir: Path) -> None:
    from tunelab.training.optimizer import build_optimizer

    cfg = build(tiny_config, tiny_bert_dir, "full", {"llrd": 0.5})
    model = prepare_training(cfg).model
    optimizer = build_optimizer(model, 1e-3, 0.01, 0.5)
    lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    layers = layer_map(model)
    assert lr_of[id(layers.layers[-1][0])] == pytest.approx(5e-4)  # top layer: one step down
    assert lr_of[id(layers.layers[0][0])] == pytest.approx(2.5e-4)
    assert lr_of[id(layers.embeddings[0])] == pytest.approx(1.25e-4)
    assert lr_of[id(layers.top[-1])] == pytest.approx(1e-3)  # the head keeps the full rate
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(list(model.parameters()))


def test_unknown_method_and_qlora_on_cpu(tiny_config) -> None:
    raw = tiny_config.to_dict()
    raw["method"] = {"name": "lorra"}
    with pytest.raises(ConfigError, match="Did you mean 'lora'"):
        build_config(raw)
    if not torch.cuda.is_available():
        raw["method"] = {"name": "qlora"}
        with pytest.raises(ConfigError, match="needs a CUDA GPU"):
            tunelab.train(build_config(raw))
        assert not (
            Path(raw["output"]["dir"]) / raw["output"]["name"]
        ).exists()  # refused before writing


def test_every_method_is_a_complete_bundle() -> None:
    from tunelab.config import MethodConfig, RunConfig
    from tunelab.methods import MethodSpec, adapter_only_methods

    for name, spec in METHODS.items():
        assert isinstance(spec, MethodSpec) and spec.name == name
        assert 0 < spec.default_lr < 1
        assert spec.settings is None or spec.settings in MethodConfig.model_fields, name
        assert isinstance(spec.checks(RunConfig()), list)
    assert adapter_only_methods() == {"lora", "qlora", "ia3", "prefix", "prompt"}
    with pytest.raises(ValueError, match="already registered"):
        METHODS.add("lora", METHODS.get("lora"))


# LoRA variants (peft's own, as method.lora.*): what each must visibly change in the wrapped model
LORA_VARIANTS = {
    "dora": {"use_dora": True},
    "rslora": {"use_rslora": True},
    "gaussian": {"init": "gaussian"},
    "all-linear": {"target_modules": "all-linear"},
    "pissa": {"init": "pissa"},
    "olora": {"init": "olora"},
}


def lora_layers(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    return {name: m for name, m in model.named_modules() if hasattr(m, "lora_A") and m.lora_A}


@pytest.mark.parametrize("variant", list(LORA_VARIANTS))
def test_lora_variants_train_save_and_reload(case: Case, variant: str) -> None:
    settings = {"r": 4, "alpha": 8, **LORA_VARIANTS[variant]}
    plain_cfg = case.config("lora", {"lora": {"r": 4, "alpha": 8}}, run_name="plain", max_steps=1)
    plain = prepare_training(plain_cfg).model
    model = prepare_training(case.config("lora", {"lora": settings}, run_name="look")).model
    cfg = case.config("lora", {"lora": settings}, epochs=1, eval_on_start=False)
    layers = lora_layers(model)
    names = [n for n, _ in model.named_parameters()]
    if variant == "dora":
        assert any("lora_magnitude_vector" in n for n in names)
    if variant == "rslora":
        scaling = next(iter(layers.values())).scaling["default"]
        assert scaling == pytest.approx(8 / math.sqrt(4))  # alpha / sqrt(r), not alpha / r = 2
    if variant == "gaussian":
        weight = next(iter(layers.values())).lora_A["default"].weight
        assert abs(float(weight.detach().std()) - 1 / 4) < 0.1  # peft: normal with std 1/r
    if variant == "all-linear":
        assert len(layers) > len(lora_layers(plain))  # MLP projections too, not attention alone
    if variant in ("pissa", "olora"):  # the principal part moves out of the base weight
        name, layer = next(iter(layers.items()))
        before = dict(plain.named_modules())[name].base_layer.weight
        assert not torch.allclose(layer.base_layer.weight, before)
        start = layer.lora_B["default"].weight @ layer.lora_A["default"].weight
        # B is not zero: the adapter starts from W's top part
        assert float(start.detach().abs().max()) > 0
        scale = layer.scaling["default"]
        assert torch.allclose(layer.base_layer.weight + scale * start, before, atol=1e-4)
    result = tunelab.train(cfg)
    saved = json.loads((result.run_dir / "model" / "adapter_config.json").read_text())
    assert saved["use_dora"] is (variant == "dora") and saved["use_rslora"] is (variant == "rslora")
    if variant in ("pissa", "olora"):  # converted to plain LoRA on the unchanged base: rank 2r
        assert saved["r"] == 8 and saved["init_lora_weights"] is True
    if case.task == "classification":
        reloaded = load_predictor(result.run_dir)
        report = tunelab.evaluate(result.run_dir)
        assert report["confusion_matrix"] == result.metrics["test"]["confusion_matrix"]
        assert reloaded.logits(TEXTS).shape == (3, 2)
        return
    assert_reloaded_perplexity(cfg, result)


def test_lora_modules_to_save_train_in_full_and_a_wrong_name_is_one_line(
    tiny_config, tiny_bert_dir: Path
) -> None:
    cfg = build(tiny_config, tiny_bert_dir, "lora", {"lora": {"modules_to_save": ["pooler"]}})
    model = prepare_training(cfg).model
    pooler = [n for n, p in model.named_parameters() if "pooler" in n and p.requires_grad]
    assert pooler and all("modules_to_save" in n for n in pooler)
    wrong = build(
        tiny_config, tiny_bert_dir, "lora", {"lora": {"modules_to_save": ["poolr"]}}, "wrong"
    )
    with pytest.raises(
        ConfigError, match=r"has no module named 'poolr'.*top-level modules are: bert"
    ):
        prepare_training(wrong)
