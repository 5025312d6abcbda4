"""Label maps: the ordered label names of a classification run, saved with its model."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunelab.errors import DataError


def label_name(value: Any) -> str:
    """One spelling per label: 1, 1.0 and '1' are all '1'."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool | np.bool_):
        return str(value).lower()
    return str(value).strip()


def _sort_key(name: str) -> tuple[int, float | str]:
    try:
        return (0, float(name))
    except ValueError:
        return (1, name)


@dataclass(frozen=True)
class LabelMap:
    """Label id i ↔ names[i]; numeric labels keep their numeric order, text labels sort."""

    names: tuple[str, ...]

    @classmethod
    def from_values(cls, values: pd.Series) -> LabelMap:
        names = sorted({label_name(v) for v in values}, key=_sort_key)
        return cls(tuple(names))

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.names))

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}

    def encode(self, values: pd.Series, where: str) -> np.ndarray:
        """Ids for `values`; a label the map does not know is a DataError naming it."""
        mapping = self.label2id
        names = values.map(label_name)
        unknown = names[~names.isin(list(mapping))]
        if len(unknown):
            first = unknown.iloc[0]
            count = int((unknown == first).sum())
            raise DataError(
                f"{where}: label '{first}' ({count} rows, first at row {int(unknown.index[0]) + 1}) does not occur in train "
                f"(train labels: {', '.join(self.names)}). Fix the label, drop those rows, or add examples of it to train."
            )
        return names.map(mapping).to_numpy(dtype=np.int64)

    def save(self, path: Path) -> None:
        from tunelab.io import atomic_write_json

        atomic_write_json(path, {"labels": list(self.names)})

    @classmethod
    def load(cls, path: Path) -> LabelMap:
        return cls(tuple(json.loads(path.read_text(encoding="utf-8"))["labels"]))
