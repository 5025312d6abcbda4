"""`tunelab export`: merged adapters give the run's outputs without peft; bad requests are one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_cli import assert_one_line_error, run

import tunelab
from tunelab.config import build_config
from tunelab.deploy.export import PROBE_TEXTS, export_run
from tunelab.errors import ConfigError, RunDirError
from tunelab.inference import Predictor, load_run_model


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
        Predictor.from_run_dir(exported).logits(texts),
        Predictor.from_run_dir(run_dir).logits(texts),
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
    with pytest.raises(ConfigError, match="inside the run"):
        export_run(full, full / "export", "hf")
    with pytest.raises(ConfigError, match="unknown; choose one of hf, merged"):
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
