"""Text cleaning (clean_text) and within-file deduplication / conflict handling (clean_frame)."""

from __future__ import annotations

import pandas as pd
import pytest

from tunelab.config import CleanConfig
from tunelab.data.clean import clean_frame, clean_text, conflict_groups, duplicate_stats
from tunelab.data.near_duplicates import jaccard, shingles

FULL_WIDTH = "\uff21\uff22\uff23\uff11\uff12\uff13\uff01"  # full-width A, B, C, 1, 2, 3, !

# every step off: each test below switches on exactly the step it checks
ALL_OFF = CleanConfig(unicode_nfkc=False, collapse_whitespace=False)


def only(**steps: object) -> CleanConfig:
    return ALL_OFF.model_copy(update=steps)


def frame(texts: list[str], labels: list[object]) -> pd.DataFrame:
    """The shape clean_frame is given: text, raw label and 1-based source row."""
    return pd.DataFrame({"text": texts, "label": labels, "row": range(1, len(texts) + 1)})


def assert_nothing_silently_lost(report: dict, out: pd.DataFrame) -> None:
    assert report["rows_out"] == len(out)
    assert report["rows_in"] == report["rows_out"] + sum(report["dropped"].values())
    assert all(n > 0 for n in report["dropped"].values())  # zero counts are left out


def distinct_words(n: int, prefix: str) -> list[str]:
    return [f"{prefix}{k}" for k in range(n)]


# --- clean_text: one step at a time ---------------------------------------------------------


def test_all_steps_off_changes_nothing() -> None:
    text = "  \uff21\uff22\uff23 <b>Hi</b> &amp; https://x.org a@b.com ★ Mixed\tCase  "
    assert clean_text(text, ALL_OFF) == text


def test_nfkc_turns_full_width_and_ligatures_into_ascii() -> None:
    assert clean_text(FULL_WIDTH, only(unicode_nfkc=True)) == "ABC123!"
    assert clean_text("ﬁne", only(unicode_nfkc=True)) == "fine"
    assert clean_text(FULL_WIDTH, ALL_OFF) == FULL_WIDTH


def test_collapse_whitespace_joins_runs_and_trims_ends() -> None:
    text = "  a \t b\n\n c  "
    assert clean_text(text, only(collapse_whitespace=True)) == "a b c"
    assert clean_text(text, ALL_OFF) == text


def test_lowercase_is_off_by_default() -> None:
    assert CleanConfig().lowercase is False
    assert clean_text("Hello World", CleanConfig()) == "Hello World"
    assert clean_text("Hello World", only(lowercase=True)) == "hello world"


def test_strip_html_removes_tags_and_unescapes_entities() -> None:
    cfg = only(strip_html=True, collapse_whitespace=True)
    assert clean_text("<p>Tom &amp; <b>Jerry</b></p>", cfg) == "Tom & Jerry"
    assert clean_text("5 &lt; 6 &quot;ok&quot; caf&eacute;", cfg) == '5 < 6 "ok" café'
    # a tag is replaced by a space, so words either side of it are not glued together
    assert clean_text("one<br/>two", cfg) == "one two"
    assert clean_text("<p>Tom &amp; Jerry</p>", ALL_OFF) == "<p>Tom &amp; Jerry</p>"


def test_remove_urls() -> None:
    cfg = only(remove_urls=True, collapse_whitespace=True)
    text = "see https://example.com/a?b=1 and HTTP://X.ORG or www.foo.org/page now"
    assert clean_text(text, cfg) == "see and or now"
    assert clean_text(text, only(collapse_whitespace=True)) == text


def test_remove_emails() -> None:
    cfg = only(remove_emails=True, collapse_whitespace=True)
    assert clean_text("mail bob.smith+tag@example.co.uk today", cfg) == "mail today"
    assert clean_text("no at sign here", cfg) == "no at sign here"
    assert clean_text("mail bob@example.com", ALL_OFF) == "mail bob@example.com"


def test_remove_special_chars_keeps_letters_digits_and_common_punctuation() -> None:
    cfg = only(remove_special_chars=True, collapse_whitespace=True)
    assert clean_text("hi ★ there © 2024 → ok!", cfg) == "hi there 2024 ok!"
    kept = 'It\'s (fine) - yes: "quoted", right; sure? Ünïcödé 42.'
    assert clean_text(kept, cfg) == kept
    assert clean_text("hi ★", ALL_OFF) == "hi ★"


def test_steps_run_in_a_fixed_order_markup_before_whitespace() -> None:
    cfg = CleanConfig(strip_html=True, remove_urls=True, lowercase=True)
    text = "<div>Visit  \uff37\uff37\uff37.EXAMPLE.COM\n\nfor   MORE</div>"
    # NFKC makes the full-width URL plain ASCII first, so the URL step can remove it
    assert clean_text(text, cfg) == "visit for more"


def test_min_chars_drops_short_texts_as_too_short() -> None:
    cfg = CleanConfig(min_chars=5)
    out, report = clean_frame(frame(["abcd", "abcde", "  ab  ", "long enough"], list("xyxy")), cfg)
    assert out["text"].tolist() == ["abcde", "long enough"]
    assert out["row"].tolist() == [2, 4]
    assert report["dropped"] == {"too_short": 2}
    assert_nothing_silently_lost(report, out)


def test_text_emptied_by_cleaning_is_too_short_even_with_min_chars_zero() -> None:
    cfg = CleanConfig(remove_urls=True, min_chars=0)
    out, report = clean_frame(frame(["https://only.a/link", "kept"], ["a", "b"]), cfg)
    assert out["text"].tolist() == ["kept"]
    assert report["dropped"] == {"too_short": 1}
    assert_nothing_silently_lost(report, out)


# --- clean_frame: duplicates ----------------------------------------------------------------


def test_raw_and_cleaned_duplicate_counts_differ_when_cleaning_merges_texts() -> None:
    texts = ["a  b", "a b", "c", "c", "d"]
    out, report = clean_frame(frame(texts, ["x"] * 5), CleanConfig())
    assert report["raw"] == {"rows_repeating_earlier": 1, "distinct_texts_repeated": 1}
    assert report["cleaned"] == {"rows_repeating_earlier": 2, "distinct_texts_repeated": 2}
    assert report["changed_by_cleaning"] == 1
    assert report["dropped"] == {"exact_duplicate": 2}
    assert out["text"].tolist() == ["a b", "c", "d"]
    assert out["row"].tolist() == [1, 3, 5]  # the first of each group survives
    assert_nothing_silently_lost(report, out)


def test_duplicate_stats_counts_repeats_and_repeated_texts() -> None:
    stats = duplicate_stats(pd.Series(["a", "b", "a", "a", "c", "b"]))
    assert stats == {"rows_repeating_earlier": 3, "distinct_texts_repeated": 2}


def test_exact_duplicate_drop_keeps_the_first_row() -> None:
    texts = ["other", "dup", "middle", "dup", "dup"]
    out, report = clean_frame(frame(texts, ["x"] * 5), CleanConfig())
    assert out["row"].tolist() == [1, 2, 3]
    assert out.loc[out["text"] == "dup", "row"].tolist() == [2]
    assert report["dropped"] == {"exact_duplicate": 2}
    assert_nothing_silently_lost(report, out)


def test_drop_duplicates_off_keeps_every_row() -> None:
    out, report = clean_frame(frame(["a", "a", "a"], ["x"] * 3), CleanConfig(drop_duplicates=False))
    assert len(out) == 3
    assert report["dropped"] == {}
    assert report["raw"]["rows_repeating_earlier"] == 2
    assert_nothing_silently_lost(report, out)


# --- clean_frame: conflicting labels --------------------------------------------------------

CONFLICT_TEXTS = ["x", "x", "y", "x", "z", "z", "w"]
CONFLICT_LABELS = ["a", "b", "a", "a", "a", "b", "b"]


def test_conflict_groups_marks_every_row_of_a_text_with_two_labels() -> None:
    mask = conflict_groups(frame(CONFLICT_TEXTS, CONFLICT_LABELS))
    assert mask.tolist() == [True, True, False, True, True, True, False]


def test_conflicts_drop_removes_every_row_of_an_ambiguous_text() -> None:
    out, report = clean_frame(frame(CONFLICT_TEXTS, CONFLICT_LABELS), CleanConfig())
    assert report["conflicts"]["texts"] == 2
    assert report["conflicts"]["rows"] == 5
    assert report["conflicts"]["examples"] == {"x": ["a", "b"], "z": ["a", "b"]}
    assert report["conflicts"]["policy"] == "drop"
    assert report["dropped"] == {"conflicting_labels": 5}
    assert out["text"].tolist() == ["y", "w"]
    assert_nothing_silently_lost(report, out)


def test_conflicts_majority_keeps_the_majority_label_and_a_tie_drops_the_text() -> None:
    out, report = clean_frame(
        frame(CONFLICT_TEXTS, CONFLICT_LABELS), CleanConfig(conflicts="majority")
    )
    # x: a,b,a → keep the two 'a' rows (lose 1), then one of them is an exact duplicate;
    # z: a,b is a tie → both rows go
    assert report["dropped"] == {"conflicting_labels_minority": 3, "exact_duplicate": 1}
    assert list(zip(out["text"], out["label"], strict=True)) == [("x", "a"), ("y", "a"), ("w", "b")]
    assert out["row"].tolist() == [1, 3, 7]
    assert_nothing_silently_lost(report, out)


def test_conflicts_majority_counts_labels_as_text() -> None:
    # 1 and "1" are one label for the majority vote
    out, report = clean_frame(
        frame(["t", "t", "t"], [1, "1", 0]), CleanConfig(conflicts="majority")
    )
    assert report["dropped"]["conflicting_labels_minority"] == 1
    assert out["row"].tolist() == [1]


def test_conflicts_keep_keeps_all_labels_when_duplicates_are_kept() -> None:
    cfg = CleanConfig(conflicts="keep", drop_duplicates=False)
    out, report = clean_frame(frame(CONFLICT_TEXTS, CONFLICT_LABELS), cfg)
    assert len(out) == len(CONFLICT_TEXTS)
    assert report["dropped"] == {}
    assert report["conflicts"]["texts"] == 2  # still reported
    assert_nothing_silently_lost(report, out)


def test_conflicts_keep_then_dedup_keeps_the_first_label() -> None:
    out, report = clean_frame(frame(CONFLICT_TEXTS, CONFLICT_LABELS), CleanConfig(conflicts="keep"))
    assert report["dropped"] == {"exact_duplicate": 3}
    assert list(zip(out["text"], out["label"], strict=True)) == [
        ("x", "a"),
        ("y", "a"),
        ("z", "a"),
        ("w", "b"),
    ]
    assert_nothing_silently_lost(report, out)


def test_conflict_detected_after_cleaning() -> None:
    out, report = clean_frame(frame(["Good  film", "Good film"], ["pos", "neg"]), CleanConfig())
    assert report["raw"]["rows_repeating_earlier"] == 0
    assert report["conflicts"]["texts"] == 1
    assert report["dropped"] == {"conflicting_labels": 2}
    assert len(out) == 0


# --- clean_frame: near duplicates -----------------------------------------------------------


def near_pair() -> tuple[str, str, str]:
    """A 40-word text, a copy with its last word changed (J ≈ 0.95), one with a middle word changed (J ≈ 0.85)."""
    words = distinct_words(40, "word")
    base = " ".join(words)
    near = " ".join([*words[:-1], "different"])
    far = " ".join([*words[:20], "different", *words[21:]])
    return base, near, far


def test_near_pair_fixture_sits_either_side_of_the_threshold() -> None:
    base, near, far = near_pair()
    assert jaccard(shingles(base), shingles(near)) == pytest.approx(37 / 39)
    assert jaccard(shingles(base), shingles(far)) == pytest.approx(35 / 41)
    assert 35 / 41 < 0.9 <= 37 / 39


def test_near_duplicates_dropped_when_enabled_and_the_first_kept() -> None:
    base, near, _ = near_pair()
    other = " ".join(distinct_words(12, "other"))
    cfg = CleanConfig(near_duplicates=True, near_duplicate_threshold=0.9)
    out, report = clean_frame(frame([base, other, near], ["a", "b", "a"]), cfg)
    assert report["dropped"] == {"near_duplicate": 1}
    assert out["row"].tolist() == [1, 2]
    assert_nothing_silently_lost(report, out)


def test_near_duplicate_below_threshold_is_kept() -> None:
    base, _, far = near_pair()
    cfg = CleanConfig(near_duplicates=True, near_duplicate_threshold=0.9)
    out, report = clean_frame(frame([base, far], ["a", "a"]), cfg)
    assert len(out) == 2
    assert "near_duplicate" not in report["dropped"]
    # lowering the threshold under the pair's true Jaccard (≈ 0.854) makes it a near-duplicate
    cfg = CleanConfig(near_duplicates=True, near_duplicate_threshold=0.8)
    out, report = clean_frame(frame([base, far], ["a", "a"]), cfg)
    assert out["row"].tolist() == [1]
    assert report["dropped"] == {"near_duplicate": 1}


def test_near_duplicates_off_by_default() -> None:
    base, near, _ = near_pair()
    out, report = clean_frame(frame([base, near], ["a", "a"]), CleanConfig())
    assert len(out) == 2
    assert report["dropped"] == {}


def test_near_duplicate_chain_drops_every_later_member_once() -> None:
    words = distinct_words(60, "w")
    texts = [
        " ".join(words),
        " ".join([*words[:-1], "end1"]),
        " ".join([*words[:-1], "end2"]),
        " ".join(distinct_words(20, "unrelated")),
    ]
    cfg = CleanConfig(near_duplicates=True, near_duplicate_threshold=0.9)
    out, report = clean_frame(frame(texts, ["a"] * 4), cfg)
    assert out["row"].tolist() == [1, 4]
    assert report["dropped"] == {"near_duplicate": 2}
    assert_nothing_silently_lost(report, out)


# --- clean_frame: the report as a whole -----------------------------------------------------


@pytest.mark.parametrize("conflicts", ["drop", "majority", "keep"])
@pytest.mark.parametrize("near", [False, True])
def test_no_row_is_silently_dropped(conflicts: str, near: bool) -> None:
    base, near_copy, _ = near_pair()
    texts = [
        "fine text",
        "fine  text",  # cleaned duplicate
        "x",  # too short with min_chars=2
        "ambiguous",
        "ambiguous",
        "ambiguous",
        "http://gone.example",  # emptied by URL removal
        base,
        near_copy,
        "another",
    ]
    labels = ["a", "a", "a", "a", "b", "a", "b", "a", "b", "b"]
    cfg = CleanConfig(conflicts=conflicts, near_duplicates=near, remove_urls=True, min_chars=2)
    out, report = clean_frame(frame(texts, labels), cfg)
    assert report["rows_in"] == len(texts)
    assert report["dropped"]["too_short"] == 2
    assert_nothing_silently_lost(report, out)
    assert len(set(out["row"])) == len(out)  # no row duplicated either


def test_label_counts_are_raw_counts_before_any_drop() -> None:
    texts = ["a", "a", "b", "c", "d", "e"]
    _, report = clean_frame(frame(texts, ["ham", "ham", "spam", "ham", "x", "ham"]), CleanConfig())
    assert report["label_counts"] == {"ham": 4, "spam": 1, "x": 1}
    assert sum(report["label_counts"].values()) == report["rows_in"] == 6
    assert report["rows_out"] == 5


def test_label_spellings_that_encode_to_one_label_do_not_conflict() -> None:
    # label_name() makes "pos" and "pos " (and 1, 1.0, "1") one label; the same text with
    # two spellings of one label is a duplicate, not an ambiguous text
    out, report = clean_frame(frame(["t", "t", "u", "u"], ["pos", "pos ", 1, "1"]), CleanConfig())
    assert report["conflicts"]["texts"] == 0
    assert "conflicting_labels" not in report["dropped"]
    assert out["row"].tolist() == [1, 3]


def test_clean_frame_does_not_modify_its_input() -> None:
    given = frame(["A  b", "A b"], ["x", "x"])
    copy = given.copy()
    clean_frame(given, CleanConfig(lowercase=True))
    pd.testing.assert_frame_equal(given, copy)
