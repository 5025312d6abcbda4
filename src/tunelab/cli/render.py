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


__all__ = ["print_perplexities", "print_spread", "print_summary"]
