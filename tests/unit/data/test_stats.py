"""Length/truncation statistics, the max_length suggestion, and encoding-problem counts."""

from __future__ import annotations

from typing import Any

import pytest

from tunelab.data.stats import encoding_problems, length_stats, suggest_max_length

# texts of 1..100 words "w w … w": n words, 2n - 1 characters
TEXTS = [" ".join(["w"] * n) for n in range(1, 101)]


class FakeTokenizer:
    """Callable like a HF tokenizer: one id per word plus [CLS] and [SEP]."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, texts: list[str], **kwargs: Any) -> dict[str, list[list[int]]]:
        self.calls.append(kwargs)
        return {"input_ids": [[101, *([7] * len(t.split())), 102] for t in texts]}


def test_words_and_chars_percentiles_without_tokenizer() -> None:
    stats = length_stats(TEXTS, None, max_length=128)
    # numpy's linear percentiles of 1..100: p50 = 50.5, p90 = 90.1, p95 = 95.05, p99 = 99.01
    assert stats["words"] == pytest.approx(
        {"mean": 50.5, "p50": 50.5, "p90": 90.1, "p95": 95.05, "p99": 99.01, "max": 100.0}
    )
    # chars = 2·words - 1, and percentiles follow a linear map
    assert stats["chars"] == pytest.approx(
        {"mean": 100.0, "p50": 100.0, "p90": 179.2, "p95": 189.1, "p99": 197.02, "max": 199.0}
    )
    assert "tokens" not in stats
    assert "truncated_rows" not in stats


def test_empty_text_list() -> None:
    stats = length_stats([], FakeTokenizer(), max_length=8)
    assert stats == {"chars": {}, "words": {}}


def test_token_lengths_and_truncation_with_a_tokenizer() -> None:
    tokenizer = FakeTokenizer()
    stats = length_stats(TEXTS, tokenizer, max_length=50)
    assert [call["truncation"] for call in tokenizer.calls] == [False]  # true lengths, not cut ones
    assert stats["token_lengths"] == [n + 2 for n in range(1, 101)]
    # n + 2 > 50 for n = 49..100: 52 rows
    assert stats["truncated_rows"] == 52
    assert stats["truncated_share"] == pytest.approx(0.52)
    assert stats["tokens"]["max"] == 102.0
    assert stats["tokens"]["p50"] == pytest.approx(52.5)


def test_token_lengths_are_counted_a_chunk_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Millions of texts are tokenized in chunks: only their lengths are kept."""
    import tunelab.data.stats as stats_module

    monkeypatch.setattr(stats_module, "CHUNK", 30)
    tokenizer = FakeTokenizer()
    stats = length_stats(TEXTS, tokenizer, max_length=50)
    assert len(tokenizer.calls) == 4  # 100 texts, 30 at a time
    assert stats["token_lengths"] == [n + 2 for n in range(1, 101)]


def test_a_text_exactly_at_max_length_is_not_truncated() -> None:
    stats = length_stats(["a b c", "a b c d"], FakeTokenizer(), max_length=5)  # 5 and 6 tokens
    assert stats["truncated_rows"] == 1
    assert stats["truncated_share"] == pytest.approx(0.5)


def test_suggest_max_length_rounds_p99_up_to_a_multiple_of_8() -> None:
    lengths = list(range(1, 101))  # p99 = 99.01 → 104
    assert suggest_max_length(lengths, None) == 104
    assert suggest_max_length(lengths, 512) == 104
    assert suggest_max_length([64] * 10, None) == 64  # already a multiple of 8
    assert suggest_max_length([65] * 10, None) == 72
    assert suggest_max_length([3], None) == 8


def test_suggest_max_length_is_capped_by_the_model() -> None:
    assert suggest_max_length(list(range(1, 101)), 64) == 64
    assert suggest_max_length([1000] * 5, 512) == 512


def test_suggest_max_length_without_lengths() -> None:
    assert suggest_max_length([], 512) == 128


def test_suggest_max_length_ignores_the_longest_percent() -> None:
    lengths = [20] * 999 + [5000]
    assert suggest_max_length(lengths, None) == 24


def test_encoding_problem_counts() -> None:
    texts = [
        "plain ascii",
        "bad \ufffd char",  # U+FFFD
        "cafÃ© au lait",  # UTF-8 read as Latin-1
        "itâ€™s broken",  # mojibake of a right single quote
        "bell\x07 rings",  # a control character
        "naïve but fine",  # honest non-ASCII
        "tab\tand\nnewline are fine",
    ]
    assert encoding_problems(texts) == {
        "replacement_char": 1,
        "mojibake": 2,
        "control_chars": 1,
        "non_ascii": 4,
    }


def test_encoding_problems_count_rows_not_occurrences() -> None:
    counts = encoding_problems(["\ufffd\ufffd\ufffd", "Ã©Ã©", "\x01\x02"])
    assert counts == {"replacement_char": 1, "mojibake": 1, "control_chars": 1, "non_ascii": 2}


def test_correct_accents_are_not_mojibake() -> None:
    assert encoding_problems(["café", "Ångström", "€5", "Ârbre"])["mojibake"] == 0
