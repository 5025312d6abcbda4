"""Plain text cut into fixed-length token blocks: the examples of continued pre-training and of
the forgetting measurement (every token is a target, no padding)."""

from __future__ import annotations

from datasets import Dataset
from transformers import PreTrainedTokenizerBase

from tunelab.errors import DataError


def group_into_blocks(tokenizer: PreTrainedTokenizerBase, texts: list[str], block: int) -> Dataset:
    """Concatenate token ids of all texts and cut full blocks (the tail shorter than a block is dropped)."""
    ids: list[int] = []
    for encoded in tokenizer(texts, add_special_tokens=True)["input_ids"]:
        ids.extend(encoded)
        if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in encoded[-1:]:
            ids.append(tokenizer.eos_token_id)
    blocks = [ids[i : i + block] for i in range(0, len(ids) - block + 1, block)]
    if not blocks:
        raise DataError(
            f"the text is shorter than one block of data.max_length={block} tokens. Add text or lower data.max_length."
        )
    return Dataset.from_dict({"input_ids": blocks, "attention_mask": [[1] * block for _ in blocks]})


__all__ = ["group_into_blocks"]
