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
import multiprocessing
from typing import Any

import optuna

from tunelab.config import RunConfig, build_config, dump_yaml
from tunelab.console import say
from tunelab.errors import ConfigError
from tunelab.io import atomic_write_json, atomic_write_text, write_table
from tunelab.workflows.check import check
from tunelab.workflows.search_study import (
    announce,
    make_objective,
    objective_metric,
    open_study,
    search_dir,
    total_trials,
    trial_config,
)

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def run_search(cfg: RunConfig, resume: bool = False, workers: int = 1) -> dict[str, Any]:
    """Run (or resume) the study until search.n_trials trials have finished; returns the summary."""
    cfg = check(cfg)
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
        from tunelab.workflows.search_ray import run_on_ray

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


def _enqueue_grid(study: optuna.Study, cfg: RunConfig) -> None:
    """Every grid point as a queued trial: workers pop them one by one, so none runs twice.

    (Optuna's GridSampler picks points while sampling, which two processes can do at once.)
    """
    keys = list(cfg.search.space)
    for point in itertools.product(*(cfg.search.space[k].values or [] for k in keys)):
        study.enqueue_trial(dict(zip(keys, point, strict=True)))


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
