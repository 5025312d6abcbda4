"""Domain vocabulary: add whole-word tokens and start each new embedding at the mean of the
embeddings of the pieces the word used to split into (not random: the model keeps its meaning).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, cast

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from tunelab.config import VocabularyConfig

_WORD = re.compile(r"[^\W\d_][\w'-]*[^\W_]|[^\W\d_]", re.UNICODE)


def mine_words(
    texts: list[str], tokenizer: PreTrainedTokenizerBase, cfg: VocabularyConfig
) -> list[str]:
    """Frequent words that the tokenizer splits into at least `min_pieces` pieces, most frequent first."""
    lowercase = bool(getattr(tokenizer, "do_lower_case", False)) or _lowercases(tokenizer)
    counts = Counter(
        word.lower() if lowercase else word for text in texts for word in _WORD.findall(text)
    )
    mined: list[str] = []
    for word, count in counts.most_common():
        if count < cfg.min_count or len(mined) >= cfg.max_new:
            break
        if len(tokenizer(word, add_special_tokens=False)["input_ids"]) >= cfg.min_pieces:
            mined.append(word)
    return mined


def _lowercases(tokenizer: PreTrainedTokenizerBase) -> bool:
    return (
        tokenizer("ABC", add_special_tokens=False)["input_ids"]
        == tokenizer("abc", add_special_tokens=False)["input_ids"]
    )


def extend_vocabulary(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, words: list[str]
) -> dict[str, Any]:
    """Add `words` as tokens, resize the embeddings, initialise each new row as its pieces' mean."""
    vocab = tokenizer.get_vocab()
    new_words = [w for w in dict.fromkeys(words) if w not in vocab]
    pieces = {w: tokenizer(w, add_special_tokens=False)["input_ids"] for w in new_words}
    added = tokenizer.add_tokens(new_words)
    if not added:
        return {"added": 0, "tokens": []}
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    embeddings = cast(torch.Tensor, model.get_input_embeddings().weight)
    with torch.no_grad():
        for word in new_words:
            new_id = tokenizer.convert_tokens_to_ids(word)
            embeddings[new_id] = embeddings[pieces[word]].mean(dim=0)
    return {"added": added, "tokens": new_words, "pieces": {w: len(p) for w, p in pieces.items()}}
