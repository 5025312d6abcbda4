"""Every shipped recipe validates (data paths resolve, keys and values are known) and reads
nothing outside the repository, so a fresh clone on any machine runs it."""

from __future__ import annotations

import shlex
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


def _by_name_commands() -> list[tuple[Path, list[str]]]:
    """The 'full set by name' commands written in the recipes' headers, as override lists."""
    found = []
    for recipe in RECIPES:
        for line in recipe.read_text().splitlines():
            if line.startswith("#") and "data.dataset=" in line:
                words = shlex.split(line.lstrip("# "))
                assert words[:2] in (["tunelab", "train"], ["tunelab", "search"]), line
                assert words[2] == f"recipes/{recipe.name}", line
                found.append((recipe, words[3:]))
    return found


BY_NAME = _by_name_commands()
# What each named dataset looks like on the hub (columns, features and splits from its card), so
# the header's command is tried on a local copy of the same shape: the columns must be found.
HUB_SHAPES: dict[str, tuple[dict[str, object], tuple[str, ...]]] = {
    "nyu-mll/glue": (
        {"sentence": "string", "label": ["negative", "positive"], "idx": "int32"},
        ("train", "validation", "test"),
    ),
    "ucirvine/sms_spam": ({"sms": "string", "label": ["ham", "spam"]}, ("train",)),
    "openai/gsm8k": ({"question": "string", "answer": "string"}, ("train", "test")),
}


def test_the_recipes_name_their_full_datasets() -> None:
    named = {
        dict(o.split("=", 1) for o in overrides if "=" in o)["data.dataset"]
        for _, overrides in BY_NAME
    }
    assert named == set(HUB_SHAPES)


@pytest.mark.parametrize("recipe, overrides", BY_NAME, ids=[r.name for r, _ in BY_NAME])
def test_a_by_name_command_loads_a_dataset_of_that_shape(
    recipe: Path, overrides: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datasets

    from tunelab.data.dataset_source import _named
    from tunelab.tasks import task_for

    name = dict(o.split("=", 1) for o in overrides)["data.dataset"]
    columns, splits = HUB_SHAPES[name]
    features = datasets.Features(
        {
            c: datasets.ClassLabel(names=k) if isinstance(k, list) else datasets.Value(str(k))
            for c, k in columns.items()
        }
    )

    def rows(split: str, n: int) -> dict[str, list[object]]:
        values: dict[str, list[object]] = {}
        for c, kind in columns.items():
            if isinstance(kind, list):  # a hidden test split has labels -1, as GLUE's does
                values[c] = [
                    -1 if split == "test" and name == "nyu-mll/glue" else i % 2 for i in range(n)
                ]
            elif kind == "string":
                values[c] = [f"{c} {split} {i} #### {i}" for i in range(n)]
            else:
                values[c] = list(range(n))
        return values

    folder = tmp_path / "shape"
    datasets.DatasetDict(
        {s: datasets.Dataset.from_dict(rows(s, 60), features=features) for s in splits}
    ).save_to_disk(str(folder))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "cache"))
    _named.cache_clear()
    local = [o for o in overrides if not o.startswith(("data.dataset=", "data.dataset_config="))]
    config = load_config(recipe, [*local, f"data.dataset={folder}"])
    data = task_for(config).prepare_data(config)
    assert len(data.splits["train"]) > 0 and len(data.splits["test"]) > 0
    _named.cache_clear()
