"""`tunelab predict --input`: streamed in chunks, same answers as in memory, all-or-nothing output."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from test_cli import assert_one_line_error, run

import tunelab
from tunelab.data.stream import iter_text_chunks
from tunelab.workflows.predict import predict_file


@pytest.fixture
def finished_run(tiny_config) -> tunelab.TrainResult:
    return tunelab.train(tiny_config)


def test_a_file_larger_than_a_chunk_is_streamed_with_the_in_memory_answers(
    finished_run: tunelab.TrainResult, tmp_path: Path, toy_rows
) -> None:
    texts = toy_rows(250, seed=5)["text"].tolist()
    source = tmp_path / "many.csv"
    pd.DataFrame({"id": range(250), "review": texts}).to_csv(source, index=False)
    assert len(list(iter_text_chunks(source, "review", 64))) == 4  # 64 + 64 + 64 + 58
    expected = tunelab.predict(finished_run.run_dir, texts=texts)
    for suffix in (".csv", ".jsonl"):
        target = tmp_path / f"labelled{suffix}"
        done = predict_file(finished_run.run_dir, source, target, "review", chunk_rows=64)
        back = pd.read_csv(target) if suffix == ".csv" else pd.read_json(target, lines=True)
        assert done == len(back) == 250
        assert back["id"].tolist() == list(range(250))  # input order kept across chunks
        assert back["label"].tolist() == expected["label"].tolist()
        assert back["prob_pos"].to_numpy() == pytest.approx(
            expected["prob_pos"].to_numpy(), abs=1e-6
        )


def test_a_bad_row_late_in_the_file_leaves_no_output_behind(
    finished_run: tunelab.TrainResult, tmp_path: Path
) -> None:
    source = tmp_path / "broken.jsonl"
    lines = [json.dumps({"text": f"good film number {i}"}) for i in range(150)]
    lines.insert(120, "{not json")
    source.write_text("\n".join(lines) + "\n")
    target = tmp_path / "out.jsonl"
    result = run(
        "predict",
        str(finished_run.run_dir),
        "--input",
        str(source),
        "--output",
        str(target),
        "--chunk-rows",
        "50",
    )
    assert_one_line_error(result, "line 121 is not valid JSON")
    assert not target.exists()  # two chunks were labelled, but nothing half-written is kept
    assert list(tmp_path.glob(".out.jsonl*")) == []


def test_the_cli_streams_a_file_to_stdout_as_jsonl(
    finished_run: tunelab.TrainResult, tmp_path: Path, toy_rows
) -> None:
    source = tmp_path / "few.tsv"
    toy_rows(30, seed=2)[["text"]].to_csv(source, sep="\t", index=False)
    result = run("predict", str(finished_run.run_dir), "--input", str(source), "--chunk-rows", "8")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(records) == 30 and {"text", "label", "probability"} <= set(records[0])


def test_a_finished_run_predicts_after_its_training_file_is_gone(
    tiny_config, tmp_path: Path
) -> None:
    result = tunelab.train(tiny_config)
    Path(tiny_config.data.train_file).unlink()
    out = tunelab.predict(result.run_dir, texts=["superb fun film"])
    assert list(out["label"]) == ["pos"]
    assert tunelab.evaluate(result.run_dir, _labelled(tmp_path))["rows"] == 2


def _labelled(tmp_path: Path) -> Path:
    path = tmp_path / "extra.csv"
    pd.DataFrame({"text": ["love it", "hate it"], "label": ["pos", "neg"]}).to_csv(
        path, index=False
    )
    return path
