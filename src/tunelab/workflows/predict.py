"""`tunelab predict`: label texts with a finished classification run (or its export), in memory
or streamed chunk by chunk through files larger than memory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from transformers.utils import logging as hf_logging

from tunelab.data.stream import check_predict_request, chunk_writer, iter_text_chunks
from tunelab.errors import ConfigError
from tunelab.inference.predictor import Predictor
from tunelab.io import finite
from tunelab.runs import RunDir, load_predictor


def predict(
    run_dir: str | Path,
    texts: list[str] | None = None,
    input_file: str | Path | None = None,
    output_file: str | Path | None = None,
    text_column: str | None = None,
    batch_size: int = 64,
    chunk_rows: int = 10_000,
    load_in: str | None = None,
) -> pd.DataFrame:
    """Label texts (given directly or in a file) in memory: the rows plus label and probabilities.

    Also written to `output_file` (.csv or .jsonl) when given. For files too large for memory,
    `predict_file` streams them chunk by chunk (what `tunelab predict --input` runs).
    """
    if (texts is None) == (input_file is None):
        raise ConfigError(
            "give either texts or an input file to predict, not both and not neither."
        )
    check_predict_request(input_file, output_file, batch_size, chunk_rows, texts)
    predictor = _predictor(run_dir, batch_size, load_in)
    if texts is not None:
        frame = label_frame(predictor, pd.DataFrame({"text": texts}), "text")
    else:
        assert input_file is not None
        chunks = iter_text_chunks(input_file, text_column, chunk_rows)
        frame = pd.concat(
            [label_frame(predictor, chunk, column) for chunk, column in chunks], ignore_index=True
        )
    if output_file is not None:
        with chunk_writer(output_file) as writer:
            writer.write(frame)
    return frame


def predict_file(
    run_dir: str | Path,
    input_file: str | Path,
    output_file: str | Path | None,
    text_column: str | None = None,
    batch_size: int = 64,
    chunk_rows: int = 10_000,
    progress: Any = None,
    load_in: str | None = None,
) -> int:
    """Stream a file through the model; write CSV/JSONL (or print JSONL); returns the rows done.

    `progress(done_rows)` is called after every chunk (the CLI draws its bar with it).
    """
    check_predict_request(input_file, output_file, batch_size, chunk_rows)
    predictor = _predictor(run_dir, batch_size, load_in)
    chunks = iter_text_chunks(input_file, text_column, chunk_rows)
    done = 0
    if output_file is None:
        for chunk, column in chunks:
            for record in label_frame(predictor, chunk, column).to_dict(orient="records"):
                print(
                    json.dumps(finite(record), ensure_ascii=False, default=float, allow_nan=False)
                )
            done += len(chunk)
            if progress:
                progress(done)
        return done
    with chunk_writer(output_file) as writer:
        for chunk, column in chunks:
            writer.write(label_frame(predictor, chunk, column))
            done += len(chunk)
            if progress:
                progress(done)
    return done


def _predictor(run_dir: str | Path, batch_size: int, load_in: str | None = None) -> Predictor:
    hf_logging.disable_progress_bar()  # a weight-loading bar would mix with output and errors
    run = RunDir(run_dir)
    if run.has_config():
        run.require_labels("predict")
    return load_predictor(run_dir, batch_size, load_in)


def label_frame(predictor: Predictor, frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """The frame with label, probability and one prob_<label> column per class.

    An input column with one of those names (a labelled file's own 'label') is kept as
    input_<name>, never silently replaced by the prediction.
    """
    ids, probabilities = predictor.predict(frame[column].astype(str).tolist())
    produced = {"label", "probability", *(f"prob_{name}" for name in predictor.labels.names)}
    out = frame.rename(columns={c: f"input_{c}" for c in frame.columns if c in produced})
    out["label"] = [predictor.labels.names[i] for i in ids]
    out["probability"] = probabilities.max(-1)
    for j, name in enumerate(predictor.labels.names):
        out[f"prob_{name}"] = probabilities[:, j]
    return out


__all__ = ["label_frame", "predict", "predict_file"]
