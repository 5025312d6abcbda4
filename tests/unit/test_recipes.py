"""Every shipped recipe validates (data paths resolve, keys and values are known) and reads
nothing outside the repository, so a fresh clone on any machine runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunelab.workflows.check import load_checked as load_config

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))


def test_there_are_recipes() -> None:
    assert RECIPES


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipe_validates(recipe: Path) -> None:
    config = load_config(recipe)
    assert config.data.train_file is not None
    for path in (config.data.train_file, config.data.validation_file, config.data.test_file):
        assert path is None or Path(path).is_file(), f"{recipe.name}: {path} does not exist"
    header = recipe.read_text().splitlines()[0]
    assert header.startswith("#"), (
        f"{recipe.name} must start with a comment saying what it reproduces"
    )


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipe_reads_nothing_outside_the_repository(recipe: Path) -> None:
    """Paths as the loader resolves them (relative to the recipe), symlinks followed."""
    config = load_config(recipe)
    paths = [config.data.train_file, config.data.validation_file, config.data.test_file]
    model = config.model.name
    if not model.startswith("package:") and ("/" not in model or model.startswith((".", "/"))):
        paths.append(model)  # a local model directory, not a hub id or a package
    for path in filter(None, paths):
        resolved = Path(path).resolve()
        assert resolved.is_relative_to(ROOT), f"{recipe.name} reads {resolved}, outside {ROOT}"
