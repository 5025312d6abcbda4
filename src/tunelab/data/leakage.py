"""Leakage check: validation/test texts that also occur in train make every metric look better."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import pandas as pd

from tunelab.config import LeakageConfig
from tunelab.data.near_duplicates import near_duplicate_pairs
from tunelab.errors import DataError

EVAL_SPLITS = ("validation", "test")


class TrainTexts(Protocol):
    """The train split as the leakage check reads it: held in memory, or streamed from disk."""

    def exact(self, frame: pd.DataFrame) -> np.ndarray:
        """Which rows of an eval frame have a text that is in train."""
        ...

    def near(self, texts: list[str], threshold: float) -> list[tuple[int, str]]:
        """(index into texts, train text) for each near-duplicate pair, ordered by index."""
        ...


class InMemoryTexts:
    def __init__(self, frame: pd.DataFrame) -> None:
        self.texts = frame["text"].tolist()
        self.known = set(self.texts)

    def exact(self, frame: pd.DataFrame) -> np.ndarray:
        return frame["text"].isin(self.known).to_numpy()

    def near(self, texts: list[str], threshold: float) -> list[tuple[int, str]]:
        return [(i, self.texts[j]) for i, j in near_duplicate_pairs(texts, self.texts, threshold)]


def _near_pairs(
    splits: dict[str, pd.DataFrame],
    exacts: dict[str, np.ndarray],
    train: TrainTexts,
    cfg: LeakageConfig,
) -> dict[str, list[tuple[int, str]]]:
    """(row position, train text) of each eval row near a train text, per eval split: the rows
    of both splits in one query, so train is indexed (or streamed) once."""
    owners = [
        (name, i) for name in EVAL_SPLITS for i in range(len(splits[name])) if not exacts[name][i]
    ]
    texts = [splits[name]["text"].iloc[i] for name, i in owners]
    found: dict[str, list[tuple[int, str]]] = {name: [] for name in EVAL_SPLITS}
    for k, train_text in train.near(texts, cfg.threshold):
        name, i = owners[k]
        found[name].append((i, train_text))
    return found


def check_leakage(
    splits: dict[str, pd.DataFrame], cfg: LeakageConfig, train: TrainTexts | None = None
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Count exact and near duplicates of train texts in each eval split; apply the policy."""
    train = train if train is not None else InMemoryTexts(splits["train"])
    report: dict[str, Any] = {"policy": cfg.policy, "near_duplicates_checked": cfg.near_duplicates}
    out = dict(splits)
    leaked_total = 0
    exacts = {name: train.exact(splits[name]) for name in EVAL_SPLITS}
    near_pairs = _near_pairs(splits, exacts, train, cfg) if cfg.near_duplicates else {}
    for name in EVAL_SPLITS:
        frame = splits[name]
        exact = exacts[name]
        near = [False] * len(frame)
        examples: list[dict[str, Any]] = [
            {"row": int(r), "text": t, "kind": "exact"}
            for r, t in frame.loc[exact, ["row", "text"]].head(5).itertuples(index=False)
        ]
        for i, train_text in near_pairs.get(name, []):
            if not near[i] and len(examples) < 10:
                examples.append(
                    {
                        "row": int(frame["row"].iloc[i]),
                        "text": frame["text"].iloc[i],
                        "kind": "near",
                        "train_text": train_text,
                    }
                )
            near[i] = True
        leaked = exact | pd.Series(near, dtype=bool).to_numpy()
        leaked_total += int(leaked.sum())
        report[name] = {
            "rows": len(frame),
            "exact": int(exact.sum()),
            "near": int(sum(near)),
            "examples": examples,
        }
        if cfg.policy == "drop-from-eval" and leaked.any():
            out[name] = frame[~leaked]
            report[name]["dropped"] = int(leaked.sum())
    report["leaked_rows"] = leaked_total
    if cfg.policy == "error" and leaked_total:
        detail = ", ".join(
            f"{n}: {report[n]['exact']} exact + {report[n]['near']} near" for n in EVAL_SPLITS
        )
        raise DataError(
            f"{leaked_total} validation/test rows also occur in train ({detail}). "
            "Remove them from the eval files, or set data.leakage.policy=drop-from-eval (or warn)."
        )
    for name in EVAL_SPLITS:
        if len(out[name]) == 0:
            raise DataError(
                f"the {name} split is empty after dropping rows that leak from train. Give a {name} file without train texts."
            )
    return out, report
