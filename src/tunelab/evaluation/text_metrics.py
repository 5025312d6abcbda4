"""Metrics for generated text: ROUGE (rouge-score), BLEU and chrF (sacrebleu), exact match.

Scores are on a 0-100 scale like the papers report them. Several references per example are
allowed (SciTLDR has several TLDRs per paper): ROUGE takes the best reference per example,
sacrebleu uses them all.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

GENERATION_METRICS = ("rouge1", "rouge2", "rougeL", "rougeLsum", "bleu", "chrf", "exact_match")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_SPACE = re.compile(r"\s+")


def text_metrics(
    predictions: list[str],
    references: list[list[str]],
    answer_pattern: str | None = None,
    ignore_space: bool = False,
) -> dict[str, Any]:
    """Corpus scores plus per-example ROUGE-L (for error analysis), in one dict."""
    import sacrebleu
    from rouge_score import rouge_scorer

    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not predictions:
        return {name: 0.0 for name in GENERATION_METRICS} | {
            "examples": 0,
            "rougeL_per_example": [],
        }
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    best: dict[str, list[float]] = {k: [] for k in ("rouge1", "rouge2", "rougeL", "rougeLsum")}
    for prediction, refs in zip(predictions, references, strict=True):
        per_ref = [scorer.score(_sentences(ref), _sentences(prediction)) for ref in (refs or [""])]
        for key in best:
            best[key].append(max(score[key].fmeasure for score in per_ref))
    depth = max(len(r) for r in references)
    streams = [[r[i] if i < len(r) else r[0] for r in references] for i in range(depth)]
    result: dict[str, Any] = {key: 100 * float(np.mean(v)) for key, v in best.items()}
    result["bleu"] = float(sacrebleu.corpus_bleu(predictions, streams).score)
    result["chrf"] = float(sacrebleu.corpus_chrf(predictions, streams).score)
    result["exact_match"] = 100 * float(
        np.mean(
            [
                any(
                    _answer(p, answer_pattern, ignore_space)
                    == _answer(r, answer_pattern, ignore_space)
                    for r in refs
                )
                for p, refs in zip(predictions, references, strict=True)
            ]
        )
    )
    result["examples"] = len(predictions)
    result["rougeL_per_example"] = [100 * v for v in best["rougeL"]]
    return result


def _sentences(text: str) -> str:
    """rougeLsum scores sentence by sentence; rouge-score expects them on separate lines."""
    return "\n".join(s for s in _SENTENCE_END.split(text.strip()) if s)


def _answer(text: str, pattern: str | None, ignore_space: bool = False) -> str:
    """The final answer (the pattern's first group when it matches), case and spacing ignored."""
    if pattern:
        match = re.search(pattern, text)
        if match:
            text = match.group(1) if match.groups() else match.group(0)
    return _SPACE.sub("" if ignore_space else " ", text).strip().lower().rstrip(".")
