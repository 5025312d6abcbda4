"""Domain vocabulary: new whole-word tokens, mean-initialised embeddings, saved with the model."""

from __future__ import annotations

import json

import pytest
import torch

import tunelab
from tunelab.config import VocabularyConfig
from tunelab.errors import ConfigError
from tunelab.methods.vocab import extend_vocabulary, mine_words
from tunelab.runs import load_predictor
from tunelab.workflows.check import build_checked as build_config

PIECES = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "the",
    "a",
    "film",
    "good",
    "plot",
    "zor",
    "##bl",
    "##ax",
    "quib",
    "##bit",
    "##film",
]


@pytest.fixture
def subword_model(tmp_path):
    """A tiny BERT whose vocabulary has word pieces, so unknown words split into several."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    tokenizer = BertTokenizer(vocab={piece: i for i, piece in enumerate(PIECES)})
    config = BertConfig(
        vocab_size=len(PIECES),
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
    )
    return BertForSequenceClassification(config), tokenizer


def test_new_rows_start_at_the_mean_of_their_old_pieces(subword_model) -> None:
    model, tokenizer = subword_model
    pieces = tokenizer("zorblax", add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(pieces) == ["zor", "##bl", "##ax"]
    old = model.get_input_embeddings().weight[pieces].detach().clone()
    added = extend_vocabulary(model, tokenizer, ["zorblax", "good"])  # "good" exists: not added
    assert (
        added["added"] == 1 and added["tokens"] == ["zorblax"] and added["pieces"] == {"zorblax": 3}
    )
    weight = model.get_input_embeddings().weight
    assert weight.shape[0] == len(PIECES) + 1
    new_id = tokenizer.convert_tokens_to_ids("zorblax")
    assert tokenizer("the zorblax film", add_special_tokens=False)["input_ids"] == [5, new_id, 7]
    torch.testing.assert_close(weight[new_id], old.mean(dim=0))
    assert not torch.allclose(weight[new_id], old[0])


def test_mining_finds_frequent_words_that_split_into_many_pieces(subword_model) -> None:
    _, tokenizer = subword_model
    texts = ["the zorblax film was good"] * 25 + ["a quibbit film"] * 3 + ["goodfilm plot"] * 30
    mined = mine_words(texts, tokenizer, VocabularyConfig(mine=True, min_pieces=3, min_count=20))
    assert mined == ["zorblax"]  # quibbit is too rare; goodfilm has only 2 pieces
    two_pieces = mine_words(
        texts, tokenizer, VocabularyConfig(mine=True, min_pieces=2, min_count=20)
    )
    assert two_pieces == ["goodfilm", "zorblax"]  # most frequent first


def test_training_with_a_domain_vocabulary_saves_and_reloads_it(tiny_config) -> None:
    raw = tiny_config.to_dict()
    raw["model"]["vocabulary"] = {"add_tokens": ["superbfun", "dullplot"]}
    raw["train"]["epochs"] = 1
    raw["output"]["name"] = "vocab"
    result = tunelab.train(build_config(raw))
    card = json.loads((result.run_dir / "run_card.json").read_text())
    assert card["vocabulary"]["added"] == 2
    predictor = load_predictor(result.run_dir)
    assert "superbfun" in predictor.tokenizer.get_vocab()
    assert predictor.model.get_input_embeddings().weight.shape[0] == 29 + 2
    assert predictor.logits(["the superbfun film"]).shape == (1, 2)


def test_vocabulary_with_an_adapter_method_is_refused(tiny_config) -> None:
    raw = tiny_config.to_dict()
    raw["model"]["vocabulary"] = {"add_tokens": ["superbfun"]}
    raw["method"] = {"name": "lora"}
    raw["output"]["name"] = "vocab-lora"
    with pytest.raises(ConfigError, match="cannot carry new embedding rows"):
        tunelab.train(build_config(raw))
