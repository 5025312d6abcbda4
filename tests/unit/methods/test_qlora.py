"""QLoRA: 4-bit NF4 loading on CUDA; one clear line everywhere else."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import tunelab
from tunelab.errors import ConfigError
from tunelab.methods import method_for, quantized
from tunelab.workflows.check import build_checked as build_config

HAS_CUDA = torch.cuda.is_available()
HAS_BNB = importlib.util.find_spec("bitsandbytes") is not None


def qlora_config(tiny_config, model_dir: Path, corpus: Path):
    raw = tiny_config.to_dict()
    raw["model"]["name"] = str(model_dir)
    raw["task"] = {"type": "causal_lm"}
    raw["data"] = {"train_file": str(corpus), "max_length": 16}
    raw["method"] = {"name": "qlora", "lora": {"r": 4}}
    raw["train"].update(max_steps=8, batch_size=4, precision="auto", gradient_checkpointing=True)
    return raw


def test_no_extra_load_arguments_for_other_methods(tiny_config) -> None:
    assert method_for(tiny_config).load_kwargs(tiny_config) == {}


def test_the_quantization_is_the_qlora_papers_nf4_with_double_quantization() -> None:
    config = quantized.quantization_config(torch.bfloat16).to_dict()
    assert config["load_in_4bit"] and not config["load_in_8bit"]
    assert config["bnb_4bit_quant_type"] == "nf4"
    assert config["bnb_4bit_use_double_quant"]
    assert config["bnb_4bit_compute_dtype"] == "bfloat16"


@pytest.mark.skipif(HAS_CUDA, reason="checks the message a machine without CUDA gives")
def test_qlora_without_cuda_is_one_line_at_validation(
    tiny_config, tiny_llama_dir, tmp_path
) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("a b c\n" * 50)
    with pytest.raises(ConfigError) as info:
        build_config(qlora_config(tiny_config, tiny_llama_dir, corpus)).validated()
    message = str(info.value)
    assert "needs a CUDA GPU" in message and "method.name=lora" in message
    assert len([line for line in message.splitlines() if "qlora" in line]) == 1


@pytest.mark.gpu
@pytest.mark.skipif(
    not HAS_BNB, reason="bitsandbytes is not installed (pip install 'tunelab[gpu]')"
)
@pytest.mark.skipif(not HAS_CUDA, reason="QLoRA's 4-bit NF4 kernels (bitsandbytes) need a CUDA GPU")
def test_qlora_trains_a_4bit_tiny_llama_and_lowers_the_loss(
    tiny_config, tiny_llama_dir, tmp_path, toy_rows
) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(toy_rows(200)["text"]) + "\n")
    raw = qlora_config(tiny_config, tiny_llama_dir, corpus)
    raw["train"].update(max_steps=40, lr=5e-3)
    result = tunelab.train(build_config(raw))
    test = result.metrics["test"]
    assert test["perplexity_after"] < test["perplexity_before"]
    assert (result.run_dir / "model" / "adapter_model.safetensors").exists()
