"""Label maps: the ordered label names of a classification run, saved with its model."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunelab.errors import DataError
from tunelab.suggest import short_list, short_path, short_repr

WHOLE_FLOAT = re.compile(r"[+-]?\d+\.0*")  # '1.0', '2.', '-3.00': a whole number written as a float
MISSING_SPELLINGS = {"nan", "none", "null", "na", "n/a", "#n/a", "<na>"}


def label_name(value: Any) -> str:
    """One spelling per label: 1, 1.0, '1' and '1.0' are all '1'."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, bool | np.bool_):
        return str(value).lower()
    text = str(value).strip()
    if WHOLE_FLOAT.fullmatch(text):
        return str(int(float(text)))
    return text


def _number(name: str) -> float | None:
    try:
        number = float(name)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _fractional(number: float | None) -> bool:
    return number is not None and not math.isnan(number) and not float(number).is_integer()


def check_labels(values: pd.Series, column: str, path: str) -> list[str]:
    """Refuse labels classification cannot use; return warnings for labels that are likely wrong.

    Errors: lists/objects as labels, and non-integer numbers (0.5 is a regression target, not
    a class). Warnings: numbers mixed with names (two spellings may be one class), spellings of
    'missing' used as a class, and a label column where most values occur once.
    """
    where = f"{short_path(path)}: label column {short_repr(column, 40)}"
    nested = values.map(lambda v: isinstance(v, list | tuple | dict | set | np.ndarray))
    if nested.any():
        first = int(nested.to_numpy().nonzero()[0][0])
        raise DataError(
            f"{where} holds lists or objects (data row {first + 1}: {short_repr(values.iloc[first], 40)}); "
            "a label must be one class name or integer. Set data.label_column to the class column."
        )
    names = values.map(label_name)
    distinct = pd.Series(names.unique())
    numbers = distinct.map(_number)
    fractional = distinct[numbers.map(lambda n: _fractional(n))]
    if len(fractional):
        rows = names.isin(set(fractional))
        first = int(rows.to_numpy().nonzero()[0][0])
        raise DataError(
            f"{where} holds non-integer numbers ({short_list(fractional, 30)}: {int(rows.sum())} rows, "
            f"first at data row {first + 1}); classification needs discrete labels. "
            "Round or bin them into classes, or set data.label_column."
        )
    warnings = []
    numeric = distinct[numbers.notna()]
    named = distinct[numbers.isna()]
    if len(numeric) and len(named):
        warnings.append(
            f"{Path(path).name}: label column '{column}' mixes numbers ({short_list(numeric, 40)}) and names "
            f"({short_list(named, 40)}), so each spelling is its own class ({len(distinct)} classes); "
            "if 1 and 'pos' mean the same class, write them one way"
        )
    missing = [n for n in distinct if n.lower() in MISSING_SPELLINGS]
    if missing:
        warnings.append(
            f"{Path(path).name}: label {short_list(missing, 30, quote=True)} in column '{column}' reads like a "
            "missing value but is trained as a class of its own; label those rows or remove them"
        )
    if len(distinct) > 20 and len(distinct) > 0.5 * len(names):
        warnings.append(
            f"{Path(path).name}: label column '{column}' has {len(distinct)} distinct values in {len(names)} rows; "
            "if it is not the class column, set data.label_column"
        )
    return warnings


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
                f"{where}: label {short_repr(first, 40)} ({count} rows, first at row {int(unknown.index[0]) + 1}) "
                f"does not occur in train ({short_list(self.names, 60)}). "
                "Fix the label, drop those rows, or add examples of it to train."
            )
        return names.map(mapping).to_numpy(dtype=np.int64)

    def save(self, path: Path) -> None:
        from tunelab.io import atomic_write_json

        atomic_write_json(path, {"labels": list(self.names)})

    @classmethod
    def load(cls, path: Path) -> LabelMap:
        return cls(tuple(json.loads(path.read_text(encoding="utf-8"))["labels"]))
