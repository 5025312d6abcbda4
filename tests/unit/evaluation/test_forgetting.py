"""Forgetting measurement: perplexities against hand computations, backbone copying, the report."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import TOY_VOCAB
from tunelab.config import ModelConfig
from tunelab.errors import DataError, ModelError
from tunelab.evaluation.forgetting import (
    _position_wise_head,
    clm_perplexity,
    forgetting_report,
    is_heading,
    lm_with_backbone,
    measure,
    mlm_pseudo_perplexity,
    read_general_text,
)

ROOT = Path(__file__).resolve().parents[3]
SAMPLE = ROOT / "data" / "general_text" / "wikitext2_sample.txt"
SHARED_VALID = ROOT.parent / "shared" / "data" / "wikitext2_raw" / "wiki.valid.raw"

CHAT_TEXTS = [
    "the movie was good",
    "a film is very boring really",
    "the plot was dull and the acting was awful",
    "love the film",
    "opposite of good : bad",
]
BERT_TEXTS = [
    "the movie was good",
    "a film is really very boring",
    "the plot zzz was fun",  # zzz is [UNK]: a special token, never scored
    "nice",
]


def _tiny_bert_config(**overrides):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=len(TOY_VOCAB),
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        **overrides,
    )


@pytest.fixture(scope="module")
def mlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BertForMaskedLM checkpoint (random but fixed) with the toy BertTokenizer."""
    from transformers import BertForMaskedLM, BertTokenizer, set_seed

    set_seed(0)
    directory = tmp_path_factory.mktemp("tiny-bert-mlm")
    BertForMaskedLM(_tiny_bert_config()).save_pretrained(directory)
    BertTokenizer(vocab=TOY_VOCAB).save_pretrained(directory)
    return directory


def _load(auto_name: str, directory: Path, **kwargs):
    import transformers

    return getattr(transformers, auto_name).from_pretrained(directory, **kwargs)


def _tokenizer(directory: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(directory)


def _perturb(module: torch.nn.Module, seed: int = 1) -> None:
    """Stand-in for fine-tuning: every weight moves."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))


# --- clm_perplexity -----------------------------------------------------------------------


def _hand_clm(model, tokenizer, texts: list[str], block: int) -> tuple[float, int]:
    """Independent: concatenate ids (+EOS per text), cut full blocks, one block at a time."""
    ids: list[int] = []
    for text in texts:
        ids += tokenizer(text)["input_ids"] + [tokenizer.eos_token_id]
    blocks = [ids[i : i + block] for i in range(0, len(ids) - block + 1, block)]
    losses = []
    model.eval()
    with torch.no_grad():
        for b in blocks:
            tensor = torch.tensor([b])
            logits = model(input_ids=tensor).logits[0]
            losses.append(F.cross_entropy(logits[:-1], tensor[0, 1:], reduction="none"))
    every = torch.cat(losses)
    return math.exp(float(every.double().mean())), every.numel()


def test_clm_perplexity_equals_token_weighted_hand_computation(tiny_chat_llama_dir: Path) -> None:
    model = _load("AutoModelForCausalLM", tiny_chat_llama_dir)
    tokenizer = _tokenizer(tiny_chat_llama_dir)
    expected, tokens = _hand_clm(model, tokenizer, CHAT_TEXTS, block=8)
    model.train()  # the function must switch to eval mode itself, and switch back
    result = clm_perplexity(model, tokenizer, CHAT_TEXTS, max_length=8, batch_size=3)
    assert model.training
    assert result["tokens"] == tokens == (len(tokens_of(tokenizer, CHAT_TEXTS)) // 8) * 7
    assert result["perplexity"] == pytest.approx(expected, abs=1e-5)


def tokens_of(tokenizer, texts: list[str]) -> list[int]:
    return [t for text in texts for t in [*tokenizer(text)["input_ids"], tokenizer.eos_token_id]]


def test_clm_perplexity_sees_weight_changes(tiny_chat_llama_dir: Path) -> None:
    model = _load("AutoModelForCausalLM", tiny_chat_llama_dir)
    tokenizer = _tokenizer(tiny_chat_llama_dir)
    before = clm_perplexity(model, tokenizer, CHAT_TEXTS, max_length=8)["perplexity"]
    _perturb(model.model)
    after = clm_perplexity(model, tokenizer, CHAT_TEXTS, max_length=8)["perplexity"]
    assert after != pytest.approx(before, rel=1e-3)


def test_clm_perplexity_refuses_text_shorter_than_a_block(tiny_chat_llama_dir: Path) -> None:
    model = _load("AutoModelForCausalLM", tiny_chat_llama_dir)
    with pytest.raises(DataError, match="shorter than one block"):
        clm_perplexity(model, _tokenizer(tiny_chat_llama_dir), ["good"], max_length=64)


# --- mlm_pseudo_perplexity ----------------------------------------------------------------


def _hand_pppl(model, tokenizer, texts: list[str], max_length: int, max_tokens: int | None):
    """Salazar et al.: mask one word-piece at a time, unbatched, no padding."""
    log_probs: list[float] = []
    specials = {tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.unk_token_id}
    model.eval()
    with torch.no_grad():
        for text in texts:
            pieces = tokenizer.tokenize(text)[: max_length - 2]
            ids = tokenizer.convert_tokens_to_ids(["[CLS]", *pieces, "[SEP]"])
            for i, token in enumerate(ids):
                if token in specials:
                    continue
                if max_tokens is not None and len(log_probs) == max_tokens:
                    break
                masked = torch.tensor([ids])
                masked[0, i] = tokenizer.mask_token_id
                logits = model(input_ids=masked).logits[0, i]
                log_probs.append(float(torch.log_softmax(logits, dim=-1)[token]))
    return math.exp(-sum(log_probs) / len(log_probs)), len(log_probs)


@pytest.mark.parametrize("batch_size", [1, 3, 32])
def test_pseudo_perplexity_equals_one_mask_at_a_time(mlm_dir: Path, batch_size: int) -> None:
    model = _load("AutoModelForMaskedLM", mlm_dir)
    tokenizer = _tokenizer(mlm_dir)
    expected, count = _hand_pppl(model, tokenizer, BERT_TEXTS, max_length=64, max_tokens=None)
    model.train()  # dropout 0.1 would make the result random if eval mode were not set
    result = mlm_pseudo_perplexity(model, tokenizer, BERT_TEXTS, batch_size=batch_size)
    assert model.training
    assert _position_wise_head(model) is model.cls  # the shortcut path is the one tested
    assert result["tokens"] == count == 4 + 6 + 4 + 1  # words only: no [CLS] [SEP] [UNK]
    assert result["pseudo_perplexity"] == pytest.approx(expected, abs=1e-5)


def test_pseudo_perplexity_never_scores_special_tokens(mlm_dir: Path) -> None:
    model = _load("AutoModelForMaskedLM", mlm_dir)
    tokenizer = _tokenizer(mlm_dir)
    only_special = mlm_pseudo_perplexity(model, tokenizer, ["good", "[SEP] zzz [MASK]"])
    assert only_special["tokens"] == 1
    with pytest.raises(ValueError, match="no token to score"):
        mlm_pseudo_perplexity(model, tokenizer, ["zzz", ""])


def test_pseudo_perplexity_truncates_and_caps(mlm_dir: Path) -> None:
    model = _load("AutoModelForMaskedLM", mlm_dir)
    tokenizer = _tokenizer(mlm_dir)
    for max_length, max_tokens in [(5, None), (64, 7), (64, 1)]:
        expected, count = _hand_pppl(model, tokenizer, BERT_TEXTS, max_length, max_tokens)
        result = mlm_pseudo_perplexity(
            model, tokenizer, BERT_TEXTS, max_length=max_length, max_tokens=max_tokens, batch_size=4
        )
        assert result["tokens"] == count
        assert result["pseudo_perplexity"] == pytest.approx(expected, abs=1e-5)
    assert (
        mlm_pseudo_perplexity(model, tokenizer, BERT_TEXTS, max_length=5)["tokens"] == 3 + 3 + 2 + 1
    )
    assert mlm_pseudo_perplexity(model, tokenizer, BERT_TEXTS, max_tokens=7)["tokens"] == 7


class _MixesPositions(torch.nn.Module):
    """A head that is not position-wise: the shortcut must notice and fall back."""

    def __init__(self, head: torch.nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.head(hidden + hidden.mean(dim=1, keepdim=True))


def test_pseudo_perplexity_falls_back_when_head_is_not_position_wise(mlm_dir: Path) -> None:
    model = _load("AutoModelForMaskedLM", mlm_dir)
    model.cls = _MixesPositions(model.cls)
    tokenizer = _tokenizer(mlm_dir)
    expected, _ = _hand_pppl(model, tokenizer, BERT_TEXTS, max_length=64, max_tokens=None)
    # batch_size=1: no padding, which this head would see (it averages over all positions)
    result = mlm_pseudo_perplexity(model, tokenizer, BERT_TEXTS, batch_size=1)
    assert result["pseudo_perplexity"] == pytest.approx(expected, abs=1e-5)


def test_pseudo_perplexity_with_a_split_head_model(tmp_path: Path) -> None:
    """DistilBERT's head is four modules: no shortcut, a plain forward, same numbers."""
    from transformers import BertTokenizer, DistilBertConfig, DistilBertForMaskedLM, set_seed

    set_seed(0)
    config = DistilBertConfig(
        vocab_size=len(TOY_VOCAB), dim=16, n_layers=2, n_heads=2, hidden_dim=32
    )
    model = DistilBertForMaskedLM(config)
    tokenizer = BertTokenizer(vocab=TOY_VOCAB)
    assert _position_wise_head(model) is None
    expected, count = _hand_pppl(model, tokenizer, BERT_TEXTS, max_length=64, max_tokens=None)
    result = mlm_pseudo_perplexity(model, tokenizer, BERT_TEXTS, batch_size=3)
    assert result["tokens"] == count
    assert result["pseudo_perplexity"] == pytest.approx(expected, abs=1e-5)


# --- lm_with_backbone / measure -----------------------------------------------------------


def test_mlm_gets_the_finetuned_backbone_and_the_base_head(mlm_dir: Path) -> None:
    base = _load("AutoModelForMaskedLM", mlm_dir)
    classifier = _load("AutoModelForSequenceClassification", mlm_dir, num_labels=2)
    _perturb(classifier.bert)
    lm = lm_with_backbone(mlm_dir, ModelConfig(name=str(mlm_dir)), classifier, "mlm")
    tuned = classifier.bert.state_dict()
    for key, value in lm.bert.state_dict().items():
        assert torch.equal(value, tuned[key]), key
        assert not torch.equal(value, base.bert.state_dict()[key]) or "position_ids" in key, key
    head = lm.cls.predictions
    for name in ("transform.dense.weight", "transform.dense.bias", "transform.LayerNorm.weight"):
        assert torch.equal(head.get_parameter(name), base.cls.predictions.get_parameter(name))
    assert torch.equal(head.bias, base.cls.predictions.bias)
    # BERT ties the decoder to the input embeddings: it follows the fine-tuned embeddings
    assert torch.equal(head.decoder.weight, classifier.bert.embeddings.word_embeddings.weight)


def test_clm_gets_the_finetuned_backbone_and_the_base_lm_head(tiny_chat_llama_dir: Path) -> None:
    base = _load("AutoModelForCausalLM", tiny_chat_llama_dir)
    classifier = _load("AutoModelForSequenceClassification", tiny_chat_llama_dir, num_labels=2)
    _perturb(classifier.model)
    cfg = ModelConfig(name=str(tiny_chat_llama_dir))
    lm = lm_with_backbone(tiny_chat_llama_dir, cfg, classifier, "clm")
    tuned = classifier.model.state_dict()
    for key, value in lm.model.state_dict().items():
        assert torch.equal(value, tuned[key]), key
    assert not torch.equal(lm.model.embed_tokens.weight, base.model.embed_tokens.weight)
    assert torch.equal(lm.lm_head.weight, base.lm_head.weight)


def test_measure_compares_base_and_finetuned(mlm_dir: Path) -> None:
    cfg = ModelConfig(name=str(mlm_dir))
    tokenizer = _tokenizer(mlm_dir)
    base = _load("AutoModelForMaskedLM", mlm_dir)
    classifier = _load("AutoModelForSequenceClassification", mlm_dir, num_labels=2)
    untouched = measure(mlm_dir, cfg, tokenizer, BERT_TEXTS, "mlm", finetuned=classifier)
    before = measure(mlm_dir, cfg, tokenizer, BERT_TEXTS, "mlm", batch_size=5)
    assert before["kind"] == "mlm" and before["tokens"] == 15
    assert before["perplexity"] == pytest.approx(
        mlm_pseudo_perplexity(base, tokenizer, BERT_TEXTS)["pseudo_perplexity"], abs=1e-9
    )
    assert untouched["perplexity"] == pytest.approx(before["perplexity"], abs=1e-9)
    _perturb(classifier.bert)
    after = measure(mlm_dir, cfg, tokenizer, BERT_TEXTS, "mlm", finetuned=classifier)
    assert after["perplexity"] != pytest.approx(before["perplexity"], rel=1e-3)


def test_a_checkpoint_without_lm_head_is_refused(tiny_bert_dir: Path) -> None:
    """tiny_bert_dir is a classifier: an MLM head would be random, the number meaningless."""
    with pytest.raises(ModelError, match="no trained MLM head"):
        lm_with_backbone(tiny_bert_dir, ModelConfig(name=str(tiny_bert_dir)), None, "mlm")


def test_a_different_vocabulary_is_refused(mlm_dir: Path) -> None:
    classifier = _load("AutoModelForSequenceClassification", mlm_dir, num_labels=2)
    classifier.resize_token_embeddings(len(TOY_VOCAB) + 3)
    with pytest.raises(ModelError, match="not be comparable"):
        lm_with_backbone(mlm_dir, ModelConfig(name=str(mlm_dir)), classifier, "mlm")


def test_unknown_kind_is_refused(mlm_dir: Path) -> None:
    with pytest.raises(ValueError, match="kind must be"):
        lm_with_backbone(mlm_dir, ModelConfig(name=str(mlm_dir)), None, "seq2seq")  # type: ignore[arg-type]


# --- forgetting_report --------------------------------------------------------------------


def test_report_warns_only_above_the_threshold() -> None:
    risen = forgetting_report(10.0, 11.5)
    assert risen["relative_change"] == pytest.approx(0.15)
    assert risen["warning"] is not None
    assert "15.0%" in risen["warning"] and "LoRA" in risen["warning"]
    assert "learning rate" in risen["warning"] and "freezing" in risen["warning"]
    assert forgetting_report(10.0, 10.5)["warning"] is None
    assert forgetting_report(10.0, 9.0)["warning"] is None
    assert forgetting_report(10.0, 10.5, threshold=0.01)["warning"] is not None
    assert forgetting_report(10.0, math.inf)["warning"] is not None
    with pytest.raises(ValueError):
        forgetting_report(0.0, 1.0)


# --- read_general_text and the bundled sample ---------------------------------------------


def test_read_general_text_skips_headings_and_short_lines(tmp_path: Path) -> None:
    long_a = "Homarus gammarus is a species of clawed lobster from the eastern Atlantic Ocean ."
    long_b = "It is closely related to the American lobster , and may grow to a length of 60 cm ."
    path = tmp_path / "wiki.raw"
    lines = [" ", " = Homarus gammarus = ", " ", f" {long_a} ", " = = Description = = "]
    lines += [" A short caption . ", "", f" {long_b} ", " = " + "x" * 100 + " = "]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert read_general_text(path) == [long_a, long_b]
    assert read_general_text(path, max_passages=1) == [long_a]
    assert read_general_text(path, min_chars=10) == [long_a, "A short caption .", long_b]
    assert is_heading(" = = Section = = ") and not is_heading(" a = b ")


def test_bundled_sample_is_prose_within_size() -> None:
    passages = read_general_text(SAMPLE, max_passages=None)
    raw = SAMPLE.read_text(encoding="utf-8").splitlines()
    assert passages == raw  # every line is a kept passage: no heading, none short, none blank
    assert 150 <= len(passages) <= 200
    assert SAMPLE.stat().st_size < 150_000


@pytest.mark.skipif(not SHARED_VALID.is_file(), reason="shared WikiText-2 copy not present")
def test_sample_rebuilds_byte_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location(
        "make_general_text_sample", ROOT / "scripts" / "make_general_text_sample.py"
    )
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "sample.txt"
    monkeypatch.setattr(sys, "argv", ["make", "--source", str(SHARED_VALID), "--out", str(out)])
    script.main()
    assert out.read_bytes() == SAMPLE.read_bytes()


# --- forgetting in a run ----------------------------------------------------------------------


def test_a_run_records_forgetting_on_general_text(tiny_config, tmp_path: Path) -> None:
    """The tiny BERT classifier has no trained MLM head: the run says so and reports embedding drift."""
    import tunelab
    from tunelab.workflows.check import build_checked as build_config

    text = tmp_path / "general.txt"
    text.write_text("\n".join("the movie was a very good film " * 3 for _ in range(20)) + "\n")
    raw = tiny_config.to_dict()
    raw["eval"] = {"baselines": False, "forgetting_text": str(text), "forgetting_passages": 10}
    forgetting = tunelab.train(build_config(raw)).metrics["forgetting"]
    assert forgetting["measured"] is False and "MLM head" in forgetting["reason"]
    assert 0 < forgetting["embedding_cosine_min"] <= forgetting["embedding_cosine_mean"] <= 1


def test_a_decoder_run_measures_clm_perplexity_before_and_after(
    tmp_path: Path, tiny_chat_llama_dir: Path, opposites_jsonl: Path
) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import tunelab
    from tunelab.evaluation.forgetting import clm_perplexity
    from tunelab.workflows.check import build_checked as build_config

    text = tmp_path / "general.txt"
    text.write_text(
        "\n".join("the movie was a very good film and the plot was dull " * 2 for _ in range(30))
    )
    raw = {
        "data": {"train_file": str(opposites_jsonl), "max_length": 64},
        "model": {"name": str(tiny_chat_llama_dir)},
        "task": {"type": "causal_lm"},
        "train": {"epochs": 2, "batch_size": 16, "lr": 5e-3, "precision": "fp32"},
        "eval": {"generate_rows": 0, "generate_before": False, "forgetting_text": str(text)},
        "output": {"dir": str(tmp_path / "runs"), "name": "sft"},
    }
    result = tunelab.train(build_config(raw))
    forgetting = result.metrics["forgetting"]
    assert forgetting["measured"] and forgetting["measure"] == "CLM perplexity"
    # The "before" number is the base checkpoint's own CLM perplexity on the same passages.
    model = AutoModelForCausalLM.from_pretrained(tiny_chat_llama_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_llama_dir)
    texts = read_general_text(text, 60)
    expected = clm_perplexity(model, tokenizer, texts, batch_size=4)["perplexity"]
    assert forgetting["before"] == pytest.approx(expected, rel=1e-5)
    assert forgetting["after"] != pytest.approx(forgetting["before"])
