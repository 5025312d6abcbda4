"""`tunelab report`: one self-contained HTML page per run (plots embedded), built from the files
the run wrote (run_card.json, metrics.json, logs/train_log.jsonl, data_report.json, preflight.json).

Every section is drawn only when the run has its data, so the same page serves classification,
generative and language-model runs, and old runs without the newer sections.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment

from tunelab.io import atomic_write_text, read_json
from tunelab.report import plots
from tunelab.runs import RunDir

CURVE_SKIP = {"runtime", "samples_per_second", "steps_per_second", "step", "epoch"}

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>tunelab report: {{ name }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; padding: 0 1rem; }
h1 { margin-bottom: .2rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .6rem 0; font-size: .92rem; }
th, td { border: 1px solid #ddd; padding: .25rem .55rem; text-align: left; vertical-align: top; }
th { background: #f4f6f8; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.sub { color: #666; } .warn { color: #a15c00; } .best { font-weight: 600; }
pre { background: #f7f7f7; padding: .6rem; white-space: pre-wrap; font-size: .85rem; }
img { max-width: 100%; } .row { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
</style></head><body>
<h1>{{ name }}</h1>
<p class="sub">{{ card.task }} · method {{ card.method }} · model {{ card.model.source if card.model else "?" }}
 · status {{ card.status }}{% if card.wall_seconds %} · {{ "%.0f"|format(card.wall_seconds) }} s{% endif %}</p>

<h2 id="run-card">Run card</h2>
<table>{% for key, value in facts %}<tr><th>{{ key }}</th><td>{{ value }}</td></tr>{% endfor %}</table>

{% if data %}<h2 id="data">Data</h2>
<table><tr><th>split</th><th>rows</th><th>origin</th></tr>
{% for split, info in data.splits.items() %}<tr><td>{{ split }}</td><td class="num">{{ info.rows }}</td><td>{{ info.origin }}</td></tr>{% endfor %}
</table>
{% for warning in data.warnings %}<p class="warn">⚠ {{ warning }}</p>{% endfor %}
<p class="sub">Full data report: data_report.html in the run directory.</p>{% endif %}

{% if curves %}<h2 id="training">Training</h2><div class="row">
{% for uri in curves %}<img src="{{ uri }}" alt="training curve">{% endfor %}</div>{% endif %}

{% if baselines %}<h2 id="baselines">Fine-tuned vs baselines (test split, {{ test_rows }} rows)</h2>
<table><tr><th>model</th><th>accuracy</th><th>macro-F1</th><th>fine-tuned minus this: accuracy [95% CI]</th><th>macro-F1 [95% CI]</th></tr>
{% for row in baselines %}<tr class="{{ 'best' if row.name == 'fine-tuned' else '' }}"><td>{{ row.name }}</td>
<td class="num">{{ "%.4f"|format(row.accuracy) }}</td><td class="num">{{ "%.4f"|format(row.macro_f1) }}</td>
<td class="num">{{ row.acc_diff }}</td><td class="num">{{ row.f1_diff }}</td></tr>{% endfor %}
</table>{% endif %}

{% if per_class %}<h2 id="per-class">Per class</h2>
<table><tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>
{% for name, r in per_class.items() %}<tr><td>{{ name }}</td><td class="num">{{ "%.3f"|format(r.precision) }}</td>
<td class="num">{{ "%.3f"|format(r.recall) }}</td><td class="num">{{ "%.3f"|format(r.f1) }}</td><td class="num">{{ r.support }}</td></tr>{% endfor %}
</table>{% endif %}
{% if confusion %}<img src="{{ confusion }}" alt="confusion matrix">{% endif %}

{% if errors %}<h2 id="errors">Error analysis</h2>
{% if errors.confused_pairs %}<h3>Most confused pairs</h3><table><tr><th>true</th><th>predicted</th><th>count</th><th>share of true</th></tr>
{% for p in errors.confused_pairs %}<tr><td>{{ p.true }}</td><td>{{ p.predicted }}</td><td class="num">{{ p.count }}</td><td class="num">{{ "%.1f%%"|format(100 * p.share_of_true) }}</td></tr>{% endfor %}</table>{% endif %}
{% if errors.confident_wrong %}<h3>Most confident wrong predictions</h3><table><tr><th>text</th><th>true</th><th>predicted</th><th>probability</th></tr>
{% for e in errors.confident_wrong %}<tr><td>{{ e.text }}</td><td>{{ e.true }}</td><td>{{ e.predicted }}</td><td class="num">{{ "%.3f"|format(e.probability) }}</td></tr>{% endfor %}</table>{% endif %}
{% if errors.by_length %}<h3>Accuracy by length</h3><table><tr><th>length</th><th>rows</th><th>accuracy</th></tr>
{% for b in errors.by_length %}<tr><td>{{ b.bucket }}</td><td class="num">{{ b.rows }}</td><td class="num">{{ "%.4f"|format(b.accuracy) }}</td></tr>{% endfor %}</table>{% endif %}
{% for column, values in (errors.by_metadata or {}).items() %}<h3>Accuracy by {{ column }}</h3><table><tr><th>{{ column }}</th><th>rows</th><th>accuracy</th></tr>
{% for v in values %}<tr><td>{{ v.value }}</td><td class="num">{{ v.rows }}</td><td class="num">{{ "%.4f"|format(v.accuracy) }}</td></tr>{% endfor %}</table>{% endfor %}
{% if reliability %}<h3>Calibration</h3><img src="{{ reliability }}" alt="reliability diagram">{% endif %}
{% if errors.rougeL_distribution %}<h3>ROUGE-L per example</h3><table><tr>{% for k in errors.rougeL_distribution %}<th>{{ k }}</th>{% endfor %}</tr>
<tr>{% for v in errors.rougeL_distribution.values() %}<td class="num">{{ "%.2f"|format(v) }}</td>{% endfor %}</tr></table>
{% if rouge_hist %}<img src="{{ rouge_hist }}" alt="ROUGE-L histogram">{% endif %}{% endif %}
{% if errors.worst %}<h3>Worst generations</h3><table><tr><th>prompt</th><th>prediction</th><th>reference</th><th>ROUGE-L</th></tr>
{% for w in errors.worst %}<tr><td>{{ w.prompt }}</td><td>{{ w.prediction }}</td><td>{{ w.reference }}</td><td class="num">{{ "%.1f"|format(w.rougeL) }}</td></tr>{% endfor %}</table>{% endif %}
{% endif %}

{% if perplexity %}<h2 id="perplexity">Perplexity (lower is better)</h2>
<table><tr><th>split</th><th>before</th><th>after</th><th>change</th></tr>
{% for split, r in perplexity %}<tr><td>{{ split }}</td><td class="num">{{ "%.3f"|format(r.perplexity_before) }}</td>
<td class="num">{{ "%.3f"|format(r.perplexity_after) }}</td><td class="num">{{ "%+.1f%%"|format(100 * r.relative_change) }}</td></tr>{% endfor %}</table>{% endif %}

{% if generation %}<h2 id="generation">Generated answers ({{ generation[0][1].examples }} test rows)</h2>
<table><tr><th>model</th>{% for n in generation_names %}<th>{{ n }}</th>{% endfor %}</tr>
{% for label, g in generation %}<tr><td>{{ label }}</td>{% for n in generation_names %}<td class="num">{{ "%.2f"|format(g[n]) }}</td>{% endfor %}</tr>{% endfor %}
</table>{% if example %}<h3>Example</h3><pre>{{ example.prompt }}</pre><p><b>generated:</b> {{ example.prediction }}</p><p><b>reference:</b> {{ example.reference }}</p>{% endif %}{% endif %}

{% if forgetting and not forgetting.measured %}<h2 id="forgetting">Forgetting (general text)</h2>
<p>{{ forgetting.reason }}</p>
{% if forgetting.embedding_cosine_mean is defined %}<table><tr><th>measure</th><th>text</th><th>mean</th><th>min</th></tr>
<tr><td>{{ forgetting.measure }}</td><td>{{ forgetting.text }}</td><td class="num">{{ "%.4f"|format(forgetting.embedding_cosine_mean) }}</td>
<td class="num">{{ "%.4f"|format(forgetting.embedding_cosine_min) }}</td></tr></table>{% endif %}{% endif %}
{% if forgetting and forgetting.measured %}<h2 id="forgetting">Forgetting (general text)</h2>
<table><tr><th>measure</th><th>text</th><th>base model</th><th>fine-tuned</th><th>change</th></tr>
<tr><td>{{ forgetting.measure }}</td><td>{{ forgetting.text }}</td><td class="num">{{ "%.3f"|format(forgetting.before) }}</td>
<td class="num">{{ "%.3f"|format(forgetting.after) }}</td><td class="num">{{ "%+.1f%%"|format(100 * forgetting.relative_change) }}</td></tr></table>
{% if forgetting.warning %}<p class="warn">⚠ {{ forgetting.warning }}</p>{% endif %}{% endif %}

{% if preflight %}<h2 id="preflight">Pre-flight (prompt format)</h2>
<p>template: {{ preflight.template }}; truncated {{ "%.1f%%"|format(100 * preflight.splits.train.truncated_share) }} of train examples,
{{ "%.1f%%"|format(100 * preflight.splits.train.fully_masked_share) }} without an answer token.</p>
<h3>One training example as the model sees it</h3><pre>{{ preflight.example_rendered }}</pre>
<h3>The matching inference prompt</h3><pre>{{ preflight.inference_prompt }}</pre>
{% for warning in preflight.warnings %}<p class="warn">⚠ {{ warning }}</p>{% endfor %}{% endif %}

<p class="sub">Written by tunelab report from the files in {{ run_dir }}.</p>
</body></html>
"""


def write_report(run_dir: str | Path) -> Path:
    """Build report.html in the run directory (atomically) and return its path."""
    run_dir = Path(run_dir)
    run = RunDir(run_dir)
    card, metrics = run.card(), run.metrics()
    html = (
        Environment(autoescape=True)
        .from_string(TEMPLATE)
        .render(**_context(run_dir, card, metrics))
    )
    path = run_dir / "report.html"
    atomic_write_text(path, html)
    return path


def _context(run_dir: Path, card: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    test = metrics.get("test", {})
    errors = test.get("error_analysis") or {}
    calibration = errors.get("calibration") or {}
    histogram = errors.get("histogram")
    return {
        "name": run_dir.name,
        "run_dir": str(run_dir),
        "card": card,
        "facts": _facts(card, metrics),
        "data": read_json(run_dir / "data_report.json"),
        "curves": _curves(run_dir, metrics),
        "baselines": _baselines(metrics),
        "test_rows": test.get("rows"),
        "per_class": test.get("per_class"),
        "confusion": plots.confusion_heatmap(**test["confusion_matrix"])
        if "confusion_matrix" in test
        else None,
        "errors": errors,
        "reliability": plots.reliability(calibration.get("bins", []), calibration["ece"])
        if "ece" in calibration
        else None,
        "rouge_hist": plots.histogram(
            histogram["counts"], histogram["edges"], "ROUGE-L per test example", "ROUGE-L"
        )
        if histogram
        else None,
        "perplexity": [
            (s, metrics[s])
            for s in ("validation", "test")
            if "perplexity_before" in metrics.get(s, {})
        ],
        "generation": [
            (label, test[key])
            for label, key in (("base (before)", "generation_before"), ("fine-tuned", "generation"))
            if test.get(key)
        ],
        "generation_names": (
            "rouge1",
            "rouge2",
            "rougeL",
            "rougeLsum",
            "bleu",
            "chrf",
            "exact_match",
        ),
        "example": (test.get("generation") or {}).get("example"),
        "forgetting": metrics.get("forgetting"),
        "preflight": card.get("preflight"),
    }


def _facts(card: dict[str, Any], metrics: dict[str, Any]) -> list[tuple[str, Any]]:
    model = card.get("model", {})
    parameters = metrics.get("parameters", {})
    training = metrics.get("training", {})
    facts = [
        ("model", model.get("source")),
        ("task / method", f"{card.get('task')} / {card.get('method')}"),
        (
            "trainable parameters",
            f"{parameters.get('trainable', 0):,} of {parameters.get('total', 0):,} "
            f"({100 * parameters.get('trainable_share', 0):.2f}%)"
            if parameters
            else None,
        ),
        (
            "seed / precision / max_length",
            f"{card.get('seed')} / {card.get('precision')} / {card.get('max_length')}",
        ),
        (
            "steps / epochs",
            f"{training.get('steps')} / {training.get('epochs')}" if training else None,
        ),
        (
            "training time",
            f"{training.get('train_seconds', 0):.1f} s" if training.get("train_seconds") else None,
        ),
        ("started / finished", f"{card.get('started_at')} / {card.get('finished_at')}"),
        ("command", card.get("command")),
        (
            "python / packages",
            f"{card.get('python')} / "
            + ", ".join(f"{k} {v}" for k, v in (card.get("packages") or {}).items()),
        ),
        ("hardware", json.dumps(card.get("hardware"))),
    ]
    return [(k, v) for k, v in facts if v not in (None, "")]


def _curves(run_dir: Path, metrics: dict[str, Any]) -> list[str]:
    """Train loss and validation loss on one plot; each other validation metric on its own."""
    log = run_dir / "logs" / "train_log.jsonl"
    entries = (
        [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
        if log.is_file()
        else []
    )
    train = [(e["step"], e["loss"]) for e in entries if "loss" in e]
    validation: dict[str, list[tuple[float, float]]] = {}
    for entry in entries:
        for key, value in entry.items():
            if (
                key.startswith("eval_")
                and key[5:] not in CURVE_SKIP
                and isinstance(value, (int, float))
            ):
                validation.setdefault(key[5:], []).append((entry["step"], value))
    figures = [
        plots.curves(
            {"train loss": train, "validation loss": validation.pop("loss", [])}, "loss", "loss"
        )
    ]
    if validation:
        figures.append(plots.curves(validation, "validation metrics", "score"))
    return [f for f in figures if f]


def _baselines(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    test = metrics.get("test", {})
    if "accuracy" not in test:
        return []
    comparison = metrics.get("comparison", {})
    rows = [
        {
            "name": "fine-tuned",
            "accuracy": test["accuracy"],
            "macro_f1": test["macro_f1"],
            "acc_diff": "",
            "f1_diff": "",
        }
    ]
    for name, report in metrics.get("baselines", {}).items():
        versus = comparison.get(name, {})
        rows.append(
            {
                "name": f"{name} baseline",
                "accuracy": report["accuracy"],
                "macro_f1": report["macro_f1"],
                "acc_diff": _interval(versus.get("accuracy")),
                "f1_diff": _interval(versus.get("macro_f1")),
            }
        )
    return rows


def _interval(result: dict[str, float] | None) -> str:
    if not result:
        return ""
    return f"{result['difference']:+.4f} [{result['ci_low']:+.4f}, {result['ci_high']:+.4f}]"
