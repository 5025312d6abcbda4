"""The workflows, each a short list of named steps: train, evaluate, predict."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import datasets
import pandas as pd
import torch
from pydantic import ValidationError
from transformers import PreTrainedModel, Trainer, set_seed
from transformers.utils import logging as hf_logging

from tunelab.config import RunConfig, dump_yaml
from tunelab.console import say
from tunelab.data import SPLITS, PreparedData, load_labelled_file, read_texts
from tunelab.data.inspect import build_report, write_report
from tunelab.data.stream import check_predict_request, chunk_writer, iter_text_chunks
from tunelab.errors import ConfigError, ModelError, OutputError, RunDirError, TunelabError
from tunelab.files import check_writable_dir
from tunelab.inference import Predictor
from tunelab.io import (
    atomic_directory,
    atomic_write_json,
    atomic_write_text,
    finite,
    flatten,
    write_table,
)
from tunelab.methods import METHODS, count_parameters
from tunelab.methods.vocab import extend_vocabulary, mine_words
from tunelab.models import load_tokenizer, resolve_model_dir
from tunelab.runcard import base_card, now, split_sha256
from tunelab.rundir import (
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
from tunelab.tasks import Task, task_for
from tunelab.tasks.classification import score_split
from tunelab.tracking import check_tracking, track_run
from tunelab.training.guards import refuse_non_finite
from tunelab.training.memory import PeakMemory
from tunelab.training.memory import estimate as estimate_memory
from tunelab.training.precision import resolve_precision
from tunelab.training.trainer import build_trainer, resume_training


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
    with run_status(session):
        checkpoint = resume_checkpoint(session.run_dir) if session.cfg.train.resume else None
        before = session.task.before_training(session)
        if checkpoint is not None:
            say(f"resuming from {checkpoint}")
        train_output = resume_training(session.trainer, checkpoint)
        trained = cast(PreTrainedModel, session.trainer.model)  # the best checkpoint, restored
        refuse_non_finite(trained, "the trained model")
        memory = _measured_memory(session)
        _save_model(session, trained)
        metrics = _final_metrics(session, trained, before, train_output)
        metrics["memory"] = memory
        atomic_write_json(session.run_dir / "metrics.json", metrics)
        wall = time.perf_counter() - started
        session.card.update(status="completed", finished_at=now(), wall_seconds=round(wall, 2))
        atomic_write_json(session.run_dir / "run_card.json", session.card)
        from tunelab.report.html import write_report

        write_report(session.run_dir)
        session.place.publish()  # an overwrite: the finished run takes the old one's place
    track_run(session.cfg, session.place.final, metrics)
    return TrainResult(session.place.final, metrics, wall)


def _save_model(session: TrainingSession, trained: PreTrainedModel) -> None:
    with atomic_directory(session.run_dir / "model") as tmp:  # safetensors only, no pickle
        trained.save_pretrained(tmp)
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
        session.card.update(status=status, finished_at=now(), reason=reason)
        with suppress(OSError):  # a full disk may refuse even this small write
            atomic_write_json(run_dir / "run_card.json", session.card)
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
    cfg = cfg.validated()
    check_tracking(cfg)
    hf_logging.set_verbosity_error()  # load reports and deprecations would drown the progress lines
    hf_logging.disable_progress_bar()
    if not sys.stderr.isatty():  # bars only help on a terminal; in logs they are noise
        datasets.disable_progress_bars()
    task = task_for(cfg)
    method = METHODS.get(cfg.method.name)
    precision = resolve_precision(cfg.train.precision)
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)

    data = task.prepare_data(cfg)  # every data problem surfaces before anything is written
    model_dir = resolve_model_dir(cfg.model.name)
    _check_max_length(cfg, model_dir)
    place = _claim_run_dir(cfg)
    run_dir = place.work
    card = _start_card(cfg, run_dir, data, precision, model_dir)
    _describe_data(data)

    set_seed(cfg.train.seed)
    tokenizer = load_tokenizer(model_dir, cfg.model)
    data_report = build_report(data, tokenizer, cfg.data.max_length)
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
        f"({params['trainable_share']:.1%}), method {cfg.method.name}, lr {cfg.learning_rate():g}, precision {precision}"
    )
    encoded = task.tokenize(tokenizer, data, cfg)
    preflight = getattr(task, "preflight", None)
    if preflight:  # instruction tuning: the rendered example, truncation and masking shares
        card["preflight"] = preflight
        atomic_write_json(run_dir / "preflight.json", preflight)
    card["memory_estimate_mb"] = _announce_memory(model, encoded, cfg, precision)
    trainer = build_trainer(
        model, tokenizer, encoded, task, cfg, run_dir, precision, task.loss_function(data, cfg)
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
        lm_head=cfg.task.type != "classification",
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


def inspect_data(cfg: RunConfig) -> dict[str, Any]:
    """The data report of `tunelab data inspect`: counts, duplicates, leakage, lengths, warnings."""
    cfg = cfg.validated()
    data = task_for(cfg).prepare_data(cfg)
    try:
        tokenizer = load_tokenizer(resolve_model_dir(cfg.model.name), cfg.model)
    except ModelError:
        tokenizer = None  # lengths in words only; the report says which tokenizer was used
    return build_report(data, tokenizer, cfg.data.max_length)


def evaluate(
    run_dir: str | Path,
    data_file: str | Path | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
) -> dict[str, Any]:
    """Score a finished run on its own test split, or on another labelled file (`data_file`).

    `text_column`/`label_column` name the columns of `data_file` (else the run's settings, or
    auto-detection by the common names); its problems advise --text-column/--label-column.
    """
    from tunelab.data.load import EVALUATE, check_data_file

    run_dir = Path(run_dir)
    cfg = _run_config(run_dir)
    _require_classification(cfg, run_dir, "evaluate")
    if data_file is not None:
        check_data_file(data_file, what="--data file", advice=EVALUATE)
    elif text_column is not None or label_column is not None:
        raise ConfigError("--text-column and --label-column go with --data FILE.")
    predictor = Predictor.from_run_dir(run_dir, cfg.train.eval_batch_size)
    if data_file is None:
        frame, name = run_test_split(run_dir), "test"
    else:
        columns = {
            k: v
            for k, v in (("text_column", text_column), ("label_column", label_column))
            if v is not None
        }
        frame, name = (
            load_labelled_file(
                data_file, cfg.data.model_copy(update=columns), predictor.labels, EVALUATE
            ),
            Path(data_file).stem,
        )
    report = score_split(predictor, frame)
    report["data"] = str(data_file) if data_file else "the run's test split"
    atomic_write_json(run_dir / "evaluations" / f"{name}.json", report)
    return report


def run_test_split(run_dir: str | Path) -> pd.DataFrame:
    """A run's own test split, rebuilt from its config; refused if its data files changed since."""
    run_dir = Path(run_dir)
    cfg = _run_config(run_dir)
    data = task_for(cfg).prepare_data(cfg)
    _check_same_split(run_dir, data)
    return data.splits["test"]


def predict(
    run_dir: str | Path,
    texts: list[str] | None = None,
    input_file: str | Path | None = None,
    output_file: str | Path | None = None,
    text_column: str | None = None,
    batch_size: int = 64,
    chunk_rows: int = 10_000,
    load_in: str | None = None,
) -> pd.DataFrame:
    """Label texts (given directly or in a file) in memory: the rows plus label and probabilities.

    Also written to `output_file` (.csv or .jsonl) when given. For files too large for memory,
    `predict_file` streams them chunk by chunk (what `tunelab predict --input` runs).
    """
    if (texts is None) == (input_file is None):
        raise ConfigError(
            "give either texts or an input file to predict, not both and not neither."
        )
    check_predict_request(input_file, output_file, batch_size, chunk_rows, texts)
    predictor = _predictor(run_dir, batch_size, load_in)
    if texts is not None:
        frame = label_frame(predictor, pd.DataFrame({"text": texts}), "text")
    else:
        assert input_file is not None
        chunks = iter_text_chunks(input_file, text_column, chunk_rows)
        frame = pd.concat(
            [label_frame(predictor, chunk, column) for chunk, column in chunks], ignore_index=True
        )
    if output_file is not None:
        with chunk_writer(output_file) as writer:
            writer.write(frame)
    return frame


def predict_file(
    run_dir: str | Path,
    input_file: str | Path,
    output_file: str | Path | None,
    text_column: str | None = None,
    batch_size: int = 64,
    chunk_rows: int = 10_000,
    progress: Any = None,
    load_in: str | None = None,
) -> int:
    """Stream a file through the model; write CSV/JSONL (or print JSONL); returns the rows done.

    `progress(done_rows)` is called after every chunk (the CLI draws its bar with it).
    """
    check_predict_request(input_file, output_file, batch_size, chunk_rows)
    predictor = _predictor(run_dir, batch_size, load_in)
    chunks = iter_text_chunks(input_file, text_column, chunk_rows)
    done = 0
    if output_file is None:
        for chunk, column in chunks:
            for record in label_frame(predictor, chunk, column).to_dict(orient="records"):
                print(
                    json.dumps(finite(record), ensure_ascii=False, default=float, allow_nan=False)
                )
            done += len(chunk)
            if progress:
                progress(done)
        return done
    with chunk_writer(output_file) as writer:
        for chunk, column in chunks:
            writer.write(label_frame(predictor, chunk, column))
            done += len(chunk)
            if progress:
                progress(done)
    return done


def _predictor(run_dir: str | Path, batch_size: int, load_in: str | None = None) -> Predictor:
    hf_logging.disable_progress_bar()  # a weight-loading bar would mix with output and errors
    run_path = Path(run_dir)
    if (run_path / "config.yaml").is_file():
        _require_classification(_run_config(run_path), run_path, "predict")
    return Predictor.from_run_dir(run_dir, batch_size, load_in)


def label_frame(predictor: Predictor, frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """The frame with label, probability and one prob_<label> column per class.

    An input column with one of those names (a labelled file's own 'label') is kept as
    input_<name>, never silently replaced by the prediction.
    """
    ids, probabilities = predictor.predict(frame[column].astype(str).tolist())
    produced = {"label", "probability", *(f"prob_{name}" for name in predictor.labels.names)}
    out = frame.rename(columns={c: f"input_{c}" for c in frame.columns if c in produced})
    out["label"] = [predictor.labels.names[i] for i in ids]
    out["probability"] = probabilities.max(-1)
    for j, name in enumerate(predictor.labels.names):
        out[f"prob_{name}"] = probabilities[:, j]
    return out


def generate(
    run_dir: str | Path,
    prompts: list[str] | None = None,
    input_file: str | Path | None = None,
    output_file: str | Path | None = None,
    column: str | None = None,
    max_new_tokens: int | None = None,
    batch_size: int = 8,
) -> pd.DataFrame:
    """Generate for prompts (given directly or in a file); write CSV or JSONL when `output_file` is set."""
    from tunelab.data.pairs import SOURCE_COLUMN_NAMES
    from tunelab.generator import Generator

    run_path = Path(run_dir)
    if (prompts is None) == (input_file is None):
        raise ConfigError(
            "give either prompts or an input file to generate from, not both and not neither."
        )
    generator = Generator.from_run_dir(run_path, _run_config(run_path))
    if input_file is not None:
        frame, name = read_texts(input_file, column, candidates=SOURCE_COLUMN_NAMES)
        texts = frame[name].astype(str).tolist()
    else:
        frame = pd.DataFrame({"prompt": prompts})
        texts = list(prompts or [])
    out = frame.copy()
    out["generated"] = generator.generate(texts, batch_size, max_new_tokens)
    if output_file is not None:
        write_table(out, Path(output_file))
    return out


def _check_max_length(cfg: RunConfig, model_dir: Path) -> None:
    from transformers import AutoConfig

    limit = getattr(AutoConfig.from_pretrained(model_dir), "max_position_embeddings", None)
    if isinstance(limit, int) and cfg.data.max_length > limit:
        raise ConfigError(
            f"data.max_length must be at most {limit} for {cfg.model.name}; got {cfg.data.max_length}. Set data.max_length={limit} or less."
        )


def _require_classification(cfg: RunConfig, run_dir: Path, command: str) -> None:
    if cfg.task.type != "classification":
        raise RunDirError(
            f"{run_dir} is a {cfg.task.type} run; `tunelab {command}` serves classification runs. "
            "Its perplexities (and generation scores) are in metrics.json; `tunelab generate` writes text with it."
        )


def _check_same_config(run_dir: Path, cfg: RunConfig) -> None:
    """A resumed run must be the interrupted run: any changed setting (but train.resume) is refused."""
    before = flatten(_run_config(run_dir).to_dict())
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
    cfg: RunConfig, run_dir: Path, data: PreparedData, precision: str, model_dir: Path
) -> dict[str, Any]:
    splits = {split: split_sha256(data.splits[split]) for split in SPLITS}
    previous: dict[str, Any] = {}
    if cfg.train.resume:
        previous = json.loads((run_dir / "run_card.json").read_text(encoding="utf-8"))
        if previous.get("split_sha256") not in (None, splits):
            raise ConfigError(
                f"train.resume: the data changed since {run_dir} was started (its splits differ). "
                "Resume with the same data files, or start a new run."
            )
    atomic_write_text(run_dir / "config.yaml", dump_yaml(cfg))
    card = base_card(cfg.train.seed, precision, cfg.data.max_length)
    if previous:
        card.update(
            started_at=previous.get("started_at"),
            resumed_at=now(),
            resumed_after=stale_status(previous) or previous.get("status"),
        )
    card.update(
        model={"source": cfg.model.name, "resolved_dir": str(model_dir)},
        task=cfg.task.type,
        method=cfg.method.name,
        data=data.summary(),
        split_sha256=splits,
    )
    atomic_write_json(run_dir / "run_card.json", card)
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


def _run_config(run_dir: Path) -> RunConfig:
    if not (run_dir / "config.yaml").is_file():
        raise RunDirError(
            f"{run_dir} is not a tunelab run directory (no config.yaml). Pass the directory `tunelab train` printed."
        )
    # Schema only: a finished run must not need its training files or base model to exist anymore.
    from tunelab.config import read_yaml

    try:
        return RunConfig.model_validate(read_yaml(run_dir / "config.yaml"))
    except ValidationError as exc:
        raise RunDirError(
            f"{run_dir}/config.yaml is not a valid run config ({exc.error_count()} problems). Re-run training."
        ) from None


def _check_same_split(run_dir: Path, data: PreparedData) -> None:

    card = json.loads((run_dir / "run_card.json").read_text(encoding="utf-8"))
    recorded = card.get("split_sha256", {}).get("test")
    if recorded and recorded != split_sha256(data.splits["test"]):
        raise RunDirError(
            f"{run_dir}: the data files changed since this run, so its test split cannot be rebuilt. "
            "Pass the labelled file to score with --data."
        )


__all__ = ["TrainResult", "evaluate", "inspect_data", "predict", "train"]
