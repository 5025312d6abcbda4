"""Shared fixtures: a tiny BERT built from a config (no hub), toy data, a fast run config."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pandas as pd
import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

POSITIVE = ["good", "great", "fine", "love", "nice", "superb", "fun"]
NEGATIVE = ["bad", "awful", "poor", "hate", "sad", "dull", "boring"]
FILLER = ["the", "a", "movie", "film", "was", "is", "very", "plot", "acting", "really"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TOY_VOCAB = {word: i for i, word in enumerate(SPECIAL + POSITIVE + NEGATIVE + FILLER)}


def build_tiny_bert(directory: Path, hidden_size: int = 16) -> Path:
    """A 2-layer BERT with a 29-word vocabulary, saved as safetensors + tokenizer in `directory`."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer, set_seed

    set_seed(0)
    config = BertConfig(
        vocab_size=len(TOY_VOCAB),
        hidden_size=hidden_size,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=64,
    )
    BertForSequenceClassification(config).save_pretrained(directory)
    BertTokenizer(vocab=TOY_VOCAB).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 16-wide BERT with a 29-word vocabulary, saved as safetensors + tokenizer."""
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def build_tiny_llama(directory: Path, pad_token_id: int | None = 0) -> Path:
    """A 2-layer Llama-architecture classifier with the toy vocabulary, saved to `directory`."""
    from transformers import BertTokenizer, LlamaConfig, LlamaForSequenceClassification, set_seed

    set_seed(0)
    config = LlamaConfig(
        vocab_size=len(TOY_VOCAB),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
        pad_token_id=pad_token_id,
    )
    LlamaForSequenceClassification(config).save_pretrained(directory)
    BertTokenizer(vocab=TOY_VOCAB).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama, for decoder-side method tests."""
    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture
def tiny_llama_builder():
    return build_tiny_llama


OPPOSITE = dict(zip(POSITIVE, NEGATIVE, strict=True)) | dict(zip(NEGATIVE, POSITIVE, strict=True))
CHAT_SPECIAL = ["<pad>", "<unk>", "</s>", "<s>", "<|im_start|>", "<|im_end|>"]
CHAT_WORDS = ["system", "user", "assistant", "opposite", "of", "answer", "words", ":", "\n", "#"]
CHAT_VOCAB = {w: i for i, w in enumerate(CHAT_SPECIAL + CHAT_WORDS + POSITIVE + NEGATIVE + FILLER)}


def word_tokenizer(eos: str = "</s>", append_eos: bool = False):
    """A fast word-level tokenizer over CHAT_VOCAB (offsets work; newlines are tokens)."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel(vocab=CHAT_VOCAB, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r"\n|<\|im_(start|end)\|>|<s>|</s>|[:#]"), "isolated"),
            pre_tokenizers.WhitespaceSplit(),
        ]
    )
    if append_eos:  # T5 style: every encoded text ends with </s>
        backend.post_processor = processors.TemplateProcessing(
            single="$A </s>", special_tokens=[("</s>", CHAT_VOCAB["</s>"])]
        )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        unk_token="<unk>",
        eos_token=eos,
        bos_token="<s>",
    )


def build_tiny_chat_llama(directory: Path, eos: str = "</s>") -> Path:
    """A 2-layer Llama causal LM with a word tokenizer that has no chat template of its own."""
    from transformers import LlamaConfig, LlamaForCausalLM, set_seed

    set_seed(0)
    tokenizer = word_tokenizer(eos)
    config = LlamaConfig(
        vocab_size=len(CHAT_VOCAB),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        tie_word_embeddings=False,
    )
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_chat_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_chat_llama(tmp_path_factory.mktemp("tiny-chat-llama"))


@pytest.fixture(scope="session")
def tiny_t5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer T5 from T5Config with a locally built word tokenizer (no real T5 is packaged)."""
    from transformers import T5Config, T5ForConditionalGeneration, set_seed

    set_seed(0)
    directory = tmp_path_factory.mktemp("tiny-t5")
    tokenizer = word_tokenizer(append_eos=True)
    config = T5Config(
        vocab_size=len(CHAT_VOCAB),
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
    tokenizer.save_pretrained(directory)
    return directory


def toy_opposites(rows: int, seed: int = 0) -> pd.DataFrame:
    """'opposite of good bad' → 'bad good': learnable word by word in a few steps."""
    rng = random.Random(seed)
    words = list(OPPOSITE)
    records = []
    for _ in range(rows):
        chosen = rng.sample(words, rng.randint(1, 3))
        records.append(
            {
                "question": "opposite of " + " ".join(chosen),
                "answer": " ".join(OPPOSITE[w] for w in chosen),
            }
        )
    return pd.DataFrame(records)


def toy_sentiment(
    rows: int, seed: int = 0, labels: tuple[str, str] = ("neg", "pos")
) -> pd.DataFrame:
    """Sentences whose label is decided by one sentiment word among filler: learnable in a few steps."""
    rng = random.Random(seed)
    records = []
    for i in range(rows):
        positive = i % 2 == 0
        words = [*rng.sample(FILLER, 4), rng.choice(POSITIVE if positive else NEGATIVE)]
        rng.shuffle(words)
        records.append({"text": " ".join(words), "label": labels[1] if positive else labels[0]})
    return pd.DataFrame(records)


@pytest.fixture
def toy_rows():
    """The toy_sentiment generator, for tests that need their own mix of rows."""
    return toy_sentiment


@pytest.fixture
def toy_csv(tmp_path: Path) -> Path:
    path = tmp_path / "toy.csv"
    toy_sentiment(240).to_csv(path, index=False)
    return path


@pytest.fixture
def tiny_config(tmp_path: Path, tiny_bert_dir: Path, toy_csv: Path):
    """A RunConfig that trains the tiny BERT on the toy data in a few seconds."""
    from tunelab.workflows.check import build_checked as build_config

    return build_config(
        {
            "data": {"train_file": str(toy_csv), "max_length": 16},
            "model": {"name": str(tiny_bert_dir)},
            "train": {
                "epochs": 4,
                "batch_size": 16,
                "lr": 5e-3,
                "warmup_ratio": 0.0,
                "precision": "fp32",
                "log_every": 2,
                "seed": 7,
            },
            "output": {"dir": str(tmp_path / "runs"), "name": "tiny"},
        }
    )


@pytest.fixture
def opposites_jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "opposites.jsonl"
    toy_opposites(240).to_json(path, orient="records", lines=True)
    return path
