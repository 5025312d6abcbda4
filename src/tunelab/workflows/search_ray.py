"""`search.backend: ray`: the same study, run by Ray Tune on a Ray cluster (or a local Ray).

Ray Tune schedules the trials (as many at once as `--workers`, each with
`search.ray_cpus_per_trial` CPUs) and stops the ones its scheduler gives up on; Ray's own
OptunaSearch draws the values from the same Optuna sampler and RDB study as the plain
backend, so the leaderboard, best.yaml and `--resume` work the same way. Needs
`pip install 'tunelab[ray]'`; on a cluster, every node needs tunelab and the data.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import optuna
import ray
from ray import tune
from ray.tune.search.optuna import OptunaSearch
from transformers import TrainerCallback

from tunelab.config import RunConfig, build_config
from tunelab.console import say
from tunelab.errors import TunelabError
from tunelab.workflows.search_study import (
    announce,
    finished_count,
    make_sampler,
    run_trial,
    search_dir,
    study_name,
    study_storage,
    suggest,
)

TRIAL_NUMBER = "__tunelab_trial_number"  # rides along in the Ray trial's config
EPOCH = "epoch_hundredths"  # Ray schedulers' time axis: data seen, as in the Optuna backend
FINISHED = "tunelab_finished"  # only the last report of a trial that ran to its end has it


def run_on_ray(cfg: RunConfig, metric: str, direction: str, target: int, workers: int) -> None:
    """Run trials on Ray Tune until `target` trials of the study have finished."""
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=cfg.search.ray_address, include_dashboard=False, log_to_driver=False)
    try:
        remaining = target - finished_count(
            optuna.load_study(study_name=study_name(cfg), storage=study_storage(cfg))
        )
        if remaining <= 0:
            return
        mode = "max" if direction == "maximize" else "min"
        cpus = cfg.search.ray_cpus_per_trial or max(1, (os.cpu_count() or 1) // workers)
        trainable = tune.with_resources(
            tune.with_parameters(_ray_trial, raw=cfg.to_dict(), metric=metric, cwd=str(Path.cwd())),
            {"cpu": cpus},
        )
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=_StudySearch(cfg, metric, mode),
                scheduler=_scheduler(cfg, metric, mode),
                num_samples=remaining,
                max_concurrent_trials=workers,
            ),
            run_config=tune.RunConfig(
                name="ray", storage_path=str(search_dir(cfg).resolve()), verbose=0
            ),
        )
        results = tuner.fit()
        if results.errors:
            last_line = str(results.errors[0]).strip().splitlines()[-1]
            raise TunelabError(
                f"{len(results.errors)} Ray trial(s) failed; the first: {last_line[:300]}"
            )
    finally:
        if started_here:
            ray.shutdown()


def _ray_trial(config: dict[str, Any], raw: dict[str, Any], metric: str, cwd: str) -> None:
    """One trial inside a Ray worker: an ordinary tunelab run reporting to Ray Tune."""
    if Path(cwd).is_dir():  # relative paths in the config mean the driver's directory
        os.chdir(cwd)
    values = dict(config)
    number = int(values.pop(TRIAL_NUMBER))
    cfg = build_config(raw)
    reporter = _ReportToTune(metric)
    value, facts = run_trial(cfg, values, number, metric, reporter)
    epoch = (
        reporter.last_epoch if reporter.last_epoch is not None else round(100 * cfg.train.epochs)
    )
    tune.report({metric: value, EPOCH: epoch, FINISHED: True, **facts})


class _ReportToTune(TrainerCallback):
    """Each validation value goes to Ray Tune, whose scheduler may stop the trial."""

    def __init__(self, metric: str) -> None:
        self.metric = metric
        self.last_epoch: int | None = None

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: Any = None, **kwargs: Any
    ) -> None:
        value = (metrics or {}).get(f"eval_{self.metric}")
        if value is not None:
            self.last_epoch = round(100 * (state.epoch or 0))
            tune.report({self.metric: float(value), EPOCH: self.last_epoch})


def _scheduler(cfg: RunConfig, metric: str, mode: str) -> Any:
    """Ray's counterparts of the Optuna pruners, on the same time axis and grace period."""
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule

    grace = round(100 * cfg.search.prune_after_epochs)
    if cfg.search.pruner == "median":
        return MedianStoppingRule(
            time_attr=EPOCH, metric=metric, mode=mode, grace_period=grace, min_samples_required=2
        )
    if cfg.search.pruner == "hyperband":
        return ASHAScheduler(
            time_attr=EPOCH,
            metric=metric,
            mode=mode,
            grace_period=max(grace, 1),
            max_t=max(round(100 * cfg.train.epochs), grace + 1),
        )
    return FIFOScheduler()


class _StudySearch(OptunaSearch):
    """Ray's OptunaSearch on tunelab's study: trial numbers, leaderboard facts, PRUNED state.

    Module-level and built from picklable parts: Ray checkpoints the searcher.
    """

    def __init__(self, cfg: RunConfig, metric: str, mode: str) -> None:
        super().__init__(
            space=functools.partial(suggest, space=cfg.search.space),
            metric=metric,
            mode=mode,
            sampler=make_sampler(cfg),
            study_name=study_name(cfg),
            storage=study_storage(cfg),
        )

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        params = super().suggest(trial_id)
        if params is None:
            return None
        number = self._ot_trials[trial_id].number
        say(f"trial {number}: {params}")
        return {**params, TRIAL_NUMBER: number}

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if not result.get(FINISHED) and EPOCH in result:
            self._ot_trials[trial_id].report(result[self.metric], result[EPOCH])

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        result = dict(result or {})
        ot_trial = self._ot_trials[trial_id]
        for key, value in result.items():
            if key in ("run_dir", "cv_std") or key.startswith("test_"):
                ot_trial.set_user_attr(key, value)
        if not result.get(FINISHED):  # stopped by the scheduler (or failed): no objective value
            result.pop(self.metric, None)
        super().on_trial_complete(trial_id, result, error)
        study = self._ot_study
        assert study is not None  # set up in __init__, as the space is given there
        announce(study, study.trials[ot_trial.number])
