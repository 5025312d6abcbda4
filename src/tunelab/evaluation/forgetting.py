"""Catastrophic forgetting: does the fine-tuned backbone still model general-domain text?

Fine-tuning on a narrow task can erode what the backbone learnt in pre-training. We measure
that on general text (a WikiText-2 sample, see data/general_text/) with the base model and with
the fine-tuned backbone: masked-LM pseudo-perplexity for encoders, causal-LM perplexity for
decoders. A task model (e.g. *ForSequenceClassification) has no LM head, so its backbone is put
under the *base* checkpoint's LM head (`lm_with_backbone`). Limitation: that head was never
fine-tuned while the backbone was, so part of a rise can be head/backbone mismatch rather than
lost knowledge; where the head is tied to the input embeddings its output matrix does follow the
fine-tuned embeddings. The numbers compare one model before and after; they are not comparable
across tokenizers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
import torch.nn.functional as F

from tunelab.errors import ModelError
from tunelab.models.precision import autocast

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from tunelab.config import ModelConfig

Kind = Literal["mlm", "clm"]
KINDS = ("mlm", "clm")
SUGGESTION = (
    "Consider a lower learning rate, fewer epochs, freezing the lower layers, "
    "or a parameter-efficient method such as LoRA."
)


def is_heading(line: str) -> bool:
    """WikiText headings look like ' = Title = ' or ' = = Section = = ': not prose."""
    text = line.strip()
    return len(text) >= 2 and text.startswith("=") and text.endswith("=")


def read_general_text(
    path: str | Path, max_passages: int | None = 200, min_chars: int = 80
) -> list[str]:
    """The first `max_passages` prose lines of a raw text file (stripped), in file order.

    Headings and short lines (captions, list items) are skipped: they are not running text.
    File order keeps the choice deterministic, so before/after numbers see the same passages.
    """
    passages = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if text and not is_heading(text) and len(text) >= min_chars:
            passages.append(text)
            if max_passages is not None and len(passages) >= max_passages:
                break
    return passages


@contextmanager
def _evaluating(model: Any) -> Iterator[torch.device]:
    """Eval mode (no dropout) for the duration, the previous mode restored; yields the device."""
    was_training = model.training
    model.eval()
    try:
        yield next(model.parameters()).device
    finally:
        model.train(was_training)


def clm_blocks(tokenizer: PreTrainedTokenizerBase, texts: list[str], block: int) -> list[list[int]]:
    """Token-id blocks exactly as causal_lm training builds them (texts joined, tail dropped)."""
    from tunelab.data.blocks import group_into_blocks

    return [list(ids) for ids in group_into_blocks(tokenizer, texts, block)["input_ids"]]


def clm_perplexity(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    max_length: int = 128,
    batch_size: int = 8,
    precision: str = "fp32",
) -> dict[str, Any]:
    """exp(mean next-token loss), weighted by token: sum of per-token losses / predicted tokens.

    Each block of `max_length` tokens predicts its last max_length-1 tokens (the first has no
    context). A tail shorter than one block is dropped, as in training.
    """
    blocks = clm_blocks(tokenizer, texts, max_length)
    loss_sum, count = 0.0, 0
    with _evaluating(model) as device, torch.inference_mode():
        for start in range(0, len(blocks), batch_size):
            ids = torch.tensor(blocks[start : start + batch_size], device=device)
            with autocast(precision, device.type):
                logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
            targets = ids[:, 1:]
            losses = F.cross_entropy(
                logits[:, :-1].float().reshape(-1, logits.shape[-1]),
                targets.reshape(-1),
                reduction="none",
            )
            loss_sum += float(losses.double().sum())
            count += targets.numel()
    return {"perplexity": math.exp(loss_sum / count), "tokens": count}


def _scored_positions(
    tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int, max_tokens: int | None
) -> list[tuple[dict[str, list[int]], int]]:
    """(encoding, position) for every token to score: texts in order, left to right, capped.

    Special tokens are skipped, added ([CLS], [SEP]) or literal ([UNK] too: not a word to predict).
    """
    special_ids = set(tokenizer.all_special_ids)
    rows: list[tuple[dict[str, list[int]], int]] = []
    for text in texts:
        encoded = tokenizer(
            text, truncation=True, max_length=max_length, return_special_tokens_mask=True
        )
        added = encoded.pop("special_tokens_mask")
        features = {key: list(value) for key, value in encoded.items()}
        for position, token in enumerate(features["input_ids"]):
            if max_tokens is not None and len(rows) >= max_tokens:
                return rows
            if not added[position] and token not in special_ids:
                rows.append((features, position))
    return rows


def _masked_batch(
    rows: list[tuple[dict[str, list[int]], int]], mask_id: int, pad_id: int, device: torch.device
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """One row per masked copy, right-padded (absolute positions stay put); plus positions, targets."""
    width = max(len(features["input_ids"]) for features, _ in rows)
    fill = {"input_ids": pad_id}  # attention_mask, token_type_ids: 0
    batch = {
        key: torch.tensor(
            [f[key] + [fill.get(key, 0)] * (width - len(f[key])) for f, _ in rows], device=device
        )
        for key in rows[0][0]
    }
    positions = torch.tensor([position for _, position in rows], device=device)
    index = torch.arange(len(rows), device=device)
    targets = batch["input_ids"][index, positions].clone()
    batch["input_ids"][index, positions] = mask_id
    return batch, positions, targets


def mlm_pseudo_perplexity(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    max_length: int = 64,
    max_tokens: int | None = 2000,
    batch_size: int = 32,
    precision: str = "fp32",
) -> dict[str, Any]:
    """Pseudo-perplexity (Salazar et al. 2020): exp(-mean log p(token | text with it masked)).

    MLMs have no left-to-right likelihood, so each non-special token of each text (truncated at
    `max_length`) is masked alone and its original id scored. That is one forward pass per
    token, hence `max_tokens` (first texts first, deterministic) to bound CPU time.
    """
    if tokenizer.mask_token_id is None:
        raise ModelError("pseudo-perplexity needs a tokenizer with a mask token (an MLM model).")
    rows = _scored_positions(tokenizer, texts, max_length, max_tokens)
    if not rows:
        raise ValueError("no token to score: the texts are empty or hold only special tokens.")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    head = _position_wise_head(model)
    log_prob_sum = 0.0
    with _evaluating(model) as device, torch.inference_mode():
        for start in range(0, len(rows), batch_size):
            batch, positions, targets = _masked_batch(
                rows[start : start + batch_size], tokenizer.mask_token_id, pad_id, device
            )
            with autocast(precision, device.type):
                if start == 0 and head is not None:
                    head = head if _head_shortcut_agrees(model, batch, positions, head) else None
                logits = _masked_logits(model, batch, positions, head)
            log_probs = torch.log_softmax(logits.float(), dim=-1)
            index = torch.arange(len(targets), device=device)
            log_prob_sum += float(log_probs[index, targets].double().sum())
    return {"pseudo_perplexity": math.exp(-log_prob_sum / len(rows)), "tokens": len(rows)}


def _position_wise_head(model: Any) -> Any | None:
    """The LM head when it is the one module beside the backbone (BERT, RoBERTa, ALBERT, MPNet…).

    Such heads work token by token, so feeding them only the masked positions skips the vocab
    projection of every other position: about half the CPU time of a small encoder. Models
    with a split head (DistilBERT, ELECTRA, ModernBERT) get None and a plain forward.
    """
    if model.base_model is model:
        return None
    others = [m for name, m in model.named_children() if name != model.base_model_prefix]
    return others[0] if len(others) == 1 else None


def _masked_logits(
    model: Any, batch: dict[str, torch.Tensor], positions: torch.Tensor, head: Any | None
) -> torch.Tensor:
    """Logits at each row's masked position, shape (rows, vocab); `head`: project only those."""
    index = torch.arange(len(positions), device=positions.device)
    if head is None:
        return model(**batch).logits[index, positions]

    def only_masked(module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
        return (args[0][index, positions].unsqueeze(1), *args[1:])

    handle = head.register_forward_pre_hook(only_masked)
    try:
        return model(**batch).logits[:, 0]
    finally:
        handle.remove()


def _head_shortcut_agrees(
    model: Any, batch: dict[str, torch.Tensor], positions: torch.Tensor, head: Any
) -> bool:
    """Checked once, on the first batch: a head that is not position-wise fails and is not used."""
    reference = _masked_logits(model, batch, positions, None)
    try:
        shortcut = _masked_logits(model, batch, positions, head)
    except (RuntimeError, IndexError, TypeError, ValueError, AttributeError):
        return False
    return shortcut.shape == reference.shape and torch.allclose(
        shortcut.float(), reference.float(), rtol=1e-3, atol=1e-3
    )


def _auto_class(kind: str) -> Any:
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    return AutoModelForMaskedLM if kind == "mlm" else AutoModelForCausalLM


def _embedding_shape(model: Any) -> tuple[int, ...]:
    return tuple(model.get_input_embeddings().weight.shape)


def copy_backbone(source: PreTrainedModel, target: PreTrainedModel) -> list[str]:
    """Overwrite every backbone weight of `target` with `source`'s; return source keys left unused.

    Matching is by the backbone (base_model_prefix, e.g. `bert.`), so the heads on either side
    are ignored. Unused keys are parts one backbone has and the other lacks (BERT's pooler).
    """
    src, dst = source.base_model, target.base_model
    if src is source or dst is target:
        raise ModelError(
            f"{type(source).__name__} / {type(target).__name__}: no separate backbone to copy."
        )
    rows = [_embedding_shape(m) for m in (source, target)]
    if rows[0] != rows[1]:
        raise ModelError(
            f"the fine-tuned embeddings {rows[0]} differ from the base model's {rows[1]} (extended "
            "vocabulary?): the two perplexities would not be comparable."
        )
    try:
        result = dst.load_state_dict(src.state_dict(), strict=False)
    except RuntimeError as exc:  # shape mismatch: another architecture or size
        raise ModelError(
            f"the fine-tuned backbone does not fit the base model: {str(exc).splitlines()[0]}"
        ) from None
    if result.missing_keys:
        raise ModelError(
            f"the fine-tuned model lacks backbone weights {result.missing_keys[:5]}: is it an "
            "unmerged adapter (PEFT) or another architecture? Merge adapters before measuring."
        )
    return sorted(result.unexpected_keys)


def lm_with_backbone(
    base_dir: Path, model_cfg: ModelConfig, finetuned: PreTrainedModel | None, kind: Kind
) -> PreTrainedModel:
    """The base checkpoint as an MLM/CLM whose backbone is `finetuned`'s (None: left as base).

    The LM head is the base model's: a task model never had one, so it is the only head there
    is. It was not fine-tuned (see the module docstring). A checkpoint without an LM head
    (e.g. a sentence-embedding model) is refused: a randomly initialised head measures nothing.
    """
    from tunelab.models import load_pretrained

    lm = load_pretrained(_auto_class(kind), base_dir, model_cfg)
    prefix = lm.base_model_prefix + "."
    untrained = [m for m in lm.tunelab_new_modules if not m.startswith(prefix)]
    if untrained:
        raise ModelError(
            f"model '{model_cfg.name}' ({base_dir}) has no trained {kind.upper()} head "
            f"({', '.join(untrained[:3])} would start random), so its perplexity means nothing. "
            "Measure forgetting with a checkpoint that ships its language-model head."
        )
    if finetuned is not None:
        copy_backbone(finetuned, lm)
        lm.to(next(finetuned.parameters()).device)
    return lm


def measure(
    base_dir: Path,
    model_cfg: ModelConfig,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    kind: Kind,
    finetuned: PreTrainedModel | None = None,
    **kwargs: Any,
) -> dict[str, Any]:
    """(Pseudo-)perplexity on `texts` of the base model, or of `finetuned`'s backbone under the
    base LM head; {"kind", "perplexity", "tokens"}. kwargs go to the metric function."""
    lm = lm_with_backbone(base_dir, model_cfg, finetuned, kind)
    if kind == "mlm":
        result = mlm_pseudo_perplexity(lm, tokenizer, texts, **kwargs)
        return {"kind": kind, "perplexity": result["pseudo_perplexity"], "tokens": result["tokens"]}
    result = clm_perplexity(lm, tokenizer, texts, **kwargs)
    return {"kind": kind, "perplexity": result["perplexity"], "tokens": result["tokens"]}


def forgetting_report(before: float, after: float, threshold: float = 0.10) -> dict[str, Any]:
    """Relative change of general-text perplexity, with a warning when it rose past `threshold`."""
    if not before > 0 or not math.isfinite(before):
        raise ValueError(
            f"the perplexity before fine-tuning must be positive and finite, not {before}"
        )
    change = after / before - 1 if math.isfinite(after) else math.inf
    warning = None
    if change > threshold:
        warning = (
            f"general-text perplexity rose by {change:.1%} ({before:.2f} -> {after:.2f}), more "
            f"than the {threshold:.0%} threshold: fine-tuning made the backbone forget some "
            f"general language. {SUGGESTION}"
        )
    return {
        "before": before,
        "after": after,
        "relative_change": change,
        "threshold": threshold,
        "warning": warning,
    }


__all__ = [
    "clm_blocks",
    "clm_perplexity",
    "copy_backbone",
    "forgetting_report",
    "is_heading",
    "lm_with_backbone",
    "measure",
    "mlm_pseudo_perplexity",
    "read_general_text",
]
