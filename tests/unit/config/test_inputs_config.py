"""Configs: an alias bomb is refused while composing (issue 15, finding 5), printed values are
capped, and unknown keys named as other tools name them get the tunelab key (finding 8)."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest
import yaml

from inputs_cli import MAX_LINE, assert_one_line, invoke
from tunelab.config import MAX_YAML_NODES, expanded_size, parse_yaml
from tunelab.errors import ConfigError
from tunelab.workflows.check import load_checked as load_config

BILLION_LAUGHS = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]"
            for previous, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "train: {lr: *i}",
    ]
)


def test_a_billion_laughs_config_is_refused_fast_and_small(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BILLION_LAUGHS)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        outcome = invoke("config", "validate", path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    line = assert_one_line(outcome, "refused", "aliases", f"{MAX_YAML_NODES:,}")
    assert "Fix the syntax" not in line  # the syntax is fine; the size is not
    assert time.perf_counter() - started < 10
    assert peak < 50 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def test_an_alias_bomb_in_an_override_is_refused(tmp_path: Path) -> None:
    value = BILLION_LAUGHS.replace("\n", ", ").replace("train: {lr: *i}", "z: *i")
    with pytest.raises(ConfigError, match="refused: its aliases"):
        load_config(None, ["data.train_file=x.csv", "train.lr={" + value + "}"])


def test_aliases_within_the_limit_still_work(tmp_path: Path) -> None:
    loaded = parse_yaml("base: &b {lr: 0.001, epochs: 2}\ntrain:\n  <<: *b\n  epochs: 3\n")
    assert loaded["train"] == {"lr": 0.001, "epochs": 3}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a: &r [1, *r]\n", "refers to the collection that contains it"),
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nests too deeply"),
    ],
)
def test_recursive_and_deep_yaml_is_one_line(tmp_path: Path, text: str, fragment: str) -> None:
    path = tmp_path / "odd.yaml"
    path.write_text(text)
    assert_one_line(invoke("config", "validate", path), fragment)


def test_expanded_size_counts_shared_nodes_once_per_use() -> None:
    node = yaml.compose("a: &a [1, 2]\nb: [*a, *a, *a]\n", Loader=yaml.SafeLoader)
    # mapping + 2 keys + a's list (3) + b's list (1 + 3 * 3)
    assert expanded_size(node, 1000) == 1 + 2 + 3 + 10
    with pytest.raises(yaml.YAMLError):
        expanded_size(node, 10)


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [
        ("train.learning_rate", "train.lr"),
        ("train.num_train_epochs", "train.epochs"),
        ("train.per_device_train_batch_size", "train.batch_size"),
        ("train.gradient_accumulation_steps", "train.grad_accum"),
        ("train.max_seq_length", "data.max_length"),
        ("data.learning_rate", "train.lr"),
    ],
)
def test_other_tools_key_names_get_the_tunelab_key(
    tmp_path: Path, key: str, suggestion: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, ["data.train_file=x.csv", f"{key}=1"])
    problem = next(p for p in info.value.problems if "unknown key" in p)
    assert f"Did you mean '{suggestion}'" in problem, problem
    assert len(problem) < MAX_LINE, problem


def test_printed_values_are_capped(tmp_path: Path) -> None:
    path = tmp_path / "long.yaml"
    path.write_text(f"train:\n  lr: {'x' * 10_000}\n  epochs: [{', '.join(['1'] * 5000)}]\n")
    outcome = invoke("config", "validate", path)
    assert outcome.kind == "error", outcome.detail
    lines = outcome.stderr.splitlines()
    assert all(len(line) < MAX_LINE for line in lines), max(lines, key=len)
    assert "xxxx…" in outcome.stderr


def test_a_flood_of_problems_is_counted_not_listed(tmp_path: Path) -> None:
    keys = "\n".join(f"  unknown_{i}: 1" for i in range(50))
    path = tmp_path / "many.yaml"
    path.write_text(f"train:\n{keys}\n")
    outcome = invoke("config", "validate", path)
    assert outcome.kind == "error", outcome.detail
    assert "… and 40 more problems" in outcome.stderr
    assert len(outcome.stderr.splitlines()) == 12  # the header, 10 problems, the count


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("train:\n  lr: 0.1\n".encode("utf-16"), "UTF-16"),
        (b"train:\n  name: caf\xe9\n", "line 2 is not valid UTF-8"),
        (b"PK\x03\x04" + b"\x00" * 40, "zip"),
    ],
)
def test_a_config_in_the_wrong_encoding_is_one_line(
    tmp_path: Path, content: bytes, fragment: str
) -> None:
    path = tmp_path / "run.yaml"
    path.write_bytes(content)
    assert_one_line(invoke("config", "validate", path), fragment)


def test_a_data_file_passed_as_config_is_refused_by_size(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("# padding\n" * 200_000)
    assert_one_line(invoke("config", "validate", path), "a run config is a few KB")


@pytest.mark.parametrize("value", ["a\x00b.csv", "x" * 5000 + ".csv"])
def test_unusable_data_paths_are_reported_not_raised(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, [f"data.train_file={value}"])
    assert any("data.train_file" in p and len(p) < MAX_LINE for p in info.value.problems)
