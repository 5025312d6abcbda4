"""Seeded, stratified splits: 80/10/10 from one file, or carve only the splits that are missing."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from tunelab.errors import DataError


def carve(
    frame: pd.DataFrame, share: float, seed: int, name: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split off `share` of the rows, stratified on the 'label' column: (rest, carved).

    With a 'group' column, whole groups move together (no group in two splits), and the share
    is approximate: one fold of round(1/share) stratified group folds.
    """
    if "group" in frame.columns:
        return _carve_groups(frame, share, seed, name)
    try:
        rest, carved = train_test_split(
            frame, test_size=share, stratify=frame["label"], random_state=seed
        )
    except ValueError as exc:
        raise DataError(
            f"cannot carve a stratified {name} split ({share:.0%} of {len(frame)} rows): "
            f"{_why_not_stratified(frame, share, exc)}. "
            f"Add rows to the rare classes, give data.{name}_file, or change data.split.{name}."
        ) from None
    return rest.sort_index(), carved.sort_index()


def _why_not_stratified(frame: pd.DataFrame, share: float, exc: Exception) -> str:
    """sklearn's reason in a few words (its own message can list every class)."""
    counts = frame["label"].value_counts()
    single = int((counts < 2).sum())
    if single:
        return f"{single} of {len(counts)} classes have a single row"
    carved = int(np.ceil(share * len(frame)))
    if carved < len(counts) or len(frame) - carved < len(counts):
        return f"{carved} rows cannot hold one row of each of the {len(counts)} classes"
    text = " ".join(str(exc).split())
    return text if len(text) <= 100 else text[:99] + "…"


def _carve_groups(
    frame: pd.DataFrame, share: float, seed: int, name: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    if share > 0.5:  # one fold of k can only be ≤ 1/2: carve the complement and swap
        carved, rest = _carve_groups(frame, 1 - share, seed, name)
        return rest, carved
    folds = max(2, round(1 / share))
    groups = frame["group"].astype(str).to_numpy()
    if len(set(groups)) < folds:
        raise DataError(
            f"cannot carve a {name} split of {share:.0%} by groups: only {len(set(groups))} distinct groups in "
            f"data.group_column, {folds} needed. Give data.{name}_file, or a coarser split."
        )
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    rest_index, carved_index = next(splitter.split(frame, frame["label"], groups))
    return frame.iloc[rest_index].sort_index(), frame.iloc[carved_index].sort_index()


def stratified_sample(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """At most `rows` rows with the label shares of `frame` (for quick runs on big files)."""
    if rows >= len(frame):
        return frame
    _, sample = carve(frame, rows / len(frame), seed, "train")
    return sample


def label_counts(labels: np.ndarray, names: tuple[str, ...]) -> dict[str, int]:
    """Rows per label name, from label ids."""
    counts = np.bincount(labels, minlength=len(names))
    return {name: int(n) for name, n in zip(names, counts, strict=True)}
