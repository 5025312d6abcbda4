"""`tunelab search`: hyperparameter search with Optuna, persistent in an RDB study.

Each trial is an ordinary run (its own run directory) of the config with the trial's values
set at their dotted keys. The objective is the best validation value of `search.metric`
(never the test split); intermediate validation values are reported to Optuna's pruner and a
trial it prunes stops at once. The study lives in SQLite in the search directory unless
`search.storage` names another database, so a killed search resumes (`--resume`: finished
trials are kept, a trial that was running is marked failed and its values tried again), and
several processes or machines can work on one study.
"""

from __future__ import annotations

import fcntl
import itertools
import math
import multiprocessing
from pathlib import Path
from typing import Any

import optuna
from transformers import TrainerCallback

from tunelab.config import ParamSpec, RunConfig, apply_override, build_config, dump_yaml
from tunelab.console import say
from tunelab.errors import ConfigError
from tunelab.io import atomic_write_json, atomic_write_text, write_table

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
        apply_override(raw, f"{key}={_yaml_value(value)}")
    raw["output"].update(dir=str(search_dir(cfg) / "trials"), name=name, overwrite=True)
    raw["eval"].update(baselines=False, forgetting=False, generate_before=False)
    return build_config(raw)


def _yaml_value(value: Any) -> str:
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
    from tunelab.pipeline import train

    run_cfg = trial_config(cfg, values, f"trial-{number:03d}")
    say(f"trial {number}: {values}")
    if cfg.search.cv_folds:
        from tunelab.evaluation.repeats import cross_validate

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
        pruner=_pruner(cfg),
        load_if_exists=True,
    )


def study_name(cfg: RunConfig) -> str:
    return cfg.output.name or "search"


def study_storage(cfg: RunConfig) -> optuna.storages.RDBStorage:
    root = search_dir(cfg)
    root.mkdir(parents=True, exist_ok=True)
    url = cfg.search.storage or f"sqlite:///{(root / 'study.db').resolve()}"
    try:
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs={"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None,
        )
    except Exception as exc:  # SQLAlchemy raises many types for a bad URL or an unreachable server
        first = str(exc).strip().splitlines()[0][:200]
        raise ConfigError(
            f"search.storage '{url}' cannot be opened: {first}. Check the URL and that the database is reachable."
        ) from None


def make_sampler(cfg: RunConfig) -> optuna.samplers.BaseSampler:
    seed = cfg.train.seed
    if cfg.search.strategy in (
        "grid",
        "random",
    ):  # grid: every point is enqueued (see _enqueue_grid)
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _pruner(cfg: RunConfig) -> optuna.pruners.BasePruner:
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


def run_search(cfg: RunConfig, resume: bool = False, workers: int = 1) -> dict[str, Any]:
    """Run (or resume) the study until search.n_trials trials have finished; returns the summary."""
    cfg = cfg.validated()
    if not cfg.search.space:
        raise ConfigError(
            "search.space is empty; add at least one key, e.g. train.lr: {type: loguniform, low: 1e-5, high: 3e-4}."
        )
    metric, direction = objective_metric(cfg)
    target = total_trials(cfg)
    study = open_study(cfg, direction)
    if not resume and study.trials:
        raise ConfigError(
            f"a study named '{study.study_name}' already has {len(study.trials)} trials in {search_dir(cfg)}. "
            "Continue it with --resume, or set output.name to start a new one."
        )
    if resume:
        _retry_interrupted(study)
    elif cfg.search.strategy == "grid":
        _enqueue_grid(study, cfg)
    if cfg.search.backend == "ray":
        from tunelab.search_ray import run_on_ray

        run_on_ray(cfg, metric, direction, target, workers)
    elif workers > 1:
        context = multiprocessing.get_context("spawn")
        processes = [
            context.Process(target=_worker, args=(cfg.to_dict(), metric, target))
            for _ in range(workers)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
    else:
        _optimize(study, cfg, metric, target)
    return summarize(cfg, open_study(cfg, direction), metric)


def _worker(raw: dict[str, Any], metric: str, target: int) -> None:
    cfg = build_config(raw)
    _, direction = objective_metric(cfg)
    _optimize(open_study(cfg, direction), cfg, metric, target)


def _optimize(study: optuna.Study, cfg: RunConfig, metric: str, target: int) -> None:
    """Ask, run, tell until `target` trials have finished or are running (in any process).

    Asking happens under a file lock, so two workers on one machine never draw the same grid
    point (GridSampler skips points that are running, but only if it sees them).
    """
    objective = make_objective(cfg, metric)
    lock_path = search_dir(cfg) / ".ask.lock"
    while True:
        with lock_path.open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            taken = len(
                study.get_trials(
                    deepcopy=False, states=(*FINISHED, optuna.trial.TrialState.RUNNING)
                )
            )
            if taken >= target:
                return
            trial = study.ask()
        try:
            value = objective(trial)
        except optuna.TrialPruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        except BaseException:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        else:
            study.tell(trial, value)
        announce(study, study.trials[trial.number])


def announce(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    if trial.state == optuna.trial.TrialState.COMPLETE:
        say(
            f"trial {trial.number} finished: {trial.value:.4f} (best so far {study.best_value:.4f})"
        )
    elif trial.state == optuna.trial.TrialState.PRUNED:
        say(f"trial {trial.number} pruned at epoch {(trial.last_step or 0) / 100:.2f}")


def _enqueue_grid(study: optuna.Study, cfg: RunConfig) -> None:
    """Every grid point as a queued trial: workers pop them one by one, so none runs twice.

    (Optuna's GridSampler picks points while sampling, which two processes can do at once.)
    """
    keys = list(cfg.search.space)
    for point in itertools.product(*(cfg.search.space[k].values or [] for k in keys)):
        study.enqueue_trial(dict(zip(keys, point, strict=True)))


def finished_count(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=FINISHED))


def _retry_interrupted(study: optuna.Study) -> None:
    """Trials left RUNNING by a killed search: mark them failed and queue their values again."""
    for trial in study.trials:
        if trial.state == optuna.trial.TrialState.RUNNING:
            study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
            study.enqueue_trial(trial.params, skip_if_exists=False)
            say(f"trial {trial.number} was interrupted; marked failed, its values are queued again")


def summarize(cfg: RunConfig, study: optuna.Study, metric: str) -> dict[str, Any]:
    """Leaderboard file, best.yaml and search.json in the search directory."""
    root = search_dir(cfg)
    rows = []
    for trial in study.trials:
        duration = (
            (trial.datetime_complete - trial.datetime_start).total_seconds()
            if trial.datetime_complete and trial.datetime_start
            else None
        )
        rows.append(
            {
                "trial": trial.number,
                "state": trial.state.name,
                metric: trial.value,
                **{f"param {k}": v for k, v in trial.params.items()},
                f"test {metric}": trial.user_attrs.get(f"test_{metric}"),
                "last reported epoch": (trial.last_step or 0) / 100,
                "seconds": round(duration, 1) if duration is not None else None,
            }
        )
    import pandas as pd

    leaderboard = pd.DataFrame(rows)
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not leaderboard.empty:
        leaderboard = leaderboard.sort_values(
            metric, ascending=study.direction.name == "MINIMIZE", na_position="last"
        )
        write_table(leaderboard, root / "leaderboard.csv")
    summary: dict[str, Any] = {
        "study": study.study_name,
        "metric": metric,
        "direction": study.direction.name.lower(),
        "trials": len(study.trials),
        "states": {
            s: int((leaderboard["state"] == s).sum()) for s in ("COMPLETE", "PRUNED", "FAIL")
        }
        if rows
        else {},
        "leaderboard": str(root / "leaderboard.csv"),
    }
    if complete:
        best = study.best_trial
        best_cfg = trial_config(cfg, best.params, "best")
        raw = best_cfg.to_dict()
        raw["output"] = {
            **cfg.output.model_dump(),
            "name": f"{cfg.output.name or 'search'}-best",
            "overwrite": True,
        }
        raw["eval"] = cfg.eval.model_dump()
        raw.pop("search", None)
        atomic_write_text(
            root / "best.yaml",
            f"# best trial {best.number} of study {study.study_name}: validation {metric} {best.value:.4f}\n"
            + dump_yaml(build_config(raw)),
        )
        summary.update(
            best_trial=best.number,
            best_value=best.value,
            best_params=best.params,
            best_config=str(root / "best.yaml"),
        )
    from tunelab.report.search import write_search_report

    summary["report"] = str(root / "report.html")
    write_search_report(study, summary, root)
    atomic_write_json(root / "search.json", summary)
    return summary
