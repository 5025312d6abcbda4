"""How the CLI shows results: tables of test scores, spreads over folds or seeds, perplexities."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from tunelab.console import console


def print_summary(metrics: dict[str, Any], wall_seconds: float, run_dir: Path) -> None:
    """Baseline vs fine-tuned on the held-out test split, the wall time and where the run is."""
    test = metrics["test"]
    if "perplexity_before" in test:
        print_perplexities(metrics, wall_seconds, run_dir)
        return
    table = Table(title=f"held-out test split ({test['rows']} rows)")
    table.add_column("model")
    table.add_column("accuracy", justify="right")
    table.add_column("macro-F1", justify="right")
    table.add_column("fine-tuned gain in accuracy [95% CI]", justify="right")
    comparison = metrics.get("comparison", {})
    for name, report in metrics.get("baselines", {}).items():
        gain = comparison.get(name, {}).get("accuracy")
        table.add_row(
            f"{name.replace('_', ' ')} baseline",
            f"{report['accuracy']:.4f}",
            f"{report['macro_f1']:.4f}",
            f"{gain['difference']:+.4f} [{gain['ci_low']:+.4f}, {gain['ci_high']:+.4f}]"
            if gain
            else "",
        )
    table.add_row("fine-tuned", f"{test['accuracy']:.4f}", f"{test['macro_f1']:.4f}", "")
    console.print(table)
    validation = metrics["validation"]
    console.print(
        f"validation: accuracy {validation['accuracy']:.4f}, macro-F1 {validation['macro_f1']:.4f}"
    )
    console.print(f"wall time: {wall_seconds:.1f} s")
    console.print(f"run directory: {run_dir}")
    console.print(f"report: {run_dir / 'report.html'}")


def print_perplexities(metrics: dict[str, Any], wall_seconds: float, run_dir: Path) -> None:
    """Language-model runs: perplexity before and after training on validation and test."""
    table = Table(title="perplexity (lower is better)")
    unit = "blocks" if "blocks" in metrics["test"] else "examples"
    for column in ("split", unit, "before", "after", "change"):
        table.add_column(column, justify="left" if column == "split" else "right")
    for split in ("validation", "test"):
        r = metrics[split]
        table.add_row(
            split,
            str(r[unit]),
            f"{r['perplexity_before']:.2f}",
            f"{r['perplexity_after']:.2f}",
            f"{r['relative_change']:+.1%}",
        )
    console.print(table)
    generation = metrics["test"].get("generation")
    if generation:
        scores = Table(title=f"generated answers on {generation['examples']} test rows")
        names = ("rouge1", "rouge2", "rougeL", "bleu", "chrf", "exact_match")
        scores.add_column("model")
        for name in names:
            scores.add_column(name, justify="right")
        before = metrics["test"].get("generation_before")
        if before:
            scores.add_row("base (before)", *(f"{before[n]:.2f}" for n in names))
        scores.add_row("fine-tuned", *(f"{generation[n]:.2f}" for n in names))
        console.print(scores)
        example = generation["example"]
        console.print(f"example prompt: {example['prompt'][-300:]!r}", markup=False)
        console.print(f"  generated: {example['prediction'][:300]!r}", markup=False)
        console.print(f"  reference: {example['reference'][:300]!r}", markup=False)
    console.print(f"wall time: {wall_seconds:.1f} s")
    console.print(f"run directory: {run_dir}")
    console.print(f"report: {run_dir / 'report.html'}")


def print_spread(stats: dict[str, dict[str, float]], title: str) -> None:
    table = Table(title=title)
    for column in ("metric", "mean", "std", "min", "max"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for metric, s in stats.items():
        table.add_row(metric, *(f"{s[k]:.4f}" for k in ("mean", "std", "min", "max")))
    console.print(table)


def print_folds(summary: dict[str, Any], folds: int) -> None:
    """`tunelab cv`: each fold's validation scores."""
    table = Table(title=f"{folds}-fold cross-validation (validation fold of each run)")
    for column in ("fold", "train rows", "validation rows", "accuracy", "macro-F1"):
        table.add_column(column, justify="right")
    for fold in summary["per_fold"]:
        table.add_row(
            str(fold["fold"]),
            str(fold["train_rows"]),
            str(fold["validation_rows"]),
            f"{fold['validation']['accuracy']:.4f}",
            f"{fold['validation']['macro_f1']:.4f}",
        )
    console.print(table)


EVALUATION_METRICS = ("accuracy", "macro_f1", "weighted_f1", "macro_precision", "macro_recall")


def print_evaluation(report: dict[str, Any], run_dir: Path) -> None:
    """`tunelab evaluate`: the headline scores on one labelled split."""
    table = Table(title=f"{run_dir} on {report['data']} ({report['rows']} rows)")
    for name in EVALUATION_METRICS:
        table.add_column(name, justify="right")
    table.add_row(*(f"{report[n]:.4f}" for n in EVALUATION_METRICS))
    console.print(table)


def print_comparison(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    """`tunelab compare`: one row of headline numbers per run."""
    table = Table(title=f"{len(rows)} runs")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(
            *(f"{row[c]:.4f}" if isinstance(row[c], float) else str(row[c]) for c in columns)
        )
    console.print(table)


def print_search(summary: dict[str, Any]) -> None:
    """`tunelab search`: the leaderboard's top rows, the best trial and how to reproduce it."""
    import pandas as pd

    board = pd.read_csv(summary["leaderboard"]) if Path(summary["leaderboard"]).is_file() else None
    if board is not None:
        table = Table(
            title=f"{summary['trials']} trials, {summary['direction']} validation {summary['metric']}"
        )
        for column in board.columns:
            table.add_column(str(column))
        for record in board.head(20).itertuples(index=False):
            table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in record))
        console.print(table)
    if "best_config" in summary:
        console.print(
            f"best: trial {summary['best_trial']}, {summary['metric']} {summary['best_value']:.4f}"
        )
        console.print(f"reproduce it: tunelab train {summary['best_config']}")


__all__ = [
    "print_comparison",
    "print_evaluation",
    "print_folds",
    "print_perplexities",
    "print_search",
    "print_spread",
    "print_summary",
]
