"""Read CSV/TSV/JSON/JSONL/Parquet into a DataFrame, with errors that name the file and line."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from tunelab.errors import DataError

FORMATS_BY_SUFFIX = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "tsv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
TEXT_COLUMN_NAMES = (
    "text",
    "sentence",
    "content",
    "review",
    "document",
    "body",
    "message",
    "sms",
    "tweet",
    "comment",
    "input",
)
LABEL_COLUMN_NAMES = ("label", "labels", "class", "target", "category", "sentiment", "y")
# Generative tasks: seq2seq source/target, instruction prompt/response, chat messages.
SOURCE_COLUMN_NAMES = (
    "source",
    "document",
    "article",
    "dialogue",
    "question",
    "instruction",
    "prompt",
    "query",
    "input_text",
    "text",
)
TARGET_COLUMN_NAMES = (
    "target",
    "summary",
    "tldr",
    "answer",
    "output",
    "response",
    "completion",
    "code",
    "target_text",
)
INPUT_COLUMN_NAMES = ("input", "context")
MESSAGES_COLUMN_NAMES = ("messages", "conversations", "conversation")


def detect_format(path: Path, fmt: str = "auto") -> str:
    if fmt != "auto":
        return fmt
    found = FORMATS_BY_SUFFIX.get(path.suffix.lower())
    if found is None:
        known = ", ".join(sorted(FORMATS_BY_SUFFIX))
        raise DataError(
            f"{path}: cannot tell the format from the extension '{path.suffix}'. Use one of {known}, or set data.format."
        )
    return found


def read_table(
    path: str | Path,
    fmt: str = "auto",
    header: bool | str = "auto",
    quoting: str = "auto",
    column_names: tuple[str | None, ...] = (),
) -> pd.DataFrame:
    """Read one data file; every column stays as written (strings for CSV/TSV).

    header="auto" takes the first CSV/TSV line as a header when it names a known or configured
    column; quoting="auto" honours quotes in CSV and not in TSV, where a stray quote (as in the
    SMS Spam Collection) would otherwise merge rows.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"data file not found: {path}. Check the path (paths in a YAML config are relative to that file)."
        )
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty. Point the config at a file with rows.")
    fmt = detect_format(path, fmt)
    if fmt != "parquet":
        _check_utf8(path)
    try:
        if fmt in ("csv", "tsv"):
            sep = "," if fmt == "csv" else "\t"
            has_header = _has_header(path, sep, column_names) if header == "auto" else bool(header)
            if quoting == "auto" and fmt == "tsv":
                frame = _read_tsv_either_quoting(path, has_header)
            else:
                frame = _read_delimited(
                    path, sep, has_header, "none" if quoting == "none" else "csv"
                )
        elif fmt == "jsonl":
            frame = _read_jsonl(path)
        elif fmt == "json":
            frame = _read_json(path)
        else:
            frame = pd.read_parquet(path)
    except (pd.errors.ParserError, csv.Error) as exc:
        raise DataError(
            f"{path}: malformed {fmt.upper()}: {str(exc).strip()}. Fix that row, or check data.format and quoting."
        ) from None
    except (OSError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(
            f"{path}: cannot be read as {fmt}: {exc}. Check the file and data.format."
        ) from None
    if len(frame) == 0:
        raise DataError(f"{path}: no data rows. Point the config at a file with rows.")
    frame.columns = [str(c) for c in frame.columns]
    return frame


def _check_utf8(path: Path) -> None:
    """Name the first line that is not UTF-8 (parsers report offsets inside a field, not lines)."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(
                    f"{path}: line {number} is not valid UTF-8 (byte 0x{line[exc.start]:02x}). "
                    "Re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)."
                ) from None


def _has_header(path: Path, sep: str, column_names: tuple[str | None, ...]) -> bool:
    with path.open(encoding="utf-8") as handle:
        first = handle.readline().rstrip("\r\n")
    names = (*TEXT_COLUMN_NAMES, *LABEL_COLUMN_NAMES, *SOURCE_COLUMN_NAMES, *TARGET_COLUMN_NAMES)
    known = {n.lower() for n in (*names, *INPUT_COLUMN_NAMES, *MESSAGES_COLUMN_NAMES)} | {
        n.lower() for n in column_names if n
    }
    return any(field.strip().strip('"').lower() in known for field in first.split(sep))


def _read_tsv_either_quoting(path: Path, header: bool) -> pd.DataFrame:
    """TSV quoting is a convention, not a rule: read it both ways and keep the reading that fits.

    A raw TSV (the SMS Spam Collection) has messages that merely begin with a quote; honouring
    it merges or breaks rows. A TSV written by pandas quotes fields that hold quotes, tabs or
    newlines; ignoring that leaves quote characters in, or splits a row.
    """
    with path.open("rb") as handle:
        lines = sum(1 for line in handle if line.strip()) - (1 if header else 0)
    readings: dict[str, pd.DataFrame] = {}
    failure: Exception | None = None
    for rule in ("none", "csv"):
        try:
            readings[rule] = _read_delimited(path, "\t", header, rule)
        except pd.errors.ParserError as exc:
            failure = exc
    plain, quoted = readings.get("none"), readings.get("csv")
    if plain is None or quoted is None:
        if plain is None and quoted is None:
            raise failure  # type: ignore[misc]
        return plain if quoted is None else quoted  # type: ignore[return-value]
    plain_fits = len(plain) == lines and not plain.isna().any().any()
    if not plain_fits:
        return quoted
    wrapped = (
        plain.apply(
            lambda column: (
                column.str.startswith('"') & column.str.endswith('"') & (column.str.len() > 1)
            )
        )
        .any()
        .any()
    )
    return quoted if wrapped and len(quoted) == len(plain) else plain


# Every cell is text: "NA", "null" or "nan" stay text, only an empty cell is missing.
TEXT_CSV_OPTIONS: dict[str, Any] = {
    "dtype": str,
    "encoding": "utf-8",
    "keep_default_na": False,
    "na_values": [""],
}


def _read_delimited(path: Path, sep: str, header: bool, quoting: str) -> pd.DataFrame:
    frame = pd.read_csv(
        path,
        sep=sep,
        header=0 if header else None,
        quoting=csv.QUOTE_NONE if quoting == "none" else csv.QUOTE_MINIMAL,
        engine="c",
        **TEXT_CSV_OPTIONS,
    )
    if not header:
        frame.columns = [f"col{i}" for i in range(frame.shape[1])]
    return frame


def _read_jsonl(path: Path) -> pd.DataFrame:
    return pd.DataFrame.from_records(list(iter_jsonl_records(path)))


def iter_jsonl_records(path: Path) -> Iterator[dict[str, Any]]:
    """Each JSON object of a JSONL file, in order; a bad line is named in one clear error."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{path}: line {number} is not valid JSON ({exc.msg}). Fix that line; each line must be one JSON object."
                ) from None
            if not isinstance(record, dict):
                raise DataError(
                    f"{path}: line {number} is a JSON {type(record).__name__}, not an object. Each line must be one JSON object."
                )
            yield record


def _read_json(path: Path) -> pd.DataFrame:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}: not valid JSON at line {exc.lineno} ({exc.msg}). Fix the file; for one object per line use .jsonl."
        ) from None
    if isinstance(loaded, dict):
        lists = [v for v in loaded.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise DataError(
                f"{path}: expected a list of objects (or one key holding such a list). Reshape the file."
            )
        loaded = lists[0]
    if not isinstance(loaded, list) or not all(isinstance(r, dict) for r in loaded):
        raise DataError(f"{path}: expected a list of objects, one per row. Reshape the file.")
    return pd.DataFrame.from_records(loaded)


def pick_column(
    frame: pd.DataFrame,
    wanted: str | None,
    candidates: tuple[str, ...],
    role: str,
    path: Path,
    exclude: str | None = None,
) -> str:
    """The configured column, or the first common name for `role` present in the file."""
    columns = list(frame.columns)
    if wanted is not None:
        if wanted not in columns:
            raise DataError(
                f"{path}: column '{wanted}' not found; columns are {columns}. Set data.{role}_column to one of them."
            )
        return wanted
    by_lower = {c.lower(): c for c in columns}
    for name in candidates:
        if name in by_lower:
            return by_lower[name]
    if columns == [f"col{i}" for i in range(len(columns))]:  # a headerless file: judge by content
        guess = _guess_column(frame, role, exclude)
        if guess is not None:
            return guess
    raise DataError(
        f"{path}: cannot tell which column holds the {role}; columns are {columns}. Set data.{role}_column to one of them."
    )


def _guess_column(frame: pd.DataFrame, role: str, exclude: str | None) -> str | None:
    """Headerless files: text = the column with the longest values; label = few distinct values."""
    columns = [c for c in frame.columns if c != exclude]
    if not columns:
        return None
    lengths = {c: frame[c].astype(str).str.len().mean() for c in columns}
    if role == "text":
        return max(lengths, key=lambda c: lengths[c])
    distinct = {c: frame[c].nunique() for c in columns}
    few = [c for c in columns if distinct[c] <= max(2, min(1000, len(frame) // 2))]
    return min(few, key=lambda c: (distinct[c], lengths[c])) if few else None


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
