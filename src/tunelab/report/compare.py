"""`tunelab compare`: one table and overlaid curves across runs, for choosing between them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment

from tunelab.io import atomic_write_text
from tunelab.report import plots
from tunelab.runs import RunDir

TEMPLATE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>tunelab compare</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem}
table{border-collapse:collapse}th,td{border:1px solid #ddd;padding:.25rem .55rem}th{background:#f4f6f8}
td.num{text-align:right;font-variant-numeric:tabular-nums}img{max-width:100%}</style></head><body>
<h1>Comparison of {{ rows|length }} runs</h1>
<table><tr>{% for c in columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in rows %}<tr>{% for c in columns %}<td class="{{ 'num' if row[c] is number else '' }}">{{ "%.4f"|format(row[c]) if row[c] is float else row[c] }}</td>{% endfor %}</tr>{% endfor %}
</table>{% for uri in figures %}<img src="{{ uri }}" alt="curves">{% endfor %}</body></html>
"""
COLUMNS = (
    "run",
    "task",
    "method",
    "model",
    "status",
    "test accuracy",
    "test macro-F1",
    "test perplexity",
    "test ROUGE-L",
    "train seconds",
)


def compare_runs(run_dirs: list[Path]) -> list[dict[str, Any]]:
    """One row of headline numbers per run (blank where a run's task does not have them)."""
    rows = []
    for run_dir in run_dirs:
        run = RunDir(run_dir)
        card, metrics = run.card(), run.metrics()
        test = metrics.get("test", {})
        training = metrics.get("training", {})
        rows.append(
            {
                "run": run_dir.name,
                "task": card.get("task"),
                "method": card.get("method"),
                "model": (card.get("model") or {}).get("source"),
                "status": run.status(),
                "test accuracy": test.get("accuracy", ""),
                "test macro-F1": test.get("macro_f1", ""),
                "test perplexity": test.get("perplexity_after", ""),
                "test ROUGE-L": (test.get("generation") or {}).get("rougeL", ""),
                "train seconds": training.get("train_seconds", ""),
            }
        )
    return rows


def write_comparison(run_dirs: list[Path], out: Path) -> tuple[list[dict[str, Any]], Path]:
    rows = compare_runs(run_dirs)
    losses: dict[str, list[tuple[float, float]]] = {}
    for run_dir in run_dirs:
        curve = (RunDir(run_dir).metrics().get("training") or {}).get("validation_curve", [])
        losses[run_dir.name] = [
            (p["step"], p["loss"]) for p in curve if "loss" in p and "step" in p
        ]
    figure = plots.curves(losses, "validation loss", "loss")
    html = (
        Environment(autoescape=True)
        .from_string(TEMPLATE)
        .render(rows=rows, columns=COLUMNS, figures=[figure] if figure else [])
    )
    atomic_write_text(out, html)
    return rows, out
