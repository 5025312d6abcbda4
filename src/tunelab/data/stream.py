"""Read a large input file a chunk of rows at a time, and write results the same way.

`tunelab predict` uses these so that memory stays bounded by one chunk, whatever the file size.
CSV/TSV are read with pandas' chunked reader, JSONL line by line, Parquet by record batches.
A single JSON array cannot be read in parts; it is read whole (use JSONL for large inputs).
Output goes to a temporary file beside the target and is renamed into place at the end, so an
interrupted run never leaves a half-written result under the requested name.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from tunelab.data.load import (
    TEXT_COLUMN_NAMES,
    TEXT_CSV_OPTIONS,
    _check_utf8,
    _has_header,
    detect_format,
    iter_jsonl_records,
    pick_column,
    read_table,
)
from tunelab.errors import DataError


def count_rows(path: Path) -> int | None:
    """Data rows, for a progress bar (a cheap pass over the bytes); None when unknown."""
    fmt = detect_format(path)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    if fmt == "json":
        return None
    with path.open("rb") as handle:
        lines = sum(1 for line in handle if line.strip())
    if fmt in ("csv", "tsv") and _has_header(path, "," if fmt == "csv" else "\t", ()):
        lines -= 1
    return lines  # quoted CSV fields with newlines make this an upper bound


def iter_text_chunks(
    path: str | Path, text_column: str | None, rows: int
) -> Iterator[tuple[pd.DataFrame, str]]:
    """(chunk, name of its text column) for every `rows` rows of the file, in order."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"input file not found: {path}. Check the path.")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty. Give a file with rows.")
    fmt = detect_format(path)
    if fmt != "parquet":
        _check_utf8(path)
    chunks = _chunks(path, fmt, text_column, rows)
    column: str | None = None
    seen = 0
    for chunk in chunks:
        chunk.columns = [str(c) for c in chunk.columns]
        if column is None:
            column = pick_column(chunk, text_column, TEXT_COLUMN_NAMES, "text", path)
        empty = chunk[column].isna() | (chunk[column].astype(str).str.strip() == "")
        if empty.any():
            first = seen + int(empty.to_numpy().nonzero()[0][0]) + 1
            raise DataError(f"{path}: data row {first} has an empty '{column}'. Remove or fill it.")
        seen += len(chunk)
        yield chunk, column
    if seen == 0:
        raise DataError(f"{path}: no data rows. Give a file with rows.")


def _chunks(path: Path, fmt: str, text_column: str | None, rows: int) -> Iterator[pd.DataFrame]:
    if fmt in ("csv", "tsv"):
        sep = "," if fmt == "csv" else "\t"
        header = _has_header(path, sep, (text_column,))
        try:
            reader = pd.read_csv(
                path,
                sep=sep,
                header=0 if header else None,
                # TSV: raw text (a leading quote is text), as most TSV files are written
                quoting=csv.QUOTE_MINIMAL if fmt == "csv" else csv.QUOTE_NONE,
                chunksize=rows,
                **TEXT_CSV_OPTIONS,
            )
            for chunk in reader:
                if not header:
                    chunk.columns = [f"col{i}" for i in range(chunk.shape[1])]
                yield chunk
        except (pd.errors.ParserError, csv.Error) as exc:
            raise DataError(
                f"{path}: malformed {fmt.upper()}: {str(exc).strip()}. Fix that row."
            ) from None
    elif fmt == "jsonl":
        yield from _jsonl_chunks(path, rows)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):
            yield batch.to_pandas()
    else:  # one JSON array: no partial reading possible
        yield read_table(path, fmt)


def _jsonl_chunks(path: Path, rows: int) -> Iterator[pd.DataFrame]:
    records: list[dict[str, Any]] = []
    for record in iter_jsonl_records(path):
        records.append(record)
        if len(records) == rows:
            yield pd.DataFrame.from_records(records)
            records = []
    if records:
        yield pd.DataFrame.from_records(records)


class ChunkWriter:
    """Appends frames to a CSV or JSONL file; `commit` renames it into place."""

    def __init__(self, handle: Any, fmt: str) -> None:
        self.handle, self.fmt, self.rows = handle, fmt, 0

    def write(self, frame: pd.DataFrame) -> None:
        if self.fmt == "csv":
            frame.to_csv(self.handle, index=False, header=self.rows == 0)
        else:
            for record in frame.to_dict(orient="records"):
                self.handle.write(json.dumps(record, ensure_ascii=False, default=float) + "\n")
        self.rows += len(frame)


@contextmanager
def chunk_writer(target: str | Path) -> Iterator[ChunkWriter]:
    """A writer to a temporary file beside `target`, renamed to `target` only on success."""
    target = Path(target)
    fmt = {".csv": "csv", ".jsonl": "jsonl"}.get(target.suffix.lower())
    if fmt is None:
        raise DataError(f"{target}: write predictions as .csv or .jsonl.")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.partial")
    try:
        with temporary.open("w", encoding="utf-8", newline="") as handle:
            yield ChunkWriter(handle, fmt)
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
