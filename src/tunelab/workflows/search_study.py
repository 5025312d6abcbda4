"""What both search backends share: the study (storage, sampler, pruner), the trial configs,
one trial's run, and the pruning callback. The backends are `search` (Optuna) and `search_ray`."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import optuna
from transformers import TrainerCallback

from tunelab.config import ParamSpec, RunConfig, apply_override, build_config
from tunelab.console import say
from tunelab.errors import ConfigError

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
optuna.logging.set_verbosity(optuna.logging.WARNING)  # tunelab prints one line per trial itself


def search_dir(cfg: RunConfig) -> Path:
    return Path(cfg.output.dir) / f"{cfg.output.name or 'search'}-search"


def objective_metric(cfg: RunConfig) -> tuple[str, str]:
    """(metric, direction) of the search."""
    from tunelab.tasks import task_for

    task = task_for(cfg)
    metric = cfg.search.metric or task.best_metric(cfg)
    return metric, "maximize" if task.greater_is_better(metric) else "minimize"


def suggest(trial: optuna.Trial, space: dict[str, ParamSpec]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, spec in space.items():
        if spec.type == "choice":
            assert spec.values is not None
            values[key] = trial.suggest_categorical(key, spec.values)
        elif spec.type == "int":
            assert spec.low is not None and spec.high is not None
            values[key] = trial.suggest_int(key, int(spec.low), int(spec.high), log=spec.log)
        else:
            assert spec.low is not None and spec.high is not None
            values[key] = trial.suggest_float(
                key, spec.low, spec.high, log=spec.type == "loguniform"
            )
    return values


def trial_config(cfg: RunConfig, values: dict[str, Any], name: str) -> RunConfig:
    """The base config with the trial's values at their keys, run in the search directory."""
    raw = cfg.to_dict()
    raw.pop("search")
    for key, value in values.items():
        apply_override(raw, f"{key}={yaml_value(value)}")
    raw["output"].update(dir=str(search_dir(cfg) / "trials"), name=name, overwrite=True)
    raw["eval"].update(baselines=False, forgetting=False, generate_before=False)
    return build_config(raw)


def yaml_value(value: Any) -> str:
    import yaml

    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


class PruneOnValidation(TrainerCallback):
    """Report each validation value to the trial; stop the run when the pruner says so."""

    def __init__(self, trial: optuna.Trial, metric: str) -> None:
        self.trial, self.metric = trial, metric

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any
    ) -> None:
        value = (metrics or {}).get(f"eval_{self.metric}")
        if value is None:
            return
        # Steps are hundredths of an epoch: trials with other batch sizes are compared at the
        # same amount of data seen, not at the same optimizer step.
        step = round(100 * (state.epoch or 0))
        self.trial.report(float(value), step=step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(
                f"pruned at epoch {step / 100:.2f} with {self.metric} {value:.4f}"
            )


def run_trial(
    cfg: RunConfig, values: dict[str, Any], number: int, metric: str, callback: TrainerCallback
) -> tuple[float, dict[str, Any]]:
    """Train (or cross-validate) one trial: its objective value and facts for the leaderboard.

    `callback` sees every validation; it reports to the pruner (Optuna's or Ray Tune's).
    """
    from tunelab.workflows.train import train

    run_cfg = trial_config(cfg, values, f"trial-{number:03d}")
    say(f"trial {number}: {values}")
    if cfg.search.cv_folds:
        from tunelab.workflows.repeats import cross_validate

        summary = cross_validate(run_cfg, cfg.search.cv_folds)
        validation = summary["validation"][metric]
        return float(validation["mean"]), {"cv_std": validation["std"]}
    result = train(run_cfg, callbacks=(callback,))
    facts: dict[str, Any] = {"run_dir": str(result.run_dir)}
    test = result.metrics.get("test", {})
    if isinstance(test.get(metric), (int, float)):
        facts[f"test_{metric}"] = float(test[metric])
    best = result.metrics["training"]["best_validation_metric"].get(metric)
    if best is None:
        raise ConfigError(
            f"search.metric '{metric}' was never logged on validation; pick another metric."
        )
    return float(best), facts


def make_objective(cfg: RunConfig, metric: str) -> Any:
    def objective(trial: optuna.Trial) -> float:
        values = suggest(trial, cfg.search.space)
        value, facts = run_trial(
            cfg, values, trial.number, metric, PruneOnValidation(trial, metric)
        )
        for key, fact in facts.items():
            trial.set_user_attr(key, fact)
        return value

    return objective


def open_study(cfg: RunConfig, direction: str) -> optuna.Study:
    return optuna.create_study(
        storage=study_storage(cfg),
        study_name=study_name(cfg),
        direction=direction,  # type: ignore[arg-type]
        sampler=make_sampler(cfg),
        pruner=make_pruner(cfg),
        load_if_exists=True,
    )


def study_name(cfg: RunConfig) -> str:
    return cfg.output.name or "search"


def study_storage(cfg: RunConfig) -> optuna.storages.RDBStorage:
    root = search_dir(cfg)
    root.mkdir(parents=True, exist_ok=True)
    default = root / "study.db"
    url = cfg.search.storage or f"sqlite:///{default.resolve()}"
    try:
        if not cfg.search.storage and not default.exists():
            _create_sqlite_study_file(default)
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None,
        )
    except Exception as exc:  # SQLAlchemy raises many types for a bad URL or an unreachable server
        first = str(exc).strip().splitlines()[0][:200]
        raise ConfigError(
            f"search.storage '{url}' cannot be opened: {first}. Check the URL and that the database is reachable."
        ) from None


def _create_sqlite_study_file(path: Path) -> None:
    """Build Optuna's schema in a private file, then link it into place.

    Two processes that create one SQLite schema at once collide on Optuna's version row
    (UNIQUE constraint failed: alembic_version.version_num); a reader that opens the file
    while its schema is half made does the same. Linking a finished file never overwrites one
    another process got there first with, and `study.db` is whole from the moment it exists.
    """
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.unlink(missing_ok=True)
    storage = optuna.storages.RDBStorage(f"sqlite:///{partial.resolve()}")
    storage.engine.dispose()
    try:
        os.link(partial, path)
    except FileExistsError:
        pass  # another process made it first; its schema is the same
    except OSError:  # a file system without hard links: rename, unless someone got there first
        if not path.exists():
            os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def make_sampler(cfg: RunConfig) -> optuna.samplers.BaseSampler:
    seed = cfg.train.seed
    if cfg.search.strategy in (
        "grid",
        "random",
    ):  # grid: every point is enqueued (see _enqueue_grid)
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(cfg: RunConfig) -> optuna.pruners.BasePruner:
    warmup = round(100 * cfg.search.prune_after_epochs)  # reported steps are hundredths of an epoch
    if cfg.search.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=warmup)
    if cfg.search.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=max(warmup, 1))
    return optuna.pruners.NopPruner()


def total_trials(cfg: RunConfig) -> int:
    if cfg.search.n_trials:
        return cfg.search.n_trials
    if cfg.search.strategy == "grid":
        return math.prod(len(spec.values or []) for spec in cfg.search.space.values())
    raise ConfigError(
        "search.n_trials is required for random and bayesian search; set it, e.g. 12."
    )


def announce(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    if trial.state == optuna.trial.TrialState.COMPLETE:
        say(
            f"trial {trial.number} finished: {trial.value:.4f} (best so far {study.best_value:.4f})"
        )
    elif trial.state == optuna.trial.TrialState.PRUNED:
        say(f"trial {trial.number} pruned at epoch {(trial.last_step or 0) / 100:.2f}")


def finished_count(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))
