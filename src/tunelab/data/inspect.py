"""`tunelab data inspect`: what the data will do to a run, before a single training step.

The same report is written into every run directory (data_report.json + data_report.html).
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from tunelab.data import PreparedData
from tunelab.data.stats import encoding_problems, length_stats, suggest_max_length
from tunelab.files import check_writable_dir, output_error
from tunelab.io import atomic_write_json, atomic_write_text
from tunelab.suggest import short_list

IMBALANCE_WARNING = 3.0  # majority/minority ratio above which accuracy alone misleads
TRUNCATION_WARNING = 0.05  # share of rows cut at max_length worth a warning


def build_report(data: PreparedData, tokenizer: Any | None, max_length: int) -> dict[str, Any]:
    """Everything `data inspect` shows, as plain JSON-able data (plus token lengths for plots)."""
    names = data.labels.names
    splits: dict[str, Any] = {}
    all_lengths: list[int] = []
    summary = data.summary()["splits"]  # rows and label counts of whole splits
    for name, frame in data.splits.items():
        texts = frame["text"].tolist()
        counts, rows = summary[name]["label_counts"], summary[name]["rows"]
        stats = length_stats(texts, tokenizer, max_length)
        all_lengths += stats.get("token_lengths", []) if name == "train" else []
        splits[name] = {
            "rows": rows,
            "origin": data.origin[name],
            "label_counts": counts,
            "label_shares": {k: v / max(rows, 1) for k, v in counts.items()},
            "lengths": stats,
            "encoding": encoding_problems(texts),
        }
        if len(frame) < rows:  # a memory-mapped train split: lengths and encoding of a sample
            splits[name]["sampled_rows"] = len(frame)
    model_max = getattr(tokenizer, "model_max_length", None)
    model_max = model_max if isinstance(model_max, int) and model_max < 100_000 else None
    report: dict[str, Any] = {
        "text_column": data.text_column,
        "label_column": data.label_column,
        "labels": list(names),
        "max_length": max_length,
        "suggested_max_length": suggest_max_length(all_lengths, model_max) if all_lengths else None,
        "tokenizer": getattr(tokenizer, "name_or_path", None),
        "splits": splits,
        **data.report,
    }
    report["warnings"] = _warnings(report)
    return report


def _warnings(report: dict[str, Any]) -> list[str]:
    found = list(report.get("warnings", []))  # what loading saw: label spellings, numeric texts
    train = report["splits"]["train"]["label_counts"]
    if min(train.values()) and max(train.values()) / min(train.values()) > IMBALANCE_WARNING:
        ratio = max(train.values()) / min(train.values())
        handling = report.get("imbalance", {})
        handled = (
            handling.get("class_weights") == "auto" or handling.get("resample", "none") != "none"
        )
        advice = (
            "handled by data.imbalance" if handled else "consider data.imbalance.class_weights=auto"
        )
        found.append(f"labels are imbalanced in train ({ratio:.1f}:1): watch macro-F1; {advice}")
    leakage = report.get("leakage", {})
    if leakage.get("leaked_rows"):
        found.append(
            f"{leakage['leaked_rows']} validation/test rows are exact or near copies of train rows (policy {leakage['policy']})"
        )
    for path, info in report.get("files", {}).items():
        if info["conflicts"]["texts"]:
            found.append(
                f"{Path(path).name}: {info['conflicts']['texts']} texts appear with different labels (policy {info['conflicts']['policy']})"
            )
    for name, split in report["splits"].items():
        share = split["lengths"].get("truncated_share", 0)
        if share > TRUNCATION_WARNING:
            found.append(
                f"{name}: {share:.1%} of rows are longer than max_length={report['max_length']} tokens and get cut"
            )
        bad = split["encoding"]
        if bad["replacement_char"] or bad["mojibake"]:
            found.append(
                f"{name}: {bad['replacement_char'] + bad['mojibake']} rows look mis-decoded (U+FFFD or mojibake)"
            )
    return found


def format_report(report: dict[str, Any]) -> str:
    """A concise plain-text summary for the terminal."""
    lines = [
        f"text column '{report['text_column']}', label column '{report['label_column']}', "
        f"{len(report['labels'])} labels: {short_list(report['labels'], 200)}"
    ]
    for path, info in report.get("files", {}).items():
        raw, cleaned, conflicts = info["raw"], info["cleaned"], info["conflicts"]
        dropped = ", ".join(f"{k} {v}" for k, v in info["dropped"].items()) or "none"
        total = sum(info["label_counts"].values())
        shares = ", ".join(f"{k} {v} ({v / total:.1%})" for k, v in info["label_counts"].items())
        lines.append(
            f"{path}: {info['rows_in']} rows ({shares}) → {info['rows_out']} kept; exact duplicates (raw text): "
            f"{raw['rows_repeating_earlier']} rows repeat an earlier one, {raw['distinct_texts_repeated']} distinct texts repeated; "
            f"after cleaning: {cleaned['rows_repeating_earlier']} / {cleaned['distinct_texts_repeated']}; "
            f"conflicting labels: {conflicts['texts']} texts ({conflicts['rows']} rows); dropped: {dropped}"
        )
    for name, split in report["splits"].items():
        shares = ", ".join(
            f"{k} {n} ({split['label_shares'][k]:.1%})" for k, n in split["label_counts"].items()
        )
        tokens = split["lengths"].get("tokens")
        length = (
            f"tokens p50 {tokens['p50']:.0f} p95 {tokens['p95']:.0f} max {tokens['max']:.0f}, "
            f"truncated {split['lengths']['truncated_share']:.1%}"
            if tokens
            else f"words p50 {split['lengths']['words']['p50']:.0f} max {split['lengths']['words']['max']:.0f}"
        )
        lines.append(f"{name}: {split['rows']} rows ({split['origin']}); {shares}; {length}")
    leakage = report.get("leakage")
    if leakage:
        parts = [
            f"{n} {leakage[n]['exact']} exact + {leakage[n]['near']} near"
            for n in ("validation", "test")
        ]
        lines.append(f"leakage from train: {', '.join(parts)} (policy {leakage['policy']})")
    if report.get("suggested_max_length"):
        lines.append(
            f"suggested max_length: {report['suggested_max_length']} (99th percentile of train; now {report['max_length']})"
        )
    augment = report.get("augment", {})
    if augment.get("enabled"):
        lines.append(
            f"augmentation: {augment['rows_added']} rows added to train {augment.get('by_operation', {})}"
        )
    for message in augment.get("skipped", []):
        lines.append(f"note: {message}")
    lines += [f"warning: {w}" for w in report["warnings"]]
    return "\n".join(lines)


def write_report(report: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """data_report.json (without per-row lengths) and a self-contained data_report.html.

    A directory that cannot be written is one OutputError line, never a traceback.
    """
    out_dir = check_writable_dir(out_dir, "report directory")
    slim = {
        **report,
        "splits": {
            n: {**s, "lengths": {k: v for k, v in s["lengths"].items() if k != "token_lengths"}}
            for n, s in report["splits"].items()
        },
    }
    json_path, html_path = out_dir / "data_report.json", out_dir / "data_report.html"
    page = render_html(report)
    try:
        atomic_write_json(json_path, slim)
        atomic_write_text(html_path, page)
    except OSError as exc:
        raise output_error(exc, out_dir, "the data report to") from None
    return json_path, html_path


def _figure_png(draw: Any) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 3.2), dpi=100)
    draw(axes)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def render_html(report: dict[str, Any]) -> str:
    splits = report["splits"]
    labels = report["labels"]

    def label_plot(axes: Any) -> None:
        width = 0.8 / len(splits)
        for i, (name, split) in enumerate(splits.items()):
            axes.bar(
                [j + i * width for j in range(len(labels))],
                [split["label_shares"][k] for k in labels],
                width,
                label=name,
            )
        axes.set_xticks(
            [j + 0.4 - width / 2 for j in range(len(labels))],
            labels,
            rotation=30 if len(labels) > 6 else 0,
        )
        axes.set_ylabel("share of rows")
        axes.set_title("label distribution per split")
        axes.legend()

    def length_plot(axes: Any) -> None:
        unit = "tokens" if "token_lengths" in splits["train"]["lengths"] else "words"
        for name in splits:
            stats = splits[name]["lengths"]
            values = stats["token_lengths"] if unit == "tokens" else None
            if values is None:
                continue
            axes.hist(values, bins=40, alpha=0.5, label=name, density=True)
        axes.axvline(
            report["max_length"],
            color="red",
            linestyle="--",
            label=f"max_length {report['max_length']}",
        )
        axes.set_xlabel(f"length in {unit}")
        axes.set_title("length distribution")
        axes.legend()

    images = [_figure_png(label_plot)]
    if "token_lengths" in splits["train"]["lengths"]:
        images.append(_figure_png(length_plot))
    text = html.escape(format_report(report))
    rows = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{s['rows']}</td><td>{html.escape(s['origin'])}</td>"
        f"<td>{html.escape(', '.join(f'{k}: {v}' for k, v in s['label_counts'].items()))}</td></tr>"
        for n, s in splits.items()
    )
    leakage_examples = "".join(
        f"<li>{html.escape(name)} row {e['row']} ({e['kind']}): {html.escape(e['text'][:200])}</li>"
        for name in ("validation", "test")
        for e in report.get("leakage", {}).get(name, {}).get("examples", [])
    )
    pictures = "".join(f'<img alt="plot" src="data:image/png;base64,{b}">' for b in images)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tunelab data report</title>
<style>body{{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;color:#222}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px}}pre{{white-space:pre-wrap;background:#f6f6f6;padding:1em}}
.warn{{color:#a40}}</style></head><body>
<h1>Data report</h1>
<section id="splits"><h2>Splits</h2><table><tr><th>split</th><th>rows</th><th>origin</th><th>labels</th></tr>{rows}</table></section>
<section id="warnings"><h2>Warnings</h2><ul>{"".join(f'<li class="warn">{html.escape(w)}</li>' for w in report["warnings"]) or "<li>none</li>"}</ul></section>
<section id="plots"><h2>Distributions</h2>{pictures}</section>
<section id="leakage"><h2>Leakage examples</h2><ul>{leakage_examples or "<li>none</li>"}</ul></section>
<section id="summary"><h2>Summary</h2><pre>{text}</pre></section>
</body></html>
"""
