"""Train→eval leakage (check_leakage), class imbalance (class_weights, resample) and group splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tunelab.config import DataConfig, ImbalanceConfig, LeakageConfig
from tunelab.data import SPLITS, prepare_classification
from tunelab.data.imbalance import class_weights, resample
from tunelab.data.leakage import check_leakage
from tunelab.data.split import carve
from tunelab.errors import DataError

WORDS = 120  # long texts: one changed trailing word leaves Jaccard 117/119 ≈ 0.98


def doc(prefix: str, i: int) -> str:
    """A text whose words occur in no other text (so unrelated texts have Jaccard 0)."""
    return " ".join(f"{prefix}{i}w{k}" for k in range(WORDS))


def near_copy(text: str) -> str:
    return text.rsplit(" ", 1)[0] + " changedword"


def split_frame(texts: list[str], labels: list[int] | None = None) -> pd.DataFrame:
    labels = labels if labels is not None else [i % 2 for i in range(len(texts))]
    return pd.DataFrame({"text": texts, "label": labels, "row": range(1, len(texts) + 1)})


def leaky_splits() -> dict[str, pd.DataFrame]:
    """validation: 2 exact + 1 near copy of train among 6 rows; test: 1 exact among 5."""
    train = [doc("train", i) for i in range(20)]
    validation = [
        doc("val", 0),
        train[3],  # row 2: exact
        doc("val", 2),
        near_copy(train[7]),  # row 4: near
        train[11],  # row 5: exact
        doc("val", 5),
    ]
    test = [doc("test", 0), doc("test", 1), train[0], doc("test", 3), doc("test", 4)]
    return {
        "train": split_frame(train),
        "validation": split_frame(validation),
        "test": split_frame(test),
    }


# --- check_leakage --------------------------------------------------------------------------


def test_counts_exact_and_near_per_eval_split() -> None:
    _, report = check_leakage(leaky_splits(), LeakageConfig())
    assert report["validation"]["rows"] == 6
    assert report["validation"]["exact"] == 2
    assert report["validation"]["near"] == 1
    assert report["test"]["rows"] == 5
    assert report["test"]["exact"] == 1
    assert report["test"]["near"] == 0
    assert report["leaked_rows"] == 4
    assert report["policy"] == "warn"
    kinds = {(e["row"], e["kind"]) for e in report["validation"]["examples"]}
    assert kinds == {(2, "exact"), (5, "exact"), (4, "near")}
    near = next(e for e in report["validation"]["examples"] if e["kind"] == "near")
    assert near["train_text"] == doc("train", 7)


def test_near_duplicates_off_counts_only_exact() -> None:
    _, report = check_leakage(leaky_splits(), LeakageConfig(near_duplicates=False))
    assert report["validation"]["exact"] == 2
    assert report["validation"]["near"] == 0
    assert report["leaked_rows"] == 3
    assert report["near_duplicates_checked"] is False


def test_copy_below_threshold_is_not_leakage() -> None:
    splits = leaky_splits()
    words = doc("train", 7).split()
    for k in (20, 60, 100):  # three changed words far apart: 9 of 118 trigrams change
        words[k] = f"changed{k}"
    splits["validation"].loc[3, "text"] = " ".join(words)  # replaces the near copy (row 4)
    _, report = check_leakage(splits, LeakageConfig())
    assert report["validation"]["near"] == 0
    assert report["validation"]["exact"] == 2


def test_strict_thresholds_the_config_allows_do_not_crash(tmp_path: Path) -> None:
    """data.leakage.threshold accepts any value in (0, 1]; 0.97-1.0 must run, not raise ValueError."""
    train_file, validation_file, test_file, _ = planted_files(tmp_path)
    cfg = DataConfig(
        train_file=train_file,
        validation_file=validation_file,
        test_file=test_file,
        leakage={"threshold": 1.0},
    )
    prepared = prepare_classification(cfg, seed=0)
    assert prepared.report["leakage"]["test"]["exact"] == 7
    assert prepared.report["leakage"]["test"]["near"] == 0  # near copies have J < 1


def test_warn_keeps_every_row() -> None:
    splits = leaky_splits()
    out, report = check_leakage(splits, LeakageConfig(policy="warn"))
    for name in SPLITS:
        pd.testing.assert_frame_equal(out[name], splits[name])
    assert "dropped" not in report["validation"]


def test_drop_from_eval_removes_exactly_the_leaked_rows() -> None:
    splits = leaky_splits()
    out, report = check_leakage(splits, LeakageConfig(policy="drop-from-eval"))
    assert out["validation"]["row"].tolist() == [1, 3, 6]
    assert out["test"]["row"].tolist() == [1, 2, 4, 5]
    assert report["validation"]["dropped"] == 3
    assert report["test"]["dropped"] == 1
    pd.testing.assert_frame_equal(out["train"], splits["train"])  # train untouched
    assert len(splits["validation"]) == 6  # the input is not modified


def test_error_policy_names_counts_and_the_fix() -> None:
    with pytest.raises(DataError) as info:
        check_leakage(leaky_splits(), LeakageConfig(policy="error"))
    message = str(info.value)
    assert "4 validation/test rows" in message
    assert "validation: 2 exact + 1 near" in message
    assert "test: 1 exact + 0 near" in message
    assert "data.leakage.policy=drop-from-eval" in message


def test_error_policy_passes_clean_splits() -> None:
    splits = leaky_splits()
    splits["validation"] = split_frame([doc("fresh", i) for i in range(4)])
    splits["test"] = split_frame([doc("other", i) for i in range(4)])
    out, report = check_leakage(splits, LeakageConfig(policy="error"))
    assert report["leaked_rows"] == 0
    assert len(out["validation"]) == 4


def test_eval_split_emptied_by_dropping_raises() -> None:
    splits = leaky_splits()
    splits["test"] = split_frame([doc("train", 1), near_copy(doc("train", 2))])
    with pytest.raises(DataError, match="test split is empty"):
        check_leakage(splits, LeakageConfig(policy="drop-from-eval"))


# --- leakage through prepare_classification -------------------------------------------------


def write_csv(path: Path, texts: list[str], labels: list[str]) -> str:
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
    return str(path)


def planted_files(tmp_path: Path) -> tuple[str, str, str, list[str]]:
    """train 100 rows; test = 7 exact + 3 near copies of train + 10 fresh; validation fresh."""
    train = [doc("train", i) for i in range(100)]
    labels = ["pos" if i % 3 else "neg" for i in range(100)]
    exact = [train[i] for i in (0, 5, 10, 15, 20, 25)]
    exact.append(train[30].replace(" ", "   ", 3))  # whitespace differs: exact after cleaning
    near = [near_copy(train[i]) for i in (40, 50, 60)]
    fresh = [doc("test", i) for i in range(10)]
    test = exact + near + fresh
    return (
        write_csv(tmp_path / "train.csv", train, labels),
        write_csv(
            tmp_path / "validation.csv", [doc("val", i) for i in range(10)], ["pos", "neg"] * 5
        ),
        write_csv(tmp_path / "test.csv", test, ["pos", "neg"] * 10),
        train,
    )


def test_planted_overlaps_are_counted_exactly(tmp_path: Path) -> None:
    train_file, validation_file, test_file, _ = planted_files(tmp_path)
    cfg = DataConfig(train_file=train_file, validation_file=validation_file, test_file=test_file)
    prepared = prepare_classification(cfg, seed=0)
    leakage = prepared.report["leakage"]
    assert leakage["test"]["exact"] == 7
    assert leakage["test"]["near"] == 3
    assert leakage["validation"]["exact"] == leakage["validation"]["near"] == 0
    assert leakage["leaked_rows"] == 10
    assert len(prepared.splits["test"]) == 20  # warn keeps them


def test_planted_overlaps_with_validation_carved_from_train(tmp_path: Path) -> None:
    train_file, _, test_file, train = planted_files(tmp_path)
    prepared = prepare_classification(
        DataConfig(train_file=train_file, test_file=test_file), seed=0
    )
    final_train = set(prepared.splits["train"]["text"])
    # a planted source carved into validation no longer leaks into test from train
    exact_sources = [train[i] for i in (0, 5, 10, 15, 20, 25, 30)]
    near_sources = [train[i] for i in (40, 50, 60)]
    leakage = prepared.report["leakage"]
    assert leakage["test"]["exact"] == sum(t in final_train for t in exact_sources)
    assert leakage["test"]["near"] == sum(t in final_train for t in near_sources)
    assert leakage["validation"]["exact"] == 0  # carved rows are not in train any more


def test_drop_from_eval_through_prepare(tmp_path: Path) -> None:
    train_file, validation_file, test_file, _ = planted_files(tmp_path)
    cfg = DataConfig(
        train_file=train_file,
        validation_file=validation_file,
        test_file=test_file,
        leakage={"policy": "drop-from-eval"},
    )
    prepared = prepare_classification(cfg, seed=0)
    assert len(prepared.splits["test"]) == 10
    assert prepared.splits["test"]["row"].tolist() == list(range(11, 21))
    assert prepared.report["leakage"]["test"]["dropped"] == 10


# --- imbalance ------------------------------------------------------------------------------


def test_class_weights_are_balanced_by_hand() -> None:
    labels = np.array([0, 0, 0, 1])
    # n / (k · count): 4 / (2 · 3) and 4 / (2 · 1)
    assert class_weights(labels, 2) == pytest.approx([2 / 3, 2.0])
    labels = np.array([0, 0, 1, 1, 1, 1, 2, 2])
    assert class_weights(labels, 3) == pytest.approx([8 / 6, 8 / 12, 8 / 6])


def test_class_weights_give_an_absent_class_weight_one() -> None:
    assert class_weights(np.array([0, 0, 0, 2]), 3) == pytest.approx([2 / 3, 1.0, 2.0])


def imbalanced(n_major: int = 30, n_minor: int = 6) -> pd.DataFrame:
    labels = [0] * n_major + [1] * n_minor
    texts = [f"text {i}" for i in range(len(labels))]
    return pd.DataFrame({"text": texts, "label": labels, "row": range(1, len(labels) + 1)})


def test_resample_none_returns_the_frame_and_reports_the_ratio() -> None:
    train = imbalanced()
    out, report = resample(train, ImbalanceConfig(), seed=0)
    assert out is train
    assert report["label_counts_before"] == {0: 30, 1: 6}
    assert report["imbalance_ratio"] == pytest.approx(5.0)
    assert "label_counts_after" not in report


def test_oversample_gives_equal_counts_from_existing_rows() -> None:
    train = imbalanced()
    out, report = resample(train, ImbalanceConfig(resample="oversample"), seed=0)
    assert out["label"].value_counts().to_dict() == {0: 30, 1: 30}
    assert report["label_counts_after"] == {0: 30, 1: 30}
    # every majority row exactly once; minority rows are repeats of the 6 originals
    assert sorted(out.loc[out["label"] == 0, "row"]) == list(range(1, 31))
    minority = out[out["label"] == 1]
    assert set(minority["row"]) <= set(range(31, 37))
    originals = dict(zip(train["row"], train["text"], strict=True))
    assert all(originals[r] == t for r, t in zip(out["row"], out["text"], strict=True))


def test_undersample_gives_equal_counts_from_existing_rows() -> None:
    train = imbalanced()
    out, report = resample(train, ImbalanceConfig(resample="undersample"), seed=0)
    assert out["label"].value_counts().to_dict() == {0: 6, 1: 6}
    assert len(set(out["row"])) == 12  # sampled without replacement
    assert sorted(out.loc[out["label"] == 1, "row"]) == list(range(31, 37))
    assert report["label_counts_after"] == {0: 6, 1: 6}


@pytest.mark.parametrize("how", ["oversample", "undersample"])
def test_resample_is_deterministic_by_seed(how: str) -> None:
    cfg = ImbalanceConfig(resample=how)
    first, _ = resample(imbalanced(), cfg, seed=7)
    again, _ = resample(imbalanced(), cfg, seed=7)
    other, _ = resample(imbalanced(), cfg, seed=8)
    pd.testing.assert_frame_equal(first, again)
    assert first["row"].tolist() != other["row"].tolist()


def imbalance_files(tmp_path: Path) -> DataConfig:
    train_labels = ["major"] * 40 + ["minor"] * 8
    validation_labels = ["major"] * 9 + ["minor"] * 3
    test_labels = ["major"] * 7 + ["minor"] * 5
    return DataConfig(
        train_file=write_csv(tmp_path / "tr.csv", [doc("t", i) for i in range(48)], train_labels),
        validation_file=write_csv(
            tmp_path / "va.csv", [doc("v", i) for i in range(12)], validation_labels
        ),
        test_file=write_csv(tmp_path / "te.csv", [doc("e", i) for i in range(12)], test_labels),
    )


@pytest.mark.parametrize(("how", "per_class"), [("oversample", 40), ("undersample", 8)])
def test_resample_touches_train_only(tmp_path: Path, how: str, per_class: int) -> None:
    cfg = imbalance_files(tmp_path)
    plain = prepare_classification(cfg, seed=3)
    resampled = prepare_classification(
        cfg.model_copy(update={"imbalance": ImbalanceConfig(resample=how)}), seed=3
    )
    counts = resampled.summary()["splits"]
    assert counts["train"]["label_counts"] == {"major": per_class, "minor": per_class}
    assert counts["validation"]["label_counts"] == {"major": 9, "minor": 3}
    assert counts["test"]["label_counts"] == {"major": 7, "minor": 5}
    for name in ("validation", "test"):
        pd.testing.assert_frame_equal(resampled.splits[name], plain.splits[name])
    assert resampled.report["imbalance"]["label_counts_before"] == {0: 40, 1: 8}


def test_resample_after_carving_leaves_eval_splits_alone(tmp_path: Path) -> None:
    labels = ["major"] * 80 + ["minor"] * 20
    path = write_csv(tmp_path / "one.csv", [doc("x", i) for i in range(100)], labels)
    plain = prepare_classification(DataConfig(train_file=path), seed=5)
    over = prepare_classification(
        DataConfig(train_file=path, imbalance={"resample": "oversample"}), seed=5
    )
    for name in ("validation", "test"):
        pd.testing.assert_frame_equal(over.splits[name], plain.splits[name])
    assert over.summary()["splits"]["train"]["label_counts"] == {"major": 64, "minor": 64}


# --- group-aware split ----------------------------------------------------------------------


def grouped_rows(users: int, per_user: int = 6) -> pd.DataFrame:
    rows = []
    for u in range(users):
        for k in range(per_user):
            rows.append(
                {
                    "text": f"user {u} wrote message {k}",
                    "label": "pos" if (u + k) % 2 else "neg",
                    "user": f"u{u}",
                }
            )
    return pd.DataFrame(rows)


def test_group_column_keeps_each_group_in_one_split(tmp_path: Path) -> None:
    data = grouped_rows(20)
    path = tmp_path / "grouped.csv"
    data.to_csv(path, index=False)
    prepared = prepare_classification(DataConfig(train_file=str(path), group_column="user"), seed=1)
    groups = {name: set(frame["group"]) for name, frame in prepared.splits.items()}
    assert groups["train"].isdisjoint(groups["validation"])
    assert groups["train"].isdisjoint(groups["test"])
    assert groups["validation"].isdisjoint(groups["test"])
    rows = [r for frame in prepared.splits.values() for r in frame["row"]]
    assert sorted(rows) == list(range(1, len(data) + 1))  # every row in exactly one split
    for frame in prepared.splits.values():  # a group's rows all travel together
        for user, rows_of_user in frame.groupby("group")["row"]:
            assert len(rows_of_user) == 6, user


def test_group_column_with_too_few_groups_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "few.csv"
    grouped_rows(3, per_user=20).to_csv(path, index=False)
    with pytest.raises(DataError, match="group"):
        prepare_classification(DataConfig(train_file=str(path), group_column="user"), seed=1)


def test_carve_respects_a_group_column() -> None:
    data = grouped_rows(20).rename(columns={"user": "group"})
    data["label"] = (data["label"] == "pos").astype(int)
    rest, carved = carve(data, 0.2, seed=0, name="test")
    assert set(rest["group"]).isdisjoint(set(carved["group"]))
    assert len(rest) + len(carved) == len(data)


def test_missing_group_column_names_it(tmp_path: Path) -> None:
    path = tmp_path / "nogroup.csv"
    grouped_rows(10).to_csv(path, index=False)
    with pytest.raises(DataError, match="'account' not found"):
        prepare_classification(DataConfig(train_file=str(path), group_column="account"), seed=1)
