"""read_table / pick_column / file_sha256: every format, and errors that name file, line, column."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from tunelab.data.load import (
    LABEL_COLUMN_NAMES,
    TEXT_COLUMN_NAMES,
    detect_format,
    file_sha256,
    pick_column,
    read_table,
)
from tunelab.errors import DataError

ROWS = [
    {"text": "a fine film", "label": "pos"},
    {"text": "dull, and too long", "label": "neg"},
    {"text": 'she said "wow"', "label": "pos"},
]


def expected_frame() -> pd.DataFrame:
    return pd.DataFrame(ROWS)


# --- formats ------------------------------------------------------------------------------------


def test_read_csv(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    expected_frame().to_csv(path, index=False)
    frame = read_table(path)
    assert list(frame.columns) == ["text", "label"]
    assert frame.to_dict("records") == ROWS


def test_read_csv_keeps_numbers_as_strings(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("text,label\n007,1\n3.50,0\n", encoding="utf-8")
    frame = read_table(path)
    assert frame["text"].tolist() == ["007", "3.50"]
    assert frame["label"].tolist() == ["1", "0"]


def test_read_tsv(tmp_path: Path) -> None:
    path = tmp_path / "data.tsv"
    expected_frame().to_csv(path, index=False, sep="\t")
    frame = read_table(path)
    assert frame.to_dict("records") == ROWS


def test_read_json_list_of_records(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text(json.dumps(ROWS), encoding="utf-8")
    frame = read_table(path)
    assert frame.to_dict("records") == ROWS


def test_read_json_object_with_one_list(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text(json.dumps({"version": 1, "data": ROWS}), encoding="utf-8")
    assert read_table(path).to_dict("records") == ROWS


def test_read_json_that_is_not_records(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text(json.dumps([1, 2, 3]), encoding="utf-8")
    with pytest.raises(DataError, match=r"expected a list of objects"):
        read_table(path)


def test_read_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS) + "\n", encoding="utf-8")
    frame = read_table(path)
    assert frame.to_dict("records") == ROWS


def test_read_parquet(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    expected_frame().to_parquet(path, index=False)
    frame = read_table(path)
    assert frame.to_dict("records") == ROWS


def test_explicit_format_overrides_extension(tmp_path: Path) -> None:
    path = tmp_path / "data.dat"
    path.write_text("text\tlabel\nhi\tpos\n", encoding="utf-8")
    frame = read_table(path, fmt="tsv")
    assert frame.to_dict("records") == [{"text": "hi", "label": "pos"}]


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.csv", "csv"),
        ("a.TSV", "tsv"),
        ("a.txt", "tsv"),
        ("a.json", "json"),
        ("a.ndjson", "jsonl"),
        ("a.pq", "parquet"),
    ],
)
def test_detect_format(name: str, fmt: str) -> None:
    assert detect_format(Path(name)) == fmt


def test_headerless_tsv_gets_numbered_columns(tmp_path: Path) -> None:
    path = tmp_path / "data.tsv"
    path.write_text("good movie\t1\nbad movie\t0\n", encoding="utf-8")
    frame = read_table(path, header=False)
    assert list(frame.columns) == ["col0", "col1"]
    assert len(frame) == 2
    assert frame["col0"].tolist() == ["good movie", "bad movie"]
    assert frame["col1"].tolist() == ["1", "0"]


def test_na_and_null_texts_stay_strings(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("text,label\nNA,pos\nnull,neg\nnan,pos\nN/A,neg\n", encoding="utf-8")
    frame = read_table(path)
    assert frame["text"].tolist() == ["NA", "null", "nan", "N/A"]
    assert not frame["text"].isna().any()


def test_only_empty_fields_are_missing(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("text,label\nhello,\n,neg\n", encoding="utf-8")
    frame = read_table(path)
    assert frame["label"].isna().tolist() == [True, False]
    assert frame["text"].isna().tolist() == [False, True]


# --- column picking -----------------------------------------------------------------------------


def test_columns_are_auto_detected_case_insensitively(tmp_path: Path) -> None:
    frame = pd.DataFrame({"id": [1], "Sentence": ["hi"], "Sentiment": ["pos"]})
    path = tmp_path / "x.csv"
    assert pick_column(frame, None, TEXT_COLUMN_NAMES, "text", path) == "Sentence"
    assert pick_column(frame, None, LABEL_COLUMN_NAMES, "label", path) == "Sentiment"


def test_auto_detection_prefers_the_earlier_common_name(tmp_path: Path) -> None:
    frame = pd.DataFrame({"comment": ["a"], "text": ["b"], "y": [0], "label": [1]})
    path = tmp_path / "x.csv"
    assert pick_column(frame, None, TEXT_COLUMN_NAMES, "text", path) == "text"
    assert pick_column(frame, None, LABEL_COLUMN_NAMES, "label", path) == "label"


def test_explicit_column_is_used(tmp_path: Path) -> None:
    frame = pd.DataFrame({"text": ["a"], "body2": ["b"]})
    assert pick_column(frame, "body2", TEXT_COLUMN_NAMES, "text", tmp_path / "x.csv") == "body2"


def test_missing_explicit_column_lists_the_columns(tmp_path: Path) -> None:
    frame = pd.DataFrame({"review": ["a"], "stars": [5]})
    with pytest.raises(DataError, match=r"column 'txt' not found") as info:
        pick_column(frame, "txt", TEXT_COLUMN_NAMES, "text", tmp_path / "x.csv")
    message = str(info.value)
    assert "'review'" in message
    assert "'stars'" in message
    assert "data.text_column" in message


def test_undetectable_column_lists_the_columns(tmp_path: Path) -> None:
    frame = pd.DataFrame({"review": ["a"], "stars": [5]})
    with pytest.raises(DataError, match=r"cannot tell which column holds the label") as info:
        pick_column(frame, None, LABEL_COLUMN_NAMES, "label", tmp_path / "x.csv")
    assert "['review', 'stars']" in str(info.value)
    assert "data.label_column" in str(info.value)


# --- errors -------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"data file not found: .*nope\.csv"):
        read_table(tmp_path / "nope.csv")


def test_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    path.write_text("text,label\na,b\n", encoding="utf-8")
    with pytest.raises(
        DataError, match=r"cannot tell the format from the extension '\.xlsx'"
    ) as info:
        read_table(path)
    assert ".csv" in str(info.value)
    assert "data.format" in str(info.value)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(b"")
    with pytest.raises(DataError, match=r"data\.csv: the file is empty"):
        read_table(path)


@pytest.mark.parametrize(
    ("name", "content"),
    [("data.csv", "text,label\n"), ("data.tsv", "text\tlabel\n"), ("data.json", "[]")],
)
def test_header_only_file_has_no_rows(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=r"no data rows"):
        read_table(path)


def test_non_utf8_csv_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(b"text,label\ngood,pos\ncaf\xe9 au lait,neg\nok,pos\n")
    with pytest.raises(DataError, match=r"not valid UTF-8 \(byte 0xe9\)") as info:
        read_table(path)
    assert "line 3 " in str(info.value)


def test_non_utf8_jsonl_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(b'{"text": "a", "label": 1}\n{"text": "caf\xe9", "label": 0}\n')
    with pytest.raises(DataError, match=r"line 2 is not valid UTF-8 \(byte 0xe9\)"):
        read_table(path)


def test_malformed_jsonl_line_names_its_number(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text(
        '{"text": "a", "label": 1}\n\n{"text": "b", "label": 0}\n{"text": "c", label: 1}\n',
        encoding="utf-8",
    )
    with pytest.raises(DataError, match=r"line 4 is not valid JSON"):
        read_table(path)


def test_jsonl_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text('{"text": "a", "label": 1}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"line 2 is a JSON list, not an object"):
        read_table(path)


def test_malformed_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "data.json"
    path.write_text(
        '[\n{"text": "a", "label": 1},\n{"text": "b" "label": 0}\n]\n', encoding="utf-8"
    )
    with pytest.raises(DataError, match=r"not valid JSON at line 3"):
        read_table(path)


def test_ragged_csv_row(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("text,label\nfine,pos\ntoo,many,fields\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"malformed CSV") as info:
        read_table(path)
    assert "line 3" in str(info.value)


def test_corrupt_parquet(tmp_path: Path) -> None:
    path = tmp_path / "data.parquet"
    path.write_bytes(b"this is not parquet at all")
    with pytest.raises(DataError, match=r"data\.parquet"):
        read_table(path)


# --- hashing ------------------------------------------------------------------------------------


def test_file_sha256_matches_hashlib(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    content = bytes(range(256)) * 9000  # > 1 MiB, so more than one block is read
    path.write_bytes(content)
    assert file_sha256(path) == hashlib.sha256(content).hexdigest()
    assert file_sha256(str(path)) == hashlib.sha256(content).hexdigest()


def test_file_sha256_changes_with_content(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("text,label\na,1\n", encoding="utf-8")
    first = file_sha256(path)
    path.write_text("text,label\na,2\n", encoding="utf-8")
    assert file_sha256(path) != first
