"""Known facts of the shared real data sets, checked through prepare_classification's report.

The data lives outside the repository (../shared/data from the repo root); the tests skip
when it is not there. Nothing is trained.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tunelab.config import DataConfig
from tunelab.data import prepare_classification

DATA = Path(__file__).resolve().parents[4] / "shared" / "data"


def shared_file(relative: str) -> Path:
    path = DATA / relative
    if not path.is_file():
        pytest.skip(f"shared data set not available: {path} (CI provides ../shared/data)")
    return path


@pytest.mark.parametrize("relative", ["sms_spam/SMSSpamCollection.tsv", "sms_spam/sms_spam.jsonl"])
def test_sms_spam_collection_facts(relative: str) -> None:
    path = shared_file(relative)
    prepared = prepare_classification(DataConfig(train_file=str(path)), seed=42)
    report = prepared.report["files"][str(path)]
    assert report["rows_in"] == 5574
    assert report["label_counts"] == {"ham": 4827, "spam": 747}
    assert report["label_counts"]["spam"] / report["rows_in"] == pytest.approx(0.134, abs=5e-4)
    assert report["raw"] == {"rows_repeating_earlier": 403, "distinct_texts_repeated": 281}
    assert report["conflicts"]["texts"] == 0
    assert report["conflicts"]["rows"] == 0
    assert prepared.labels.names == ("ham", "spam")
    # the TSV has no header: its columns are guessed; the JSONL names them
    columns = ("col1", "col0") if path.suffix == ".tsv" else ("text", "label")
    assert (prepared.text_column, prepared.label_column) == columns
    assert report["rows_in"] == report["rows_out"] + sum(report["dropped"].values())
    assert sum(len(frame) for frame in prepared.splits.values()) == report["rows_out"]


def test_sst2_train_facts_and_no_dev_sentence_in_train() -> None:
    train = shared_file("sst2/train.tsv")
    dev = shared_file("sst2/dev.tsv")
    prepared = prepare_classification(
        DataConfig(train_file=str(train), test_file=str(dev)), seed=42
    )
    report = prepared.report["files"][str(train)]
    assert report["rows_in"] == 67349
    assert report["raw"]["rows_repeating_earlier"] == 371
    assert report["conflicts"]["texts"] == 5
    assert report["rows_in"] == report["rows_out"] + sum(report["dropped"].values())
    assert prepared.report["files"][str(dev)]["rows_in"] == 872
    assert prepared.report["leakage"]["test"]["exact"] == 0
    assert len(prepared.splits["test"]) == 872  # warn keeps every dev row
