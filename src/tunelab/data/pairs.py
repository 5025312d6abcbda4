"""Data for generative runs: (source, target) pairs for seq2seq and conversations for instruction tuning.

Every split is a DataFrame with `text` (the input: what deduplication and the leakage check look
at), `row` (1-based data row in its file), a placeholder `label`, and either `target` +
`references` (seq2seq) or `messages` (instruction/chat: a list of {role, content}, the last one
the assistant's answer). Instruction columns become a one-turn conversation, so one code path
renders and masks both.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from tunelab.config import RunConfig
from tunelab.data import SPLITS, PreparedData, complete_splits
from tunelab.data.clean import clean_frame
from tunelab.data.dataset_source import split_files
from tunelab.data.labels import LabelMap
from tunelab.data.leakage import check_leakage
from tunelab.data.load import (
    INPUT_COLUMN_NAMES,
    MESSAGES_COLUMN_NAMES,
    SOURCE_COLUMN_NAMES,
    TARGET_COLUMN_NAMES,
    file_sha256,
    pick_column,
    read_table,
)
from tunelab.errors import DataError

ROLES = ("system", "user", "assistant")
PLACEHOLDER = "pair"  # unlabelled rows share one label so cleaning and splitting stay one path

Format = Literal["text", "instruction", "chat"]


def causal_format(cfg: RunConfig) -> Format:
    """The causal_lm data format: as configured, or from the train file's columns."""
    if cfg.task.format != "auto":
        return cfg.task.format
    data = cfg.data
    if data.messages_column:
        return "chat"
    if data.source_column or data.target_column:
        return "instruction"
    path = split_files(data)["train"]
    if path is None or Path(path).suffix.lower() == ".txt" or not Path(path).is_file():
        return "text"
    stat = Path(path).stat()  # the key changes when the file does
    columns = _column_names(
        str(path), data.format, data.header, data.quoting, stat.st_mtime_ns, stat.st_size
    )
    if columns & set(MESSAGES_COLUMN_NAMES):
        return "chat"
    if columns & set(SOURCE_COLUMN_NAMES) - {"text"} and columns & set(TARGET_COLUMN_NAMES):
        return "instruction"
    return "text"


@functools.lru_cache(maxsize=16)
def _column_names(
    path: str, fmt: str, header: bool | str, quoting: str, mtime_ns: int, size: int
) -> frozenset[str]:
    """Lower-cased column names of a data file, read once per file version: validating a config
    and starting a run both ask, and a file of several MB need not be parsed each time."""
    return frozenset(str(c).lower() for c in read_table(path, fmt, header, quoting).columns)


def prepare_pairs(cfg: RunConfig, kind: Literal["seq2seq", "instruction", "chat"]) -> PreparedData:
    """Load, check, deduplicate and split the configured files for a generative run."""
    data = cfg.data
    paths = split_files(data)
    if paths["train"] is None:
        raise DataError("data.train_file is not set. Set it to a CSV/TSV/JSON/JSONL/Parquet file.")
    splits: dict[str, pd.DataFrame] = {}
    report: dict[str, Any] = {"files": {}}
    files: dict[str, str] = {}
    columns: dict[str, str] = {}
    for split, path in paths.items():
        if path is None:
            continue
        frame, columns = _read_pairs(path, cfg, kind)
        clean = data.clean.model_copy(update={"conflicts": "keep"})
        splits[split], report["files"][str(path)] = clean_frame(frame, clean)
        files[str(path)] = file_sha256(path)
        if len(splits[split]) == 0:
            raise DataError(f"{path}: no rows left after cleaning. Relax data.clean.")
    for frame in splits.values():
        frame["label"] = 0
    splits, origin = complete_splits(splits, data, cfg.train.seed)
    splits, report["leakage"] = check_leakage(splits, data.leakage)
    if data.max_train_rows is not None:
        splits["train"] = splits["train"].head(data.max_train_rows)
    if data.max_eval_rows is not None:
        for name in ("validation", "test"):
            splits[name] = splits[name].head(data.max_eval_rows)
    report["columns"] = columns
    return PreparedData(
        {n: splits[n] for n in SPLITS},
        LabelMap((PLACEHOLDER,)),
        columns.get("source") or columns.get("messages", ""),
        columns.get("target", ""),
        files,
        origin,
        report,
    )


def _read_pairs(path: str, cfg: RunConfig, kind: str) -> tuple[pd.DataFrame, dict[str, str]]:
    data = cfg.data
    wanted = (data.source_column, data.target_column, data.input_column, data.messages_column)
    frame = read_table(path, data.format, data.header, data.quoting, wanted)
    file = Path(path)
    if kind == "chat":
        column = pick_column(frame, data.messages_column, MESSAGES_COLUMN_NAMES, "messages", file)
        conversations = [_checked_messages(m, file, i + 1) for i, m in enumerate(frame[column])]
        if cfg.task.system_prompt:
            conversations = [_with_system(m, cfg.task.system_prompt) for m in conversations]
        out = pd.DataFrame(
            {
                "text": [_prompt_key(m) for m in conversations],
                "messages": conversations,
                "row": range(1, len(frame) + 1),
            }
        )
        return out.assign(label=PLACEHOLDER), {"messages": column}
    source = pick_column(frame, data.source_column, SOURCE_COLUMN_NAMES, "source", file)
    target = pick_column(
        frame, data.target_column, TARGET_COLUMN_NAMES, "target", file, exclude=source
    )
    if source == target:
        raise DataError(
            f"{file}: source and target are both column '{source}'. Set data.source_column and data.target_column."
        )
    sources = [_joined(v) for v in frame[source]]
    references = [_references(v) for v in frame[target]]
    _check_not_empty(sources, file, source)
    _check_not_empty([r[0] if r else "" for r in references], file, target)
    names = {"source": source, "target": target}
    if kind == "seq2seq":
        out = pd.DataFrame(
            {
                "text": sources,
                "target": [r[0] for r in references],
                "references": references,
                "row": range(1, len(frame) + 1),
            }
        )
        return out.assign(label=PLACEHOLDER), names
    extra_column = _optional_column(frame, data.input_column, INPUT_COLUMN_NAMES, file)
    extras = [_joined(v) for v in frame[extra_column]] if extra_column else [""] * len(frame)
    if extra_column:
        names["input"] = extra_column
    prompts = [f"{s}\n\n{x}" if x.strip() else s for s, x in zip(sources, extras, strict=True)]
    conversations = [
        [{"role": "user", "content": p}, {"role": "assistant", "content": r[0]}]
        for p, r in zip(prompts, references, strict=True)
    ]
    if cfg.task.system_prompt:
        conversations = [_with_system(m, cfg.task.system_prompt) for m in conversations]
    out = pd.DataFrame(
        {
            "text": prompts,
            "messages": conversations,
            "references": references,
            "row": range(1, len(frame) + 1),
        }
    )
    return out.assign(label=PLACEHOLDER), names


def _joined(value: Any) -> str:
    """A cell as one text: lists of sentences (SciTLDR's sources) are joined with spaces."""
    if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        return " ".join(str(v).strip() for v in list(value))
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def _references(value: Any) -> list[str]:
    """A target cell as its references: a list (several gold answers) or one text."""
    if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        return [str(v).strip() for v in list(value) if str(v).strip()]
    text = _joined(value).strip()
    return [text] if text else []


def _check_not_empty(values: list[str], file: Path, column: str) -> None:
    empty = [i + 1 for i, v in enumerate(values) if not v.strip()]
    if empty:
        raise DataError(
            f"{file}: {len(empty)} rows have an empty '{column}' (first at data row {empty[0]}). Remove or fill them."
        )


def _optional_column(
    frame: pd.DataFrame, wanted: str | None, candidates: tuple[str, ...], file: Path
) -> str | None:
    if wanted is not None:
        return pick_column(frame, wanted, candidates, "input", file)
    by_lower = {str(c).lower(): c for c in frame.columns}
    return next((by_lower[n] for n in candidates if n in by_lower), None)


def _checked_messages(value: Any, file: Path, row: int) -> list[dict[str, str]]:
    """A conversation: {role, content} dicts, roles system/user/assistant, ending with the assistant."""
    items = list(value) if isinstance(value, (list, tuple)) or hasattr(value, "tolist") else None
    where = f"{file}: data row {row}"
    if not items or not all(isinstance(m, dict) for m in items):
        raise DataError(
            f"{where}: messages must be a non-empty list of {{role, content}} objects. Fix the row."
        )
    messages = []
    for m in items:
        role, content = m.get("role"), m.get("content")
        if role not in ROLES or not isinstance(content, str):
            raise DataError(
                f"{where}: a message has role {role!r} and content of type {type(content).__name__}; "
                f"roles must be one of {', '.join(ROLES)} and content a string. Fix the row."
            )
        messages.append({"role": role, "content": content})
    if messages[-1]["role"] != "assistant":
        raise DataError(
            f"{where}: the conversation ends with a {messages[-1]['role']} message; it must end with the "
            "assistant's answer, which is what the model learns. Fix the row."
        )
    return messages


def _with_system(messages: list[dict[str, str]], system: str) -> list[dict[str, str]]:
    if messages[0]["role"] == "system":
        return messages
    return [{"role": "system", "content": system}, *messages]


def _prompt_key(messages: list[dict[str, str]]) -> str:
    """What deduplication and leakage compare: every turn before the final answer."""
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages[:-1])
