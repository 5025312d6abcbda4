"""Length, truncation and encoding statistics of a split, in the tokens of the run's tokenizer."""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

_MOJIBAKE = re.compile("Ã[\u0080-\u00bf]|â€|Â[\u00a0-\u00bf]")
_CONTROL = re.compile("[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]")
PERCENTILES = (50, 90, 95, 99)


def _distribution(values: np.ndarray) -> dict[str, float]:
    if len(values) == 0:
        return {}
    points = np.percentile(values, PERCENTILES)
    return {
        "mean": float(values.mean()),
        **{f"p{p}": float(v) for p, v in zip(PERCENTILES, points, strict=True)},
        "max": float(values.max()),
    }


def length_stats(texts: list[str], tokenizer: Any | None, max_length: int) -> dict[str, Any]:
    """Characters, words and (with a tokenizer) tokens per text; the share cut at max_length."""
    stats: dict[str, Any] = {
        "chars": _distribution(np.array([len(t) for t in texts])),
        "words": _distribution(np.array([len(t.split()) for t in texts])),
    }
    if tokenizer is not None and texts:
        tokens = np.concatenate(
            [_token_counts(tokenizer, texts[i : i + CHUNK]) for i in range(0, len(texts), CHUNK)]
        )
        truncated = int((tokens > max_length).sum())
        stats["tokens"] = _distribution(tokens)
        stats["token_lengths"] = tokens.tolist()
        stats["truncated_rows"] = truncated
        stats["truncated_share"] = truncated / len(texts)
    return stats


CHUNK = 10_000  # texts tokenized at once: only their lengths are kept, not millions of ids


def _token_counts(tokenizer: Any, texts: list[str]) -> np.ndarray:
    encoded = tokenizer(
        texts, truncation=False, return_attention_mask=False, return_token_type_ids=False
    )
    return np.array([len(ids) for ids in encoded["input_ids"]], dtype=np.int64)


def suggest_max_length(token_lengths: list[int], model_max: int | None) -> int:
    """The 99th percentile rounded up to a multiple of 8 (friendly to kernels), capped by the model."""
    if not token_lengths:
        return 128
    suggestion = int(math.ceil(float(np.percentile(token_lengths, 99)) / 8) * 8)
    return min(suggestion, model_max) if model_max else suggestion


def encoding_problems(texts: list[str]) -> dict[str, int]:
    """Rows that show a decoding accident: U+FFFD, mis-decoded UTF-8 (mojibake) or control characters."""
    return {
        "replacement_char": sum("\ufffd" in t for t in texts),
        "mojibake": sum(bool(_MOJIBAKE.search(t)) for t in texts),
        "control_chars": sum(bool(_CONTROL.search(t)) for t in texts),
        "non_ascii": sum(not t.isascii() for t in texts),
    }
