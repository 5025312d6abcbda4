"""Hub ids through the standard Hugging Face cache, with no network.

A tiny model is placed in a temporary cache in the hub's own on-disk layout (blobs, snapshots of
a commit, refs); `huggingface_hub.scan_cache_dir` reading it back is the proof that the layout is
the real one, and resolution goes through `snapshot_download`, as it does on a user's machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import huggingface_hub.constants as hub_constants
import pytest
from huggingface_hub import scan_cache_dir
from huggingface_hub.file_download import repo_folder_name

from tunelab.errors import ModelError
from tunelab.models import hub_commit, model_dir_for, resolve_model_dir
from tunelab.models.sources import _hub_dir

COMMIT = "0123456789abcdef0123456789abcdef01234567"
OTHER_COMMIT = "89abcdef0123456789abcdef0123456789abcdef"


def cache_repo(
    cache: Path,
    repo_id: str,
    files: Path,
    commit: str = COMMIT,
    refs: tuple[str, ...] = ("main",),
    skip: tuple[str, ...] = (),
) -> Path:
    """Put the files of the directory `files` into `cache` as the hub does: content-addressed
    blobs, `snapshots/<commit>/` links to them, and `refs/<name>` holding the commit."""
    repo = cache / repo_folder_name(repo_id=repo_id, repo_type="model")
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir(exist_ok=True)
    for path in sorted(files.iterdir()):
        if not path.is_file() or path.name in skip:
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        blob = repo / "blobs" / digest
        if not blob.exists():
            shutil.copyfile(path, blob)
        os.symlink(os.path.relpath(blob, snapshot), snapshot / path.name)
    for ref in refs:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / ref).write_text(commit, encoding="utf-8")
    return snapshot


@pytest.fixture
def hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache standing in for ~/.cache/huggingface/hub; downloads off (as on our machines)."""
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    _hub_dir.cache_clear()
    yield cache
    _hub_dir.cache_clear()


def test_an_id_in_the_cache_resolves_offline_by_id_and_by_revision(
    hub_cache: Path, tiny_bert_dir: Path
) -> None:
    first = cache_repo(hub_cache, "acme/tiny-bert", tiny_bert_dir)
    second = cache_repo(
        hub_cache, "acme/tiny-bert", tiny_bert_dir, commit=OTHER_COMMIT, refs=("v2",)
    )
    revisions = {
        r.commit_hash: sorted(r.refs)
        for repo in scan_cache_dir(hub_cache).repos
        for r in repo.revisions
    }
    assert revisions == {COMMIT: ["main"], OTHER_COMMIT: ["v2"]}  # the hub reads our layout

    assert resolve_model_dir("acme/tiny-bert") == first  # refs/main
    assert resolve_model_dir("acme/tiny-bert", revision="v2") == second  # a tag
    assert resolve_model_dir("acme/tiny-bert", revision=OTHER_COMMIT) == second  # a commit
    assert hub_commit(first) == COMMIT and hub_commit(second) == OTHER_COMMIT
    assert hub_commit(tiny_bert_dir) is None  # a plain directory has no commit
    assert (first / "config.json").is_symlink()  # the snapshot itself, no copy


def test_a_bare_name_resolves_like_bert_base_uncased(hub_cache: Path, tiny_bert_dir: Path) -> None:
    snapshot = cache_repo(hub_cache, "bert-tiny-uncased", tiny_bert_dir)
    assert resolve_model_dir("bert-tiny-uncased") == snapshot


def test_a_local_directory_wins_over_an_id_of_the_same_name(
    hub_cache: Path, tiny_bert_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache_repo(hub_cache, "acme/tiny-bert", tiny_bert_dir)
    local = tmp_path / "work" / "acme" / "tiny-bert"
    shutil.copytree(tiny_bert_dir, local)
    monkeypatch.chdir(tmp_path / "work")
    assert resolve_model_dir("acme/tiny-bert") == local.resolve()


def test_a_cached_repo_with_only_pickle_weights_is_refused(
    hub_cache: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_bert_dir, pickled)
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    cache_repo(hub_cache, "acme/old-bert", pickled)
    with pytest.raises(ModelError, match=r"only pickle weights \(pytorch_model\.bin\)"):
        resolve_model_dir("acme/old-bert")


def test_a_missing_id_offline_is_one_line_with_both_fixes(hub_cache: Path) -> None:
    with pytest.raises(ModelError) as info:
        resolve_model_dir("acme/not-cached")
    message = str(info.value)
    assert "'acme/not-cached' is neither a local directory nor in the Hugging Face cache" in message
    assert str(hub_cache) in message and "downloads are off" in message
    assert "HF_HUB_OFFLINE=0" in message and "local model directory" in message
    assert "\n" not in message


def test_a_revision_that_is_not_cached_is_named(hub_cache: Path, tiny_bert_dir: Path) -> None:
    cache_repo(hub_cache, "acme/tiny-bert", tiny_bert_dir)
    with pytest.raises(
        ModelError,
        match=r"'acme/tiny-bert@v9' is neither a local directory nor in the Hugging Face cache",
    ):
        resolve_model_dir("acme/tiny-bert", revision="v9")


def test_online_with_the_hub_unreachable_uses_the_cache_or_says_so(
    hub_cache: Path, tiny_bert_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Downloads on (HF_HUB_OFFLINE=0) but nothing listens at the endpoint: a cached id still
    resolves; a missing one is announced as a download, then ends in one line."""
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub_constants, "ENDPOINT", "http://127.0.0.1:9")  # discard port: refused
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "2")
    snapshot = cache_repo(hub_cache, "acme/tiny-bert", tiny_bert_dir)
    assert resolve_model_dir("acme/tiny-bert") == snapshot
    with pytest.raises(ModelError) as info:
        resolve_model_dir("acme/elsewhere")
    message = str(info.value)
    assert "'acme/elsewhere'" in message and "\n" not in message
    assert "local model directory" in message
    assert "downloading its safetensors weights" in capsys.readouterr().err


def test_a_run_records_the_commit_it_trained_on_and_its_adapter_reloads_at_it(
    hub_cache: Path, tiny_bert_dir: Path, toy_csv: Path, tmp_path: Path
) -> None:
    from tunelab.runs import load_predictor
    from tunelab.workflows.check import build_checked
    from tunelab.workflows.train import train

    snapshot = cache_repo(hub_cache, "acme/tiny-bert", tiny_bert_dir, refs=("main", "v1"))
    cfg = build_checked(
        {
            "data": {"train_file": str(toy_csv), "max_length": 16},
            "model": {"name": "acme/tiny-bert", "revision": "v1"},
            "method": {"name": "lora"},
            "train": {"epochs": 1, "batch_size": 32, "precision": "fp32", "seed": 3},
            "output": {"dir": str(tmp_path / "runs"), "name": "from-hub"},
        }
    )
    assert model_dir_for(cfg.model) == snapshot
    result = train(cfg)
    card = json.loads((result.run_dir / "run_card.json").read_text())
    assert card["model"]["source"] == "acme/tiny-bert"
    assert card["model"]["revision"] == "v1"
    assert card["model"]["commit"] == COMMIT
    assert card["model"]["resolved_dir"] == str(snapshot)
    # the adapter's base is found again through the cache when the recorded path is gone
    card["model"]["resolved_dir"] = str(tmp_path / "moved-away")
    (result.run_dir / "run_card.json").write_text(json.dumps(card))
    ids, probabilities = load_predictor(result.run_dir).predict(["good film", "bad film"])
    assert ids.shape == (2,) and probabilities.shape == (2, 2)
