"""augment_train: EDA copies of the train split, each operation, seeds, stats and offline WordNet."""

from __future__ import annotations

import sys
import types
from collections import Counter

import pandas as pd
import pytest

from tunelab.config import AugmentConfig
from tunelab.data import augment
from tunelab.data.augment import SYNONYM_SKIPPED, augment_train, find_wordnet
from tunelab.errors import ConfigError

SYNONYMS = {
    "good": ["fine", "decent"],
    "movie": ["film", "picture"],
    "plot": ["story"],
    "acting": ["performance"],
    "bad": ["poor", "awful"],
    "long": ["lengthy"],
}
ALL_SYNONYMS = {word for options in SYNONYMS.values() for word in options}


def synonyms(word: str) -> list[str]:
    return SYNONYMS.get(word, [])


def train_frame() -> pd.DataFrame:
    texts = [
        "the movie was good and the acting was good too",
        "a bad plot with bad acting and a long ending",
        "i liked the movie but the plot was long",
        "the acting saved an otherwise bad movie for me",
        "good fun for the whole family on a rainy day",
        "nothing about this movie worked for me at all",
    ]
    return pd.DataFrame(
        {
            "text": texts,
            "label": [1, 0, 1, 0, 1, 0],
            "row": [3, 5, 8, 9, 12, 14],
            "source": [f"s{i}" for i in range(len(texts))],
        }
    )


def config(**kwargs: object) -> AugmentConfig:
    return AugmentConfig(enabled=True, **kwargs)  # type: ignore[arg-type]


def copies_of(out: pd.DataFrame) -> pd.DataFrame:
    return out[out["augmented"]]


def is_subsequence(part: list[str], whole: list[str]) -> bool:
    remaining = iter(whole)
    return all(word in remaining for word in part)


@pytest.fixture
def no_wordnet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Behave as on a machine without nltk or its corpus, whatever this one has."""
    monkeypatch.setattr(augment, "find_wordnet", lambda: None)


def test_disabled_returns_the_frame_unchanged() -> None:
    frame = train_frame()
    out, stats = augment_train(frame, AugmentConfig(), seed=0)
    assert out is frame
    pd.testing.assert_frame_equal(out, train_frame())
    assert stats == {"enabled": False}


@pytest.mark.parametrize("multiplier", [1, 3])
def test_counts_and_stats(multiplier: int) -> None:
    frame = train_frame()
    out, stats = augment_train(frame, config(multiplier=multiplier), 0, synonyms=synonyms)
    assert stats["enabled"] is True
    assert stats["rows_in"] == len(frame)
    assert stats["rows_added"] == multiplier * len(frame)
    assert len(out) == (multiplier + 1) * len(frame)
    assert sum(stats["by_operation"].values()) == stats["rows_added"]
    assert set(stats["by_operation"]) == {"swap", "delete", "insert", "synonym"}
    assert stats["skipped"] == []
    assert 0 <= stats["unchanged"] <= stats["rows_added"]


def test_originals_first_and_untouched_index_reset() -> None:
    frame = train_frame()
    out, _ = augment_train(frame, config(multiplier=2), 1, synonyms=synonyms)
    n = len(frame)
    assert list(out.index) == list(range(len(out)))
    assert out["augmented"].dtype == bool
    assert not out["augmented"].iloc[:n].any()
    assert out["augmented"].iloc[n:].all()
    pd.testing.assert_frame_equal(out.iloc[:n].drop(columns="augmented"), frame)
    pd.testing.assert_frame_equal(frame, train_frame())  # the input is not modified


def test_copies_keep_label_row_and_other_columns() -> None:
    frame = train_frame()
    out, _ = augment_train(frame, config(multiplier=3), 2, synonyms=synonyms)
    copies = copies_of(out)
    by_row = frame.set_index("row")
    for _, copy in copies.iterrows():
        assert copy["label"] == by_row.loc[copy["row"], "label"]
        assert copy["source"] == by_row.loc[copy["row"], "source"]
    assert Counter(copies["row"]) == {row: 3 for row in frame["row"]}


def test_same_seed_same_output_other_seed_differs() -> None:
    cfg = config(multiplier=2)
    first, first_stats = augment_train(train_frame(), cfg, 7, synonyms=synonyms)
    again, again_stats = augment_train(train_frame(), cfg, 7, synonyms=synonyms)
    other, _ = augment_train(train_frame(), cfg, 8, synonyms=synonyms)
    pd.testing.assert_frame_equal(first, again)
    assert first_stats == again_stats
    assert list(copies_of(first)["text"]) != list(copies_of(other)["text"])


def test_swap_keeps_the_words() -> None:
    frame = train_frame()
    out, stats = augment_train(frame, config(operations=["swap"], multiplier=2, alpha=0.3), 0)
    assert stats["by_operation"] == {"swap": 2 * len(frame)}
    sources = dict(zip(frame["row"], frame["text"], strict=True))
    changed = 0
    for _, copy in copies_of(out).iterrows():
        original = sources[copy["row"]].split()
        assert Counter(copy["text"].split()) == Counter(original)
        changed += copy["text"].split() != original
    assert changed > 0


def test_delete_gives_a_non_empty_subsequence() -> None:
    frame = pd.concat(
        [
            train_frame(),
            pd.DataFrame({"text": ["alone", "two words"], "label": [0, 1], "row": [20, 21]}),
        ],
        ignore_index=True,
    )
    out, stats = augment_train(frame, config(operations=["delete"], multiplier=5, alpha=0.5), 3)
    assert stats["by_operation"] == {"delete": 5 * len(frame)}
    sources = dict(zip(frame["row"], frame["text"], strict=True))
    shorter = 0
    for _, copy in copies_of(out).iterrows():
        words, original = copy["text"].split(), sources[copy["row"]].split()
        assert 1 <= len(words) <= len(original)
        assert is_subsequence(words, original)
        shorter += len(words) < len(original)
    assert shorter > 0
    single = copies_of(out)[copies_of(out)["row"] == 20]
    assert set(single["text"]) == {"alone"}


def test_insert_adds_synonyms() -> None:
    frame = train_frame()
    out, stats = augment_train(
        frame, config(operations=["insert"], multiplier=2, alpha=0.2), 0, synonyms=synonyms
    )
    assert stats["skipped"] == []
    sources = dict(zip(frame["row"], frame["text"], strict=True))
    for _, copy in copies_of(out).iterrows():
        original = sources[copy["row"]].split()
        words = copy["text"].split()
        n = max(1, round(0.2 * len(original)))
        assert len(words) == len(original) + n
        added = Counter(words) - Counter(original)
        assert set(added) <= ALL_SYNONYMS


@pytest.mark.usefixtures("no_wordnet")
def test_insert_without_a_source_copies_words_of_the_sentence() -> None:
    frame = train_frame()
    out, stats = augment_train(frame, config(operations=["insert"], multiplier=2), 0)
    assert stats["by_operation"] == {"insert": 2 * len(frame)}
    assert any("inserted copies of words" in message for message in stats["skipped"])
    sources = dict(zip(frame["row"], frame["text"], strict=True))
    for _, copy in copies_of(out).iterrows():
        original = sources[copy["row"]].split()
        words = copy["text"].split()
        assert len(words) > len(original)
        assert set(words) == set(original)


@pytest.mark.parametrize(("alpha", "expected"), [(0.1, 1), (0.5, 5)])
def test_synonym_replaces_n_words_with_their_synonyms(alpha: float, expected: int) -> None:
    text = "good movie good plot bad acting long movie good plot"  # 10 words, all with synonyms
    frame = pd.DataFrame({"text": [text], "label": [1], "row": [1]})
    out, stats = augment_train(
        frame, config(operations=["synonym"], multiplier=4, alpha=alpha), 0, synonyms=synonyms
    )
    assert stats["by_operation"] == {"synonym": 4}
    assert stats["unchanged"] == 0
    original = text.split()
    for copy in copies_of(out)["text"]:
        words = copy.split()
        assert len(words) == len(original)
        changed = [(old, new) for old, new in zip(original, words, strict=True) if old != new]
        assert len(changed) == expected
        assert all(new in SYNONYMS[old] for old, new in changed)


def test_synonym_leaves_words_without_synonyms_alone() -> None:
    frame = pd.DataFrame({"text": ["nothing here has any"], "label": [0], "row": [1]})
    out, stats = augment_train(frame, config(operations=["synonym"]), 0, synonyms=synonyms)
    assert list(copies_of(out)["text"]) == ["nothing here has any"]
    assert stats["unchanged"] == 1


def test_copies_equal_to_their_source_are_kept_and_counted() -> None:
    frame = pd.DataFrame({"text": ["hello"], "label": [0], "row": [1]})
    out, stats = augment_train(frame, config(operations=["swap"], multiplier=3), 0)
    assert list(out["text"]) == ["hello"] * 4
    assert stats["rows_added"] == 3
    assert stats["unchanged"] == 3


@pytest.mark.usefixtures("no_wordnet")
def test_synonym_skipped_with_a_message_without_wordnet() -> None:
    frame = train_frame()
    out, stats = augment_train(frame, config(operations=["swap", "synonym"], multiplier=2), 0)
    assert SYNONYM_SKIPPED in stats["skipped"]
    assert "no offline WordNet found" in SYNONYM_SKIPPED
    assert stats["by_operation"] == {"swap": 2 * len(frame)}
    assert stats["rows_added"] == 2 * len(frame)
    assert len(out) == 3 * len(frame)


@pytest.mark.usefixtures("no_wordnet")
def test_only_synonym_without_wordnet_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="WordNet") as caught:
        augment_train(train_frame(), config(operations=["synonym"]), 0)
    assert "\n" not in str(caught.value)


def test_an_injected_source_needs_no_wordnet(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail() -> None:
        raise AssertionError("WordNet must not be looked for when a source is given")

    monkeypatch.setattr(augment, "find_wordnet", fail)
    _, stats = augment_train(train_frame(), config(operations=["synonym"]), 0, synonyms=synonyms)
    assert stats["by_operation"] == {"synonym": len(train_frame())}


def test_empty_operations_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="empty"):
        augment_train(train_frame(), config(operations=[]), 0)


def test_find_wordnet_without_nltk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nltk", None)  # makes `import nltk` raise ImportError
    assert find_wordnet() is None


def test_find_wordnet_without_the_corpus_never_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    looked_for: list[str] = []

    def find(resource: str) -> str:
        looked_for.append(resource)
        raise LookupError(resource)

    def download(*args: object, **kwargs: object) -> None:
        raise AssertionError("nltk.download must never be called")

    fake = types.ModuleType("nltk")
    fake.data = types.SimpleNamespace(find=find)  # type: ignore[attr-defined]
    fake.download = download  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "nltk", fake)
    assert find_wordnet() is None
    assert looked_for and all(name.startswith("corpora/wordnet") for name in looked_for)


def test_wordnet_source_keeps_punctuation_and_capitals() -> None:
    class FakeSynset:
        def __init__(self, names: list[str]) -> None:
            self.names = names

        def lemma_names(self) -> list[str]:
            return self.names

    class FakeWordNet:
        def synsets(self, word: str) -> list[FakeSynset]:
            return [FakeSynset(["good", "beneficial", "full_of_life"])] if word == "good" else []

    lookup = augment._wordnet_source(FakeWordNet())
    assert lookup("Good,") == ["Beneficial,", "Full of life,"]
    assert lookup("good") == ["beneficial", "full of life"]
    assert lookup("the") == []
    assert lookup("...") == []
