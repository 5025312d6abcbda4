"""Shuffled length buckets (the default batching) and the training-memory estimate."""

from __future__ import annotations

import itertools
import random

from tunelab.training.memory import estimate
from tunelab.training.sampling import ShuffledLengthBuckets


def batches_of(sampler: ShuffledLengthBuckets, size: int) -> list[list[int]]:
    order = list(sampler)
    return [order[i : i + size] for i in range(0, len(order), size)]


def test_buckets_cover_every_index_once_with_similar_lengths_in_a_random_order() -> None:
    rng = random.Random(0)
    lengths = [rng.randint(2, 60) for _ in range(1000)]
    sampler = ShuffledLengthBuckets(lengths, batch_size=8, seed=3, mega_batch_mult=10)
    batches = batches_of(sampler, 8)
    assert sorted(i for b in batches for i in b) == list(range(1000))  # each index exactly once
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    shuffled = list(range(1000))
    rng.shuffle(shuffled)
    random_spread = sum(
        max(lengths[i] for i in shuffled[k : k + 8]) - min(lengths[i] for i in shuffled[k : k + 8])
        for k in range(0, 1000, 8)
    )
    assert spread < 0.25 * random_spread  # batches hold similar lengths: little padding
    longest = [max(lengths[i] for i in b) for b in batches]
    descending_runs = sum(a >= b for a, b in itertools.pairwise(longest))
    assert descending_runs < 0.75 * (len(longest) - 1)  # not the stock long-to-short walk


def test_the_order_is_fixed_by_seed_and_epoch_and_a_partial_batch_comes_last() -> None:
    lengths = list(range(1, 102))  # 101 examples: the last batch of 8 has 5
    first = ShuffledLengthBuckets(lengths, batch_size=8, seed=1)
    again = ShuffledLengthBuckets(lengths, batch_size=8, seed=1)
    assert list(first) == list(again)  # a resumed run replays the same batches
    epoch0 = list(first)
    first.set_epoch(1)
    assert list(first) != epoch0  # a new order each epoch
    assert all(len(b) == 8 for b in batches_of(first, 8)[:-1])
    assert len(batches_of(first, 8)[-1]) == 5


def test_the_trainer_uses_shuffled_buckets_only_when_asked(tiny_config) -> None:
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from tunelab.workflows.check import build_checked as build_config
    from tunelab.workflows.train import prepare_training

    def sampler(name: str, **train) -> object:
        raw = tiny_config.to_dict()
        raw["train"].update(train)
        raw["output"]["name"] = name
        return prepare_training(build_config(raw)).trainer._get_train_sampler()

    assert isinstance(sampler("shuffled", bucket_order="shuffled"), ShuffledLengthBuckets)
    assert isinstance(sampler("sorted"), LengthGroupedSampler)  # the default: stock order
    ungrouped = sampler("none", group_by_length=False, bucket_order="shuffled")
    assert not isinstance(ungrouped, (ShuffledLengthBuckets, LengthGroupedSampler))


def test_the_memory_estimate_follows_method_precision_and_checkpointing(tiny_bert_dir) -> None:
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert_dir, num_labels=2)
    full = estimate(model, 16, 64, "fp32", checkpointing=False, lm_head=False)
    params = sum(p.numel() for p in model.parameters())
    assert full["weights"] * 2**20 == params * 4
    assert full["optimizer"] == 2 * full["gradients"]  # AdamW's two fp32 moments
    assert estimate(model, 16, 64, "bf16", False, False)["activations"] < full["activations"]
    assert estimate(model, 16, 64, "fp32", True, False)["activations"] < full["activations"]
    assert estimate(model, 32, 64, "fp32", False, False)["activations"] == 2 * full["activations"]
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    frozen = estimate(model, 16, 64, "fp32", False, False)
    assert frozen["gradients"] == frozen["optimizer"] == 0


def test_full_keeps_a_large_word_embedding_matrix_fixed_for_classification(
    tiny_config, tmp_path
) -> None:
    from transformers import BertConfig, BertForSequenceClassification

    from tunelab.methods.full import apply
    from tunelab.workflows.check import build_checked as build_config

    def trainable_embeddings(vocab: int, **method) -> bool:
        model = BertForSequenceClassification(
            BertConfig(
                vocab_size=vocab,
                hidden_size=16,
                num_hidden_layers=1,
                num_attention_heads=2,
                intermediate_size=32,
            )
        )
        raw = tiny_config.to_dict()
        raw["method"].update(method)
        return apply(model, build_config(raw)).get_input_embeddings().weight.requires_grad

    assert not trainable_embeddings(5000)  # half the weights or more: fixed (the MiniLM case)
    assert trainable_embeddings(50)  # a small share: trained, there is little to save
    assert trainable_embeddings(5000, freeze_word_embeddings=False)
    assert not trainable_embeddings(50, freeze_word_embeddings=True)
