"""`tunelab generate`: write text with a finished seq2seq or instruction-tuned run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from tunelab.data import read_texts
from tunelab.data.pairs import SOURCE_COLUMN_NAMES
from tunelab.errors import ConfigError
from tunelab.io import write_table
from tunelab.runs import load_generator


def generate(
    run_dir: str | Path,
    prompts: list[str] | None = None,
    input_file: str | Path | None = None,
    output_file: str | Path | None = None,
    column: str | None = None,
    max_new_tokens: int | None = None,
    batch_size: int = 8,
) -> pd.DataFrame:
    """Generate for prompts (given directly or in a file); write CSV or JSONL when `output_file` is set."""
    if (prompts is None) == (input_file is None):
        raise ConfigError(
            "give either prompts or an input file to generate from, not both and not neither."
        )
    generator = load_generator(run_dir)
    if input_file is not None:
        frame, name = read_texts(input_file, column, candidates=SOURCE_COLUMN_NAMES)
        texts = frame[name].astype(str).tolist()
    else:
        frame = pd.DataFrame({"prompt": prompts})
        texts = list(prompts or [])
    out = frame.copy()
    out["generated"] = generator.generate(texts, batch_size, max_new_tokens)
    if output_file is not None:
        write_table(out, Path(output_file))
    return out


__all__ = ["generate"]
