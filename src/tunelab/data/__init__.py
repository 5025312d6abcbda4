"""Data for a run: load → check → clean/dedup → encode labels → split → leakage → resample → augment.

`prepare_classification(cfg, seed)` is the one entry point. Its result holds every split as a
DataFrame with columns `text`, `label` (an id) and `row` (1-based data row in its source file),
and a report that counts every dropped row by reason.

Owns: reading files (`load`, `stream` for files larger than memory), cleaning, deduplication,
labels, splits, leakage checks, imbalance, augmentation, pairs for generative tasks, chat
templates (`chat_format`), packing and text blocks, and the data report (`inspect`).
May import: `tunelab.config` and the base modules only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunelab.config import DataConfig
from tunelab.data import mapped
from tunelab.data.clean import clean_frame
from tunelab.data.dataset_source import split_files
from tunelab.data.imbalance import resample
from tunelab.data.labels import LabelMap, check_labels, label_name
from tunelab.data.leakage import check_leakage
from tunelab.data.load import (
    CONFIG,
    FORMATS_BY_SUFFIX,
    GENERATE,
    LABEL_COLUMN_NAMES,
    TEXT_COLUMN_NAMES,
    Advice,
    file_sha256,
    numeric_text_warning,
    pick_column,
    read_table,
)
from tunelab.data.split import carve, label_counts, stratified_sample
from tunelab.errors import ConfigError, DataError
from tunelab.suggest import short_list, short_path, short_repr

SPLITS = ("train", "validation", "test")

__all__ = [
    "SPLITS",
    "LabelMap",
    "PreparedData",
    "complete_splits",
    "load_labelled_file",
    "prepare_classification",
    "read_texts",
]


@dataclass
class PreparedData:
    splits: dict[str, pd.DataFrame]
    labels: LabelMap
    text_column: str
    label_column: str
    files: dict[str, str] = field(default_factory=dict)  # path → sha256
    origin: dict[str, str] = field(default_factory=dict)  # split → "file" or "carved from train"
    report: dict[str, Any] = field(
        default_factory=dict
    )  # cleaning, leakage, imbalance, augmentation
    # data bigger than memory (data.memory_mapped): the whole train split, memory-mapped (a
    # datasets.Dataset of text, label id, row, key); splits["train"] is then a stratified sample
    train_table: Any = None
    train_sha256: str | None = None  # the whole train split's identity when it is a table

    def split_labels(self, name: str) -> np.ndarray:
        """Label ids of every row of a split (the whole train split, not its sample)."""
        if name == "train" and self.train_table is not None:
            return np.asarray(self.train_table.data.column("label").to_numpy())
        return self.splits[name]["label"].to_numpy()

    def summary(self) -> dict[str, Any]:
        return {
            "text_column": self.text_column,
            "label_column": self.label_column,
            "labels": list(self.labels.names),
            "splits": {name: self._split_summary(name) for name in self.splits},
            "files": self.files,
            **({"memory_mapped": True} if self.train_table is not None else {}),
        }

    def _split_summary(self, name: str) -> dict[str, Any]:
        labels = self.split_labels(name)
        return {
            "rows": len(labels),
            "origin": self.origin[name],
            "label_counts": label_counts(labels, self.labels.names),
        }


def prepare_classification(cfg: DataConfig, seed: int) -> PreparedData:
    """Load, check, clean and split the configured files for a classification run."""
    paths = split_files(cfg)
    if paths["train"] is None:
        raise DataError("data.train_file is not set. Set it to a CSV/TSV/JSON/JSONL/Parquet file.")
    if mapped.wanted(cfg, paths["train"]):
        return _prepare_mapped(paths, cfg, seed)
    raw: dict[str, pd.DataFrame] = {}
    files: dict[str, str] = {}
    report: dict[str, Any] = {"files": {}, "warnings": []}
    text_column = label_column = ""
    for split, path in paths.items():
        if path is None:
            continue
        frame, text_column, label_column, empty = _load_labelled(
            path, cfg, warnings=report["warnings"]
        )
        raw[split], file_report = clean_frame(frame, cfg.clean)
        if empty:
            file_report["rows_in"] += empty
            file_report["dropped"] = {"empty_text": empty, **file_report["dropped"]}
        report["files"][str(path)] = file_report
        files[str(path)] = file_sha256(path)
        _refuse_empty(raw[split], path, file_report)

    labels = LabelMap.from_values(raw["train"]["label"])
    _refuse_one_class(labels, paths["train"])
    encoded = {split: _encode(frame, labels, str(paths[split])) for split, frame in raw.items()}
    splits, origin = complete_splits(encoded, cfg, seed)
    splits, report["leakage"] = check_leakage(splits, cfg.leakage)
    if cfg.max_train_rows is not None:
        splits["train"] = stratified_sample(splits["train"], cfg.max_train_rows, seed)
    splits["train"], report["imbalance"] = resample(splits["train"], cfg.imbalance, seed)
    from tunelab.data.augment import augment_train

    splits["train"], report["augment"] = augment_train(splits["train"], cfg.augment, seed)
    return PreparedData(splits, labels, text_column, label_column, files, origin, report)


def _refuse_empty(frame: pd.DataFrame, path: str | Path, file_report: dict[str, Any]) -> None:
    if len(frame) == 0:
        raise DataError(
            f"{short_path(path)}: no rows left after cleaning ({file_report['dropped']}). Relax data.clean."
        )


def _refuse_one_class(labels: LabelMap, train: str | Path | None) -> None:
    if len(labels.names) < 2:
        raise DataError(
            f"{train}: every training row has the label '{labels.names[0]}'; "
            "classification needs at least two classes. Check data.label_column, or add rows of the other classes."
        )


def _prepare_mapped(paths: dict[str, str | None], cfg: DataConfig, seed: int) -> PreparedData:
    """The same steps for files bigger than memory: every row as integers (key, label, row,
    position) through dedup, split, leakage and resampling; texts stay on disk (`mapped`)."""
    problems = mapped.unsupported(cfg)
    if problems:
        raise ConfigError(problems)
    report: dict[str, Any] = {"files": {}, "warnings": []}
    sources: dict[str, mapped.MappedFile] = {}
    frames: dict[str, pd.DataFrame] = {}
    for split, path in paths.items():
        if path is None:
            continue
        sources[split], file_report = mapped.prepare_file(Path(path), cfg, report["warnings"])
        report["files"][str(path)] = file_report
        frames[split] = sources[split].frame
        _refuse_empty(frames[split], path, file_report)
    train = sources["train"]
    names = train.label_names
    labels = LabelMap.from_values(
        pd.Series([names[c] for c in np.unique(frames["train"]["label"])])
    )
    _refuse_one_class(labels, paths["train"])
    encoded = {
        split: mapped.label_ids(sources[split], frame, labels) for split, frame in frames.items()
    }
    splits, origin = complete_splits(encoded, cfg, seed)
    source = {s: sources[s] if origin[s] == "file" else train for s in SPLITS}
    texts = {s: mapped.eval_frame(source[s], splits[s]) for s in ("validation", "test")}
    leakage_train = mapped.MappedTrainTexts(train, splits["train"])
    checked, report["leakage"] = check_leakage(
        {**texts, "train": splits["train"]}, cfg.leakage, leakage_train
    )
    if cfg.max_train_rows is not None:
        splits["train"] = stratified_sample(splits["train"], cfg.max_train_rows, seed)
    splits["train"], report["imbalance"] = resample(splits["train"], cfg.imbalance, seed)
    report["augment"] = {"enabled": False}
    table = mapped.train_table(train, splits["train"], labels)
    sample = stratified_sample(splits["train"], mapped.FRAME_ROWS, seed)
    prepared = {
        "train": mapped.eval_frame(train, sample).drop(columns="key"),
        **{s: checked[s].drop(columns="key") for s in ("validation", "test")},
    }
    identity = hashlib.sha256(splits["train"][["key", "label"]].to_numpy().tobytes()).hexdigest()
    files = {str(paths[s]): sources[s].sha256 for s in sources}
    return PreparedData(
        prepared,
        labels,
        train.text_column,
        train.label_column,
        files,
        origin,
        report,
        table,
        identity,
    )


def load_labelled_file(
    path: str | Path, cfg: DataConfig, labels: LabelMap, advice: Advice = CONFIG
) -> pd.DataFrame:
    """A labelled file scored against an existing run: cleaned like training data, labels encoded with that run's map.

    The format comes from the file's own extension when it has a known one (the run may have
    been trained on a .txt read as TSV); `advice` says how the caller's user names columns.
    """
    if Path(path).suffix.lower() in FORMATS_BY_SUFFIX:
        cfg = cfg.model_copy(update={"format": "auto"})
    frame, _, _, _ = _load_labelled(path, cfg, advice)
    cleaned, _ = clean_frame(
        frame,
        cfg.clean.model_copy(
            update={"drop_duplicates": False, "near_duplicates": False, "conflicts": "keep"}
        ),
    )
    return _encode(cleaned, labels, str(path))


def _load_labelled(
    path: str | Path,
    cfg: DataConfig,
    advice: Advice = CONFIG,
    warnings: list[str] | None = None,
) -> tuple[pd.DataFrame, str, str, int]:
    """The file's text/label/row (+ group) columns and the number of empty texts dropped by policy.

    With `warnings` (training data), the labels are checked (non-integer numbers refused,
    mixed or missing-looking spellings warned about) and an all-number text column is warned about.
    """
    names = (cfg.text_column, cfg.label_column, cfg.group_column)
    frame = read_table(path, cfg.format, cfg.header, cfg.quoting, names, advice)
    text_column = pick_column(
        frame, cfg.text_column, TEXT_COLUMN_NAMES, "text", Path(path), advice=advice
    )
    label_column = pick_column(
        frame,
        cfg.label_column,
        LABEL_COLUMN_NAMES,
        "label",
        Path(path),
        exclude=text_column,
        advice=advice,
    )
    if cfg.header == "auto" and warnings is not None:
        _refuse_header_as_data(frame, label_column, Path(path))
    checked = _checked(frame, text_column, label_column, str(path), cfg.clean.empty_text, advice)
    if warnings is not None:
        present = frame.loc[checked.index, label_column]
        warnings.extend(check_labels(present, label_column, str(path)))
        numeric = numeric_text_warning(
            frame.loc[checked.index, text_column], text_column, Path(path)
        )
        if numeric:
            warnings.append(numeric)
    if cfg.group_column is not None:
        group = pick_column(frame, cfg.group_column, (), "group", Path(path))
        checked["group"] = frame.loc[checked.index, group].astype(str)
    return checked, text_column, label_column, len(frame) - len(checked)


def _refuse_header_as_data(frame: pd.DataFrame, label_column: str, path: Path) -> None:
    """A CSV/TSV read without a header whose first row's label occurs nowhere else: that row
    is almost surely a header nobody recognised, and training on it adds a class of one row."""
    if list(frame.columns) != [f"col{i}" for i in range(frame.shape[1])] or len(frame) < 10:
        return
    labels = frame[label_column].map(label_name)
    counts = labels.value_counts()
    first = labels.iloc[0]
    if counts[first] == 1 and counts.drop(first).min() >= 2:
        fields = list(frame.iloc[0].astype(str))
        raise DataError(
            f"{short_path(path)}: the first line ({short_list(fields, 60, quote=True)}) looks like a header: "
            f"its label {short_repr(first, 30)} occurs nowhere else. Set data.header=true and "
            "data.text_column/label_column to its names, or data.header=false if it is data."
        )


def _checked(
    frame: pd.DataFrame,
    text_column: str,
    label_column: str,
    path: str,
    empty_policy: str,
    advice: Advice = CONFIG,
) -> pd.DataFrame:
    """Keep text + label + source row; a missing label is an error, an empty text per data.clean.empty_text."""
    label = frame[label_column]
    missing = label.isna() | (label.map(label_name) == "")
    if missing.any():
        first = int(missing.to_numpy().nonzero()[0][0]) + 1
        raise DataError(
            f"{short_path(path)}: {int(missing.sum())} rows have no '{label_column}' (first at data row {first}). Label them or remove them."
        )
    text = frame[text_column]
    out = pd.DataFrame(
        {"text": text.astype(str), "label": label.map(label_name), "row": range(1, len(frame) + 1)},
        index=frame.index,
    )
    empty = text.isna() | (text.astype(str).str.strip() == "")
    if empty.any():
        first = int(empty.to_numpy().nonzero()[0][0]) + 1
        if empty_policy == "error":
            raise DataError(
                f"{short_path(path)}: {int(empty.sum())} rows have an empty '{text_column}' (first at data row {first}). "
                f"{advice.empty_text}"
            )
        out = out[~empty.to_numpy()]
    return out


def _encode(frame: pd.DataFrame, labels: LabelMap, path: str) -> pd.DataFrame:
    out = frame.copy()
    out["label"] = labels.encode(frame["label"], path)
    return out


def complete_splits(
    given: dict[str, pd.DataFrame], cfg: DataConfig, seed: int
) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Use given files as is; carve each missing split from train with the configured share."""
    ratios = cfg.split
    origin = dict.fromkeys(given, "file")
    train = given["train"]
    splits = dict(given)
    missing = [name for name in ("validation", "test") if name not in given]
    if len(missing) == 2:
        train, test = carve(train, ratios.test, seed, "test")
        train, validation = carve(
            train, ratios.validation / (ratios.train + ratios.validation), seed, "validation"
        )
        splits.update(validation=validation, test=test)
    elif missing:
        name = missing[0]
        share = getattr(ratios, name)
        train, splits[name] = carve(train, share / (ratios.train + share), seed, name)
    for name in missing:
        origin[name] = "carved from train"
    splits["train"] = train
    for name in SPLITS:
        if len(splits[name]) == 0:
            raise DataError(
                f"the {name} split is empty. Give data.{name}_file or raise data.split.{name}."
            )
    return {name: splits[name] for name in SPLITS}, origin


def read_texts(
    path: str | Path,
    text_column: str | None,
    fmt: str = "auto",
    header: bool | str = "auto",
    candidates: tuple[str, ...] = TEXT_COLUMN_NAMES,
    advice: Advice = GENERATE,
) -> tuple[pd.DataFrame, str]:
    """A file of inputs for prediction or generation: the frame and the name of its text column.

    A CSV/TSV read without a header (its first line names no known column) is refused unless
    the column is named: the first line may be a header nobody recognised, and its row must not
    be answered as an input. `tunelab generate` is the caller, so the advice names --column.
    """
    frame = read_table(path, fmt, header, "auto", (text_column,), advice)
    headerless = list(frame.columns) == [f"col{i}" for i in range(frame.shape[1])]
    if headerless and text_column is None:
        fields = list(frame.iloc[0].astype(str))
        raise DataError(
            f"{short_path(path)}: the first line ({short_list(fields, 80, quote=True)}) names no known "
            f"column. If it is a header, {advice.pick('text', 'the input column').lower()}; if the file "
            "has no header, pass col0 (col1, … by position)."
        )
    column = pick_column(frame, text_column, candidates, "text", Path(path), advice=advice)
    empty = frame[column].isna() | (frame[column].astype(str).str.strip() == "")
    if empty.any():
        first = int(empty.to_numpy().nonzero()[0][0]) + 1
        raise DataError(
            f"{short_path(path)}: {int(empty.sum())} rows have an empty '{column}' (first at data row {first}). Remove or fill them."
        )
    return frame, column
