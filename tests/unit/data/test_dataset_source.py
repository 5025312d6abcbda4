"""data.dataset: datasets by name, offline, from a save_to_disk folder, a folder of data files,
and the datasets cache a hub download leaves behind (written by `datasets`' own builder)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import datasets
import pandas as pd
import pytest
import yaml

from conftest import toy_sentiment
from tunelab.config import DataConfig
from tunelab.data import prepare_classification
from tunelab.data.dataset_source import _named, dataset_record, split_files
from tunelab.errors import ConfigError, DataError
from tunelab.workflows.check import build_checked

LABELS = ["negative", "positive"]


@pytest.fixture(autouse=True)
def _fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Each test gets its own datasets cache, and nothing is remembered between tests."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "datasets-cache"))
    _named.cache_clear()
    yield
    _named.cache_clear()


def _as_dataset(frame: pd.DataFrame, labelled: bool = True) -> datasets.Dataset:
    features = datasets.Features(
        {"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=LABELS)}
    )
    ids = [LABELS.index({"neg": "negative", "pos": "positive"}[v]) for v in frame["label"]]
    return datasets.Dataset.from_dict(
        {"sentence": list(frame["text"]), "label": ids if labelled else [-1] * len(ids)},
        features=features,
    )


@pytest.fixture
def saved_glue_like(tmp_path: Path) -> Path:
    """train / validation / an unlabelled test split (labels -1), as GLUE ships SST-2."""
    folder = tmp_path / "sst2-like"
    datasets.DatasetDict(
        {
            "train": _as_dataset(toy_sentiment(200, seed=1)),
            "validation": _as_dataset(toy_sentiment(40, seed=2)),
            "test": _as_dataset(toy_sentiment(40, seed=3), labelled=False),
        }
    ).save_to_disk(str(folder))
    return folder


def test_a_save_to_disk_folder_flows_through_the_file_pipeline(
    saved_glue_like: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = DataConfig(dataset=str(saved_glue_like))
    data = prepare_classification(cfg, seed=0)
    assert list(data.labels.names) == LABELS  # class ids written as their names
    assert data.text_column == "sentence"
    assert data.origin == {
        "train": "file",
        "validation": "file",
        "test": "carved from train",  # the -1 split is not used as a test split
    }
    assert (
        len(data.splits["validation"]) + len(data.splits["test"]) + len(data.splits["train"]) <= 240
    )
    assert "'test' split has no labels" in capsys.readouterr().err
    files = split_files(cfg)
    assert files["test"] is None and Path(str(files["train"])).suffix == ".parquet"
    assert set(data.files) == {files["train"], files["validation"]}  # sha256 recorded per file
    assert dataset_record(cfg) == {
        "name": str(saved_glue_like),
        "config": None,
        "revision": None,
        "commit": None,
        "splits": {"train": "train", "validation": "validation"},
    }


def test_the_parquet_copy_is_named_by_content_and_written_once(saved_glue_like: Path) -> None:
    cfg = DataConfig(dataset=str(saved_glue_like))
    first = split_files(cfg)
    _named.cache_clear()
    again = split_files(cfg)
    assert first == again
    folder = Path(str(first["train"])).parent
    assert sorted(p.name.split("-")[0] for p in folder.iterdir()) == ["train", "validation"]
    assert not list(folder.glob("*.partial"))


def test_a_folder_of_data_files_and_a_split_mapping(tmp_path: Path) -> None:
    folder = tmp_path / "files"
    folder.mkdir()
    toy_sentiment(120, seed=4).to_csv(folder / "train.csv", index=False)
    toy_sentiment(30, seed=5).to_csv(folder / "dev.csv", index=False)  # datasets: "validation"
    # The GLUE habit: the labelled dev split is the test split, validation is carved from train.
    cfg = DataConfig(dataset=str(folder), dataset_splits={"test": "validation"})
    data = prepare_classification(cfg, seed=0)
    assert data.origin["test"] == "file" and data.origin["validation"] == "carved from train"
    assert len(data.splits["test"]) == 30
    assert list(data.labels.names) == ["neg", "pos"]


def test_a_split_that_does_not_exist_is_one_line_with_the_splits_it_has(
    saved_glue_like: Path,
) -> None:
    cfg = DataConfig(dataset=str(saved_glue_like), dataset_splits={"validation": "validaton"})
    with pytest.raises(DataError) as caught:
        split_files(cfg)
    text = str(caught.value)
    assert "\n" not in text
    assert "no split 'validaton'" in text and "validation" in text and "train" in text


def _cache_as_a_hub_download(cache: Path, repo_id: str, splits: dict[str, pd.DataFrame]) -> None:
    """What `load_dataset(repo_id)` leaves in HF_DATASETS_CACHE, written by datasets' Parquet
    builder: <namespace>___<name>/<config>/<version>/<hash>/<name>-<split>.arrow."""
    from datasets.packaged_modules.parquet.parquet import Parquet

    namespace, name = repo_id.split("/")
    sources = cache.parent / "sources"
    sources.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, frame in splits.items():
        files[split] = str(sources / f"{split}.parquet")
        frame.to_parquet(files[split])
    builder = Parquet(
        cache_dir=str(cache),
        dataset_name=name,
        data_files=files,
        hash="0" * 16,
        config_id="default",
    )
    builder.download_and_prepare()
    shutil.move(cache / name, cache / f"{namespace}___{name}")


def test_a_hub_id_in_the_datasets_cache_resolves_offline(tmp_path: Path) -> None:
    cache = Path(datasets.config.HF_DATASETS_CACHE)
    _cache_as_a_hub_download(
        cache,
        "tunelab-test/tiny-sentiment",
        {"train": toy_sentiment(100, seed=6), "test": toy_sentiment(20, seed=7)},
    )
    cfg = DataConfig(dataset="tunelab-test/tiny-sentiment")
    data = prepare_classification(cfg, seed=0)
    assert data.origin["test"] == "file" and len(data.splits["test"]) == 20
    assert data.text_column == "text"


def test_a_hub_id_that_is_not_cached_offline_is_one_line_with_both_fixes() -> None:
    with pytest.raises(DataError) as caught:
        split_files(DataConfig(dataset="tunelab-test/not-there"))
    text = str(caught.value)
    assert "\n" not in text
    assert "'tunelab-test/not-there' is not in the datasets cache" in text
    assert "HF_HUB_OFFLINE=0" in text and "data.train_file" in text


def test_the_schema_refuses_a_dataset_beside_files_and_orphan_dataset_keys(
    toy_csv: Path, tiny_bert_dir: Path
) -> None:
    model = {"name": str(tiny_bert_dir)}
    with pytest.raises(
        ConfigError, match=re.escape("data.dataset and data.train_file are both set")
    ):
        build_checked({"data": {"dataset": "x/y", "train_file": str(toy_csv)}, "model": model})
    with pytest.raises(ConfigError, match=re.escape("data.dataset_config applies to data.dataset")):
        build_checked(
            {"data": {"train_file": str(toy_csv), "dataset_config": "sst2"}, "model": model}
        )
    with pytest.raises(ConfigError, match=re.escape("data.format=csv applies to files")):
        build_checked({"data": {"dataset": "x/y", "format": "csv"}, "model": model})
    with pytest.raises(ConfigError, match=re.escape("or data.dataset to a dataset name")):
        build_checked({"model": model})


def test_train_on_a_dataset_by_name_records_it_in_the_run_card(
    saved_glue_like: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    from tunelab.workflows.train import train

    cfg = build_checked(
        {
            "data": {"dataset": str(saved_glue_like), "max_length": 16},
            "model": {"name": str(tiny_bert_dir)},
            "train": {"epochs": 1, "batch_size": 16, "precision": "fp32", "lr": 5e-3},
            "eval": {"baselines": False},
            "output": {"dir": str(tmp_path / "runs"), "name": "named"},
        }
    )
    result = train(cfg)
    card = json.loads((Path(result.run_dir) / "run_card.json").read_text())
    assert card["dataset"]["name"] == str(saved_glue_like)
    assert card["dataset"]["splits"] == {"train": "train", "validation": "validation"}
    saved = yaml.safe_load((Path(result.run_dir) / "config.yaml").read_text())
    assert saved["data"]["dataset"] == str(saved_glue_like) and saved["data"]["train_file"] is None


def test_config_validate_of_a_missing_dataset_is_one_line_and_exit_2(
    tmp_path: Path, tiny_bert_dir: Path
) -> None:
    config = tmp_path / "named.yaml"
    config.write_text(
        yaml.safe_dump(
            {"data": {"dataset": "tunelab-test/absent"}, "model": {"name": str(tiny_bert_dir)}}
        )
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf"),
    }
    result = subprocess.run(
        [str(Path(sys.executable).with_name("tunelab")), "config", "validate", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "tunelab-test/absent" in lines[0] and "HF_HUB_OFFLINE=0" in lines[0]
