"""Classification files bigger than memory: read, cleaned, deduplicated and split through
memory-mapped Arrow (`datasets`), never as whole pandas frames.

Each file is converted once by `datasets`' own CSV/JSON/Parquet builders into Arrow files in
`$HF_DATASETS_CACHE/tunelab-mapped/`, read a block at a time. One `Dataset.map` pass (several
processes on big files) cleans every text with `clean.clean_text` and writes beside it a 64-bit
hash of the raw and of the cleaned text. Everything that needs to see all rows at once (label
counts, exact duplicates, conflicting labels, the stratified split, the leakage check's exact
pass) then works on a small frame of integers: hash, label, row, position — 40 bytes a row, so
5M rows are 200 MB, and no text is held twice. The texts stay on disk: the leakage check's
near-duplicate pass streams train in chunks against an index of the (small) eval splits, and
tokenization (`tasks.classification`) maps the train table in several processes into a cache
named by content.

What comes out is the `PreparedData` of the in-memory path, with one difference: the full train
split is `train_table` (text, label id, row; memory-mapped), and `splits["train"]` is a seeded,
stratified sample of it (`FRAME_ROWS` rows) for what needs a frame: the baselines, the data
report's lengths, vocabulary mining. Validation and test are frames as always.

A 64-bit hash makes two different texts look equal with probability about n²/2⁶⁵ (7e-7 for
5M rows); that is the price of not holding every string twice.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunelab.config import CleanConfig, DataConfig
from tunelab.data.clean import clean_text, resolve_duplicates
from tunelab.data.labels import LabelMap, check_labels, label_name
from tunelab.data.load import (
    CONFIG,
    LABEL_COLUMN_NAMES,
    TEXT_COLUMN_NAMES,
    _has_header,
    check_data_file,
    file_sha256,
    numeric_text_warning,
    parser_message,
    pick_column,
    tsv_quoting,
)
from tunelab.errors import DataError
from tunelab.suggest import short_list, short_path, short_repr

FOLDER = "tunelab-mapped"
AUTO_BYTES = 512 * 2**20  # data.memory_mapped=auto: a train file this big is not read into a frame
FRAME_ROWS = 100_000  # the stratified train sample kept as a frame (baselines, report lengths)
HEAD_ROWS = 100_000  # label and text checks that need values look at the first rows
PARALLEL_ROWS = 50_000  # below this, one process cleans and tokenizes faster than a pool starts


def wanted(cfg: DataConfig, train: str | Path) -> bool:
    """Whether the train file goes through the memory-mapped path (a missing file does not: the
    in-memory path says what is wrong with it)."""
    if cfg.memory_mapped == "auto":
        path = Path(train)
        return path.is_file() and path.stat().st_size >= AUTO_BYTES
    return bool(cfg.memory_mapped)


def processes(rows: int) -> int | None:
    """Worker processes for a `Dataset.map` over `rows` rows: the machine's cores, at most 8."""
    if rows < PARALLEL_ROWS:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, 8)) if (cores or 1) > 1 else None


def text_key(text: str) -> int:
    """The 64-bit hash that stands for a text in the duplicate, conflict and leakage passes."""
    return int.from_bytes(
        hashlib.blake2b(text.encode(), digest_size=8).digest(), "little", signed=True
    )


def cache_folder() -> Path:
    """`$HF_DATASETS_CACHE/tunelab-mapped` (the variable read when called, as datasets reads it
    at import)."""
    import datasets

    return Path(os.environ.get("HF_DATASETS_CACHE") or datasets.config.HF_DATASETS_CACHE) / FOLDER


class MappedFile:
    """One data file as a memory-mapped, cleaned table plus its integer frame.

    `table` has columns text (cleaned), label (its name), row, key, raw_key; `frame` has one row
    per row kept so far: key, label (code into `label_names`), row, pos (position in `table`).
    """

    def __init__(self, path: Path, cfg: DataConfig, warnings: list[str] | None) -> None:
        self.path = path
        self.sha256 = file_sha256(path)
        raw, text_column, label_column = _load(path, cfg)
        self.text_column, self.label_column = text_column, label_column
        if warnings is not None:
            head = raw.select(range(min(len(raw), HEAD_ROWS))).to_pandas()
            present = head[label_column][head[label_column].notna()]
            warnings.extend(check_labels(present, label_column, str(path)))
            numeric = numeric_text_warning(head[text_column], text_column, path)
            if numeric:
                warnings.append(numeric)
        self.table = _clean(raw, text_column, label_column, cfg, self.sha256)
        self.frame, self.label_names, self.empty = _integer_frame(
            self.table, path, label_column, text_column, cfg.clean
        )

    def texts(self, positions: np.ndarray) -> list[str]:
        return self.table.select(positions)["text"][:] if len(positions) else []


def prepare_file(
    path: Path, cfg: DataConfig, warnings: list[str] | None
) -> tuple[MappedFile, dict[str, Any]]:
    """Load and clean one file: the mapped file (its frame now deduplicated) and its clean report."""
    mapped = MappedFile(path, cfg, warnings)
    frame = mapped.frame
    names = mapped.label_names
    report: dict[str, Any] = {
        "rows_in": len(frame) + mapped.empty,
        "label_counts": {
            str(names[code]): int(n) for code, n in _sorted_counts(frame["label"], names)
        },
        "raw": _duplicate_stats(mapped.table, frame, "raw_key"),
    }
    dropped: Counter[str] = Counter()
    if mapped.empty:
        dropped["empty_text"] = mapped.empty
    report["changed_by_cleaning"] = int(_column(mapped.table, "changed").sum())
    short = _column(mapped.table, "chars")[frame["pos"].to_numpy()] < max(cfg.clean.min_chars, 1)
    dropped["too_short"] = int(short.sum())
    frame = frame[~short]
    report["cleaned"] = _duplicate_stats(mapped.table, frame, "key")
    keyed = frame.assign(text=frame["key"])
    kept, resolved = resolve_duplicates(keyed, cfg.clean, dropped)
    examples = resolved["conflicts"]["examples"]  # {key: [label codes]} → {text: [label names]}
    if examples:
        first = {int(k): int(keyed.loc[keyed["key"] == k, "pos"].iloc[0]) for k in examples}
        texts = mapped.texts(np.array(list(first.values())))
        resolved["conflicts"]["examples"] = {
            text: sorted(names[int(c)] for c in codes)
            for text, codes in zip(texts, examples.values(), strict=True)
        }
    report.update(resolved)
    report["dropped"] = {reason: n for reason, n in dropped.items() if n}
    report["rows_out"] = len(kept)
    mapped.frame = kept.drop(columns="text")
    return mapped, report


def label_ids(mapped: MappedFile, frame: pd.DataFrame, labels: LabelMap) -> pd.DataFrame:
    """`frame` with its label codes (into the file's own names) turned into the run's label ids."""
    present = np.unique(frame["label"].to_numpy())
    known = labels.label2id
    lookup = np.full(len(mapped.label_names), -1, dtype=np.int64)
    for code in present:
        name = mapped.label_names[code]
        if name not in known:
            rows = frame.loc[frame["label"] == code, "row"]
            raise DataError(
                f"{short_path(mapped.path)}: label {short_repr(name, 40)} ({len(rows)} rows, first at row {int(rows.iloc[0])}) "
                f"does not occur in train ({short_list(labels.names, 60)}). "
                "Fix the label, drop those rows, or add examples of it to train."
            )
        lookup[code] = known[name]
    return frame.assign(label=lookup[frame["label"].to_numpy()])


def eval_frame(mapped: MappedFile, frame: pd.DataFrame) -> pd.DataFrame:
    """An eval split as the in-memory path holds it: text, label id, row (+ group), its key kept."""
    positions = frame["pos"].to_numpy()
    return pd.DataFrame(
        {
            "text": mapped.texts(positions),
            "label": frame["label"].to_numpy(),
            "row": frame["row"].to_numpy(),
            "key": frame["key"].to_numpy(),
            **({"group": frame["group"].to_numpy()} if "group" in frame.columns else {}),
        },
        index=frame.index,
    )


def train_table(mapped: MappedFile, frame: pd.DataFrame, labels: LabelMap) -> Any:
    """The train split's rows of the mapped file, in `frame`'s order, with label ids, on disk."""
    mapping = {name: i for i, name in enumerate(labels.names)}
    selected = mapped.table.select(frame["pos"].to_numpy())
    fingerprint = _fingerprint(
        mapped.table._fingerprint, hashlib.sha256(frame["pos"].to_numpy().tobytes()).hexdigest()
    )
    try:
        return selected.map(
            _label_ids,
            batched=True,
            fn_kwargs={"mapping": mapping},
            remove_columns=[c for c in selected.column_names if c not in ("text", "row", "key")],
            num_proc=processes(len(selected)),
            new_fingerprint=fingerprint,
            desc="train split",
        )
    except OSError as exc:
        raise _disk_error(exc) from None


class MappedTrainTexts:
    """The train split for the leakage check: exact matches by key, near ones streamed from disk
    in chunks against an LSH index of the eval texts (which are few beside train)."""

    CHUNK = 50_000

    def __init__(self, mapped: MappedFile, frame: pd.DataFrame) -> None:
        self.mapped = mapped
        self.keys = frame["key"].to_numpy()
        self.positions = frame["pos"].to_numpy()

    def exact(self, frame: pd.DataFrame) -> np.ndarray:
        return np.isin(frame["key"].to_numpy(), self.keys)

    def near(self, texts: list[str], threshold: float) -> list[tuple[int, str]]:
        """One pass over train in several processes (datasets' map), each holding the index."""
        import pyarrow.compute as pc

        from tunelab.data.near_duplicates import NearIndex

        if not texts:
            return []
        index = NearIndex(texts, threshold)
        train = self.mapped.table.select(self.positions).select_columns(["text"])
        fingerprint = _fingerprint(
            self.mapped.table._fingerprint,
            hashlib.sha256(self.positions.tobytes()).hexdigest(),
            hashlib.sha256("\0".join(texts).encode()).hexdigest(),
            str(threshold),
            "near",
        )
        try:
            matched = train.map(
                _near_batch,
                batched=True,
                batch_size=self.CHUNK,
                fn_kwargs={"index": index},
                remove_columns=["text"],
                num_proc=processes(len(train)),
                new_fingerprint=fingerprint,
                desc="leakage: near duplicates",
            )
        except OSError as exc:
            raise _disk_error(exc) from None
        near = matched.data.column("near")
        rows = np.flatnonzero(pc.list_value_length(near).to_numpy(zero_copy_only=False))
        if not len(rows):
            return []
        found_texts = self.mapped.texts(self.positions[rows])
        found = [
            (int(j), int(row), text)
            for row, text in zip(rows, found_texts, strict=True)
            for j in near[int(row)].as_py()
        ]
        return [(j, text) for j, _, text in sorted(found)]


def _near_batch(batch: dict[str, list[Any]], index: Any) -> dict[str, list[Any]]:
    """For each train text, the indices of the eval texts it nearly duplicates."""
    near: list[list[int]] = [[] for _ in batch["text"]]
    for i, j in index.query(batch["text"]):
        near[i].append(j)
    return {"near": near}


def unsupported(cfg: DataConfig) -> list[str]:
    """Settings that need every train text in memory at once, refused on the memory-mapped path."""
    problems = []
    why = "needs every train text in memory at once, and this train file goes through the memory-mapped path"
    fix = "or set data.memory_mapped=false if the file fits in memory"
    if cfg.clean.near_duplicates:
        problems.append(
            f"data.clean.near_duplicates {why}. Set it to false (exact duplicates are still dropped), {fix}."
        )
    if cfg.augment.enabled:
        problems.append(f"data.augment {why}. Set data.augment.enabled=false, {fix}.")
    return problems


def tokenized_fingerprint(table: Any, tokenizer_hash: str, max_length: int) -> str:
    """The cache name of `table` tokenized: its content, the tokenizer and max_length."""
    return _fingerprint(table._fingerprint, tokenizer_hash, str(max_length), "tokenized")


def _label_ids(batch: dict[str, list[Any]], mapping: dict[str, int]) -> dict[str, list[Any]]:
    return {"label": [mapping[name] for name in batch["label"]]}


def _load(path: Path, cfg: DataConfig) -> tuple[Any, str, str]:
    """The file as a memory-mapped Dataset (every CSV/TSV field a string) and its two columns."""
    import csv

    import datasets

    path, fmt = check_data_file(path, cfg.format)
    options: dict[str, Any] = {}
    if fmt in ("csv", "tsv"):
        sep = "," if fmt == "csv" else "\t"
        names = (cfg.text_column, cfg.label_column, cfg.group_column)
        header = _has_header(path, sep, names) if cfg.header == "auto" else bool(cfg.header)
        quoting = (
            cfg.quoting
            if cfg.quoting != "auto"
            else (tsv_quoting(path, header) if fmt == "tsv" else "csv")
        )
        with path.open(encoding="utf-8-sig") as handle:
            first = next(csv.reader(handle, delimiter=sep), [])
        columns = first if header else [f"col{i}" for i in range(len(first))]
        options = {
            "sep": sep,
            "keep_default_na": False,
            "na_values": [""],
            "encoding": "utf-8-sig",
            "quoting": csv.QUOTE_NONE if quoting == "none" else csv.QUOTE_MINIMAL,
            # every field a string, as read_table keeps them (CsvConfig has no dtype option)
            "features": datasets.Features({name: datasets.Value("string") for name in columns}),
        }
        if not header:
            options.update(header=None, column_names=columns)
        builder = "csv"
    else:
        builder = {"jsonl": "json", "json": "json", "parquet": "parquet"}[fmt]
    try:
        dataset = datasets.load_dataset(
            builder,
            data_files=str(path),
            split="train",
            cache_dir=str(cache_folder()),
            **options,
        )
    except OSError as exc:
        if getattr(exc, "errno", None) is not None:
            raise _disk_error(exc) from None
        raise DataError(
            f"{short_path(path)}: cannot be read as {fmt}: {parser_message(exc)}. Check the file, or data.format."
        ) from None
    except Exception as exc:  # the builders wrap parser errors in their own types
        cause = exc.__cause__ or exc
        raise DataError(
            f"{short_path(path)}: cannot be read as {fmt}: {parser_message(cause)}. Check the file, or data.format."
        ) from None
    if len(dataset) == 0:
        raise DataError(
            f"{short_path(path)}: no data rows. Give a file with rows below the header."
        )
    head = dataset.select(range(min(len(dataset), 1000))).to_pandas()
    text_column = pick_column(head, cfg.text_column, TEXT_COLUMN_NAMES, "text", path)
    label_column = pick_column(
        head, cfg.label_column, LABEL_COLUMN_NAMES, "label", path, exclude=text_column
    )
    return dataset, text_column, label_column


def _clean(dataset: Any, text_column: str, label_column: str, cfg: DataConfig, sha256: str) -> Any:
    """One pass over every row: cleaned text, label name, row, hashes, flags. Cached by content."""
    group = cfg.group_column
    if group is not None and group not in dataset.column_names:
        pick_column(dataset.select(range(1)).to_pandas(), group, (), "group", Path("data"))
    settings = cfg.clean.model_dump()
    fingerprint = _fingerprint(
        sha256, text_column, label_column, group, json.dumps(settings, sort_keys=True)
    )
    try:
        return dataset.map(
            _clean_batch,
            batched=True,
            with_indices=True,
            fn_kwargs={
                "text_column": text_column,
                "label_column": label_column,
                "group_column": group,
                "settings": settings,
            },
            remove_columns=dataset.column_names,
            num_proc=processes(len(dataset)),
            new_fingerprint=fingerprint,
            desc="clean",
        )
    except OSError as exc:
        raise _disk_error(exc) from None


def _clean_batch(
    batch: dict[str, list[Any]],
    indices: list[int],
    text_column: str,
    label_column: str,
    group_column: str | None,
    settings: dict[str, Any],
) -> dict[str, list[Any]]:
    cfg = CleanConfig(**settings)
    out: dict[str, list[Any]] = {
        k: []
        for k in ("text", "label", "row", "key", "raw_key", "chars", "changed", "empty", "missing")
    }
    for text, label, index in zip(batch[text_column], batch[label_column], indices, strict=True):
        missing = label is None or (isinstance(label, float) and np.isnan(label))
        name = "" if missing else label_name(label)
        raw = "" if text is None else str(text)
        empty = raw.strip() == ""
        cleaned = raw if empty else clean_text(raw, cfg)
        out["text"].append(cleaned)
        out["label"].append(name)
        out["row"].append(index + 1)
        out["key"].append(text_key(cleaned))
        out["raw_key"].append(text_key(raw))
        out["chars"].append(len(cleaned))
        out["changed"].append(cleaned != raw)
        out["empty"].append(empty)
        out["missing"].append(missing or name == "")
    if group_column is not None:
        out["group"] = [str(g) for g in batch[group_column]]
    return out


def _integer_frame(
    table: Any, path: Path, label_column: str, text_column: str, clean: CleanConfig
) -> tuple[pd.DataFrame, list[str], int]:
    """key, label code, row, pos (+ group) of every row with a label and a text; and the empties."""
    import pyarrow.compute as pc

    missing = _column(table, "missing")
    if missing.any():
        first = int(missing.nonzero()[0][0]) + 1
        raise DataError(
            f"{short_path(path)}: {int(missing.sum())} rows have no '{label_column}' (first at data row {first}). Label them or remove them."
        )
    empty = _column(table, "empty")
    if empty.any() and clean.empty_text == "error":
        first = int(empty.nonzero()[0][0]) + 1
        raise DataError(
            f"{short_path(path)}: {int(empty.sum())} rows have an empty '{text_column}' (first at data row {first}). "
            f"{CONFIG.empty_text}"
        )
    encoded = pc.dictionary_encode(table.data.column("label")).combine_chunks()
    keep = ~empty
    frame = pd.DataFrame(
        {
            "key": _column(table, "key")[keep],
            "label": encoded.indices.to_numpy(zero_copy_only=False)[keep],
            "row": _column(table, "row")[keep],
            "pos": np.arange(len(table), dtype=np.int64)[keep],
        }
    )
    if "group" in table.column_names:
        frame["group"] = np.asarray(table["group"][:], dtype=object)[keep]
    return frame, [str(v) for v in encoded.dictionary.to_pylist()], int(empty.sum())


def _duplicate_stats(table: Any, frame: pd.DataFrame, column: str) -> dict[str, int]:
    keys = pd.Series(_column(table, column)[frame["pos"].to_numpy()])
    return {
        "rows_repeating_earlier": int(keys.duplicated(keep="first").sum()),
        "distinct_texts_repeated": int(keys[keys.duplicated(keep=False)].nunique()),
    }


def _sorted_counts(codes: pd.Series, names: list[str]) -> list[tuple[int, int]]:
    values, counts = np.unique(codes.to_numpy(), return_counts=True)
    return sorted(
        ((int(c), int(n)) for c, n in zip(values, counts, strict=True)), key=lambda cn: names[cn[0]]
    )


def _column(table: Any, name: str) -> np.ndarray:
    """One numeric column of an unselected Dataset as numpy, read from Arrow without Python objects."""
    return np.asarray(table.data.column(name).to_numpy())


def _fingerprint(*parts: str | None) -> str:
    return hashlib.sha256("\0".join(str(p) for p in parts).encode()).hexdigest()[:32]


def _disk_error(exc: OSError) -> DataError:
    return DataError(
        f"cannot write the memory-mapped copy of the data to {cache_folder()}: {exc.strerror or exc}. "
        "Free disk space there or set HF_DATASETS_CACHE to a folder with room (about twice the file size)."
    )
