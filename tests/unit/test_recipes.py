"""Every shipped recipe validates (data paths resolve, keys and values are known)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunelab.workflows.check import load_checked as load_config

RECIPES = sorted((Path(__file__).resolve().parents[2] / "recipes").glob("*.yaml"))


def test_there_are_recipes() -> None:
    assert RECIPES


SHARED = Path(__file__).resolve().parents[3] / "shared"


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipe_validates(recipe: Path) -> None:
    if "shared/data" in recipe.read_text() and not SHARED.is_dir():
        pytest.skip(
            f"{recipe.name} reads ../shared/data, which is not beside this checkout ({SHARED})"
        )
    config = load_config(recipe)
    assert config.data.train_file is not None
    for path in (config.data.train_file, config.data.validation_file, config.data.test_file):
        assert path is None or Path(path).is_file(), f"{recipe.name}: {path} does not exist"
    header = recipe.read_text().splitlines()[0]
    assert header.startswith("#"), (
        f"{recipe.name} must start with a comment saying what it reproduces"
    )
