"""`tunelab export`: a run's model as a standalone directory, checked against the run itself.

`hf` copies the model as it is (full weights, or adapter plus the base it needs); `merged`
folds LoRA/IA3 adapters into the base weights so no `peft` is needed to load it; `onnx` writes
an ONNX graph run by ONNX Runtime. `--quantize int8` and `--prune S` shrink the model on the way.
The export is laid out like a run directory (`model/`, `run_card.json`, `config.yaml`), so
`tunelab predict`, `evaluate` and `serve` take it as they take a run.

Every export compares its outputs with the run's model on a probe batch; above the tolerance
it fails and writes nothing. Quantization and pruning change outputs by design, so for those
the check is the accuracy on the run's test split, measured before and after and recorded in
`export.json` and `model_card.md` with the sizes and speeds.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel

from tunelab.config import ModelConfig
from tunelab.console import say
from tunelab.deploy.card import write_model_card
from tunelab.deploy.measure import measure_against_run
from tunelab.errors import ConfigError, RunDirError
from tunelab.io import atomic_directory, atomic_write_json
from tunelab.models import load_tokenizer
from tunelab.runs import RunDir, load_run_model
from tunelab.runs.directory import CARD, CONFIG, EXPORT, METRICS
from tunelab.tasks import task_spec

FORMATS = ("auto", "hf", "merged", "onnx")
QUANTIZATIONS = ("int8",)
PARITY_TOLERANCE = 1e-4  # fp32 merging reorders sums; anything above this is a real difference
ONNX_TOLERANCE = 1e-3  # the ONNX graph is fused and reordered by its optimizer; measured 7e-7
PROBE_TEXTS = (
    "The service was quick and the food was excellent.",
    "I would not recommend this to anyone.",
    "Results are expected next quarter, according to the report.",
    "ok",
)
MERGEABLE = ("LORA", "IA3")
WEIGHT_SUFFIXES = (".safetensors", ".safetensors.index.json")


def export_run(
    run_dir: str | Path,
    out_dir: str | Path,
    fmt: str = "auto",
    quantize: str | None = None,
    prune: float | None = None,
    measure: bool = True,
    recover_epochs: float | None = None,
) -> dict[str, Any]:
    """Write the export into `out_dir` (new, or a previous export replaced whole); returns export.json.

    `fmt="auto"` merges a LoRA/IA3 adapter and copies anything else as it is.
    """
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    source = RunDir(run_dir)
    card = source.card()
    source.require_model()
    _check_request(run_dir, out_dir, fmt, quantize, prune, card.get("task", "classification"))
    _check_not_an_export(run_dir)
    if recover_epochs is not None and not (prune and recover_epochs > 0):
        raise ConfigError(
            "--recover-epochs fine-tunes after pruning: give --prune too, and a positive number of epochs."
        )
    # fp32 whatever the checkpoint's dtype: merging into bf16 weights would round the merged sums
    model = load_run_model(run_dir).float().eval()
    tokenizer = load_tokenizer(run_dir / "model", ModelConfig(name=str(run_dir / "model")))
    probe = tokenizer(list(PROBE_TEXTS), padding=True, return_tensors="pt")
    reference = _outputs(model, probe)

    adapter = _adapter_type(model)
    if fmt == "auto":
        fmt = "merged" if adapter in MERGEABLE else "hf"
    if adapter is not None and (fmt != "hf" or quantize or prune):
        if adapter not in MERGEABLE:
            raise RunDirError(
                f"{run_dir} holds a {adapter} adapter, which has no weights to merge (virtual tokens). Use --format hf without --quantize/--prune."
            )
        model = model.merge_and_unload()  # ONNX, int8 and pruning work on plain weights
    elif fmt == "merged":
        raise RunDirError(
            f"{run_dir} holds a fully fine-tuned model, which has nothing to merge. Use --format hf."
        )
    difference = float((_outputs(model, probe) - reference).abs().max())
    if difference > PARITY_TOLERANCE:
        raise RunDirError(
            f"the {fmt} export differs from the run's model by {difference:.2e} (tolerance {PARITY_TOLERANCE:g}); nothing was written."
        )
    record: dict[str, Any] = {
        "run": str(run_dir.resolve()),
        "format": fmt,
        "quantize": quantize,
        "prune": prune,
        "adapter": adapter,
        "merged": adapter is not None and (fmt != "hf" or bool(quantize or prune)),
        "previous_export": card.get("export"),  # an export of an export keeps its lineage
        "probe_texts": len(PROBE_TEXTS),
        "max_abs_difference": difference,
        "tolerance": PARITY_TOLERANCE,
    }
    if prune:
        from tunelab.deploy.prune import prune_global_magnitude

        record["pruning"] = prune_global_magnitude(model, prune)
        if recover_epochs:
            from tunelab.deploy.prune import body_linears, measured_sparsity
            from tunelab.workflows.recover import recover

            model, record["recovery"] = recover(run_dir, model, tokenizer, recover_epochs)
            record["pruning"].update(measured_sparsity(model, body_linears(model)))
        record["pruning"]["max_abs_difference"] = float(
            (_outputs(model, probe) - reference).abs().max()
        )
    with atomic_directory(out_dir) as tmp:  # laid out like a run: predict and evaluate take it
        model_dir = tmp / "model"
        model_dir.mkdir()
        if fmt == "onnx":
            record["onnx"] = _write_onnx(model, tokenizer, probe, model_dir, quantize)
        elif quantize == "int8":
            record["int8"] = _write_int8(model, probe, model_dir)
        else:
            model.save_pretrained(model_dir)
        tokenizer.save_pretrained(model_dir)
        for extra in (run_dir / "model").iterdir():  # labels, prompt format: what the run keeps
            merged_readme = extra.name == "README.md" and record["merged"]  # peft's adapter card
            if (
                extra.is_file()
                and not _is_weights(extra)
                and not merged_readme
                and not (model_dir / extra.name).exists()
            ):
                shutil.copy2(extra, model_dir / extra.name)
        for name in (CONFIG, METRICS):  # the run's settings and scores travel along
            if (run_dir / name).is_file():
                shutil.copy2(run_dir / name, tmp / name)
        atomic_write_json(tmp / CARD, {**card, "export": record})
        if fmt != "onnx" and not quantize:  # read back as any run is read (adapter, labels)
            reloaded = _outputs(load_run_model(tmp).float().eval(), probe)
            record["reloaded_max_abs_difference"] = _check_reload(reloaded, _outputs(model, probe))
        if measure:
            record["measured"] = measure_against_run(run_dir, tmp)
            _announce(record)
        atomic_write_json(tmp / CARD, {**card, "export": record})
        atomic_write_json(tmp / EXPORT, record)
        write_model_card(tmp, out_dir.name, run_dir, card, record)
    return record


def _check_request(
    run_dir: Path,
    out_dir: Path,
    fmt: str,
    quantize: str | None,
    prune: float | None,
    task: str,
) -> None:
    """Refuse a request that cannot succeed before loading anything."""
    if fmt not in FORMATS:
        raise ConfigError(f"export format '{fmt}' is unknown; choose one of {', '.join(FORMATS)}.")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ConfigError(f"--quantize '{quantize}' is unknown; the choice is int8.")
    if prune is not None and not 0 < prune < 1:
        raise ConfigError(
            f"--prune is the share of weights to zero, above 0 and below 1; got {prune}."
        )
    if (fmt == "onnx" or quantize) and task_spec(task).output != "labels":
        raise ConfigError(
            f"{run_dir} is a {task} run; ONNX and int8 exports cover classification runs. Use --format hf or merged."
        )
    out, run = out_dir.resolve(), run_dir.resolve()
    if out == run or run in out.parents or out in run.parents:
        raise ConfigError(
            f"export directory {out_dir} is the run {run_dir}, inside it or above it; pick a new directory outside it."
        )
    if out.exists() and not (out / EXPORT).is_file() and any(out.iterdir()):
        raise ConfigError(
            f"{out_dir} exists and is not a tunelab export; an export replaces its directory whole. Pick a new directory."
        )


def _check_not_an_export(run_dir: Path) -> None:
    from tunelab.inference.int8 import INT8_FILE
    from tunelab.inference.onnx import ONNX_FILE

    for name in (ONNX_FILE, INT8_FILE):
        if (run_dir / "model" / name).is_file():
            source = (RunDir(run_dir).export_record() or {}).get("run", "the original run")
            raise RunDirError(
                f"{run_dir} is already a compressed export ({name}); export from the run it came from: {source}."
            )


def _check_reload(reloaded: torch.Tensor, written: torch.Tensor) -> float:
    """The written files must give back the model that was checked; else nothing is kept."""
    difference = float((reloaded - written).abs().max())
    if difference > PARITY_TOLERANCE:
        raise RunDirError(
            f"the written export reads back differently from the checked model ({difference:.2e}); nothing was written."
        )
    return difference


def _write_onnx(
    model: Any, tokenizer: Any, probe: Any, model_dir: Path, quantize: str | None
) -> dict[str, Any]:
    """Export, verify the fp32 graph against PyTorch on probes of several shapes, then quantize."""
    from tunelab.inference.onnx import ONNX_FILE, OnnxClassifier, export_classifier, quantize_int8

    path = model_dir / ONNX_FILE
    export_classifier(model, dict(probe), path)
    model.config.save_pretrained(model_dir)
    session = OnnxClassifier(path)
    checks = [probe, tokenizer([PROBE_TEXTS[2]], return_tensors="pt")]  # batch of 1, other length
    difference = max(
        float(
            abs(
                session.logits({k: v.numpy() for k, v in b.items()}) - _outputs(model, b).numpy()
            ).max()
        )
        for b in checks
    )
    if difference > ONNX_TOLERANCE:
        raise RunDirError(
            f"the ONNX graph differs from the PyTorch model by {difference:.2e} (tolerance {ONNX_TOLERANCE:g}); nothing was written."
        )
    result: dict[str, Any] = {"max_abs_difference": difference, "tolerance": ONNX_TOLERANCE}
    if quantize == "int8":
        quantized = model_dir / "model.int8.tmp.onnx"
        quantize_int8(path, quantized)
        quantized.replace(path)
        path.with_name(path.name + ".data").unlink(missing_ok=True)  # fp32 weights of a >2 GB graph
        int8 = OnnxClassifier(path).logits({k: v.numpy() for k, v in probe.items()})
        result["int8_max_abs_difference"] = float(abs(int8 - _outputs(model, probe).numpy()).max())
    return result


def _write_int8(model: Any, probe: Any, model_dir: Path) -> dict[str, Any]:
    from transformers import AutoModelForSequenceClassification

    from tunelab.inference.int8 import load_int8, quantize_dynamic_int8, save_int8

    quantized = quantize_dynamic_int8(model)
    layers = save_int8(quantized, model_dir)
    expected = _outputs(quantized, probe)
    reloaded = _outputs(load_int8(model_dir, AutoModelForSequenceClassification), probe)
    return {
        "quantized_layers": layers,
        "max_abs_difference": float((expected - _outputs(model, probe)).abs().max()),
        "reloaded_max_abs_difference": _check_reload(reloaded, expected),
    }


def _announce(record: dict[str, Any]) -> None:
    measured = record["measured"]
    size = measured["size_mb"]
    say(f"size: {size['run']:.1f} MB -> {size['export']:.1f} MB")
    speed = measured.get("speed")
    if speed:
        say(
            f"speed on {speed['texts']} texts: run {speed['run_texts_per_s']:.0f} texts/s ({speed['run_precision']}), "
            f"export {speed['export_texts_per_s']:.0f} texts/s ({speed['ratio']:.2f}x)"
            + (
                f"; the run in fp32: {speed['run_fp32_texts_per_s']:.0f} texts/s"
                if "run_fp32_texts_per_s" in speed
                else ""
            )
        )
    accuracy = measured.get("accuracy")
    if accuracy and "skipped" not in accuracy:
        say(
            f"test accuracy: run {accuracy['run']['accuracy']:.4f} -> export {accuracy['export']['accuracy']:.4f} "
            f"({accuracy['change']['accuracy']:+.4f}); macro-F1 {accuracy['change']['macro_f1']:+.4f}"
        )
    elif accuracy:
        say(f"test accuracy not measured: {accuracy['skipped']}")


def _is_weights(path: Path) -> bool:
    """The run's own weights (or adapter): an export writes its own in their place."""
    return path.name.endswith(WEIGHT_SUFFIXES) or path.name == "adapter_config.json"


def _adapter_type(model: PreTrainedModel) -> str | None:
    config = getattr(model, "peft_config", None)
    if not config:
        return None
    return str(next(iter(config.values())).peft_type.value)


@torch.inference_mode()
def _outputs(model: PreTrainedModel, batch: Any) -> torch.Tensor:
    device = next(model.parameters()).device
    inputs = {k: v.to(device) for k, v in batch.items()}
    if getattr(model.config, "is_encoder_decoder", False):  # the decoder reads the probe too
        inputs["decoder_input_ids"] = inputs["input_ids"]
    return model(**inputs).logits.float().cpu()
