"""A run whose train file goes through the memory-mapped path trains like the in-memory run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import tunelab
from tunelab.errors import ConfigError
from tunelab.workflows.check import build_checked as build_config


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets-cache"))


def _config(tiny_config, name: str, memory_mapped: bool):
    raw = tiny_config.to_dict()
    raw["data"].update(memory_mapped=memory_mapped, imbalance={"class_weights": "auto"})
    raw["train"].update(epochs=2)
    raw["eval"].update(baselines=False, forgetting=False)
    raw["output"].update(name=name)
    return build_config(raw)


def _losses(run_dir: Path) -> list[float]:
    lines = (run_dir / "logs" / "train_log.jsonl").read_text().splitlines()
    return [entry["loss"] for entry in map(json.loads, lines) if "loss" in entry]


def test_the_memory_mapped_run_trains_and_scores_like_the_in_memory_run(tiny_config) -> None:
    memory = tunelab.train(_config(tiny_config, "memory", False))
    mapped = tunelab.train(_config(tiny_config, "mapped", True))

    assert _losses(mapped.run_dir) == pytest.approx(_losses(memory.run_dir), abs=1e-6)
    assert mapped.metrics["test"]["accuracy"] == memory.metrics["test"]["accuracy"]
    card = json.loads((mapped.run_dir / "run_card.json").read_text())
    before = json.loads((memory.run_dir / "run_card.json").read_text())
    assert card["data"]["memory_mapped"] is True
    assert card["data"]["splits"] == before["data"]["splits"]
    assert card["split_sha256"]["test"] == before["split_sha256"]["test"]
    assert len(card["split_sha256"]["train"]) == 64

    # a second run reads the cleaned and tokenized train split from the cache
    cache = Path(tiny_config.output.dir).parent / "datasets-cache"
    arrow = sorted(str(p) for p in cache.rglob("*.arrow"))
    # cleaned, leakage near-duplicate pass, train split, tokenized
    assert len([p for p in arrow if "/cache-" in p]) == 4, arrow
    again = tunelab.train(_config(tiny_config, "again", True))
    assert sorted(str(p) for p in cache.rglob("*.arrow")) == arrow
    assert _losses(again.run_dir) == _losses(mapped.run_dir)


def test_k_fold_refuses_a_memory_mapped_train_split(tiny_config) -> None:
    from tunelab.workflows.repeats import cross_validate

    with pytest.raises(ConfigError, match="bigger than memory"):
        cross_validate(_config(tiny_config, "cv", True), 3)
