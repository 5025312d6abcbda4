"""`tunelab config validate`: every check a config gets before any weights load, in one place.

`train`, `data inspect`, `cv`, `train --seeds` and `search` run `check` first, so a config that
validates does not fail at start for a reason validation could have seen. Order: the schema
and the config's own cross-field checks (`RunConfig.problems`, no plug-ins needed) first; when
those pass, the checks that need the registries and the model: the task, the method and the
model exist, each registered task and method's own checks (a CUDA GPU for qlora, a chat
template that can mask prompts for instruction tuning), tracking, and the model's limits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunelab.config import RunConfig, build_config, load_config
from tunelab.errors import ConfigError, DataError, ModelError
from tunelab.models import model_dir_for
from tunelab.models.context import context_of, rope_problem
from tunelab.suggest import did_you_mean, short_text
from tunelab.training.distributed import strategy_problems
from tunelab.training.tracking import check_tracking


def check(cfg: RunConfig, source: str | None = None) -> RunConfig:
    """Return `cfg`, or raise one ConfigError listing every problem found."""
    found = cfg.problems()
    found += more_problems(cfg, found)
    if found:
        raise ConfigError(found, source)
    return cfg


def load_checked(
    path: str | Path | None, overrides: list[str] | None = None, base: dict[str, Any] | None = None
) -> RunConfig:
    """`load_config` with every check below, all reported together: what every command loads."""
    return load_config(path, overrides, base, lambda cfg: more_problems(cfg, cfg.problems()))


def build_checked(raw: dict[str, Any], source: str | None = None) -> RunConfig:
    return build_config(raw, source, lambda cfg: more_problems(cfg, cfg.problems()))


def more_problems(cfg: RunConfig, found: list[str]) -> list[str]:
    """What the config alone cannot see. The model is looked up always (no torch needed); the
    registries and the model's limits only when nothing else is wrong, so that a config with a
    typo is answered before torch and the plug-ins load."""
    more = model_problems(cfg)
    if not found and not more:
        more = dataset_problems(cfg) + memory_mapped_problems(cfg)
    if not found and not more:
        more = plugin_problems(cfg)
    return more


def dataset_problems(cfg: RunConfig) -> list[str]:
    """data.dataset must load (from the cache, or the hub when downloads are on) and have the
    splits asked for; loaded once per process, so train reuses what validate read."""
    if cfg.data.dataset is None:
        return []
    from tunelab.data.dataset_source import split_files  # pandas and datasets: only when named

    try:
        split_files(cfg.data)
    except DataError as exc:
        return [str(exc)]
    return []


def memory_mapped_problems(cfg: RunConfig) -> list[str]:
    """data.memory_mapped serves classification, without the settings that need every text at once."""
    if cfg.data.memory_mapped is False:
        return []
    if cfg.task.type != "classification":
        if cfg.data.memory_mapped is True:
            return [
                f"data.memory_mapped serves sequence classification; this config is {cfg.task.type}. "
                "Drop data.memory_mapped, or set it to auto."
            ]
        return []
    if cfg.data.dataset is not None or cfg.data.train_file is None:
        return []
    from tunelab.data import mapped

    return mapped.unsupported(cfg.data) if mapped.wanted(cfg.data, cfg.data.train_file) else []


def model_problems(cfg: RunConfig) -> list[str]:
    """model.name must resolve to a model directory (a local one, or an installed package)."""
    if len(cfg.model.name) > 200 or not cfg.model.name.isprintable():
        return []  # RunConfig.problems reported it
    try:
        model_dir_for(cfg.model)
    except ModelError as exc:
        return [f"model.name: {exc}"]
    return []


def plugin_problems(cfg: RunConfig) -> list[str]:
    """Problems only the registered tasks and methods, or the model itself, can see."""
    from tunelab.methods import METHODS  # the plug-ins (and torch) load only for a config
    from tunelab.tasks import TASKS  # that passed every check before this one

    found: list[str] = []
    model_dir = model_dir_for(cfg.model)
    task = TASKS.get(cfg.task.type) if cfg.task.type in TASKS else None
    method = METHODS.get(cfg.method.name) if cfg.method.name in METHODS else None
    if task is None:  # the value printed is capped: it may be any string
        found.append(TASKS.unknown_message(short_text(cfg.task.type, 40)))
    if method is None:
        found.append(METHODS.unknown_message(short_text(cfg.method.name, 40)))
    vocabulary = cfg.model.vocabulary
    if method is not None and method.adapter_only and (vocabulary.add_tokens or vocabulary.mine):
        found.append(
            f"model.vocabulary adds tokens, but method {method.name} saves only an adapter, which cannot "
            "carry new embedding rows. Use method full, freeze or gradual_unfreeze (llrd combines with them)."
        )
    if method is not None:
        found.extend(method.checks(cfg))
    if task is not None and method is not None and method.name in task.refused_methods:
        found.append(
            f"method {method.name} does not work with task {task.name} ({task.refused_methods[method.name]})."
        )
    if task is not None:
        found.extend(task.checks(cfg))
    try:
        check_tracking(cfg)
    except ConfigError as exc:
        found.extend(exc.problems)
    found.extend(
        strategy_problems(cfg.train.distributed, method is not None and method.quantized_base)
    )
    if task is not None and not found:
        found.extend(_metric_problems(cfg, task.metric_names(cfg)))
    if not found:
        problem = max_length_problem(cfg, model_dir)
        if problem:
            found.append(problem)
    return found


def _metric_problems(cfg: RunConfig, metrics: tuple[str, ...]) -> list[str]:
    found = []
    if cfg.search.metric is not None and cfg.search.metric not in metrics:
        found.append(
            f"search.metric must be a validation metric the task reports; got '{cfg.search.metric}'."
            f"{did_you_mean(cfg.search.metric, metrics)} Known: {', '.join(metrics)}."
        )
    if cfg.train.best_metric is not None and cfg.train.best_metric not in metrics:
        found.append(
            f"train.best_metric must be a metric the task reports; got '{cfg.train.best_metric}'."
            f"{did_you_mean(cfg.train.best_metric, metrics)} Known: {', '.join(metrics)}."
        )
    return found


def max_length_problem(cfg: RunConfig, model_dir: Path) -> str | None:
    """model.rope_scaling must fit the model, and data.max_length its context: the position
    embeddings read from its config.json, times the rope scaling factor when one is set."""
    from transformers import AutoConfig  # reads config.json only

    model_config = AutoConfig.from_pretrained(model_dir)
    problem = rope_problem(model_config, cfg.model)
    if problem:
        return problem
    limit = context_of(model_config, cfg.model.rope_scaling).effective
    if limit is not None and cfg.data.max_length > limit:
        scaled = " (with model.rope_scaling)" if cfg.model.rope_scaling else ""
        rotary = bool(getattr(model_config, "rope_parameters", None))
        hint = ", or set model.rope_scaling" if rotary and not cfg.model.rope_scaling else ""
        return (
            f"data.max_length must be at most {limit} for {cfg.model.name}{scaled}; got {cfg.data.max_length}. "
            f"Set data.max_length={limit} or less{hint}."
        )
    return None


__all__ = ["build_checked", "check", "load_checked", "plugin_problems"]
