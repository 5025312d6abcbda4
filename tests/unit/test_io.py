"""`tunelab.io`: tables by suffix, files written atomically and readable like any other."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from tunelab.errors import ConfigError
from tunelab.io import write_table


def test_output_formats_follow_the_suffix(tmp_path: Path) -> None:
    frame = pd.DataFrame({"text": ["a", "b"], "label": ["x", "y"]})
    write_table(frame, tmp_path / "out.tsv")
    assert (tmp_path / "out.tsv").read_text().splitlines()[0] == "text\tlabel"
    write_table(frame, tmp_path / "out.json")
    assert pd.read_json(tmp_path / "out.json").to_dict("records") == frame.to_dict("records")
    with pytest.raises(ConfigError, match=r"use one of \.csv, \.tsv, \.jsonl, \.json"):
        write_table(frame, tmp_path / "out.parquet")


def test_artifacts_are_readable_like_any_file(tmp_path: Path) -> None:
    from tunelab.io import atomic_write_text

    mask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(mask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
