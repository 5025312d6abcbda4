"""Text cleaning and within-file deduplication, with every dropped row counted by reason."""

from __future__ import annotations

import html
import re
import unicodedata
from collections import Counter
from typing import Any

import pandas as pd

from tunelab.config import CleanConfig
from tunelab.data.labels import label_name
from tunelab.data.near_duplicates import near_duplicate_pairs

_TAG = re.compile(r"<[^>]+>")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")
_SPECIAL = re.compile(r"[^\w\s.,;:!?'\"()\-]", re.UNICODE)
_SPACE = re.compile(r"\s+")


def clean_text(text: str, cfg: CleanConfig) -> str:
    """One text through the configured steps, in a fixed order (markup before whitespace)."""
    if cfg.unicode_nfkc:
        text = unicodedata.normalize("NFKC", text)
    if cfg.strip_html:
        text = html.unescape(_TAG.sub(" ", text))
    if cfg.remove_urls:
        text = _URL.sub(" ", text)
    if cfg.remove_emails:
        text = _EMAIL.sub(" ", text)
    if cfg.remove_special_chars:
        text = _SPECIAL.sub(" ", text)
    if cfg.lowercase:
        text = text.lower()
    if cfg.collapse_whitespace:
        text = _SPACE.sub(" ", text).strip()
    return text


def duplicate_stats(texts: pd.Series) -> dict[str, int]:
    """Rows that repeat an earlier text exactly, and how many distinct texts are repeated."""
    repeated = texts.duplicated(keep="first")
    return {
        "rows_repeating_earlier": int(repeated.sum()),
        "distinct_texts_repeated": int(texts[texts.duplicated(keep=False)].nunique()),
    }


def conflict_groups(frame: pd.DataFrame) -> pd.Series:
    """Boolean mask of rows whose text occurs with more than one label."""
    labels_per_text = frame.groupby("text", sort=False)["label"].transform("nunique")
    return labels_per_text > 1


def clean_frame(frame: pd.DataFrame, cfg: CleanConfig) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Clean texts, then resolve conflicting labels and drop duplicates; returns (kept rows, report).

    `frame` has columns text, label (raw label names) and row. The report counts raw exact
    duplicates, duplicates after cleaning, conflicts, and every dropped row by reason.
    """
    frame = frame.assign(label=frame["label"].map(label_name))  # "pos " and "pos" are one label
    raw_labels = frame["label"].value_counts().sort_index()
    report: dict[str, Any] = {
        "rows_in": len(frame),
        "label_counts": {str(k): int(v) for k, v in raw_labels.items()},
        "raw": duplicate_stats(frame["text"]),
    }
    dropped: Counter[str] = Counter()
    out = frame.copy()
    out["text"] = out["text"].map(lambda t: clean_text(t, cfg))
    report["changed_by_cleaning"] = int((out["text"] != frame["text"]).sum())

    short = out["text"].str.len() < max(cfg.min_chars, 1)
    dropped["too_short"] = int(short.sum())
    out = out[~short]
    report["cleaned"] = duplicate_stats(out["text"])

    out, resolved = resolve_duplicates(out, cfg, dropped)
    report.update(resolved)
    if cfg.near_duplicates:
        pairs = near_duplicate_pairs(
            out["text"].tolist(), out["text"].tolist(), cfg.near_duplicate_threshold, same_set=True
        )
        later = sorted({max(i, j) for i, j in pairs})
        dropped["near_duplicate"] = len(later)
        out = out.drop(out.index[later])
    report["dropped"] = {reason: n for reason, n in dropped.items() if n}
    report["rows_out"] = len(out)
    return out, report


def resolve_duplicates(
    frame: pd.DataFrame, cfg: CleanConfig, dropped: Counter[str]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Conflicting labels per data.clean.conflicts, then exact duplicates (the first kept).

    Rows are compared by their 'text' column: the cleaned text itself, or any key that stands for
    it one to one (a hash, for a file too big to hold twice); drops are counted into `dropped`,
    and the report holds the conflicts.
    """
    out = frame
    report: dict[str, Any] = {}
    conflicted = conflict_groups(out)
    report["conflicts"] = {
        "texts": int(out.loc[conflicted, "text"].nunique()),
        "rows": int(conflicted.sum()),
        "examples": out.loc[conflicted]
        .groupby("text", sort=False)["label"]
        .agg(lambda s: sorted(set(map(str, s))))
        .head(5)
        .to_dict(),
        "policy": cfg.conflicts,
    }
    if cfg.conflicts == "drop":
        dropped["conflicting_labels"] = int(conflicted.sum())
        out = out[~conflicted]
    elif cfg.conflicts == "majority":
        out, lost = _keep_majority(out, conflicted)
        dropped["conflicting_labels_minority"] = lost

    if cfg.drop_duplicates:
        repeated = out["text"].duplicated(keep="first")
        dropped["exact_duplicate"] = int(repeated.sum())
        out = out[~repeated]
    return out, report


def _keep_majority(frame: pd.DataFrame, conflicted: pd.Series) -> tuple[pd.DataFrame, int]:
    """For each conflicting text keep the rows of its most frequent label; a tie drops the text."""
    keep = ~conflicted
    for _, group in frame[conflicted].groupby("text", sort=False):
        counts = group["label"].map(str).value_counts()
        if len(counts) > 1 and counts.iloc[0] == counts.iloc[1]:
            continue
        keep.loc[group.index[group["label"].map(str) == counts.index[0]]] = True
    return frame[keep], int((~keep).sum())
