"""prepare_classification: stratified seeded splits, given files, label maps and data checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tunelab.config import DataConfig, SplitConfig
from tunelab.data import SPLITS, LabelMap, prepare_classification
from tunelab.data.labels import label_name
from tunelab.data.load import file_sha256
from tunelab.errors import DataError


def write_csv(path: Path, texts: list[str], labels: list[object]) -> Path:
    pd.DataFrame({"text": texts, "label": labels}).to_csv(path, index=False)
    return path


def three_class_file(path: Path, n: int = 200) -> Path:
    """n rows with labels a/b/c in shares 50% / 30% / 20%."""
    labels = ["a"] * (n // 2) + ["b"] * (n * 3 // 10) + ["c"] * (n // 5)
    # interleave, so a split by position would not be stratified by accident
    labels = [labels[(i * 7) % n] for i in range(n)]
    return write_csv(path, [f"sample text number {i}" for i in range(n)], labels)


def two_class_file(path: Path, n: int, prefix: str = "row") -> Path:
    """n rows, 60% 'pos' and 40% 'neg'."""
    labels = ["pos" if i % 5 < 3 else "neg" for i in range(n)]
    return write_csv(path, [f"{prefix} {i}" for i in range(n)], labels)


def shares(frame: pd.DataFrame, labels: LabelMap) -> dict[str, int]:
    counts = frame["label"].value_counts().to_dict()
    return {name: int(counts.get(i, 0)) for i, name in enumerate(labels.names)}


def test_single_file_gives_stratified_80_10_10(tmp_path: Path) -> None:
    path = three_class_file(tmp_path / "data.csv")
    prepared = prepare_classification(DataConfig(train_file=str(path)), seed=42)
    assert prepared.labels.names == ("a", "b", "c")
    assert set(prepared.splits) == set(SPLITS)
    sizes = {name: len(frame) for name, frame in prepared.splits.items()}
    assert sizes == {"train": 160, "validation": 20, "test": 20}
    assert shares(prepared.splits["train"], prepared.labels) == {"a": 80, "b": 48, "c": 32}
    assert shares(prepared.splits["validation"], prepared.labels) == {"a": 10, "b": 6, "c": 4}
    assert shares(prepared.splits["test"], prepared.labels) == {"a": 10, "b": 6, "c": 4}
    assert prepared.origin == {
        "train": "file",
        "validation": "carved from train",
        "test": "carved from train",
    }
    assert prepared.text_column == "text"
    assert prepared.label_column == "label"
    assert prepared.files == {str(path): file_sha256(path)}


def test_splits_are_disjoint_and_cover_every_row(tmp_path: Path) -> None:
    path = three_class_file(tmp_path / "data.csv")
    prepared = prepare_classification(DataConfig(train_file=str(path)), seed=0)
    rows = [set(frame["row"]) for frame in prepared.splits.values()]
    assert rows[0].isdisjoint(rows[1])
    assert rows[0].isdisjoint(rows[2])
    assert rows[1].isdisjoint(rows[2])
    assert set.union(*rows) == set(range(1, 201))


def test_row_column_points_back_to_the_source_row(tmp_path: Path) -> None:
    path = three_class_file(tmp_path / "data.csv")
    source = pd.read_csv(path)
    prepared = prepare_classification(DataConfig(train_file=str(path)), seed=3)
    for frame in prepared.splits.values():
        for text, label, row in frame[["text", "label", "row"]].itertuples(index=False):
            assert source.loc[row - 1, "text"] == text
            assert prepared.labels.names[label] == source.loc[row - 1, "label"]


def test_custom_split_ratios(tmp_path: Path) -> None:
    path = two_class_file(tmp_path / "data.csv", 200)
    cfg = DataConfig(train_file=str(path), split=SplitConfig(train=0.6, validation=0.2, test=0.2))
    prepared = prepare_classification(cfg, seed=1)
    sizes = {name: len(frame) for name, frame in prepared.splits.items()}
    assert sizes == {"train": 120, "validation": 40, "test": 40}


def test_same_seed_same_split_other_seed_other_split(tmp_path: Path) -> None:
    path = three_class_file(tmp_path / "data.csv")
    cfg = DataConfig(train_file=str(path))
    first = prepare_classification(cfg, seed=7)
    again = prepare_classification(cfg, seed=7)
    other = prepare_classification(cfg, seed=8)
    for name in SPLITS:
        pd.testing.assert_frame_equal(first.splits[name], again.splits[name])
    assert set(first.splits["test"]["row"]) != set(other.splits["test"]["row"])
    assert set(first.splits["validation"]["row"]) != set(other.splits["validation"]["row"])


def test_given_files_are_used_as_is(tmp_path: Path) -> None:
    train = two_class_file(tmp_path / "train.csv", 50, "train")
    validation = two_class_file(tmp_path / "validation.csv", 10, "validation")
    test = two_class_file(tmp_path / "test.csv", 15, "test")
    cfg = DataConfig(train_file=str(train), validation_file=str(validation), test_file=str(test))
    prepared = prepare_classification(cfg, seed=42)
    assert prepared.origin == {"train": "file", "validation": "file", "test": "file"}
    assert {name: len(frame) for name, frame in prepared.splits.items()} == {
        "train": 50,
        "validation": 10,
        "test": 15,
    }
    for name in SPLITS:
        frame = prepared.splits[name]
        assert frame["text"].str.startswith(name).all()
        assert frame["row"].tolist() == list(range(1, len(frame) + 1))
    assert set(prepared.files) == {str(train), str(validation), str(test)}


def test_train_and_test_files_carve_only_validation(tmp_path: Path) -> None:
    train = two_class_file(tmp_path / "train.csv", 180, "train")
    test = two_class_file(tmp_path / "test.csv", 30, "test")
    prepared = prepare_classification(DataConfig(train_file=str(train), test_file=str(test)), 0)
    assert prepared.origin == {"train": "file", "validation": "carved from train", "test": "file"}
    # validation share 0.1 of (0.8 + 0.1) of the train file: 20 of 180
    assert len(prepared.splits["validation"]) == 20
    assert len(prepared.splits["train"]) == 160
    assert len(prepared.splits["test"]) == 30
    assert prepared.splits["validation"]["text"].str.startswith("train").all()
    assert prepared.splits["test"]["text"].str.startswith("test").all()
    assert shares(prepared.splits["validation"], prepared.labels) == {"neg": 8, "pos": 12}


def test_string_labels_sort_alphabetically(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", [f"t{i}" for i in range(20)], ["pos", "neg"] * 10)
    prepared = prepare_classification(DataConfig(train_file=str(path)), 0)
    assert prepared.labels.names == ("neg", "pos")
    assert prepared.labels.label2id == {"neg": 0, "pos": 1}
    assert prepared.labels.id2label == {0: "neg", 1: "pos"}


def test_integer_labels_sort_numerically(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", [f"t{i}" for i in range(30)], [10, 2, 1] * 10)
    prepared = prepare_classification(DataConfig(train_file=str(path)), 0)
    assert prepared.labels.names == ("1", "2", "10")
    source = pd.read_csv(path)
    for frame in prepared.splits.values():
        expected = [prepared.labels.label2id[str(source.loc[r - 1, "label"])] for r in frame["row"]]
        assert frame["label"].tolist() == expected


def test_label_map_order_mixes_numbers_before_names() -> None:
    labels = LabelMap.from_values(pd.Series(["b", "10", "a", "2", "-1"]))
    assert labels.names == ("-1", "2", "10", "a", "b")


@pytest.mark.parametrize("value", [1, 1.0, "1", " 1 ", np.int64(1), np.float64(1.0)])
def test_label_spellings_of_one(value: object) -> None:
    assert label_name(value) == "1"


def test_one_and_one_point_zero_and_string_one_are_one_label(tmp_path: Path) -> None:
    assert LabelMap.from_values(pd.Series([1, 1.0, "1", 0, 0.0, "0"])).names == ("0", "1")
    # train labels are ints (JSONL); test labels are floats and strings of the same values
    train = tmp_path / "train.jsonl"
    train.write_text(
        "".join(json.dumps({"text": f"t{i}", "label": i % 2}) + "\n" for i in range(40)),
        encoding="utf-8",
    )
    test = tmp_path / "test.jsonl"
    test.write_text(
        "".join(
            json.dumps({"text": f"x{i}", "label": value}) + "\n"
            for i, value in enumerate([1.0, "1", 0.0, "0", 1])
        ),
        encoding="utf-8",
    )
    prepared = prepare_classification(DataConfig(train_file=str(train), test_file=str(test)), 0)
    assert prepared.labels.names == ("0", "1")
    assert prepared.splits["test"]["label"].tolist() == [1, 1, 0, 0, 1]


def test_label_in_test_not_in_train_is_named(tmp_path: Path) -> None:
    train = two_class_file(tmp_path / "train.csv", 40)
    test = write_csv(tmp_path / "test.csv", ["a", "b", "c"], ["pos", "maybe", "maybe"])
    cfg = DataConfig(train_file=str(train), test_file=str(test))
    with pytest.raises(DataError, match=r"label 'maybe' \(2 rows, first at row 2\)") as info:
        prepare_classification(cfg, 0)
    message = str(info.value)
    assert str(test) in message
    assert "neg, pos" in message


def test_single_class_train_is_refused(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", [f"t{i}" for i in range(20)], ["pos"] * 20)
    with pytest.raises(DataError, match=r"every training row has the label 'pos'.*two classes"):
        prepare_classification(DataConfig(train_file=str(path)), 0)


@pytest.mark.parametrize("empty", ["", "   "])
def test_empty_text_is_an_error_naming_the_row(tmp_path: Path, empty: str) -> None:
    path = tmp_path / "d.csv"
    path.write_text(f"text,label\nfine,pos\nalso fine,neg\n{empty},pos\nok,neg\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"1 rows have an empty 'text' \(first at data row 3\)"):
        prepare_classification(DataConfig(train_file=str(path)), 0)


def test_missing_label_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    records = [
        {"text": "a", "label": "pos"},
        {"text": "b", "label": None},
        {"text": "c", "label": "neg"},
        {"text": "d", "label": ""},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    with pytest.raises(DataError, match=r"2 rows have no 'label' \(first at data row 2\)"):
        prepare_classification(DataConfig(train_file=str(path)), 0)


def test_explicit_columns_and_headerless_file(tmp_path: Path) -> None:
    path = tmp_path / "d.tsv"
    path.write_text("".join(f"text {i}\t{i % 2}\n" for i in range(40)), encoding="utf-8")
    cfg = DataConfig(train_file=str(path), header=False, text_column="col0", label_column="col1")
    prepared = prepare_classification(cfg, 0)
    assert (prepared.text_column, prepared.label_column) == ("col0", "col1")
    assert prepared.labels.names == ("0", "1")
    assert sum(len(f) for f in prepared.splits.values()) == 40


def test_missing_train_file_setting() -> None:
    with pytest.raises(DataError, match=r"data\.train_file is not set"):
        prepare_classification(DataConfig(), 0)


def test_max_train_rows_subsamples_train_only(tmp_path: Path) -> None:
    path = two_class_file(tmp_path / "data.csv", 200)
    full = prepare_classification(DataConfig(train_file=str(path)), seed=5)
    small = prepare_classification(DataConfig(train_file=str(path), max_train_rows=50), seed=5)
    assert len(small.splits["train"]) == 50
    assert shares(small.splits["train"], small.labels) == {"neg": 20, "pos": 30}
    assert set(small.splits["train"]["row"]) <= set(full.splits["train"]["row"])
    for name in ("validation", "test"):
        pd.testing.assert_frame_equal(small.splits[name], full.splits[name])


def test_max_train_rows_above_the_train_size_keeps_everything(tmp_path: Path) -> None:
    path = two_class_file(tmp_path / "data.csv", 100)
    prepared = prepare_classification(DataConfig(train_file=str(path), max_train_rows=10_000), 0)
    assert len(prepared.splits["train"]) == 80


def test_too_few_rows_of_a_class_to_stratify(tmp_path: Path) -> None:
    labels = ["pos"] * 30 + ["neg"]
    path = write_csv(tmp_path / "d.csv", [f"t{i}" for i in range(31)], labels)
    with pytest.raises(DataError, match=r"cannot carve a stratified test split"):
        prepare_classification(DataConfig(train_file=str(path)), 0)


def test_summary_reports_counts_and_origins(tmp_path: Path) -> None:
    path = two_class_file(tmp_path / "data.csv", 200)
    summary = prepare_classification(DataConfig(train_file=str(path)), 0).summary()
    assert summary["labels"] == ["neg", "pos"]
    assert summary["splits"]["test"] == {
        "rows": 20,
        "origin": "carved from train",
        "label_counts": {"neg": 8, "pos": 12},
    }


def test_label_map_save_load_round_trip(tmp_path: Path) -> None:
    labels = LabelMap(("neg", "neutral", "pos", "ünïcode"))
    path = tmp_path / "sub" / "labels.json"
    labels.save(path)
    assert LabelMap.load(path) == labels
    assert json.loads(path.read_text(encoding="utf-8")) == {"labels": list(labels.names)}


def test_group_carving_above_half_takes_that_share_of_groups() -> None:
    from tunelab.data.split import carve

    frame = pd.DataFrame(
        {
            "text": [f"t{i}" for i in range(200)],
            "label": [i % 2 for i in range(200)],
            "group": [i // 10 for i in range(200)],
        }
    )
    rest, carved = carve(frame, 0.75, seed=0, name="test")
    assert set(rest["group"]).isdisjoint(carved["group"])
    assert len(rest) + len(carved) == 200
    assert 0.65 <= len(carved) / 200 <= 0.85  # 3 of 4 stratified group folds
