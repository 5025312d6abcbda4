"""The search report: one self-contained HTML page in the search directory, rewritten after
every search, with the leaderboard and Optuna's own plots (optimization history, intermediate
values with the pruned trials, parameter importances, parallel coordinates)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from jinja2 import Environment

from tunelab.io import atomic_write_text
from tunelab.report.plots import figure_uri

TEMPLATE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>tunelab search: {{ summary.study }}</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;padding:0 1rem;color:#222}
table{border-collapse:collapse;font-size:.92rem}th,td{border:1px solid #ddd;padding:.25rem .55rem}th{background:#f4f6f8}
td.num{text-align:right;font-variant-numeric:tabular-nums}img{max-width:100%}.sub{color:#666}
.row{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start}</style></head><body>
<h1>Search {{ summary.study }}</h1>
<p class="sub">{{ summary.trials }} trials ({% for s, n in summary.states.items() %}{{ n }} {{ s|lower }}{{ ", " if not loop.last }}{% endfor %})
 · {{ summary.direction }} validation {{ summary.metric }}</p>
{% if summary.best_params %}<p>Best: trial {{ summary.best_trial }}, validation {{ summary.metric }}
 {{ "%.4f"|format(summary.best_value) }}, with {% for k, v in summary.best_params.items() %}<code>{{ k }}={{ v }}</code>{{ ", " if not loop.last }}{% endfor %}.
 Reproduce it: <code>tunelab train {{ summary.best_config }}</code></p>{% endif %}
<h2>Leaderboard</h2>
<table><tr>{% for c in columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in rows %}<tr>{% for c in columns %}<td class="{{ 'num' if row[c] is number else '' }}">{{ "%.4g"|format(row[c]) if row[c] is float else row[c] }}</td>{% endfor %}</tr>{% endfor %}
</table>
{% if figures %}<h2>Plots</h2><div class="row">{% for title, uri in figures %}<figure><img src="{{ uri }}" alt="{{ title }}"><figcaption class="sub">{{ title }}</figcaption></figure>{% endfor %}</div>{% endif %}
{% for note in notes %}<p class="sub">{{ note }}</p>{% endfor %}
</body></html>
"""


def write_search_report(study: optuna.Study, summary: dict[str, Any], root: Path) -> Path:
    """report.html in the search directory; plots a study cannot support yet are left out, with a note."""
    board = Path(summary["leaderboard"])
    table = pd.read_csv(board) if board.is_file() else pd.DataFrame()
    table = table.astype(object).where(table.notna(), "")
    figures, notes = _figures(study)
    html = (
        Environment(autoescape=True)
        .from_string(TEMPLATE)
        .render(
            summary=summary,
            columns=list(table.columns),
            rows=table.to_dict("records"),
            figures=figures,
            notes=notes,
        )
    )
    path = root / "report.html"
    atomic_write_text(path, html)
    return path


def _figures(study: optuna.Study) -> tuple[list[tuple[str, str]], list[str]]:
    from optuna.visualization import matplotlib as optuna_plots

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    wanted: list[tuple[str, Any, int]] = [
        ("optimization history", optuna_plots.plot_optimization_history, 1),
        (
            "validation values during each trial; step = hundredths of an epoch (pruned trials stop early)",
            optuna_plots.plot_intermediate_values,
            1,
        ),
        ("parameter importances", optuna_plots.plot_param_importances, 2),
        ("parallel coordinates", optuna_plots.plot_parallel_coordinate, 1),
    ]
    figures, notes = [], []
    for title, plot, needed in wanted:
        if len(complete) < needed:
            notes.append(f"No {title} plot: it needs {needed} finished trial(s).")
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                axes = plot(study)
        except (RuntimeError, ValueError) as exc:  # e.g. importances when no parameter varies
            notes.append(f"No {title} plot: {exc}")
            continue
        figures.append((title, figure_uri(axes.figure)))
    return figures, notes
