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
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from tunelab.data.load import (
    PREDICT,
    TEXT_COLUMN_NAMES,
    TEXT_CSV_OPTIONS,
    Advice,
    _has_header,
    check_data_file,
    check_text_values,
    first_line,
    iter_jsonl_records,
    parser_message,
    pick_column,
    read_table,
    tsv_quoting,
)
from tunelab.errors import DataError, OutputError, TunelabError
from tunelab.files import check_output_file, output_error
from tunelab.suggest import short_list, short_path, short_repr

OUTPUT_FORMATS = {".csv": "csv", ".jsonl": "jsonl"}


def count_rows(path: Path) -> int | None:
    """Data rows, for a progress bar (a cheap pass over the bytes); None when unknown.

    The file is checked first (`check_data_file`), so a missing, binary or non-UTF-8 input is
    the same one-line error here as in every other reader.
    """
    path, fmt = check_data_file(path, what="input file", advice=PREDICT)
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            return int(pq.ParquetFile(path).metadata.num_rows)
        except (OSError, ValueError) as exc:
            raise DataError(
                f"{short_path(path)}: cannot be read as parquet: {parser_message(exc)}. Check the file."
            ) from None
    if fmt == "json":
        return None
    with path.open("rb") as handle:
        lines = sum(1 for line in handle if line.strip())
    if fmt in ("csv", "tsv") and _has_header(path, "," if fmt == "csv" else "\t", ()):
        lines -= 1
    return lines  # quoted CSV fields with newlines make this an upper bound


def iter_text_chunks(
    path: str | Path, text_column: str | None, rows: int, advice: Advice = PREDICT
) -> Iterator[tuple[pd.DataFrame, str]]:
    """(chunk, name of its text column) for every `rows` rows of the file, in order.

    A CSV/TSV whose first line names no known text column is refused unless `text_column` is
    given: it is either a header nobody recognised (whose row must not be labelled as text) or
    a headerless file, and only the user knows which.
    """
    if rows < 1:
        raise TunelabError(f"--chunk-rows must be at least 1; got {rows}. Use e.g. 10000.")
    path, fmt = check_data_file(path, what="input file", advice=advice)
    chunks = _chunks(path, fmt, text_column, rows, advice)
    column: str | None = None
    seen = 0
    for chunk in chunks:
        if len(chunk) == 0:
            continue
        chunk.columns = [str(c) for c in chunk.columns]
        if column is None:
            column = pick_column(chunk, text_column, TEXT_COLUMN_NAMES, "text", path, advice=advice)
        else:
            if column not in chunk.columns:
                raise DataError(
                    f"{short_path(path)}: rows after data row {seen} have no '{column}' column. "
                    "Give every row the same fields."
                )
            check_text_values(chunk[column], column, path, advice)
        empty = chunk[column].isna() | (chunk[column].astype(str).str.strip() == "")
        if empty.any():
            first = seen + int(empty.to_numpy().nonzero()[0][0]) + 1
            raise DataError(
                f"{short_path(path)}: data row {first} has an empty '{column}'. Remove or fill it."
            )
        seen += len(chunk)
        yield chunk, column
    if seen == 0:
        raise DataError(
            f"{short_path(path)}: no data rows. Give a file with rows below the header."
        )


def _csv_header(path: Path, sep: str, text_column: str | None, advice: Advice) -> bool:
    """Whether the first line is a header; refuse to guess when it names no text column."""
    if _has_header(path, sep, (text_column,)):
        return True
    if text_column is not None:
        if text_column.startswith("col") and text_column[3:].isdigit():
            return False  # the user says: no header, columns by position
        fields = [f.strip().strip('"') for f in first_line(path).split(sep)]
        raise DataError(
            f"{short_path(path)}: column {short_repr(text_column, 40)} not found; the first line has "
            f"{short_list(fields, 80, quote=True)}. {advice.pick('text', 'one of those')}, "
            "or col0, col1, … for a file with no header."
        )
    fields = [f.strip().strip('"') for f in first_line(path).split(sep)]
    raise DataError(
        f"{short_path(path)}: the first line ({short_list(fields, 80, quote=True)}) names no text column "
        f"(text, sentence, review, …). If it is a header, {advice.pick('text', 'the text column').lower()}; "
        "if the file has no header, pass col0 (col1, … by position)."
    )


def _chunks(
    path: Path, fmt: str, text_column: str | None, rows: int, advice: Advice
) -> Iterator[pd.DataFrame]:
    if fmt in ("csv", "tsv"):
        sep = "," if fmt == "csv" else "\t"
        header = _csv_header(path, sep, text_column, advice)
        try:
            # TSV: quoted or raw as read_table would read it (judged on the file's head)
            quoted = fmt == "csv" or tsv_quoting(path, header) == "csv"
            reader = pd.read_csv(
                path,
                sep=sep,
                header=0 if header else None,
                quoting=csv.QUOTE_MINIMAL if quoted else csv.QUOTE_NONE,
                chunksize=rows,
                **TEXT_CSV_OPTIONS,
            )
            for chunk in reader:
                if not header:
                    chunk.columns = [f"col{i}" for i in range(chunk.shape[1])]
                yield chunk
        except (pd.errors.ParserError, csv.Error) as exc:
            raise DataError(
                f"{short_path(path)}: malformed {fmt.upper()}: {parser_message(exc)}. Fix that row."
            ) from None
        except pd.errors.EmptyDataError:
            return
        except (ValueError, UnicodeDecodeError) as exc:
            raise DataError(
                f"{short_path(path)}: cannot be read as {fmt}: {parser_message(exc)}. Check the file."
            ) from None
    elif fmt == "jsonl":
        yield from _jsonl_chunks(path, rows)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            batches = pq.ParquetFile(path).iter_batches(batch_size=rows)
            for batch in batches:
                yield batch.to_pandas()
        except (OSError, ValueError) as exc:
            raise DataError(
                f"{short_path(path)}: cannot be read as parquet: {parser_message(exc)}. Check the file."
            ) from None
    else:  # one JSON array: no partial reading possible
        yield read_table(path, fmt, advice=advice)


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
    """Appends frames to a CSV or JSONL file; `chunk_writer` renames it into place."""

    def __init__(self, handle: Any, fmt: str, target: Path | None = None) -> None:
        self.handle, self.fmt, self.rows, self.target = handle, fmt, 0, target

    def write(self, frame: pd.DataFrame) -> None:
        try:
            if self.fmt == "csv":
                frame.to_csv(self.handle, index=False, header=self.rows == 0)
            else:
                for record in frame.to_dict(orient="records"):
                    self.handle.write(json.dumps(record, ensure_ascii=False, default=float) + "\n")
        except OSError as exc:  # disk full, quota, a vanished mount
            raise output_error(exc, self.target or "output", "predictions to") from None
        self.rows += len(frame)


def check_predict_request(
    input_file: str | Path | None,
    output_file: str | Path | None,
    batch_size: int,
    chunk_rows: int = 1,
    texts: list[str] | None = None,
) -> None:
    """Everything about a predict call that can be refused before the model is loaded."""
    if batch_size < 1:
        raise TunelabError(f"--batch-size must be at least 1; got {batch_size}. Use e.g. 64.")
    if chunk_rows < 1:
        raise TunelabError(f"--chunk-rows must be at least 1; got {chunk_rows}. Use e.g. 10000.")
    for i, text in enumerate(texts or [], start=1):
        if not isinstance(text, str) or not text.strip():
            raise DataError(
                f"--text {i} of {len(texts or [])} is empty ({short_repr(text, 20)}); every text needs "
                "at least one non-space character (train and serve refuse empty texts too)."
            )
    if input_file is not None:
        check_data_file(input_file, what="input file", advice=PREDICT)
    if output_file is not None:
        check_prediction_output(output_file, (input_file,) if input_file is not None else ())


def check_prediction_output(target: str | Path, inputs: tuple[str | Path, ...] = ()) -> Path:
    """Refuse, before any work, an output the writer could not produce: its suffix, a directory,
    the input itself, or a place that cannot be written."""
    target = check_output_file(target, "--output", inputs)
    if OUTPUT_FORMATS.get(target.suffix.lower()) is None:
        got = short_repr(target.suffix, 20) if target.suffix else "no extension"
        raise OutputError(
            f"--output {short_path(target)}: write predictions as .csv or .jsonl; got {got}."
        )
    return target


@contextmanager
def chunk_writer(target: str | Path) -> Iterator[ChunkWriter]:
    """A writer to a temporary file beside `target`, renamed to `target` only on success.

    Nothing is left under either name when writing fails (disk full, read-only, interrupted);
    an OSError becomes one OutputError line naming the target.
    """
    target = check_prediction_output(target)
    fmt = OUTPUT_FORMATS[target.suffix.lower()]
    temporary: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
        temporary = Path(name)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield ChunkWriter(handle, fmt, target)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(temporary, 0o666 & ~mask)  # mkstemp makes 0600; the result is an ordinary file
        os.replace(temporary, target)
    except OSError as exc:
        raise output_error(exc, target, "predictions to") from None
    finally:
        if temporary is not None:
            temporary.unlink(missing_ok=True)
