"""tunelab search: samplers, pruning, persistence, workers, reproducing the best trial, bad input."""

from __future__ import annotations

import itertools
import multiprocessing
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import yaml
from test_cli import TUNELAB, assert_one_line_error, run, write_config

import tunelab
from tunelab.errors import ConfigError
from tunelab.workflows.check import build_checked as build_config
from tunelab.workflows.check import load_checked as load_config
from tunelab.workflows.search import run_search
from tunelab.workflows.search_study import PruneOnValidation, search_dir, study_storage, suggest


def search_raw(tiny_config, **search) -> dict:
    raw = tiny_config.to_dict()
    raw["train"].update(epochs=2, eval_on_start=False)
    raw["eval"] = {"baselines": False, "forgetting": False}
    raw["search"] = search
    return raw


GRID = {
    "train.lr": {"type": "choice", "values": [1e-3, 5e-3]},
    "train.batch_size": {"type": "choice", "values": [8, 16, 32]},
}


def finished_params(cfg) -> list[tuple]:
    study = optuna.load_study(
        study_name=cfg.output.name, storage=f"sqlite:///{(search_dir(cfg) / 'study.db').resolve()}"
    )
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    return [tuple(sorted(t.params.items())) for t in done]


def test_grid_enumerates_exactly_the_product_of_choices(tiny_config) -> None:
    cfg = build_config(search_raw(tiny_config, strategy="grid", space=GRID))
    summary = run_search(cfg)
    params = finished_params(cfg)
    expected = {
        (("train.batch_size", b), ("train.lr", lr))
        for lr, b in itertools.product([1e-3, 5e-3], [8, 16, 32])
    }
    assert len(params) == 6 and set(params) == expected
    assert summary["trials"] == 6 and (search_dir(cfg) / "leaderboard.csv").is_file()
    report = (search_dir(cfg) / "report.html").read_text()
    for title in ("optimization history", "parameter importances", "parallel coordinates"):
        assert f'alt="{title}' in report  # every plot drawn, none left out with a note
    assert report.count("data:image/png;base64,") == 4


@pytest.mark.parametrize(
    "sampler", [optuna.samplers.RandomSampler(seed=0), optuna.samplers.TPESampler(seed=0)]
)
def test_random_and_tpe_respect_bounds_and_types(tiny_config, sampler) -> None:
    cfg = build_config(
        search_raw(
            tiny_config,
            space={
                "train.lr": {"type": "loguniform", "low": 1e-5, "high": 1e-3},
                "train.warmup_ratio": {"type": "uniform", "low": 0.0, "high": 0.2},
                "method.lora.r": {"type": "int", "low": 4, "high": 64, "log": True},
                "train.batch_size": {"type": "choice", "values": [16, 32]},
            },
        )
    )
    study = optuna.create_study(sampler=sampler)
    seen = []
    study.optimize(lambda t: (seen.append(suggest(t, cfg.search.space)), 0.0)[1], n_trials=25)
    for values in seen:
        assert 1e-5 <= values["train.lr"] <= 1e-3 and isinstance(values["train.lr"], float)
        assert 0.0 <= values["train.warmup_ratio"] <= 0.2
        assert 4 <= values["method.lora.r"] <= 64 and isinstance(values["method.lora.r"], int)
        assert values["train.batch_size"] in (16, 32)
    assert len({v["train.lr"] for v in seen}) > 20  # really sampled, not a constant


def test_pruning_stops_a_trial_whose_validation_metric_is_worse() -> None:
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.MedianPruner(n_startup_trials=2)
    )
    for value in (0.8, 0.9):  # two finished trials that were good at every step
        trial = study.ask()
        for step in (10, 20):
            trial.report(value, step)
        study.tell(trial, value)
    state, control = SimpleNamespace(global_step=10, epoch=0.1), SimpleNamespace()
    good = PruneOnValidation(study.ask(), "accuracy")
    good.on_evaluate(None, state, control, metrics={"eval_accuracy": 0.95})  # better: continues
    bad = PruneOnValidation(study.ask(), "accuracy")
    with pytest.raises(optuna.TrialPruned):
        bad.on_evaluate(None, state, control, metrics={"eval_accuracy": 0.5})


def test_a_search_prunes_trials_that_fall_behind(tiny_config) -> None:
    raw = search_raw(
        tiny_config,
        strategy="grid",
        pruner="median",
        # 2e-2 and 1.5e-2 learn the toy data within 3 epochs whatever the batch order (at 5e-3
        # the tiny BERT learned in 3 epochs in 2 of 4 seeds with one order, 0 of 4 with another)
        space={"train.lr": {"type": "choice", "values": [2e-2, 1.5e-2, 1e-6, 2e-6]}},
    )
    raw["train"].update(epochs=3)
    cfg = build_config(raw)
    summary = run_search(cfg)
    assert summary["states"]["PRUNED"] >= 1  # the two near-zero learning rates cannot keep up
    assert summary["best_params"]["train.lr"] in (2e-2, 1.5e-2)


def test_a_killed_search_resumes_without_rerunning_finished_trials(
    tiny_config, tmp_path: Path
) -> None:
    raw = search_raw(tiny_config, strategy="random", n_trials=5, pruner="none", space=GRID)
    raw["train"].update(epochs=4)
    config = write_config(tmp_path / "search.yaml", raw)
    cfg = load_config(config)
    db = search_dir(cfg) / "study.db"
    process = subprocess.Popen(
        [TUNELAB, "search", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.time() + 240
    while time.time() < deadline:
        time.sleep(1)
        if db.is_file() and len(_states(cfg, "COMPLETE")) >= 2 and _states(cfg, "RUNNING"):
            break
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = _states(cfg, "COMPLETE")
    assert len(before) >= 2 and _states(cfg, "RUNNING")  # killed in the middle of a trial
    resumed = run("search", str(config), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    after = _states(cfg, "COMPLETE")
    assert len(after) == 5 and {t.number for t in before} <= {t.number for t in after}
    assert len({t.number for t in after}) == 5
    assert not _states(cfg, "RUNNING") and len(_states(cfg, "FAIL")) >= 1  # the interrupted one
    again = run("search", str(config))
    assert_one_line_error(again, "already has", "--resume")


def _open_storage_at_once(raw: dict, barrier) -> None:
    barrier.wait()
    study_storage(build_config(raw)).engine.dispose()


def test_processes_that_create_the_sqlite_study_at_once_all_open_it(
    tiny_config, tmp_path: Path
) -> None:
    # SQLite schema creation is not atomic: without a whole-file-then-link step, 4 processes
    # released together fail this (9 of 40 processes failed on alembic_version in 10 rounds)
    context = multiprocessing.get_context("fork")
    for round_ in range(5):
        raw = search_raw(tiny_config, strategy="random", n_trials=1, space=GRID)
        raw["output"]["dir"] = str(tmp_path / f"round{round_}")
        barrier = context.Barrier(4)
        processes = [
            context.Process(target=_open_storage_at_once, args=(raw, barrier)) for _ in range(4)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join(60)
        assert [process.exitcode for process in processes] == [0, 0, 0, 0]
        root = search_dir(build_config(raw))
        assert sorted(path.name for path in root.iterdir()) == ["study.db"]  # no partial left


def _states(cfg, state: str) -> list:
    storage = f"sqlite:///{(search_dir(cfg) / 'study.db').resolve()}"
    try:
        study = optuna.load_study(study_name=cfg.output.name, storage=storage)
    except KeyError:  # the file is there a moment before the search has created its study in it
        return []
    return [t for t in study.trials if t.state.name == state]


def test_two_workers_share_one_sqlite_study_without_duplicate_grid_points(
    tiny_config, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "grid.yaml", search_raw(tiny_config, strategy="grid", space=GRID)
    )
    done = run("search", str(config), "--workers", "2")
    assert done.returncode == 0, done.stderr
    params = finished_params(load_config(config))
    assert len(params) == len(set(params)) == 6


def test_best_yaml_reproduces_the_best_trial(tiny_config) -> None:
    cfg = build_config(
        search_raw(
            tiny_config,
            strategy="random",
            n_trials=3,
            pruner="none",
            space={"train.lr": {"type": "loguniform", "low": 1e-3, "high": 1e-2}},
        )
    )
    summary = run_search(cfg)
    best = load_config(summary["best_config"])
    assert best.train.lr == pytest.approx(summary["best_params"]["train.lr"])
    assert yaml.safe_load(Path(summary["best_config"]).read_text())["search"]["space"] == {}
    again = tunelab.train(best).metrics["training"]["best_validation_metric"]["macro_f1"]
    assert again == pytest.approx(summary["best_value"], abs=1e-9)  # same seed, same metric


@pytest.mark.parametrize(
    ("space", "fragment"),
    [
        (
            {"train.lrr": {"type": "uniform", "low": 0, "high": 1}},
            "unknown key path 'train.lrr'. Did you mean 'train.lr'",
        ),
        ({"train.lr": {"type": "uniform", "low": 1, "high": 1}}, "the range is empty"),
        ({"train.lr": {"type": "choice", "values": []}}, "a choice needs at least one value"),
    ],
)
def test_bad_search_spaces_are_one_line(
    tiny_config, tmp_path: Path, space: dict, fragment: str
) -> None:
    config = write_config(tmp_path / "bad.yaml", search_raw(tiny_config, n_trials=2, space=space))
    assert_one_line_error(run("search", str(config)), fragment)


def test_unknown_metric_and_unreachable_storage_are_one_line(tiny_config, tmp_path: Path) -> None:
    space = {"train.lr": {"type": "choice", "values": [1e-3]}}
    with pytest.raises(ConfigError, match="must be a validation metric"):
        build_config(search_raw(tiny_config, metric="bleu", space=space))
    raw = search_raw(
        tiny_config, strategy="grid", space=space, storage="postgresql://nobody@127.0.0.1:1/none"
    )
    config = write_config(tmp_path / "storage.yaml", raw)
    assert_one_line_error(run("search", str(config)), "cannot be opened")


@pytest.mark.slow
def test_the_ray_backend_runs_trials_on_a_local_ray_into_the_same_study(tiny_config) -> None:
    pytest.importorskip("ray", reason="search.backend=ray needs pip install 'tunelab[ray]'")
    raw = search_raw(
        tiny_config,
        strategy="grid",
        backend="ray",
        pruner="median",
        prune_after_epochs=0.0,
        space={"train.lr": {"type": "choice", "values": [2e-2, 1.5e-2, 1e-6]}},
    )
    raw["train"].update(epochs=3)
    cfg = build_config(raw)
    summary = run_search(cfg, workers=1)  # one at a time: the low lr meets two finished trials
    assert summary["trials"] == 3
    states = {t.params["train.lr"]: t.state.name for t in _load(cfg).trials}
    assert set(states) == {2e-2, 1.5e-2, 1e-6}  # every grid point once, through Ray's searcher
    assert states[2e-2] == states[1.5e-2] == "COMPLETE" and states[1e-6] == "PRUNED"
    best = load_config(summary["best_config"])
    again = tunelab.train(best).metrics["training"]["best_validation_metric"]["macro_f1"]
    assert again == pytest.approx(summary["best_value"], abs=1e-9)  # Ray ran an ordinary run


def _load(cfg) -> optuna.Study:
    return optuna.load_study(
        study_name=cfg.output.name, storage=f"sqlite:///{(search_dir(cfg) / 'study.db').resolve()}"
    )
