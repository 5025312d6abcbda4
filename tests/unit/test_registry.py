"""Registry: named plug-ins, refused duplicates, helpful unknown-name errors."""

from __future__ import annotations

import pytest

from tunelab.errors import ConfigError
from tunelab.registry import Registry
from tunelab.suggest import did_you_mean


def make_registry() -> Registry[str]:
    registry: Registry[str] = Registry("widget", "parts.widget")
    registry.register("sprocket")("S")
    registry.register("gear")("G")
    registry.register("flange")("F")
    return registry


def test_register_returns_the_item_and_get_finds_it() -> None:
    registry: Registry[object] = Registry("widget", "parts.widget")

    @registry.register("thing")
    def thing() -> str:
        return "made"

    assert registry.get("thing") is thing
    assert thing() == "made"


def test_contains_and_sorted_iteration() -> None:
    registry = make_registry()
    assert "gear" in registry
    assert "cog" not in registry
    assert list(registry) == ["flange", "gear", "sprocket"]


def test_duplicates_are_refused() -> None:
    registry = make_registry()
    with pytest.raises(ValueError, match=r"widget 'gear' is already registered"):
        registry.register("gear")("another")
    assert registry.get("gear") == "G"


def test_unknown_name_suggests_and_lists_known() -> None:
    registry = make_registry()
    with pytest.raises(ConfigError) as info:
        registry.get("sprockett")
    (problem,) = info.value.problems
    assert "parts.widget must be a known widget; got 'sprockett'." in problem
    assert "Did you mean 'sprocket'?" in problem
    assert problem.endswith("Known: flange, gear, sprocket.")


def test_unknown_name_far_from_all_has_no_suggestion() -> None:
    registry = make_registry()
    with pytest.raises(ConfigError, match=r"Known: flange, gear, sprocket\.") as info:
        registry.get("zzz")
    assert "Did you mean" not in str(info.value)


def test_did_you_mean() -> None:
    assert did_you_mean("lables", ["labels", "text"]) == " Did you mean 'labels'?"
    assert did_you_mean("qqqq", ["labels", "text"]) == ""
    assert did_you_mean("x", []) == ""


def test_real_registries_hold_the_built_ins() -> None:
    from tunelab.methods import METHODS
    from tunelab.tasks import TASKS

    assert "classification" in TASKS
    assert "full" in METHODS
    with pytest.raises(ConfigError, match=r"task\.type must be a known task; got 'regresion'"):
        TASKS.get("regresion")
