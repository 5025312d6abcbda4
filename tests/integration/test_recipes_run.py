"""Every recipe runs end to end for a few steps: on tiny models of the original's family (fast),
and for the SFT recipe on the packaged SmolLM2 itself (slow).

Tiny models get a WordPiece tokenizer trained in the test on the recipe's own data, so they
can learn from it; the recipe file is used as shipped, with overrides for model and budget.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import tunelab
from tunelab.data.load import read_table
from tunelab.workflows.check import load_checked as load_config

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"
DATA = ROOT / "data"  # the bundled samples the recipes read


def wordpiece(texts: list[str], directory: Path, seq2seq_eos: bool = False):
    """A WordPiece tokenizer trained on `texts`; T5-style (ends texts with </s>) when `seq2seq_eos`."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "</s>"]
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece()
    backend.train_from_iterator(
        texts, trainers.WordPieceTrainer(vocab_size=1500, special_tokens=special)
    )
    if seq2seq_eos:
        backend.post_processor = processors.TemplateProcessing(
            single="$A </s>", special_tokens=[("</s>", backend.token_to_id("</s>"))]
        )
        extra = {"eos_token": "</s>"}
    else:
        backend.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]",
            special_tokens=[("[CLS]", 2), ("[SEP]", 3)],
        )
        extra = {
            "cls_token": "[CLS]",
            "sep_token": "[SEP]",
            "mask_token": "[MASK]",
            "eos_token": "</s>",
        }
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]", **extra
    )
    tokenizer.save_pretrained(directory)
    return tokenizer


def tiny_classifier(family: str, texts: list[str], directory: Path) -> Path:
    import transformers

    tokenizer = wordpiece(texts, directory)
    size = {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
    }
    configs = {
        "bert": ("BertConfig", "BertForSequenceClassification", size),
        "roberta": ("RobertaConfig", "RobertaForSequenceClassification", size),
        "deberta": ("DebertaV2Config", "DebertaV2ForSequenceClassification", size),
        "distilbert": (
            "DistilBertConfig",
            "DistilBertForSequenceClassification",
            {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64},
        ),
    }
    config_name, model_name, shape = configs[family]
    config = getattr(transformers, config_name)(
        vocab_size=len(tokenizer), max_position_embeddings=130, pad_token_id=0, **shape
    )
    transformers.set_seed(0)
    getattr(transformers, model_name)(config).save_pretrained(directory)
    return directory


def tiny_t5(texts: list[str], directory: Path) -> Path:
    from transformers import T5Config, T5ForConditionalGeneration, set_seed

    tokenizer = wordpiece(texts, directory, seq2seq_eos=True)
    set_seed(0)
    config = T5Config(
        vocab_size=len(tokenizer),
        d_model=32,
        d_kv=16,
        d_ff=64,
        num_layers=2,
        num_heads=2,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    T5ForConditionalGeneration(config).save_pretrained(directory)
    return directory


def tiny_decoder(texts: list[str], directory: Path) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM, set_seed

    tokenizer = wordpiece(texts, directory)
    set_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(directory)
    return directory


def column_texts(path: Path, *columns: str) -> list[str]:
    frame = read_table(path)
    return [
        " ".join(map(str, v)) if isinstance(v, list) else str(v) for c in columns for v in frame[c]
    ]


def run_recipe(name: str, tmp_path: Path, *overrides: str):
    cfg = load_config(
        RECIPES / name,
        [
            f"output.dir={tmp_path / 'runs'}",
            "train.precision=fp32",
            "train.log_every=2",
            *overrides,
        ],
    )
    return tunelab.train(cfg)


def losses(run_dir: Path) -> list[float]:
    lines = (run_dir / "logs" / "train_log.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines if '"loss"' in line]


@pytest.mark.parametrize("family", ["bert", "roberta", "deberta", "distilbert"])
def test_daigt_recipe_trains_a_tiny_model_of_its_family(tmp_path: Path, family: str) -> None:
    data = ROOT / "data" / "daigt" / "daigt_scitldr.csv"
    model_dir = tiny_classifier(family, column_texts(data, "text"), tmp_path / family)
    result = run_recipe(
        f"daigt-{family}.yaml",
        tmp_path,
        f"model.name={model_dir}",
        "data.max_length=128",
        "train.epochs=2",
        "train.lr=2e-3",
        # a randomly initialised stand-in has no word embeddings worth keeping fixed
        "method.freeze_word_embeddings=false",
    )
    curve = losses(result.run_dir)
    assert curve[-1] < curve[0]
    assert result.metrics["test"]["rows"] > 0
    assert (result.run_dir / "model" / "model.safetensors").is_file()
    card = json.loads((result.run_dir / "run_card.json").read_text())
    assert card["status"] == "completed"


def test_text2pandas_recipe_trains_a_tiny_t5(tmp_path: Path) -> None:
    data = ROOT / "data" / "text2pandas" / "train.jsonl"
    model_dir = tiny_t5(column_texts(data, "question", "code"), tmp_path / "t5")
    result = run_recipe(
        "text2pandas-t5.yaml",
        tmp_path,
        f"model.name={model_dir}",
        "train.epochs=3",
        "train.lr=3e-3",
    )
    test = result.metrics["test"]
    assert test["perplexity_after"] < test["perplexity_before"]
    assert (result.run_dir / "predictions" / "test_generations.jsonl").is_file()


def test_sms_recipes_chain_domain_adaptation_into_the_spam_classifier(tmp_path: Path) -> None:
    """The two SMS recipes as their comments chain them, on the bundled corpus and a tiny BERT:
    masked-LM training on the texts, then the spam classifier starting from that encoder."""
    data = DATA / "sms_spam" / "sms_spam.jsonl"
    model_dir = tiny_classifier("bert", column_texts(data, "text"), tmp_path / "bert")
    mlm = run_recipe(
        "sms-mlm-minilm.yaml",
        tmp_path,
        f"model.name={model_dir}",
        "data.max_train_rows=600",
        "train.lr=3e-3",
        "train.epochs=2",
    )
    assert mlm.metrics["test"]["perplexity_after"] < mlm.metrics["test"]["perplexity_before"]
    spam = run_recipe(
        "sms-spam-minilm.yaml",
        tmp_path,
        f"model.name={mlm.run_dir / 'model'}",
        "data.max_train_rows=1200",
        "train.lr=3e-3",
        "train.epochs=2",
    )
    test, majority = spam.metrics["test"], spam.metrics["baselines"]["majority"]
    # class-weighted (13% spam): macro-F1 is the score it trades accuracy for
    assert test["macro_f1"] > majority["macro_f1"] + 0.1, (test, majority)


def test_summarize_recipe_trains_lora_on_a_tiny_t5(tmp_path: Path) -> None:
    data = DATA / "scitldr" / "train.jsonl"
    model_dir = tiny_t5(column_texts(data, "source", "target"), tmp_path / "t5")
    result = run_recipe(
        "summarize-lora.yaml",
        tmp_path,
        f"model.name={model_dir}",
        "train.epochs=1",
        "method.lora.target_modules=[q,v]",
        "data.max_eval_rows=16",
        "eval.generate_rows=4",
    )
    test = result.metrics["test"]
    assert test["perplexity_after"] < test["perplexity_before"]
    assert (result.run_dir / "model" / "adapter_model.safetensors").is_file()


def test_sft_recipe_trains_a_tiny_decoder(tmp_path: Path) -> None:
    data = DATA / "gsm8k" / "train.jsonl"
    model_dir = tiny_decoder(column_texts(data, "question", "answer"), tmp_path / "llama")
    result = run_recipe(
        "sft-smollm2-lora.yaml",
        tmp_path,
        f"model.name={model_dir}",
        "train.max_steps=20",
        "train.lr=5e-3",
        "eval.generate_rows=2",
        "task.generation.max_new_tokens=8",
    )
    test = result.metrics["test"]
    assert test["perplexity_after"] < test["perplexity_before"]
    assert json.loads((result.run_dir / "preflight.json").read_text())["template"] == "chatml"


@pytest.mark.slow
def test_sft_recipe_on_smollm2_lowers_held_out_perplexity(tmp_path: Path) -> None:
    """~20 LoRA steps on the packaged SmolLM2-135M-Instruct (a few minutes on 2 cores)."""
    result = run_recipe(
        "sft-smollm2-lora.yaml",
        tmp_path,
        "train.max_steps=20",
        "train.precision=auto",
        "data.max_eval_rows=16",
        "eval.generate_rows=2",
        "task.generation.max_new_tokens=32",
    )
    test = result.metrics["test"]
    assert test["perplexity_after"] < test["perplexity_before"]
    generations = pd.read_json(
        result.run_dir / "predictions" / "test_generations.jsonl", lines=True
    )
    assert generations["prediction"].str.len().min() > 0
