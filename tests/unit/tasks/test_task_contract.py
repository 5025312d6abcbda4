"""The task contract, one table for every registered task x every method it accepts.

For each pair, on tiny models: a short run finishes and its card names the task and method;
it reports the validation metric its spec promises; the trained model reloads as the spec's
model class; and the run answers the way the spec says (`output`): labels through
`tunelab.predict`, text through `tunelab.generate`, or neither (refused in one line). A method
a task refuses is refused at validation, with the task's reason. A new task is a new row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import tunelab
from tunelab.config import RunConfig
from tunelab.errors import ConfigError, RunDirError
from tunelab.methods import METHODS
from tunelab.runs import RunDir, load_run_model
from tunelab.tasks import TASKS, task_spec
from tunelab.workflows.check import build_checked

SETTINGS = {  # what each method needs to fit a tiny model
    "freeze": {"freeze": {"bottom_layers": 1}},
    "lora": {"lora": {"r": 4}},
    "qlora": {"lora": {"r": 4}},
    "prefix": {"virtual_tokens": {"num_virtual_tokens": 4}},
    "prompt": {"virtual_tokens": {"num_virtual_tokens": 4}},
}


@dataclass(frozen=True)
class Row:
    name: str  # the row's id: a task, or task[variant] where the data picks the variant
    task: str
    model: str  # a conftest fixture: the tiny model
    data: str  # "labelled", "text" or "pairs"
    task_settings: Callable[[], dict] = dict


ROWS = [
    Row("classification", "classification", "tiny_bert_dir", "labelled"),
    Row("masked_lm", "masked_lm", "tiny_bert_dir", "text"),
    Row("causal_lm[text]", "causal_lm", "tiny_llama_dir", "text"),
    Row("causal_lm[instruction]", "causal_lm", "tiny_chat_llama_dir", "pairs"),
    Row("seq2seq", "seq2seq", "tiny_t5_dir", "pairs", lambda: {"max_target_length": 8}),
]
PAIRS = [(row, method) for row in ROWS for method in sorted(METHODS)]


def test_every_registered_task_has_a_row() -> None:
    assert {row.task for row in ROWS} == set(TASKS)


@pytest.fixture
def data_files(tmp_path: Path, toy_csv: Path, opposites_jsonl: Path, toy_rows) -> dict[str, Path]:
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(toy_rows(200)["text"]) + "\n", encoding="utf-8")
    return {"labelled": toy_csv, "text": corpus, "pairs": opposites_jsonl}


def raw_config(row: Row, method: str, model_dir: Path, data: Path, out: Path) -> dict:
    return {
        "data": {"train_file": str(data), "max_length": 16 if row.data != "pairs" else 32},
        "model": {"name": str(model_dir)},
        "task": {"type": row.task, **row.task_settings()},
        "method": {"name": method, **SETTINGS.get(method, {})},
        "train": {
            "max_steps": 2,
            "batch_size": 8,
            "lr": 1e-3,
            "precision": "fp32",
            "eval_on_start": False,
            "seed": 1,
        },
        "eval": {"baselines": False, "generate_rows": 2, "generate_before": False},
        "output": {"dir": str(out), "name": f"{row.task}-{method}"},
    }


@pytest.mark.parametrize(("row", "method"), PAIRS, ids=[f"{r.name}-{m}" for r, m in PAIRS])
def test_the_task_keeps_its_contract_with_the_method(
    row: Row, method: str, request, data_files: dict[str, Path], tmp_path: Path
) -> None:
    spec = task_spec(row.task)
    raw = raw_config(
        row, method, request.getfixturevalue(row.model), data_files[row.data], tmp_path / "runs"
    )
    if method in spec.refused_methods:
        with pytest.raises(ConfigError, match=spec.refused_methods[method].split(".")[0]):
            build_checked(raw)
        return
    unusable = METHODS.get(method).checks(RunConfig())  # e.g. qlora without a CUDA GPU
    if unusable:
        pytest.skip(unusable[0])
    result = tunelab.train(build_checked(raw))

    card = RunDir(result.run_dir).card()
    assert (card["task"], card["method"], card["status"]) == (row.task, method, "completed")
    cfg = RunDir(result.run_dir).config()
    best = result.metrics["training"]["best_validation_metric"]
    assert set(best) <= set(spec.metric_names(cfg)) and set(best)

    model = load_run_model(result.run_dir)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    assert type(base) is type(spec.auto_class().from_config(base.config))

    has_prompt = (result.run_dir / "model" / "tunelab_prompt.json").is_file()
    answers = spec.answers_with(has_prompt)
    assert answers == {"causal_lm[text]": None, "masked_lm": None}.get(row.name, spec.output)
    if answers == "labels":
        labelled = tunelab.predict(result.run_dir, texts=["good film", "bad film"])
        assert set(labelled["label"]) <= set(card["data"]["labels"])
    else:
        with pytest.raises(RunDirError, match="serves classification runs"):
            tunelab.predict(result.run_dir, texts=["good film"])
    if answers == "text":
        generated = tunelab.generate(result.run_dir, prompts=["good"], max_new_tokens=3)
        assert isinstance(generated["generated"][0], str)
    else:
        with pytest.raises(RunDirError):
            tunelab.generate(result.run_dir, prompts=["good"], max_new_tokens=3)
