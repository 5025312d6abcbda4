"""Messy files: stray quotes in TSV, pandas-quoted TSV, ragged rows, bad encodings, missing values."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tunelab.config import DataConfig
from tunelab.data import prepare_classification
from tunelab.data.load import LABEL_COLUMN_NAMES, TEXT_COLUMN_NAMES, pick_column, read_table
from tunelab.errors import DataError

# like the SMS Spam Collection: label TAB message, no header, messages that begin with a quote
SMS_LINES = [
    ("ham", '"Hi there'),
    ("spam", "Free prize, call now to claim it"),
    ("ham", "ok see you at the station later"),
    ("spam", '"Win cash" text WIN to 80000'),
    ("ham", 'He said "fine" and left'),
    ("ham", "Sorry, I'll call later"),
]


def write_sms(path: Path, lines: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{label}\t{text}\n" for label, text in lines), encoding="utf-8")
    return path


def sms_like(n: int) -> list[tuple[str, str]]:
    """n lines, 1 in 4 beginning with a stray quote, spam every third line."""
    return [
        ("spam" if i % 3 == 0 else "ham", ('"' if i % 4 == 0 else "") + f"message {i} about things")
        for i in range(n)
    ]


# --- TSV quoting ------------------------------------------------------------------------------


def test_stray_quotes_read_one_row_per_line(tmp_path: Path) -> None:
    path = write_sms(tmp_path / "sms.tsv", SMS_LINES)
    frame = read_table(path)
    assert list(frame.columns) == ["col0", "col1"]  # no header detected: first line is data
    assert len(frame) == len(SMS_LINES)
    assert frame["col0"].tolist() == [label for label, _ in SMS_LINES]
    assert frame["col1"].tolist() == [text for _, text in SMS_LINES]  # quotes kept verbatim


def test_one_unbalanced_stray_quote_reads_one_row_per_line(tmp_path: Path) -> None:
    # the quoted reading cannot even parse this (EOF inside the string the quote opens),
    # so auto quoting must fall back to the plain reading
    path = tmp_path / "one_quote.tsv"
    path.write_text('ham\t"Hi there\nspam\tFree prize\n', encoding="utf-8")
    frame = read_table(path)
    assert list(frame.columns) == ["col0", "col1"]
    assert frame["col1"].tolist() == ['"Hi there', "Free prize"]
    assert frame["col0"].tolist() == ["ham", "spam"]


def test_headerless_columns_are_guessed_by_content(tmp_path: Path) -> None:
    path = write_sms(tmp_path / "sms.tsv", SMS_LINES)
    frame = read_table(path)
    text = pick_column(frame, None, TEXT_COLUMN_NAMES, "text", path)
    label = pick_column(frame, None, LABEL_COLUMN_NAMES, "label", path, exclude=text)
    assert (text, label) == ("col1", "col0")


@pytest.mark.parametrize("n", [64, 60])  # 16 stray quotes (balanced), 15 (one left open)
def test_sms_like_file_through_prepare(tmp_path: Path, n: int) -> None:
    lines = sms_like(n)
    path = write_sms(tmp_path / "sms.txt", lines)
    prepared = prepare_classification(DataConfig(train_file=str(path)), seed=0)
    assert (prepared.text_column, prepared.label_column) == ("col1", "col0")
    assert prepared.labels.names == ("ham", "spam")
    report = prepared.report["files"][str(path)]
    assert report["rows_in"] == n
    spam = sum(label == "spam" for label, _ in lines)
    assert report["label_counts"] == {"ham": n - spam, "spam": spam}
    texts = {t for frame in prepared.splits.values() for t in frame["text"]}
    assert texts == {text for _, text in lines}


def test_pandas_written_tsv_with_quotes_round_trips(tmp_path: Path) -> None:
    data = pd.DataFrame(
        {
            "text": ['he said "hi"', '"quoted start', 'ends with quote"', "tab\tinside", "plain"],
            "label": ["a", "b", "a", "b", "a"],
        }
    )
    path = tmp_path / "pandas.tsv"
    data.to_csv(path, sep="\t")  # pandas quotes fields with quotes or tabs, and writes the index
    frame = read_table(path)
    assert len(frame) == len(data)
    assert frame["text"].tolist() == data["text"].tolist()
    assert frame["label"].tolist() == data["label"].tolist()


def test_pandas_written_tsv_without_index_round_trips(tmp_path: Path) -> None:
    data = pd.DataFrame({"text": ['say "cheese"', '"x" marks'], "label": ["1", "0"]})
    path = tmp_path / "pandas.tsv"
    data.to_csv(path, sep="\t", index=False)
    pd.testing.assert_frame_equal(read_table(path), data, check_dtype=False)


def test_pandas_written_tsv_with_a_newline_in_a_field_round_trips(tmp_path: Path) -> None:
    """A quoted field spanning two lines: only the quoted reading is right, even though a
    plain reading also happens to give one row per line."""
    data = pd.DataFrame({"text": ["line one\nline two", "plain", '"q'], "label": ["a", "b", "a"]})
    path = tmp_path / "multiline.tsv"
    data.to_csv(path, sep="\t", index=False)
    frame = read_table(path)
    assert frame["text"].tolist() == data["text"].tolist()
    assert frame["label"].tolist() == data["label"].tolist()


def test_quoting_none_keeps_quotes_in_csv(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    path.write_text('text,label\n"quoted",a\nplain,b\n', encoding="utf-8")
    assert read_table(path)["text"].tolist() == ["quoted", "plain"]
    assert read_table(path, quoting="none")["text"].tolist() == ['"quoted"', "plain"]


# --- malformed files --------------------------------------------------------------------------


def test_ragged_csv_row_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("text,label\ngood,pos\nbad,row,extra\nfine,neg\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        prepare_classification(DataConfig(train_file=str(path)), seed=0)
    message = str(info.value)
    assert str(path) in message
    assert "line 3" in message
    assert "malformed CSV" in message


def test_non_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(b"text,label\nfine,pos\nok,neg\ncaf\xe9 au lait,pos\n")
    with pytest.raises(DataError) as info:
        read_table(path)
    message = str(info.value)
    assert str(path) in message
    assert "line 4 is not valid UTF-8" in message
    assert "0xe9" in message


def test_non_utf8_tsv_through_prepare(tmp_path: Path) -> None:
    path = tmp_path / "latin1.tsv"
    path.write_bytes(b"ham\tfine\nspam\tna\xefve\n")
    with pytest.raises(DataError, match="line 2 is not valid UTF-8"):
        prepare_classification(DataConfig(train_file=str(path)), seed=0)


def test_missing_label_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "nolabel.csv"
    path.write_text("text,label\na,pos\nb,neg\nc,\nd,pos\ne,   \n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        prepare_classification(DataConfig(train_file=str(path)), seed=0)
    message = str(info.value)
    assert str(path) in message
    assert "2 rows have no 'label'" in message
    assert "first at data row 3" in message


@pytest.mark.parametrize("content", ["", "text,label\n"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as info:
        prepare_classification(DataConfig(train_file=str(path)), seed=0)
    assert str(path) in str(info.value)
    assert ("empty" if not content else "no data rows") in str(info.value)


# --- empty texts ------------------------------------------------------------------------------


def file_with_empty_texts(tmp_path: Path) -> Path:
    texts = [f"sentence number {i}" for i in range(40)]
    texts[4] = ""
    texts[17] = "   "
    pd.DataFrame({"text": texts, "label": ["pos", "neg"] * 20}).to_csv(
        tmp_path / "empty_texts.csv", index=False
    )
    return tmp_path / "empty_texts.csv"


def test_empty_text_dropped_and_counted(tmp_path: Path) -> None:
    path = file_with_empty_texts(tmp_path)
    cfg = DataConfig(train_file=str(path), clean={"empty_text": "drop"})
    prepared = prepare_classification(cfg, seed=0)
    report = prepared.report["files"][str(path)]
    assert report["dropped"]["empty_text"] == 2
    assert report["rows_in"] == 40
    assert report["rows_in"] == report["rows_out"] + sum(report["dropped"].values())
    rows = sorted(r for frame in prepared.splits.values() for r in frame["row"])
    assert rows == [r for r in range(1, 41) if r not in (5, 18)]  # source rows stay true


def test_empty_text_is_an_error_by_default(tmp_path: Path) -> None:
    path = file_with_empty_texts(tmp_path)
    with pytest.raises(DataError) as info:
        prepare_classification(DataConfig(train_file=str(path)), seed=0)
    message = str(info.value)
    assert str(path) in message
    assert "2 rows have an empty 'text'" in message
    assert "first at data row 5" in message
    assert "data.clean.empty_text=drop" in message
