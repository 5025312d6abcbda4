"""The memory-mapped cleaning pass gives the report and rows the pandas pass gives."""

import json
import random
from pathlib import Path

import pandas as pd
import pytest

from tunelab.config.schema import DataConfig
from tunelab.data import _load_labelled, mapped, prepare_classification
from tunelab.data.clean import clean_frame
from tunelab.errors import ConfigError, DataError


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


def _sentences(n: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    words = [
        "good",
        "bad",
        "fine",
        "awful",
        "great",
        "plot",
        "actor",
        "scene",
        "music",
        "long",
        "short",
        "film",
        "story",
    ]
    rows = []
    for _ in range(n):
        label = rng.choice(["pos", "neg", "neutral"])
        rows.append((" ".join(rng.choice(words) for _ in range(rng.randint(3, 9))), label))
    return rows


def _prepared(cfg: DataConfig, memory_mapped: bool):
    return prepare_classification(cfg.model_copy(update={"memory_mapped": memory_mapped}), seed=3)


@pytest.mark.parametrize("given", ["train only", "train and validation"])
def test_the_mapped_path_prepares_the_splits_the_in_memory_path_prepares(
    tmp_path, given, monkeypatch
):
    if given == "train and validation":  # cleaning, leakage: the several-process maps
        monkeypatch.setattr(mapped, "PARALLEL_ROWS", 1000)
    train = _write(tmp_path / "train.csv", _sentences(4000, 1))
    files = {"train_file": str(train)}
    if given == "train and validation":
        # some validation texts are train texts, exactly or with one word changed: leakage
        leaking = [(text, label) for text, label in _sentences(4000, 1)[:40]]
        leaking += [(text + " again", label) for text, label in _sentences(4000, 1)[40:80]]
        files["validation_file"] = str(
            _write(tmp_path / "validation.csv", leaking + _sentences(300, 2))
        )
    cfg = DataConfig(**files, leakage={"threshold": 0.6})
    memory, disk = _prepared(cfg, False), _prepared(cfg, True)

    assert disk.labels == memory.labels and disk.origin == memory.origin
    assert disk.summary() == {**memory.summary(), "memory_mapped": True}
    assert disk.report["files"] == memory.report["files"]
    assert disk.report["imbalance"] == memory.report["imbalance"]
    for name in ("exact", "near", "rows"):
        for split in ("validation", "test"):
            assert disk.report["leakage"][split][name] == memory.report["leakage"][split][name]
    if given == "train and validation":
        assert disk.report["leakage"]["validation"]["exact"] >= 40
        assert disk.report["leakage"]["validation"]["near"] > 0
    for split in ("validation", "test"):
        pd.testing.assert_frame_equal(
            disk.splits[split].reset_index(drop=True), memory.splits[split].reset_index(drop=True)
        )
    whole = disk.train_table.to_pandas()[["text", "label", "row"]]
    pd.testing.assert_frame_equal(
        whole, memory.splits["train"][["text", "label", "row"]].reset_index(drop=True)
    )
    assert set(disk.splits["train"]["row"]) <= set(whole["row"])  # the sample: rows of train


def test_settings_that_need_all_texts_in_memory_are_refused_in_one_line(tmp_path):
    train = _write(tmp_path / "train.csv", _sentences(200, 1))
    cfg = DataConfig(train_file=str(train), memory_mapped=True, clean={"near_duplicates": True})
    with pytest.raises(ConfigError, match=r"data\.clean\.near_duplicates needs every train text"):
        prepare_classification(cfg, seed=0)


def test_a_second_preparation_reuses_the_cached_arrow_files(tmp_path):
    train = _write(tmp_path / "train.csv", _sentences(2000, 1))
    cfg = DataConfig(train_file=str(train), memory_mapped=True)
    first = _prepared(cfg, True)
    cached = sorted(p.name for p in mapped.cache_folder().rglob("*.arrow"))
    second = _prepared(cfg, True)
    assert sorted(p.name for p in mapped.cache_folder().rglob("*.arrow")) == cached
    assert second.train_table.cache_files == first.train_table.cache_files
    assert second.train_sha256 == first.train_sha256


def test_config_validate_names_what_the_mapped_path_cannot_do(tmp_path):
    from tunelab.workflows.check import build_checked

    train = _write(tmp_path / "train.csv", _sentences(50, 1))
    raw = {"data": {"train_file": str(train), "memory_mapped": True, "augment": {"enabled": True}}}
    with pytest.raises(ConfigError, match=r"data\.augment needs every train text in memory"):
        build_checked(raw)
    seq2seq = {
        "task": {"type": "seq2seq"},
        "data": {"train_file": str(train), "memory_mapped": True},
    }
    with pytest.raises(ConfigError, match=r"data\.memory_mapped serves sequence classification"):
        build_checked(seq2seq)
