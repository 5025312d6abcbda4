"""report.html: every section a run has data for, self-contained, and it renders in Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from test_cli import assert_one_line_error, run

import tunelab
from tunelab.report.html import write_report
from tunelab.workflows.check import build_checked as build_config

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def classification_run(tmp_path_factory: pytest.TempPathFactory, tiny_bert_dir: Path) -> Path:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from conftest import toy_sentiment

    root = tmp_path_factory.mktemp("report")
    data = root / "toy.csv"
    toy_sentiment(240).to_csv(data, index=False)
    cfg = build_config(
        {
            "data": {"train_file": str(data), "max_length": 16},
            "model": {"name": str(tiny_bert_dir)},
            "train": {
                "epochs": 3,
                "batch_size": 16,
                "lr": 5e-3,
                "precision": "fp32",
                "log_every": 2,
            },
            "output": {"dir": str(root / "runs"), "name": "tiny"},
        }
    )
    return tunelab.train(cfg).run_dir


def test_every_run_writes_a_self_contained_report(classification_run: Path) -> None:
    html = (classification_run / "report.html").read_text()
    for section in (
        "run-card",
        "data",
        "training",
        "baselines",
        "per-class",
        "errors",
        "forgetting",
    ):
        assert f'id="{section}"' in html, section
    assert html.count("data:image/png;base64,") >= 2  # curves and the confusion matrix, embedded
    assert not re.search(r'src="(?!data:)', html)  # nothing loaded from elsewhere
    for row in ("majority baseline", "tfidf_logreg baseline", "linear_probe baseline"):
        assert row in html
    assert "Calibration" in html and "embedding drift" in html  # the tiny BERT has no MLM head


def test_report_command_rewrites_it_and_bad_paths_are_one_line(
    classification_run: Path, tmp_path: Path
) -> None:
    (classification_run / "report.html").unlink()
    done = run("report", str(classification_run))
    assert done.returncode == 0 and (classification_run / "report.html").is_file()
    assert_one_line_error(run("report", str(tmp_path)), "no run_card.json")


def test_compare_puts_runs_side_by_side(classification_run: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    shutil.copytree(classification_run, other)
    out = tmp_path / "compare.html"
    done = run("compare", str(classification_run), str(other), "--out", str(out))
    assert done.returncode == 0, done.stderr
    html = out.read_text()
    assert "Comparison of 2 runs" in html and html.count("<tr>") == 3
    assert "data:image/png;base64," in html


def test_generative_reports_show_perplexity_and_generations(
    tmp_path: Path, tiny_t5_dir: Path, opposites_jsonl: Path
) -> None:
    cfg = build_config(
        {
            "data": {"train_file": str(opposites_jsonl), "max_length": 32},
            "model": {"name": str(tiny_t5_dir)},
            "task": {"type": "seq2seq", "max_target_length": 16},
            "train": {"epochs": 1, "batch_size": 16, "lr": 5e-3, "precision": "fp32"},
            "eval": {"generate_rows": 4},
            "output": {"dir": str(tmp_path / "runs"), "name": "s2s"},
        }
    )
    html = write_report(tunelab.train(cfg).run_dir).read_text()
    assert 'id="perplexity"' in html and 'id="generation"' in html
    assert "base (before)" in html and "fine-tuned" in html
    assert 'id="baselines"' not in html  # no classification sections on a generative run


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_the_report_renders_in_chromium(classification_run: Path, tmp_path: Path) -> None:
    page = (classification_run / "report.html").as_uri()
    common = [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*common, "--dump-dom", page], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-500:]
    assert "Fine-tuned vs baselines" in dom.stdout and "<img" in dom.stdout
    shot = tmp_path / "report.png"
    subprocess.run(
        [*common, f"--screenshot={shot}", "--window-size=1200,1800", page],
        capture_output=True,
        timeout=120,
    )
    assert shot.is_file() and shot.stat().st_size > 20_000  # a page with text and plots, not blank


def test_training_curves_also_go_to_tensorboard(classification_run: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logs = classification_run / "logs" / "tensorboard"
    assert list(logs.glob("events.out.tfevents.*"))
    events = EventAccumulator(str(logs))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert "train/loss" in tags and "eval/loss" in tags
    assert len(events.Scalars("eval/loss")) >= 3  # one per epoch (3) plus the one before training


def test_a_run_can_be_tracked_in_a_local_mlflow_store(tiny_config, tmp_path: Path) -> None:
    mlflow = pytest.importorskip(
        "mlflow", reason="mlflow is not installed (pip install 'tunelab[mlflow]')"
    )
    raw = tiny_config.to_dict()
    raw["train"].update(epochs=1)
    raw["eval"] = {"baselines": False, "forgetting": False}
    raw["output"].update(tracking="mlflow", experiment="tests")
    run_dir = tunelab.train(build_config(raw)).run_dir
    mlflow.set_tracking_uri(f"sqlite:///{Path(raw['output']['dir']).resolve() / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["tests"], output_format="list")
    assert len(runs) == 1 and runs[0].info.run_name == run_dir.name
    data = runs[0].data
    assert data.params["train.epochs"] == "1.0" and "test_accuracy" in data.metrics
    client = mlflow.MlflowClient()
    assert len(client.get_metric_history(runs[0].info.run_id, "eval_loss")) >= 2  # before + after
    artifacts = {a.path for a in client.list_artifacts(runs[0].info.run_id)}
    assert {"metrics.json", "report.html", "run_card.json"} <= artifacts
    assert (Path(raw["output"]["dir"]) / "mlartifacts").is_dir()  # beside the store, not in the cwd
