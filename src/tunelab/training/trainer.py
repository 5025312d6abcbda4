"""Build the Hugging Face Trainer for a run from its config (never a home-made loop)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import (
    EarlyStoppingCallback,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PrinterCallback,
    ProgressCallback,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)
from transformers.integrations import TensorBoardCallback
from transformers.trainer_pt_utils import LengthGroupedSampler

from tunelab.config import RunConfig
from tunelab.methods import learning_rate, method_for
from tunelab.runs.place import checkpoint_record, mark_complete
from tunelab.tasks.base import Task
from tunelab.training import distributed
from tunelab.training.callbacks import ConciseProgress, LogLastStep
from tunelab.training.guards import FiniteGuard, FiniteLoss
from tunelab.training.optimizer import build_optimizer
from tunelab.training.sampling import SeededLengthGroupedSampler, ShuffledLengthBuckets


def training_arguments(
    cfg: RunConfig,
    output_dir: Path,
    precision: str,
    task: Task | None = None,
    model: Any = None,
) -> TrainingArguments:
    from tunelab.tasks import task_for

    t = cfg.train
    task = task or task_for(cfg)
    generating = bool(getattr(task, "generates_during_validation", lambda: False)())
    extra: dict[str, Any] = {}
    if generating:  # Seq2SeqTrainer scores validation by generating (predict_with_generate)
        from tunelab.inference.generation import hf_generation_config

        extra = {
            "predict_with_generate": True,
            "generation_config": hf_generation_config(
                cfg.task.generation,
                task.tokenizer,  # type: ignore[attr-defined]
                cfg.task.max_target_length,
            ),
        }
    arguments = Seq2SeqTrainingArguments if generating else TrainingArguments
    return arguments(
        output_dir=str(output_dir),
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.eval_batch_size,
        num_train_epochs=t.epochs,
        max_steps=t.max_steps or -1,
        learning_rate=learning_rate(cfg),
        lr_scheduler_type=t.scheduler,
        warmup_steps=t.warmup_ratio,  # a float in [0, 1) is a share of all steps in transformers 5
        weight_decay=t.weight_decay,
        gradient_accumulation_steps=t.grad_accum,
        max_grad_norm=t.max_grad_norm,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        use_cpu=not torch.cuda.is_available(),
        activation_checkpointing=t.gradient_checkpointing,  # transformers 5's name for it
        # Reentrant checkpointing drops gradients when inputs do not require grad (frozen embeddings, adapters).
        activation_checkpointing_kwargs={"use_reentrant": False}
        if t.gradient_checkpointing
        else None,
        train_sampling_strategy="group_by_length"
        if t.group_by_length and task.groups_by_length
        else "random",  # bucket_order=shuffled: BucketedSampling replaces the sampler
        length_column_name="length",
        eval_strategy=t.eval_every,
        eval_steps=t.eval_steps,
        eval_on_start=t.eval_on_start,
        save_strategy=t.eval_every,
        save_steps=t.eval_steps or 500,  # unused unless eval_every=steps, which requires eval_steps
        save_total_limit=2,  # the best checkpoint and the latest, for resuming
        load_best_model_at_end=True,
        metric_for_best_model=task.best_metric(cfg),
        greater_is_better=task.greater_is_better(task.best_metric(cfg)),
        logging_steps=t.log_every,
        report_to="none",
        disable_tqdm=True,  # ConciseProgress draws the bar and the log lines
        seed=t.seed,
        data_seed=t.seed,
        dataloader_num_workers=0,
        ddp_backend=distributed.backend(),  # gloo on CPU, nccl on CUDA; None for one process
        torch_compile=t.compile,
        **distributed.strategy_arguments(t.distributed, model),  # fsdp / deepspeed, when several
        **extra,
    )


class BucketedSampling:
    """Trainer mixin: training orders that a resumed run replays exactly, epoch after epoch.

    - train.bucket_order=shuffled: length buckets in random order (ShuffledLengthBuckets).
    - sorted (the default): transformers' LengthGroupedSampler, but drawn from a generator seeded
      with seed + epoch (SeededLengthGroupedSampler) instead of the global RNG, whose state at an
      epoch's start differs between a run and its resumed copy.
    Either sampler is told its epoch at every epoch start (_SamplerEpoch).
    """

    bucketed: bool = False
    _sampler_epoch: _SamplerEpoch | None = None

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        dataset = train_dataset if train_dataset is not None else self.train_dataset  # type: ignore[attr-defined]
        args = self.args  # type: ignore[attr-defined]
        columns = getattr(dataset, "column_names", ())
        seed = args.data_seed if args.data_seed is not None else args.seed
        sampler: Any
        if self.bucketed and "input_ids" in columns:
            # The Trainer drops columns the model does not take (the length column among them).
            lengths = (
                dataset["length"] if "length" in columns else [len(i) for i in dataset["input_ids"]]
            )
            # Buckets of one optimizer step's global batch: each process takes its share of
            # every bucket (Accelerate's batch sharding), so N processes see the batches one would.
            sampler = ShuffledLengthBuckets(
                list(lengths),
                args.train_batch_size * args.gradient_accumulation_steps * args.world_size,
                seed=seed,
            )
        else:
            sampler = super()._get_train_sampler(train_dataset)  # type: ignore[misc]
            if type(sampler) is LengthGroupedSampler:
                # The stock sampler groups by one process's batch, so N processes would sort
                # other mega-batches than one process does; grouped by the global batch, each
                # process takes its share of the batches one process would see.
                sampler = SeededLengthGroupedSampler(
                    sampler.batch_size * args.world_size, sampler.lengths, seed
                )
        if isinstance(sampler, ShuffledLengthBuckets | SeededLengthGroupedSampler):
            if self._sampler_epoch is None:
                self._sampler_epoch = _SamplerEpoch(sampler)
                self.add_callback(self._sampler_epoch)  # type: ignore[attr-defined]
            self._sampler_epoch.sampler = sampler
        return sampler


class _SamplerEpoch(TrainerCallback):
    """Tell the sampler its epoch at every epoch start, resumed epochs included.

    transformers 5.24 calls `set_epoch` on the loader it made with `skip_first_batches` when a run
    resumes mid-epoch, and that loader does not pass it on to the sampler: the resumed epoch was
    drawn in epoch 0's order, so a run resumed after its first epoch trained on other batches.
    """

    def __init__(self, sampler: Any) -> None:
        self.sampler = sampler

    def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.sampler.set_epoch(int((state.epoch or 0) + 1e-6))


class CompleteCheckpoints:
    """Trainer mixin: a checkpoint counts only once its completion record is written (rundir.py).

    The Trainer writes `checkpoint-N/` file by file; a kill or a full disk mid-way leaves a folder
    that looks like a checkpoint. The record is written last, and the rotation of old checkpoints
    waits for it, so the previous complete checkpoint survives any failure during a save. The record
    also keeps the running loss sum and the logging position, so a resumed run reports the same
    train loss and loss curve as one that was never interrupted.
    """

    resumed_from: dict[str, Any] | None = None

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
        from transformers.trainer_utils import rotate_checkpoints as rotate

        args = self.args  # type: ignore[attr-defined]
        state = self.state  # type: ignore[attr-defined]
        limit = args.save_total_limit
        args.save_total_limit = None  # rotate only after the new checkpoint is complete
        try:
            super()._save_checkpoint(model, trial)  # type: ignore[misc]
        finally:
            args.save_total_limit = limit
        residual = _mean_over_ranks(getattr(self, "_tr_loss", None), args)  # every rank calls it
        if not args.should_save:
            return
        run_dir = Path(self._get_output_dir(trial=trial))  # type: ignore[attr-defined]
        mark_complete(
            run_dir / f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}",
            {
                "loss_sum": getattr(self, "_total_loss_scalar", 0.0),
                "unlogged_loss": float(residual.item()) if residual is not None else 0.0,
                "last_logged_step": getattr(self, "_globalstep_last_logged", state.global_step),
            },
        )
        rotate(
            output_dir=str(run_dir),
            save_total_limit=limit,
            best_model_checkpoint=state.best_model_checkpoint,
            use_mtime=True,
        )


def _mean_over_ranks(loss: Any, args: Any) -> Any:
    """The loss since the last log, averaged over the processes as the Trainer's own log does.

    Each rank holds only its own part; a record of rank 0's alone would make the first log
    after a multi-process resume differ from the uninterrupted run's.
    """
    if loss is None or args.world_size <= 1:
        return loss
    from transformers.trainer_pt_utils import nested_gather

    return nested_gather(loss.detach(), args.parallel_mode).mean()


class _RestoreLogging(TrainerCallback):
    """On resume, put back the loss sums of the interrupted part (see CompleteCheckpoints)."""

    def __init__(self, trainer: Any, record: dict[str, Any]) -> None:
        self.trainer, self.record = trainer, record

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        trainer, record = self.trainer, self.record
        trainer._total_loss_scalar = float(record.get("loss_sum", 0.0))
        trainer._tr_loss = trainer._tr_loss + float(record.get("unlogged_loss", 0.0))
        trainer._globalstep_last_logged = int(record.get("last_logged_step", state.global_step))


def resume_training(trainer: Trainer, checkpoint: Path | None) -> Any:
    """`trainer.train()`, from `checkpoint` when given; the train loss covers the whole run either way."""
    if checkpoint is None:
        return trainer.train()
    record = checkpoint_record(checkpoint) or {}
    restore = _RestoreLogging(trainer, record)
    trainer.add_callback(restore)
    try:
        output = trainer.train(resume_from_checkpoint=str(checkpoint))
    finally:
        trainer.remove_callback(restore)
    steps = trainer.state.global_step
    total = getattr(trainer, "_total_loss_scalar", None)  # restored sum + this call's, see above
    if "loss_sum" in record and steps and total is not None:
        # the Trainer divides the whole sum by this call's steps only (0 after a kill that came
        # between the last checkpoint and the end): the mean over every step, as uninterrupted
        output = type(output)(output.global_step, total / steps, output.metrics)
    return output


def loss_counts_items(model: Any) -> bool:
    """Whether the model's own loss honours `num_items_in_batch` (transformers' shared loss
    functions for causal and masked LMs do; a head that calls CrossEntropyLoss itself does not)."""
    import inspect

    base = model
    while hasattr(base, "get_base_model") and base is not base.get_base_model():
        base = base.get_base_model()  # peft wrappers
    try:
        source = inspect.getsource(type(base).forward)
    except (OSError, TypeError):
        return False
    if "self.loss_function(" not in source:
        return False
    function = getattr(base, "loss_function", None)
    try:
        return (
            function is not None and "num_items_in_batch" in inspect.signature(function).parameters
        )
    except (TypeError, ValueError):
        return False


class TunelabTrainer(FiniteLoss, CompleteCheckpoints, BucketedSampling, Trainer):
    pass


class TunelabSeq2SeqTrainer(FiniteLoss, CompleteCheckpoints, BucketedSampling, Seq2SeqTrainer):
    pass


def build_trainer(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    datasets: dict[str, Any],
    task: Task,
    cfg: RunConfig,
    run_dir: Path,
    precision: str,
    loss_function: Any = None,
) -> Trainer:
    optimizer = build_optimizer(model, learning_rate(cfg), cfg.train.weight_decay, cfg.method.llrd)
    args = training_arguments(cfg, run_dir / "checkpoints", precision, task, model)
    trainer_class = (
        TunelabSeq2SeqTrainer if isinstance(args, Seq2SeqTrainingArguments) else TunelabTrainer
    )
    trainer = trainer_class(
        model=model,
        optimizers=(optimizer, None),  # the Trainer adds the configured LR schedule
        args=args,
        train_dataset=datasets["train"],
        eval_dataset=datasets["validation"],
        data_collator=task.collator(tokenizer),
        processing_class=tokenizer,
        compute_metrics=task.compute_metrics,
        compute_loss_func=loss_function,
    )
    if loss_function is None and not loss_counts_items(model):
        # The model's forward takes **kwargs, so the Trainer assumes its loss divides by the
        # items of the whole (accumulated, all-process) batch and stops dividing by the
        # accumulation steps, and multiplies by the process count; BERT-style heads take a plain
        # mean, so that scaled the gradients by both. Told the truth, it divides as it should.
        trainer.model_accepts_loss_kwargs = False
    trainer.bucketed = (
        cfg.train.group_by_length and task.groups_by_length and cfg.train.bucket_order == "shuffled"
    )
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(FiniteGuard(check_gradients=precision != "fp16"))
    trainer.add_callback(ConciseProgress(run_dir / "logs" / "train_log.jsonl"))
    trainer.add_callback(LogLastStep())
    tensorboard = TensorBoardCallback()
    tensorboard.logging_dir = str(run_dir / "logs" / "tensorboard")  # `tensorboard --logdir runs`
    trainer.add_callback(tensorboard)
    for callback in method_for(cfg).callbacks(model, trainer, cfg):  # e.g. gradual unfreezing
        trainer.add_callback(callback)
    if cfg.train.early_stopping_patience is not None:
        trainer.add_callback(
            EarlyStoppingCallback(early_stopping_patience=cfg.train.early_stopping_patience)
        )
    return trainer
