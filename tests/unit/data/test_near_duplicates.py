"""Word-3-gram shingles, exact Jaccard, and LSH near-duplicate pairs confirmed by exact Jaccard."""

from __future__ import annotations

import itertools
import random

import pytest

from tunelab.data.near_duplicates import jaccard, near_duplicate_pairs, shingles


def words(n: int, prefix: str) -> list[str]:
    return [f"{prefix}{k}" for k in range(n)]


def text(n: int, prefix: str) -> str:
    return " ".join(words(n, prefix))


def true_jaccard(a: str, b: str) -> float:
    return jaccard(shingles(a), shingles(b))


# --- shingles / jaccard ---------------------------------------------------------------------


def test_shingles_are_lowercased_word_trigrams() -> None:
    assert shingles("The quick brown Fox jumps") == {
        "the quick brown",
        "quick brown fox",
        "brown fox jumps",
    }


def test_shingles_ignore_whitespace_differences() -> None:
    assert shingles("a  b\tc\nd") == shingles("a b c d") == {"a b c", "b c d"}


def test_short_texts_are_one_shingle() -> None:
    assert shingles("Hello World") == {"hello world"}
    assert shingles("one") == {"one"}
    assert shingles("") == {""}
    assert shingles("a b c") == {"a b c"}


def test_repeated_trigrams_count_once() -> None:
    assert shingles("a b c a b c") == {"a b c", "b c a", "c a b"}


def test_jaccard_values() -> None:
    assert jaccard({"a", "b", "c"}, {"b", "c", "d"}) == pytest.approx(0.5)
    assert jaccard({"a"}, {"a"}) == 1.0
    assert jaccard({"a"}, {"b"}) == 0.0
    assert jaccard(set(), set()) == 1.0
    assert jaccard({"a"}, set()) == 0.0


def test_one_changed_trailing_word_in_n_words() -> None:
    # n words → n-2 trigrams; changing the last word changes one of them
    n = 40
    base = words(n, "w")
    changed = [*base[:-1], "other"]
    expected = (n - 3) / (n - 1)
    assert true_jaccard(" ".join(base), " ".join(changed)) == pytest.approx(expected)


# --- near_duplicate_pairs -------------------------------------------------------------------


def test_empty_inputs_give_no_pairs() -> None:
    assert near_duplicate_pairs([], ["a b c"], 0.9) == []
    assert near_duplicate_pairs(["a b c"], [], 0.9) == []


def test_identical_texts_across_lists() -> None:
    corpus = [text(10, "c"), text(10, "d"), text(10, "e")]
    queries = [text(10, "x"), corpus[2], corpus[0].upper()]
    assert sorted(near_duplicate_pairs(queries, corpus, 0.9)) == [(1, 2), (2, 0)]


def test_near_pairs_across_two_lists() -> None:
    base = words(80, "w")
    corpus = [text(30, "a"), text(30, "b"), " ".join(base)]
    queries = [" ".join([*base[:-1], "changed"]), text(30, "q")]
    assert true_jaccard(queries[0], corpus[2]) == pytest.approx(77 / 79)
    assert near_duplicate_pairs(queries, corpus, 0.9) == [(0, 2)]


def test_short_texts_match_only_exactly() -> None:
    # under 3 words a text is one shingle: "good movie" and "good film" share nothing
    assert near_duplicate_pairs(["good film"], ["good movie", "Good  Film"], 0.5) == [(0, 1)]


def test_same_set_reports_each_unordered_pair_once() -> None:
    base = words(80, "w")
    texts = [
        " ".join(base),
        " ".join([*base[:-1], "end1"]),
        text(25, "unrelated"),
        " ".join([*base[:-1], "end2"]),
    ]
    pairs = near_duplicate_pairs(texts, texts, 0.9, same_set=True)
    assert sorted(pairs) == [(0, 1), (0, 3), (1, 3)]
    assert all(i < j for i, j in pairs)
    assert len(pairs) == len(set(pairs))


def test_without_same_set_a_list_against_itself_gives_both_orders_and_self_pairs() -> None:
    texts = [text(10, "a"), text(10, "b")]
    assert sorted(near_duplicate_pairs(texts, texts, 0.9)) == [(0, 0), (1, 1)]


def test_threshold_respected_on_both_sides_of_the_true_jaccard() -> None:
    base = words(40, "w")
    a = " ".join(base)
    b = " ".join([*base[:-1], "other"])
    similarity = true_jaccard(a, b)
    assert similarity == pytest.approx(37 / 39)  # ≈ 0.949
    # above the pair's similarity: never reported (exact Jaccard confirms every candidate)
    assert near_duplicate_pairs([b], [a], similarity + 0.005) == []
    # at or below it: reported (the docstring promises every pair with Jaccard ≥ threshold)
    assert near_duplicate_pairs([b], [a], 0.9) == [(0, 0)]


def test_middle_word_change_sits_below_a_090_threshold() -> None:
    base = words(40, "w")
    a = " ".join(base)
    b = " ".join([*base[:20], "other", *base[21:]])
    similarity = true_jaccard(a, b)
    assert similarity == pytest.approx(35 / 41)  # three trigrams change: ≈ 0.854
    assert near_duplicate_pairs([b], [a], 0.9) == []
    assert near_duplicate_pairs([b], [a], 0.8) == [(0, 0)]


def test_nearly_identical_long_texts_are_found() -> None:
    base = words(300, "w")
    a = " ".join(base)
    b = " ".join([*base[:-1], "other"])
    assert true_jaccard(a, b) == pytest.approx(297 / 299)
    assert near_duplicate_pairs([b], [a], 0.9) == [(0, 0)]


@pytest.mark.parametrize("threshold", [0.95, 0.97, 0.99, 1.0])
def test_every_threshold_the_config_allows_works(threshold: float) -> None:
    """CleanConfig/LeakageConfig accept thresholds in (0, 1]; each must run, not crash in the LSH."""
    a = text(20, "w")
    assert near_duplicate_pairs([a, a + " extra", text(20, "v")], [a], threshold) == [(0, 0)]


def random_pairs(seed: int, count: int) -> tuple[list[str], list[str]]:
    """Texts of 20-120 words and copies with 1-3 words replaced: Jaccard spread over 0.8-1."""
    rng = random.Random(seed)
    originals, copies = [], []
    for t in range(count):
        base = words(rng.randint(20, 120), f"t{t}w")
        copy = list(base)
        for _ in range(rng.randint(1, 3)):
            copy[rng.randrange(len(copy))] = f"x{rng.randrange(10**6)}"
        originals.append(" ".join(base))
        copies.append(" ".join(copy))
    return originals, copies


def test_no_pair_below_the_threshold_is_ever_reported() -> None:
    originals, copies = random_pairs(seed=1, count=200)
    threshold = 0.9
    pairs = near_duplicate_pairs(copies, originals, threshold)
    assert pairs  # the check below is not vacuous
    for i, j in pairs:
        assert i == j  # texts of different pairs share no word
        assert true_jaccard(copies[i], originals[j]) >= threshold


def test_recall_at_the_threshold() -> None:
    """Pairs whose true Jaccard is at or just above the threshold must be reported.

    The docstring promises every pair with Jaccard ≥ threshold; LSH candidates are confirmed
    by exact Jaccard, so the LSH can be tuned for recall without reporting false pairs.
    """
    originals, copies = random_pairs(seed=3, count=400)
    threshold = 0.9
    expected = {
        (i, i)
        for i in range(len(copies))
        if threshold <= true_jaccard(copies[i], originals[i]) < 0.95
    }
    assert len(expected) >= 30
    found = set(near_duplicate_pairs(copies, originals, threshold))
    missed = expected - found
    assert len(missed) <= 0.05 * len(expected), (
        f"missed {len(missed)} of {len(expected)} pairs with 0.90 ≤ Jaccard < 0.95"
    )


def test_same_set_matches_brute_force_on_clear_cases() -> None:
    originals, copies = random_pairs(seed=4, count=30)
    texts = [*originals, *copies, originals[5]]  # one verbatim repeat
    pairs = near_duplicate_pairs(texts, texts, 0.9, same_set=True)
    assert all(i < j for i, j in pairs)
    brute = {
        (i, j)
        for i, j in itertools.combinations(range(len(texts)), 2)
        if true_jaccard(texts[i], texts[j]) >= 0.9
    }
    assert set(pairs) <= brute
    identical_shingles = {(i, j) for i, j in brute if true_jaccard(texts[i], texts[j]) == 1.0}
    assert identical_shingles == {(5, 60)}
    assert identical_shingles <= set(pairs)
