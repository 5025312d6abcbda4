"""Bad data is refused or warned about with the fix, never trained on in silence (issue 15, finding 7),
and messages stay one short line however many labels or columns a file has (finding 8)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from inputs_cli import MAX_LINE, assert_one_line, invoke
from tunelab.config import DataConfig
from tunelab.data import prepare_classification
from tunelab.data.labels import LabelMap, label_name
from tunelab.data.load import TEXT_COLUMN_NAMES, pick_column
from tunelab.errors import DataError

TEXTS = [f"sentence number {i} about the film" for i in range(40)]


def inspect(path: Path, tmp_path: Path, *overrides: str):  # type: ignore[no-untyped-def]
    return invoke("data", "inspect", path, *overrides, "--out", tmp_path / "report")


def warnings_of(tmp_path: Path) -> list[str]:
    return json.loads((tmp_path / "report" / "data_report.json").read_text())["warnings"]


@pytest.mark.parametrize(
    ("values", "kind", "fix"),
    [
        ([["a", "b"], ["c"]], "holds lists", "Join each list into one string"),
        ([{"body": "a"}, {"body": "b"}], "holds objects (struct/dict)", "Keep the field"),
    ],
)
def test_a_parquet_list_or_struct_column_as_text_is_refused_with_the_fix(
    tmp_path: Path, values: list, kind: str, fix: str
) -> None:
    path = tmp_path / "nested.parquet"
    pd.DataFrame({"text": values * 20, "label": ["x", "y"] * 20}).to_parquet(path)
    line = assert_one_line(inspect(path, tmp_path), "column 'text'", kind, fix, "data.text_column")
    assert "array(" not in line and "dtype=" not in line  # numpy's repr is not the advice


def test_a_jsonl_list_as_text_is_refused_in_predict_too(tmp_path: Path) -> None:
    path = tmp_path / "nested.jsonl"
    path.write_text("".join(json.dumps({"text": ["a", "b"]}) + "\n" for _ in range(3)))
    from tunelab.data.stream import iter_text_chunks

    with pytest.raises(DataError, match=r"holds lists.*--text-column"):
        list(iter_text_chunks(path, None, 10))


def test_float_labels_are_refused_classification_needs_discrete_ones(tmp_path: Path) -> None:
    path = tmp_path / "scores.csv"
    pd.DataFrame({"text": TEXTS, "label": [0.5, 1.0, 0.0, 0.25] * 10}).to_csv(path, index=False)
    assert_one_line(
        inspect(path, tmp_path), "non-integer numbers", "0.5", "discrete labels", "Round or bin"
    )


def test_whole_number_floats_are_the_integer_classes(tmp_path: Path) -> None:
    assert [label_name(v) for v in ("1.0", "0.0", " 2.00 ", 1.0, "-3.")] == [
        "1",
        "0",
        "2",
        "1",
        "-3",
    ]
    path = tmp_path / "floats.csv"
    pd.DataFrame({"text": TEXTS, "label": ["1.0", "0", "0.0", "1"] * 10}).to_csv(path, index=False)
    prepared = prepare_classification(DataConfig(train_file=str(path)), seed=0)
    assert prepared.labels.names == ("0", "1")
    assert prepared.report["warnings"] == []


def test_mixed_number_and_name_labels_are_warned_about_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    pd.DataFrame({"text": TEXTS, "label": ["1", "pos", "0", "neg"] * 10}).to_csv(path, index=False)
    done = inspect(path, tmp_path)
    assert done.kind == "ok", done.stderr
    (warning,) = [w for w in warnings_of(tmp_path) if "mixes numbers" in w]
    assert "(1, 0)" in warning and "(pos, neg)" in warning and "4 classes" in warning
    assert "warning: mixed.csv: label column 'label' mixes numbers" in done.stdout


def test_a_missing_looking_label_is_warned_about(tmp_path: Path) -> None:
    path = tmp_path / "nan.csv"
    pd.DataFrame({"text": TEXTS, "label": ["pos", "neg", "nan", "pos"] * 10}).to_csv(
        path, index=False
    )
    assert inspect(path, tmp_path).kind == "ok"
    assert any("'nan'" in w and "missing value" in w for w in warnings_of(tmp_path))


def test_an_all_number_text_column_is_warned_about_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "ids.csv"
    pd.DataFrame({"text": [str(1000 + i) for i in range(40)], "label": ["a", "b"] * 20}).to_csv(
        path, index=False
    )
    done = inspect(path, tmp_path)
    assert done.kind == "ok", done.stderr
    (warning,) = [w for w in warnings_of(tmp_path) if "is a number" in w]
    assert "'text'" in warning and "data.text_column" in warning


def test_200_labels_make_a_short_line(tmp_path: Path) -> None:
    labels = LabelMap(tuple(f"category-number-{i}" for i in range(200)))
    with pytest.raises(DataError) as info:
        labels.encode(pd.Series(["category-number-1", "no-such-category"]), str(tmp_path / "x.csv"))
    message = str(info.value)
    assert len(message) < MAX_LINE, message
    assert "category-number-0" in message and "more)" in message


def test_200_columns_make_a_short_line(tmp_path: Path) -> None:
    frame = pd.DataFrame({f"column_{i}": ["x"] for i in range(200)})
    with pytest.raises(DataError) as info:
        pick_column(frame, "body", TEXT_COLUMN_NAMES, "text", tmp_path / "wide.csv")
    message = str(info.value)
    assert len(message) < MAX_LINE and "'column_0'" in message and "more" in message


def test_200_labels_in_an_eval_file_are_one_short_line(tmp_path: Path) -> None:
    train = tmp_path / "train.csv"
    names = [f"topic-{i:03d}" for i in range(200)]
    pd.DataFrame(
        {"text": [f"text {i} {n}" for i in range(3) for n in names], "label": names * 3}
    ).to_csv(train, index=False)
    test = tmp_path / "test.csv"
    pd.DataFrame({"text": ["a new text"], "label": ["topic-999"]}).to_csv(test, index=False)
    validation = tmp_path / "validation.csv"
    pd.DataFrame({"text": [f"v {n}" for n in names], "label": names}).to_csv(
        validation, index=False
    )
    cfg = DataConfig(train_file=str(train), validation_file=str(validation), test_file=str(test))
    with pytest.raises(DataError) as info:
        prepare_classification(cfg, seed=0)
    message = str(info.value)
    assert "'topic-999'" in message and "more)" in message
    assert len(f"error: {message}") < MAX_LINE, message


def test_generate_inputs_with_an_unknown_header_are_not_answered_as_prompts(
    tmp_path: Path,
) -> None:
    from tunelab.data import read_texts

    path = tmp_path / "prompts.csv"
    path.write_text("my_prompt,id\nopposite of good,1\nopposite of sad,2\n")
    with pytest.raises(DataError, match=r"'my_prompt', 'id'.*--column") as info:
        read_texts(path, None)
    assert "data." not in str(info.value)
    frame, column = read_texts(path, "col0")
    assert column == "col0" and len(frame) == 3  # the user said: no header


def test_a_header_nobody_recognises_is_not_trained_as_a_row(tmp_path: Path) -> None:
    path = tmp_path / "sms.csv"
    lines = ["msg,kind"] + [f"text number {i},{('ham', 'spam')[i % 2]}" for i in range(30)]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"'msg', 'kind'.*looks like a header.*data.header"):
        prepare_classification(DataConfig(train_file=str(path)), seed=0)
    named = DataConfig(train_file=str(path), header=True, text_column="msg", label_column="kind")
    assert prepare_classification(named, seed=0).labels.names == ("ham", "spam")
    # the user says it is data: not refused as a header; then its one-row class cannot be split
    with pytest.raises(DataError, match="1 of 3 classes have a single row"):
        prepare_classification(DataConfig(train_file=str(path), header=False), seed=1)
