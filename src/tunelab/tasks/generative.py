"""What seq2seq and instruction tuning share: perplexity on held-out targets before and after
training, and generation on test rows scored with ROUGE/BLEU/chrF/exact match.

A generative task is bound to one run's config (`for_run`), since its tokenization, collator
and metrics depend on settings (prefix, template, packing) that classification does not have.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, cast

import torch
from transformers import PreTrainedModel

from tunelab.config import RunConfig
from tunelab.console import say
from tunelab.evaluation.error_analysis import generation_errors
from tunelab.evaluation.text_metrics import GENERATION_METRICS, text_metrics
from tunelab.inference.generation import generate, hf_generation_config
from tunelab.io import write_table
from tunelab.models.precision import autocast
from tunelab.tasks.base import Task

EVAL_SPLITS = ("validation", "test")


class GenerativeTask:
    name = ""
    metric_names: tuple[str, ...] = ("loss",)
    default_max_new_tokens = 128
    groups_by_length = True
    shifted = True  # causal LM loss: labels[1:] are predicted (seq2seq predicts every label)

    def __init__(self, cfg: RunConfig | None = None) -> None:
        self.cfg = cfg
        self.tokenizer: Any = None

    def for_run(self, cfg: RunConfig) -> Task:
        return cast(Task, type(self)(cfg))  # subclasses complete the Task protocol

    @property
    def run_cfg(self) -> RunConfig:
        if self.cfg is None:
            raise RuntimeError(f"{self.name}: call for_run(cfg) first (a tunelab bug)")
        return self.cfg

    def best_metric(self, cfg: RunConfig) -> str:
        return cfg.train.best_metric or "loss"

    def greater_is_better(self, metric: str) -> bool:
        return metric not in ("loss", "perplexity")

    def loss_function(self, data: Any, cfg: RunConfig) -> Any:
        return None

    def before_training(self, session: Any) -> dict[str, Any]:
        """The base model's scores: perplexity, and generation when eval.generate_before is on."""
        before: dict[str, Any] = {
            "perplexity": perplexities(session, self.eval_collator(session.tokenizer), self.shifted)
        }
        if self.run_cfg.eval.generate_before:
            before["generation"] = self.score_generations(
                session, session.trainer.model, session.run_dir, "before"
            )
        return before

    # Subclasses provide these three.
    def eval_collator(self, tokenizer: Any) -> Any:
        raise NotImplementedError

    def prompts_and_references(self, session: Any, rows: Any) -> tuple[list[str], list[list[str]]]:
        raise NotImplementedError

    def generation_inputs(self) -> dict[str, Any]:
        """max_input_length and add_special_tokens for `generate`."""
        raise NotImplementedError

    def final_metrics(
        self, session: Any, trained: PreTrainedModel, before: dict[str, Any]
    ) -> dict[str, Any]:
        after = perplexities(session, self.eval_collator(session.tokenizer), self.shifted)
        metrics: dict[str, Any] = {
            split: {
                "examples": len(session.encoded[split]),
                "perplexity_before": before["perplexity"][split],
                "perplexity_after": after[split],
                "relative_change": after[split] / before["perplexity"][split] - 1,
            }
            for split in EVAL_SPLITS
        }
        generation = self.score_generations(session, trained, session.run_dir, "after")
        if generation:
            errors = generation.pop("errors")
            metrics["test"]["generation"] = generation
            metrics["test"]["error_analysis"] = errors
        if before.get("generation"):
            before["generation"].pop("errors", None)
            metrics["test"]["generation_before"] = before["generation"]
        return metrics

    def score_generations(
        self, session: Any, model: PreTrainedModel, run_dir: Path, when: str
    ) -> dict[str, Any]:
        """Generate for the first eval.generate_rows test rows; write them with per-example ROUGE-L.

        `when` is "before" (the base model, a baseline) or "after" training.
        """
        cfg = self.run_cfg
        rows = session.data.splits["test"].head(cfg.eval.generate_rows)
        if len(rows) == 0:
            return {}
        prompts, references = self.prompts_and_references(session, rows)
        say(f"generating answers for {len(rows)} test rows to score them ({when} training)")
        config = hf_generation_config(
            cfg.task.generation, session.tokenizer, self.default_max_new_tokens
        )
        predictions = generate(
            model,
            session.tokenizer,
            prompts,
            config,
            batch_size=cfg.train.eval_batch_size // max(config.num_beams, 1) or 1,
            precision=session.precision,
            **self.generation_inputs(),
        )
        scores = text_metrics(
            predictions, references, cfg.task.answer_pattern, cfg.task.exact_match_ignores_space
        )
        per_example = scores.pop("rougeL_per_example")
        table = rows[["row"]].assign(
            prompt=prompts,
            prediction=predictions,
            reference=[r[0] for r in references],
            rougeL=per_example,
        )
        suffix = "" if when == "after" else "_before"
        write_table(table, run_dir / "predictions" / f"test_generations{suffix}.jsonl")
        scores["errors"] = generation_errors(
            predictions, [r[0] for r in references], prompts, per_example
        )
        scores["example"] = {
            "prompt": prompts[0],
            "prediction": predictions[0],
            "reference": references[0][0],
        }
        return scores


def _without_length(example: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in example.items() if key != "length"}


def perplexities(session: Any, collate: Any, shifted: bool) -> dict[str, float]:
    """exp(mean loss over target tokens) per eval split, by a plain forward pass.

    `shifted`: causal LMs predict labels[1:] (the first label has no context), others every label.
    """
    model = session.trainer.model
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    size = session.cfg.train.eval_batch_size
    result = {}
    for split in EVAL_SPLITS:
        examples = session.encoded[split]
        loss_sum, tokens = 0.0, 0
        for start in range(0, len(examples), size):
            chunk = range(start, min(start + size, len(examples)))
            batch = collate([_without_length(examples[i]) for i in chunk])
            batch = {key: value.to(device) for key, value in batch.items() if key != "length"}
            with torch.no_grad(), autocast(session.precision, device.type):
                loss = model(**batch).loss.float().item()
            targets = batch["labels"][:, 1:] if shifted else batch["labels"]
            count = int((targets != -100).sum())
            loss_sum, tokens = loss_sum + loss * count, tokens + count
        result[split] = math.exp(loss_sum / max(tokens, 1))
    model.train(was_training)
    return result


__all__ = ["GENERATION_METRICS", "GenerativeTask", "perplexities"]
