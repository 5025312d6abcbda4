"""The memory-mapped cleaning pass gives the report and rows the pandas pass gives."""

import json
import random
from pathlib import Path

import pytest

from tunelab.config.schema import DataConfig
from tunelab.data import _load_labelled, mapped
from tunelab.data.clean import clean_frame
from tunelab.errors import DataError


def _write(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w") as handle:
        handle.write("text,label\n")
        for text, label in rows:
            handle.write(f'"{text}",{label}\n')
    return path


def _rows(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    rows = [
        (f"text number {rng.randint(0, n)}  with words", rng.choice(["pos", "neg"]))
        for _ in range(n)
    ]
    return [*rows, ("", "pos"), ("x", "neg")]


def _pandas_report(path: Path, cfg: DataConfig) -> tuple[dict, list[int]]:
    frame, _, _, empty = _load_labelled(path, cfg, warnings=[])
    kept, report = clean_frame(frame, cfg.clean)
    if empty:
        report["rows_in"] += empty
        report["dropped"] = {"empty_text": empty, **report["dropped"]}
    return report, sorted(kept["row"].tolist())


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "cache"))


def test_mapped_clean_report_and_rows_match_pandas(tmp_path):
    path = _write(tmp_path / "train.csv", _rows(3000))
    cfg = DataConfig(train_file=str(path), clean={"empty_text": "drop", "min_chars": 2})
    kept, report = mapped.prepare_file(path, cfg, [])
    expected, rows = _pandas_report(path, cfg)
    assert report["conflicts"]["texts"] > 0 and report["dropped"]["exact_duplicate"] > 0
    assert json.loads(json.dumps(report, sort_keys=True, default=str)) == json.loads(
        json.dumps(expected, sort_keys=True, default=str)
    )
    assert sorted(kept.frame["row"].tolist()) == rows


def test_mapped_empty_text_refused_with_one_line(tmp_path):
    path = _write(tmp_path / "train.csv", _rows(50))
    cfg = DataConfig(train_file=str(path))
    with pytest.raises(DataError, match=r"empty 'text'.*data\.clean\.empty_text=drop") as err:
        mapped.prepare_file(path, cfg, [])
    assert "\n" not in str(err.value)
