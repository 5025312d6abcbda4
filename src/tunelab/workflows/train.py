"""`tunelab train`: validate → data → run directory → tokenizer → model → method → Trainer →
fit → save → score → report, each step a named function below."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import datasets
import torch
from transformers import PreTrainedModel, Trainer, set_seed
from transformers.utils import logging as hf_logging

from tunelab.config import RunConfig, dump_yaml
from tunelab.console import say
from tunelab.data import SPLITS, PreparedData
from tunelab.data.dataset_source import dataset_record
from tunelab.data.inspect import build_report, write_report
from tunelab.errors import ConfigError, OutputError, TunelabError
from tunelab.files import check_writable_dir
from tunelab.io import atomic_directory, atomic_write_json, atomic_write_text, flatten
from tunelab.methods import count_parameters, learning_rate, method_for
from tunelab.methods.vocab import extend_vocabulary, mine_words
from tunelab.models import hub_commit, load_tokenizer, model_dir_for
from tunelab.models.context import Context, context_of
from tunelab.models.precision import resolve_precision
from tunelab.models.weights import refuse_non_finite
from tunelab.runs import RunDir
from tunelab.runs.card import base_card, now, split_sha256
from tunelab.runs.directory import CARD, CONFIG, METRICS
from tunelab.runs.place import (
    RunPlace,
    claim,
    complete_checkpoints,
    directory_bytes,
    disk_full_message,
    is_disk_full,
    refuse_finished,
    remove_incomplete,
    resume_checkpoint,
    stale_status,
)
from tunelab.tasks import Task, task_for, task_spec
from tunelab.training import distributed
from tunelab.training.memory import PeakMemory
from tunelab.training.memory import estimate as estimate_memory
from tunelab.training.tracking import check_tracking, track_run
from tunelab.training.trainer import build_trainer, resume_training
from tunelab.workflows.check import check
from tunelab.workflows.launch import multi_process_problems


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict[str, Any]
    wall_seconds: float


@dataclass
class TrainingSession:
    """Everything `train` sets up before fitting; tests and tools can stop here."""

    cfg: RunConfig
    data: PreparedData
    place: RunPlace
    run_dir: Path  # where the run is written: place.work
    tokenizer: Any
    model: PreTrainedModel
    trainer: Trainer
    precision: str
    card: dict[str, Any]
    parameters: dict[str, int | float]
    encoded: dict[str, Any]
    task: Task
    memory: PeakMemory


def train(cfg: RunConfig, callbacks: tuple[Any, ...] = ()) -> TrainResult:
    """Fine-tune as configured; returns the run directory and its metrics.

    `callbacks` are extra TrainerCallbacks (the hyperparameter search adds its pruning hook).
    """
    started = time.perf_counter()
    session = prepare_training(cfg)
    for callback in callbacks:  # e.g. the search's pruning hook
        session.trainer.add_callback(callback)
    here = distributed.world()
    with run_status(session):
        checkpoint = resume_checkpoint(session.run_dir) if session.cfg.train.resume else None
        before = session.task.before_training(session) if here.is_main else {}
        if checkpoint is not None:
            say(f"resuming from {checkpoint}")
        train_output = resume_training(session.trainer, checkpoint)
        if not here.is_main:  # rank 0 alone saves, scores, reports and publishes the run
            return TrainResult(session.place.final, {}, time.perf_counter() - started)
        trained = cast(PreTrainedModel, session.trainer.model)  # the best checkpoint, restored
        refuse_non_finite(trained, "the trained model")
        memory = _measured_memory(session)
        _save_model(session, trained)
        metrics = _final_metrics(session, trained, before, train_output)
        metrics["memory"] = memory
        atomic_write_json(session.run_dir / METRICS, metrics)
        wall = time.perf_counter() - started
        session.card.update(status="completed", finished_at=now(), wall_seconds=round(wall, 2))
        atomic_write_json(session.run_dir / CARD, session.card)
        from tunelab.report.html import write_report

        write_report(session.run_dir)
        session.place.publish()  # an overwrite: the finished run takes the old one's place
    track_run(session.cfg, session.place.final, metrics)
    return TrainResult(session.place.final, metrics, wall)


def _save_model(session: TrainingSession, trained: PreTrainedModel) -> None:
    with atomic_directory(session.run_dir / "model") as tmp:  # safetensors only, no pickle
        method_for(session.cfg).save(trained, tmp)
        session.tokenizer.save_pretrained(tmp)
        session.task.save_extras(tmp, session.data)


def _final_metrics(
    session: TrainingSession, trained: PreTrainedModel, before: Any, train_output: Any
) -> dict[str, Any]:
    cfg, task, state = session.cfg, session.task, session.trainer.state
    metrics = task.final_metrics(session, trained, before)
    if cfg.eval.forgetting:
        from tunelab.evaluation.forgetting_run import measure_forgetting

        metrics["forgetting"] = measure_forgetting(session, trained)
    best = state.best_model_checkpoint
    metrics["training"] = {
        "train_loss": train_output.training_loss,
        "steps": state.global_step,
        "epochs": state.epoch,
        "loss_curve": [(e["step"], e["loss"]) for e in state.log_history if "loss" in e],
        "validation_curve": validation_curve(state.log_history),
        # relative: the run directory may be renamed into place after training (an overwrite)
        "best_checkpoint": str(Path(best).relative_to(session.run_dir)) if best else None,
        "best_validation_metric": {task.best_metric(cfg): state.best_metric},
        "train_seconds": train_output.metrics.get("train_runtime"),
        "examples_per_second": train_output.metrics.get("train_samples_per_second"),
    }
    metrics["parameters"] = session.parameters
    return metrics


def validation_curve(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per evaluated step (a resumed run's history can hold its resume step twice)."""
    by_step: dict[int, dict[str, Any]] = {}
    for entry in log_history:
        if "eval_loss" in entry:
            by_step.setdefault(
                entry.get("step", -1),
                {
                    k.removeprefix("eval_"): v
                    for k, v in entry.items()
                    if k.startswith("eval_") or k == "step"
                },
            )
    return list(by_step.values())


@contextmanager
def run_status(session: TrainingSession) -> Iterator[None]:
    """The run card says failed or interrupted after any failure; a full disk is one line."""
    run_dir = session.run_dir

    def mark(status: str, reason: str) -> None:
        if not distributed.world().is_main:
            return  # rank 0 owns the run card
        session.card.update(status=status, finished_at=now(), reason=reason)
        with suppress(OSError):  # a full disk may refuse even this small write
            atomic_write_json(run_dir / CARD, session.card)
        session.place.failed()

    previous = _stop_on_sigterm()
    try:
        yield
    except KeyboardInterrupt:
        mark("interrupted", "stopped by a signal or Ctrl+C")
        raise
    except TunelabError as exc:
        mark("failed", str(exc))
        raise
    except Exception as exc:
        complete = complete_checkpoints(run_dir)
        needed = directory_bytes(complete[-1]) if complete else None
        if not is_disk_full(exc, run_dir, needed):
            mark("failed", f"{type(exc).__name__}: {exc}")
            raise
        remove_incomplete(run_dir)  # its own half-written checkpoint: room for the card at least
        message = disk_full_message(getattr(exc, "filename", None) or run_dir, needed)
        kept = (
            f"the last complete checkpoint, {complete[-1].name}, is intact: free space and run again with --resume"
            if complete
            else "no checkpoint was complete yet: free space and run again"
        )
        mark("failed", message)
        raise OutputError(f"{message}; {kept}.") from None
    except BaseException as exc:
        mark("failed", f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _stop_on_sigterm() -> Any:
    """SIGTERM (a scheduler's stop, `kill`) ends the run like Ctrl+C, so its card says interrupted."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    return signal.signal(signal.SIGTERM, stop)


def _measured_memory(session: TrainingSession) -> dict[str, Any]:
    """The estimate next to what training really took (printed, and kept in metrics.json)."""
    estimate = session.card["memory_estimate_mb"]
    measured = session.memory.growth_mb()
    say(
        f"memory: estimated {estimate['total']:,.0f} MB, measured {measured:,.0f} MB "
        f"({session.memory.describe()} growth from just before the model was loaded)"
    )
    return {
        "estimate_mb": estimate["total"],
        "measured_mb": measured,
        "measured_as": session.memory.describe(),
    }


def prepare_training(cfg: RunConfig) -> TrainingSession:
    """Validate → data → run directory → tokenizer → model → method → Trainer."""
    cfg = check(cfg)
    check_tracking(cfg)
    hf_logging.set_verbosity_error()  # load reports and deprecations would drown the progress lines
    hf_logging.disable_progress_bar()
    if not sys.stderr.isatty():  # bars only help on a terminal; in logs they are noise
        datasets.disable_progress_bars()
    task = task_for(cfg)
    method = method_for(cfg)
    precision = resolve_precision(cfg.train.precision)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)

    here = distributed.start()  # one process, or one of torchrun's workers
    problems = multi_process_problems(cfg, here.world_size)  # started by torchrun/accelerate
    if problems:
        raise ConfigError(problems)
    with distributed.main_first():  # the same data on every rank; caches written once
        data = task.prepare_data(cfg)  # every data problem surfaces before anything is written
    model_dir = model_dir_for(cfg.model)
    place = distributed.decide(lambda: _claim_run_dir(cfg))  # rank 0 claims, all write there
    run_dir = place.work
    card = _start_card(cfg, run_dir, data, precision, model_dir, write=here.is_main)
    _describe_data(data)

    set_seed(cfg.train.seed)
    tokenizer = load_tokenizer(model_dir, cfg.model)
    data_report = build_report(data, tokenizer, cfg.data.max_length)
    if here.is_main:
        write_report(data_report, run_dir)
    for warning in data_report["warnings"]:
        say(f"data warning: {warning}")
    memory = PeakMemory()  # the runtime is loaded; what grows from here is the run's own
    model = task.load_model(model_dir, data, cfg)
    card["vocabulary"] = _extend_vocabulary(model, tokenizer, data, cfg)
    model = method(model, cfg)
    params = count_parameters(model)
    say(
        f"model {cfg.model.name}: {params['trainable']:,} of {params['total']:,} parameters trainable "
        f"({params['trainable_share']:.1%}), method {cfg.method.name}, lr {learning_rate(cfg):g}, precision {precision}"
    )
    context = _announce_context(model_dir, cfg)
    card["context"] = asdict(context)
    encoded = task.tokenize(tokenizer, data, cfg)
    preflight = getattr(task, "preflight", None)
    if preflight:  # instruction tuning: the rendered example, truncation and masking shares
        preflight["context"] = asdict(context)
        card["preflight"] = preflight
        if here.is_main:
            atomic_write_json(run_dir / "preflight.json", preflight)
    card["memory_estimate_mb"] = _announce_memory(model, encoded, cfg, precision)
    trainer = build_trainer(
        model, tokenizer, encoded, task, cfg, run_dir, precision, task.loss_function(data, cfg)
    )
    strategy = (  # what the Trainer really set up, not what was asked for
        "fsdp"
        if trainer.is_fsdp_enabled
        else "deepspeed"
        if trainer.is_deepspeed_enabled
        else "ddp"
    )
    card["processes"] = here.record(
        distributed.backend(), cfg.train.batch_size, cfg.train.grad_accum, strategy
    )
    if here.is_main:
        atomic_write_json(run_dir / CARD, card)
    if here.distributed:
        say(
            f"processes: {here.world_size} on {here.nodes} node(s), {strategy}, backend {card['processes']['backend']}, "
            f"global batch {card['processes']['global_batch']} = {cfg.train.batch_size} per process x "
            f"{here.world_size} x {cfg.train.grad_accum} accumulation"
        )
    return TrainingSession(
        cfg,
        data,
        place,
        run_dir,
        tokenizer,
        model,
        trainer,
        precision,
        card,
        params,
        encoded,
        task,
        memory,
    )


def _announce_context(model_dir: Path, cfg: RunConfig) -> Context:
    """The context trained with: the model's position limit, scaled by model.rope_scaling."""
    from transformers import AutoConfig

    context = context_of(AutoConfig.from_pretrained(model_dir), cfg.model.rope_scaling)
    if context.scaling is not None:
        say(f"{context.describe()}; data.max_length {cfg.data.max_length:,}")
    return context


def _announce_memory(
    model: PreTrainedModel, encoded: dict[str, Any], cfg: RunConfig, precision: str
) -> dict[str, float]:
    """Print the training-memory estimate for the longest batch; returned for the run card."""
    if cfg.task.packing:
        longest = cfg.data.max_length
    elif "length" in encoded["train"].column_names:  # classification stores it: no pass over ids
        longest = max(encoded["train"]["length"], default=1)
    else:
        longest = max((len(ids) for ids in encoded["train"]["input_ids"]), default=1)
    estimate = estimate_memory(
        model,
        cfg.train.batch_size,
        longest,
        precision,
        cfg.train.gradient_checkpointing,
        lm_head=task_spec(cfg.task.type).lm_head,
    )
    say(
        f"memory estimate: {estimate['total']:,.0f} MB = weights {estimate['weights']:,.0f} + gradients "
        f"{estimate['gradients']:,.0f} + optimizer {estimate['optimizer']:,.0f} + activations "
        f"{estimate['activations']:,.0f} (batch {cfg.train.batch_size} x {longest} tokens, {precision}"
        f"{', checkpointing' if cfg.train.gradient_checkpointing else ''})"
    )
    return {**estimate, "sequence_length": longest}


def _extend_vocabulary(
    model: PreTrainedModel, tokenizer: Any, data: PreparedData, cfg: RunConfig
) -> dict[str, Any]:
    vocabulary = cfg.model.vocabulary
    words = list(vocabulary.add_tokens)
    if vocabulary.mine:
        words += mine_words(data.splits["train"]["text"].tolist(), tokenizer, vocabulary)
    if not words:
        return {"added": 0}
    added = extend_vocabulary(model, tokenizer, words)
    say(f"vocabulary: {added['added']} tokens added (e.g. {', '.join(added['tokens'][:5])})")
    return added


def _check_same_config(run_dir: Path, cfg: RunConfig) -> None:
    """A resumed run must be the interrupted run: any changed setting (but train.resume) is refused."""
    before = flatten(RunDir(run_dir).config().to_dict())
    now_ = flatten(cfg.to_dict())
    changed = sorted(
        k
        for k in before.keys() | now_.keys()
        if k not in ("train.resume", "output.overwrite") and before.get(k) != now_.get(k)
    )
    if changed:
        shown = ", ".join(f"{k}: {before.get(k)!r} → {now_.get(k)!r}" for k in changed[:5])
        raise ConfigError(
            f"train.resume: the config differs from the interrupted run's ({shown}). Resume with the same config, or start a new run."
        )


def _claim_run_dir(cfg: RunConfig) -> RunPlace:
    name = cfg.output.name or f"{cfg.task.type}-{datetime.now():%Y%m%d-%H%M%S}"
    if cfg.train.resume and cfg.output.name is None:
        raise ConfigError(
            "train.resume needs output.name: the interrupted run's name. Set output.name, or drop train.resume."
        )
    check_writable_dir(cfg.output.dir, "output.dir")  # read-only, a file, no permission: one line
    place = claim(cfg.output.dir, name, cfg.output.overwrite, cfg.train.resume)
    if cfg.train.resume:
        refuse_finished(place.work)
        _check_same_config(place.work, cfg)
    return place


def _start_card(
    cfg: RunConfig,
    run_dir: Path,
    data: PreparedData,
    precision: str,
    model_dir: Path,
    write: bool = True,
) -> dict[str, Any]:
    splits = {split: split_sha256(data.splits[split]) for split in SPLITS}
    if data.train_sha256 is not None:  # a memory-mapped train split: its whole content
        splits["train"] = data.train_sha256
    previous: dict[str, Any] = {}
    if cfg.train.resume:
        previous = RunDir(run_dir).previous_card()
        if previous.get("split_sha256") not in (None, splits):
            raise ConfigError(
                f"train.resume: the data changed since {run_dir} was started (its splits differ). "
                "Resume with the same data files, or start a new run."
            )
    if write:
        atomic_write_text(run_dir / CONFIG, dump_yaml(cfg))
    card = base_card(cfg.train.seed, precision, cfg.data.max_length)
    if previous:
        card.update(
            started_at=previous.get("started_at"),
            resumed_at=now(),
            resumed_after=stale_status(previous) or previous.get("status"),
        )
    card.update(
        model={
            "source": cfg.model.name,
            "revision": cfg.model.revision,
            "commit": hub_commit(model_dir),  # hub ids: the exact snapshot, for reproducing the run
            "resolved_dir": str(model_dir),
        },
        task=cfg.task.type,
        method=cfg.method.name,
        data=data.summary(),
        dataset=dataset_record(cfg.data),
        split_sha256=splits,
    )
    if write:
        atomic_write_json(run_dir / CARD, card)
    say(f"run directory: {run_dir}")
    return card


def _describe_data(data: PreparedData) -> None:
    summary = data.summary()["splits"]
    assert isinstance(summary, dict)
    parts = [f"{name} {info['rows']:,} ({info['origin']})" for name, info in summary.items()]
    columns = data.report.get("columns")
    if columns:  # generative data: which columns are the input and the output
        described = ", ".join(f"{role}='{name}'" for role, name in columns.items())
    else:
        described = f"text='{data.text_column}' label='{data.label_column}' labels={list(data.labels.names)}"
    say(f"data: {described}; " + ", ".join(parts))


__all__ = ["TrainResult", "TrainingSession", "prepare_training", "train"]
