"""`model_card.md` for an export: what the model is for, what it saw, how it scored, its limits.

Every figure comes from the run's metrics.json and the export's own measurements; licences
come from the base model's card or package metadata and the data's PROVENANCE.md.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path
from typing import Any

from tunelab.io import atomic_write_text
from tunelab.methods import METHODS
from tunelab.runs import RunDir
from tunelab.tasks import TASKS, task_spec

PACKAGE_PREFIX = "package:"


def write_model_card(
    export_dir: Path, name: str, run_dir: Path, card: dict[str, Any], record: dict[str, Any]
) -> None:
    """`export_dir/model_card.md`; `name` is the export's final name (it is written to a temp dir)."""
    metrics = RunDir(run_dir).metrics()
    sections = [
        _header(name, run_dir, card, record),
        _intended_use(card),
        _data(card),
        _metrics(metrics, record),
        _limitations(card, record),
        _licences(card),
    ]
    atomic_write_text(export_dir / "model_card.md", "\n\n".join(sections) + "\n")


def _header(name: str, run_dir: Path, card: dict[str, Any], record: dict[str, Any]) -> str:
    shrink = ", ".join(
        part
        for part in (
            f"quantized to {record['quantize']}" if record.get("quantize") else "",
            f"{record['prune']:.0%} of body Linear weights pruned" if record.get("prune") else "",
            f"{record['adapter']} adapter merged" if record.get("merged") else "",
        )
        if part
    )
    return (
        f"# Model card: {name}\n\n"
        f"Export (`{record['format']}`{', ' + shrink if shrink else ''}) of the tunelab run `{run_dir.name}`, "
        f"fine-tuned from `{card.get('model', {}).get('source', 'unknown')}` with the `{card.get('method', '?')}` "
        f"method (seed {card.get('seed', '?')}, finished {card.get('finished_at', '?')})."
    )


def _intended_use(card: dict[str, Any]) -> str:
    data = card.get("data", {})
    task = card.get("task", "classification")
    if task in TASKS and task_spec(task).output == "labels":
        what = (
            f"Sorts a text (column `{data.get('text_column', 'text')}`) into one of the labels "
            f"{', '.join(f'`{x}`' for x in data.get('labels', []))}, with a probability for each."
        )
    else:
        what = f"A {task} model: generates text laid out as in its training data."
    return (
        "## Intended use\n\n"
        f"{what} Inputs longer than {card.get('max_length', '?')} tokens are truncated.\n"
        "Use it on text like the training data below (`tunelab predict`, `tunelab serve`). "
        "It is not meant for decisions about people without human review, nor for text unlike its training data."
    )


def _data(card: dict[str, Any]) -> str:
    data = card.get("data", {})
    lines = ["## Training data", ""]
    for split, facts in data.get("splits", {}).items():
        counts = facts.get("label_counts")
        label_part = f"; labels {counts}" if counts else ""
        lines.append(
            f"- {split}: {facts.get('rows', '?')} rows ({facts.get('origin', '?')}){label_part}"
        )
    for path, digest in data.get("files", {}).items():
        lines.append(f"- file `{path}` (sha256 `{digest[:16]}…`)")
    return "\n".join(lines)


def _metrics(metrics: dict[str, Any], record: dict[str, Any]) -> str:
    lines = ["## Metrics", "", "| model | split | accuracy | macro-F1 |", "|---|---|---:|---:|"]
    test = metrics.get("test")
    if test and "accuracy" in test:
        lines.append(
            f"| the run (fine-tuned) | test, {test.get('rows', '?')} rows | {test['accuracy']:.4f} | {test['macro_f1']:.4f} |"
        )
    for name, report in metrics.get("baselines", {}).items():
        if isinstance(report, dict) and "accuracy" in report:
            lines.append(
                f"| baseline: {name} | test | {report['accuracy']:.4f} | {report['macro_f1']:.4f} |"
            )
    measured = record.get("measured", {})
    accuracy = measured.get("accuracy", {})
    if "export" in accuracy:
        lines.append(
            f"| the run, re-measured beside the export | test, {accuracy['rows']} rows | {accuracy['run']['accuracy']:.4f} | {accuracy['run']['macro_f1']:.4f} |"
        )
        lines.append(
            f"| this export | test, {accuracy['rows']} rows | {accuracy['export']['accuracy']:.4f} | {accuracy['export']['macro_f1']:.4f} |"
        )
    if test and "accuracy" not in test:  # generative runs keep other metrics
        lines.append(
            "\nTest metrics: "
            + ", ".join(f"{k} {v:.4f}" for k, v in test.items() if isinstance(v, float))
        )
    lines += ["", "Checks and costs of the export (all in `export.json`):", ""]
    lines.append(
        f"- largest logit difference from the run before any compression: {record['max_abs_difference']:.2e} (tolerance {record['tolerance']:g})"
    )
    if "onnx" in record:
        lines.append(
            f"- ONNX graph vs PyTorch: {record['onnx']['max_abs_difference']:.2e} (tolerance {record['onnx']['tolerance']:g})"
        )
    if "recovery" in record:
        recovery = record["recovery"]
        lines.append(
            f"- recovery fine-tune after pruning: {recovery['epochs']:g} epochs at lr {recovery['lr']:g}, "
            f"pruned weights held at zero; validation {recovery['validation']}"
        )
    if "pruning" in record:
        lines.append(
            f"- measured sparsity of the pruned layers: {record['pruning']['sparsity_of_pruned_layers']:.4f}"
        )
    size = measured.get("size_mb")
    if size:
        adapter = (
            " (the adapter only; its base model is separate)" if size["run_is_adapter_only"] else ""
        )
        lines.append(
            f"- weights: {size['run']:.1f} MB in the run{adapter}, {size['export']:.1f} MB here"
        )
    speed = measured.get("speed")
    if speed:
        lines.append(
            f"- speed on the {speed['texts']} test texts (median of {speed['repeats']}, this machine): run {speed['run_texts_per_s']:.0f} texts/s "
            f"({speed['run_precision']} on {speed['run_device']}), export {speed['export_texts_per_s']:.0f} texts/s "
            f"(on {speed['export_device']})"
            + (
                f"; the run in fp32: {speed['run_fp32_texts_per_s']:.0f} texts/s"
                if "run_fp32_texts_per_s" in speed
                else ""
            )
        )
    if "skipped" in accuracy:
        lines.append(f"- accuracy of the export not measured: {accuracy['skipped']}")
    return "\n".join(lines)


def _limitations(card: dict[str, Any], record: dict[str, Any]) -> str:
    lines = [
        "## Limitations",
        "",
        "- The scores come from one training run (one seed) and one test split; expect a few points of spread.",
        "- The model carries the biases of its base model's pre-training text and of the training data.",
        f"- Text past {card.get('max_length', '?')} tokens is not seen.",
    ]
    method = str(card.get("method"))
    if method in METHODS and METHODS.get(method).quantized_base and record.get("merged"):
        lines.append(
            "- The adapter was trained on the 4-bit (NF4) base and is merged here into the "
            "full-precision base; outputs can differ from the 4-bit model it was trained with."
        )
    change = record.get("measured", {}).get("accuracy", {}).get("change")
    if change and (record.get("quantize") or record.get("prune")):
        lines.append(
            f"- Compression changed test accuracy by {change['accuracy']:+.4f}; re-check it on your own data."
        )
    if record.get("prune"):
        lines.append(
            "- Pruning zeroes weights but keeps them stored densely: the file is no smaller and dense "
            "kernels run no faster; the gain comes with compression (int8, zip) or sparse kernels."
        )
    return "\n".join(lines)


def _licences(card: dict[str, Any]) -> str:
    model = card.get("model", {})
    lines = [
        "## Licences",
        "",
        f"- base model `{model.get('source', '?')}`: {model_licence(model)}",
    ]
    by_licence: dict[str, list[str]] = {}
    for path in card.get("data", {}).get("files", {}):
        by_licence.setdefault(data_licence(Path(path)), []).append(f"`{Path(path).name}`")
    for licence, names in by_licence.items():
        lines.append(f"- data {', '.join(names)}: {licence}")
    lines.append(
        "- The fine-tuned weights inherit the terms of both; check them before redistribution."
    )
    return "\n".join(lines)


def model_licence(model: dict[str, Any]) -> str:
    """The licence in the base model's README front matter, and its package's, where known."""
    found = []
    readme = Path(model.get("resolved_dir") or "") / "README.md"
    if readme.is_file():
        match = re.search(
            r"^license:\s*(\S+)", readme.read_text(encoding="utf-8", errors="replace"), re.M
        )
        if match:
            found.append(f"{match.group(1)} (model card)")
    source = str(model.get("source", ""))
    if source.startswith(PACKAGE_PREFIX):
        try:
            licence = metadata.metadata(source[len(PACKAGE_PREFIX) :])["License"]
        except metadata.PackageNotFoundError:
            licence = None
        if licence:
            found.append(f"{licence} (package `{source[len(PACKAGE_PREFIX) :]}`)")
    return "; ".join(found) or "not recorded; check the model's source"


def data_licence(path: Path) -> str:
    """The licence line of the PROVENANCE.md beside a data file, where one exists."""
    provenance = path.parent / "PROVENANCE.md"
    if not provenance.is_file():
        return "no PROVENANCE.md beside the file; licence not recorded"
    lines = provenance.read_text(encoding="utf-8", errors="replace").splitlines()
    for number, line in enumerate(lines):
        if re.search(r"licen[cs]e", line, re.I):
            text = [line]  # a markdown bullet continues on indented lines
            text += [x for x in _continuation(lines[number + 1 :])]
            joined = " ".join(x.strip() for x in text)
            joined = re.sub(
                r"^[-*\s]*(\*\*)?licen[cs]e(\*\*)?:?\s*(\*\*)?:?\s*", "", joined, flags=re.I
            )
            return f"{joined} (from {provenance})"
    return f"not stated in {provenance}"


def _continuation(lines: list[str]) -> list[str]:
    taken = []
    for line in lines:
        if not line.startswith((" ", "\t")) or not line.strip():
            break
        taken.append(line)
    return taken
