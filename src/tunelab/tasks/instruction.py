"""Instruction tuning of decoder-only models (causal_lm with instruction or chat data).

Each conversation is rendered with one chat template (saved with the model), and only the
assistant's answers carry labels. Before training, a pre-flight check shows one rendered
example and its inference prompt, counts truncated examples and examples left with no answer
token, and refuses to train when too many have none: the silent failures of SFT.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datasets import Dataset
from transformers import (
    AutoModelForCausalLM,
    DataCollatorForSeq2Seq,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from tunelab.config import RunConfig
from tunelab.console import say
from tunelab.data import SPLITS, PreparedData, chat_format
from tunelab.data.packing import PackedCollator, check_attention
from tunelab.data.pairs import prepare_pairs
from tunelab.errors import DataError
from tunelab.methods import method_for
from tunelab.models import load_pretrained
from tunelab.tasks.base import Task
from tunelab.tasks.generative import GenerativeTask


class InstructionTask(GenerativeTask):
    name = "causal_lm"

    def __init__(self, cfg: RunConfig | None = None, kind: str = "instruction") -> None:
        super().__init__(cfg)
        self.kind = kind
        self.template = ""
        self.preflight: dict[str, Any] = {}

    def for_run(self, cfg: RunConfig) -> Task:
        return InstructionTask(cfg, self.kind)

    def prepare_data(self, cfg: RunConfig) -> PreparedData:
        return prepare_pairs(cfg, "chat" if self.kind == "chat" else "instruction")

    def load_model(self, model_dir: Path, data: PreparedData, cfg: RunConfig) -> PreTrainedModel:
        model = load_pretrained(
            AutoModelForCausalLM, model_dir, cfg.model, **method_for(cfg).load_kwargs(cfg)
        )
        if cfg.task.packing:
            check_attention(model)
        return model

    def tokenize(
        self, tokenizer: PreTrainedTokenizerBase, data: PreparedData, cfg: RunConfig
    ) -> dict[str, Dataset]:
        self.tokenizer = tokenizer
        self.template = chat_format.choose_template(tokenizer, cfg.task.template)
        out: dict[str, Dataset] = {}
        stats: dict[str, dict[str, float]] = {}
        for split in SPLITS:
            encoded = [
                chat_format.encode(tokenizer, m, cfg.data.max_length)
                for m in data.splits[split]["messages"]
            ]
            count = max(len(encoded), 1)
            stats[split] = {
                "examples": len(encoded),
                "truncated_share": sum(e.truncated for e in encoded) / count,
                "fully_masked_share": sum(all(t == -100 for t in e.labels) for e in encoded)
                / count,
                "eos_in_labels_share": sum(e.eos_in_labels for e in encoded) / count,
                "response_tokens": sum(sum(t != -100 for t in e.labels) for e in encoded),
            }
            out[split] = Dataset.from_dict(
                {
                    "input_ids": [e.input_ids for e in encoded],
                    "attention_mask": [[1] * len(e.input_ids) for e in encoded],
                    "labels": [e.labels for e in encoded],
                    "length": [len(e.input_ids) for e in encoded],
                }
            )
        self.preflight = self._preflight(tokenizer, data, cfg, stats)
        return out

    def _preflight(
        self,
        tokenizer: PreTrainedTokenizerBase,
        data: PreparedData,
        cfg: RunConfig,
        stats: dict[str, dict[str, float]],
    ) -> dict[str, Any]:
        example = list(data.splits["train"]["messages"].iloc[0])
        rendered = chat_format.render(tokenizer, example)
        prompt = chat_format.render(tokenizer, chat_format.prompt_messages(example), prompt=True)
        say(f"template: {self.template}; one training example as the model sees it:\n{rendered}")
        say(f"the matching inference prompt:\n{prompt}")
        train = stats["train"]
        say(
            f"pre-flight: {train['truncated_share']:.1%} of train examples truncated at data.max_length="
            f"{cfg.data.max_length}, {train['fully_masked_share']:.1%} have no answer token left"
        )
        limit = cfg.task.max_fully_masked_share
        worst = max(s["fully_masked_share"] for s in stats.values())
        if worst > limit:
            raise DataError(
                f"{worst:.1%} of the examples of a split lose their whole answer to truncation at "
                f"data.max_length={cfg.data.max_length} (limit task.max_fully_masked_share={limit}). "
                "Raise data.max_length or shorten the prompts."
            )
        warnings = []
        if train["eos_in_labels_share"] == 0:
            warnings.append(
                "EOS never appears in the training labels: the model will not learn to stop. "
                "Check the template and the tokenizer's eos_token."
            )
        for warning in warnings:
            say(f"warning: {warning}")
        return {
            "template": self.template,
            "example_rendered": rendered,
            "inference_prompt": prompt,
            "splits": stats,
            "warnings": warnings,
        }

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> Any:
        if self.run_cfg.task.packing:
            return PackedCollator(tokenizer.pad_token_id, self.run_cfg.data.max_length)
        return self.eval_collator(tokenizer)

    def eval_collator(self, tokenizer: PreTrainedTokenizerBase) -> DataCollatorForSeq2Seq:
        return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)

    def compute_metrics(self, eval_pred: Any) -> dict[str, float]:
        return {}  # eval loss is response-only perplexity; generation is scored after training

    def prompts_and_references(self, session: Any, rows: Any) -> tuple[list[str], list[list[str]]]:
        prompts = [
            chat_format.render(session.tokenizer, chat_format.prompt_messages(list(m)), prompt=True)
            for m in rows["messages"]
        ]
        if "references" in rows:
            references = [list(r) for r in rows["references"]]
        else:
            references = [[list(m)[-1]["content"]] for m in rows["messages"]]
        return prompts, references

    def generation_inputs(self) -> dict[str, Any]:
        return {"max_input_length": self.run_cfg.data.max_length, "add_special_tokens": False}

    def save_extras(self, model_dir: Path, data: PreparedData) -> None:
        probe = list(data.splits["train"]["messages"].iloc[0])
        record = chat_format.template_record(self.tokenizer, self.template, probe)
        chat_format.save_template_record(model_dir, record)
        # Reload what was just saved: training and inference must render the same prompt.
        from transformers import AutoTokenizer

        chat_format.check_saved_template(model_dir, AutoTokenizer.from_pretrained(model_dir))
