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
    TrainingArguments,
)
from transformers.integrations import TensorBoardCallback

from tunelab.config import RunConfig
from tunelab.methods.gradual import GradualUnfreezing
from tunelab.methods.layers import layer_map
from tunelab.tasks.base import Task
from tunelab.training.callbacks import ConciseProgress
from tunelab.training.optimizer import build_optimizer
from tunelab.training.sampling import ShuffledLengthBuckets


def training_arguments(
    cfg: RunConfig, output_dir: Path, precision: str, task: Task | None = None
) -> TrainingArguments:
    from tunelab.tasks import task_for

    t = cfg.train
    task = task or task_for(cfg)
    generating = bool(getattr(task, "generates_during_validation", lambda: False)())
    extra: dict[str, Any] = {}
    if generating:  # Seq2SeqTrainer scores validation by generating (predict_with_generate)
        from tunelab.generation import hf_generation_config

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
        learning_rate=cfg.learning_rate(),
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
        torch_compile=t.compile,
        **extra,
    )


class BucketedSampling:
    """Trainer mixin: length-bucketed batches in random order (train.bucket_order=shuffled)."""

    bucketed: bool = False

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        dataset = train_dataset if train_dataset is not None else self.train_dataset  # type: ignore[attr-defined]
        args = self.args  # type: ignore[attr-defined]
        columns = getattr(dataset, "column_names", ())
        if not self.bucketed or "input_ids" not in columns:
            return super()._get_train_sampler(train_dataset)  # type: ignore[misc]
        # The Trainer drops columns the model does not take (the length column among them).
        lengths = (
            dataset["length"] if "length" in columns else [len(i) for i in dataset["input_ids"]]
        )
        return ShuffledLengthBuckets(
            list(lengths),
            args.train_batch_size * args.gradient_accumulation_steps,
            seed=args.data_seed if args.data_seed is not None else args.seed,
        )


class TunelabTrainer(BucketedSampling, Trainer):
    pass


class TunelabSeq2SeqTrainer(BucketedSampling, Seq2SeqTrainer):
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
    optimizer = build_optimizer(model, cfg.learning_rate(), cfg.train.weight_decay, cfg.method.llrd)
    args = training_arguments(cfg, run_dir / "checkpoints", precision, task)
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
    trainer.bucketed = (
        cfg.train.group_by_length and task.groups_by_length and cfg.train.bucket_order == "shuffled"
    )
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(ConciseProgress(run_dir / "logs" / "train_log.jsonl"))
    tensorboard = TensorBoardCallback()
    tensorboard.logging_dir = str(run_dir / "logs" / "tensorboard")  # `tensorboard --logdir runs`
    trainer.add_callback(tensorboard)
    if cfg.method.name == "gradual_unfreeze":
        steps_per_epoch = len(trainer.get_train_dataloader()) // cfg.train.grad_accum
        trainer.add_callback(
            GradualUnfreezing(layer_map(model), cfg.method.gradual.every_steps, steps_per_epoch)
        )
    if cfg.train.early_stopping_patience is not None:
        trainer.add_callback(
            EarlyStoppingCallback(early_stopping_patience=cfg.train.early_stopping_patience)
        )
    return trainer
