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


def check_leakage(
    splits: dict[str, pd.DataFrame], cfg: LeakageConfig, train: TrainTexts | None = None
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Count exact and near duplicates of train texts in each eval split; apply the policy."""
    train = train if train is not None else InMemoryTexts(splits["train"])
    report: dict[str, Any] = {"policy": cfg.policy, "near_duplicates_checked": cfg.near_duplicates}
    out = dict(splits)
    leaked_total = 0
    for name in EVAL_SPLITS:
        frame = splits[name]
        exact = train.exact(frame)
        near = [False] * len(frame)
        examples: list[dict[str, Any]] = [
            {"row": int(r), "text": t, "kind": "exact"}
            for r, t in frame.loc[exact, ["row", "text"]].head(5).itertuples(index=False)
        ]
        if cfg.near_duplicates:
            candidates = [i for i in range(len(frame)) if not exact[i]]
            pairs = train.near([frame["text"].iloc[i] for i in candidates], cfg.threshold)
            for i, train_text in pairs:
                if not near[candidates[i]] and len(examples) < 10:
                    examples.append(
                        {
                            "row": int(frame["row"].iloc[candidates[i]]),
                            "text": frame["text"].iloc[candidates[i]],
                            "kind": "near",
                            "train_text": train_text,
                        }
                    )
                near[candidates[i]] = True
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
