"""Read CSV/TSV/JSON/JSONL/Parquet into a DataFrame, with errors that name the file and line."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunelab.errors import DataError
from tunelab.files import check_parquet, check_readable_file, check_text_encoding
from tunelab.suggest import short_list, short_path, short_repr

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


@dataclass(frozen=True)
class Advice:
    """How the user changes a reading choice where the file came from: a config, or a command's flags.

    A message must only suggest what its command can do: `predict` takes --text-column, a
    config takes data.text_column, `evaluate --data` takes --text-column/--label-column.
    """

    text_column: str = "data.text_column"
    label_column: str = "data.label_column"
    format: str = "set data.format"
    empty_text: str = "Remove or fill those rows, or set data.clean.empty_text=drop."
    flags: bool = False

    def column(self, role: str) -> str:
        return str(getattr(self, f"{role}_column", f"data.{role}_column"))

    def pick(self, role: str, target: str = "one of them") -> str:
        """'Set data.text_column to one of them' / 'Pass --text-column with one of them'."""
        how = self.column(role)
        return f"Pass {how} with {target}" if how.startswith("--") else f"Set {how} to {target}"


CONFIG = Advice()
PREDICT = Advice(
    text_column="--text-column",
    format="give it one of those extensions",
    empty_text="Remove or fill those rows.",
    flags=True,
)
GENERATE = Advice(
    text_column="--column",
    format="give it one of those extensions",
    empty_text="Remove or fill those rows.",
    flags=True,
)
EVALUATE = Advice(
    text_column="--text-column",
    label_column="--label-column",
    format="give it one of those extensions",
    empty_text="Remove or fill those rows.",
    flags=True,
)


def detect_format(path: Path, fmt: str = "auto", advice: Advice = CONFIG) -> str:
    if fmt != "auto":
        return fmt
    found = FORMATS_BY_SUFFIX.get(path.suffix.lower())
    if found is None:
        known = ", ".join(sorted(FORMATS_BY_SUFFIX))
        raise DataError(
            f"{short_path(path)}: cannot tell the format from the extension {short_repr(path.suffix, 20)}. "
            f"Use one of {known}, or {advice.format}."
        )
    return found


def check_data_file(
    path: str | Path, fmt: str = "auto", what: str = "data file", advice: Advice = CONFIG
) -> tuple[Path, str]:
    """(path, format) of a file every reader may open: exists, is a non-empty readable file,
    and is what its format says (UTF-8 text, or Parquet). The one check train, data inspect,
    predict and evaluate share, so a file gets the same one-line answer from each."""
    fix = (
        "Check the path (paths in a YAML config are relative to that file)."
        if advice is CONFIG
        else "Check the path."
    )
    path = check_readable_file(path, what, fix)
    fmt = detect_format(path, fmt, advice)
    if fmt == "parquet":
        check_parquet(path)
    else:
        check_text_encoding(path)
    return path, fmt


def read_table(
    path: str | Path,
    fmt: str = "auto",
    header: bool | str = "auto",
    quoting: str = "auto",
    column_names: tuple[str | None, ...] = (),
    advice: Advice = CONFIG,
) -> pd.DataFrame:
    """Read one data file; every column stays as written (strings for CSV/TSV).

    header="auto" takes the first CSV/TSV line as a header when it names a known or configured
    column; quoting="auto" honours quotes in CSV and not in TSV, where a stray quote (as in the
    SMS Spam Collection) would otherwise merge rows.
    """
    path, fmt = check_data_file(path, fmt, advice=advice)
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
    except DataError:
        raise
    except (pd.errors.ParserError, csv.Error) as exc:
        quoting_fix = "check data.format and quoting" if advice is CONFIG else "check the format"
        raise DataError(
            f"{short_path(path)}: malformed {fmt.upper()}: {parser_message(exc)}. Fix that row, or {quoting_fix}."
        ) from None
    except (OSError, ValueError, TypeError, RecursionError, UnicodeDecodeError) as exc:
        raise DataError(
            f"{short_path(path)}: cannot be read as {fmt}: {parser_message(exc)}. Check the file, or {advice.format}."
        ) from None
    if len(frame) == 0:
        raise DataError(
            f"{short_path(path)}: no data rows. Give a file with rows below the header."
        )
    frame.columns = [str(c) for c in frame.columns]
    return frame


def parser_message(exc: BaseException, limit: int = 120) -> str:
    """A parser's complaint, on one line and cut short (pandas and pyarrow can quote whole rows)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def first_line(path: Path) -> str:
    with path.open(encoding="utf-8-sig", errors="replace") as handle:
        return handle.readline(1 << 20).rstrip("\r\n")


def _has_header(path: Path, sep: str, column_names: tuple[str | None, ...]) -> bool:
    names = (*TEXT_COLUMN_NAMES, *LABEL_COLUMN_NAMES, *SOURCE_COLUMN_NAMES, *TARGET_COLUMN_NAMES)
    known = {n.lower() for n in (*names, *INPUT_COLUMN_NAMES, *MESSAGES_COLUMN_NAMES)} | {
        n.lower() for n in column_names if n
    }
    return any(field.strip().strip('"').lower() in known for field in first_line(path).split(sep))


def _read_tsv_either_quoting(path: Path, header: bool) -> pd.DataFrame:
    """TSV quoting is a convention, not a rule: read it both ways and keep the reading that fits.

    A raw TSV (the SMS Spam Collection) has messages that merely begin with a quote; honouring
    it merges or breaks rows. A TSV written by pandas quotes fields that hold quotes, tabs or
    newlines; ignoring that leaves quote characters in, or splits a row.
    """
    with path.open("rb") as handle:
        lines = sum(1 for line in handle if line.strip()) - (1 if header else 0)
    return _tsv_reading(lambda: path, lines, header)[0]


def tsv_quoting(path: Path, header: bool, sample_bytes: int = 1 << 20) -> str:
    """The quoting rule ("none" or "csv") `read_table` would choose, judged on the file's head,
    so a TSV streamed in chunks (predict) is read as training reads it."""
    with path.open("rb") as handle:
        head = handle.read(sample_bytes)
        if handle.read(1) and b"\n" in head:
            head = head[: head.rindex(b"\n") + 1]
    text = head.decode("utf-8-sig", errors="replace")
    lines = sum(1 for line in text.splitlines() if line.strip()) - (1 if header else 0)
    return _tsv_reading(lambda: io.StringIO(text), lines, header)[1]


def _tsv_reading(source: Any, lines: int, header: bool) -> tuple[pd.DataFrame, str]:
    """(frame, rule) of the reading that fits; `source()` gives a fresh path or buffer."""
    readings: dict[str, pd.DataFrame] = {}
    failure: Exception | None = None
    for rule in ("none", "csv"):
        try:
            readings[rule] = _read_delimited(source(), "\t", header, rule)
        except pd.errors.ParserError as exc:
            failure = exc
    plain, quoted = readings.get("none"), readings.get("csv")
    if plain is None or quoted is None:
        if plain is None and quoted is None:
            raise failure  # type: ignore[misc]
        return (plain, "none") if quoted is None else (quoted, "csv")  # type: ignore[return-value]
    plain_fits = len(plain) == lines and not plain.isna().any().any()
    if not plain_fits:
        return quoted, "csv"
    wrapped = (
        plain.apply(
            lambda column: (
                column.str.startswith('"') & column.str.endswith('"') & (column.str.len() > 1)
            )
        )
        .any()
        .any()
    )
    return (quoted, "csv") if wrapped and len(quoted) == len(plain) else (plain, "none")


# Every cell is text: "NA", "null" or "nan" stay text, only an empty cell is missing.
TEXT_CSV_OPTIONS: dict[str, Any] = {
    "dtype": str,
    "encoding": "utf-8-sig",  # a UTF-8 byte-order mark (Excel's "CSV UTF-8") is not part of the header
    "keep_default_na": False,
    "na_values": [""],
}


def _read_delimited(path: Any, sep: str, header: bool, quoting: str) -> pd.DataFrame:
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
    with path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{short_path(path)}: line {number} is not valid JSON ({exc.msg}). Fix that line; each line must be one JSON object."
                ) from None
            except RecursionError:
                raise DataError(
                    f"{short_path(path)}: line {number} nests JSON too deeply to read. Flatten that record."
                ) from None
            if not isinstance(record, dict):
                raise DataError(
                    f"{short_path(path)}: line {number} is a JSON {type(record).__name__}, not an object. Each line must be one JSON object."
                )
            yield record


def _read_json(path: Path) -> pd.DataFrame:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{short_path(path)}: not valid JSON at line {exc.lineno} ({exc.msg}). Fix the file; for one object per line use .jsonl."
        ) from None
    except RecursionError:
        raise DataError(
            f"{short_path(path)}: the JSON nests too deeply to read. Flatten it."
        ) from None
    if isinstance(loaded, dict):
        lists = [v for v in loaded.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise DataError(
                f"{short_path(path)}: expected a list of objects (or one key holding such a list). Reshape the file."
            )
        loaded = lists[0]
    if not isinstance(loaded, list) or not all(isinstance(r, dict) for r in loaded):
        raise DataError(
            f"{short_path(path)}: expected a list of objects, one per row. Reshape the file."
        )
    return pd.DataFrame.from_records(loaded)


def pick_column(
    frame: pd.DataFrame,
    wanted: str | None,
    candidates: tuple[str, ...],
    role: str,
    path: Path,
    exclude: str | None = None,
    advice: Advice = CONFIG,
) -> str:
    """The configured column, or the first common name for `role` present in the file.

    A text column must hold text: lists, objects or bytes (Parquet list/struct/binary, nested
    JSON) are refused here, before str() would turn them into their repr.
    """
    columns = list(frame.columns)
    if wanted is not None:
        if wanted not in columns:
            raise DataError(
                f"{short_path(path)}: column {short_repr(wanted, 40)} not found; columns are [{short_list(columns, quote=True)}]. "
                f"{advice.pick(role)}."
            )
        chosen = wanted
    else:
        chosen = _auto_column(frame, candidates, role, path, exclude, advice)
    if role == "text":
        check_text_values(frame[chosen], chosen, path, advice)
    return chosen


def _auto_column(
    frame: pd.DataFrame,
    candidates: tuple[str, ...],
    role: str,
    path: Path,
    exclude: str | None,
    advice: Advice,
) -> str:
    columns = list(frame.columns)
    by_lower = {str(c).lower(): c for c in columns}
    for name in candidates:
        if name in by_lower and by_lower[name] != exclude:
            return by_lower[name]
    if columns == [f"col{i}" for i in range(len(columns))]:  # a headerless file: judge by content
        guess = _guess_column(frame, role, exclude)
        if guess is not None:
            return guess
    raise DataError(
        f"{short_path(path)}: cannot tell which column holds the {role}; columns are [{short_list(columns, quote=True)}]. "
        f"{advice.pick(role)}."
    )


def _kind_of(value: Any) -> str | None:
    """'lists', 'objects' or 'bytes' for a cell that is not a scalar text or number, else None."""
    if isinstance(value, list | tuple | np.ndarray | set):
        return "lists"
    if isinstance(value, dict):
        return "objects (struct/dict)"
    if isinstance(value, bytes | bytearray | memoryview):
        return "raw bytes"
    return None


def check_text_values(series: pd.Series, column: str, path: Path, advice: Advice = CONFIG) -> None:
    """Refuse a text column whose cells are lists, objects or bytes, naming the first and the fix."""
    if series.dtype != object or len(series) == 0:
        return
    kinds = series.map(_kind_of)
    bad = kinds.notna().to_numpy()
    if not bad.any():
        return
    first = int(bad.nonzero()[0][0])
    kind = kinds.iloc[first]
    value = series.iloc[first]
    if kind == "raw bytes":
        fix = "Store it as a UTF-8 string column"
    elif kind == "lists":
        value = list(value)
        fix = "Join each list into one string (df[col].str.join(' '))"
    else:
        fix = "Keep the field that holds the text (df[col].str['field'])"
    raise DataError(
        f"{short_path(path)}: column {short_repr(column, 40)} holds {kind}, not text (data row {first + 1}: "
        f"{short_repr(value, 40)}). {fix}, or {advice.pick('text', 'a text column').lower()}."
    )


def numeric_text_warning(
    series: pd.Series, column: str, path: Path, advice: Advice = CONFIG
) -> str | None:
    """A warning when every text is a number: almost always an id or score column, not the text."""
    values = series.dropna()
    if len(values) == 0:
        return None
    if pd.api.types.is_numeric_dtype(values):
        numeric = True
    else:
        numeric = bool(pd.to_numeric(values.astype(str).str.strip(), errors="coerce").notna().all())
    if not numeric:
        return None
    return (
        f"{path.name}: every value of the text column '{column}' is a number (e.g. {short_repr(values.iloc[0], 20)}); "
        f"if that is an id or score column, {advice.pick('text', 'the column with the text').lower()}"
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
