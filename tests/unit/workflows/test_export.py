"""`tunelab export`: merged, ONNX, int8 and pruned exports are checked and measured; bad requests are one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from test_cli import assert_one_line_error, run

import tunelab
from tunelab.errors import ConfigError, RunDirError
from tunelab.inference.int8 import INT8_FILE
from tunelab.inference.predictor import OnnxPredictor, _is_int8
from tunelab.runs import load_predictor, load_run_model
from tunelab.workflows import export as export_module
from tunelab.workflows.check import build_checked as build_config
from tunelab.workflows.export import PROBE_TEXTS, export_run


def trained(tiny_config, method: str, **extra) -> Path:
    raw = tiny_config.to_dict()
    raw["method"] = {"name": method, **extra}
    raw["train"].update(epochs=1, eval_on_start=False)
    raw["output"]["name"] = method
    return tunelab.train(build_config(raw)).run_dir


@pytest.mark.parametrize("method", ["lora", "ia3"])
def test_merged_export_predicts_like_the_run_and_needs_no_adapter(
    tiny_config, tmp_path: Path, method: str
) -> None:
    run_dir = trained(tiny_config, method)
    record = export_run(run_dir, tmp_path / "exported", "merged")
    assert record["adapter"] == method.upper() and record["max_abs_difference"] <= 1e-4
    exported = tmp_path / "exported"
    assert not (exported / "model" / "adapter_config.json").exists()
    assert (exported / "model" / "model.safetensors").is_file()
    assert (exported / "export.json").is_file()
    texts = [*PROBE_TEXTS, "another sentence entirely", "good"]
    np.testing.assert_allclose(
        load_predictor(exported).logits(texts),
        load_predictor(run_dir).logits(texts),
        atol=1e-4,
    )


def test_merged_causal_lm_export_matches_the_adapter_run(
    tiny_config, tiny_llama_dir: Path, tmp_path: Path, toy_rows
) -> None:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(toy_rows(120)["text"]) + "\n")
    raw = tiny_config.to_dict()
    raw.update(
        model={"name": str(tiny_llama_dir)},
        task={"type": "causal_lm"},
        data={"train_file": str(corpus), "max_length": 16},
        method={"name": "lora", "lora": {"r": 4}},
    )
    raw["train"].update(epochs=1, eval_on_start=False)
    run_dir = tunelab.train(build_config(raw)).run_dir
    export_run(run_dir, tmp_path / "merged", "merged")
    ids = torch.tensor([[1, 5, 9, 13, 2, 7]])
    with torch.no_grad():
        expected = load_run_model(run_dir).eval()(input_ids=ids).logits
        got = load_run_model(tmp_path / "merged").eval()(input_ids=ids).logits
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_bad_export_requests_are_refused_before_writing(tiny_config, tmp_path: Path) -> None:
    full = trained(tiny_config, "full")
    with pytest.raises(RunDirError, match="nothing to merge"):
        export_run(full, tmp_path / "x", "merged")
    with pytest.raises(ConfigError, match="inside it or above it"):
        export_run(full, full / "export", "hf")
    with pytest.raises(ConfigError, match="inside it or above it"):
        export_run(full, full.parent, "hf")  # replacing the runs directory would delete the run
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(ConfigError, match="exists and is not a tunelab export"):
        export_run(full, tmp_path / "notes", "hf")
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"
    with pytest.raises(ConfigError, match="unknown; choose one of auto, hf, merged, onnx"):
        export_run(full, tmp_path / "x", "onnnx")
    assert not (tmp_path / "x").exists()
    prompt = trained(tiny_config, "prompt", virtual_tokens={"num_virtual_tokens": 2})
    with pytest.raises(RunDirError, match="PROMPT_TUNING adapter, which has no weights to merge"):
        export_run(prompt, tmp_path / "x", "merged")
    export_run(full, tmp_path / "copy", "hf")  # a full model exports as it is
    assert (tmp_path / "copy" / "model" / "model.safetensors").is_file()


def test_export_command_prints_the_parity_and_refuses_in_one_line(
    tiny_config, tmp_path: Path
) -> None:
    run_dir = trained(tiny_config, "lora", lora={"r": 2})
    done = run("export", str(run_dir), "--out", str(tmp_path / "m"), "--merge")
    assert done.returncode == 0, done.stderr
    assert "largest output difference from the run" in done.stdout
    predicted = run("predict", str(tmp_path / "m"), "--text", "a fine film")
    assert predicted.returncode == 0 and '"label"' in predicted.stdout, predicted.stderr
    assert_one_line_error(
        run("export", str(tmp_path / "nope"), "--out", str(tmp_path / "n")), "nope"
    )


def test_onnx_export_matches_pytorch_and_is_what_predict_loads(tiny_config, tmp_path: Path) -> None:
    run_dir = trained(tiny_config, "full")
    record = export_run(run_dir, tmp_path / "onnx", "onnx")
    exported = tmp_path / "onnx"
    assert (exported / "model" / "model.onnx").is_file()
    assert not (exported / "model" / "model.safetensors").exists()
    assert record["onnx"]["max_abs_difference"] <= record["onnx"]["tolerance"] == 1e-3
    onnx_predictor = load_predictor(exported)
    assert isinstance(onnx_predictor, OnnxPredictor)
    texts = [*PROBE_TEXTS, "good", "the plot was really very boring and the acting was sad"]
    np.testing.assert_allclose(
        onnx_predictor.logits(texts), load_predictor(run_dir).logits(texts), atol=1e-4
    )
    accuracy = record["measured"]["accuracy"]
    assert accuracy["rows"] > 0 and abs(accuracy["change"]["accuracy"]) < 1e-9
    speed = record["measured"]["speed"]
    assert speed["export_device"] == "cpu" and speed["texts"] == accuracy["rows"]
    saved = json.loads((exported / "export.json").read_text())
    assert saved["onnx"] == record["onnx"]


def test_an_onnx_graph_outside_the_tolerance_is_refused_and_nothing_written(
    tiny_config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = trained(tiny_config, "full")
    monkeypatch.setattr(export_module, "ONNX_TOLERANCE", 0.0)  # any float difference now fails
    with pytest.raises(RunDirError, match="ONNX graph differs from the PyTorch model"):
        export_run(run_dir, tmp_path / "onnx", "onnx", measure=False)
    assert not (tmp_path / "onnx").exists()
    assert not list(tmp_path.glob(".onnx.*"))  # no temp directory left behind


@pytest.mark.parametrize("fmt", ["hf", "onnx"])
def test_int8_exports_store_int8_weights_and_record_size_and_accuracy(
    tiny_config, tmp_path: Path, fmt: str
) -> None:
    run_dir = trained(tiny_config, "full")
    plain = export_run(run_dir, tmp_path / "plain", fmt)
    record = export_run(run_dir, tmp_path / "int8", fmt, quantize="int8")
    size, plain_size = record["measured"]["size_mb"], plain["measured"]["size_mb"]
    assert size["export"] < plain_size["export"]
    assert size["run"] == plain_size["run"]
    accuracy = record["measured"]["accuracy"]
    scored_again = tunelab.evaluate(tmp_path / "int8")  # the export, scored by `tunelab evaluate`
    assert accuracy["export"]["accuracy"] == pytest.approx(scored_again["accuracy"])
    assert accuracy["run"]["accuracy"] == pytest.approx(tunelab.evaluate(run_dir)["accuracy"])
    predictor = load_predictor(tmp_path / "int8")
    texts = [*PROBE_TEXTS, "good", "awful"]
    run_probabilities = load_predictor(run_dir).predict(texts)[1]
    np.testing.assert_allclose(predictor.predict(texts)[1], run_probabilities, atol=0.05)
    if fmt == "hf":
        stored = load_file(tmp_path / "int8" / "model" / INT8_FILE)
        query = "bert.encoder.layer.0.attention.self.query"
        assert stored[f"{query}.weight"].dtype == torch.int8
        assert stored[f"{query}.weight_scale"].shape == (16,)  # one scale per output channel
        words = "bert.embeddings.word_embeddings"
        assert stored[f"{words}.weight"].dtype == torch.uint8  # a scale and offset per row
        assert stored[f"{words}.weight_zero_point"].shape == stored[f"{words}.weight_scale"].shape
        assert _is_int8(predictor.model) and record["int8"]["max_abs_difference"] > 0
        # Linear weights 4 bytes -> 1 (+ scales); a model this tiny keeps headers at ~0.6
        assert size["export"] < plain_size["export"] * 0.7
    else:
        import onnx

        graph = onnx.load(tmp_path / "int8" / "model" / "model.onnx").graph
        int8_weights = [t for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
        assert sum(np.prod(t.dims) for t in int8_weights) >= 2 * 4 * 16 * 16  # q,k,v,o of 2 layers


def test_pruning_reaches_the_asked_sparsity_in_the_body_and_keeps_the_head(
    tiny_config, tmp_path: Path
) -> None:
    run_dir = trained(tiny_config, "full")
    record = export_run(run_dir, tmp_path / "pruned", "hf", prune=0.5)
    assert record["pruning"]["sparsity_of_pruned_layers"] == pytest.approx(0.5, abs=0.01)
    model = load_run_model(tmp_path / "pruned")
    body = [m.weight for m in model.bert.encoder.modules() if isinstance(m, torch.nn.Linear)]
    zeros = sum(int((w == 0).sum()) for w in body) / sum(w.numel() for w in body)
    assert zeros == pytest.approx(0.5, abs=0.01)  # the zeros were saved, not only masked
    assert int((model.classifier.weight == 0).sum()) == 0
    assert int((model.bert.pooler.dense.weight == 0).sum()) == 0  # the pooler belongs to the head
    assert "accuracy" in record["measured"]["accuracy"]["change"]
    card = (tmp_path / "pruned" / "model_card.md").read_text()
    assert "measured sparsity of the pruned layers: 0.5" in card


def test_the_model_card_has_use_data_metrics_baselines_limits_and_licences(
    tiny_config, tmp_path: Path
) -> None:
    run_dir = trained(tiny_config, "full")
    export_run(run_dir, tmp_path / "card", "hf")
    card = (tmp_path / "card" / "model_card.md").read_text()
    for heading in ("Intended use", "Training data", "Metrics", "Limitations", "Licences"):
        assert f"## {heading}" in card
    assert "# Model card: card\n" in card
    assert "| baseline: majority |" in card and "| this export |" in card
    assert "no PROVENANCE.md beside the file" in card  # the toy data has none, and says so


def test_lora_exports_to_onnx_after_merging(tiny_config, tmp_path: Path) -> None:
    run_dir = trained(tiny_config, "lora")
    record = export_run(run_dir, tmp_path / "onnx", "onnx", measure=False)
    assert record["merged"] and record["adapter"] == "LORA"
    np.testing.assert_allclose(
        load_predictor(tmp_path / "onnx").logits(list(PROBE_TEXTS)),
        load_predictor(run_dir).logits(list(PROBE_TEXTS)),
        atol=1e-4,
    )


def test_bad_compression_requests_end_in_one_line(tiny_config, tmp_path: Path) -> None:
    full = trained(tiny_config, "full")
    with pytest.raises(ConfigError, match="--quantize 'int4' is unknown"):
        export_run(full, tmp_path / "x", "hf", quantize="int4")
    with pytest.raises(ConfigError, match=r"above 0 and below 1; got 1\.5"):
        export_run(full, tmp_path / "x", "hf", prune=1.5)
    with pytest.raises(ConfigError, match="needs a CUDA GPU"):
        load_predictor(full, load_in="4bit")
    result = run("export", str(full), "--out", str(tmp_path / "x"), "--prune", "0")
    assert_one_line_error(result, "above 0 and below 1")
    assert not (tmp_path / "x").exists()
    result = run("predict", str(full), "--text", "good", "--load-in", "4bit")
    assert_one_line_error(result, "loading in 4bit needs a CUDA GPU")
    result = run("serve", str(full), "--port", "0", "--load-in", "8bit")
    assert_one_line_error(result, "loading in 8bit needs a CUDA GPU")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="bitsandbytes loading needs CUDA")
def test_bitsandbytes_loading_on_a_gpu_predicts_like_the_run(tiny_config) -> None:
    run_dir = trained(tiny_config, "full")
    texts = list(PROBE_TEXTS)
    expected = load_predictor(run_dir).predict(texts)[1]
    for bits in ("8bit", "4bit"):
        got = load_predictor(run_dir, load_in=bits).predict(texts)[1]
        np.testing.assert_allclose(got, expected, atol=0.1)


def test_a_recovery_fine_tune_keeps_the_pruned_weights_at_zero(tiny_config, tmp_path: Path) -> None:
    run_dir = trained(tiny_config, "full")
    export_run(run_dir, tmp_path / "no-recovery", "hf", prune=0.5, measure=False)
    cfg_path = run_dir / "config.yaml"  # the run left lr to the method and capped the steps
    cfg_path.write_text(
        cfg_path.read_text()
        .replace("lr: 0.005", "lr: null")
        .replace("max_steps: null", "max_steps: 3")
    )
    record = export_run(
        run_dir, tmp_path / "recovered", "hf", prune=0.5, measure=False, recover_epochs=1
    )
    assert record["recovery"]["lr"] == 1e-4 and record["recovery"]["epochs"] == 1
    assert record["recovery"]["steps"] > 3  # one epoch of the toy train split, not max_steps
    assert record["recovery"]["epochs"] == 1 and "accuracy" in record["recovery"]["validation"]
    assert record["pruning"]["sparsity_of_pruned_layers"] == pytest.approx(0.5, abs=0.01)
    before = load_run_model(tmp_path / "no-recovery").bert.encoder.layer[0].output.dense.weight
    after = load_run_model(tmp_path / "recovered").bert.encoder.layer[0].output.dense.weight
    assert torch.equal(before == 0, after == 0)  # the same weights stayed pruned
    assert not torch.equal(before, after)  # and the others were trained
    with pytest.raises(ConfigError, match="give --prune too"):
        export_run(run_dir, tmp_path / "x", "hf", recover_epochs=1)


def test_decoder_classifiers_export_to_onnx(
    tiny_config, tiny_llama_dir: Path, tmp_path: Path
) -> None:
    raw = tiny_config.to_dict()
    raw["model"] = {"name": str(tiny_llama_dir)}
    raw["method"] = {"name": "full", "freeze_word_embeddings": False}
    raw["train"].update(epochs=1, eval_on_start=False)
    run_dir = tunelab.train(build_config(raw)).run_dir
    record = export_run(run_dir, tmp_path / "onnx", "onnx", quantize="int8", measure=False)
    assert record["onnx"]["max_abs_difference"] <= 1e-3
    texts = [*PROBE_TEXTS, "good"]
    np.testing.assert_allclose(
        load_predictor(tmp_path / "onnx").predict(texts)[1],
        load_predictor(run_dir).predict(texts)[1],
        atol=0.05,
    )


def test_pruning_a_causal_lm_leaves_its_tied_head_and_embeddings_whole(
    tiny_config, tiny_llama_dir: Path, tmp_path: Path, toy_rows
) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    from tunelab.deploy.prune import body_linears, prune_global_magnitude

    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=40,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            tie_word_embeddings=True,
        )
    )
    assert model.lm_head.weight is model.get_input_embeddings().weight
    names = [name for name, _ in body_linears(model)]
    assert "lm_head" not in names and len(names) == 2 * 7  # q k v o gate up down per layer
    record = prune_global_magnitude(model, 0.5)
    assert record["sparsity_of_pruned_layers"] == pytest.approx(0.5, abs=0.01)
    assert int((model.get_input_embeddings().weight == 0).sum()) == 0


def test_models_without_torch_linear_layers_are_refused_in_one_line() -> None:
    from transformers import GPT2Config, GPT2ForSequenceClassification

    from tunelab.deploy.prune import prune_global_magnitude
    from tunelab.errors import ModelError
    from tunelab.inference.int8 import quantize_dynamic_int8, save_int8

    model = GPT2ForSequenceClassification(
        GPT2Config(vocab_size=30, n_embd=8, n_layer=1, n_head=2, pad_token_id=0)
    )
    with pytest.raises(ModelError, match="Conv1D"):
        prune_global_magnitude(model, 0.3)
    with pytest.raises(ModelError, match="Conv1D"):
        save_int8(quantize_dynamic_int8(model), Path("/nonexistent"))


def test_an_export_of_a_compressed_export_points_back_to_the_run(
    tiny_config, tmp_path: Path
) -> None:
    run_dir = trained(tiny_config, "full")
    export_run(run_dir, tmp_path / "int8", "hf", quantize="int8", measure=False)
    with pytest.raises(RunDirError, match=f"already a compressed export.*{run_dir.name}"):
        export_run(tmp_path / "int8", tmp_path / "again", "hf")
    assert tunelab.predict(tmp_path / "int8", texts=["good"])["label"].iloc[0] in ("neg", "pos")
