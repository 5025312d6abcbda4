"""Atomic writes: a crash leaves either the old file/directory or the new one, never half of one."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd


def atomic_write_text(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(
            tmp, 0o666 & ~_umask()
        )  # mkstemp makes 0600; artifacts are as readable as any file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_json(path: str | Path, data: Any) -> None:
    """Strict JSON: a NaN or inf (which json.dumps would write as the invalid `NaN`) becomes null."""
    text = json.dumps(finite(data), indent=2, ensure_ascii=False, default=str, allow_nan=False)
    atomic_write_text(path, text + "\n")


def finite(data: Any) -> Any:
    """`data` with every non-finite float replaced by None, so it serializes as valid JSON."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [finite(v) for v in data]
    if hasattr(data, "item") and getattr(data, "ndim", None) == 0:  # numpy / torch scalars
        return finite(data.item())
    return data


@contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success it replaces `path` in two renames."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = path.with_name(f".{path.name}.old")
    if path.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json")


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """CSV, TSV, JSONL (one object a line) or JSON (a list of objects), by suffix; written atomically."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        atomic_write_text(path, frame.to_json(orient="records", lines=True, force_ascii=False))
    elif suffix == ".json":
        atomic_write_text(path, frame.to_json(orient="records", force_ascii=False, indent=1))
    elif suffix in (".csv", ".tsv"):
        atomic_write_text(path, frame.to_csv(index=False, sep="\t" if suffix == ".tsv" else ","))
    else:
        from tunelab.errors import ConfigError

        raise ConfigError(
            f"cannot write '{path.name}': use one of {', '.join(TABLE_SUFFIXES)} for the output file."
        )


def read_json(path: str | Path) -> dict[str, Any] | None:
    """A JSON object from a file, or None when the file is missing, unreadable or not an object."""
    try:
        loaded = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return loaded if isinstance(loaded, dict) else None


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one level of dotted keys: {"train": {"lr": 1}} → {"train.lr": 1}."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat
